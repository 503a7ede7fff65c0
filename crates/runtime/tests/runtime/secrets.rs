//! Sealed secrets: an app waits for them on each new worker; only names it declares, each
//! change a new revision; the chain never holds a value in the clear.

use wetee_runtime::testing::*;
use wetee_types::codec::BoundedVec;
use wetee_types::error::error_text;
use wetee_types::records::{
    AppSecrets, AppStatus, SealedSecret, merge_secrets, secrets_signing_payload,
};
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{AppId, Call, CallError, Event, Hash, Keypair, TeeKind, WorkerId};

/// Seals `values` the way `wetee app secrets set` does, to `worker`'s current sealing key.
fn sealed(
    chain: &TestChain,
    owner: &str,
    app: AppId,
    worker: WorkerId,
    revision: u32,
    values: &[(&str, &str)],
) -> Vec<SealedSecret> {
    let key = chain.worker(worker).keys.sealing;
    let owner_key = chain.key(owner);
    let owner_public = wetee_sealing::public_key(&wetee_sealing::owner_secret(owner_key));
    values
        .iter()
        .map(|(name, value)| {
            let id = wetee_sealing::SecretId {
                genesis_hash: &chain.genesis_hash,
                app,
                name,
                revision,
            };
            SealedSecret {
                name: wetee_types::codec::BoundedString::try_new(*name).unwrap(),
                revision,
                for_worker: wetee_sealing::seal(
                    &key,
                    &wetee_sealing::for_worker(&id, worker, &key),
                    value.as_bytes(),
                )
                .unwrap(),
                for_owner: wetee_sealing::seal(
                    &owner_public,
                    &wetee_sealing::for_owner(&id, &owner_key.account_id()),
                    value.as_bytes(),
                )
                .unwrap(),
            }
        })
        .collect()
}

/// The call `wetee app secrets set` sends: the secrets, and alice's signature over the record
/// they make, allowing the app's current image.
fn set(
    chain: &TestChain,
    app: AppId,
    worker: WorkerId,
    key: [u8; 32],
    secrets: Vec<SealedSecret>,
) -> Call {
    let stored = wetee_runtime::query::app_secrets(&chain.state, app).unwrap();
    let revision = stored.as_ref().map_or(0, |s| s.revision) + 1;
    let merged = merge_secrets(stored.as_ref(), &secrets, &[]);
    let allowed =
        BoundedVec::try_new(vec![Hash(chain.app(app).spec.container.image.digest)]).unwrap();
    let payload = secrets_signing_payload(
        &chain.genesis_hash,
        app,
        worker,
        &key,
        revision,
        &merged,
        &allowed,
    );
    Call::Apps(AppsCall::SetSecrets {
        app,
        worker,
        sealing_key: key,
        set: BoundedVec::try_new(secrets).unwrap(),
        remove: BoundedVec::new(),
        allowed_images: allowed,
        signature: chain.key("alice").sign(&payload),
    })
}

fn stored(chain: &TestChain, app: AppId) -> AppSecrets {
    wetee_runtime::query::app_secrets(&chain.state, app)
        .unwrap()
        .unwrap()
}

/// What the worker's TEE gets out of the chain's record for `name`.
fn open_as(chain: &TestChain, identity: &Keypair, app: AppId, name: &str) -> Option<Vec<u8>> {
    let record = stored(chain, app);
    let secret = record.get(name)?;
    let id = wetee_sealing::SecretId {
        genesis_hash: &chain.genesis_hash,
        app,
        name,
        revision: secret.revision,
    };
    let aad = wetee_sealing::for_worker(&id, record.worker, &record.sealing_key);
    wetee_sealing::open(
        &TestChain::sealing_secret(identity),
        &aad,
        &secret.for_worker,
    )
    .ok()
    .map(|v| v.to_vec())
}

fn app_with_secrets(chain: &mut TestChain, names: &[&str]) -> AppId {
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.container.secrets = BoundedVec::try_new(
        names
            .iter()
            .map(|n| wetee_types::codec::BoundedString::try_new(*n).unwrap())
            .collect(),
    )
    .unwrap();
    chain.create_app("alice", spec, tokens(20))
}

