//! Property tests: random sequences of valid and invalid calls never break an invariant.

use proptest::prelude::*;
use wetee_runtime::testing::*;
use wetee_types::manifest::Schedule;
use wetee_types::records::AppSettings;
use wetee_types::transaction::{AppsCall, TasksCall, WorkersCall};
use wetee_types::{AccountId, AppId, Call, ComplaintId, Hash, TaskId, TeeKind, WorkerId};

/// A step refers to existing workers, apps and tasks by `pick` (an index modulo how many exist)
/// and is signed by their owner when `as_owner` is true, so most steps are meaningful calls while
/// the rest exercise the error paths (wrong signer, unknown id, bad amounts).
#[derive(Debug, Clone)]
enum Step {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    RegisterWorker {
        operator: usize,
        region: usize,
        tee: usize,
        cpu: u64,
    },
    Stake {
        pick: usize,
        as_owner: bool,
        amount: u128,
    },
    Unstake {
        pick: usize,
        as_owner: bool,
        amount: u128,
    },
    Start {
        pick: usize,
        as_owner: bool,
    },
    /// The operator stakes what level 0 requires and starts the worker.
    Online {
        pick: usize,
    },
    Stop {
        pick: usize,
        as_owner: bool,
    },
    Withdraw {
        pick: usize,
        as_owner: bool,
    },
    CreateApp {
        owner: usize,
        cpu: u64,
        replicas: u32,
        tee: usize,
        region: Option<usize>,
        deposit: u128,
    },
    UpdateApp {
        pick: usize,
        as_owner: bool,
        cpu: u64,
        region: Option<usize>,
    },
    Replicas {
        pick: usize,
        as_owner: bool,
        replicas: u32,
    },
    Recharge {
        pick: usize,
        as_owner: bool,
        amount: u128,
    },
    StopApp {
        pick: usize,
        as_owner: bool,
    },
    CreateTask {
        owner: usize,
        every: u64,
        timeout: u32,
        runs: Option<u32>,
        deposit: u128,
    },
    StopTask {
        pick: usize,
        as_owner: bool,
    },
    /// An honest report lists what the worker runs; a dishonest one names random apps and runs.
    Report {
        pick: usize,
        as_owner: bool,
        honest: bool,
        epoch_back: u64,
        apps: Vec<(usize, u16)>,
        runs: Vec<(usize, u32, u64)>,
    },
    Complain {
        reporter: usize,
        pick: usize,
    },
    Slash {
        pick: usize,
        amount: u128,
        complaint: Option<u64>,
    },
    Dismiss {
        complaint: u64,
    },
    Advance {
        blocks: u64,
    },
}

