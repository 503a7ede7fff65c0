//! The worker against a real dev chain (in process) and a real engine (Podman): it registers
//! itself, runs the app the chain places on it, replaces it on update without a gap, restarts it
//! when it dies, and removes it when the owner stops it.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wetee_client::keys::dev_keypair;
use wetee_client::rpc::Client;
use wetee_types::balance::UNIT;
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::{
    AppSpec, Constraints, ContainerSpec, EnvVar, ImageRef, Port, Protocol,
};
use wetee_types::records::WorkerProfile;
use wetee_types::spec::{BalanceSpec, ChainSpec, ConsensusSpec, ValidatorSpec};
use wetee_types::transaction::AppsCall;
use wetee_types::{
    AppId, Balance, Call, ChainConfig, Event, KeyScheme, Keypair, Params, Prices, Resources,
    TeeKind, TeeKinds, Workload,
};
use wetee_worker::backend::docker::DockerBackend;
use wetee_worker::backend::{Backend, InstanceState};
use wetee_worker::chain::{desired_instances, ensure_registered};
use wetee_worker::config::{BackendConfig, BackendKind, IngressConfig, WorkerConfig};
use wetee_worker::identity::WorkerIdentity;
use wetee_worker::ingress::Routes;
use wetee_worker::reconcile::Reconciler;

/// Starts a single-validator chain in this process and returns its RPC URL.
fn dev_chain(data_dir: &std::path::Path) -> String {
    let offset = (std::process::id() % 500) as u16 * 4;
    let rpc_port = 50_000 + offset;
    let seed = [42u8; 32];
    let validator = Keypair::from_seed(KeyScheme::Ed25519, seed).account_id();
    let spec = ChainSpec {
        name: "worker test".into(),
        chain_id: "wetee-worker-test".into(),
        genesis_time_ms: 0,
        validators: vec![ValidatorSpec {
            name: "v".into(),
            public_key: hex::encode(validator.0),
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 55_000 + offset),
        }],
        consensus: ConsensusSpec::local(),
        chain: ChainConfig { epoch_length: 40 },
        params: Params {
            target_block_time_ms: 100,
            ..Params::dev()
        },
        root: dev_keypair("Alice").account_id(),
        treasury: dev_keypair("Treasury").account_id(),
        balances: ["Alice", "Bob"]
            .iter()
            .map(|name| BalanceSpec {
                account: dev_keypair(name).account_id(),
                amount: Balance(1_000_000 * UNIT),
            })
            .collect(),
    };
    let config = wetee_node::service::ServiceConfig {
        spec,
        key_seed: seed,
        full_nodes: Vec::new(),
        data_dir: data_dir.to_path_buf(),
        rpc_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), rpc_port),
        p2p_listen: None,
        worker_threads: 2,
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = wetee_node::service::run(config, move |started| {
            let _ = sender.send(started.rpc_address);
        });
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the chain starts");
    format!("ws://{address}")
}

fn text(value: &str) -> BoundedString<1024> {
    BoundedString::try_new(value).unwrap()
}

fn app_spec(page: &str) -> AppSpec {
    let id = support::busybox_image();
    let script = format!(
        "mkdir -p /www && echo {page} > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"
    );
    AppSpec {
        name: BoundedString::try_new("hello").unwrap(),
        container: ContainerSpec {
            image: ImageRef::parse(&format!("localhost/wetee-test-busybox@{id}")).unwrap(),
            command: BoundedVec::try_new(vec![text("/bin/busybox")]).unwrap(),
            args: BoundedVec::try_new(vec![text("sh"), text("-c"), text(&script)]).unwrap(),
            env: BoundedVec::try_new(vec![EnvVar {
                name: BoundedString::try_new("MODE").unwrap(),
                value: BoundedString::try_new("test").unwrap(),
            }])
            .unwrap(),
            secrets: BoundedVec::default(),
            ports: BoundedVec::try_new(vec![Port {
                container: 8080,
                protocol: Protocol::Tcp,
            }])
            .unwrap(),
            resources: Resources {
                cpu_millicores: 100,
                memory_mib: 32,
                disk_gib: 1,
                gpus: 0,
            },
            gpu_model: None,
        },
        replicas: 1,
        constraints: Constraints {
            tee: TeeKind::Simulated,
            region: None,
            min_level: 0,
            max_price_per_epoch: Balance(10 * UNIT),
        },
        health: None,
    }
}

fn worker_config(data_dir: &std::path::Path, socket: &str) -> WorkerConfig {
    WorkerConfig {
        stake: Balance(200 * UNIT),
        data_dir: data_dir.to_path_buf(),
        profile: WorkerProfile {
            endpoint: BoundedString::try_new("http://127.0.0.1:8800").unwrap(),
            region: BoundedString::try_new("local").unwrap(),
            level: 1,
            capacity: Resources {
                cpu_millicores: 4_000,
                memory_mib: 4_096,
                disk_gib: 50,
                gpus: 0,
            },
            gpu_model: None,
            tee_kinds: TeeKinds::of(&[TeeKind::Simulated]),
            prices: Prices {
                cpu_millicore: Balance(1_000),
                memory_mib: Balance(1_000),
                disk_gib: Balance(1_000),
                gpu: Balance(0),
            },
        },
        backend: BackendConfig {
            kind: BackendKind::Docker,
            socket: Some(socket.to_string()),
        },
        ingress: IngressConfig::default(),
    }
}

fn http_get(port: u16) -> String {
    http_get_path(port, "/")
}

