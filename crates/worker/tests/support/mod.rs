//! A container engine for tests: `$WETEE_TEST_ENGINE_SOCKET` if set, else a Podman service
//! started for the test run, and a tiny image built locally (`FROM scratch` plus a static
//! busybox), since no registry is reachable; and a dev chain run in the test process.
#![allow(dead_code)] // Each test binary uses part of this module.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wetee_client::keys::dev_keypair;
use wetee_types::balance::UNIT;
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::{
    AppSpec, Constraints, ContainerSpec, EnvVar, ImageRef, Port, Protocol,
};
use wetee_types::records::WorkerProfile;
use wetee_types::spec::{BalanceSpec, ChainSpec, ConsensusSpec, ValidatorSpec};
use wetee_types::{
    Balance, ChainConfig, KeyScheme, Keypair, Params, Prices, Resources, TeeKind, TeeKinds,
};
use wetee_worker::config::{BackendConfig, BackendKind, IngressConfig, WorkerConfig};

/// The engine's socket and the CLI that builds images for it.
pub struct Engine {
    /// The Unix socket of the Docker-compatible API.
    pub socket: String,
    /// `podman` or `docker`.
    pub cli: &'static str,
    /// The service started for the tests (stopped when the test process exits).
    _service: Option<ServiceGuard>,
}

struct ServiceGuard(Child);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The engine shared by every test of this binary.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        if let Ok(socket) = std::env::var("WETEE_TEST_ENGINE_SOCKET") {
            let cli = if which("podman") { "podman" } else { "docker" };
            return Engine {
                socket,
                cli,
                _service: None,
            };
        }
        assert!(
            which("podman"),
            "these tests need Podman (apt-get install podman runc) or a Docker-compatible \
             engine in WETEE_TEST_ENGINE_SOCKET; see .ci/run for the setup"
        );
        let dir = std::env::temp_dir().join(format!("wetee-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("socket directory");
        let socket = dir.join("podman.sock");
        let service = Command::new("podman")
            // It exits by itself after 10 s without requests: statics are never dropped.
            .args(["system", "service", "--time=10"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service starts");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "podman's API socket did not appear"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Engine {
            socket: socket.display().to_string(),
            cli: "podman",
            _service: Some(ServiceGuard(service)),
        }
    })
}

fn busybox() -> PathBuf {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(candidate);
        if path.exists() {
            return path.to_path_buf();
        }
    }
    panic!("these tests need a static busybox (apt-get install busybox-static)");
}

/// Builds (once) an image holding only a static busybox and returns its id (`sha256:<hex>`).
pub fn busybox_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| build_image("localhost/wetee-test-busybox:latest", &[]))
}

/// Builds (once) another image: busybox and a file that sets it apart, as an attacker's image
/// would be. Returns its id.
pub fn other_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        build_image(
            "localhost/wetee-test-other:latest",
            &[("marker", "not the owner's image")],
        )
    })
}

