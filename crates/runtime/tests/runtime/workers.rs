//! Worker registration, staking, lifecycle, complaints and slashing.

use wetee_runtime::testing::*;
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::error::error_text;
use wetee_types::params::Params;
use wetee_types::records::{AppStatus, ComplaintStatus, Evidence, StopReason, WorkerStatus};
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{
    Balance, Call, CallError, ComplaintId, Event, Hash, KeyScheme, Keypair, TeeKind, WorkerId,
};

fn workers(call: WorkersCall) -> Call {
    Call::Workers(call)
}

#[test]
fn registering_records_the_worker_and_its_operator() {
    let mut chain = TestChain::new();
    let profile = chain.profile("eu", &[TeeKind::Simulated, TeeKind::Sgx], 4000, 8192);
    let id = chain.register("eve", profile.clone());
    let worker = chain.worker(id);
    assert_eq!(worker.operator, chain.who("eve"));
    assert_eq!(worker.status, WorkerStatus::Registered);
    assert_eq!(worker.profile, profile);
    assert_eq!(worker.stake, Balance::ZERO);
    assert!(chain.tx_events.contains(&Event::WorkerRegistered {
        worker: id,
        operator: chain.who("eve")
    }));
    chain.check_invariants();
}

#[test]
fn an_invalid_profile_is_refused_naming_the_field() {
    let mut chain = TestChain::new();
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 0, 8192);
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                TestChain::keys_for(&identity),
                chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
            ),
        }),
        CallError::InvalidWorkerProfile {
            field: error_text("capacity"),
            problem: error_text("CPU and memory must be greater than zero"),
        },
    );
    profile.capacity.cpu_millicores = 1000;
    profile.region = wetee_types::codec::BoundedString::try_new("EU West").unwrap();
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile,
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                TestChain::keys_for(&identity),
                chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
            ),
        }),
        CallError::InvalidWorkerProfile {
            field: error_text("region"),
            problem: error_text("must be lower-case letters, digits or `-`"),
        },
    );
}

#[test]
fn a_production_chain_refuses_the_simulated_tee() {
    let mut chain = TestChain::with_config(Params::production(), production_policy());
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
    let profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile,
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                TestChain::keys_for(&identity),
                chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
            ),
        }),
        CallError::SimulatedTeeNotAllowed,
    );
}

#[test]
fn evidence_must_come_from_a_declared_tee_and_pass_the_verifier() {
    let mut chain = TestChain::new();
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
    let profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                TestChain::keys_for(&identity),
                chain.evidence(TeeKind::SevSnp, &TestChain::keys_for(&identity)),
            ),
        }),
        CallError::EvidenceKindNotDeclared {
            kind: TeeKind::SevSnp,
        },
    );
    let reason = chain.evidence_rejection(
        "eve",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                TestChain::keys_for(&identity),
                Evidence {
                    kind: TeeKind::Simulated,
                    data: BoundedVec::new(),
                    nonce_height: 0,
                },
            ),
        }),
    );
    assert!(reason.contains("malformed"), "{reason}");
    // Not a point on the curve: it cannot have signed the key proof.
    let mut keys = TestChain::keys_for(&identity);
    keys.identity = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| !wetee_types::crypto::is_valid_ed25519_public_key(k))
        .unwrap();
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile,
            attestation: chain.attestation(
                &chain.who("eve"),
                &identity,
                keys,
                chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
            ),
        }),
        CallError::KeyProofInvalid,
    );
}

#[test]
fn staking_reserves_the_operators_funds_and_only_the_operator_may_stake() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let free = chain.free("eve");
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(150),
        }),
    );
    assert_eq!(chain.worker(id).stake, tokens(150));
    assert_eq!(chain.reserved("eve"), tokens(150));
    assert!(
        chain.free("eve")
            < free
                .checked_sub(tokens(150))
                .unwrap()
                .checked_add(Balance(1))
                .unwrap()
    );
    chain.fails(
        "alice",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(1),
        }),
        CallError::NotWorkerOperator { worker: id },
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: Balance::ZERO,
        }),
        CallError::ZeroAmount,
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Stake {
            worker: WorkerId(99),
            amount: tokens(1),
        }),
        CallError::WorkerNotFound {
            worker: WorkerId(99),
        },
    );
    chain.check_invariants();
}

