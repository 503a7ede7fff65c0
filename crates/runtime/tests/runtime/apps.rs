//! Apps: create, update, settings, recharge, restart, stop.

use wetee_runtime::query;
use wetee_runtime::testing::*;
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::error::error_text;
use wetee_types::manifest::EnvVar;
use wetee_types::params::Params;
use wetee_types::records::{AppSettings, AppStatus, StopReason, VersionChange};
use wetee_types::transaction::AppsCall;
use wetee_types::{AppId, Balance, Call, CallError, Event, TeeKind, Weight, Workload};

fn apps(call: AppsCall) -> Call {
    Call::Apps(call)
}

#[test]
fn creating_an_app_reserves_its_deposit_and_places_it_on_a_matching_worker() {
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
    let record = chain.app(app);
    assert_eq!(record.status, AppStatus::Running);
    assert_eq!(record.version, 1);
    let placement = record.placement.unwrap();
    assert_eq!(placement.worker, worker);
    // 1000 millicores at 1_000_000 + 512 MiB at 100_000 per epoch.
    assert_eq!(
        placement.price_per_epoch,
        Balance(1000 * 1_000_000 + 512 * 100_000)
    );
    assert_eq!(chain.reserved("alice"), tokens(20));
    assert_eq!(chain.worker(worker).used.cpu_millicores, 1000);
    assert!(chain.tx_events.contains(&Event::WorkloadPlaced {
        workload: Workload::App { app },
        worker,
        price_per_epoch: placement.price_per_epoch
    }));
    chain.check_invariants();
}

#[test]
fn an_app_that_fits_nowhere_waits_and_says_why() {
    let mut chain = TestChain::new();
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    let reason = query::pending_reason(&chain.state, &Workload::App { app })
        .unwrap()
        .unwrap();
    assert_eq!(reason, "no worker is registered");
    chain.check_invariants();
}

#[test]
fn an_invalid_manifest_is_refused_naming_the_field() {
    let mut chain = TestChain::new();
    let mut spec = TestChain::app_spec(0, 512, TeeKind::Simulated, None);
    chain.fails(
        "alice",
        apps(AppsCall::Create {
            spec: spec.clone(),
            deposit: tokens(20),
        }),
        CallError::InvalidManifest {
            field: error_text("resources.cpu_millicores"),
            problem: error_text("must be greater than zero"),
        },
    );
    spec.container.resources.cpu_millicores = 100;
    spec.replicas = 0;
    chain.fails(
        "alice",
        apps(AppsCall::Create {
            spec,
            deposit: tokens(20),
        }),
        CallError::InvalidManifest {
            field: error_text("replicas"),
            problem: error_text("must be between 1 and 100"),
        },
    );
}

#[test]
fn the_deposit_must_cover_the_minimum_and_one_epoch_at_the_maximum_price() {
    let mut chain = TestChain::new();
    let spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    chain.fails(
        "alice",
        apps(AppsCall::Create {
            spec: spec.clone(),
            deposit: tokens(9),
        }),
        CallError::DepositTooLow {
            minimum: tokens(10),
        },
    );
    let needed = tokens(2_000_000);
    let call = apps(AppsCall::Create {
        spec,
        deposit: needed,
    });
    let available = chain
        .free("alice")
        .checked_sub(chain.fee_for("alice", call.clone()))
        .unwrap();
    chain.fails(
        "alice",
        call,
        CallError::InsufficientBalance { needed, available },
    );
}

#[test]
fn a_production_chain_refuses_apps_asking_for_the_simulated_tee() {
    let mut chain = TestChain::with_config(Params::production(), production_policy());
    chain.fails(
        "alice",
        apps(AppsCall::Create {
            spec: TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
            deposit: tokens(20),
        }),
        CallError::SimulatedTeeNotAllowed,
    );
}

#[test]
fn only_the_owner_may_change_an_app() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    let not_owner = CallError::NotAppOwner { app };
    let spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    chain.fails(
        "bob",
        apps(AppsCall::Update {
            app,
            spec,
            secrets_grant: None,
        }),
        not_owner.clone(),
    );
    chain.fails(
        "bob",
        apps(AppsCall::SetSettings {
            app,
            settings: AppSettings {
                replicas: Some(2),
                ..Default::default()
            },
        }),
        not_owner.clone(),
    );
    chain.fails(
        "bob",
        apps(AppsCall::Recharge {
            app,
            amount: tokens(1),
        }),
        not_owner.clone(),
    );
    chain.fails("bob", apps(AppsCall::Restart { app }), not_owner.clone());
    chain.fails("bob", apps(AppsCall::Stop { app }), not_owner);
    chain.fails(
        "bob",
        apps(AppsCall::Stop { app: AppId(42) }),
        CallError::AppNotFound { app: AppId(42) },
    );
}

