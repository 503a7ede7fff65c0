//! The whole worker loop against a dev chain with 8-second epochs and real Podman: it serves an
//! app through its ingress, proves each epoch in a signed work report and gets paid for it, and
//! runs a task whose result (exit code, output hash) lands on chain.

mod support;

use wetee_client::keys::dev_keypair;
use wetee_client::rpc::Client;
use wetee_types::balance::UNIT;
use wetee_types::manifest::Manifest;
use wetee_types::records::RunStatus;
use wetee_types::transaction::{AppsCall, TasksCall};
use wetee_types::{Balance, Call, Event, Hash, Keypair};
use wetee_worker::identity::WorkerIdentity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_proves_gets_paid_and_reports_task_results() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wetee_worker=info".into()),
        )
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    // 80 blocks of 100 ms: the chain takes a crash-looping app back after two epochs at zero
    // uptime, and the worker must have seen it fail three times (1, 2 and 4 s apart) and
    // reported it before, on a loaded 2-core machine too.
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 80);
    let engine = support::engine();
    let mut config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    config.ingress.listen = "127.0.0.1:0".parse().unwrap();
    let agent = support::start_worker(config, &rpc).await;
    let running = agent.running.clone();
    // No core dump, not dumpable, from before its keys were loaded.
    assert!(wetee_worker::hardening::is_hardened());
    let _cleanup = support::Cleanup(hex::encode(running.identity.0));
    let client = Client::connect(&rpc).await.unwrap();
    let bob = dev_keypair("Bob");
    // As `wetee app deploy` does first: the key the workload's output is sealed to.
    assert!(
        wetee_client::owner_key::publish(&client, &bob)
            .await
            .unwrap()
    );

    let app = support::create_app(&client, &bob, support::app_spec("paid-page")).await;
    let ingress = running.ingress.port();
    let page = support::eventually("the app to serve through the ingress", 60, async || {
        let response = support::http_get(ingress, &format!("/{}/", app.0));
        response.contains("paid-page").then_some(response)
    })
    .await;
    assert!(page.contains(" 200 "), "{page}");

    let image = format!("localhost/wetee-test-busybox@{}", support::busybox_image());
    let manifest = format!(
        r#"
kind = "task"
name = "answer"
image = "{image}"
command = ["/bin/busybox"]
args = ["sh", "-c", "echo result-42; echo noise >&2"]
[resources]
cpu_millicores = 100
memory_mib = 32
[placement]
tee = "simulated"
max_price_per_epoch = "1"
[task]
timeout_secs = 30
"#
    );
    let Manifest::Task(task_spec) = Manifest::from_toml(&manifest).expect("manifest") else {
        panic!("a task manifest");
    };
    let created = client
        .send(
            &bob,
            Call::Tasks(TasksCall::Create {
                spec: task_spec,
                deposit: Balance(50 * UNIT),
            }),
            |_| {},
        )
        .await
        .expect("task created");
    let task = created
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            Event::TaskCreated { task, .. } => Some(*task),
            _ => None,
        })
        .unwrap();

    // The worker proves epochs and is paid from the app's deposit.
    let worker = support::eventually("a paid work report", 90, async || {
        let worker = client.worker(running.worker).await.ok()??;
        (worker.last_report_epoch.is_some() && worker.earnings > Balance::ZERO).then_some(worker)
    })
    .await;
    assert!(worker.earnings > Balance::ZERO);

    // The task ran once, and its result is on chain.
    let result = support::eventually_explained(
        "the task's result on chain",
        90,
        async || {
            let runs = client.task_runs(task).await.ok()?;
            let run = runs.into_iter().find(|r| r.run == 1)?;
            (run.status == RunStatus::Finished).then_some(run.result?)
        },
        async || {
            let head = client.header(None).await.map(|h| h.header.height);
            let runs = client.task_runs(task).await;
            let worker = client.worker(running.worker).await;
            format!("head {head:?}; runs {runs:?}; worker {worker:?}")
        },
    )
    .await;
    assert_eq!(result.exit_code, 0);
    assert_eq!(result.output_hash, Hash::of(b"result-42\n"));
    assert_ne!(result.log_root, Hash::default());

    // An app that crashes at start: the worker keeps going, and the owner sees why on chain,
    // its last log lines sealed to the sealing key the owner published.
    let mut crashing = support::app_spec("never-served");
    crashing.container.args = wetee_types::codec::BoundedVec::try_new(vec![
        support::text("sh"),
        support::text("-c"),
        support::text("echo missing DATABASE_URL; exit 3"),
    ])
    .unwrap();
    let created = client
        .send(
            &bob,
            Call::Apps(AppsCall::Create {
                spec: crashing,
                deposit: Balance(100 * UNIT),
            }),
            |_| {},
        )
        .await
        .expect("app created");
    let broken = created
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            Event::AppCreated { app, .. } => Some(*app),
            _ => None,
        })
        .unwrap();
    let failure = support::eventually("the failure on chain", 90, async || {
        client.app_failure(broken).await.ok()?
    })
    .await;
    assert!(failure.reason.as_str().contains("code 3"), "{failure:?}");
    let public = serde_json::to_string(&failure).unwrap();
    assert!(!public.contains("DATABASE_URL"), "{public}");
    let opened = match wetee_client::owner_key::open_failure_log(
        &bob,
        &client.genesis_hash(),
        broken,
        &failure,
    ) {
        wetee_client::owner_key::FailureLog::Opened(text) => text,
        other => panic!("the owner cannot read the log: {other:?}"),
    };
    assert!(
        opened.contains("missing DATABASE_URL"),
        "{}",
        opened.as_str()
    );
    // Nobody else can.
    assert!(matches!(
        wetee_client::owner_key::open_failure_log(
            &Keypair::from_seed(wetee_types::KeyScheme::Sr25519, [42; 32]),
            &client.genesis_hash(),
            broken,
            &failure,
        ),
        wetee_client::owner_key::FailureLog::Unreadable(_)
    ));
    let stopped = client.app(broken).await.unwrap().unwrap();
    assert_eq!(
        stopped.status,
        wetee_types::records::AppStatus::Stopped {
            reason: wetee_types::records::StopReason::Failed
        }
    );
    // The healthy app still serves.
    assert!(support::http_get(ingress, &format!("/{}/", app.0)).contains("paid-page"));

    // The identity key kept in the data directory is the one registered.
    let identity = WorkerIdentity::open_unprotected(&dir.path().join("worker")).unwrap();
    assert_eq!(identity.identity().account_id(), running.identity);

    agent.stop().await;
}
