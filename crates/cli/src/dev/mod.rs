//! `wetee dev`: the whole dev cloud on one machine, supervised.
//!
//! - the node (one validator, in this process) on the main thread;
//! - a supervisor on its own Tokio runtime: the worker ([`worker`], restarted with backoff),
//!   the banner and the status line ([`status`]), and the signals;
//! - the container engine ([`engine`]): one already serving, or a Podman service it starts.
//!
//! SIGINT, SIGTERM or SIGHUP stop everything it started, in order: the worker, then its
//! containers (the chain keeps the apps; the next `wetee dev` starts them again), then the
//! node, then the Podman service.

mod engine;
mod status;
mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::channel::oneshot;
use tokio::sync::watch;
use wetee_client::keys::{DEV_WORKER_OPERATOR, Keystore, dev_keypair, wetee_home};
use wetee_node::service::{self, ServiceConfig, Started};
use wetee_types::ChainSpec;
use wetee_worker::config::WorkerConfig;

use crate::node::{RpcArgs, consensus_seed, read_spec};
use crate::output::Format;
use crate::progress::Progress;
use crate::spec;
use engine::DevEngine;
pub(crate) use engine::remove_containers;
use status::{Banner, WorkerLine};
use worker::WorkerState;

/// How long stopping may take before `wetee dev` gives up on removing containers.
const CLEANUP: Duration = Duration::from_secs(20);
/// How long `--exit-when-ready` waits for the worker.
const READY: Duration = Duration::from_secs(120);

/// What `wetee dev` needs.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the dev chain is kept (default: $WETEE_HOME/dev).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Start a new chain, deleting the old one.
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    rpc: RpcArgs,
    /// The validator's peer-to-peer port.
    #[arg(long, default_value_t = spec::FIRST_P2P_PORT)]
    p2p_port: u16,
    /// The worker's HTTP entrance to the apps.
    #[arg(long, default_value_t = 8800)]
    ingress_port: u16,
    /// Run the chain only, without a local worker.
    #[arg(long)]
    no_worker: bool,
    /// The web console's port, on 127.0.0.1.
    #[arg(long, default_value_t = wetee_console::DEFAULT_ADDRESS.port())]
    console_port: u16,
    /// Do not serve the web console.
    #[arg(long)]
    no_console: bool,
    /// Log what happens block by block (`RUST_LOG` chooses in detail).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Start everything, wait until the worker serves, then stop everything and exit: 0 if
    /// the worker came up, 1 if not (a check that this machine can run the dev cloud).
    #[arg(long, conflicts_with = "no_worker")]
    exit_when_ready: bool,
}

/// Who operates the dev worker: its own funded account, so that it never competes with the
/// user for a nonce; `//Alice` on a dev chain created before it had one.
struct WorkerOperator {
    key: wetee_types::Keypair,
    /// Its URI, for the banner.
    name: String,
    /// Whether this chain predates the dev worker's own account.
    legacy: bool,
}

impl WorkerOperator {
    fn of(spec: &ChainSpec) -> WorkerOperator {
        let own = dev_keypair(DEV_WORKER_OPERATOR);
        let funded = spec.balances.iter().any(|b| b.account == own.account_id());
        if funded {
            WorkerOperator {
                key: own,
                name: format!("//{DEV_WORKER_OPERATOR}"),
                legacy: false,
            }
        } else {
            WorkerOperator {
                key: dev_keypair("Alice"),
                name: "//Alice".into(),
                legacy: true,
            }
        }
    }
}

