//! Workers: clusters that stake, run workloads, prove their work, and get paid.
//!
//! ## Calls (by the worker's operator unless stated)
//! - `register(profile, attestation)`: any signer, who becomes the operator. The profile is
//!   validated; the evidence must come from a TEE kind the profile lists and pass
//!   [`crate::attestation`]'s verification (the simulated TEE only where the policy allows it);
//!   the identity key must sign the binding to this operator and chain (`key_proof`), so keys
//!   and evidence copied from another worker are useless. A new worker is `Registered` and gets
//!   no work until started.
//! - `update(worker, profile, attestation?)`: replaces the profile (and keys, with fresh
//!   evidence). While workloads are placed, the capacity may not drop below what is used, and
//!   the region, TEE kinds and GPU model may not change, nor the level drop: drain first. New
//!   prices apply to new leases only.
//! - `stake(worker, amount)` moves free funds into the stake. `unstake(worker, amount)` starts
//!   unbonding (withdrawable after `unbonding_blocks`, slashable until then); a started or
//!   busy worker must keep the stake its level requires.
//! - `start(worker)`: needs the stake its level requires. `stop(worker)`: stops at once when
//!   empty, otherwise drains: no new placements, apps move to other workers at epoch ends, and
//!   it stops when the last workload leaves.
//! - `submit_work_report(report)`: one report per epoch, for an epoch that has ended and whose
//!   window (`proof_window_epochs`) is still open, later than the last one reported; signed by
//!   the worker's attested identity key over the chain's genesis hash. Fresh evidence may ride
//!   along and is verified first; a worker whose attestation has expired has its reports
//!   refused (it is paid nothing) until one carries fresh evidence. Each app proof pays the app's leases for that epoch
//!   ([`crate::settlement`]); each run result pays that run ([`crate::tasks`]).
//! - `report_app_failure(worker, app, version, observed_at, reason, log_digest, log_tail)`: the
//!   worker an app runs on cannot run it (it does not start, or keeps crashing); only about the
//!   app's current version, observed at most `FAILURE_REPORT_MAX_AGE_BLOCKS` ago. The app stops as failed (unplaced,
//!   the unused deposit refunded) and the reason is recorded, with the last log lines sealed to
//!   the owner and a commitment to them: both signed by the worker's identity key, so the
//!   operator can neither read nor swap them. A worker gains nothing by it: it loses the
//!   app's lease.
//! - `withdraw(worker)`: earnings and unlocked unbonding amounts to the operator's free balance.
//! - `file_complaint(worker, evidence_hash, bond)`: any signer, locking at least
//!   `complaint_bond`.
//! - `slash(worker, amount, complaint?)`: **root only**. Takes up to `amount` from the stake,
//!   then from unbonding amounts, to the treasury; an upheld complaint's bond is returned.
//! - `dismiss_complaint(complaint)`: **root only**. The bond goes to the treasury.
//!
//! ## Liveness
//! - At every epoch end, a worker holding workloads whose last `max_missed_proofs` closed epochs
//!   (epochs whose report window has passed) went unreported is suspended: its score drops and
//!   its apps go to the pending queue, to be placed on other workers. The epoch's last block
//!   opens a sweep over the workers holding workloads, in id order, and each block goes on with
//!   it as far as its weight budget goes ([`crate::hooks`]); a report from a worker the sweep
//!   has not reached yet is preceded by its judgement, so reporting late cannot undo missed
//!   epochs. The pending queue is retried once the sweep is done, block after block too.
//! - An app its worker leaves out of `max_missed_proofs` reports in a row (having held it for
//!   the whole epoch) leaves that worker the same way, even if the worker keeps reporting.
//! - A draining worker's apps move wherever another worker can take them, a bounded number per
//!   epoch end; the rest stay and keep serving until their turn.
//! - One identity key registers one worker.

use crate::apps;
use crate::balances::{self, Credit};
use crate::context::Ctx;
use crate::root::ensure_root;
use crate::scheduling;
use crate::settlement;
use crate::storage;
use crate::tasks;
use std::collections::BTreeSet;
use wetee_types::attestation::AttestedTee;
use wetee_types::error::error_text;
use wetee_types::manifest::{MAX_LEVEL, MAX_PRICE};
use wetee_types::records::{
    Attestation, Complaint, ComplaintStatus, Evidence, Unbonding, Worker, WorkerKeys,
    WorkerProfile, WorkerStatus, key_proof_payload,
};
use wetee_types::report::{FULL_UPTIME_BPS, SignedWorkReport};
use wetee_types::transaction::WorkersCall;
use wetee_types::{AccountId, Balance, CallError, ComplaintId, Event, TeeKind, WorkerId, Workload};