fn build_image(tag: &str, files: &[(&str, &str)]) -> String {
    let engine = engine();
    let context = tempfile::tempdir().expect("build context");
    std::fs::copy(busybox(), context.path().join("busybox")).expect("copy busybox");
    // `/www` is the pages' directory: a scratch image's root is read-only to a root without
    // capabilities, as every container's is.
    let mut containerfile =
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"mkdir\", \"/www\"]\n"
            .to_string();
    for (name, content) in files {
        std::fs::write(context.path().join(name), content).expect("context file");
        containerfile.push_str(&format!("COPY {name} /{name}\n"));
    }
    containerfile.push_str("ENTRYPOINT [\"/bin/busybox\"]\n");
    std::fs::write(context.path().join("Containerfile"), containerfile).expect("Containerfile");
    let output = Command::new(engine.cli)
        .args(["build", "-q", "-t", tag, "-f"])
        .arg(context.path().join("Containerfile"))
        .arg(context.path())
        .output()
        .expect("image build runs");
    assert!(
        output.status.success(),
        "image build failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let hex = id.strip_prefix("sha256:").unwrap_or(&id).to_string();
    assert_eq!(hex.len(), 64, "unexpected image id {id}");
    format!("sha256:{hex}")
}

/// Starts a single-validator chain in this process and returns its RPC URL and genesis hash.
pub fn dev_chain(data_dir: &std::path::Path, epoch_length: u64) -> (String, wetee_types::Hash) {
    // Ports the system hands out: fixed ones collided with other tests' connections.
    let p2p_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let seed = [42u8; 32];
    let validator = Keypair::from_seed(KeyScheme::Ed25519, seed).account_id();
    let spec = ChainSpec {
        name: "worker test".into(),
        chain_id: "wetee-worker-test".into(),
        genesis_time_ms: 0,
        validators: vec![ValidatorSpec {
            name: "v".into(),
            public_key: hex::encode(validator.0),
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p2p_port),
        }],
        consensus: ConsensusSpec::local(),
        chain: ChainConfig { epoch_length },
        params: Params {
            target_block_time_ms: 100,
            ..Params::dev()
        },
        attestation: wetee_types::attestation::AttestationPolicy::dev(),
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
    let genesis = spec.genesis_hash();
    let config = wetee_node::service::ServiceConfig {
        spec,
        key_seed: seed,
        full_nodes: Vec::new(),
        data_dir: data_dir.to_path_buf(),
        // The node says where it listens once it does.
        rpc_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        p2p_listen: None,
        worker_threads: 2,
        rpc_threads: 2,
        metrics_address: None,
        rpc_limits: wetee_node::rpc::RpcLimits::default(),
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = wetee_node::service::run(
            config,
            move |started| {
                let _ = sender.send(started.rpc_address);
            },
            futures::future::pending(),
        );
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the chain starts");
    (format!("ws://{address}"), genesis)
}

/// `GET path` on 127.0.0.1:`port`: the response, or empty while nothing listens yet (the engine
/// may publish a port a moment after the container starts).
pub fn http_get(port: u16, path: &str) -> String {
    http_get_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// `GET path` from `address` (a container's, on its network), the whole response as text.
pub fn http_get_at(address: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
    else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

pub fn text(value: &str) -> BoundedString<1024> {
    BoundedString::try_new(value).unwrap()
}

pub fn app_spec(page: &str) -> AppSpec {
    let id = busybox_image();
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
                // Podman on ext4 cannot cap disk, so its workers sell none.
                disk_gib: 0,
                gpus: 0,
            },
            gpu_model: None,
            security: Default::default(),
        },
        replicas: 1,
        constraints: Constraints {
            tee: TeeKind::Simulated,
            region: None,
            min_level: 0,
            max_price_per_epoch: Balance(10 * UNIT),
            measurements: Default::default(),
        },
        health: None,
    }
}

/// `owner` creates an app from `spec` with a 100 WTE deposit; its id.
pub async fn create_app(
    client: &wetee_client::rpc::Client,
    owner: &wetee_types::Keypair,
    spec: AppSpec,
) -> wetee_types::AppId {
    let created = client
        .send(
            owner,
            wetee_types::Call::Apps(wetee_types::transaction::AppsCall::Create {
                spec,
                deposit: Balance(100 * UNIT),
            }),
            |_| {},
        )
        .await
        .expect("app created");
    created
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            wetee_types::Event::AppCreated { app, .. } => Some(*app),
            _ => None,
        })
        .expect("AppCreated")
}

pub fn worker_config(
    data_dir: &std::path::Path,
    socket: &str,
    genesis: wetee_types::Hash,
) -> WorkerConfig {
    WorkerConfig {
        stake: Balance(200 * UNIT),
        data_dir: data_dir.to_path_buf(),
        chain: wetee_worker::config::ChainTrust::genesis(genesis),
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
            secrets_dir: wetee_worker::config::DEFAULT_SECRETS_DIR.into(),
            pids_limit: wetee_worker::backend::confinement::DEFAULT_PIDS_LIMIT,
        },
        keys: Default::default(),
        logs: Default::default(),
        ingress: IngressConfig::default(),
        text_digest: None,
    }
}

/// Removes every container and network of a worker's scope when dropped, however the test
/// ends.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let engine = engine();
        let label = format!("label=wetee.managed={}", self.0);
        for (list, remove) in [
            (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
            (
                &["network", "ls", "-q", "--filter"][..],
                &["network", "rm", "-f"][..],
            ),
        ] {
            let Ok(output) = Command::new(engine.cli).args(list).arg(&label).output() else {
                continue;
            };
            for id in String::from_utf8_lossy(&output.stdout).lines() {
                let _ = Command::new(engine.cli).args(remove).arg(id).output();
            }
        }
        // Egress rules of its networks (left by a test that failed half-way), which would
        // otherwise drop the traffic of a later network given the same subnet.
        let scope: String = self.0.chars().take(12).collect();
        let tag = format!("--comment wetee-{scope}-");
        let Ok(rules) = Command::new("iptables")
            .args(["-w", "-t", "mangle", "-S", "WETEE-EGRESS"])
            .output()
        else {
            return;
        };
        for rule in String::from_utf8_lossy(&rules.stdout).lines() {
            if let Some(spec) = rule.strip_prefix("-A ").filter(|_| rule.contains(&tag)) {
                let _ = Command::new("iptables")
                    .args(["-w", "-t", "mangle", "-D"])
                    .args(spec.split_whitespace())
                    .output();
            }
        }
    }
}