#[test]
fn starting_needs_the_stake_the_level_requires() {
    let mut chain = TestChain::new();
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    profile.level = 2;
    let id = chain.register("eve", profile);
    let required = chain.params().required_stake(2).unwrap();
    assert_eq!(required, tokens(300));
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(200),
        }),
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Start { worker: id }),
        CallError::InsufficientStake {
            worker: id,
            required,
            staked: tokens(200),
        },
    );
    chain.fails(
        "alice",
        workers(WorkersCall::Start { worker: id }),
        CallError::NotWorkerOperator { worker: id },
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(100),
        }),
    );
    chain.ok("eve", workers(WorkersCall::Start { worker: id }));
    assert_eq!(chain.worker(id).status, WorkerStatus::Started);
    chain.fails(
        "eve",
        workers(WorkersCall::Start { worker: id }),
        CallError::WrongWorkerStatus {
            worker: id,
            status: WorkerStatus::Started,
        },
    );
}

#[test]
fn unstaking_unbonds_and_a_started_worker_keeps_its_required_stake() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(50),
        }),
    );
    let required = chain.params().required_stake(0).unwrap();
    chain.fails(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(51),
        }),
        CallError::InsufficientStake {
            worker: id,
            required,
            staked: tokens(99),
        },
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(1000),
        }),
        CallError::StakeTooLow {
            worker: id,
            staked: tokens(150),
        },
    );
    chain.fails(
        "alice",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(1),
        }),
        CallError::NotWorkerOperator { worker: id },
    );
    let events = chain.ok(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(50),
        }),
    );
    let unlock_at = chain.height + chain.params().unbonding_blocks;
    assert_eq!(
        events,
        vec![Event::WorkerUnstaked {
            worker: id,
            amount: tokens(50),
            unlock_at
        }]
    );
    assert_eq!(chain.worker(id).stake, tokens(100));
    // Still reserved while unbonding.
    assert_eq!(chain.reserved("eve"), tokens(150));
    chain.check_invariants();
}

#[test]
fn unbonded_stake_is_withdrawable_only_after_the_unbonding_period() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(100),
        }),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(40),
        }),
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Withdraw { worker: id }),
        CallError::NothingToWithdraw { worker: id },
    );
    chain.advance(chain.params().unbonding_blocks);
    let free = chain.free("eve");
    let tx = chain.transaction(
        chain.key("eve"),
        workers(WorkersCall::Withdraw { worker: id }),
    );
    let receipt = chain.apply(&tx).unwrap();
    assert!(receipt.is_success());
    assert_eq!(
        chain.free("eve"),
        free.checked_add(tokens(40))
            .unwrap()
            .checked_sub(tx.tx.fee)
            .unwrap()
    );
    assert_eq!(chain.reserved("eve"), tokens(60));
    assert!(chain.worker(id).unbonding.is_empty());
    chain.fails(
        "alice",
        workers(WorkersCall::Withdraw { worker: id }),
        CallError::NotWorkerOperator { worker: id },
    );
    chain.check_invariants();
}

#[test]
fn the_unbonding_queue_is_bounded() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(100),
        }),
    );
    for _ in 0..wetee_types::records::MAX_UNBONDING {
        chain.ok(
            "eve",
            workers(WorkersCall::Unstake {
                worker: id,
                amount: tokens(1),
            }),
        );
    }
    chain.fails(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(1),
        }),
        CallError::UnbondingQueueFull { worker: id },
    );
}