const REGIONS: [&str; 2] = ["eu", "us"];
// TDX twice as often, so that placements are common and mismatches still happen.
const TEES: [TeeKind; 4] = [
    TeeKind::Simulated,
    TeeKind::Simulated,
    TeeKind::Sgx,
    TeeKind::Simulated,
];

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS.len();
    let pick = 0usize..8;
    // Signed by the owner five times in six.
    let owner = (0u8..6).prop_map(|n| n != 0);
    prop_oneof![
        1 => (user.clone(), user.clone(), 0u128..2_000).prop_map(|(from, to, amount)| Step::Transfer { from, to, amount }),
        2 => (user.clone(), 0..2usize, 0..4usize, 0u64..10_000).prop_map(|(operator, region, tee, cpu)| Step::RegisterWorker { operator, region, tee, cpu }),
        1 => (pick.clone(), owner.clone(), 0u128..300).prop_map(|(pick, as_owner, amount)| Step::Stake { pick, as_owner, amount }),
        1 => (pick.clone(), owner.clone(), 0u128..200).prop_map(|(pick, as_owner, amount)| Step::Unstake { pick, as_owner, amount }),
        1 => (pick.clone(), owner.clone()).prop_map(|(pick, as_owner)| Step::Start { pick, as_owner }),
        3 => pick.clone().prop_map(|pick| Step::Online { pick }),
        1 => (pick.clone(), owner.clone()).prop_map(|(pick, as_owner)| Step::Stop { pick, as_owner }),
        1 => (pick.clone(), owner.clone()).prop_map(|(pick, as_owner)| Step::Withdraw { pick, as_owner }),
        3 => (user.clone(), 0u64..5_000, 0u32..4, 0..4usize, proptest::option::weighted(0.3, 0..2usize), 0u128..40)
            .prop_map(|(owner, cpu, replicas, tee, region, deposit)| Step::CreateApp { owner, cpu, replicas, tee, region, deposit }),
        1 => (pick.clone(), owner.clone(), 0u64..5_000, proptest::option::of(0..2usize)).prop_map(|(pick, as_owner, cpu, region)| Step::UpdateApp { pick, as_owner, cpu, region }),
        1 => (pick.clone(), owner.clone(), 0u32..4).prop_map(|(pick, as_owner, replicas)| Step::Replicas { pick, as_owner, replicas }),
        1 => (pick.clone(), owner.clone(), 0u128..20).prop_map(|(pick, as_owner, amount)| Step::Recharge { pick, as_owner, amount }),
        1 => (pick.clone(), owner.clone()).prop_map(|(pick, as_owner)| Step::StopApp { pick, as_owner }),
        2 => (user.clone(), 0u64..8, 1u32..40, proptest::option::of(0u32..4), 0u128..60)
            .prop_map(|(owner, every, timeout, runs, deposit)| Step::CreateTask { owner, every, timeout, runs, deposit }),
        1 => (pick.clone(), owner.clone()).prop_map(|(pick, as_owner)| Step::StopTask { pick, as_owner }),
        5 => (
            pick.clone(),
            owner.clone(),
            (0u8..4).prop_map(|n| n != 0),
            prop_oneof![3 => Just(1u64), 1 => 0u64..3],
            proptest::collection::vec((0usize..8, 0u16..10_500), 0..3),
            proptest::collection::vec((0usize..8, 1u32..4, 0u64..60_000), 0..3),
        )
            .prop_map(|(pick, as_owner, honest, epoch_back, apps, runs)| Step::Report { pick, as_owner, honest, epoch_back, apps, runs }),
        1 => (user.clone(), pick.clone()).prop_map(|(reporter, pick)| Step::Complain { reporter, pick }),
        1 => (pick.clone(), 0u128..300, proptest::option::of(1u64..4)).prop_map(|(pick, amount, complaint)| Step::Slash { pick, amount, complaint }),
        1 => (1u64..4).prop_map(|complaint| Step::Dismiss { complaint }),
        3 => (1u64..25).prop_map(|blocks| Step::Advance { blocks }),
    ]
}

/// Existing ids and owners, to resolve picks.
struct World {
    workers: Vec<(WorkerId, AccountId)>,
    apps: Vec<(AppId, AccountId)>,
    tasks: Vec<(TaskId, AccountId)>,
}

impl World {
    fn of(chain: &TestChain) -> World {
        let q = &chain.state;
        World {
            workers: wetee_runtime::query::workers(q)
                .unwrap()
                .into_iter()
                .map(|w| (w.id, w.operator))
                .collect(),
            apps: wetee_runtime::query::apps(q, None)
                .unwrap()
                .into_iter()
                .map(|a| (a.id, a.owner))
                .collect(),
            tasks: wetee_runtime::query::tasks(q, None)
                .unwrap()
                .into_iter()
                .map(|t| (t.id, t.owner))
                .collect(),
        }
    }
}

