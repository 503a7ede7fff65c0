//! `wetee node` and `wetee testnet`: running validators (`wetee dev` is in [`crate::dev`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use wetee_client::keys::{KeySource, Keystore, wetee_home};
use wetee_node::rpc::RpcLimits;
use wetee_node::service::{self, ServiceConfig, Started};
use wetee_types::{ChainSpec, KeyScheme, Keypair};

use crate::output::{Format, print};
use crate::spec;

/// The default RPC port.
pub const DEFAULT_RPC_PORT: u16 = 9944;

/// What `wetee node` needs.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The chain spec (JSON).
    #[arg(long)]
    chain: PathBuf,
    /// The validator's ed25519 consensus key: a key file, a keystore name or a secret URI.
    #[arg(long)]
    key: String,
    /// Where blocks and state are kept.
    #[arg(long)]
    data_dir: PathBuf,
    #[command(flatten)]
    rpc: RpcArgs,
    /// Where to accept peers (default: every interface, on this validator's port in the spec).
    #[arg(long)]
    p2p_listen: Option<SocketAddr>,
    /// A full node this validator accepts: `PUBLIC_KEY_HEX@IP` (repeatable).
    #[arg(long = "full-node", value_name = "KEY@IP")]
    full_nodes: Vec<String>,
    /// Threads for consensus, p2p and storage.
    #[arg(long, default_value_t = 2)]
    worker_threads: usize,
    /// Threads for the RPC server, apart from consensus.
    #[arg(long, default_value_t = 2)]
    rpc_threads: usize,
    /// Where to serve Prometheus metrics (`GET /metrics`), apart from the RPC, e.g.
    /// `127.0.0.1:9615` (default: not served).
    #[arg(long, value_name = "ADDRESS")]
    metrics: Option<SocketAddr>,
    /// Stop when the parent process exits (used by `wetee testnet` and `wetee bench`).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
}

/// Where the RPC listens.
#[derive(Debug, Args)]
pub struct RpcArgs {
    /// The RPC's address.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    rpc_addr: IpAddr,
    /// The RPC's port (HTTP and WebSocket).
    #[arg(long, default_value_t = DEFAULT_RPC_PORT)]
    rpc_port: u16,
    /// Connections one IP address (an IPv6 /64) may hold open.
    #[arg(long, default_value_t = RpcLimits::default().connections_per_ip)]
    rpc_connections_per_ip: u32,
    /// Calls a second one address may make, sustained (a proof, a block or a history page
    /// costs ten).
    #[arg(long, default_value_t = RpcLimits::default().calls_per_second_per_ip)]
    rpc_calls_per_second: NonZeroU32,
    /// What one address may spend at once after a quiet spell.
    #[arg(long, default_value_t = RpcLimits::default().burst_per_ip)]
    rpc_burst: NonZeroU32,
    /// Hold loopback callers to the per-address limits too (they are exempt otherwise; behind a
    /// reverse proxy every caller is loopback: limit there, or set this).
    #[arg(long)]
    rpc_limit_loopback: bool,
}

impl RpcArgs {
    pub(crate) fn address(&self) -> SocketAddr {
        SocketAddr::new(self.rpc_addr, self.rpc_port)
    }

    pub(crate) fn limits(&self) -> RpcLimits {
        RpcLimits {
            connections_per_ip: self.rpc_connections_per_ip,
            calls_per_second_per_ip: self.rpc_calls_per_second,
            burst_per_ip: self.rpc_burst,
            exempt_loopback: !self.rpc_limit_loopback,
            ..RpcLimits::default()
        }
    }
}

/// What `wetee testnet` needs.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// How many validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Where the spec, keys, data and logs go (default: $WETEE_HOME/testnet).
    #[arg(long)]
    base_dir: Option<PathBuf>,
    /// Start a new network, deleting the old one.
    #[arg(long)]
    fresh: bool,
    /// The first validator's RPC port; the others follow.
    #[arg(long, default_value_t = DEFAULT_RPC_PORT)]
    rpc_port: u16,
    /// The first validator's peer-to-peer port; the others follow.
    #[arg(long, default_value_t = spec::FIRST_P2P_PORT)]
    p2p_port: u16,
    /// Full nodes to run beside the validators (they follow the chain and serve the RPC
    /// without voting).
    #[arg(long, default_value_t = 0)]
    full_nodes: usize,
}

