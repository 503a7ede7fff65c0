//! Attestation on chain: evidence bound to keys and recent blocks, its expiry, the policy, the
//! measurements an app version pins, and the collateral registry.

use std::path::PathBuf;
use wetee_runtime::query;
use wetee_runtime::testing::*;
use wetee_types::attestation::{AttestationPolicy, MeasurementRule};
use wetee_types::codec::BoundedVec;
use wetee_types::params::Params;
use wetee_types::records::{AppStatus, Attestation, Evidence, WorkerProfile};
use wetee_types::transaction::{AppsCall, AttestationCall, RootCall, WorkersCall};
use wetee_types::{Call, CallError, Event, KeyScheme, Keypair, TeeKind, Workload};

fn register(profile: WorkerProfile, attestation: Attestation) -> Call {
    Call::Workers(WorkersCall::Register {
        profile,
        attestation,
    })
}

fn set_policy(policy: AttestationPolicy) -> Call {
    Call::Root(RootCall::SetAttestationPolicy { policy })
}

fn pinned_tdx(mr_td: [u8; 48]) -> MeasurementRule {
    MeasurementRule::Tdx {
        mr_td: Some(mr_td),
        rtmr0: None,
        rtmr1: None,
        rtmr2: None,
        rtmr3: None,
    }
}

#[test]
fn evidence_must_vouch_for_these_keys_after_a_recent_block() {
    let mut chain = TestChain::with_config(
        Params::dev(),
        AttestationPolicy {
            max_evidence_age_ms: 60_000,
            ..AttestationPolicy::dev()
        },
    );
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [3; 32]);
    let keys = TestChain::keys_for(&identity);
    let eve = chain.who("eve");
    let profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    chain.advance(600);

    let attempt = |chain: &mut TestChain, evidence: Evidence| {
        let attestation = chain.attestation(&eve, &identity, keys, evidence);
        chain.evidence_rejection("eve", register(profile.clone(), attestation))
    };
    // Evidence made for other keys (a copied quote) vouches for nothing here.
    let other = TestChain::keys_for(&Keypair::from_seed(KeyScheme::Ed25519, [4; 32]));
    let evidence = chain.evidence(TeeKind::Simulated, &other);
    assert!(attempt(&mut chain, evidence).contains("report_data"));
    // Bound to the block being built, or to one that left the window, or to a block too old.
    for height in [chain.height, 1, chain.height - 100] {
        let evidence = chain.evidence_bound_to(TeeKind::Simulated, &keys, height);
        let reason = attempt(&mut chain, evidence);
        // The window is 128 s of blocks: 128 of the test chain's one-second blocks.
        let window =
            wetee_types::attestation::nonce_window_blocks(chain.params().target_block_time_ms);
        assert_eq!(window, 128);
        let expected = if height == chain.height - 100 {
            "more than the 60000 ms allowed".to_string()
        } else {
            format!("not one of the last {window} blocks")
        };
        assert!(reason.contains(&expected), "{height}: {reason}");
    }
    // Bound to these keys and the last block: accepted, and what was verified is kept.
    let evidence = chain.evidence(TeeKind::Simulated, &keys);
    let attestation = chain.attestation(&eve, &identity, keys, evidence);
    let events = chain.ok("eve", register(profile, attestation));
    let id = events
        .iter()
        .find_map(|e| match e {
            Event::WorkerRegistered { worker, .. } => Some(*worker),
            _ => None,
        })
        .unwrap();
    let worker = chain.worker(id);
    let attested = worker.attested;
    assert_eq!(attested.fresh_at_ms, chain.block().timestamp_ms - 1000);
    assert_eq!(attested.expires_at_ms, attested.fresh_at_ms + 60_000);
    assert_eq!(
        attested.tcb_status,
        Some(wetee_types::attestation::TcbStatus::UpToDate)
    );
    assert!(matches!(
        attested.measurements,
        Some(wetee_types::attestation::Measurements::Tdx(m)) if m.mr_td == wetee_attest::simulated::mr_td()
    ));
    assert!(events.contains(&Event::WorkerAttested {
        worker: id,
        expires_at_ms: attested.expires_at_ms
    }));
}

