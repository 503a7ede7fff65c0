//! Placement: constraints, capacity, ranking, explanations.

use wetee_runtime::query;
use wetee_runtime::testing::*;
use wetee_types::codec::BoundedString;
use wetee_types::records::AppStatus;
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{AppId, Balance, Call, TeeKind, Workload};

fn reason(chain: &TestChain, app: AppId) -> String {
    query::pending_reason(&chain.state, &Workload::App { app })
        .unwrap()
        .unwrap()
}

#[test]
fn the_tee_kind_must_match() {
    let mut chain = TestChain::new();
    // A worker listing SGX too has proven only its simulated TEE: SGX work never goes there.
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Sgx, TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Sgx, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    assert_eq!(reason(&chain, app), "no started worker has attested SGX");
}

#[test]
fn the_region_must_match() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("us", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(
        reason(&chain, app),
        "no worker with simulated TEE in region eu is started"
    );
    let anywhere = chain.create_app(
        "bob",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(anywhere).status, AppStatus::Running);
}

#[test]
fn the_worker_level_must_be_at_least_the_minimum() {
    let mut chain = TestChain::new();
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.level = 1;
    chain.started_worker("eve", profile);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu"));
    spec.constraints.min_level = 2;
    let app = chain.create_app("alice", spec.clone(), tokens(20));
    assert_eq!(
        reason(&chain, app),
        "no worker with simulated TEE in region eu has level 2 or higher"
    );
    // "Minimum" means at least, not exactly.
    spec.constraints.min_level = 0;
    let lower = chain.create_app("bob", spec, tokens(20));
    assert_eq!(chain.app(lower).status, AppStatus::Running);
}

#[test]
fn the_price_must_be_within_the_owners_maximum() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu"));
    spec.constraints.max_price_per_epoch = Balance(1_000);
    let app = chain.create_app("alice", spec, tokens(20));
    assert_eq!(
        reason(&chain, app),
        "no worker with simulated TEE in region eu offers these resources for at most 0.000000001 WTE per epoch (the cheapest asks 0.0010512 WTE)"
    );
}

#[test]
fn capacity_is_per_resource_and_the_explanation_names_what_is_missing() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 16384),
    );
    let first = chain.create_app(
        "alice",
        TestChain::app_spec(3000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(first).status, AppStatus::Running);
    let second = chain.create_app(
        "bob",
        TestChain::app_spec(4000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(second).status, AppStatus::Pending);
    assert_eq!(
        reason(&chain, second),
        "no worker with simulated TEE in region eu has 4000 millicores free"
    );
    let memory_hungry = chain.create_app(
        "charlie",
        TestChain::app_spec(500, 20_000, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(
        reason(&chain, memory_hungry),
        "no worker with simulated TEE in region eu has 20000 MiB of memory free"
    );
    // When the first app stops, the capacity comes back and the queue is served at epoch end.
    chain.ok("alice", Call::Apps(AppsCall::Stop { app: first }));
    chain.advance_to_epoch(1);
    assert_eq!(chain.app(second).status, AppStatus::Running);
    assert_eq!(chain.worker(worker).used.cpu_millicores, 4000);
    chain.check_invariants();
}

#[test]
fn replicas_multiply_the_resources() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 4000, 16384),
    );
    let mut spec = TestChain::app_spec(1500, 512, TeeKind::Simulated, None);
    spec.replicas = 3;
    let app = chain.create_app("alice", spec, tokens(20));
    assert_eq!(
        reason(&chain, app),
        "no worker with simulated TEE has 4500 millicores free"
    );
    assert_eq!(chain.worker(worker).workloads, 0);
}

#[test]
fn an_understaked_worker_gets_no_new_placements() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let root = chain.root.clone();
    chain.ok_as(
        &root,
        Call::Workers(WorkersCall::Slash {
            worker,
            amount: tokens(1),
            complaint: None,
        }),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(
        reason(&chain, app),
        "no worker with simulated TEE has enough stake for its level"
    );
}