#[test]
fn an_update_is_a_new_version_on_the_same_worker_and_history_is_kept() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.container.args =
        BoundedVec::try_new(vec![BoundedString::try_new("--v2").unwrap()]).unwrap();
    let events = chain.ok(
        "alice",
        apps(AppsCall::Update {
            app,
            spec: spec.clone(),
            secrets_grant: None,
        }),
    );
    assert!(events.contains(&Event::AppUpdated { app, version: 2 }));
    let record = chain.app(app);
    assert_eq!(record.version, 2);
    assert_eq!(record.spec, spec);
    assert_eq!(record.placement.unwrap().worker, worker);
    assert_eq!(record.placement.unwrap().lease, 1, "same price, same lease");
    let history = query::app_versions(&chain.state, app).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].change, VersionChange::Created);
    assert_eq!(history[1].change, VersionChange::Updated);
    chain.check_invariants();
}

#[test]
fn more_resources_in_an_update_resize_the_reservation_and_reprice_the_lease() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    let before = chain.app(app).placement.unwrap();
    chain.advance(3);
    chain.ok(
        "alice",
        apps(AppsCall::Update {
            app,
            spec: TestChain::app_spec(2000, 512, TeeKind::Simulated, None),
            secrets_grant: None,
        }),
    );
    let after = chain.app(app).placement.unwrap();
    assert_eq!(after.worker, worker);
    assert_eq!(after.lease, 2);
    assert!(after.price_per_epoch > before.price_per_epoch);
    assert_eq!(chain.worker(worker).used.cpu_millicores, 2000);
    chain.check_invariants();
}

#[test]
fn an_update_the_worker_cannot_host_releases_it_and_waits_elsewhere() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    chain.ok(
        "alice",
        apps(AppsCall::Update {
            app,
            spec: TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("us")),
            secrets_grant: None,
        }),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    assert_eq!(chain.worker(worker).workloads, 0);
    assert_eq!(
        query::pending_reason(&chain.state, &Workload::App { app })
            .unwrap()
            .unwrap(),
        "no worker with simulated TEE in region us is started"
    );
    chain.check_invariants();
}

#[test]
fn settings_change_env_secrets_and_replicas_as_a_new_version() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    chain.fails(
        "alice",
        apps(AppsCall::SetSettings {
            app,
            settings: AppSettings::default(),
        }),
        CallError::NothingToChange,
    );
    let env = BoundedVec::try_new(vec![EnvVar {
        name: BoundedString::try_new("MODE").unwrap(),
        value: BoundedString::try_new("fast").unwrap(),
    }])
    .unwrap();
    let settings = AppSettings {
        env: Some(env.clone()),
        secrets: None,
        replicas: Some(3),
    };
    chain.ok("alice", apps(AppsCall::SetSettings { app, settings }));
    let record = chain.app(app);
    assert_eq!(record.version, 2);
    assert_eq!(record.spec.container.env, env);
    assert_eq!(record.spec.replicas, 3);
    assert_eq!(chain.worker(worker).used.cpu_millicores, 3000);
    let bad = AppSettings {
        replicas: Some(0),
        ..Default::default()
    };
    chain.fails(
        "alice",
        apps(AppsCall::SetSettings { app, settings: bad }),
        CallError::InvalidManifest {
            field: error_text("replicas"),
            problem: error_text("must be between 1 and 100"),
        },
    );
    chain.check_invariants();
}

#[test]
fn a_recharge_adds_to_the_deposit() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.fails(
        "alice",
        apps(AppsCall::Recharge {
            app,
            amount: Balance::ZERO,
        }),
        CallError::ZeroAmount,
    );
    let events = chain.ok(
        "alice",
        apps(AppsCall::Recharge {
            app,
            amount: tokens(5),
        }),
    );
    assert_eq!(
        events,
        vec![Event::AppRecharged {
            app,
            amount: tokens(5),
            deposit: tokens(25)
        }]
    );
    assert_eq!(chain.reserved("alice"), tokens(25));
    chain.check_invariants();
}