/// The signals received so far: how many, and the last one's name.
type Signals = watch::Receiver<Option<(u32, &'static str)>>;

/// `wetee dev`.
pub fn run(args: DevArgs, format: Format) -> Result<()> {
    let progress = Progress::new(format);
    let default_logs = if args.verbose {
        crate::logs::DEV_VERBOSE
    } else {
        crate::logs::DEV
    };
    crate::logs::init(default_logs, progress.log_writer());
    // Signals are heard before anything starts, so that whatever starts is also stopped.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the supervisor's runtime")?;
    let (heard, signals) = watch::channel(None);
    runtime.spawn(async move {
        for count in 1.. {
            let name = crate::signals::shutdown().await;
            heard.send_replace(Some((count, name)));
        }
    });
    let data_dir = args.data_dir.unwrap_or_else(|| wetee_home().join("dev"));
    let worker_dir = data_dir.join("worker");
    // Fresh: the old worker's identity is about to go, and with it the only way to find its
    // containers; they are removed once the engine answers.
    // A dev chain written by a build with other encodings cannot be read by this one: it is
    // disposable, so it starts over.
    let format_path = data_dir.join("state-format");
    let outdated = data_dir.join("chain.json").exists()
        && std::fs::read_to_string(&format_path).ok().as_deref() != Some(state_format().as_str());
    if outdated && !args.fresh {
        progress.stage(
            &format!(
                "the dev chain in {} was written by another build of WeTEE, whose state this \
                 one cannot read: starting a fresh one",
                data_dir.display()
            ),
            serde_json::json!({ "stage": "fresh", "reason": "state format" }),
        );
    }
    let fresh = args.fresh || outdated;
    let old_scope = if fresh && worker_dir.join("worker-keys.json").exists() {
        worker_scope(&worker_dir).ok()
    } else {
        None
    };
    if fresh && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("deleting {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(&format_path, state_format())
        .with_context(|| format!("writing {}", format_path.display()))?;
    // The spec is written once, so that a restarted dev chain keeps its genesis.
    let spec_path = data_dir.join("chain.json");
    let spec = if spec_path.exists() {
        read_spec(&spec_path)?
    } else {
        let spec = spec::dev_spec(spec::now_ms(), args.p2p_port)?;
        std::fs::write(&spec_path, format!("{}\n", spec.to_json()))?;
        spec
    };
    let key_seed = consensus_seed(
        spec::DEV_VALIDATOR_URI,
        spec.is_development(),
        &Keystore::default_location(),
    )?;
    let engine = if args.no_worker {
        Ok(None)
    } else {
        DevEngine::find_or_start(&data_dir).map_err(|e| format!("{e:#}"))
    };
    if let Some((_, signal)) = *signals.borrow() {
        progress.stage(
            &format!("wetee dev: {signal}: stopping before the chain started"),
            serde_json::json!({ "stopping": signal }),
        );
        return Ok(());
    }
    if let (Some(scope), Ok(Some(engine))) = (&old_scope, &engine) {
        let _ = runtime.block_on(engine::remove_containers(&engine.socket, scope));
    }
    let worker_line = match &engine {
        _ if args.no_worker => WorkerLine::Disabled,
        Ok(None) => WorkerLine::NoEngine,
        Err(reason) => WorkerLine::EngineFailed(reason.clone()),
        Ok(Some(_)) => WorkerLine::Starting,
    };
    let operator = WorkerOperator::of(&spec);
    let supervisor = Supervisor {
        format,
        chain: spec.name.clone(),
        data_dir: data_dir.clone(),
        worker: engine
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|engine| DevWorker {
                config: dev_worker_config(
                    &worker_dir,
                    &engine.socket,
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.ingress_port),
                    spec.genesis_hash(),
                ),
                socket: engine.socket.clone(),
                operator,
                engine_service: engine.started_service(),
            }),
        worker_line,
        exit_when_ready: args.exit_when_ready,
        console: (!args.no_console)
            .then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.console_port)),
        development: spec.is_development(),
        trust: wetee_client::light::Trust::Spec(Box::new(spec.clone())),
    };
    let (started_sender, started) = oneshot::channel::<Started>();
    let (stop_node, node_stop) = oneshot::channel::<()>();
    let (node_ended, node_end) = oneshot::channel::<()>();
    let supervising = std::thread::spawn(move || {
        supervisor.run(runtime, signals, progress, started, node_end, stop_node)
    });
    let node = service::run(
        ServiceConfig {
            spec,
            key_seed,
            full_nodes: Vec::new(),
            data_dir: data_dir.join("node"),
            rpc_address: args.rpc.address(),
            rpc_limits: args.rpc.limits(),
            p2p_listen: Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                args.p2p_port,
            )),
            worker_threads: 2,
            rpc_threads: 2,
            // Beside the RPC, on a port the system picks: the banner says which.
            metrics_address: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
        },
        move |started| {
            let _ = started_sender.send(started);
        },
        async move {
            let _ = node_stop.await;
        },
    );
    // The node stopped (asked to, or failed): the supervisor stops the worker if it has not.
    let _ = node_ended.send(());
    let supervised = supervising
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the supervisor panicked")));
    // Last, the engine's service, once nothing uses it.
    drop(engine);
    node.context("the node stopped")?;
    supervised
}