/// Score of a new worker.
pub const INITIAL_SCORE: u32 = 500;
/// Highest score.
pub const MAX_SCORE: u32 = 1000;
/// Score lost on suspension.
pub const SUSPENSION_PENALTY: u32 = 100;
/// Score lost when an app leaves for lack of proofs.
pub const EVICTION_PENALTY: u32 = 10;
/// Apps of one draining worker tried per epoch end.
pub const DRAIN_ATTEMPTS_PER_WORKER: usize = 32;

pub(crate) fn dispatch(
    ctx: &mut Ctx,
    signer: AccountId,
    call: &WorkersCall,
) -> Result<(), CallError> {
    match call {
        WorkersCall::Register {
            profile,
            attestation,
        } => register(ctx, signer, profile, attestation),
        WorkersCall::Update {
            worker,
            profile,
            attestation,
        } => update(ctx, signer, *worker, profile, attestation.as_ref()),
        WorkersCall::Stake { worker, amount } => stake(ctx, signer, *worker, *amount),
        WorkersCall::Unstake { worker, amount } => unstake(ctx, signer, *worker, *amount),
        WorkersCall::Start { worker } => start(ctx, signer, *worker),
        WorkersCall::Stop { worker } => stop(ctx, signer, *worker),
        WorkersCall::SubmitWorkReport { report } => submit_work_report(ctx, signer, report),
        WorkersCall::Withdraw { worker } => withdraw(ctx, signer, *worker),
        WorkersCall::FileComplaint {
            worker,
            evidence_hash,
            bond,
        } => file_complaint(ctx, signer, *worker, *evidence_hash, *bond),
        WorkersCall::Slash {
            worker,
            amount,
            complaint,
        } => slash(ctx, signer, *worker, *amount, *complaint),
        WorkersCall::DismissComplaint { complaint } => dismiss_complaint(ctx, signer, *complaint),
        WorkersCall::ReportAppFailure {
            worker,
            app,
            version,
            observed_at,
            reason,
            log_digest,
            log_tail,
            signature,
        } => report_app_failure(
            ctx,
            signer,
            &wetee_types::transaction::FailureSubject {
                worker: *worker,
                app: *app,
                version: *version,
                observed_at: *observed_at,
            },
            (reason, log_digest, log_tail),
            signature,
        ),
    }
}

fn operated_worker(ctx: &Ctx, signer: AccountId, id: WorkerId) -> Result<Worker, CallError> {
    let worker = storage::worker(ctx.state, id)?;
    if worker.operator != signer {
        return Err(CallError::NotWorkerOperator { worker: id });
    }
    Ok(worker)
}

fn profile_error(field: &str, problem: &str) -> CallError {
    CallError::InvalidWorkerProfile {
        field: error_text(field),
        problem: error_text(problem),
    }
}

fn is_label(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a profile's fields.
pub(crate) fn validate_profile(ctx: &Ctx, profile: &WorkerProfile) -> Result<(), CallError> {
    let endpoint = profile.endpoint.as_str();
    if endpoint.is_empty()
        || endpoint
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(profile_error("endpoint", "must be a URL without spaces"));
    }
    if !is_label(&profile.region) {
        return Err(profile_error(
            "region",
            "must be lower-case letters, digits or `-`",
        ));
    }
    if profile.level > MAX_LEVEL {
        return Err(profile_error(
            "level",
            &format!("must be at most {MAX_LEVEL}"),
        ));
    }
    if profile.capacity.cpu_millicores == 0 || profile.capacity.memory_mib == 0 {
        return Err(profile_error(
            "capacity",
            "CPU and memory must be greater than zero",
        ));
    }
    if profile.capacity.gpus > 0 && profile.gpu_model.as_ref().is_none_or(|m| !is_label(m)) {
        return Err(profile_error(
            "gpu_model",
            "a worker with GPUs names their model (lower-case letters, digits or `-`)",
        ));
    }
    if profile.capacity.gpus == 0 && profile.gpu_model.is_some() {
        return Err(profile_error(
            "gpu_model",
            "is set but the capacity has no GPUs",
        ));
    }
    if profile.tee_kinds.is_empty() {
        return Err(profile_error(
            "tee_kinds",
            "must list at least one TEE kind",
        ));
    }
    if profile.tee_kinds.contains(TeeKind::Simulated) && !ctx.attestation.allow_simulated_tee {
        return Err(CallError::SimulatedTeeNotAllowed);
    }
    let p = &profile.prices;
    if [p.cpu_millicore, p.memory_mib, p.disk_gib, p.gpu]
        .iter()
        .any(|price| *price > MAX_PRICE)
    {
        return Err(profile_error(
            "prices",
            &format!("each unit price must be at most {MAX_PRICE}"),
        ));
    }
    // Workers price their whole capacity far below overflow, so placements cannot overflow.
    p.cost_per_epoch(&profile.capacity)
        .ok_or_else(|| profile_error("prices", "price of the whole capacity overflows"))?;
    Ok(())
}