#[test]
fn an_expired_attestation_gets_no_placement_and_no_pay_until_it_is_refreshed() {
    let mut chain = TestChain::with_config(
        Params::dev(),
        AttestationPolicy {
            max_evidence_age_ms: 60_000,
            ..AttestationPolicy::dev()
        },
    );
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    // Registered at block 1, bound to block 0: valid for 60 blocks of a second.
    for epoch in 1..=6 {
        chain.advance_to_epoch(epoch);
        chain.report(
            "eve",
            worker,
            epoch - 1,
            vec![TestChain::proof(app, 10_000)],
        );
    }
    chain.advance_to_epoch(7);
    let expired_at_ms = chain.worker(worker).attested.expires_at_ms;
    assert!(expired_at_ms <= chain.block().timestamp_ms);

    let second = chain.create_app(
        "bob",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(second).status, AppStatus::Pending);
    let reason = query::pending_reason(&chain.state, &Workload::App { app: second })
        .unwrap()
        .unwrap();
    assert!(reason.contains("expired"), "{reason}");

    let report = chain.signed_report(worker, 6, vec![TestChain::proof(app, 10_000)], vec![]);
    let before = chain.worker(worker).earnings;
    chain.fails(
        "eve",
        Call::Workers(WorkersCall::SubmitWorkReport {
            report: report.clone(),
        }),
        CallError::AttestationExpired {
            worker,
            expired_at_ms,
        },
    );
    assert_eq!(chain.worker(worker).earnings, before);

    // The same report with fresh evidence is accepted (the worker is live) but pays nothing:
    // it was not attested when it came. Placement resumes, and the next report is paid.
    let mut report = report;
    report.report.evidence = Some(chain.evidence(TeeKind::Simulated, &chain.worker(worker).keys));
    report.signature = *chain
        .identity(worker)
        .sign(&report.report.signing_payload(&chain.genesis_hash))
        .as_bytes();
    let events = chain.ok(
        "eve",
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::WorkerAttested { .. }))
    );
    assert_eq!(chain.worker(worker).earnings, before);
    assert!(chain.worker(worker).attested.expires_at_ms > chain.block().timestamp_ms);
    chain.advance_to_epoch(8);
    assert_eq!(chain.app(second).status, AppStatus::Running);
    chain.report("eve", worker, 7, vec![TestChain::proof(app, 10_000)]);
    assert!(chain.worker(worker).earnings > before);
    chain.check_invariants();
}

#[test]
fn only_root_sets_the_policy_and_it_can_pin_worker_measurements() {
    let mut chain = TestChain::new();
    let mut policy = AttestationPolicy::dev();
    policy.allowed_worker_measurements = BoundedVec::try_new(vec![pinned_tdx([7; 48])]).unwrap();
    chain.fails("alice", set_policy(policy.clone()), CallError::NotRoot);
    let root = chain.root.clone();
    let mut revoked = policy.clone();
    revoked.allowed_tcb_statuses =
        BoundedVec::try_new(vec![wetee_types::attestation::TcbStatus::Revoked]).unwrap();
    assert!(matches!(
        chain
            .submit_atomic(&root, set_policy(revoked))
            .unwrap()
            .outcome,
        wetee_types::Outcome::Failed {
            error: CallError::InvalidParams { .. }
        }
    ));
    let events = chain.ok_as(&root, set_policy(policy.clone()));
    assert!(events.contains(&Event::AttestationPolicyChanged));

    let profile = chain.profile("eu", &[TeeKind::Simulated], 4000, 8192);
    assert_eq!(chain.try_register("eve", profile.clone()), None);
    policy.allowed_worker_measurements =
        BoundedVec::try_new(vec![pinned_tdx(wetee_attest::simulated::mr_td())]).unwrap();
    chain.ok_as(&root, set_policy(policy));
    assert!(chain.try_register("eve", profile.clone()).is_some());

    // A worker the policy no longer allows gets no placements and its reports are refused
    // until it sends evidence the new policy accepts.
    let worker = chain.started_worker("ferdie", profile.clone());
    let mut stricter = AttestationPolicy::dev();
    stricter.allowed_worker_measurements = BoundedVec::try_new(vec![pinned_tdx([8; 48])]).unwrap();
    chain.ok_as(&root, set_policy(stricter));
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    chain.advance_to_epoch(1);
    let report = chain.signed_report(worker, 0, vec![], vec![]);
    assert!(matches!(
        chain.failure(
            "ferdie",
            Call::Workers(WorkersCall::SubmitWorkReport { report })
        ),
        CallError::EvidenceRejected { .. }
    ));

    // A production policy refuses the simulated TEE from then on, and it cannot come back.
    chain.ok_as(&root, set_policy(production_policy()));
    assert_eq!(chain.try_register("dave", profile), None);
    assert!(matches!(
        chain
            .submit_atomic(&root, set_policy(AttestationPolicy::dev()))
            .unwrap()
            .outcome,
        wetee_types::Outcome::Failed {
            error: CallError::InvalidParams { .. }
        }
    ));
}