/// The dev worker, when there is an engine for it.
struct DevWorker {
    config: WorkerConfig,
    socket: String,
    operator: WorkerOperator,
    engine_service: Option<u32>,
}

/// Everything of `wetee dev` except the node.
struct Supervisor {
    format: Format,
    chain: String,
    data_dir: PathBuf,
    worker: Option<DevWorker>,
    worker_line: WorkerLine,
    exit_when_ready: bool,
    /// Where to serve the web console, if at all.
    console: Option<SocketAddr>,
    /// The chain the console proves against: the one this dev cloud created.
    trust: wetee_client::light::Trust,
    /// Whether the chain is a development chain.
    development: bool,
}

/// The first signal, once it comes.
async fn first_signal(signals: &mut Signals) -> &'static str {
    match signals.wait_for(Option::is_some).await {
        Ok(heard) => heard.map_or("a signal", |(_, name)| name),
        Err(_) => std::future::pending().await,
    }
}

impl Supervisor {
    fn run(
        self,
        runtime: tokio::runtime::Runtime,
        signals: Signals,
        progress: Progress,
        started: oneshot::Receiver<Started>,
        node_end: oneshot::Receiver<()>,
        stop_node: oneshot::Sender<()>,
    ) -> Result<()> {
        let outcome = runtime.block_on(self.supervise(&progress, signals, started, node_end));
        progress.finish();
        let _ = stop_node.send(());
        outcome
    }