/// Checks evidence for keys: a listed TEE kind, allowed on this chain, verified.
fn check_evidence(
    ctx: &Ctx,
    profile: &WorkerProfile,
    keys: &WorkerKeys,
    evidence: &Evidence,
) -> Result<AttestedTee, CallError> {
    if evidence.kind == TeeKind::Simulated && !ctx.attestation.allow_simulated_tee {
        return Err(CallError::SimulatedTeeNotAllowed);
    }
    if !profile.tee_kinds.contains(evidence.kind) {
        return Err(CallError::EvidenceKindNotDeclared {
            kind: evidence.kind,
        });
    }
    crate::attestation::verify_evidence(ctx, keys, evidence)
}

/// Fails if another worker already uses `identity` (one TEE identity, one worker).
fn ensure_identity_free(
    ctx: &Ctx,
    identity: &[u8; 32],
    except: Option<WorkerId>,
) -> Result<(), CallError> {
    match storage::get::<WorkerId>(ctx.state, &storage::keys::identity(identity))? {
        Some(worker) if Some(worker) != except => Err(CallError::IdentityKeyInUse { worker }),
        _ => Ok(()),
    }
}

/// Checks an attestation for `operator`: the evidence, and the identity key's signature binding
/// it to the operator on this chain.
fn check_attestation(
    ctx: &Ctx,
    operator: &AccountId,
    profile: &WorkerProfile,
    attestation: &Attestation,
) -> Result<AttestedTee, CallError> {
    // The cheap signature first: a copied attestation fails here before any quote is parsed.
    let payload = key_proof_payload(&ctx.genesis_hash, operator, &attestation.keys);
    let signature = wetee_types::Signature::Ed25519(attestation.key_proof);
    if !signature.verify(&payload, &AccountId(attestation.keys.identity)) {
        return Err(CallError::KeyProofInvalid);
    }
    check_evidence(ctx, profile, &attestation.keys, &attestation.evidence)
}

fn register(
    ctx: &mut Ctx,
    operator: AccountId,
    profile: &WorkerProfile,
    attestation: &Attestation,
) -> Result<(), CallError> {
    validate_profile(ctx, profile)?;
    let attested = check_attestation(ctx, &operator, profile, attestation)?;
    let keys = &attestation.keys;
    let evidence = &attestation.evidence;
    ensure_identity_free(ctx, &keys.identity, None)?;
    let id = WorkerId(storage::next_id(ctx.state, "worker")?);
    storage::put(ctx.state, &storage::keys::identity(&keys.identity), &id);
    let worker = Worker {
        id,
        operator,
        profile: profile.clone(),
        keys: *keys,
        evidence: evidence.clone(),
        attested,
        status: WorkerStatus::Registered,
        stake: Balance::ZERO,
        unbonding: Default::default(),
        earnings: Balance::ZERO,
        used: wetee_types::Resources::ZERO,
        workloads: 0,
        score: INITIAL_SCORE,
        registered_at: ctx.height,
        last_report_epoch: None,
        liable_since: ctx.epoch(),
    };
    storage::put_worker(ctx.state, &worker);
    ctx.emit(Event::WorkerRegistered {
        worker: id,
        operator,
    });
    ctx.emit(Event::WorkerAttested {
        worker: id,
        expires_at_ms: attested.expires_at_ms,
    });
    Ok(())
}