#[test]
fn a_restart_is_counted_for_the_worker_to_act_on() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(
        chain.ok("alice", apps(AppsCall::Restart { app })),
        vec![Event::AppRestarted { app, restarts: 1 }]
    );
    assert_eq!(chain.app(app).restarts, 1);
    assert_eq!(
        chain.app(app).placement.unwrap().lease,
        1,
        "a restart never re-places the app"
    );
}

#[test]
fn stopping_releases_capacity_and_refunds_everything_not_yet_claimable() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    // Stopped in the block it was placed: nothing was run, everything comes back.
    let events = chain.ok("alice", apps(AppsCall::Stop { app }));
    assert!(events.contains(&Event::AppStopped {
        app,
        reason: StopReason::Owner,
        refund: tokens(20)
    }));
    assert!(events.contains(&Event::WorkloadReleased {
        workload: Workload::App { app },
        worker
    }));
    assert_eq!(chain.reserved("alice"), Balance::ZERO);
    assert_eq!(chain.worker(worker).workloads, 0);
    chain.fails(
        "alice",
        apps(AppsCall::Stop { app }),
        CallError::AppStopped { app },
    );
    chain.fails(
        "alice",
        apps(AppsCall::Recharge {
            app,
            amount: tokens(1),
        }),
        CallError::AppStopped { app },
    );
    chain.check_invariants();
}

#[test]
fn a_pending_app_is_placed_at_the_epoch_end_once_a_worker_can_take_it() {
    let mut chain = TestChain::new();
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    chain.advance_to_epoch(1);
    assert_eq!(chain.app(app).status, AppStatus::Running);
    assert_eq!(chain.app(app).placement.unwrap().worker, worker);
    assert!(query::pending_placements(&chain.state).unwrap().is_empty());
    chain.check_invariants();
}

#[test]
fn stopping_a_pending_app_takes_it_out_of_the_queue() {
    let mut chain = TestChain::new();
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.ok("alice", apps(AppsCall::Stop { app }));
    assert!(query::pending_placements(&chain.state).unwrap().is_empty());
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(1);
    assert_eq!(
        chain.app(app).status,
        AppStatus::Stopped {
            reason: StopReason::Owner
        }
    );
    chain.check_invariants();
}

#[test]
fn a_settings_change_that_keeps_the_resources_keeps_the_price() {
    let (mut chain, worker, app) = TestChain::serving(Params::dev());
    let before = chain.app(app).placement.unwrap();
    let mut profile = chain.worker(worker).profile;
    profile.prices.cpu_millicore = Balance(profile.prices.cpu_millicore.0 * 5);
    chain.ok(
        "eve",
        Call::Workers(wetee_types::transaction::WorkersCall::Update {
            worker,
            profile,
            attestation: None,
        }),
    );
    let env = BoundedVec::try_new(vec![EnvVar {
        name: BoundedString::try_new("MODE").unwrap(),
        value: BoundedString::try_new("slow").unwrap(),
    }])
    .unwrap();
    chain.ok(
        "alice",
        apps(AppsCall::SetSettings {
            app,
            settings: AppSettings {
                env: Some(env),
                ..Default::default()
            },
        }),
    );
    let after = chain.app(app).placement.unwrap();
    assert_eq!(after.price_per_epoch, before.price_per_epoch);
    assert_eq!(after.lease, before.lease);
}

#[test]
fn the_pending_queue_rotates_so_unplaceable_apps_cannot_block_it() {
    let mut chain = TestChain::new();
    let mut params = Params::dev();
    params.max_placements_per_epoch = 2;
    let root = chain.root.clone();
    chain.ok_as(
        &root,
        Call::Root(wetee_types::transaction::RootCall::SetParams { params }),
    );
    for owner in ["bob", "charlie", "dave"] {
        chain.create_app(
            owner,
            TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("nowhere")),
            tokens(20),
        );
    }
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(3);
    assert_eq!(chain.app(app).status, AppStatus::Running);
    chain.check_invariants();
}

