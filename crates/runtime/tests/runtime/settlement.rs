//! Work reports and payments: paid only for proven work, never twice, never beyond the deposit.

use wetee_runtime::testing::*;
use wetee_runtime::weights;
use wetee_types::error::error_text;
use wetee_types::params::Params;
use wetee_types::records::{AppStatus, StopReason, WorkerStatus};
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{
    AppId, Balance, Call, CallError, Event, KeyScheme, Keypair, TeeKind, Weight, WorkerId,
};

/// 1000 millicores and 512 MiB on the test profile's prices.
const PRICE: u128 = 1000 * 1_000_000 + 512 * 100_000;

fn setup() -> (TestChain, WorkerId, AppId) {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(app).placement.unwrap().since, 1);
    (chain, worker, app)
}

fn submit(
    chain: &mut TestChain,
    operator: &str,
    worker: WorkerId,
    epoch: u64,
    apps: Vec<wetee_types::report::AppProof>,
) -> Call {
    let _ = operator;
    Call::Workers(WorkersCall::SubmitWorkReport {
        report: chain.signed_report(worker, epoch, apps, vec![]),
    })
}

#[test]
fn a_report_pays_the_leased_share_of_the_epoch_at_the_proven_uptime() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(1);
    let treasury = chain.treasury_free();
    let events = chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    // Placed at height 1: 9 of epoch 0's 10 blocks.
    let amount = Balance(PRICE * 9 / 10);
    let fee = Balance(amount.0 * 500 / 10_000);
    assert!(events.contains(&Event::AppPaid {
        app,
        worker,
        epoch: 0,
        amount,
        protocol_fee: fee
    }));
    assert!(events.contains(&Event::WorkReportAccepted {
        worker,
        epoch: 0,
        earned: Balance(amount.0 - fee.0)
    }));
    assert_eq!(chain.worker(worker).earnings, Balance(amount.0 - fee.0));
    assert_eq!(chain.app(app).deposit, Balance(tokens(20).0 - amount.0));
    assert!(chain.treasury_free() > treasury);
    chain.check_invariants();
}

#[test]
fn half_the_uptime_earns_half() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 5_000)]);
    assert_eq!(chain.app(app).deposit, Balance(tokens(20).0 - PRICE / 2));
}

#[test]
fn a_report_for_an_epoch_that_has_not_ended_is_refused() {
    let (mut chain, worker, app) = setup();
    let call = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails(
        "eve",
        call,
        CallError::EpochNotEnded {
            epoch: 0,
            current: 0,
        },
    );
}

#[test]
fn within_a_wide_window_an_epoch_older_than_the_last_report_is_still_refused() {
    let mut params = Params::dev();
    params.proof_window_epochs = 3;
    let (mut chain, worker, app) = TestChain::serving(params);
    chain.advance_to_epoch(3);
    chain.report("eve", worker, 2, vec![TestChain::proof(app, 10_000)]);
    let older = submit(
        &mut chain,
        "eve",
        worker,
        1,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails("eve", older, CallError::ReportReplayed { worker, last: 2 });
}

#[test]
fn a_report_after_its_window_is_refused() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(3);
    let call = submit(
        &mut chain,
        "eve",
        worker,
        1,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails(
        "eve",
        call,
        CallError::ReportTooLate {
            epoch: 1,
            oldest: 2,
        },
    );
}

#[test]
fn a_replayed_or_older_report_is_refused() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    let again = submit(
        &mut chain,
        "eve",
        worker,
        1,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails("eve", again, CallError::ReportReplayed { worker, last: 1 });
    // Epoch 0 was skipped: it is forfeited, never paid.
    let older = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails(
        "eve",
        older,
        CallError::ReportTooLate {
            epoch: 0,
            oldest: 1,
        },
    );
    assert_eq!(chain.app(app).deposit, Balance(tokens(20).0 - PRICE));
}

#[test]
fn only_the_operator_submits_and_only_the_identity_key_signs() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(1);
    let call = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails("alice", call, CallError::NotWorkerOperator { worker });
    let mut forged = chain.signed_report(worker, 0, vec![TestChain::proof(app, 10_000)], vec![]);
    let stranger = Keypair::from_seed(KeyScheme::Ed25519, [66; 32]);
    forged.signature = *stranger
        .sign(&forged.report.signing_payload(&chain.genesis_hash))
        .as_bytes();
    chain.fails(
        "eve",
        Call::Workers(WorkersCall::SubmitWorkReport {
            report: forged.clone(),
        }),
        CallError::ReportSignatureInvalid { worker },
    );
    // A signature from the right key over another epoch does not carry over.
    let mut moved = chain.signed_report(worker, 0, vec![TestChain::proof(app, 10_000)], vec![]);
    moved.report.epoch = 1;
    chain.advance_to_epoch(2);
    chain.fails(
        "eve",
        Call::Workers(WorkersCall::SubmitWorkReport { report: moved }),
        CallError::ReportSignatureInvalid { worker },
    );
}