fn update(
    ctx: &mut Ctx,
    signer: AccountId,
    id: WorkerId,
    profile: &WorkerProfile,
    attestation: Option<&Attestation>,
) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    validate_profile(ctx, profile)?;
    if worker.workloads > 0 {
        let old = &worker.profile;
        let busy = |problem: &str| CallError::WorkerBusy {
            worker: id,
            workloads: worker.workloads,
            problem: error_text(problem),
        };
        if !worker.used.fits_within(&profile.capacity) {
            return Err(busy("the new capacity is below what is in use"));
        }
        if profile.region != old.region
            || profile.tee_kinds != old.tee_kinds
            || profile.gpu_model != old.gpu_model
            || profile.level < old.level
        {
            return Err(busy(
                "region, TEE kinds, GPU model or a lower level would break placed workloads; stop (drain) the worker first",
            ));
        }
    }
    if matches!(
        worker.status,
        WorkerStatus::Started | WorkerStatus::Draining
    ) {
        let required = ctx
            .params
            .required_stake(profile.level)
            .ok_or(CallError::Overflow)?;
        if worker.stake < required {
            return Err(CallError::InsufficientStake {
                worker: id,
                required,
                staked: worker.stake,
            });
        }
    }
    match attestation {
        Some(a) => {
            worker.attested = check_attestation(ctx, &worker.operator, profile, a)?;
            ensure_identity_free(ctx, &a.keys.identity, Some(id))?;
            ctx.state
                .delete(&storage::keys::identity(&worker.keys.identity));
            storage::put(ctx.state, &storage::keys::identity(&a.keys.identity), &id);
            worker.keys = a.keys;
            worker.evidence = a.evidence.clone();
            ctx.emit(Event::WorkerAttested {
                worker: id,
                expires_at_ms: worker.attested.expires_at_ms,
            });
        }
        None => {
            if !profile.tee_kinds.contains(worker.evidence.kind) {
                return Err(CallError::EvidenceKindNotDeclared {
                    kind: worker.evidence.kind,
                });
            }
        }
    }
    worker.profile = profile.clone();
    storage::put_worker(ctx.state, &worker);
    if attestation.is_some() {
        // Secrets sealed to the old key can no longer be opened: those apps wait for a reseal.
        for workload in scheduling::workloads_on(ctx.state, id)? {
            if let Workload::App { app } = workload {
                let mut record = storage::app(ctx.state, app)?;
                apps::refresh_secrets_status(ctx, &mut record)?;
                storage::put_app(ctx.state, &record)?;
            }
        }
    }
    ctx.emit(Event::WorkerUpdated { worker: id });
    Ok(())
}

fn stake(ctx: &mut Ctx, signer: AccountId, id: WorkerId, amount: Balance) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    if amount.is_zero() {
        return Err(CallError::ZeroAmount);
    }
    balances::reserve(ctx.state, &signer, amount)?;
    worker.stake = worker
        .stake
        .checked_add(amount)
        .ok_or(CallError::Overflow)?;
    storage::put_worker(ctx.state, &worker);
    ctx.emit(Event::WorkerStaked {
        worker: id,
        amount,
        stake: worker.stake,
    });
    Ok(())
}

fn unstake(
    ctx: &mut Ctx,
    signer: AccountId,
    id: WorkerId,
    amount: Balance,
) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    if amount.is_zero() {
        return Err(CallError::ZeroAmount);
    }
    let remaining = worker
        .stake
        .checked_sub(amount)
        .ok_or(CallError::StakeTooLow {
            worker: id,
            staked: worker.stake,
        })?;
    let active = matches!(
        worker.status,
        WorkerStatus::Started | WorkerStatus::Draining
    );
    if active || worker.workloads > 0 {
        let required = ctx
            .params
            .required_stake(worker.profile.level)
            .ok_or(CallError::Overflow)?;
        if remaining < required {
            return Err(CallError::InsufficientStake {
                worker: id,
                required,
                staked: remaining,
            });
        }
    }
    let unlock_at = ctx.height.saturating_add(ctx.params.unbonding_blocks);
    worker
        .unbonding
        .try_push(Unbonding { amount, unlock_at })
        .map_err(|_| CallError::UnbondingQueueFull { worker: id })?;
    worker.stake = remaining;
    storage::put_worker(ctx.state, &worker);
    ctx.emit(Event::WorkerUnstaked {
        worker: id,
        amount,
        unlock_at,
    });
    Ok(())
}

