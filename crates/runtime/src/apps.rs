//! Apps: long-running containers paid for from a prepaid deposit.
//!
//! ## Calls (all but `create` by the app's owner only, and never on a stopped app)
//! - `create(spec, deposit)`: validates the spec, reserves the deposit (at least
//!   `min_app_deposit` and at least one epoch at the owner's maximum price), and places the app
//!   at once or queues it.
//! - `update(app, spec)`: a new version (history kept in `apv/`). The app stays on its worker
//!   when the worker still satisfies the new spec, and is repriced there if its resources
//!   changed; otherwise it is moved.
//! - `set_settings(app, settings)`: a new version with new env, secret names or replicas.
//! - `recharge(app, amount)`: adds to the deposit; ends a grace period the deposit now covers.
//! - `restart(app)`: counts a restart; the worker restarts the containers when it sees it.
//! - `stop(app)`: releases the worker's capacity, closes the lease and refunds the deposit
//!   except what the worker may still claim for proven work (see [`crate::settlement`]).
//! - `set_secrets(app, worker, sealing_key, set, remove)`: stores secrets the owner sealed
//!   (HPKE) to the attested sealing key of the worker the app is placed on, each also sealed to
//!   the owner. Only names the spec declares; every call is a new revision, and each new
//!   ciphertext must be sealed under it. Secrets kept from earlier calls must already be sealed
//!   to the same worker key: moving to another worker reseals all of them at once.
//!
//! ## Secrets
//! An app that declares secrets is `AwaitingSecrets` while placed on a worker that cannot open
//! all of them (first placement, a move to another worker, the worker's new sealing key, or a
//! version declaring a new name): the worker does not start it, is not paid for it, and it does
//! not count as unproven. It becomes `Running` when the owner seals the missing secrets. The
//! chain never sees a secret in the clear.

use crate::balances;
use crate::context::Ctx;
use crate::scheduling::{self, Demand};
use crate::settlement;
use crate::storage;
use std::collections::BTreeSet;
use wetee_types::Signature;
use wetee_types::error::error_text;
use wetee_types::manifest::{AppSpec, EnvName};
use wetee_types::records::{
    App, AppSecrets, AppSettings, AppStatus, AppVersion, ImageDigest, SealedSecret, StopReason,
    VersionChange, Worker, merge_secrets,
};
use wetee_types::transaction::{AppsCall, SecretsGrant};
use wetee_types::{AccountId, AppId, Balance, CallError, Event, TeeKind, WorkerId, Workload};

pub(crate) fn dispatch(ctx: &mut Ctx, signer: AccountId, call: &AppsCall) -> Result<(), CallError> {
    match call {
        AppsCall::Create { spec, deposit } => create(ctx, signer, spec, *deposit),
        AppsCall::Update {
            app,
            spec,
            secrets_grant,
        } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            grant_secrets_to(
                ctx,
                &app,
                &spec.container.image.digest,
                secrets_grant.as_ref(),
            )?;
            new_version(ctx, &mut app, spec.clone(), VersionChange::Updated)
        }
        AppsCall::SetSettings { app, settings } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            let spec = apply_settings(&app.spec, settings)?;
            new_version(ctx, &mut app, spec, VersionChange::Settings)
        }
        AppsCall::Recharge { app, amount } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            if amount.is_zero() {
                return Err(CallError::ZeroAmount);
            }
            balances::reserve(ctx.state, &signer, *amount)?;
            app.deposit = app
                .deposit
                .checked_add(*amount)
                .ok_or(CallError::Overflow)?;
            settlement::check_funding(ctx, &mut app)?;
            ctx.emit(Event::AppRecharged {
                app: app.id,
                amount: *amount,
                deposit: app.deposit,
            });
            storage::put_app(ctx.state, &app)?;
            Ok(())
        }
        AppsCall::Restart { app } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            app.restarts = app.restarts.checked_add(1).ok_or(CallError::Overflow)?;
            ctx.emit(Event::AppRestarted {
                app: app.id,
                restarts: app.restarts,
            });
            storage::put_app(ctx.state, &app)?;
            Ok(())
        }
        AppsCall::Stop { app } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            stop(ctx, &mut app, StopReason::Owner)?;
            storage::put_app(ctx.state, &app)?;
            Ok(())
        }
        AppsCall::SetSecrets {
            app,
            worker,
            sealing_key,
            set,
            remove,
            allowed_images,
            signature,
        } => {
            let mut app = owned_live_app(ctx, signer, *app)?;
            let change = SecretsChange {
                worker: *worker,
                sealing_key,
                set,
                remove,
                allowed_images,
                signature,
            };
            set_secrets(ctx, &mut app, &change)?;
            storage::put_app(ctx.state, &app)?;
            Ok(())
        }
    }
}

