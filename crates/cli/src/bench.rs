//! `wetee bench chain`: starts a fresh local network of real validator processes and measures
//! finality latency with empty blocks, sustained signed transfers per second, and the longest
//! pause in finality after one validator is killed.
//!
//! Latency is from a block's proposal (its header timestamp, set by the proposer) to the
//! moment the finalized head reaches a client of the first validator; every process runs on
//! this machine, so they share one clock.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt as _;
use serde::Serialize;
use wetee_client::keys::dev_keypair;
use wetee_client::rpc::Client;
use wetee_types::transaction::{BalancesCall, Transaction};
use wetee_types::{Balance, Call, KeyScheme, Keypair, SignedTransaction};

use crate::node::spawn_network;
use crate::output::{Format, print};
use crate::spec;

/// What `wetee bench chain` needs.
#[derive(Debug, Args)]
pub struct ChainBenchArgs {
    /// Validators in the network (1 is the dev setup).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Seconds each phase measures.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Transfers submitted per second in the throughput phase.
    #[arg(long, default_value_t = 3_000)]
    rate: u64,
    /// Sending accounts in the throughput phase.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// The first validator's RPC port.
    #[arg(long, default_value_t = 19_944)]
    rpc_port: u16,
    /// The first validator's peer-to-peer port.
    #[arg(long, default_value_t = 31_333)]
    p2p_port: u16,
    /// Target block time of the benchmarked chain (the local chains' by default).
    #[arg(long, default_value_t = spec::LOCAL_BLOCK_TIME_MS)]
    block_time_ms: u64,
    /// Keep the network's directory (logs, data) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// What one phase of finalized blocks looked like.
#[derive(Debug, Serialize)]
struct Blocks {
    blocks: usize,
    blocks_per_second: f64,
    transactions: u64,
    transactions_per_second: f64,
    latency_p50_ms: u64,
    latency_p99_ms: u64,
    longest_pause_ms: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    validators: usize,
    block_time_ms: u64,
    machine: String,
    empty_blocks: Blocks,
    transfers: Transfers,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_validator_down: Option<Blocks>,
}

#[derive(Debug, Serialize)]
struct Transfers {
    offered_per_second: f64,
    rejected: u64,
    finalized: Blocks,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn now_ms() -> u64 {
    spec::now_ms()
}

/// Follows finalized heads for `duration` and summarises them.
async fn observe(client: &Client, duration: Duration) -> Result<Blocks> {
    let mut heads = client.finalized_heads().await?;
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut transactions = 0u64;
    let mut last = Instant::now();
    let mut longest_pause = Duration::ZERO;
    loop {
        let remaining = duration.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            break;
        }
        let next = tokio::time::timeout(remaining, heads.next()).await;
        let arrived = Instant::now();
        longest_pause = longest_pause.max(arrived - last);
        let Ok(next) = next else { break };
        let head = next
            .context("the node closed the head subscription")?
            .context("reading a head")?;
        last = arrived;
        latencies.push(now_ms().saturating_sub(head.header.timestamp_ms));
        transactions += u64::from(head.header.transaction_count);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Blocks {
        blocks: latencies.len(),
        blocks_per_second: latencies.len() as f64 / elapsed,
        transactions,
        transactions_per_second: transactions as f64 / elapsed,
        latency_p50_ms: percentile(&latencies, 0.5),
        latency_p99_ms: percentile(&latencies, 0.99),
        longest_pause_ms: longest_pause.as_millis() as u64,
    })
}

async fn connect(url: &str) -> Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Client::connect(url).await {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Funds `senders` fresh ed25519 accounts from //Alice and waits until they can spend.
async fn fund(client: &Client, senders: usize) -> Result<Vec<Keypair>> {
    let alice = dev_keypair("Alice");
    let mut keys = Vec::new();
    let mut pending = Vec::new();
    for index in 0..senders {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(index as u64 + 1).to_be_bytes());
        seed[8..16].copy_from_slice(&now_ms().to_be_bytes());
        let key = Keypair::from_seed(KeyScheme::Ed25519, seed);
        let call = Call::Balances(BalancesCall::Transfer {
            to: key.account_id(),
            amount: Balance(1_000 * wetee_types::balance::UNIT),
        });
        let tx = client.sign(&alice, call).await?;
        pending.push(client.submit_and_watch(&tx).await?);
        keys.push(key);
    }
    for mut statuses in pending {
        loop {
            match statuses.next().await {
                Some(status) => match status? {
                    wetee_types::rpc::TransactionStatus::Finalized { .. } => break,
                    wetee_types::rpc::TransactionStatus::Dropped { reason } => {
                        bail!("funding a sender failed: {reason}")
                    }
                    _ => {}
                },
                None => bail!("the node stopped reporting on a funding transfer"),
            }
        }
    }
    Ok(keys)
}

/// Signs `per_sender` transfers from every sender, interleaved so that every block can take
/// some from each.
fn presign(
    client: &Client,
    senders: &[Keypair],
    per_sender: u64,
    fee: Balance,
    expires_at: u64,
) -> Vec<SignedTransaction> {
    let to = dev_keypair("Bob").account_id();
    let mut txs = Vec::new();
    for nonce in 0..per_sender {
        for key in senders {
            txs.push(
                Transaction {
                    signer: key.account_id(),
                    nonce,
                    fee,
                    expires_at,
                    call: Call::Balances(BalancesCall::Transfer {
                        to,
                        amount: Balance(1),
                    }),
                }
                .sign(key, &client.genesis_hash()),
            );
        }
    }
    txs
}

/// Submits `txs` at `rate` per second; returns how many the node refused.
async fn submit_at_rate(client: Arc<Client>, txs: Vec<SignedTransaction>, rate: u64) -> u64 {
    let tick = Duration::from_millis(20);
    let per_tick = (rate / 50).max(1) as usize;
    let mut interval = tokio::time::interval(tick);
    let mut rejected = 0u64;
    for chunk in txs.chunks(per_tick) {
        interval.tick().await;
        let results = futures::stream::iter(chunk.to_vec())
            .map(|tx| {
                let client = Arc::clone(&client);
                async move { client.submit(&tx).await.is_ok() }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        rejected += results.iter().filter(|accepted| !**accepted).count() as u64;
    }
    rejected
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    format!("{cores} cores, {model}, {build}")
}

/// `wetee bench chain`.
pub fn chain(args: ChainBenchArgs, format: Format) -> Result<()> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let dir = tempfile::Builder::new()
        .prefix("wetee-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let base = dir.path().to_path_buf();
    let mut spec = spec::local_testnet_spec(
        args.validators,
        args.p2p_port,
        &base.join("keys"),
        spec::now_ms(),
    )?;
    spec.params.target_block_time_ms = args.block_time_ms;
    spec.validate()
        .with_context(|| format!("--block-time-ms {}", args.block_time_ms))?;
    std::fs::write(base.join("chain.json"), format!("{}\n", spec.to_json()))?;
    let mut children: Vec<Child> = spawn_network(&base, &spec, args.rpc_port, 0, 0)?
        .into_iter()
        .map(|(child, _)| child)
        .collect();
    eprintln!(
        "started {} validator(s) in {} ({})",
        args.validators,
        base.display(),
        machine()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&args, &mut children));
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    if args.keep {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
    let report = result?;
    print(format, &report, || {
        let line = |name: &str, b: &Blocks| {
            format!(
                "{name:<22} {:>6.1} blocks/s  {:>8.1} tx/s  latency p50 {:>4} ms  p99 {:>4} ms  longest pause {:>5} ms",
                b.blocks_per_second,
                b.transactions_per_second,
                b.latency_p50_ms,
                b.latency_p99_ms,
                b.longest_pause_ms
            )
        };
        let mut text = format!(
            "{} validator(s), {} ms blocks, on {}\n{}\n{} (offered {:.0} tx/s, {} refused)",
            report.validators,
            report.block_time_ms,
            report.machine,
            line("empty blocks", &report.empty_blocks),
            line("transfers", &report.transfers.finalized),
            report.transfers.offered_per_second,
            report.transfers.rejected
        );
        if let Some(down) = &report.one_validator_down {
            text.push('\n');
            text.push_str(&line("one validator killed", down));
        }
        text
    });
    Ok(())
}

async fn run(args: &ChainBenchArgs, children: &mut [Child]) -> Result<Report> {
    let url = format!("ws://127.0.0.1:{}", args.rpc_port);
    let client = Arc::new(connect(&url).await?);
    // Let every validator connect and the first blocks pass.
    let mut heads = client.finalized_heads().await?;
    for _ in 0..4 {
        heads.next().await.context("no blocks")??;
    }
    drop(heads);
    let phase = Duration::from_secs(args.seconds);

    eprintln!("empty blocks for {} s", args.seconds);
    let empty_blocks = observe(&client, phase).await?;

    eprintln!("funding {} senders", args.senders);
    let senders = fund(&client, args.senders).await?;
    let head = client.header(None).await?.header.height;
    let total = args.rate.saturating_mul(args.seconds + 2);
    let per_sender = total.div_ceil(senders.len() as u64).max(1);
    // Every transfer has the same size and weight, so one fee fits all.
    // Within the pool's expiry horizon (an hour of blocks), far past the run.
    let sample = presign(&client, &senders[..1], 1, Balance::ZERO, head + 10_000);
    let fee = client.fee_quote(&sample[0]).await?.minimum_fee;
    eprintln!("signing {} transfers", per_sender * senders.len() as u64);
    let txs = presign(&client, &senders, per_sender, fee, head + 10_000);
    eprintln!(
        "submitting {} transfers/s for {} s",
        args.rate, args.seconds
    );
    let submitted = txs.len() as f64;
    let started = Instant::now();
    let submitter = tokio::spawn(submit_at_rate(Arc::clone(&client), txs, args.rate));
    // Measure once the pool has filled for a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let finalized = observe(&client, phase).await?;
    let rejected = submitter.await.context("the submitter stopped")?;
    let offered = submitted / started.elapsed().as_secs_f64();

    let one_validator_down = if children.len() >= 4 {
        let victim = children.last_mut().context("a validator")?;
        victim.kill().context("killing a validator")?;
        let _ = victim.wait();
        eprintln!("one validator killed: empty blocks for {} s", args.seconds);
        Some(observe(&client, phase).await?)
    } else {
        None
    };
    Ok(Report {
        validators: args.validators,
        block_time_ms: args.block_time_ms,
        machine: machine(),
        empty_blocks,
        transfers: Transfers {
            offered_per_second: offered,
            rejected,
            finalized,
        },
        one_validator_down,
    })
}

/// What `wetee bench deploy` needs.
#[derive(Debug, Args)]
pub struct DeployBenchArgs {
    /// Deployments timed, one after the other.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Small apps placed for the idle measurement (0 skips it).
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Seconds the idle worker is watched.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// The chain's RPC port.
    #[arg(long, default_value_t = 19_990)]
    rpc_port: u16,
    /// The worker's ingress port.
    #[arg(long, default_value_t = 18_990)]
    ingress_port: u16,
}

#[derive(Debug, Serialize)]
struct DeployReport {
    machine: String,
    engine: String,
    runs: usize,
    /// Submitting `app create` to its finality, p50 / p90.
    finalized_p50_ms: u64,
    finalized_p90_ms: u64,
    /// Finality to the container running (the worker's reconcile and the engine's start).
    running_p50_ms: u64,
    running_p90_ms: u64,
    /// Submitting to the first HTTP 200 through the worker's ingress.
    first_200_p50_ms: u64,
    first_200_p90_ms: u64,
    idle_apps: usize,
    /// The worker process's CPU use while idle with `idle_apps` apps, in % of one core.
    idle_worker_cpu_percent: Option<f64>,
}

/// Builds the benchmark's image (a static busybox serving a page) and returns its reference.
fn bench_image() -> Result<String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("no static busybox (apt-get install busybox-static)")?;
    let context = tempfile::tempdir()?;
    std::fs::copy(busybox, context.path().join("busybox"))?;
    std::fs::write(
        context.path().join("Containerfile"),
        // Containers keep no capability: the page's directory must be theirs.
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"mkdir\", \"/www\"]\n",
    )?;
    build_image(context.path(), "localhost/wetee-bench")
}

/// Builds the image whose context (a `Containerfile` and what it copies) is `context` with the
/// local Podman or Docker, tags it `repository:latest`, and returns its reference by digest.
pub(crate) fn build_image(context: &std::path::Path, repository: &str) -> Result<String> {
    let engine = ["podman", "docker"]
        .into_iter()
        .find(|cli| {
            Command::new(cli)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("no podman or docker to build the benchmark's image")?;
    let output = Command::new(engine)
        .args(["build", "-q", "-t", &format!("{repository}:latest")])
        .arg(context)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "building the image: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(format!(
        "{repository}@sha256:{}",
        id.trim_start_matches("sha256:")
    ))
}

fn bench_manifest(
    image: &str,
    name: &str,
    cpu: u64,
    memory: u64,
) -> Result<wetee_types::manifest::AppSpec> {
    let text = format!(
        r#"kind = "app"
name = "{name}"
image = "{image}"
command = ["/bin/busybox"]
args = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
ports = [{{ container = 8080 }}]
resources = {{ cpu_millicores = {cpu}, memory_mib = {memory} }}
placement = {{ tee = "simulated", max_price_per_epoch = "1" }}
"#
    );
    match wetee_types::manifest::Manifest::from_toml(&text)? {
        wetee_types::manifest::Manifest::App(spec) => Ok(spec),
        wetee_types::manifest::Manifest::Task(_) => bail!("not an app"),
    }
}

pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// `wetee bench deploy`: a dev chain and a worker process on Podman or Docker; times
/// deployments from submission to the first HTTP 200, then watches the idle worker.
pub fn deploy(args: DeployBenchArgs, format: Format) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("wetee-bench-").tempdir()?;
    let socket = wetee_worker::backend::docker::local_engine_socket();
    let mut children: Vec<Child> = Vec::new();
    // Stopped last, once the benchmark's containers are removed through it.
    let mut service: Option<Child> = None;
    let socket = match socket {
        Some(socket) => socket,
        None => {
            let socket = dir.path().join("podman.sock");
            service = Some(
                Command::new("podman")
                    .args(["system", "service", "--time=0"])
                    .arg(format!("unix://{}", socket.display()))
                    .spawn()
                    .context("no Docker or Podman socket, and podman cannot start one")?,
            );
            let start = Instant::now();
            while !socket.exists() && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            socket
        }
    };
    let image = bench_image()?;
    let exe = std::env::current_exe()?;
    let rpc = format!("ws://127.0.0.1:{}", args.rpc_port);
    children.push(
        Command::new(&exe)
            .args(["dev", "--no-worker", "--data-dir"])
            .arg(dir.path().join("chain"))
            .args(["--rpc-port", &args.rpc_port.to_string(), "--p2p-port"])
            .arg((args.rpc_port - 1).to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("chain.log"))?)
            .spawn()?,
    );
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "stake = \"200\"\ndata_dir = \"{}\"\n[chain]\nspec = \"{}\"\n[profile]\nendpoint = \"http://127.0.0.1:{port}\"\n\
             region = \"local\"\nlevel = 1\ntee_kinds = [\"simulated\"]\n\
             capacity = {{ cpu_millicores = 64000, memory_mib = 65536, disk_gib = 1000, gpus = 0 }}\n\
             prices = {{ cpu_millicore = \"1\", memory_mib = \"1\", disk_gib = \"1\", gpu = \"0\" }}\n\
             [backend]\nkind = \"docker\"\nsocket = \"{}\"\n[ingress]\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("worker").display(),
            dir.path().join("chain").join("chain.json").display(),
            socket.display(),
            port = args.ingress_port
        ),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let client = connect(&rpc).await?;
        let worker = Command::new(&exe)
            .args([
                "worker", "run", "--chain", &rpc, "--key", "//Alice", "--config",
            ])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("worker.log"))?)
            .spawn()?;
        let worker_pid = worker.id();
        children.push(worker);
        // The worker is ready once it is registered and started on chain.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let workers = client.workers().await?;
            if workers
                .iter()
                .any(|w| w.status == wetee_types::records::WorkerStatus::Started)
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the worker did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let engine = wetee_worker::backend::docker::DockerBackend::connect(
            Some(&socket.display().to_string()),
            "bench",
        )
        .await?
        .describe()
        .await?;
        let owner = wetee_client::keys::dev_keypair("Bob");
        let (mut finalized, mut running, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs {
            let spec = bench_manifest(&image, &format!("bench-{run}"), 100, 32)?;
            let submitted = Instant::now();
            let tx = client
                .sign(
                    &owner,
                    Call::Apps(wetee_types::transaction::AppsCall::Create {
                        spec,
                        deposit: Balance(10 * wetee_types::balance::UNIT),
                    }),
                )
                .await?;
            let done = client.submit_and_wait(&tx, |_| {}).await?;
            let final_at = submitted.elapsed();
            let app = done
                .receipt
                .events
                .iter()
                .find_map(|e| match e {
                    wetee_types::Event::AppCreated { app, .. } => Some(*app),
                    _ => None,
                })
                .context("no app created")?;
            let url = format!("127.0.0.1:{}", args.ingress_port);
            let mut running_at = None;
            loop {
                anyhow::ensure!(
                    submitted.elapsed() < Duration::from_secs(120),
                    "app {app} never answered"
                );
                let answer = crate::calls::http_status(&format!("http://{url}/{app}/")).await;
                match answer {
                    Some(200) => break,
                    // 502: routed but not answering yet; 503: no route yet.
                    Some(502) if running_at.is_none() => running_at = Some(submitted.elapsed()),
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let first_at = submitted.elapsed();
            finalized.push(final_at.as_millis() as u64);
            running.push(
                running_at
                    .unwrap_or(first_at)
                    .saturating_sub(final_at)
                    .as_millis() as u64,
            );
            first.push(first_at.as_millis() as u64);
            client
                .send(
                    &owner,
                    Call::Apps(wetee_types::transaction::AppsCall::Stop { app }),
                    |_| {},
                )
                .await?;
            eprintln!(
                "run {run}: finalized {} ms, first 200 after {} ms",
                final_at.as_millis(),
                first_at.as_millis()
            );
        }
        let mut idle = None;
        if args.apps > 0 {
            eprintln!("placing {} apps", args.apps);
            let mut pending = Vec::new();
            for index in 0..args.apps {
                let spec = bench_manifest(&image, &format!("idle-{index}"), 50, 16)?;
                let tx = client
                    .sign(
                        &owner,
                        Call::Apps(wetee_types::transaction::AppsCall::Create {
                            spec,
                            deposit: Balance(10 * wetee_types::balance::UNIT),
                        }),
                    )
                    .await?;
                pending.push(client.submit_and_watch(&tx).await?);
            }
            for mut statuses in pending {
                while let Some(status) = statuses.next().await {
                    if status?.is_final() {
                        break;
                    }
                }
            }
            // Wait until the worker runs them all.
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let listed = Command::new("podman")
                    .args(["ps", "-q", "--filter", "label=wetee.app"])
                    .output()?;
                let count = String::from_utf8_lossy(&listed.stdout).lines().count();
                if count >= args.apps {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "only {count} apps running");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("watching the idle worker for {} s", args.idle_seconds);
            let ticks_per_second = 100.0; // Linux USER_HZ
            let before = cpu_ticks(worker_pid);
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
            let after = cpu_ticks(worker_pid);
            if let (Some(before), Some(after)) = (before, after) {
                let seconds = started.elapsed().as_secs_f64();
                idle = Some((after - before) as f64 / ticks_per_second / seconds * 100.0);
            }
        }
        let p = |values: &mut Vec<u64>, q: f64| {
            values.sort_unstable();
            percentile(values, q)
        };
        Ok::<_, anyhow::Error>(DeployReport {
            machine: machine(),
            engine,
            runs: args.runs,
            finalized_p50_ms: p(&mut finalized, 0.5),
            finalized_p90_ms: p(&mut finalized, 0.9),
            running_p50_ms: p(&mut running, 0.5),
            running_p90_ms: p(&mut running, 0.9),
            first_200_p50_ms: p(&mut first, 0.5),
            first_200_p90_ms: p(&mut first, 0.9),
            idle_apps: args.apps,
            idle_worker_cpu_percent: idle,
        })
    });
    for child in children.iter_mut().rev() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The benchmark's containers go with it, through the engine's API as `wetee dev` removes
    // its own: `podman rm -f` racing a stop the worker left in flight can leave the container
    // running, unknown to Podman.
    if let Ok(identity) =
        wetee_worker::identity::WorkerIdentity::open_unprotected(&dir.path().join("worker"))
    {
        let scope = hex::encode(identity.keys().identity);
        let socket = socket.display().to_string();
        if let Err(e) = runtime.block_on(crate::dev::remove_containers(&socket, &scope)) {
            eprintln!("removing the benchmark's containers: {e:#}");
        }
    }
    if let Some(mut service) = service {
        let _ = Command::new("kill").arg(service.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(service.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = service.kill();
        let _ = service.wait();
    }
    let report = result?;
    print(format, &report, || {
        format!(
            "{} deployments on {} ({})\n  finalized        p50 {:>5} ms  p90 {:>5} ms\n  running after    p50 {:>5} ms  p90 {:>5} ms\n  first HTTP 200   p50 {:>5} ms  p90 {:>5} ms\n  idle worker CPU with {} apps: {}",
            report.runs,
            report.engine,
            report.machine,
            report.finalized_p50_ms,
            report.finalized_p90_ms,
            report.running_p50_ms,
            report.running_p90_ms,
            report.first_200_p50_ms,
            report.first_200_p90_ms,
            report.idle_apps,
            report
                .idle_worker_cpu_percent
                .map_or("not measured".into(), |c| format!("{c:.1}% of one core"))
        )
    });
    Ok(())
}