fn start(ctx: &mut Ctx, signer: AccountId, id: WorkerId) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    if worker.status == WorkerStatus::Started {
        return Err(CallError::WrongWorkerStatus {
            worker: id,
            status: worker.status,
        });
    }
    let required = ctx
        .params
        .required_stake(worker.profile.level)
        .ok_or(CallError::Overflow)?;
    if worker.stake < required {
        return Err(CallError::InsufficientStake {
            worker: id,
            required,
            staked: worker.stake,
        });
    }
    if worker.status != WorkerStatus::Draining {
        // A fresh start owes reports from now on; a cancelled drain keeps its history.
        worker.liable_since = ctx.epoch();
    }
    worker.status = WorkerStatus::Started;
    storage::put_worker(ctx.state, &worker);
    ctx.emit(Event::WorkerStarted { worker: id });
    Ok(())
}

fn stop(ctx: &mut Ctx, signer: AccountId, id: WorkerId) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    if matches!(
        worker.status,
        WorkerStatus::Stopped | WorkerStatus::Draining
    ) {
        return Err(CallError::WrongWorkerStatus {
            worker: id,
            status: worker.status,
        });
    }
    if worker.workloads == 0 {
        worker.status = WorkerStatus::Stopped;
        ctx.emit(Event::WorkerStopped { worker: id });
    } else {
        worker.status = WorkerStatus::Draining;
        ctx.emit(Event::WorkerDraining { worker: id });
    }
    storage::put_worker(ctx.state, &worker);
    Ok(())
}

fn submit_work_report(
    ctx: &mut Ctx,
    signer: AccountId,
    signed: &SignedWorkReport,
) -> Result<(), CallError> {
    let report = &signed.report;
    let id = report.worker;
    operated_worker(ctx, signer, id)?;
    // A liveness sweep still on its way judges this worker first: a report sent after the
    // epoch's end must not save a worker from a judgement on what it missed before.
    if let Some(sweep) =
        storage::get::<storage::LivenessSweep>(ctx.state, storage::keys::LIVENESS_SWEEP)?
        && sweep.retry.is_none()
        && id.0 >= sweep.next
    {
        // Moves off a draining worker are left to the sweep's own budget.
        let mut no_moves = 0;
        enforce_liveness(ctx, id, sweep.epoch, &mut no_moves)?;
    }
    let worker = storage::worker(ctx.state, id)?;
    let current = ctx.epoch();
    if report.epoch >= current {
        return Err(CallError::EpochNotEnded {
            epoch: report.epoch,
            current,
        });
    }
    let oldest = current.saturating_sub(u64::from(ctx.params.proof_window_epochs));
    if report.epoch < oldest {
        return Err(CallError::ReportTooLate {
            epoch: report.epoch,
            oldest,
        });
    }
    if let Some(last) = worker.last_report_epoch
        && report.epoch <= last
    {
        return Err(CallError::ReportReplayed { worker: id, last });
    }
    let payload = report.signing_payload(&ctx.genesis_hash);
    if !wetee_types::Signature::Ed25519(signed.signature)
        .verify(&payload, &AccountId(worker.keys.identity))
    {
        return Err(CallError::ReportSignatureInvalid { worker: id });
    }
    let mut worker = worker;
    // Validity before any refresh: a lapsed worker is paid nothing for this report.
    let lapsed = !worker.attestation_valid(ctx.time_ms)
        || !crate::attestation::still_allowed(&ctx.attestation, &worker);
    if let Some(evidence) = &report.evidence {
        worker.attested = check_evidence(ctx, &worker.profile, &worker.keys, evidence)?;
        worker.evidence = evidence.clone();
        ctx.emit(Event::WorkerAttested {
            worker: id,
            expires_at_ms: worker.attested.expires_at_ms,
        });
    }
    if !worker.attestation_valid(ctx.time_ms) {
        return Err(CallError::AttestationExpired {
            worker: id,
            expired_at_ms: worker.attested.expires_at_ms,
        });
    }
    if !crate::attestation::still_allowed(&ctx.attestation, &worker) {
        return Err(CallError::EvidenceRejected {
            reason: error_text(
                "the attestation policy no longer allows this worker's TEE: send fresh evidence that meets it",
            ),
        });
    }
    // Record the report first: from here on, this epoch and older ones are settled for this
    // worker, so nothing closed below holds deposit for them.
    worker.last_report_epoch = Some(report.epoch);
    storage::put_worker(ctx.state, &worker);
    let mut listed = BTreeSet::new();
    let mut served = BTreeSet::new();
    let mut paid = Balance::ZERO;
    for proof in &report.apps {
        if proof.uptime_bps > FULL_UPTIME_BPS {
            return Err(CallError::InvalidUptime {
                uptime_bps: proof.uptime_bps,
            });
        }
        if !listed.insert(proof.app) {
            return Err(CallError::DuplicateAppProof { app: proof.app });
        }
        if proof.uptime_bps > 0 {
            served.insert(proof.app);
        }
        let amount = settlement::settle_app_proof(ctx, id, report.epoch, proof, lapsed)?;
        paid = paid.checked_add(amount).ok_or(CallError::Overflow)?;
    }
    for run in &report.runs {
        let amount = tasks::settle_run_report(ctx, id, report.epoch, run)?;
        paid = paid.checked_add(amount).ok_or(CallError::Overflow)?;
    }
    enforce_proofs(ctx, id, report.epoch, &listed, &served)?;
    if !paid.is_zero() {
        // Only work someone paid for builds reputation: empty or zero-uptime reports cost
        // nothing to send. Payments updated the stored worker: reload it.
        let mut worker = storage::worker(ctx.state, id)?;
        worker.score = worker.score.saturating_add(1).min(MAX_SCORE);
        storage::put_worker(ctx.state, &worker);
    }
    let earned = paid
        .checked_sub(
            paid.basis_points(ctx.params.protocol_fee_bps)
                .ok_or(CallError::Overflow)?,
        )
        .unwrap_or(Balance::ZERO);
    ctx.emit(Event::WorkReportAccepted {
        worker: id,
        epoch: report.epoch,
        earned,
    });
    Ok(())
}

