//! Tasks: schedules, runs, results, payment per run, completion.

use wetee_runtime::query;
use wetee_runtime::testing::*;
use wetee_types::manifest::{Schedule, TaskExecution};
use wetee_types::records::{Due, RunStatus, StopReason, TaskStatus, VersionChange};
use wetee_types::transaction::{TasksCall, WorkersCall};
use wetee_types::{Balance, Call, CallError, Event, TaskId, TeeKind, WorkerId, Workload};

/// 500 millicores and 128 MiB on the test profile's prices, per epoch (10 s of block time).
const PRICE: u128 = 500 * 1_000_000 + 128 * 100_000;
/// The dev chain's run fee: 0.001 WTE.
const RUN_FEE: u128 = 1_000_000_000;

fn tasks(call: TasksCall) -> Call {
    Call::Tasks(call)
}

fn with_worker() -> (TestChain, WorkerId) {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    (chain, worker)
}

fn report_runs(
    chain: &mut TestChain,
    worker: WorkerId,
    epoch: u64,
    runs: Vec<wetee_types::report::RunReport>,
) -> Vec<Event> {
    let report = chain.signed_report(worker, epoch, vec![], runs);
    chain.ok(
        "eve",
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
    )
}

#[test]
fn a_one_off_task_runs_in_the_next_block_is_paid_for_its_duration_and_completes() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
        tokens(50),
    );
    assert_eq!(chain.task(task).next_due, Some(Due::Height { height: 2 }));
    chain.next_block();
    assert!(
        chain
            .hook_events
            .contains(&Event::TaskRunDue { task, run: 1 })
    );
    let run = &query::task_runs(&chain.state, task).unwrap()[0];
    assert_eq!(run.status, RunStatus::Assigned);
    assert_eq!(run.worker, Some(worker));
    assert_eq!(run.escrow, Balance(PRICE * 3));
    assert_eq!(chain.worker(worker).workloads, 1);
    chain.check_invariants();

    chain.advance_to_epoch(1);
    let events = report_runs(&mut chain, worker, 0, vec![run_report(task, 1, 5_000)]);
    let paid = Balance(PRICE / 2);
    assert!(events.contains(&Event::TaskRunFinished {
        task,
        run: 1,
        worker,
        exit_code: 0,
        paid
    }));
    assert!(events.contains(&Event::TaskCompleted {
        task,
        refund: Balance(tokens(50).0 - paid.0 - RUN_FEE)
    }));
    let record = chain.task(task);
    assert_eq!(record.status, TaskStatus::Completed);
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.worker(worker).workloads, 0);
    let result = query::task_runs(&chain.state, task).unwrap()[0]
        .result
        .clone()
        .unwrap();
    assert_eq!(result.duration_ms, 5_000);
    assert_eq!(result.paid, paid);
    chain.check_invariants();
}

#[test]
fn a_periodic_task_runs_every_n_blocks_until_its_run_limit() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(5), 30, Some(2)),
        tokens(50),
    );
    chain.advance(6); // heights 2 and 7
    let runs = query::task_runs(&chain.state, task).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].due_at, 2);
    assert_eq!(runs[1].due_at, 7);
    assert_eq!(chain.task(task).next_due, None);
    chain.advance_to_epoch(1);
    report_runs(
        &mut chain,
        worker,
        0,
        vec![run_report(task, 1, 1_000), run_report(task, 2, 2_000)],
    );
    assert_eq!(chain.task(task).status, TaskStatus::Completed);
    assert!(
        query::task_runs(&chain.state, task)
            .unwrap()
            .iter()
            .all(|r| r.status == RunStatus::Finished)
    );
    chain.check_invariants();
}

#[test]
fn a_cron_task_fires_on_block_time() {
    let (mut chain, _) = with_worker();
    let cron = Schedule::Cron {
        expression: wetee_types::codec::BoundedString::try_new("* * * * *").unwrap(),
    };
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, cron, 30, Some(1)),
        tokens(50),
    );
    // Genesis is at 00:00:00 and blocks are a second apart: the first whole minute is height 60.
    assert_eq!(
        chain.task(task).next_due,
        Some(Due::Time {
            ms: GENESIS_MS + 60_000
        })
    );
    chain.advance(58);
    assert_eq!(chain.height, 59);
    assert!(query::task_runs(&chain.state, task).unwrap().is_empty());
    chain.next_block();
    let runs = query::task_runs(&chain.state, task).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].due_at, 60);
}