    async fn supervise(
        self,
        progress: &Progress,
        mut signals: Signals,
        started: oneshot::Receiver<Started>,
        mut node_end: oneshot::Receiver<()>,
    ) -> Result<()> {
        let started = tokio::select! {
            started = started => match started {
                Ok(started) => started,
                // The node failed before its RPC listened: it says why.
                Err(_) => return Ok(()),
            },
            signal = first_signal(&mut signals) => {
                progress.stage(&format!("wetee dev: {signal}: stopping"), serde_json::json!({ "stopping": signal }));
                return Ok(());
            }
            _ = &mut node_end => return Ok(()),
        };
        let rpc = format!("ws://{}", started.rpc_address);
        let console = match self.console {
            Some(address) => Some(
                crate::console::start(address, &rpc, self.development, Some(self.trust.clone()))
                    .await,
            ),
            None => None,
        };
        let (stop_worker, stop) = watch::channel(false);
        let (state_sender, mut state) = watch::channel(WorkerState::Starting);
        let scope = match &self.worker {
            Some(worker) => Some(worker_scope(&worker.config.data_dir)?),
            None => None,
        };
        let worker_task = self.worker.as_ref().map(|worker| {
            tokio::spawn(worker::supervise(
                worker.config.clone(),
                rpc.clone(),
                worker.operator.key.clone(),
                stop.clone(),
                state_sender,
            ))
        });
        let running = Running {
            worker_task,
            stop_worker,
            scope,
        };
        let mut banner = Banner {
            chain: self.chain.clone(),
            data_dir: self.data_dir.clone(),
            started: started.clone(),
            worker: self.worker_line.clone(),
            operator: self.worker.as_ref().map(|w| {
                if w.operator.legacy {
                    format!(
                        "{} (this chain predates the dev worker's own account: `wetee dev \
                         --fresh` starts one that has it)",
                        w.operator.name
                    )
                } else {
                    w.operator.name.clone()
                }
            }),
            engine_service: self.worker.as_ref().and_then(|w| w.engine_service),
            console: console.map(|started| started.map_err(|e| format!("{e:#}"))),
        };
        // The banner waits for the worker's first word (registered, or why not).
        if running.worker_task.is_some() {
            tokio::select! {
                _ = state.wait_for(|s| !matches!(s, WorkerState::Starting)) => {}
                signal = first_signal(&mut signals) => {
                    return self.stop(progress, signal, running, signals).await;
                }
                _ = &mut node_end => {
                    return self.stop(progress, "the node stopped", running, signals).await;
                }
            }
            banner.worker = WorkerLine::from_state(&state.borrow_and_update());
        }
        progress.suspend(|| banner.print(self.format));
        if self.exit_when_ready {
            let ready = tokio::select! {
                ready = self.ready(&mut state, &banner) => ready,
                signal = first_signal(&mut signals) => Err(anyhow::anyhow!("{signal} before the worker was ready")),
            };
            let stopped = self
                .stop(progress, "--exit-when-ready", running, signals)
                .await;
            return ready.and(stopped);
        }
        let watching = status::watch_chain(&rpc, progress, self.format);
        tokio::pin!(watching);
        let has_worker = running.worker_task.is_some();
        let reason = loop {
            tokio::select! {
                changed = state.changed(), if has_worker => {
                    if changed.is_err() {
                        break "the worker's supervisor ended";
                    }
                    let line = WorkerLine::from_state(&state.borrow_and_update());
                    if let Some(text) = line.transition() {
                        progress.stage(&format!("wetee dev: {text}"), line.to_json());
                    }
                }
                signal = first_signal(&mut signals) => break signal,
                _ = &mut node_end => break "the node stopped",
                () = &mut watching => {}
            }
        };
        self.stop(progress, reason, running, signals).await
    }