/// Apps the worker held for the whole of `epoch` but did not serve (left out of the report, or
/// proven at zero uptime) count an unproven report; after `max_missed_proofs` in a row they
/// leave the worker for the pending queue. A worker that keeps reporting cannot keep an app it
/// no longer serves. Leaving an app out also costs the worker reputation; reporting it down
/// does not (the app itself may be failing).
fn enforce_proofs(
    ctx: &mut Ctx,
    worker: WorkerId,
    epoch: wetee_types::EpochNumber,
    listed: &BTreeSet<wetee_types::AppId>,
    served: &BTreeSet<wetee_types::AppId>,
) -> Result<(), CallError> {
    let epoch_start = ctx.chain.epoch_start(epoch);
    for workload in scheduling::workloads_on(ctx.state, worker)? {
        let Workload::App { app } = workload else {
            continue;
        };
        let mut record = storage::app(ctx.state, app)?;
        if served.contains(&app)
            || record.status == wetee_types::records::AppStatus::AwaitingSecrets
        {
            // An app waiting for its owner's secrets cannot be served: not the worker's fault.
            record.unproven_reports = 0;
        } else if record.placement.is_some_and(|p| p.since <= epoch_start) {
            record.unproven_reports = record.unproven_reports.saturating_add(1);
            if record.unproven_reports >= ctx.params.max_missed_proofs {
                apps::evict(ctx, &mut record, worker)?;
                if !listed.contains(&app) {
                    // The next placement then prefers other workers.
                    let mut loser = storage::worker(ctx.state, worker)?;
                    loser.score = loser.score.saturating_sub(EVICTION_PENALTY);
                    storage::put_worker(ctx.state, &loser);
                }
            }
        }
        storage::put_app(ctx.state, &record)?;
    }
    Ok(())
}

fn report_app_failure(
    ctx: &mut Ctx,
    signer: AccountId,
    subject: &wetee_types::transaction::FailureSubject,
    (reason, log_digest, log_tail): (
        &wetee_types::codec::BoundedString<256>,
        &wetee_types::Hash,
        &Option<wetee_types::records::SealedLog>,
    ),
    signature: &[u8; 64],
) -> Result<(), CallError> {
    let (id, app_id) = (subject.worker, subject.app);
    let worker = operated_worker(ctx, signer, id)?;
    // The TEE says the app cannot run, not the operator: its identity key signs.
    let payload = wetee_types::transaction::app_failure_payload(
        &ctx.genesis_hash,
        subject,
        reason,
        log_digest,
        log_tail,
    );
    if !wetee_types::Signature::Ed25519(*signature)
        .verify(&payload, &AccountId(worker.keys.identity))
    {
        return Err(CallError::ReportSignatureInvalid { worker: id });
    }
    let mut app = storage::app(ctx.state, app_id)?;
    // A report the operator held back cannot stop a later version, or the same one long after.
    let age = ctx.height.checked_sub(subject.observed_at);
    if subject.version != app.version
        || age.is_none_or(|age| age > wetee_types::transaction::FAILURE_REPORT_MAX_AGE_BLOCKS)
    {
        return Err(CallError::FailureReportStale {
            app: app_id,
            version: subject.version,
            observed_at: subject.observed_at,
        });
    }
    let running_here = app.status == wetee_types::records::AppStatus::Running
        && app.placement.is_some_and(|p| p.worker == id);
    if !running_here {
        return Err(CallError::AppNotOnWorker {
            app: app_id,
            worker: id,
        });
    }
    apps::stop(ctx, &mut app, wetee_types::records::StopReason::Failed)?;
    storage::put_app(ctx.state, &app)?;
    storage::put_app_failure(
        ctx.state,
        app_id,
        &wetee_types::records::AppFailure {
            worker: id,
            version: app.version,
            reason: reason.clone(),
            log_digest: *log_digest,
            log_tail: log_tail.clone(),
            at: ctx.height,
        },
    );
    ctx.emit(Event::AppFailed {
        app: app_id,
        worker: id,
        reason: reason.clone(),
    });
    Ok(())
}