#[test]
fn stopping_an_empty_worker_stops_it_at_once() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.fails(
        "alice",
        workers(WorkersCall::Stop { worker: id }),
        CallError::NotWorkerOperator { worker: id },
    );
    let events = chain.ok("eve", workers(WorkersCall::Stop { worker: id }));
    assert_eq!(events, vec![Event::WorkerStopped { worker: id }]);
    chain.fails(
        "eve",
        workers(WorkersCall::Stop { worker: id }),
        CallError::WrongWorkerStatus {
            worker: id,
            status: WorkerStatus::Stopped,
        },
    );
    // A stopped worker may unstake everything.
    chain.ok(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(100),
        }),
    );
}

#[test]
fn updating_a_profile_is_for_the_operator_and_new_prices_apply_to_new_leases_only() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    let old_price = chain.app(app).placement.unwrap().price_per_epoch;
    let mut profile = chain.worker(id).profile;
    profile.prices.cpu_millicore = Balance(profile.prices.cpu_millicore.0 * 2);
    chain.fails(
        "alice",
        workers(WorkersCall::Update {
            worker: id,
            profile: profile.clone(),
            attestation: None,
        }),
        CallError::NotWorkerOperator { worker: id },
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile: profile.clone(),
            attestation: None,
        }),
    );
    assert_eq!(chain.worker(id).profile, profile);
    assert_eq!(chain.app(app).placement.unwrap().price_per_epoch, old_price);
    let second = chain.create_app(
        "bob",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert!(chain.app(second).placement.unwrap().price_per_epoch > old_price);
    chain.check_invariants();
}

#[test]
fn a_busy_worker_cannot_shrink_below_use_or_change_what_its_workloads_rely_on() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.create_app(
        "alice",
        TestChain::app_spec(3000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    let mut smaller = chain.worker(id).profile;
    smaller.capacity.cpu_millicores = 2000;
    chain.fails(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile: smaller,
            attestation: None,
        }),
        CallError::WorkerBusy {
            worker: id,
            workloads: 1,
            problem: error_text("the new capacity is below what is in use"),
        },
    );
    let mut moved = chain.worker(id).profile;
    moved.region = wetee_types::codec::BoundedString::try_new("us").unwrap();
    let tx = chain.transaction(
        chain.key("eve"),
        workers(WorkersCall::Update {
            worker: id,
            profile: moved,
            attestation: None,
        }),
    );
    let receipt = chain.apply(&tx).unwrap();
    assert!(matches!(
        receipt.outcome,
        wetee_types::Outcome::Failed {
            error: CallError::WorkerBusy { .. }
        }
    ));
    chain.check_invariants();
}

#[test]
fn rotating_keys_needs_fresh_evidence() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let profile = chain.worker(id).profile;
    let fresh = Keypair::from_seed(KeyScheme::Ed25519, [77; 32]);
    // Evidence bound to the old keys does not vouch for new ones.
    let old_keys = chain.worker(id).keys;
    let reason = chain.evidence_rejection(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile: profile.clone(),
            attestation: Some(chain.attestation(
                &chain.who("eve"),
                &fresh,
                TestChain::keys_for(&fresh),
                chain.evidence(TeeKind::Simulated, &old_keys),
            )),
        }),
    );
    assert!(reason.contains("report_data"), "{reason}");
    chain.ok(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile,
            attestation: Some(chain.attestation(
                &chain.who("eve"),
                &fresh,
                TestChain::keys_for(&fresh),
                chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&fresh)),
            )),
        }),
    );
    assert_eq!(chain.worker(id).keys.identity, fresh.account_id().0);
}