    /// Waits until the worker runs and its ingress accepts connections.
    async fn ready(&self, state: &mut watch::Receiver<WorkerState>, banner: &Banner) -> Result<()> {
        if self.worker.is_none() {
            bail!("no worker: {}", banner.worker.describe());
        }
        let running = tokio::time::timeout(READY, async {
            loop {
                if let WorkerState::Running(running) = &*state.borrow_and_update() {
                    return Some(running.clone());
                }
                if state.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        let last = WorkerLine::from_state(&state.borrow()).describe();
        let Ok(Some(running)) = running else {
            bail!(
                "the worker did not come up within {} s: {last}",
                READY.as_secs()
            );
        };
        tokio::net::TcpStream::connect(running.ingress)
            .await
            .with_context(|| format!("the worker's ingress {} does not answer", running.ingress))?;
        Ok(())
    }

    /// Stops the worker, removes its containers, and lets the node stop. A second signal
    /// gives up on the containers and stops at once.
    async fn stop(
        &self,
        progress: &Progress,
        reason: &str,
        running: Running,
        mut signals: Signals,
    ) -> Result<()> {
        let what = match (
            &self.worker,
            self.worker.as_ref().and_then(|w| w.engine_service),
        ) {
            (None, _) => "the node",
            (Some(_), None) => "the worker, its containers and the node",
            (Some(_), Some(_)) => "the worker, its containers, the node and Podman's service",
        };
        progress.stage(
            &format!("wetee dev: {reason}: stopping {what}"),
            serde_json::json!({ "stopping": reason }),
        );
        let already = signals.borrow_and_update().map_or(0, |(count, _)| count);
        let again = async {
            let _ = signals
                .wait_for(|heard| heard.is_some_and(|(count, _)| count > already))
                .await;
        };
        tokio::select! {
            cleaned = self.clean_up(progress, running) => cleaned,
            () = again => {
                progress.stage(
                    "wetee dev: stopping now, without waiting for the containers to be removed \
                     (`wetee dev --fresh` removes them later)",
                    serde_json::json!({ "stopping": "now" }),
                );
                Ok(())
            }
        }
    }

    /// Stops the worker (aborting it if it does not stop in time, so that it cannot start a
    /// container again), then removes its containers.
    async fn clean_up(&self, progress: &Progress, running: Running) -> Result<()> {
        running.stop_worker.send_replace(true);
        if let Some(mut task) = running.worker_task
            && tokio::time::timeout(CLEANUP, &mut task).await.is_err()
        {
            task.abort();
            let _ = task.await;
        }
        let (Some(worker), Some(scope)) = (&self.worker, running.scope) else {
            return Ok(());
        };
        match tokio::time::timeout(CLEANUP, engine::remove_containers(&worker.socket, &scope)).await
        {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(removed)) => {
                progress.stage(
                    &format!(
                        "wetee dev: removed {removed} container{} (the chain keeps the apps: \
                         the next `wetee dev` starts them again)",
                        if removed == 1 { "" } else { "s" }
                    ),
                    serde_json::json!({ "removed_containers": removed }),
                );
                Ok(())
            }
            Ok(Err(e)) => Err(e.context("removing the dev worker's containers")),
            Err(_) => bail!(
                "removing the dev worker's containers took more than {} s",
                CLEANUP.as_secs()
            ),
        }
    }
}

/// What the supervisor started and must stop.
struct Running {
    worker_task: Option<tokio::task::JoinHandle<()>>,
    stop_worker: watch::Sender<bool>,
    /// The label scope of the worker's containers.
    scope: Option<String>,
}

/// The label scope of the dev worker's containers: its identity key, created if new.
fn worker_scope(worker_dir: &Path) -> Result<String> {
    let identity = wetee_worker::identity::WorkerIdentity::open_unprotected(worker_dir)
        .context("the dev worker's keys")?;
    Ok(wetee_worker::registration::Registration::scope(
        worker_dir,
        &identity.keys().identity,
    ))
}

/// What identifies this build's encodings of the chain's state: the conformance hashes that
/// pin them change with every encoding.
fn state_format() -> String {
    wetee_types::Hash::of_parts(&[
        include_str!("../../../types/conformance.toml").as_bytes(),
        &wetee_node::DATA_FORMAT.to_be_bytes(),
    ])
    .to_string()
}

/// The dev worker: simulated TEE, generous capacity, cheap prices.
fn dev_worker_config(
    dir: &Path,
    socket: &str,
    ingress: SocketAddr,
    genesis: wetee_types::Hash,
) -> WorkerConfig {
    use wetee_types::codec::BoundedString;
    use wetee_types::{Balance, Prices, Resources, TeeKind, TeeKinds};
    WorkerConfig {
        stake: Balance(200 * wetee_types::balance::UNIT),
        data_dir: dir.to_path_buf(),
        // The worker trusts the chain this command created, whatever its node says.
        chain: wetee_worker::config::ChainTrust::genesis(genesis),
        profile: wetee_types::records::WorkerProfile {
            // TLS bound to the worker's key for owners' tools, plain HTTP for apps, one port.
            endpoint: BoundedString::try_new(format!("https://{ingress}")).unwrap_or_default(),
            region: BoundedString::try_new("local").unwrap_or_default(),
            level: 1,
            capacity: Resources {
                cpu_millicores: 8_000,
                memory_mib: 16_384,
                disk_gib: 100,
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
        backend: wetee_worker::config::BackendConfig {
            kind: wetee_worker::config::BackendKind::Docker,
            socket: Some(socket.to_string()),
            secrets_dir: wetee_worker::config::DEFAULT_SECRETS_DIR.into(),
            pids_limit: wetee_worker::backend::confinement::DEFAULT_PIDS_LIMIT,
        },
        keys: Default::default(),
        logs: Default::default(),
        ingress: wetee_worker::config::IngressConfig {
            listen: ingress,
            domain: "localhost".into(),
            limits: Default::default(),
        },
        text_digest: None,
    }
}