/// An owner's change of an app's secrets, as its call carries it.
struct SecretsChange<'a> {
    worker: WorkerId,
    sealing_key: &'a [u8; 32],
    set: &'a [SealedSecret],
    remove: &'a [EnvName],
    allowed_images: &'a [ImageDigest],
    signature: &'a Signature,
}

/// Checks that an update to an image is allowed to receive the app's secrets, or applies the
/// owner's grant that allows it.
fn grant_secrets_to(
    ctx: &mut Ctx,
    app: &App,
    image: &[u8; 32],
    grant: Option<&SecretsGrant>,
) -> Result<(), CallError> {
    let key = storage::keys::app_secrets(app.id);
    let Some(mut record) = storage::get::<AppSecrets>(ctx.state, &key)? else {
        return Ok(());
    };
    match grant {
        None if record.allows_image(image) => Ok(()),
        None => Err(CallError::ImageNotAllowedSecrets),
        Some(grant) => {
            // A new revision: a worker never goes back to one allowing the images dropped now.
            record.revision = record.revision.checked_add(1).ok_or(CallError::Overflow)?;
            record.allowed_images = grant.allowed_images.clone();
            record.owner_signature = grant.signature;
            if !record.signed_by(&app.owner, &ctx.genesis_hash, app.id) {
                return Err(CallError::SecretsSignature);
            }
            if !record.allows_image(image) {
                return Err(CallError::ImageNotAllowedSecrets);
            }
            storage::put_app_secrets(ctx.state, app.id, &record)?;
            Ok(())
        }
    }
}

fn set_secrets(ctx: &mut Ctx, app: &mut App, change: &SecretsChange) -> Result<(), CallError> {
    let SecretsChange {
        worker: worker_id,
        sealing_key,
        set,
        remove,
        allowed_images,
        signature,
    } = *change;
    if app.placement.is_none_or(|p| p.worker != worker_id) {
        return Err(CallError::SecretsWrongWorker {
            app: app.id,
            worker: worker_id,
        });
    }
    let worker = storage::worker(ctx.state, worker_id)?;
    if worker.keys.sealing != *sealing_key {
        return Err(CallError::SealingKeyChanged { worker: worker_id });
    }
    if !worker.attestation_valid(ctx.time_ms) {
        return Err(CallError::AttestationExpired {
            worker: worker_id,
            expired_at_ms: worker.attested.expires_at_ms,
        });
    }
    if set.is_empty() && remove.is_empty() {
        return Err(CallError::NothingToChange);
    }
    let key = storage::keys::app_secrets(app.id);
    let stored: Option<AppSecrets> = storage::get(ctx.state, &key)?;
    let revision = stored
        .as_ref()
        .map_or(0, |s| s.revision)
        .checked_add(1)
        .ok_or(CallError::Overflow)?;
    let same_target = stored
        .as_ref()
        .is_some_and(|s| s.worker == worker_id && s.sealing_key == *sealing_key);
    let text = |name: &EnvName| error_text(name.as_str());
    let mut named = BTreeSet::new();
    for secret in set {
        if !app.spec.container.secrets.contains(&secret.name) {
            return Err(CallError::SecretNotDeclared {
                name: text(&secret.name),
            });
        }
        if secret.revision != revision {
            return Err(CallError::SecretRevision {
                name: text(&secret.name),
                expected: revision,
            });
        }
        if !named.insert(&secret.name) {
            return Err(CallError::DuplicateSecret {
                name: text(&secret.name),
            });
        }
    }
    if !same_target
        && let Some(kept) = stored
            .iter()
            .flat_map(|s| s.secrets.iter())
            .find(|kept| !remove.contains(&kept.name) && !named.contains(&kept.name))
    {
        return Err(CallError::SecretNotResealed {
            name: text(&kept.name),
        });
    }
    let record = AppSecrets {
        worker: worker_id,
        sealing_key: *sealing_key,
        revision,
        secrets: merge_secrets(stored.as_ref(), set, remove)
            .try_into()
            .map_err(|_| CallError::Overflow)?,
        allowed_images: allowed_images
            .to_vec()
            .try_into()
            .map_err(|_| CallError::Overflow)?,
        owner_signature: *signature,
    };
    // The worker checks this signature itself: it gives secrets only to what the owner signed.
    if !record.signed_by(&app.owner, &ctx.genesis_hash, app.id) {
        return Err(CallError::SecretsSignature);
    }
    // Secrets the app's own image may not receive would leave it running without them.
    if !record.allows_image(&app.spec.container.image.digest) {
        return Err(CallError::ImageNotAllowedSecrets);
    }
    storage::put_app_secrets(ctx.state, app.id, &record)?;
    ctx.emit(Event::AppSecretsSet {
        app: app.id,
        worker: worker_id,
    });
    refresh_secrets_status(ctx, app)
}