#[test]
fn a_run_without_a_result_frees_its_capacity_at_the_deadline_and_expires_unpaid() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
        tokens(50),
    );
    chain.next_block(); // assigned at height 2, deadline 30 s later: height 32
    chain.advance(29);
    assert_eq!(chain.height, 31);
    assert_eq!(chain.worker(worker).workloads, 1);
    chain.next_block();
    assert_eq!(chain.worker(worker).workloads, 0);
    assert_eq!(
        query::task_runs(&chain.state, task).unwrap()[0].status,
        RunStatus::Assigned
    );
    chain.check_invariants();
    // Epoch 3's window closes at the end of epoch 4.
    chain.advance_to_epoch(5);
    assert_eq!(
        query::task_runs(&chain.state, task).unwrap()[0].status,
        RunStatus::Expired
    );
    assert!(
        chain
            .hook_events
            .contains(&Event::TaskRunExpired { task, run: 1 })
    );
    assert_eq!(chain.task(task).status, TaskStatus::Completed);
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.worker(worker).earnings, Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn only_the_assigned_worker_reports_a_run() {
    let (mut chain, _worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
        tokens(50),
    );
    let other = chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.next_block();
    chain.advance_to_epoch(1);
    let report = chain.signed_report(other, 0, vec![], vec![run_report(task, 1, 1_000)]);
    chain.fails(
        "dave",
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
        CallError::RunNotAssigned {
            task,
            run: 1,
            worker: other,
        },
    );
    let report = chain.signed_report(other, 0, vec![], vec![run_report(task, 9, 1_000)]);
    chain.fails(
        "dave",
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
        CallError::RunNotAssigned {
            task,
            run: 9,
            worker: other,
        },
    );
}

#[test]
fn a_run_is_paid_at_most_for_its_timeout() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
        tokens(50),
    );
    chain.next_block();
    chain.advance_to_epoch(4); // 38 s after assignment, the run's epoch-3 report is still open
    let events = report_runs(&mut chain, worker, 3, vec![run_report(task, 1, 3_600_000)]);
    assert!(events.contains(&Event::TaskRunFinished {
        task,
        run: 1,
        worker,
        exit_code: 0,
        paid: Balance(PRICE * 3)
    }));
}

#[test]
fn a_run_is_never_paid_for_more_time_than_has_passed() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 3_600, None),
        tokens(5_000),
    );
    chain.next_block(); // assigned at height 2
    chain.advance_to_epoch(1); // height 10: 8 s later
    let events = report_runs(&mut chain, worker, 0, vec![run_report(task, 1, 3_600_000)]);
    assert!(events.contains(&Event::TaskRunFinished {
        task,
        run: 1,
        worker,
        exit_code: 0,
        paid: Balance(PRICE * 8 / 10)
    }));
    chain.check_invariants();
}

#[test]
fn shortening_the_timeout_does_not_cut_the_pay_of_a_run_already_assigned() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(100), 100, None),
        tokens(500),
    );
    chain.next_block();
    let execution = TaskExecution {
        schedule: sched_every(100),
        timeout_secs: 1,
        max_runs: None,
    };
    chain.ok("alice", tasks(TasksCall::SetExecution { task, execution }));
    chain.advance_to_epoch(1);
    let events = report_runs(&mut chain, worker, 0, vec![run_report(task, 1, 5_000)]);
    assert!(events.contains(&Event::TaskRunFinished {
        task,
        run: 1,
        worker,
        exit_code: 0,
        paid: Balance(PRICE / 2)
    }));
}

#[test]
fn a_crowd_of_unplaceable_tasks_cannot_starve_a_cron_task() {
    let (mut chain, _worker) = with_worker();
    for i in 0..1_100u32 {
        let owner = ["bob", "charlie", "dave"][i as usize % 3];
        chain.create_task(
            owner,
            TestChain::task_spec(TeeKind::Sgx, sched_every(1), 30, None),
            tokens(31),
        );
    }
    let cron = Schedule::Cron {
        expression: wetee_types::codec::BoundedString::try_new("* * * * *").unwrap(),
    };
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, cron, 10, None),
        tokens(50),
    );
    chain.advance(125); // past 00:01 and 00:02 of block time
    assert!(query::task_runs(&chain.state, task).unwrap().len() >= 2);
    // The unplaceable tasks each made one run, which waits; their schedules paused.
    assert_eq!(chain.task(TaskId(1)).runs, 1);
    assert_eq!(chain.task(TaskId(1)).next_due, None);
}