#[test]
fn a_worker_cannot_claim_an_app_it_did_not_run() {
    let (mut chain, _worker, app) = setup();
    let other = chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(1);
    let call = submit(
        &mut chain,
        "dave",
        other,
        0,
        vec![TestChain::proof(app, 10_000)],
    );
    chain.fails(
        "dave",
        call,
        CallError::AppNotLeased {
            app,
            worker: other,
            epoch: 0,
        },
    );
}

#[test]
fn duplicate_entries_and_impossible_uptime_are_refused() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(1);
    let call = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![TestChain::proof(app, 10_000), TestChain::proof(app, 10_000)],
    );
    chain.fails("eve", call, CallError::DuplicateAppProof { app });
    let call = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![TestChain::proof(app, 10_001)],
    );
    chain.fails("eve", call, CallError::InvalidUptime { uptime_bps: 10_001 });
}

#[test]
fn a_report_with_one_bad_entry_pays_nothing_at_all() {
    let (mut chain, worker, app) = setup();
    let foreign = chain.create_app(
        "bob",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("us")),
        tokens(20),
    );
    chain.advance_to_epoch(1);
    let call = submit(
        &mut chain,
        "eve",
        worker,
        0,
        vec![
            TestChain::proof(app, 10_000),
            TestChain::proof(foreign, 10_000),
        ],
    );
    chain.fails(
        "eve",
        call,
        CallError::AppNotLeased {
            app: foreign,
            worker,
            epoch: 0,
        },
    );
    assert_eq!(chain.worker(worker).earnings, Balance::ZERO);
    assert_eq!(chain.app(app).deposit, tokens(20));
}