#[test]
fn a_complaint_locks_a_bond_of_at_least_the_parameter() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let minimum = chain.params().complaint_bond;
    chain.fails(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: id,
            evidence_hash: Hash::of(b"bad"),
            bond: Balance(minimum.0 - 1),
        }),
        CallError::BondTooLow { minimum },
    );
    chain.fails(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: WorkerId(9),
            evidence_hash: Hash::of(b"bad"),
            bond: minimum,
        }),
        CallError::WorkerNotFound {
            worker: WorkerId(9),
        },
    );
    let events = chain.ok(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: id,
            evidence_hash: Hash::of(b"bad"),
            bond: minimum,
        }),
    );
    assert_eq!(
        events,
        vec![Event::ComplaintFiled {
            complaint: ComplaintId(1),
            worker: id,
            reporter: chain.who("alice")
        }]
    );
    assert_eq!(chain.reserved("alice"), minimum);
    chain.check_invariants();
}

#[test]
fn only_root_slashes_and_an_upheld_complaint_returns_its_bond() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let bond = chain.params().complaint_bond;
    chain.ok(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: id,
            evidence_hash: Hash::of(b"bad"),
            bond,
        }),
    );
    let slash = workers(WorkersCall::Slash {
        worker: id,
        amount: tokens(30),
        complaint: Some(ComplaintId(1)),
    });
    chain.fails("alice", slash.clone(), CallError::NotRoot);
    chain.fails("eve", slash.clone(), CallError::NotRoot);
    let treasury = chain.treasury_free();
    let root = chain.root.clone();
    let tx = chain.transaction(&root, slash.clone());
    assert!(chain.apply(&tx).unwrap().is_success());
    assert_eq!(chain.worker(id).stake, tokens(70));
    assert_eq!(
        chain.treasury_free(),
        treasury
            .checked_add(tokens(30))
            .unwrap()
            .checked_add(tx.tx.fee)
            .unwrap()
    );
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    let complaint = wetee_runtime::query::complaint(&chain.state, ComplaintId(1))
        .unwrap()
        .unwrap();
    assert_eq!(complaint.status, ComplaintStatus::Upheld);
    chain.fails_as(
        &root,
        slash,
        CallError::ComplaintResolved {
            complaint: ComplaintId(1),
        },
    );
    chain.check_invariants();
}

#[test]
fn a_slash_reaches_unbonding_stake_and_stops_at_what_exists() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(100),
        }),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: tokens(60),
        }),
    );
    let root = chain.root.clone();
    let events = chain.ok_as(
        &root,
        workers(WorkersCall::Slash {
            worker: id,
            amount: tokens(500),
            complaint: None,
        }),
    );
    assert_eq!(
        events,
        vec![Event::WorkerSlashed {
            worker: id,
            amount: tokens(100),
            complaint: None
        }]
    );
    let worker = chain.worker(id);
    assert_eq!(worker.stake, Balance::ZERO);
    assert!(worker.unbonding.is_empty());
    assert_eq!(chain.reserved("eve"), Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn a_complaint_about_another_worker_cannot_be_upheld_by_this_slash() {
    let mut chain = TestChain::new();
    let a = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let b = chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 4000, 8192),
    );
    let bond = chain.params().complaint_bond;
    chain.ok(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: a,
            evidence_hash: Hash::of(b"x"),
            bond,
        }),
    );
    let root = chain.root.clone();
    chain.fails_as(
        &root,
        workers(WorkersCall::Slash {
            worker: b,
            amount: tokens(1),
            complaint: Some(ComplaintId(1)),
        }),
        CallError::ComplaintWorkerMismatch {
            complaint: ComplaintId(1),
            worker: b,
        },
    );
}

#[test]
fn a_dismissed_complaint_forfeits_its_bond_to_the_treasury() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let bond = chain.params().complaint_bond;
    chain.ok(
        "alice",
        workers(WorkersCall::FileComplaint {
            worker: id,
            evidence_hash: Hash::of(b"x"),
            bond,
        }),
    );
    let dismiss = workers(WorkersCall::DismissComplaint {
        complaint: ComplaintId(1),
    });
    chain.fails("eve", dismiss.clone(), CallError::NotRoot);
    let root = chain.root.clone();
    let treasury = chain.treasury_free();
    let tx = chain.transaction(&root, dismiss.clone());
    assert!(chain.apply(&tx).unwrap().is_success());
    assert_eq!(
        chain.treasury_free(),
        treasury
            .checked_add(bond)
            .unwrap()
            .checked_add(tx.tx.fee)
            .unwrap()
    );
    chain.fails_as(
        &root,
        dismiss,
        CallError::ComplaintResolved {
            complaint: ComplaintId(1),
        },
    );
    chain.fails_as(
        &root,
        workers(WorkersCall::DismissComplaint {
            complaint: ComplaintId(7),
        }),
        CallError::ComplaintNotFound {
            complaint: ComplaintId(7),
        },
    );
    chain.check_invariants();
}