/// Picks among `items` (an unknown id when there are none, or one time in eight), and the
/// signer: the owner, or another user.
fn resolve<I: Copy>(
    chain: &TestChain,
    items: &[(I, AccountId)],
    pick: usize,
    as_owner: bool,
    unknown: I,
) -> (I, &'static str) {
    let owner_name = |who: &AccountId| {
        USERS
            .iter()
            .copied()
            .find(|u| chain.who(u) == *who)
            .unwrap_or("alice")
    };
    let chosen = if pick == 7 {
        None
    } else {
        items.get(pick % items.len().max(1))
    };
    match chosen {
        Some((id, owner)) => {
            let owner = owner_name(owner);
            let signer = if as_owner {
                owner
            } else {
                USERS[(pick + 1) % USERS.len()]
            };
            (
                *id,
                if !as_owner && signer == owner {
                    USERS[(pick + 2) % USERS.len()]
                } else {
                    signer
                },
            )
        }
        None => (unknown, USERS[pick % USERS.len()]),
    }
}

fn apply(chain: &mut TestChain, step: &Step) {
    let name = |i: usize| USERS[i];
    let world = World::of(chain);
    let call = match step.clone() {
        Step::Transfer { from, to, amount } => Some((
            name(from),
            TestChain::transfer(chain.who(name(to)), tokens(amount)),
        )),
        Step::RegisterWorker {
            operator,
            region,
            tee,
            cpu,
        } => {
            // An invalid profile (cpu 0, a refused TEE) fails inside the call: a valid step too.
            let profile = chain.profile(REGIONS[region], &[TEES[tee]], cpu, 16_384);
            chain.try_register(name(operator), profile);
            None
        }
        Step::Stake {
            pick,
            as_owner,
            amount,
        } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            Some((
                who,
                Call::Workers(WorkersCall::Stake {
                    worker,
                    amount: tokens(amount),
                }),
            ))
        }
        Step::Unstake {
            pick,
            as_owner,
            amount,
        } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            Some((
                who,
                Call::Workers(WorkersCall::Unstake {
                    worker,
                    amount: tokens(amount),
                }),
            ))
        }
        Step::Start { pick, as_owner } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            Some((who, Call::Workers(WorkersCall::Start { worker })))
        }
        Step::Online { pick } => {
            let (worker, who) = resolve(chain, &world.workers, pick, true, WorkerId(99));
            let key = chain.key(who).clone();
            let stake = Call::Workers(WorkersCall::Stake {
                worker,
                amount: tokens(100),
            });
            chain.submit_atomic(&key, stake).expect("valid transaction");
            Some((who, Call::Workers(WorkersCall::Start { worker })))
        }
        Step::Stop { pick, as_owner } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            Some((who, Call::Workers(WorkersCall::Stop { worker })))
        }
        Step::Withdraw { pick, as_owner } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            Some((who, Call::Workers(WorkersCall::Withdraw { worker })))
        }
        Step::CreateApp {
            owner,
            cpu,
            replicas,
            tee,
            region,
            deposit,
        } => {
            let mut spec = TestChain::app_spec(cpu, 256, TEES[tee], region.map(|r| REGIONS[r]));
            spec.replicas = replicas;
            Some((
                name(owner),
                Call::Apps(AppsCall::Create {
                    spec,
                    deposit: tokens(deposit),
                }),
            ))
        }
        Step::UpdateApp {
            pick,
            as_owner,
            cpu,
            region,
        } => {
            let (app, who) = resolve(chain, &world.apps, pick, as_owner, AppId(99));
            let spec =
                TestChain::app_spec(cpu, 256, TeeKind::Simulated, region.map(|r| REGIONS[r]));
            Some((
                who,
                Call::Apps(AppsCall::Update {
                    app,
                    spec,
                    secrets_grant: None,
                }),
            ))
        }
        Step::Replicas {
            pick,
            as_owner,
            replicas,
        } => {
            let (app, who) = resolve(chain, &world.apps, pick, as_owner, AppId(99));
            let settings = AppSettings {
                replicas: Some(replicas),
                ..Default::default()
            };
            Some((who, Call::Apps(AppsCall::SetSettings { app, settings })))
        }
        Step::Recharge {
            pick,
            as_owner,
            amount,
        } => {
            let (app, who) = resolve(chain, &world.apps, pick, as_owner, AppId(99));
            Some((
                who,
                Call::Apps(AppsCall::Recharge {
                    app,
                    amount: tokens(amount),
                }),
            ))
        }
        Step::StopApp { pick, as_owner } => {
            let (app, who) = resolve(chain, &world.apps, pick, as_owner, AppId(99));
            Some((who, Call::Apps(AppsCall::Stop { app })))
        }
        Step::CreateTask {
            owner,
            every,
            timeout,
            runs,
            deposit,
        } => {
            let schedule = if every == 0 {
                Schedule::Once
            } else {
                sched_every(every)
            };
            let runs = if every == 0 { None } else { runs };
            let spec = TestChain::task_spec(TeeKind::Simulated, schedule, timeout, runs);
            Some((
                name(owner),
                Call::Tasks(TasksCall::Create {
                    spec,
                    deposit: tokens(deposit),
                }),
            ))
        }
        Step::StopTask { pick, as_owner } => {
            let (task, who) = resolve(chain, &world.tasks, pick, as_owner, TaskId(99));
            Some((who, Call::Tasks(TasksCall::Stop { task })))
        }
        Step::Report {
            pick,
            as_owner,
            honest,
            epoch_back,
            apps,
            runs,
        } => {
            let (worker, who) = resolve(chain, &world.workers, pick, as_owner, WorkerId(99));
            let epoch = chain.epoch().saturating_sub(epoch_back);
            let (apps, runs) = if honest {
                // What an honest worker proves: apps it held a lease for during the epoch, and
                // runs assigned to it by the end of that epoch.
                let (start, end) = (epoch * EPOCH, (epoch + 1) * EPOCH);
                let q = &chain.state;
                let mut proofs = Vec::new();
                for (i, (app, _)) in world.apps.iter().enumerate() {
                    let leases = wetee_runtime::query::leases(q, worker, *app).unwrap();
                    if leases
                        .iter()
                        .any(|l| l.start < end && l.end.is_none_or(|e| e > start))
                    {
                        let uptime = apps.get(i).map_or(10_000, |(_, u)| (*u).min(10_000));
                        proofs.push(TestChain::proof(*app, uptime));
                    }
                }
                let mut results = Vec::new();
                for (task, _) in &world.tasks {
                    for run in wetee_runtime::query::task_runs(q, *task).unwrap() {
                        if run.worker == Some(worker)
                            && run.status == wetee_types::records::RunStatus::Assigned
                            && run.assigned_at.is_some_and(|at| at < end)
                        {
                            results.push(run_report(*task, run.run, 4_000));
                        }
                    }
                }
                (proofs, results)
            } else {
                let app_id = |i: usize| world.apps.get(i).map_or(AppId(99), |(id, _)| *id);
                let task_id = |i: usize| world.tasks.get(i).map_or(TaskId(99), |(id, _)| *id);
                (
                    apps.into_iter()
                        .map(|(i, uptime)| TestChain::proof(app_id(i), uptime))
                        .collect(),
                    runs.into_iter()
                        .map(|(i, run, ms)| run_report(task_id(i), run, ms))
                        .collect(),
                )
            };
            let report = chain.signed_report(worker, epoch, apps, runs);
            Some((who, Call::Workers(WorkersCall::SubmitWorkReport { report })))
        }
        Step::Complain { reporter, pick } => {
            let (worker, _) = resolve(chain, &world.workers, pick, true, WorkerId(99));
            Some((
                name(reporter),
                Call::Workers(WorkersCall::FileComplaint {
                    worker,
                    evidence_hash: Hash::of(b"e"),
                    bond: tokens(10),
                }),
            ))
        }
        Step::Slash {
            pick,
            amount,
            complaint,
        } => {
            let (worker, _) = resolve(chain, &world.workers, pick, true, WorkerId(99));
            let root = chain.root.clone();
            let call = Call::Workers(WorkersCall::Slash {
                worker,
                amount: tokens(amount),
                complaint: complaint.map(ComplaintId),
            });
            chain
                .try_submit(&root, call)
                .expect("root transactions are valid");
            None
        }
        Step::Dismiss { complaint } => {
            let root = chain.root.clone();
            let call = Call::Workers(WorkersCall::DismissComplaint {
                complaint: ComplaintId(complaint),
            });
            chain
                .try_submit(&root, call)
                .expect("root transactions are valid");
            None
        }
        Step::Advance { blocks } => {
            chain.advance(blocks);
            None
        }
    };
    if let Some((who, call)) = call {
        let key = chain.key(who).clone();
        // Valid or failing, a transaction from a funded account is always includable.
        chain
            .try_submit(&key, call)
            .expect("a funded, well-formed transaction is valid");
    }
}