#[test]
fn earnings_are_withdrawn_to_the_operators_free_balance() {
    let (mut chain, worker, app) = setup();
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    let earned = chain.worker(worker).earnings;
    let before = chain.free("eve");
    let tx = chain.transaction(
        chain.key("eve"),
        Call::Workers(WorkersCall::Withdraw { worker }),
    );
    assert!(chain.apply(&tx).unwrap().is_success());
    assert_eq!(
        chain.free("eve"),
        before
            .checked_add(earned)
            .unwrap()
            .checked_sub(tx.tx.fee)
            .unwrap()
    );
    assert_eq!(chain.worker(worker).earnings, Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn a_stopped_app_keeps_only_what_its_worker_can_still_claim() {
    let (mut chain, worker, app) = setup();
    chain.advance(4); // height 5: blocks 1..=4 ran
    let events = chain.ok("alice", Call::Apps(AppsCall::Stop { app }));
    let hold = Balance((PRICE * 4).div_ceil(10));
    assert!(events.contains(&Event::AppStopped {
        app,
        reason: StopReason::Owner,
        refund: Balance(tokens(20).0 - hold.0)
    }));
    assert_eq!(chain.reserved("alice"), hold);
    chain.check_invariants();
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    // Paid for the 4 blocks, the rounding remainder refunded, nothing left reserved.
    assert_eq!(
        chain.worker(worker).earnings,
        Balance(PRICE * 4 / 10 - PRICE * 4 / 10 * 500 / 10_000)
    );
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.app(app).deposit, Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn an_unclaimed_hold_returns_to_the_owner_when_the_window_closes() {
    let (mut chain, _worker, app) = setup();
    chain.advance(4);
    chain.ok("alice", Call::Apps(AppsCall::Stop { app }));
    assert!(chain.reserved("alice") > Balance::ZERO);
    chain.advance_to_epoch(1);
    assert!(
        chain.reserved("alice") > Balance::ZERO,
        "epoch 0 can still be reported during epoch 1"
    );
    chain.advance_to_epoch(2);
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.app(app).held, Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn a_worker_that_stops_reporting_loses_its_apps_and_is_paid_nothing_for_the_gap() {
    let mut chain = TestChain::new();
    let silent = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    let backup = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    assert_eq!(chain.app(app).placement.unwrap().worker, silent);
    chain.advance_to_epoch(2);
    assert_eq!(
        chain.worker(silent).status,
        WorkerStatus::Started,
        "one missed epoch is tolerated"
    );
    chain.advance_to_epoch(3);
    assert_eq!(chain.worker(silent).status, WorkerStatus::Suspended);
    assert!(chain.hook_events.contains(&Event::WorkerSuspended {
        worker: silent,
        missed_epochs: 2
    }));
    let placement = chain.app(app).placement.unwrap();
    assert_eq!(placement.worker, backup);
    assert_eq!(placement.since, 29);
    assert_eq!(chain.worker(silent).workloads, 0);
    assert!(chain.worker(silent).score < 500);
    chain.check_invariants();
    // The silent worker never reports; once its last window closes the owner has paid nothing.
    chain.advance_to_epoch(4);
    chain.report("dave", backup, 3, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(5);
    let app_record = chain.app(app);
    assert_eq!(app_record.held, Balance::ZERO);
    // Only the backup's epoch 3 (and its one block of epoch 2, never reported) was paid.
    assert_eq!(app_record.deposit, Balance(tokens(20).0 - PRICE));
    chain.check_invariants();
}

#[test]
fn a_move_mid_epoch_pays_each_worker_for_its_own_blocks() {
    let mut chain = TestChain::new();
    let first = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    let second = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.ok("eve", Call::Workers(WorkersCall::Stop { worker: first }));
    chain.advance_to_epoch(1); // moved at height 9, the last block of epoch 0
    assert_eq!(chain.app(app).placement.unwrap().worker, second);
    chain.report("eve", first, 0, vec![TestChain::proof(app, 10_000)]);
    chain.report("dave", second, 0, vec![TestChain::proof(app, 10_000)]);
    let paid = tokens(20).0 - chain.app(app).deposit.0;
    assert_eq!(paid, PRICE * 8 / 10 + PRICE / 10);
    assert_eq!(chain.app(app).held, Balance::ZERO);
    chain.check_invariants();
}

fn pricey_chain(grace_epochs: u32) -> (TestChain, WorkerId, AppId) {
    let mut params = Params::dev();
    params.grace_epochs = grace_epochs;
    let mut chain = TestChain::with_params(params);
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.prices.cpu_millicore = Balance(10_000_000_000); // 10 tokens an epoch for 1000m
    profile.prices.memory_mib = Balance::ZERO;
    let worker = chain.started_worker("eve", profile);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.constraints.max_price_per_epoch = tokens(20);
    let app = chain.create_app("alice", spec, tokens(20));
    (chain, worker, app)
}

#[test]
fn a_deposit_running_low_starts_a_grace_period_that_a_recharge_ends() {
    let (mut chain, worker, app) = pricey_chain(1);
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    assert_eq!(chain.app(app).grace_until, None);
    chain.advance_to_epoch(2);
    let events = chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    assert!(events.contains(&Event::AppDepositLow {
        app,
        grace_until: 3
    }));
    chain.ok(
        "alice",
        Call::Apps(AppsCall::Recharge {
            app,
            amount: tokens(100),
        }),
    );
    assert_eq!(chain.app(app).grace_until, None);
    chain.advance_to_epoch(4);
    assert_eq!(chain.app(app).status, AppStatus::Running);
    chain.check_invariants();
}

#[test]
fn an_app_whose_grace_period_ends_unfunded_stops_and_refunds_the_rest() {
    let (mut chain, worker, app) = pricey_chain(1);
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(4);
    let record = chain.app(app);
    assert_eq!(
        record.status,
        AppStatus::Stopped {
            reason: StopReason::DepositExhausted
        }
    );
    assert!(chain.hook_events.iter().any(|e| matches!(e, Event::AppStopped { app: a, reason: StopReason::DepositExhausted, .. } if *a == app)));
    assert_eq!(chain.worker(worker).workloads, 0);
    // What is left is held for the worker's last claims, never more than the deposit.
    assert!(record.held <= record.deposit);
    chain.report("eve", worker, 3, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(6);
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.app(app).deposit, Balance::ZERO);
    chain.check_invariants();
    let _ = error_text;
}

#[test]
fn the_worked_example_of_the_runtime_guide_holds() {
    let example = worked_example();
    assert_eq!(example.price_per_epoch, tokens(1));
    let missed = &example.epochs[3];
    assert_eq!(
        (missed.epoch, missed.reported, missed.paid_by_owner),
        (4, false, Balance::ZERO)
    );
    assert_eq!(example.refund_at_stop, tokens(11));
    assert_eq!(example.held_at_stop, tokens(1));
    assert_eq!(example.owner_paid, tokens(9));
    assert_eq!(example.worker_earned, Balance(8_550_000_000_000));
    assert_eq!(example.treasury_fees, Balance(450_000_000_000));
    assert_eq!(example.owner_reserved_after, Balance::ZERO);
    // The deposit is exactly what was paid plus what came back.
    assert_eq!(
        example.owner_paid.checked_add(example.refund_at_stop),
        Some(example.deposit)
    );
}

#[test]
fn leaving_and_coming_back_does_not_restart_a_grace_period() {
    let (mut chain, worker, app) = pricey_chain(1);
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    assert_eq!(chain.app(app).grace_until, Some(3));
    let mut away = chain.app(app).spec;
    away.constraints.region = Some(wetee_types::codec::BoundedString::try_new("nowhere").unwrap());
    chain.ok(
        "alice",
        Call::Apps(AppsCall::Update {
            app,
            spec: away,
            secrets_grant: None,
        }),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    let mut back = chain.app(app).spec;
    back.constraints.region = None;
    chain.ok(
        "alice",
        Call::Apps(AppsCall::Update {
            app,
            spec: back,
            secrets_grant: None,
        }),
    );
    assert_eq!(chain.app(app).status, AppStatus::Running);
    assert_eq!(chain.app(app).grace_until, Some(3));
    chain.advance_to_epoch(4);
    assert_eq!(
        chain.app(app).status,
        AppStatus::Stopped {
            reason: StopReason::DepositExhausted
        }
    );
    chain.check_invariants();
}

#[test]
fn an_app_its_worker_stops_proving_moves_even_if_the_worker_keeps_reporting() {
    let mut chain = TestChain::new();
    let lazy = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    let other = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(1);
    chain.report("eve", lazy, 0, vec![]); // placed at height 1: not there for all of epoch 0
    chain.advance_to_epoch(2);
    chain.report("eve", lazy, 1, vec![]);
    assert_eq!(chain.app(app).unproven_reports, 1);
    chain.advance_to_epoch(3);
    chain.report("eve", lazy, 2, vec![]);
    assert_eq!(
        chain.app(app).status,
        AppStatus::Pending,
        "evicted after two unproven reports"
    );
    assert_eq!(chain.worker(lazy).status, WorkerStatus::Started);
    chain.advance_to_epoch(4);
    let placement = chain.app(app).placement.unwrap();
    assert_eq!(placement.worker, other);
    assert_eq!(
        chain.app(app).deposit,
        tokens(20),
        "nothing was paid for unproven epochs"
    );
    chain.check_invariants();
}

#[test]
fn a_closed_lease_with_nothing_left_to_hold_still_accepts_its_report() {
    let mut params = Params::dev();
    params.grace_epochs = 5;
    let mut chain = TestChain::with_params(params);
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.prices.cpu_millicore = Balance(10_000_000_000);
    profile.prices.memory_mib = Balance::ZERO;
    let worker = chain.started_worker("eve", profile);
    chain.advance_to_epoch(1);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.constraints.max_price_per_epoch = tokens(10);
    let app = chain.create_app("alice", spec, tokens(20));
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 10_000)]);
    chain.advance_to_epoch(3);
    chain.report("eve", worker, 2, vec![TestChain::proof(app, 10_000)]);
    assert_eq!(chain.app(app).deposit, Balance::ZERO);
    chain.advance(5);
    chain.ok("alice", Call::Apps(AppsCall::Stop { app }));
    assert_eq!(chain.app(app).held, Balance::ZERO);
    chain.advance_to_epoch(4);
    let events = chain.report("eve", worker, 3, vec![TestChain::proof(app, 10_000)]);
    assert!(events.contains(&Event::AppPaid {
        app,
        worker,
        epoch: 3,
        amount: Balance::ZERO,
        protocol_fee: Balance::ZERO
    }));
    chain.check_invariants();
}

#[test]
fn an_app_proven_at_zero_uptime_report_after_report_leaves_without_costing_the_worker_score() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![TestChain::proof(app, 0)]);
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 0)]);
    assert_eq!(chain.app(app).status, AppStatus::Running);
    chain.advance_to_epoch(3);
    chain.report("eve", worker, 2, vec![TestChain::proof(app, 0)]);
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    assert_eq!(
        chain.worker(worker).score,
        500,
        "reporting an app down is honest"
    );
    assert_eq!(chain.app(app).deposit, tokens(20));
    chain.check_invariants();
}