fn http_get_path(port: u16, path: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

async fn serving(backend: &DockerBackend, app: AppId) -> Option<(u32, String)> {
    let instances = backend.list().await.ok()?;
    let live: Vec<_> = instances
        .iter()
        .filter(|i| i.identity.workload == Workload::App { app })
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    let instance = live.iter().max_by_key(|i| i.identity.version)?;
    let port = *instance.ports.get(&8080)?;
    for _ in 0..50 {
        let response = http_get(port);
        if response.starts_with("HTTP/1.") && response.contains(" 200 ") {
            return Some((instance.identity.version, response));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_updates_restarts_and_removes_what_the_chain_assigns() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = dev_chain(&dir.path().join("chain"));
    let client = Client::connect(&rpc).await.expect("connect");
    let engine = support::engine();
    let config = worker_config(&dir.path().join("worker"), &engine.socket);
    let identity = WorkerIdentity::load_or_create(&config.data_dir).unwrap();
    let operator = dev_keypair("Alice");
    let worker = ensure_registered(&client, &operator, &identity, &config)
        .await
        .expect("registered");
    // Registering again finds the same worker and does nothing.
    assert_eq!(
        ensure_registered(&client, &operator, &identity, &config)
            .await
            .unwrap(),
        worker
    );
    let scope = hex::encode(identity.keys().identity);
    let backend = DockerBackend::connect(Some(&engine.socket), &scope)
        .await
        .unwrap();
    let routes = Arc::new(Routes::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = listener.local_addr().unwrap().port();
    tokio::spawn(wetee_worker::ingress::serve(
        listener,
        Arc::clone(&routes),
        "localhost".into(),
    ));
    let mut reconciler = Reconciler::new(backend.clone()).with_routes(Arc::clone(&routes));

    // Bob deploys: the chain places the app on our worker, the worker runs it.
    let bob = dev_keypair("Bob");
    let created = client
        .send(
            &bob,
            Call::Apps(AppsCall::Create {
                spec: app_spec("version-one"),
                deposit: Balance(100 * UNIT),
            }),
            |_| {},
        )
        .await
        .expect("app created");
    let app = created
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            Event::AppCreated { app, .. } => Some(*app),
            _ => None,
        })
        .expect("AppCreated");
    let desired = desired_instances(&client, worker).await.unwrap();
    assert_eq!(desired.len(), 1, "{desired:?}");
    let pass = reconciler.reconcile(&desired).await.unwrap();
    assert_eq!(pass.started.len(), 1, "{pass:?}");
    let (version, page) = serving(&backend, app).await.expect("serves");
    assert!(page.contains("version-one"), "{page}");
    // Until it answers, the ingress has no route; then passes route to it.
    let mut through_ingress = String::new();
    for _ in 0..50 {
        reconciler.reconcile(&desired).await.unwrap();
        through_ingress = http_get_path(ingress, &format!("/{}/", app.0));
        if through_ingress.contains("version-one") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(through_ingress.contains(" 200 "), "{through_ingress}");
    assert!(through_ingress.contains("version-one"), "{through_ingress}");
    // A second pass with nothing new changes nothing.
    assert!(reconciler.reconcile(&desired).await.unwrap().is_quiet());

    // While the update rolls, a client keeps asking through the ingress.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client_done = Arc::clone(&done);
    let hammer = std::thread::spawn(move || {
        let (mut ok, mut failed, mut saw_two) = (0u32, Vec::new(), false);
        while !client_done.load(std::sync::atomic::Ordering::Relaxed) {
            let response = http_get_path(ingress, &format!("/{}/", app.0));
            if response.contains(" 200 ") {
                ok += 1;
                saw_two |= response.contains("version-two");
            } else {
                failed.push(response);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (ok, failed, saw_two)
    });

    // An update starts the new version, then removes the old one.
    client
        .send(
            &bob,
            Call::Apps(AppsCall::Update {
                app,
                spec: app_spec("version-two"),
            }),
            |_| {},
        )
        .await
        .expect("updated");
    let desired = desired_instances(&client, worker).await.unwrap();
    let (mut started, mut removed) = (0, 0);
    for _ in 0..100 {
        let pass = reconciler.reconcile(&desired).await.unwrap();
        started += pass.started.len();
        removed += pass.removed.len();
        if removed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!((started, removed), (1, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, saw_two) = hammer.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} requests failed during the update: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        ok > 10 && saw_two,
        "{ok} answers, version two seen: {saw_two}"
    );
    let (new_version, page) = serving(&backend, app).await.expect("serves");
    assert!(new_version > version);
    assert!(page.contains("version-two"), "{page}");

    // The container dies: the next pass starts it again.
    let running = backend
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.identity.workload == Workload::App { app })
        .expect("running");
    let killed = std::process::Command::new(engine.cli)
        .args(["kill", &running.id])
        .output()
        .expect("kill");
    assert!(killed.status.success());
    let mut restarted = false;
    for _ in 0..40 {
        let pass = reconciler.reconcile(&desired).await.unwrap();
        if !pass.started.is_empty() {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restarted, "the dead container was replaced");
    assert!(serving(&backend, app).await.is_some());

    // Bob stops the app: the worker removes its container.
    client
        .send(&bob, Call::Apps(AppsCall::Stop { app }), |_| {})
        .await
        .expect("stopped");
    let desired = desired_instances(&client, worker).await.unwrap();
    assert!(desired.is_empty());
    let pass = reconciler.reconcile(&desired).await.unwrap();
    assert_eq!(pass.removed.len(), 1, "{pass:?}");
    assert!(
        backend
            .list()
            .await
            .unwrap()
            .iter()
            .all(|i| i.identity.workload != Workload::App { app })
    );
}