fn withdraw(ctx: &mut Ctx, signer: AccountId, id: WorkerId) -> Result<(), CallError> {
    let mut worker = operated_worker(ctx, signer, id)?;
    let height = ctx.height;
    let unlocked = worker
        .unbonding
        .iter()
        .filter(|u| u.unlock_at <= height)
        .try_fold(Balance::ZERO, |sum, u| sum.checked_add(u.amount))
        .ok_or(CallError::Overflow)?;
    let amount = unlocked
        .checked_add(worker.earnings)
        .ok_or(CallError::Overflow)?;
    if amount.is_zero() {
        return Err(CallError::NothingToWithdraw { worker: id });
    }
    worker.unbonding.retain(|u| u.unlock_at > height);
    worker.earnings = Balance::ZERO;
    balances::unreserve(ctx.state, &signer, amount)?;
    storage::put_worker(ctx.state, &worker);
    ctx.emit(Event::WorkerWithdrew { worker: id, amount });
    Ok(())
}

fn file_complaint(
    ctx: &mut Ctx,
    reporter: AccountId,
    worker: WorkerId,
    evidence_hash: wetee_types::Hash,
    bond: Balance,
) -> Result<(), CallError> {
    storage::worker(ctx.state, worker)?;
    let minimum = ctx.params.complaint_bond;
    if bond < minimum || bond.is_zero() {
        return Err(CallError::BondTooLow { minimum });
    }
    balances::reserve(ctx.state, &reporter, bond)?;
    let id = ComplaintId(storage::next_id(ctx.state, "complaint")?);
    let complaint = Complaint {
        id,
        worker,
        reporter,
        evidence_hash,
        bond,
        filed_at: ctx.height,
        status: ComplaintStatus::Open,
    };
    storage::put(ctx.state, &storage::keys::complaint(id), &complaint);
    ctx.emit(Event::ComplaintFiled {
        complaint: id,
        worker,
        reporter,
    });
    Ok(())
}

fn open_complaint(ctx: &Ctx, id: ComplaintId) -> Result<Complaint, CallError> {
    let complaint = storage::complaint(ctx.state, id)?;
    if complaint.status != ComplaintStatus::Open {
        return Err(CallError::ComplaintResolved { complaint: id });
    }
    Ok(complaint)
}

fn slash(
    ctx: &mut Ctx,
    signer: AccountId,
    id: WorkerId,
    amount: Balance,
    complaint: Option<ComplaintId>,
) -> Result<(), CallError> {
    ensure_root(ctx, &signer)?;
    let mut worker = storage::worker(ctx.state, id)?;
    if amount.is_zero() {
        return Err(CallError::ZeroAmount);
    }
    let upheld = match complaint {
        Some(cid) => {
            let c = open_complaint(ctx, cid)?;
            if c.worker != id {
                return Err(CallError::ComplaintWorkerMismatch {
                    complaint: cid,
                    worker: id,
                });
            }
            Some(c)
        }
        None => None,
    };
    // Stake first, then unbonding amounts, oldest first.
    let mut left = amount;
    let from_stake = left.min(worker.stake);
    worker.stake = worker
        .stake
        .checked_sub(from_stake)
        .ok_or(CallError::Overflow)?;
    left = left.checked_sub(from_stake).ok_or(CallError::Overflow)?;
    for entry in worker.unbonding.as_mut_slice() {
        let take = left.min(entry.amount);
        entry.amount = entry.amount.checked_sub(take).ok_or(CallError::Overflow)?;
        left = left.checked_sub(take).ok_or(CallError::Overflow)?;
    }
    worker.unbonding.retain(|u| !u.amount.is_zero());
    let taken = amount.checked_sub(left).ok_or(CallError::Overflow)?;
    let treasury = ctx.treasury;
    balances::pay_from_reserved(ctx.state, &worker.operator, &treasury, taken, Credit::Free)?;
    storage::put_worker(ctx.state, &worker);
    if let Some(mut c) = upheld {
        c.status = ComplaintStatus::Upheld;
        balances::unreserve(ctx.state, &c.reporter, c.bond)?;
        storage::put(ctx.state, &storage::keys::complaint(c.id), &c);
    }
    ctx.emit(Event::WorkerSlashed {
        worker: id,
        amount: taken,
        complaint,
    });
    Ok(())
}