/// Every case starts with two started workers, so placements, moves and payments are common;
/// the random steps add, stop, slash and drain more.
fn world_with_two_workers() -> TestChain {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 12_000, 16_384),
    );
    chain.started_worker(
        "dave",
        chain.profile("us", &[TeeKind::Simulated, TeeKind::Sgx], 8_000, 16_384),
    );
    chain
}

/// Runs the steps from the two-worker world. Every failed call is checked to have changed only
/// the signer's nonce and fee (`submit_atomic`), and every invariant is checked after each step.
fn run(steps: &[Step]) -> TestChain {
    let mut chain = world_with_two_workers();
    for step in steps {
        apply(&mut chain, step);
        chain.check_invariants();
    }
    chain
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn random_call_sequences_keep_every_invariant(steps in proptest::collection::vec(step(), 1..80)) {
        run(&steps);
    }

    #[test]
    fn the_same_steps_reach_the_same_state(steps in proptest::collection::vec(step(), 1..30)) {
        let a = run(&steps);
        let b = run(&steps);
        prop_assert_eq!(a.state.digest(), b.state.digest());
    }
}

#[test]
fn a_long_busy_run_keeps_every_invariant() {
    // A fixed scenario with every module active, as a regression anchor for the properties.
    let mut steps = Vec::new();
    for i in 0..3 {
        steps.push(Step::RegisterWorker {
            operator: 4,
            region: i % 2,
            tee: 0,
            cpu: 6_000 + i as u64,
        });
        steps.push(Step::Stake {
            pick: i,
            as_owner: true,
            amount: 150,
        });
        steps.push(Step::Start {
            pick: i,
            as_owner: true,
        });
    }
    for i in 0..5 {
        steps.push(Step::CreateApp {
            owner: i % 4,
            cpu: 1_500,
            replicas: 1,
            tee: 0,
            region: Some(i % 2),
            deposit: 25,
        });
        steps.push(Step::CreateTask {
            owner: i % 4,
            every: 4,
            timeout: 20,
            runs: Some(3),
            deposit: 40,
        });
    }
    for epoch in 0..6u64 {
        steps.push(Step::Advance { blocks: 10 });
        for w in 0..3 {
            steps.push(Step::Report {
                pick: w,
                as_owner: true,
                honest: true,
                epoch_back: 1,
                apps: (0..5).map(|a| (a, 9_000)).collect(),
                runs: vec![],
            });
        }
        if epoch == 2 {
            steps.push(Step::Stop {
                pick: 0,
                as_owner: true,
            });
            steps.push(Step::StopApp {
                pick: 0,
                as_owner: true,
            });
        }
    }
    let chain = run(&steps);
    let paid = chain
        .tx_events
        .iter()
        .filter(|e| matches!(e, wetee_types::Event::AppPaid { .. }))
        .count();
    assert!(paid > 0, "the scenario pays for work");
}