/// Whether the app's worker can open every secret its spec declares.
fn secrets_ready(ctx: &Ctx, app: &App, worker: &Worker) -> Result<bool, CallError> {
    let declared = &app.spec.container.secrets;
    if declared.is_empty() {
        return Ok(true);
    }
    let stored: Option<AppSecrets> = storage::get(ctx.state, &storage::keys::app_secrets(app.id))?;
    Ok(stored.is_some_and(|s| {
        s.worker == worker.id
            && s.sealing_key == worker.keys.sealing
            && declared.iter().all(|name| s.get(name).is_some())
    }))
}

/// A placed app is `Running` when its worker can open its secrets, `AwaitingSecrets`
/// otherwise.
pub(crate) fn refresh_secrets_status(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    let Some(placement) = app.placement else {
        return Ok(());
    };
    if !matches!(app.status, AppStatus::Running | AppStatus::AwaitingSecrets) {
        return Ok(());
    }
    let worker = storage::worker(ctx.state, placement.worker)?;
    if secrets_ready(ctx, app, &worker)? {
        if app.status == AppStatus::AwaitingSecrets {
            // The blocks spent waiting are not the worker's to claim.
            let lease = storage::lease(ctx.state, placement.worker, app.id, placement.lease)?;
            if let Some(mut lease) = lease {
                lease.settled_to = lease.settled_to.max(ctx.height);
                storage::put_lease(ctx.state, &lease);
            }
        }
        app.status = AppStatus::Running;
    } else if app.status != AppStatus::AwaitingSecrets {
        app.status = AppStatus::AwaitingSecrets;
        ctx.emit(Event::AppAwaitingSecrets {
            app: app.id,
            worker: worker.id,
        });
    }
    Ok(())
}

fn owned_live_app(ctx: &Ctx, signer: AccountId, id: AppId) -> Result<App, CallError> {
    let app = storage::app(ctx.state, id)?;
    if app.owner != signer {
        return Err(CallError::NotAppOwner { app: id });
    }
    if matches!(app.status, AppStatus::Stopped { .. }) {
        return Err(CallError::AppStopped { app: id });
    }
    Ok(app)
}

/// Refuses the simulated TEE where the chain does not allow it.
pub(crate) fn check_tee_allowed(ctx: &Ctx, tee: TeeKind) -> Result<(), CallError> {
    if tee == TeeKind::Simulated && !ctx.attestation.allow_simulated_tee {
        return Err(CallError::SimulatedTeeNotAllowed);
    }
    Ok(())
}

/// The smallest deposit an app can be created with: the chain's minimum, and at least one
/// epoch at the most the owner would pay.
pub(crate) fn min_deposit(params: &wetee_types::params::Params, spec: &AppSpec) -> Balance {
    params
        .min_app_deposit
        .max(spec.constraints.max_price_per_epoch)
}

fn create(
    ctx: &mut Ctx,
    owner: AccountId,
    spec: &AppSpec,
    deposit: Balance,
) -> Result<(), CallError> {
    spec.validate()?;
    check_tee_allowed(ctx, spec.constraints.tee)?;
    let minimum = min_deposit(&ctx.params, spec);
    if deposit < minimum {
        return Err(CallError::DepositTooLow { minimum });
    }
    balances::reserve(ctx.state, &owner, deposit)?;
    let id = AppId(storage::next_id(ctx.state, "app")?);
    let mut app = App {
        id,
        owner,
        version: 1,
        spec: spec.clone(),
        status: AppStatus::Pending,
        deposit,
        held: Balance::ZERO,
        placement: None,
        leases: 0,
        restarts: 0,
        grace_until: None,
        unproven_reports: 0,
        created_at: ctx.height,
    };
    storage::put_app_version(
        ctx.state,
        id,
        &AppVersion {
            version: 1,
            spec: spec.clone(),
            change: VersionChange::Created,
            at: ctx.height,
        },
    );
    ctx.state.put(&storage::keys::owned_app(&owner, id), &[]);
    ctx.emit(Event::AppCreated { app: id, owner });
    place_or_queue(ctx, &mut app)?;
    storage::put_app(ctx.state, &app)?;
    Ok(())
}