#[test]
fn an_app_waits_for_its_secrets_and_only_its_workers_tee_can_open_them() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let other = chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = app_with_secrets(&mut chain, &["API_TOKEN"]);
    let placed_on = chain.app(app).placement.unwrap().worker;
    assert_eq!(chain.app(app).status, AppStatus::AwaitingSecrets);
    assert!(chain.tx_events.contains(&Event::AppAwaitingSecrets {
        app,
        worker: placed_on
    }));

    let key = chain.worker(placed_on).keys.sealing;
    let secrets = sealed(
        &chain,
        "alice",
        app,
        placed_on,
        1,
        &[("API_TOKEN", "tok-8d1f0c")],
    );
    let events = chain.ok("alice", set(&chain, app, placed_on, key, secrets));
    assert!(events.contains(&Event::AppSecretsSet {
        app,
        worker: placed_on
    }));
    assert_eq!(chain.app(app).status, AppStatus::Running);

    let mine = chain.identity(placed_on);
    let theirs = chain.identity(if placed_on == worker { other } else { worker });
    assert_eq!(
        open_as(&chain, &mine, app, "API_TOKEN").unwrap(),
        b"tok-8d1f0c"
    );
    assert_eq!(open_as(&chain, &theirs, app, "API_TOKEN"), None);
    // The value is nowhere in the chain's state.
    for (key, value) in wetee_runtime::storage::scan_prefix(&chain.state, b"") {
        assert!(!value.windows(10).any(|w| w == b"tok-8d1f0c"), "{key:?}");
    }
    chain.check_invariants();
}

#[test]
fn a_worker_is_not_paid_for_an_app_waiting_for_its_secrets() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = app_with_secrets(&mut chain, &["API_TOKEN"]);
    chain.advance_to_epoch(1);
    // It claims full uptime for an app it cannot have started: paid nothing.
    let events = chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::AppPaid { amount, .. } if amount.is_zero()
    )));
    assert!(chain.worker(worker).earnings.is_zero());
    // Secrets set mid-epoch: only the blocks after that are paid.
    chain.advance(5);
    let key = chain.worker(worker).keys.sealing;
    let secrets = sealed(&chain, "alice", app, worker, 1, &[("API_TOKEN", "t")]);
    chain.ok("alice", set(&chain, app, worker, key, secrets));
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    let full_epoch = chain.app(app).placement.unwrap().price_per_epoch;
    let earned = chain.worker(worker).earnings;
    assert!(
        !earned.is_zero() && earned < full_epoch,
        "{earned} of {full_epoch}"
    );
    chain.check_invariants();
}