/// The validator's consensus seed from `text` (a key file, a keystore name, or on a
/// development chain a secret URI).
pub(crate) fn consensus_seed(
    text: &str,
    development_chain: bool,
    keystore: &Keystore,
) -> Result<[u8; 32]> {
    let source = KeySource::parse_for_chain(text, development_chain)?;
    let keypair = source
        .keypair(KeyScheme::Ed25519, keystore)
        .with_context(|| format!("reading the validator key, {source}"))?;
    match keypair {
        Keypair::Ed25519(key) => Ok(key.to_bytes()),
        Keypair::Sr25519(_) => bail!("a validator key must be ed25519, {source} is sr25519"),
    }
}

pub(crate) fn read_spec(path: &Path) -> Result<ChainSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the chain spec {}", path.display()))?;
    ChainSpec::from_json(&text).with_context(|| format!("chain spec {}", path.display()))
}

/// A running node, as its banner reports it.
#[derive(Serialize)]
pub(crate) struct Running<'a> {
    pub chain: &'a str,
    pub validator: String,
    pub public_key: String,
    pub rpc: String,
    pub ws: String,
    pub metrics: Option<String>,
    pub p2p: SocketAddr,
    pub data_dir: &'a Path,
    pub pid: u32,
}

pub(crate) fn running_of<'a>(chain: &'a str, data_dir: &'a Path, started: &Started) -> Running<'a> {
    let rpc = format!("http://{}", started.rpc_address);
    Running {
        chain,
        validator: started.name.clone(),
        public_key: hex::encode(started.public_key),
        ws: format!("ws://{}", started.rpc_address),
        metrics: started
            .metrics_address
            .map(|address| format!("http://{address}/metrics")),
        rpc,
        p2p: started.p2p_listen,
        data_dir,
        pid: std::process::id(),
    }
}

fn announce(format: Format, chain: &str, data_dir: &Path, started: &Started, extra: &str) {
    let running = running_of(chain, data_dir, started);
    print(format, &running, || {
        format!(
            "{chain}: {} running\n  RPC      {} (WebSocket {})\n  metrics  {}\n  p2p      {}\n  data     {}{extra}",
            if started.is_validator {
                format!("validator {}", running.validator)
            } else {
                "full node".to_string()
            },
            running.rpc,
            running.ws,
            running
                .metrics
                .as_deref()
                .unwrap_or("not served (--metrics ADDRESS)"),
            running.p2p,
            data_dir.display()
        )
    });
}

/// Exits this process once its parent is gone (it is then adopted by another process).
fn exit_with_parent() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                if std::os::unix::process::parent_id() != parent {
                    eprintln!("the parent process exited: stopping");
                    std::process::exit(0);
                }
            }
        });
    }
}