fn apply_settings(spec: &AppSpec, settings: &AppSettings) -> Result<AppSpec, CallError> {
    if settings.env.is_none() && settings.secrets.is_none() && settings.replicas.is_none() {
        return Err(CallError::NothingToChange);
    }
    let mut spec = spec.clone();
    if let Some(env) = &settings.env {
        spec.container.env = env.clone();
    }
    if let Some(secrets) = &settings.secrets {
        spec.container.secrets = secrets.clone();
    }
    if let Some(replicas) = settings.replicas {
        spec.replicas = replicas;
    }
    Ok(spec)
}

fn new_version(
    ctx: &mut Ctx,
    app: &mut App,
    spec: AppSpec,
    change: VersionChange,
) -> Result<(), CallError> {
    spec.validate()?;
    check_tee_allowed(ctx, spec.constraints.tee)?;
    app.version = app.version.checked_add(1).ok_or(CallError::Overflow)?;
    app.spec = spec;
    storage::put_app_version(
        ctx.state,
        app.id,
        &AppVersion {
            version: app.version,
            spec: app.spec.clone(),
            change,
            at: ctx.height,
        },
    );
    redeploy(ctx, app)?;
    ctx.emit(Event::AppUpdated {
        app: app.id,
        version: app.version,
    });
    storage::put_app(ctx.state, app)?;
    Ok(())
}

/// Brings the placement in line with a changed spec: same worker if it still fits (repriced if
/// the resources changed), another worker otherwise.
fn redeploy(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    let workload = Workload::App { app: app.id };
    let Some(placement) = app.placement else {
        scheduling::dequeue(ctx.state, &workload)?;
        return place_or_queue(ctx, app);
    };
    let demand = Demand::of_app(&app.spec)?;
    let worker = storage::worker(ctx.state, placement.worker)?;
    let held = scheduling::held_capacity(ctx.state, placement.worker, &workload)?
        .ok_or_else(|| scheduling::state_error("a running app holds no capacity"))?;
    if demand.resources == held {
        // Same resources: the app keeps its worker, lease and price as long as the worker is
        // still the kind of machine it asks for and the lease price is within the new maximum.
        // (The worker's current price, status and stake are not re-judged: draining and
        // liveness deal with those.)
        let keeps = scheduling::meets_constraints(&worker, &demand, &ctx.rules()).is_ok()
            && placement.price_per_epoch <= demand.constraints.max_price_per_epoch;
        if keeps {
            refresh_secrets_status(ctx, app)?;
            return settlement::check_funding(ctx, app);
        }
    } else if let Ok(price) = scheduling::assess(&worker, &demand, &ctx.rules(), &held) {
        // New resources: a new lease at the worker's current price.
        scheduling::resize_capacity(ctx, placement.worker, &workload, &demand.resources)?;
        settlement::close_lease(ctx, app)?;
        settlement::open_lease(ctx, app, placement.worker, price)?;
        refresh_secrets_status(ctx, app)?;
        return settlement::check_funding(ctx, app);
    }
    unplace(ctx, app)?;
    place_or_queue(ctx, app)
}

/// Places the app on the best worker, or queues it.
fn place_or_queue(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    let demand = Demand::of_app(&app.spec)?;
    match scheduling::best_worker(ctx.state, &demand, &ctx.rules(), None)? {
        Some((worker, price)) => place_on(ctx, app, worker, price),
        None => {
            app.status = AppStatus::Pending;
            scheduling::enqueue(ctx, &Workload::App { app: app.id })
        }
    }
}

fn place_on(
    ctx: &mut Ctx,
    app: &mut App,
    worker: WorkerId,
    price: Balance,
) -> Result<(), CallError> {
    let workload = Workload::App { app: app.id };
    let resources = app.spec.total_resources().ok_or(CallError::Overflow)?;
    scheduling::reserve_capacity(ctx, worker, &workload, &resources)?;
    settlement::open_lease(ctx, app, worker, price)?;
    app.status = AppStatus::Running;
    app.unproven_reports = 0;
    ctx.emit(Event::WorkloadPlaced {
        workload,
        worker,
        price_per_epoch: price,
    });
    refresh_secrets_status(ctx, app)?;
    settlement::check_funding(ctx, app)
}