#[test]
fn a_draining_worker_takes_no_new_apps_and_stops_when_empty() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    let events = chain.ok("eve", workers(WorkersCall::Stop { worker: id }));
    assert_eq!(events, vec![Event::WorkerDraining { worker: id }]);
    let second = chain.create_app(
        "bob",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(
        chain.app(second).status,
        wetee_types::records::AppStatus::Pending
    );
    chain.ok("alice", Call::Apps(AppsCall::Stop { app }));
    assert_eq!(chain.worker(id).status, WorkerStatus::Stopped);
    chain.check_invariants();
}

#[test]
fn a_drained_worker_hands_its_apps_to_another_at_the_epoch_end() {
    let mut chain = TestChain::new();
    let old = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.ok("eve", workers(WorkersCall::Stop { worker: old }));
    // Nowhere else to go: the app stays and keeps serving.
    chain.advance_to_epoch(1);
    assert_eq!(chain.app(app).placement.unwrap().worker, old);
    let new = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(2);
    assert_eq!(chain.app(app).placement.unwrap().worker, new);
    assert_eq!(chain.worker(old).status, WorkerStatus::Stopped);
    chain.check_invariants();
}

#[test]
fn every_profile_field_is_checked() {
    let mut chain = TestChain::new();
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
    let base = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    type Change = fn(&mut wetee_types::records::WorkerProfile);
    let cases: Vec<(Change, &str)> = vec![
        (
            |p| p.endpoint = wetee_types::codec::BoundedString::try_new("").unwrap(),
            "endpoint",
        ),
        (
            |p| p.endpoint = wetee_types::codec::BoundedString::try_new("http://a b").unwrap(),
            "endpoint",
        ),
        (|p| p.level = 11, "level"),
        (|p| p.capacity.memory_mib = 0, "capacity"),
        (|p| p.capacity.gpus = 1, "gpu_model"),
        (
            |p| p.gpu_model = Some(wetee_types::codec::BoundedString::try_new("h100").unwrap()),
            "gpu_model",
        ),
        (|p| p.tee_kinds = wetee_types::TeeKinds::EMPTY, "tee_kinds"),
        (|p| p.prices.gpu = Balance(u128::MAX), "prices"),
    ];
    for (change, field) in cases {
        let mut profile = base.clone();
        change(&mut profile);
        let tx = chain.transaction(
            chain.key("eve"),
            workers(WorkersCall::Register {
                profile,
                attestation: chain.attestation(
                    &chain.who("eve"),
                    &identity,
                    TestChain::keys_for(&identity),
                    chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
                ),
            }),
        );
        match chain.apply(&tx).unwrap().outcome {
            wetee_types::Outcome::Failed {
                error: CallError::InvalidWorkerProfile { field: f, .. },
            } => assert_eq!(f.as_str(), field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(query_workers_is_empty(&chain));
}

fn query_workers_is_empty(chain: &TestChain) -> bool {
    wetee_runtime::query::workers(&chain.state)
        .unwrap()
        .is_empty()
}

#[test]
fn raising_the_level_of_a_started_worker_needs_the_stake_for_it() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let mut profile = chain.worker(id).profile;
    profile.level = 1;
    chain.fails(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile: profile.clone(),
            attestation: None,
        }),
        CallError::InsufficientStake {
            worker: id,
            required: tokens(200),
            staked: tokens(100),
        },
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Stake {
            worker: id,
            amount: tokens(100),
        }),
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile,
            attestation: None,
        }),
    );
    assert_eq!(chain.worker(id).profile.level, 1);
}