#[test]
fn an_eviction_holds_nothing_for_the_epoch_its_report_gave_up() {
    let mut params = Params::dev();
    params.proof_window_epochs = 2;
    let (mut chain, worker, app) = TestChain::serving(params);
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![]);
    chain.advance_to_epoch(3);
    chain.report("eve", worker, 2, vec![]);
    let record = chain.app(app);
    assert_eq!(record.status, AppStatus::Pending);
    // Epochs up to 2 are settled for this worker; its closed lease can claim nothing more.
    assert_eq!(record.held, Balance::ZERO);
    chain.check_invariants();
}

/// Two silent workers (eve's, dave's) holding apps, the chain at the start of epoch 3 on the
/// smallest block weight limit: each holds as many apps as make judging one fit the end of a
/// block, and judging both not, so the end of epoch 2, their second missed one, judged the
/// first worker only.
fn two_silent_workers_half_judged() -> (TestChain, Vec<wetee_types::WorkerId>) {
    let mut params = Params::dev();
    params.max_block_weight = Weight(*wetee_types::params::bounds::MAX_BLOCK_WEIGHT.start());
    let budget = wetee_runtime::hooks::hook_budget(params.max_block_weight);
    let per_worker = (1..)
        .find(|held| weights::liveness(*held).saturating_mul(2) > budget)
        .unwrap();
    assert!(weights::liveness(per_worker) <= budget);
    let mut chain = TestChain::with_params(params);
    let workers: Vec<_> = ["eve", "dave"]
        .into_iter()
        .map(|operator| {
            chain.started_worker(
                operator,
                chain.profile(
                    "eu",
                    &[TeeKind::Simulated],
                    100 * per_worker,
                    256 * per_worker,
                ),
            )
        })
        .collect();
    for _ in 0..2 * per_worker {
        chain.create_app(
            "alice",
            TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
            tokens(20),
        );
    }
    for worker in &workers {
        assert_eq!(u64::from(chain.worker(*worker).workloads), per_worker);
    }
    chain.advance_to_epoch(3);
    (chain, workers)
}