#[test]
fn a_pending_queue_heavier_than_a_block_is_placed_over_the_next_blocks() {
    let mut params = Params::dev();
    params.max_block_weight = Weight(*wetee_types::params::bounds::MAX_BLOCK_WEIGHT.start());
    params.max_placements_per_epoch = 4_096;
    // What the end of a block can spend on placements (one worker: the smallest search).
    let budget = wetee_runtime::hooks::hook_budget(params.max_block_weight);
    let per_block =
        usize::try_from(budget.0 / wetee_runtime::weights::placement_among(1).0).unwrap();
    let mut chain = TestChain::with_params(params);
    let apps: Vec<AppId> = (0..2 * per_block + 3)
        .map(|i| {
            chain.create_app(
                ["alice", "bob", "charlie", "dave"][i % 4],
                TestChain::app_spec(1, 1, TeeKind::Simulated, None),
                tokens(10),
            )
        })
        .collect();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 2_000_000, 2_000_000),
    );
    let running = |chain: &TestChain| {
        apps.iter()
            .filter(|app| chain.app(**app).status == AppStatus::Running)
            .count()
    };
    // The epoch's end places what its budget pays for, the next blocks the rest, front first.
    chain.advance_to_epoch(1);
    assert_eq!(running(&chain), per_block);
    assert_eq!(chain.app(apps[per_block - 1]).status, AppStatus::Running);
    assert_eq!(chain.app(apps[per_block]).status, AppStatus::Pending);
    chain.next_block();
    assert_eq!(running(&chain), 2 * per_block);
    chain.next_block();
    assert_eq!(running(&chain), apps.len());
    assert!(query::pending_placements(&chain.state).unwrap().is_empty());
    chain.check_invariants();
}

#[test]
fn a_worker_holds_at_most_one_reports_worth_of_workloads() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 2_000_000, 2_000_000),
    );
    let limit = wetee_runtime::scheduling::MAX_WORKLOADS_PER_WORKER;
    for i in 0..limit {
        let owner = ["alice", "bob", "charlie", "dave"][i as usize % 4];
        chain.create_app(
            owner,
            TestChain::app_spec(1, 1, TeeKind::Simulated, None),
            tokens(10),
        );
    }
    let extra = chain.create_app(
        "ferdie",
        TestChain::app_spec(1, 1, TeeKind::Simulated, None),
        tokens(10),
    );
    assert_eq!(chain.app(extra).status, AppStatus::Pending);
    assert_eq!(
        query::pending_reason(&chain.state, &Workload::App { app: extra })
            .unwrap()
            .unwrap(),
        "no worker with simulated TEE has a free workload slot"
    );
}

#[test]
fn the_placement_preview_says_what_creating_would_do_and_changes_nothing() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let fits = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu"));
    let elsewhere = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("us"));
    let mut invalid = fits.clone();
    invalid.container.resources.cpu_millicores = 0;
    let before = chain.state.clone();

    let preview = |chain: &TestChain, spec: &wetee_types::manifest::AppSpec| {
        query::placement_preview(&chain.state, &query::PlacementRequest::App(spec.clone())).unwrap()
    };
    let placed = preview(&chain, &fits);
    assert!(placed.problems.is_empty());
    assert_eq!(placed.worker, Some(worker));
    assert_eq!(
        placed.price_per_epoch,
        Some(Balance(1000 * 1_000_000 + 512 * 100_000))
    );
    assert_eq!(placed.waiting_reason, None);
    // At least one epoch at the most the owner would pay.
    assert_eq!(
        placed.min_deposit,
        Some(
            Params::dev()
                .min_app_deposit
                .max(fits.constraints.max_price_per_epoch)
        )
    );

    let waits = preview(&chain, &elsewhere);
    assert_eq!(waits.worker, None);
    let invalid_preview = preview(&chain, &invalid);
    assert_eq!(invalid_preview.problems.len(), 1);
    assert_eq!(
        invalid_preview.problems[0].field,
        "resources.cpu_millicores"
    );
    assert_eq!(chain.state, before, "a preview writes nothing");

    // What the preview said is what happens, word for word.
    let app = chain.create_app("alice", fits, tokens(20));
    assert_eq!(chain.app(app).placement.unwrap().worker, worker);
    let waiting = chain.create_app("alice", elsewhere, tokens(20));
    assert_eq!(
        query::pending_reason(&chain.state, &Workload::App { app: waiting }).unwrap(),
        waits.waiting_reason
    );
    chain.check_invariants();
}