#[test]
fn a_profile_must_keep_listing_the_tee_of_its_evidence() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let mut profile = chain.worker(id).profile;
    profile.tee_kinds = wetee_types::TeeKinds::of(&[TeeKind::Sgx]);
    chain.fails(
        "eve",
        workers(WorkersCall::Update {
            worker: id,
            profile: profile.clone(),
            attestation: None,
        }),
        CallError::EvidenceKindNotDeclared {
            kind: TeeKind::Simulated,
        },
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Update {
            worker: WorkerId(5),
            profile,
            attestation: None,
        }),
        CallError::WorkerNotFound {
            worker: WorkerId(5),
        },
    );
}

#[test]
fn staking_more_than_the_free_balance_fails() {
    let mut chain = TestChain::new();
    let id = chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let call = workers(WorkersCall::Stake {
        worker: id,
        amount: Balance(u128::MAX),
    });
    let available = chain
        .free("eve")
        .checked_sub(chain.fee_for("eve", call.clone()))
        .unwrap();
    chain.fails(
        "eve",
        call,
        CallError::InsufficientBalance {
            needed: Balance(u128::MAX),
            available,
        },
    );
    chain.fails(
        "eve",
        workers(WorkersCall::Unstake {
            worker: id,
            amount: Balance::ZERO,
        }),
        CallError::ZeroAmount,
    );
}

#[test]
fn a_report_can_refresh_the_evidence_which_is_checked_like_a_registration() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    chain.advance_to_epoch(1);
    let mut report = chain.signed_report(id, 0, vec![], vec![]);
    report.report.evidence = Some(chain.evidence(TeeKind::Sgx, &chain.worker(id).keys));
    report.signature = *chain
        .identity(id)
        .sign(&report.report.signing_payload(&chain.genesis_hash))
        .as_bytes();
    chain.fails(
        "eve",
        workers(WorkersCall::SubmitWorkReport {
            report: report.clone(),
        }),
        CallError::EvidenceKindNotDeclared { kind: TeeKind::Sgx },
    );
    let fresh = chain.evidence(TeeKind::Simulated, &chain.worker(id).keys);
    report.report.evidence = Some(fresh.clone());
    report.signature = *chain
        .identity(id)
        .sign(&report.report.signing_payload(&chain.genesis_hash))
        .as_bytes();
    chain.ok("eve", workers(WorkersCall::SubmitWorkReport { report }));
    assert_eq!(chain.worker(id).evidence, fresh);
}

#[test]
fn a_slash_of_nothing_or_of_an_unknown_worker_fails() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 8192),
    );
    let root = chain.root.clone();
    chain.fails_as(
        &root,
        workers(WorkersCall::Slash {
            worker: id,
            amount: Balance::ZERO,
            complaint: None,
        }),
        CallError::ZeroAmount,
    );
    chain.fails_as(
        &root,
        workers(WorkersCall::Slash {
            worker: WorkerId(8),
            amount: tokens(1),
            complaint: None,
        }),
        CallError::WorkerNotFound {
            worker: WorkerId(8),
        },
    );
    chain.fails_as(
        &root,
        workers(WorkersCall::Slash {
            worker: id,
            amount: tokens(1),
            complaint: Some(ComplaintId(3)),
        }),
        CallError::ComplaintNotFound {
            complaint: ComplaintId(3),
        },
    );
}

#[test]
fn a_suspended_worker_can_start_again_and_owes_reports_from_then_on() {
    let mut chain = TestChain::new();
    let id = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.advance_to_epoch(3);
    assert_eq!(chain.worker(id).status, WorkerStatus::Suspended);
    chain.ok("eve", workers(WorkersCall::Start { worker: id }));
    let worker = chain.worker(id);
    assert_eq!(worker.status, WorkerStatus::Started);
    assert_eq!(worker.liable_since, 3);
    // The app went pending when its worker was suspended and comes back at the epoch end.
    chain.advance_to_epoch(4);
    assert_eq!(chain.worker(id).workloads, 1);
    chain.check_invariants();
}