fn dismiss_complaint(ctx: &mut Ctx, signer: AccountId, id: ComplaintId) -> Result<(), CallError> {
    ensure_root(ctx, &signer)?;
    let mut complaint = open_complaint(ctx, id)?;
    complaint.status = ComplaintStatus::Dismissed;
    let treasury = ctx.treasury;
    balances::pay_from_reserved(
        ctx.state,
        &complaint.reporter,
        &treasury,
        complaint.bond,
        Credit::Free,
    )?;
    storage::put(ctx.state, &storage::keys::complaint(id), &complaint);
    ctx.emit(Event::ComplaintDismissed { complaint: id });
    Ok(())
}

/// The end of `epoch` (or a block after it, while its sweep goes on): suspend a worker that
/// stopped reporting, evicting its apps to the pending queue, or move a draining worker's apps
/// to other workers. Each move attempt spends one unit of `budget` (the drains' own; the
/// pending queue has another), so an epoch end does a bounded number of placement searches.
pub(crate) fn enforce_liveness(
    ctx: &mut Ctx,
    worker_id: WorkerId,
    epoch: u64,
    budget: &mut u32,
) -> Result<(), CallError> {
    let mut worker = storage::worker(ctx.state, worker_id)?;
    if worker.workloads == 0 {
        return Ok(());
    }
    if matches!(
        worker.status,
        WorkerStatus::Started | WorkerStatus::Draining
    ) && let Some(closed) = epoch.checked_sub(u64::from(ctx.params.proof_window_epochs))
    {
        let first_owed = worker
            .last_report_epoch
            .map_or(0, |e| e.saturating_add(1))
            .max(worker.liable_since);
        if let Some(gap) = closed.checked_sub(first_owed) {
            let missed = gap.saturating_add(1);
            if missed >= u64::from(ctx.params.max_missed_proofs) {
                worker.status = WorkerStatus::Suspended;
                worker.score = worker.score.saturating_sub(SUSPENSION_PENALTY);
                storage::put_worker(ctx.state, &worker);
                ctx.emit(Event::WorkerSuspended {
                    worker: worker_id,
                    missed_epochs: missed,
                });
            }
        }
    }
    match worker.status {
        WorkerStatus::Suspended => {
            for workload in scheduling::workloads_on(ctx.state, worker_id)? {
                if let Workload::App { app } = workload {
                    let mut record = storage::app(ctx.state, app)?;
                    apps::evict(ctx, &mut record, worker_id)?;
                    storage::put_app(ctx.state, &record)?;
                }
            }
        }
        WorkerStatus::Draining => {
            let apps_here: Vec<wetee_types::AppId> =
                scheduling::workloads_on(ctx.state, worker_id)?
                    .into_iter()
                    .filter_map(|w| match w {
                        Workload::App { app } => Some(app),
                        Workload::TaskRun { .. } => None,
                    })
                    .collect();
            // Start from a different app each epoch, and try a bounded number per worker, so
            // apps that cannot move never keep the others (or other workers) from their turn.
            let count = apps_here.len();
            let start = u64::try_from(count)
                .ok()
                .and_then(|n| epoch.checked_rem(n))
                .and_then(|r| usize::try_from(r).ok())
                .unwrap_or(0);
            let attempts = apps_here
                .iter()
                .cycle()
                .skip(start)
                .take(count.min(DRAIN_ATTEMPTS_PER_WORKER));
            for app in attempts {
                if *budget == 0 {
                    break;
                }
                *budget = budget.saturating_sub(1);
                apps::drain(ctx, *app, worker_id)?;
            }
        }
        _ => {}
    }
    Ok(())
}