#[test]
fn an_epoch_end_judges_a_budget_of_workers_per_block_and_the_next_blocks_finish_the_sweep() {
    let (mut chain, workers) = two_silent_workers_half_judged();
    // The end of epoch 2 judged the first worker only.
    assert_eq!(chain.worker(workers[0]).status, WorkerStatus::Suspended);
    assert_eq!(chain.worker(workers[0]).workloads, 0);
    assert_eq!(chain.worker(workers[1]).status, WorkerStatus::Started);
    // The next block goes on with the sweep, judging by the epoch that ended.
    chain.next_block();
    assert_eq!(chain.worker(workers[1]).status, WorkerStatus::Suspended);
    assert_eq!(chain.worker(workers[1]).workloads, 0);
    assert!(chain.hook_events.contains(&Event::WorkerSuspended {
        worker: workers[1],
        missed_epochs: 2
    }));
    chain.check_invariants();
}

#[test]
fn a_report_sent_before_the_sweep_reaches_its_worker_does_not_undo_the_missed_epochs() {
    let (mut chain, workers) = two_silent_workers_half_judged();
    assert_eq!(chain.worker(workers[1]).status, WorkerStatus::Started);
    // Dave's worker reports the epoch that just ended before the sweep reaches it: it is
    // judged first, on the two epochs it missed before.
    chain.report("dave", workers[1], 2, vec![]);
    assert_eq!(chain.worker(workers[1]).status, WorkerStatus::Suspended);
    assert!(chain.tx_events.contains(&Event::WorkerSuspended {
        worker: workers[1],
        missed_epochs: 2
    }));
    chain.next_block();
    assert_eq!(chain.worker(workers[1]).status, WorkerStatus::Suspended);
    chain.check_invariants();
}