#[test]
fn a_due_run_with_no_worker_waits_and_is_placed_at_the_epoch_end() {
    let mut chain = TestChain::new();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(3), 30, None),
        tokens(50),
    );
    chain.next_block();
    assert_eq!(chain.task(task).waiting_run, Some(1));
    let reason = query::pending_reason(&chain.state, &Workload::TaskRun { task, run: 1 })
        .unwrap()
        .unwrap();
    assert_eq!(reason, "no worker is registered");
    chain.advance(4); // another due time passes while run 1 waits: no pile-up
    assert_eq!(chain.task(task).runs, 1);
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(1);
    let run = &query::task_runs(&chain.state, task).unwrap()[0];
    assert_eq!(run.status, RunStatus::Assigned);
    assert_eq!(run.worker, Some(worker));
    assert_eq!(chain.task(task).waiting_run, None);
    chain.check_invariants();
}

#[test]
fn stopping_a_task_cancels_its_waiting_run_and_refunds_what_no_run_holds() {
    let mut chain = TestChain::new();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(3), 30, None),
        tokens(50),
    );
    chain.next_block();
    let events = chain.ok("alice", tasks(TasksCall::Stop { task }));
    assert!(events.contains(&Event::TaskStopped {
        task,
        reason: StopReason::Owner,
        refund: Balance(tokens(50).0 - RUN_FEE)
    }));
    assert_eq!(
        query::task_runs(&chain.state, task).unwrap()[0].status,
        RunStatus::Cancelled
    );
    assert!(query::pending_placements(&chain.state).unwrap().is_empty());
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    chain.fails(
        "alice",
        tasks(TasksCall::Stop { task }),
        CallError::TaskNotActive { task },
    );
    chain.check_invariants();
}

#[test]
fn a_stopped_task_still_pays_for_a_run_in_flight_and_refunds_the_rest() {
    let (mut chain, worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(3), 30, None),
        tokens(50),
    );
    chain.next_block();
    chain.ok("alice", tasks(TasksCall::Stop { task }));
    assert_eq!(chain.reserved("alice"), Balance(PRICE * 3));
    chain.advance_to_epoch(1);
    report_runs(&mut chain, worker, 0, vec![run_report(task, 1, 10_000)]);
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.task(task).deposit, Balance::ZERO);
    chain.check_invariants();
}

#[test]
fn a_task_that_cannot_afford_its_next_run_stops() {
    let (mut chain, _worker) = with_worker();
    // Exactly one worst-case run: 10 tokens an epoch for 30 s of 10 s epochs, plus the run fee.
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(3), 30, None),
        Balance(tokens(30).0 + RUN_FEE),
    );
    chain.next_block();
    assert_eq!(chain.task(task).runs, 1);
    chain.advance(3);
    assert_eq!(
        chain.task(task).status,
        TaskStatus::Stopped {
            reason: StopReason::DepositExhausted
        }
    );
    chain.check_invariants();
}

#[test]
fn task_deposits_must_cover_one_worst_case_run() {
    let mut chain = TestChain::new();
    chain.fails(
        "alice",
        tasks(TasksCall::Create {
            spec: TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
            deposit: tokens(30),
        }),
        CallError::DepositTooLow {
            minimum: Balance(tokens(30).0 + RUN_FEE),
        },
    );
    let mut bad = TestChain::task_spec(TeeKind::Simulated, sched_every(0), 30, None);
    chain.fails(
        "alice",
        tasks(TasksCall::Create {
            spec: bad.clone(),
            deposit: tokens(50),
        }),
        CallError::InvalidManifest {
            field: wetee_types::error::error_text("task.every_blocks"),
            problem: wetee_types::error::error_text("must be greater than zero"),
        },
    );
    bad.execution.schedule = sched_every(5);
    bad.execution.max_runs = Some(0);
    let tx = chain.transaction(
        chain.key("alice"),
        tasks(TasksCall::Create {
            spec: bad,
            deposit: tokens(50),
        }),
    );
    assert!(matches!(
        chain.apply(&tx).unwrap().outcome,
        wetee_types::Outcome::Failed {
            error: CallError::InvalidManifest { .. }
        }
    ));
}

