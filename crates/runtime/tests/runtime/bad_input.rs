//! Hostile and absurd input: typed errors, no panic, nothing changed but the fee.

use wetee_runtime::testing::*;
use wetee_types::codec::BoundedVec;
use wetee_types::params::Params;
use wetee_types::transaction::{AppsCall, TasksCall, WorkersCall};
use wetee_types::{AppId, Balance, Call, CallError, Outcome, Resources, TaskId, TeeKind, WorkerId};

fn outcome(chain: &mut TestChain, who: &str, call: Call) -> Outcome {
    let key = chain.key(who).clone();
    chain.submit_atomic(&key, call).unwrap().outcome
}

#[test]
fn amounts_near_the_top_of_u128_never_overflow_silently() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    let task = chain.create_task(
        "bob",
        TestChain::task_spec(TeeKind::Simulated, sched_every(5), 30, None),
        tokens(50),
    );
    let max = Balance(u128::MAX);
    let calls = [
        ("alice", TestChain::transfer(chain.who("bob"), max)),
        (
            "eve",
            Call::Workers(WorkersCall::Stake {
                worker,
                amount: max,
            }),
        ),
        (
            "eve",
            Call::Workers(WorkersCall::Unstake {
                worker,
                amount: max,
            }),
        ),
        ("alice", Call::Apps(AppsCall::Recharge { app, amount: max })),
        (
            "alice",
            Call::Apps(AppsCall::Create {
                spec: TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
                deposit: max,
            }),
        ),
        (
            "bob",
            Call::Tasks(TasksCall::Recharge { task, amount: max }),
        ),
        (
            "alice",
            Call::Workers(WorkersCall::FileComplaint {
                worker,
                evidence_hash: wetee_types::Hash::ZERO,
                bond: max,
            }),
        ),
    ];
    for (who, call) in calls {
        assert!(
            matches!(
                outcome(&mut chain, who, call.clone()),
                Outcome::Failed { .. }
            ),
            "{call:?}"
        );
    }
    chain.check_invariants();
}

#[test]
fn resources_times_replicas_that_overflow_are_an_invalid_manifest() {
    let mut chain = TestChain::new();
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.container.resources = Resources {
        cpu_millicores: u64::MAX,
        memory_mib: u64::MAX,
        disk_gib: u64::MAX,
        gpus: u64::MAX,
    };
    spec.replicas = u32::MAX;
    assert!(matches!(
        outcome(
            &mut chain,
            "alice",
            Call::Apps(AppsCall::Create {
                spec,
                deposit: tokens(20)
            })
        ),
        Outcome::Failed {
            error: CallError::InvalidManifest { .. }
        }
    ));
}

#[test]
fn unknown_ids_everywhere_give_not_found_errors() {
    let mut chain = TestChain::new();
    let (w, a, t) = (WorkerId(404), AppId(404), TaskId(404));
    let cases = [
        (
            Call::Workers(WorkersCall::Start { worker: w }),
            CallError::WorkerNotFound { worker: w },
        ),
        (
            Call::Workers(WorkersCall::Stop { worker: w }),
            CallError::WorkerNotFound { worker: w },
        ),
        (
            Call::Workers(WorkersCall::Withdraw { worker: w }),
            CallError::WorkerNotFound { worker: w },
        ),
        (
            Call::Workers(WorkersCall::Unstake {
                worker: w,
                amount: tokens(1),
            }),
            CallError::WorkerNotFound { worker: w },
        ),
        (
            Call::Apps(AppsCall::Restart { app: a }),
            CallError::AppNotFound { app: a },
        ),
        (
            Call::Apps(AppsCall::Recharge {
                app: a,
                amount: tokens(1),
            }),
            CallError::AppNotFound { app: a },
        ),
        (
            Call::Apps(AppsCall::Update {
                app: a,
                spec: TestChain::app_spec(1, 1, TeeKind::Simulated, None),
                secrets_grant: None,
            }),
            CallError::AppNotFound { app: a },
        ),
        (
            Call::Tasks(TasksCall::Recharge {
                task: t,
                amount: tokens(1),
            }),
            CallError::TaskNotFound { task: t },
        ),
    ];
    for (call, expected) in cases {
        chain.fails("alice", call, expected);
    }
}

#[test]
fn a_report_for_a_worker_that_does_not_exist_is_refused() {
    let mut chain = TestChain::new();
    chain.advance_to_epoch(1);
    let report = chain.signed_report(WorkerId(3), 0, vec![], vec![]);
    chain.fails(
        "alice",
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
        CallError::WorkerNotFound {
            worker: WorkerId(3),
        },
    );
}

#[test]
fn a_report_stuffed_with_entries_is_bounded_by_its_type() {
    let proofs = vec![TestChain::proof(AppId(1), 1); wetee_types::report::MAX_REPORT_APPS + 1];
    assert!(BoundedVec::<_, { wetee_types::report::MAX_REPORT_APPS }>::try_new(proofs).is_err());
}