#[test]
fn an_app_version_can_pin_the_measurements_of_the_tee_it_runs_in() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.constraints.measurements = BoundedVec::try_new(vec![pinned_tdx([7; 48])]).unwrap();
    let app = chain.create_app("alice", spec.clone(), tokens(20));
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    let reason = query::pending_reason(&chain.state, &Workload::App { app })
        .unwrap()
        .unwrap();
    assert!(
        reason.contains("measurements this version allows"),
        "{reason}"
    );

    spec.constraints.measurements =
        BoundedVec::try_new(vec![pinned_tdx(wetee_attest::simulated::mr_td())]).unwrap();
    chain.ok(
        "alice",
        Call::Apps(AppsCall::Update {
            app,
            spec: spec.clone(),
            secrets_grant: None,
        }),
    );
    assert_eq!(chain.app(app).status, AppStatus::Running);

    // A rule that pins nothing would allow anything: refused.
    spec.constraints.measurements = BoundedVec::try_new(vec![MeasurementRule::Tdx {
        mr_td: None,
        rtmr0: None,
        rtmr1: None,
        rtmr2: None,
        rtmr3: None,
    }])
    .unwrap();
    assert!(matches!(
        chain.failure(
            "alice",
            Call::Apps(AppsCall::Update {
                app,
                spec,
                secrets_grant: None
            })
        ),
        CallError::InvalidManifest { .. }
    ));
}

fn vectors() -> PathBuf {
    std::env::var_os("WETEE_TEE_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata"),
        PathBuf::from,
    )
}

fn read(name: &str) -> Vec<u8> {
    let path = vectors().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn post(collateral: Vec<u8>) -> Call {
    Call::Attestation(AttestationCall::PostCollateral {
        collateral: BoundedVec::try_new(collateral).unwrap(),
    })
}

#[test]
fn anyone_posts_intel_collateral_which_is_checked_and_never_rolled_back() {
    // The genuine TDX vector's time: 2025-06-20.
    let mut chain = TestChain::starting_at(
        Params::dev(),
        AttestationPolicy::dev(),
        1_750_377_600_000 - 60_000,
    );
    let quote = read("dcap/tdx_quote");
    let (kind, fmspc) = wetee_attest::collateral::quote_fmspc(&quote).unwrap();
    let pck_ca = wetee_attest::collateral::quote_pck_ca(&quote).unwrap();
    assert_eq!(kind, TeeKind::Tdx);
    let profile = chain.profile("eu", &[TeeKind::Tdx], 4000, 8192);
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [9; 32]);
    let eve = chain.who("eve");
    let genuine = Evidence {
        kind: TeeKind::Tdx,
        data: BoundedVec::try_new(quote).unwrap(),
        nonce_height: 0,
    };
    let attestation = chain.attestation(&eve, &identity, TestChain::keys_for(&identity), genuine);
    let reason = chain.evidence_rejection("eve", register(profile.clone(), attestation.clone()));
    assert!(reason.contains("no collateral"), "{reason}");

    // Not signed by Intel (the development PKI), or not collateral at all: refused.
    let development = serde_json::to_vec(wetee_attest::simulated::collateral().unwrap()).unwrap();
    for bad in [development, b"{}".to_vec(), vec![0xff; 100]] {
        assert!(matches!(
            chain.failure("bob", post(bad)),
            CallError::CollateralRejected { .. }
        ));
    }
    let events = chain.ok("bob", post(read("dcap/tdx_quote_collateral.json")));
    let Some(Event::CollateralPosted {
        kind: posted_kind,
        fmspc: posted_fmspc,
        next_update_secs,
    }) = events.first().cloned()
    else {
        panic!("{events:?}")
    };
    assert_eq!((posted_kind, posted_fmspc), (TeeKind::Tdx, fmspc));
    assert!(next_update_secs > 1_750_377_600);
    let record = query::collateral(&chain.state, TeeKind::Tdx, &fmspc, pck_ca)
        .unwrap()
        .unwrap();
    assert_eq!(record.posted_by, chain.who("bob"));
    // The same again is not newer.
    assert!(matches!(
        chain.failure("charlie", post(read("dcap/tdx_quote_collateral.json"))),
        CallError::CollateralRejected { .. }
    ));
    // With collateral on chain the genuine quote verifies all the way to its report data,
    // which was made for other keys: a real quote cannot be borrowed either.
    let reason = chain.evidence_rejection("eve", register(profile, attestation));
    assert!(reason.contains("report_data"), "{reason}");
    // SGX collateral is filed under its own kind.
    chain.ok("bob", post(read("dcap/sgx_quote_collateral.json")));
    let (sgx, sgx_fmspc) = wetee_attest::collateral::quote_fmspc(&read("dcap/sgx_quote")).unwrap();
    assert!(
        query::collateral(
            &chain.state,
            sgx,
            &sgx_fmspc,
            wetee_attest::collateral::quote_pck_ca(&read("dcap/sgx_quote")).unwrap()
        )
        .unwrap()
        .is_some()
    );
}