#[test]
fn only_the_owner_changes_an_active_task() {
    let mut chain = TestChain::new();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(5), 30, None),
        tokens(50),
    );
    let spec = TestChain::task_spec(TeeKind::Simulated, sched_every(5), 60, None);
    let not_owner = CallError::NotTaskOwner { task };
    chain.fails(
        "bob",
        tasks(TasksCall::Update {
            task,
            spec: spec.clone(),
        }),
        not_owner.clone(),
    );
    chain.fails(
        "bob",
        tasks(TasksCall::SetExecution {
            task,
            execution: spec.execution.clone(),
        }),
        not_owner.clone(),
    );
    chain.fails(
        "bob",
        tasks(TasksCall::Recharge {
            task,
            amount: tokens(1),
        }),
        not_owner.clone(),
    );
    chain.fails("bob", tasks(TasksCall::Stop { task }), not_owner);
    chain.fails(
        "bob",
        tasks(TasksCall::Stop { task: TaskId(77) }),
        CallError::TaskNotFound { task: TaskId(77) },
    );
    chain.fails(
        "alice",
        tasks(TasksCall::Recharge {
            task,
            amount: Balance::ZERO,
        }),
        CallError::ZeroAmount,
    );
    chain.ok(
        "alice",
        tasks(TasksCall::Recharge {
            task,
            amount: tokens(5),
        }),
    );
    assert_eq!(chain.task(task).deposit, tokens(55));
}

#[test]
fn changing_the_execution_reschedules_from_now_and_keeps_history() {
    let mut chain = TestChain::new();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(50), 30, None),
        tokens(50),
    );
    chain.advance(3);
    let execution = TaskExecution {
        schedule: sched_every(2),
        timeout_secs: 10,
        max_runs: Some(4),
    };
    let events = chain.ok(
        "alice",
        tasks(TasksCall::SetExecution {
            task,
            execution: execution.clone(),
        }),
    );
    assert!(events.contains(&Event::TaskUpdated { task, version: 2 }));
    let record = chain.task(task);
    assert_eq!(record.spec.execution, execution);
    assert_eq!(
        record.next_due,
        Some(Due::Height {
            height: chain.height + 1
        })
    );
    let history = query::task_versions(&chain.state, task).unwrap();
    assert_eq!(
        history.iter().map(|v| v.change).collect::<Vec<_>>(),
        vec![VersionChange::Created, VersionChange::Settings]
    );
    // The old due height no longer fires anything.
    chain.advance(60);
    assert!(chain.task(task).runs <= 4);
    chain.check_invariants();
}

#[test]
fn an_update_is_a_new_version_and_a_run_keeps_the_version_it_started_with() {
    let (mut chain, _worker) = with_worker();
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(5), 30, None),
        tokens(50),
    );
    chain.next_block();
    let mut spec = TestChain::task_spec(TeeKind::Simulated, sched_every(5), 30, None);
    spec.container.args = wetee_types::codec::BoundedVec::try_new(vec![
        wetee_types::codec::BoundedString::try_new("--v2").unwrap(),
    ])
    .unwrap();
    chain.ok(
        "alice",
        tasks(TasksCall::Update {
            task,
            spec: spec.clone(),
        }),
    );
    assert_eq!(chain.task(task).version, 2);
    assert_eq!(chain.task(task).spec, spec);
    chain.advance(5);
    let runs = query::task_runs(&chain.state, task).unwrap();
    assert_eq!(runs[0].version, 1);
    assert_eq!(runs[1].version, 2);
    chain.check_invariants();
}

#[test]
fn a_production_chain_refuses_tasks_on_the_simulated_tee() {
    let mut chain = TestChain::with_config(
        wetee_types::params::Params::production(),
        production_policy(),
    );
    chain.fails(
        "alice",
        tasks(TasksCall::Create {
            spec: TestChain::task_spec(TeeKind::Simulated, Schedule::Once, 30, None),
            deposit: tokens(50),
        }),
        CallError::SimulatedTeeNotAllowed,
    );
}

#[test]
fn every_run_pays_the_run_fee_even_on_a_worker_that_charges_nothing() {
    let mut chain = TestChain::new();
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.prices = wetee_types::Prices::default();
    chain.started_worker("eve", profile);
    let task = chain.create_task(
        "alice",
        TestChain::task_spec(TeeKind::Simulated, sched_every(1), 30, Some(5)),
        tokens(31),
    );
    let treasury = chain.treasury_free();
    chain.advance(5);
    assert_eq!(chain.task(task).runs, 5);
    assert_eq!(chain.treasury_free(), Balance(treasury.0 + 5 * RUN_FEE));
    assert_eq!(
        chain.task(task).deposit,
        Balance(tokens(31).0 - 5 * RUN_FEE)
    );
    chain.check_invariants();
}