#[test]
fn a_worker_that_never_started_gets_nothing() {
    let mut chain = TestChain::new();
    chain.register(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(reason(&chain, app), "no worker is started");
}

#[test]
fn gpu_workloads_need_the_gpu_model_they_ask_for() {
    let mut chain = TestChain::new();
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.capacity.gpus = 2;
    profile.gpu_model = Some(BoundedString::try_new("nvidia-h100").unwrap());
    let worker = chain.started_worker("eve", profile);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.container.resources.gpus = 1;
    spec.container.gpu_model = Some(BoundedString::try_new("amd-mi300").unwrap());
    let wrong = chain.create_app("alice", spec.clone(), tokens(20));
    assert_eq!(
        reason(&chain, wrong),
        "no worker with simulated TEE has amd-mi300 GPUs"
    );
    spec.container.gpu_model = Some(BoundedString::try_new("nvidia-h100").unwrap());
    let right = chain.create_app("bob", spec, tokens(20));
    assert_eq!(chain.app(right).placement.unwrap().worker, worker);
    assert_eq!(chain.worker(worker).used.gpus, 1);
    chain.check_invariants();
}

#[test]
fn among_equal_scores_the_cheaper_worker_wins_then_the_lower_id() {
    let mut chain = TestChain::new();
    let mut p = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    p.prices.cpu_millicore = Balance(2_000_000);
    chain.started_worker("eve", p);
    let cheap_a = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let cheap_b = chain.started_worker(
        "ferdie",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    assert!(cheap_a < cheap_b);
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(app).placement.unwrap().worker, cheap_a);
}

#[test]
fn a_worker_with_proven_work_outranks_a_cheaper_newcomer() {
    let mut chain = TestChain::new();
    let mut p = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    p.prices.cpu_millicore = Balance(2_000_000);
    let proven = chain.started_worker("eve", p);
    let first = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.advance_to_epoch(1);
    chain.report("eve", proven, 0, vec![TestChain::proof(first, 10_000)]);
    assert_eq!(chain.worker(proven).score, 501);
    let newcomer = chain.started_worker(
        "dave",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    assert_eq!(chain.worker(newcomer).score, 500);
    let second = chain.create_app(
        "charlie",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(second).placement.unwrap().worker, proven);
    chain.check_invariants();
}

#[test]
fn an_empty_report_builds_no_reputation() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    chain.advance_to_epoch(1);
    chain.report("eve", worker, 0, vec![]);
    assert_eq!(chain.worker(worker).score, 500);
    assert_eq!(chain.worker(worker).last_report_epoch, Some(0));
    // Nor does proving an app at zero uptime: nobody paid for anything.
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    chain.advance_to_epoch(2);
    chain.report("eve", worker, 1, vec![TestChain::proof(app, 0)]);
    assert_eq!(chain.worker(worker).score, 500);
}

#[test]
fn a_simulated_tee_app_runs_on_a_simulated_worker_on_a_dev_chain() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("local", &[TeeKind::Simulated], 8000, 16384),
    );
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
        tokens(20),
    );
    assert_eq!(chain.app(app).placement.unwrap().worker, worker);
}

#[test]
fn a_draining_worker_whose_apps_cannot_move_does_not_freeze_the_pending_queue() {
    let mut chain = TestChain::new();
    let mut params = wetee_types::params::Params::dev();
    params.max_placements_per_epoch = 2;
    let root = chain.root.clone();
    chain.ok_as(
        &root,
        Call::Root(wetee_types::transaction::RootCall::SetParams { params }),
    );
    let island = chain.started_worker(
        "eve",
        chain.profile("island", &[TeeKind::Simulated], 8000, 16384),
    );
    for owner in ["bob", "charlie", "dave"] {
        chain.create_app(
            owner,
            TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("island")),
            tokens(20),
        );
    }
    chain.ok("eve", Call::Workers(WorkersCall::Stop { worker: island }));
    let app = chain.create_app(
        "alice",
        TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    let eu = chain.started_worker(
        "ferdie",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    // At the epoch end the island's drain attempts use their whole budget and fail; the pending
    // queue still gets its own turn.
    chain.advance_to_epoch(1);
    assert_eq!(chain.app(app).placement.map(|p| p.worker), Some(eu));
    chain.check_invariants();
}

#[test]
fn an_app_keeps_its_lease_when_the_worker_raises_its_price_and_the_owner_changes_only_settings() {
    let mut chain = TestChain::new();
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, None);
    spec.constraints.max_price_per_epoch = Balance(2_000_000_000);
    let app = chain.create_app("alice", spec.clone(), tokens(20));
    let before = chain.app(app).placement.unwrap();
    let mut profile = chain.worker(worker).profile;
    profile.prices.cpu_millicore = Balance(profile.prices.cpu_millicore.0 * 10);
    chain.ok(
        "eve",
        Call::Workers(WorkersCall::Update {
            worker,
            profile,
            attestation: None,
        }),
    );
    let settings = wetee_types::records::AppSettings {
        secrets: Some(
            wetee_types::codec::BoundedVec::try_new(vec![BoundedString::try_new("TOKEN").unwrap()])
                .unwrap(),
        ),
        ..Default::default()
    };
    chain.ok("alice", Call::Apps(AppsCall::SetSettings { app, settings }));
    assert_eq!(chain.app(app).placement, Some(before));
    // Lowering the maximum below the lease's price is a reason to leave.
    let mut cheaper = chain.app(app).spec;
    cheaper.constraints.max_price_per_epoch = Balance(before.price_per_epoch.0 - 1);
    chain.ok(
        "alice",
        Call::Apps(AppsCall::Update {
            app,
            spec: cheaper,
            secrets_grant: None,
        }),
    );
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    chain.check_invariants();
}

#[test]
fn disk_waits_for_a_worker_that_sells_it_and_says_why() {
    let mut chain = TestChain::new();
    // What a worker whose engine cannot cap a container's disk registers.
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.capacity.disk_gib = 0;
    chain.started_worker("eve", profile);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu"));
    spec.container.resources.disk_gib = 1;
    let app = chain.create_app("alice", spec.clone(), tokens(20));
    assert_eq!(chain.app(app).status, AppStatus::Pending);
    assert!(
        reason(&chain, app).contains("sells disk"),
        "{}",
        reason(&chain, app)
    );
    spec.container.resources.disk_gib = 0;
    let diskless = chain.create_app("bob", spec, tokens(20));
    assert_eq!(chain.app(diskless).status, AppStatus::Running);
}