#[test]
fn secrets_must_be_declared_current_and_sealed_to_the_apps_worker_key() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = app_with_secrets(&mut chain, &["API_TOKEN", "DB_PASSWORD"]);
    let key = chain.worker(worker).keys.sealing;
    let token = |chain: &TestChain, revision| {
        sealed(
            chain,
            "alice",
            app,
            worker,
            revision,
            &[("API_TOKEN", "one")],
        )
    };
    chain.fails(
        "bob",
        set(&chain, app, worker, key, token(&chain, 1)),
        CallError::NotAppOwner { app },
    );
    chain.fails(
        "alice",
        set(
            &chain,
            app,
            worker,
            key,
            sealed(&chain, "alice", app, worker, 1, &[("OTHER", "x")]),
        ),
        CallError::SecretNotDeclared {
            name: error_text("OTHER"),
        },
    );
    chain.fails(
        "alice",
        set(&chain, app, worker, key, token(&chain, 2)),
        CallError::SecretRevision {
            name: error_text("API_TOKEN"),
            expected: 1,
        },
    );
    let twice = [token(&chain, 1), token(&chain, 1)].concat();
    chain.fails(
        "alice",
        set(&chain, app, worker, key, twice),
        CallError::DuplicateSecret {
            name: error_text("API_TOKEN"),
        },
    );
    chain.fails(
        "alice",
        set(&chain, app, WorkerId(99), key, token(&chain, 1)),
        CallError::SecretsWrongWorker {
            app,
            worker: WorkerId(99),
        },
    );
    chain.fails(
        "alice",
        set(&chain, app, worker, [5; 32], token(&chain, 1)),
        CallError::SealingKeyChanged { worker },
    );

    // One of two secrets: still waiting for the other.
    let first = token(&chain, 1);
    chain.ok("alice", set(&chain, app, worker, key, first.clone()));
    assert_eq!(chain.app(app).status, AppStatus::AwaitingSecrets);
    // Replaying the first call's ciphertext as is: an old revision.
    chain.fails(
        "alice",
        set(&chain, app, worker, key, first.clone()),
        CallError::SecretRevision {
            name: error_text("API_TOKEN"),
            expected: 2,
        },
    );
    // Relabelled as the current revision it is stored, but the TEE cannot open it.
    let mut relabelled = first;
    relabelled[0].revision = 2;
    chain.ok("alice", set(&chain, app, worker, key, relabelled));
    let identity = chain.identity(worker);
    assert_eq!(open_as(&chain, &identity, app, "API_TOKEN"), None);

    // Partial updates: the password alone, then the token rotated; each keeps the other.
    let password = sealed(&chain, "alice", app, worker, 3, &[("DB_PASSWORD", "pw")]);
    chain.ok("alice", set(&chain, app, worker, key, password));
    assert_eq!(chain.app(app).status, AppStatus::Running);
    let rotated = sealed(&chain, "alice", app, worker, 4, &[("API_TOKEN", "two")]);
    chain.ok("alice", set(&chain, app, worker, key, rotated));
    assert_eq!(
        open_as(&chain, &identity, app, "API_TOKEN").unwrap(),
        b"two"
    );
    assert_eq!(
        open_as(&chain, &identity, app, "DB_PASSWORD").unwrap(),
        b"pw"
    );
    let record = stored(&chain, app);
    assert_eq!(record.revision, 4);
    assert_eq!(record.get("DB_PASSWORD").unwrap().revision, 3);
}

#[test]
fn an_app_moved_to_another_worker_waits_until_every_secret_is_resealed() {
    let mut chain = TestChain::new();
    let first = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = app_with_secrets(&mut chain, &["API_TOKEN", "DB_PASSWORD"]);
    let values = [("API_TOKEN", "tok"), ("DB_PASSWORD", "pw")];
    let key = chain.worker(first).keys.sealing;
    chain.ok(
        "alice",
        set(
            &chain,
            app,
            first,
            key,
            sealed(&chain, "alice", app, first, 1, &values),
        ),
    );
    assert_eq!(chain.app(app).status, AppStatus::Running);

    let second = chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.ok("eve", Call::Workers(WorkersCall::Stop { worker: first }));
    chain.advance_to_epoch(1);
    assert_eq!(chain.app(app).placement.unwrap().worker, second);
    assert_eq!(chain.app(app).status, AppStatus::AwaitingSecrets);

    // The owner's copies open with the owner's key alone: that is how `reseal` works.
    let record = stored(&chain, app);
    let owner = chain.key("alice").clone();
    for secret in record.secrets.iter() {
        let id = wetee_sealing::SecretId {
            genesis_hash: &chain.genesis_hash,
            app,
            name: secret.name.as_str(),
            revision: secret.revision,
        };
        let aad = wetee_sealing::for_owner(&id, &owner.account_id());
        assert!(
            wetee_sealing::open(
                &wetee_sealing::owner_secret(&owner),
                &aad,
                &secret.for_owner
            )
            .is_ok()
        );
    }
    let new_key = chain.worker(second).keys.sealing;
    chain.fails(
        "alice",
        set(
            &chain,
            app,
            second,
            new_key,
            sealed(&chain, "alice", app, second, 2, &values[..1]),
        ),
        CallError::SecretNotResealed {
            name: error_text("DB_PASSWORD"),
        },
    );
    chain.ok(
        "alice",
        set(
            &chain,
            app,
            second,
            new_key,
            sealed(&chain, "alice", app, second, 2, &values),
        ),
    );
    assert_eq!(chain.app(app).status, AppStatus::Running);
    let identity = chain.identity(second);
    assert_eq!(
        open_as(&chain, &identity, app, "DB_PASSWORD").unwrap(),
        b"pw"
    );
    chain.check_invariants();
}