#[test]
fn copied_keys_and_evidence_cannot_register_another_worker() {
    let mut chain = TestChain::new();
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [31; 32]);
    let eve = chain.who("eve");
    let attestation = chain.attestation(
        &eve,
        &identity,
        TestChain::keys_for(&identity),
        chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
    );
    let profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    // Dave front-runs Eve with her attestation: the key proof names Eve, not Dave.
    chain.fails(
        "dave",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: attestation.clone(),
        }),
        CallError::KeyProofInvalid,
    );
    chain.ok(
        "eve",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: attestation.clone(),
        }),
    );
    let first = WorkerId(1);
    // Eve cannot register the same TEE identity twice either.
    chain.fails(
        "eve",
        workers(WorkersCall::Register {
            profile: profile.clone(),
            attestation: attestation.clone(),
        }),
        CallError::IdentityKeyInUse { worker: first },
    );
    let second = chain.register(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 4000, 8192),
    );
    let dave = chain.who("dave");
    let stolen = chain.attestation(
        &dave,
        &identity,
        TestChain::keys_for(&identity),
        chain.evidence(TeeKind::Simulated, &TestChain::keys_for(&identity)),
    );
    let profile = chain.worker(second).profile;
    chain.fails(
        "dave",
        workers(WorkersCall::Update {
            worker: second,
            profile,
            attestation: Some(stolen),
        }),
        CallError::IdentityKeyInUse { worker: first },
    );
}