/// Takes the app off its worker: closes the lease and releases the capacity.
fn unplace(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    if let Some(placement) = app.placement {
        settlement::close_lease(ctx, app)?;
        scheduling::release_capacity(ctx, placement.worker, &Workload::App { app: app.id })?;
    }
    Ok(())
}

/// Stops the app for good and refunds what no lease holds.
pub(crate) fn stop(ctx: &mut Ctx, app: &mut App, reason: StopReason) -> Result<(), CallError> {
    unplace(ctx, app)?;
    scheduling::dequeue(ctx.state, &Workload::App { app: app.id })?;
    let refund = app.deposit.saturating_sub(app.held);
    balances::unreserve(ctx.state, &app.owner, refund)?;
    app.deposit = app.held;
    app.status = AppStatus::Stopped { reason };
    app.grace_until = None;
    ctx.emit(Event::AppStopped {
        app: app.id,
        reason,
        refund,
    });
    Ok(())
}

/// Tries to place a pending app (epoch end); if no worker takes it, it goes to the back of the
/// queue.
pub(crate) fn retry_pending(ctx: &mut Ctx, id: AppId) -> Result<(), CallError> {
    let mut app = storage::app(ctx.state, id)?;
    let workload = Workload::App { app: id };
    if app.status != AppStatus::Pending {
        return scheduling::dequeue(ctx.state, &workload);
    }
    let demand = Demand::of_app(&app.spec)?;
    match scheduling::best_worker(ctx.state, &demand, &ctx.rules(), None)? {
        Some((worker, price)) => {
            scheduling::dequeue(ctx.state, &workload)?;
            place_on(ctx, &mut app, worker, price)?;
            storage::put_app(ctx.state, &app)?;
            Ok(())
        }
        None => scheduling::requeue(ctx.state, &workload),
    }
}

/// Moves an app off a draining worker to the best other worker; it stays (and keeps serving)
/// when no other worker can take it. Returns whether it moved.
pub(crate) fn drain(ctx: &mut Ctx, id: AppId, from: WorkerId) -> Result<bool, CallError> {
    let mut app = storage::app(ctx.state, id)?;
    if app.placement.is_none_or(|p| p.worker != from) {
        return Ok(false);
    }
    let demand = Demand::of_app(&app.spec)?;
    let Some((worker, price)) =
        scheduling::best_worker(ctx.state, &demand, &ctx.rules(), Some(from))?
    else {
        return Ok(false);
    };
    unplace(ctx, &mut app)?;
    place_on(ctx, &mut app, worker, price)?;
    storage::put_app(ctx.state, &app)?;
    Ok(true)
}

/// Takes an app off a worker that stopped proving it: it joins the pending queue, and the next
/// epoch ends place it (no search here, so a suspension costs one write per app).
pub(crate) fn evict(ctx: &mut Ctx, app: &mut App, from: WorkerId) -> Result<(), CallError> {
    if app.placement.is_none_or(|p| p.worker != from) {
        return Ok(());
    }
    unplace(ctx, app)?;
    app.status = AppStatus::Pending;
    app.unproven_reports = 0;
    scheduling::enqueue(ctx, &Workload::App { app: app.id })
}

/// The end of a grace period: stop the app unless its deposit now covers an epoch (at its
/// current price, or at its maximum price while it waits for a worker).
pub(crate) fn grace_end(ctx: &mut Ctx, id: AppId, epoch: u64) -> Result<(), CallError> {
    let mut app = storage::app(ctx.state, id)?;
    if app.grace_until != Some(epoch) || matches!(app.status, AppStatus::Stopped { .. }) {
        return Ok(()); // recharged, stopped, or a newer grace period
    }
    let needed = app
        .placement
        .map_or(app.spec.constraints.max_price_per_epoch, |p| {
            p.price_per_epoch
        });
    if settlement::available(ctx, &app)? < needed {
        stop(ctx, &mut app, StopReason::DepositExhausted)?;
    } else {
        app.grace_until = None;
    }
    storage::put_app(ctx.state, &app)?;
    Ok(())
}