#[test]
fn only_what_the_owner_signed_is_stored_and_only_allowed_images_get_the_secrets() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = app_with_secrets(&mut chain, &["API_TOKEN"]);
    let key = chain.worker(worker).keys.sealing;
    let secrets = sealed(&chain, "alice", app, worker, 1, &[("API_TOKEN", "t")]);

    // Signed by someone else, or over another record: refused, nothing stored.
    let Call::Apps(AppsCall::SetSecrets {
        set: batch,
        allowed_images,
        ..
    }) = set(&chain, app, worker, key, secrets.clone())
    else {
        unreachable!()
    };
    let payload = secrets_signing_payload(
        &chain.genesis_hash,
        app,
        worker,
        &key,
        1,
        &batch,
        &allowed_images,
    );
    let forged = Call::Apps(AppsCall::SetSecrets {
        app,
        worker,
        sealing_key: key,
        set: batch.clone(),
        remove: BoundedVec::new(),
        allowed_images: allowed_images.clone(),
        signature: chain.key("bob").sign(&payload),
    });
    assert_eq!(chain.failure("alice", forged), CallError::SecretsSignature);
    let mut other_image = allowed_images.clone().into_inner();
    other_image[0] = Hash::of(b"another image");
    let widened = Call::Apps(AppsCall::SetSecrets {
        app,
        worker,
        sealing_key: key,
        set: batch,
        remove: BoundedVec::new(),
        allowed_images: BoundedVec::try_new(other_image).unwrap(),
        signature: chain.key("alice").sign(&payload),
    });
    assert_eq!(chain.failure("alice", widened), CallError::SecretsSignature);
    assert!(
        wetee_runtime::query::app_secrets(&chain.state, app)
            .unwrap()
            .is_none()
    );

    chain.ok("alice", set(&chain, app, worker, key, secrets));
    let record = stored(&chain, app);
    let owner = chain.key("alice").account_id();
    assert!(record.signed_by(&owner, &chain.genesis_hash, app));
    let image = chain.app(app).spec.container.image.digest;
    assert!(record.allows_image(&image));

    // An update to another image needs the owner's grant, signed over the record with it.
    let mut spec = chain.app(app).spec.clone();
    spec.container.image.digest = [0xab; 32];
    let update = |grant| {
        Call::Apps(AppsCall::Update {
            app,
            spec: spec.clone(),
            secrets_grant: grant,
        })
    };
    assert_eq!(
        chain.failure("alice", update(None)),
        CallError::ImageNotAllowedSecrets
    );
    let mut granted = record.clone();
    granted.revision += 1;
    granted.allowed_images = BoundedVec::try_new(vec![Hash([0xab; 32])]).unwrap();
    let payload = granted.signing_payload(&chain.genesis_hash, app);
    let grant = |signer: &str| wetee_types::transaction::SecretsGrant {
        allowed_images: granted.allowed_images.clone(),
        signature: chain.key(signer).sign(&payload),
    };
    let by_bob = grant("bob");
    let by_alice = grant("alice");
    assert_eq!(
        chain.failure("alice", update(Some(by_bob))),
        CallError::SecretsSignature
    );
    chain.ok("alice", update(Some(by_alice)));
    let before = record.revision;
    let record = stored(&chain, app);
    assert!(record.allows_image(&[0xab; 32]) && !record.allows_image(&image));
    // A grant is a new revision: a worker that gave the new one never goes back to the old.
    assert_eq!(record.revision, before + 1);
    assert!(record.signed_by(&owner, &chain.genesis_hash, app));
    chain.check_invariants();
}