#[test]
fn only_the_worker_running_an_app_can_report_it_failed_and_the_owner_gets_the_rest_back() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    let reason = BoundedString::try_new("exited with code 1 five times").unwrap();
    let genesis = chain.genesis_hash;
    // The owner publishes a sealing key; the worker seals the log to it.
    let owner_secret = wetee_sealing::owner_secret(chain.key("alice"));
    let owner_key = wetee_sealing::public_key(&owner_secret);
    let events = chain.ok(
        "alice",
        Call::Balances(wetee_types::transaction::BalancesCall::SetSealingKey { key: owner_key }),
    );
    assert!(events.contains(&Event::SealingKeySet {
        account: chain.who("alice")
    }));
    let alice = chain.who("alice");
    let version = chain.app(app).version;
    let seen_at = chain.height;
    let binding = wetee_sealing::log_tail::Binding {
        genesis_hash: &genesis,
        app,
        version,
        worker,
        owner: &alice,
    };
    let published = wetee_runtime::query::sealing_key(&chain.state, &alice)
        .unwrap()
        .expect("published");
    let log =
        wetee_sealing::log_tail::seal(&binding, Some(&published), "panic: no config\n").unwrap();
    let signed_at = |key: &Keypair,
                     worker,
                     (version, observed_at): (u32, u64),
                     log: &wetee_sealing::log_tail::Sealed| {
        let subject = wetee_types::transaction::FailureSubject {
            worker,
            app,
            version,
            observed_at,
        };
        let payload = wetee_types::transaction::app_failure_payload(
            &genesis,
            &subject,
            &reason,
            &log.digest,
            &log.sealed,
        );
        let wetee_types::Signature::Ed25519(signature) = key.sign(&payload) else {
            unreachable!("identity keys are ed25519")
        };
        Call::Workers(WorkersCall::ReportAppFailure {
            worker,
            app,
            version,
            observed_at,
            reason: reason.clone(),
            log_digest: log.digest,
            log_tail: log.sealed.clone(),
            signature,
        })
    };
    let signed_over = |key: &Keypair, worker, log: &wetee_sealing::log_tail::Sealed| {
        signed_at(key, worker, (version, seen_at), log)
    };
    let signed_by = |key: &Keypair, worker| signed_over(key, worker, &log);
    let identity = chain.identity(worker);
    let report = |worker| signed_by(&identity, worker);
    // Someone else's worker, or someone who operates nothing, cannot.
    let other = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let other_identity = chain.identity(other);
    chain.fails(
        "dave",
        signed_by(&other_identity, other),
        CallError::AppNotOnWorker { app, worker: other },
    );
    chain.fails(
        "alice",
        report(worker),
        CallError::NotWorkerOperator { worker },
    );
    // The operator alone cannot: the worker's attested identity key signs, no other key.
    let other_key = Keypair::from_seed(wetee_types::KeyScheme::Ed25519, [9; 32]);
    let operator_signed = signed_by(&other_key, worker);
    chain.fails(
        "eve",
        operator_signed,
        CallError::ReportSignatureInvalid { worker },
    );
    // Nor can the operator swap the sealed log for one of its own under the TEE's signature.
    // A genuine report about another version, or seen too long ago, cannot stop the app: an
    // operator who held one back cannot use it later.
    let identity_key = chain.identity(worker);
    chain.fails(
        "eve",
        signed_at(&identity_key, worker, (version + 1, seen_at), &log),
        CallError::FailureReportStale {
            app,
            version: version + 1,
            observed_at: seen_at,
        },
    );
    chain.fails(
        "eve",
        signed_at(&identity_key, worker, (version, seen_at + 1_000), &log),
        CallError::FailureReportStale {
            app,
            version,
            observed_at: seen_at + 1_000,
        },
    );
    let Call::Workers(WorkersCall::ReportAppFailure {
        signature,
        log_digest,
        ..
    }) = report(worker)
    else {
        unreachable!()
    };
    let forged = wetee_sealing::log_tail::seal(&binding, Some(&published), "all fine\n").unwrap();
    chain.fails(
        "eve",
        Call::Workers(WorkersCall::ReportAppFailure {
            worker,
            app,
            version,
            observed_at: seen_at,
            reason: reason.clone(),
            log_digest,
            log_tail: forged.sealed,
            signature,
        }),
        CallError::ReportSignatureInvalid { worker },
    );
    let reserved_before = chain.reserved("alice");
    let events = chain.ok("eve", report(worker));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::AppFailed { app: a, .. } if *a == app))
    );
    let stopped = chain.app(app);
    assert_eq!(
        stopped.status,
        AppStatus::Stopped {
            reason: StopReason::Failed
        }
    );
    assert!(stopped.placement.is_none());
    assert!(
        chain.reserved("alice") < reserved_before,
        "the unused deposit came back"
    );
    let failure = wetee_runtime::query::app_failure(&chain.state, app)
        .unwrap()
        .expect("recorded");
    assert_eq!(failure.worker, worker);
    // Public: the reason and a commitment. The log opens for the owner only.
    assert_eq!(failure.log_digest, log.digest);
    let sealed = failure.log_tail.as_ref().expect("sealed to the owner");
    assert_eq!(
        wetee_sealing::log_tail::open(&owner_secret, &binding, &failure.log_digest, sealed)
            .unwrap()
            .as_str(),
        "panic: no config\n"
    );
    let eve_secret = wetee_sealing::owner_secret(chain.key("eve"));
    assert!(
        wetee_sealing::log_tail::open(&eve_secret, &binding, &failure.log_digest, sealed).is_err()
    );
    // It cannot fail twice.
    chain.fails(
        "eve",
        report(worker),
        CallError::AppNotOnWorker { app, worker },
    );
    // And a report seen too long ago is refused for its age, whatever the app does now.
    chain.advance(wetee_types::transaction::FAILURE_REPORT_MAX_AGE_BLOCKS + 1);
    chain.fails(
        "eve",
        report(worker),
        CallError::FailureReportStale {
            app,
            version,
            observed_at: seen_at,
        },
    );
}