/// Waits up to `seconds` for `check` to give a value.
pub async fn eventually<T>(
    what: &str,
    seconds: u64,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// As [`eventually`], but a timeout also tells what `explain` finds then (what the chain
/// records, say), so a failure on a machine nobody can log into says why.
pub async fn eventually_explained<T>(
    what: &str,
    seconds: u64,
    mut check: impl AsyncFnMut() -> Option<T>,
    explain: impl AsyncFnOnce() -> String,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}: {}", explain().await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A worker agent running in this process.
pub struct RunningWorker {
    /// What it announced once registered.
    pub running: wetee_worker::agent::Running,
    stop: futures::channel::oneshot::Sender<()>,
    agent: tokio::task::JoinHandle<Result<(), wetee_worker::agent::AgentError>>,
}

impl RunningWorker {
    /// Asks it to stop and waits until it has, cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.agent
            .await
            .unwrap()
            .expect("the worker stopped cleanly");
    }
}

/// Starts the worker agent with `config`, following the node at `rpc`, operated by //Alice;
/// returns once it is registered.
pub async fn start_worker(config: WorkerConfig, rpc: &str) -> RunningWorker {
    start_worker_with(config, rpc, None).await
}

/// [`start_worker`], keeping its keys in `keys` instead of the store `config` names.
pub async fn start_worker_with(
    config: WorkerConfig,
    rpc: &str,
    keys: Option<std::sync::Arc<dyn wetee_worker::keys::KeyStore>>,
) -> RunningWorker {
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let (running_tx, running_rx) = std::sync::mpsc::channel();
    let rpc = rpc.to_string();
    let agent = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        let started = move |running| {
            let _ = running_tx.send(running);
        };
        let operator = dev_keypair("Alice");
        match keys {
            Some(keys) => {
                wetee_worker::agent::run_with_keys(
                    config,
                    &rpc,
                    operator,
                    keys.as_ref(),
                    stop,
                    started,
                )
                .await
            }
            None => wetee_worker::agent::run(config, &rpc, operator, stop, started).await,
        }
    });
    let running =
        tokio::task::spawn_blocking(move || running_rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the worker started");
    RunningWorker {
        running,
        stop,
        agent,
    }
}

/// A fresh token, as a secret's value.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    format!("tok-{}", hex::encode(bytes))
}

/// An app that serves, on its page, the secret `API_TOKEN` it reads from `/run/secrets`.
pub fn secret_serving_spec() -> AppSpec {
    secret_using_spec(
        "mkdir -p /www && cat /run/secrets/API_TOKEN > /www/index.html && \
         exec /bin/busybox httpd -f -p 8080 -h /www",
    )
}

/// An app that declares the secret `API_TOKEN` and runs the shell `script`.
pub fn secret_using_spec(script: &str) -> AppSpec {
    let mut spec = app_spec("unused");
    spec.container.args = BoundedVec::try_new(vec![text("sh"), text("-c"), text(script)]).unwrap();
    spec.container.secrets =
        BoundedVec::try_new(vec![BoundedString::try_new("API_TOKEN").unwrap()]).unwrap();
    spec
}

/// A tmpfs directory for one test's secrets: the worker's containers outlive it, and so would
/// their secret files in a directory other tests look into.
pub fn own_secrets_dir(test: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/shm/wetee-test-{test}-{}", std::process::id()))
}

/// Keeps the tests' Podman service up while a test's worker leaves the engine alone: the
/// service stops after 10 s without requests.
pub fn keep_engine_alive() -> tokio::task::JoinHandle<()> {
    let socket = engine().socket.clone();
    tokio::spawn(async move {
        use wetee_worker::backend::Backend as _;
        let backend =
            wetee_worker::backend::docker::DockerBackend::connect(Some(&socket), "keep-alive")
                .await
                .unwrap();
        loop {
            let _ = backend.list().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// Reads the worker's view as its agent does from pass to pass: app records proven before are
/// kept in `known` and reused while their stamps stay the same.
pub async fn next_view(
    light: &wetee_client::light::LightClient,
    worker: wetee_types::WorkerId,
    identity: &wetee_worker::identity::WorkerIdentity,
    revisions: &wetee_worker::revisions::SecretRevisions,
    known: &mut wetee_worker::chain::ProvenApps,
) -> Result<wetee_worker::chain::ChainView, wetee_worker::chain::ChainError> {
    let view = wetee_worker::chain::read_view(light, worker, identity, revisions, known).await?;
    *known = view.apps.clone();
    Ok(view)
}

/// The worker's record as the light client proves it, and the owner-API client an owner's tools
/// build from it (TLS bound to the attested identity key when the endpoint is `https://`).
pub async fn owner_api_of(
    light: &wetee_client::light::LightClient,
    genesis: wetee_types::Hash,
    worker: wetee_types::WorkerId,
) -> (
    wetee_types::records::Worker,
    wetee_client::owner_api::OwnerApiClient,
) {
    let record = light
        .snapshot()
        .worker(worker)
        .await
        .expect("the worker's record, proven")
        .expect("a registered worker");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let client = wetee_client::owner_api::OwnerApiClient::new(genesis, &record, now)
        .expect("a client for the worker's endpoint");
    (record, client)
}