/// `KEY@IP`: a full node's ed25519 public key (hex) and the IP it connects from.
fn parse_full_node(text: &str) -> Result<([u8; 32], IpAddr)> {
    let (key, ip) = text
        .split_once('@')
        .with_context(|| format!("--full-node {text}: expected PUBLIC_KEY_HEX@IP"))?;
    let bytes = hex::decode(key.trim_start_matches("0x"))
        .with_context(|| format!("--full-node {text}: the key is not hex"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--full-node {text}: the key is not 32 bytes"))?;
    let ip = ip
        .parse()
        .with_context(|| format!("--full-node {text}: {ip} is not an IP address"))?;
    Ok((key, ip))
}

/// `wetee node`.
pub fn node(args: NodeArgs, keystore: &Keystore, format: Format) -> Result<()> {
    crate::logs::init(crate::logs::OPERATOR, std::io::stderr);
    if args.exit_with_parent {
        exit_with_parent();
    }
    let spec = read_spec(&args.chain)?;
    let key_seed = consensus_seed(&args.key, spec.is_development(), keystore)?;
    let full_nodes = args
        .full_nodes
        .iter()
        .map(|text| parse_full_node(text))
        .collect::<Result<Vec<_>>>()?;
    let chain = spec.name.clone();
    let data_dir = args.data_dir.clone();
    service::run(
        ServiceConfig {
            spec,
            key_seed,
            full_nodes,
            data_dir: args.data_dir,
            rpc_address: args.rpc.address(),
            rpc_limits: args.rpc.limits(),
            p2p_listen: args.p2p_listen,
            worker_threads: args.worker_threads,
            rpc_threads: args.rpc_threads,
            metrics_address: args.metrics,
        },
        move |started| announce(format, &chain, &data_dir, &started, ""),
        async {
            let signal = crate::signals::shutdown().await;
            tracing::info!(signal, "stopping");
        },
    )?;
    Ok(())
}

/// A validator process started by [`spawn_validators`].
#[derive(Debug, Serialize)]
pub struct TestnetValidator {
    /// Its name in the spec.
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// Its RPC URL.
    pub rpc: String,
    /// Its log file.
    pub log: PathBuf,
    /// The command line that started it.
    pub command: Vec<String>,
}

/// Starts `wetee node` with `arguments` as `name`, logging to `base/<name>.log`; it stops when
/// this process exits.
fn spawn_node(
    base: &Path,
    name: &str,
    rpc_port: u16,
    arguments: Vec<String>,
) -> Result<(Child, TestnetValidator)> {
    let exe = std::env::current_exe().context("finding the wetee executable")?;
    let log = base.join(format!("{name}.log"));
    let mut arguments = arguments;
    arguments.extend([
        "--rpc-port".into(),
        rpc_port.to_string(),
        "--exit-with-parent".into(),
    ]);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let child = Command::new(&exe)
        .arg("node")
        .args(&arguments)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut command = vec![exe.display().to_string(), "node".into()];
    command.extend(arguments);
    let started = TestnetValidator {
        name: name.to_string(),
        pid: child.id(),
        rpc: format!("ws://127.0.0.1:{rpc_port}"),
        log,
        command,
    };
    Ok((child, started))
}

/// The key of full node `index` in `keys` (created on first use) and its public key in hex.
fn full_node_key(keys: &Path, index: usize) -> Result<(PathBuf, String)> {
    let path = keys.join(format!("full-node-{index}.key"));
    if !path.exists() {
        let seed = wetee_client::keys::random_seed()?;
        spec::write_private(&path, &format!("0x{}\n", hex::encode(seed.as_ref())))?;
    }
    let uri = std::fs::read_to_string(&path)?;
    let public = wetee_client::keys::keypair_from_uri(uri.trim(), KeyScheme::Ed25519)?.account_id();
    Ok((path, hex::encode(public.0)))
}

/// Starts one `wetee node` process per validator of the spec at `base/chain.json` (keys in
/// `base/keys`, data and logs in `base`, RPC ports from `first_rpc_port`), and `full_nodes`
/// full nodes after them (RPC ports next, peer-to-peer ports from `first_full_node_p2p_port`).
/// They stop when this process exits.
pub fn spawn_network(
    base: &Path,
    spec: &ChainSpec,
    first_rpc_port: u16,
    full_nodes: usize,
    first_full_node_p2p_port: u16,
) -> Result<Vec<(Child, TestnetValidator)>> {
    let spec_path = base.join("chain.json").display().to_string();
    let keys = base.join("keys");
    let port = |first: u16, index: usize| -> Result<u16> {
        first
            .checked_add(u16::try_from(index)?)
            .context("port out of range")
    };
    let full = (0..full_nodes)
        .map(|index| full_node_key(&keys, index))
        .collect::<Result<Vec<_>>>()?;
    let mut spawned = Vec::new();
    for (index, validator) in spec.validators.iter().enumerate() {
        let mut arguments: Vec<String> = vec![
            "--chain".into(),
            spec_path.clone(),
            "--key".into(),
            keys.join(format!("{}.key", validator.name))
                .display()
                .to_string(),
            "--data-dir".into(),
            base.join(&validator.name).display().to_string(),
        ];
        for (_, public) in &full {
            arguments.extend(["--full-node".into(), format!("{public}@127.0.0.1")]);
        }
        spawned.push(spawn_node(
            base,
            &validator.name,
            port(first_rpc_port, index)?,
            arguments,
        )?);
    }
    for (index, (key, _)) in full.iter().enumerate() {
        let name = format!("full-node-{index}");
        let arguments: Vec<String> = vec![
            "--chain".into(),
            spec_path.clone(),
            "--key".into(),
            key.display().to_string(),
            "--data-dir".into(),
            base.join(&name).display().to_string(),
            "--p2p-listen".into(),
            format!("127.0.0.1:{}", port(first_full_node_p2p_port, index)?),
        ];
        let rpc_port = port(first_rpc_port, spec.validators.len() + index)?;
        spawned.push(spawn_node(base, &name, rpc_port, arguments)?);
    }
    Ok(spawned)
}

/// `wetee testnet`: one `wetee node` process per validator, until interrupted.
pub fn testnet(args: TestnetArgs, format: Format) -> Result<()> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let base = args
        .base_dir
        .unwrap_or_else(|| wetee_home().join("testnet"));
    if args.fresh && base.exists() {
        std::fs::remove_dir_all(&base).with_context(|| format!("deleting {}", base.display()))?;
    }
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let spec_path = base.join("chain.json");
    let keys = base.join("keys");
    let spec = if spec_path.exists() {
        let spec = read_spec(&spec_path)?;
        if spec.validators.len() != args.validators {
            bail!(
                "{} holds a network of {} validators; use --fresh to start one of {}",
                base.display(),
                spec.validators.len(),
                args.validators
            );
        }
        spec
    } else {
        let spec = spec::local_testnet_spec(args.validators, args.p2p_port, &keys, spec::now_ms())?;
        std::fs::write(&spec_path, format!("{}\n", spec.to_json()))?;
        spec
    };
    let first_full_node_p2p_port = args
        .p2p_port
        .checked_add(u16::try_from(args.validators)?)
        .context("port out of range")?;
    let (mut children, mut started): (Vec<Child>, Vec<TestnetValidator>) = spawn_network(
        &base,
        &spec,
        args.rpc_port,
        args.full_nodes,
        first_full_node_p2p_port,
    )?
    .into_iter()
    .unzip();
    let full_nodes = started.split_off(args.validators);
    print(
        format,
        &serde_json::json!({
            "chain": spec.name, "spec": spec_path, "validators": started, "full_nodes": full_nodes,
        }),
        || {
            let mut text = format!(
                "{}: {} validators and {} full nodes started (Ctrl-C or SIGTERM stops them)\n",
                spec.name,
                started.len(),
                full_nodes.len()
            );
            for v in started.iter().chain(&full_nodes) {
                text.push_str(&format!(
                    "  {:<12} pid {:<7} {}  log {}\n",
                    v.name,
                    v.pid,
                    v.rpc,
                    v.log.display()
                ));
            }
            text
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(supervise(&mut children));
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Waits for Ctrl-C or SIGTERM; a validator that exits is reported but the others keep running
/// (a network tolerates one validator in four being down).
async fn supervise(children: &mut [Child]) -> Result<()> {
    let mut reported = vec![false; children.len()];
    let interrupted = crate::signals::shutdown();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
        for (index, child) in children.iter_mut().enumerate() {
            if !reported[index]
                && let Ok(Some(status)) = child.try_wait()
            {
                eprintln!("validator {index} (pid {}) exited: {status}", child.id());
                reported[index] = true;
            }
        }
    }
}
