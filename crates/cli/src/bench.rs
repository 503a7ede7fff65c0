//! `wetee bench chain`: starts a fresh local network of real validator processes and measures
//! finality latency with empty blocks, sustained signed transfers per second, and the longest
//! pause in finality after one validator is killed.
//!
//! Latency is from a block's proposal (its header timestamp, set by the proposer) to the
//! moment the finalized head reaches a client of the first validator; every process runs on
//! this machine, so they share one clock.

use std::process::Child;
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

fn machine() -> String {
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
    let spec = spec::local_testnet_spec(
        args.validators,
        args.p2p_port,
        &base.join("keys"),
        spec::now_ms(),
    )?;
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
            "{} validator(s) on {}\n{}\n{} (offered {:.0} tx/s, {} refused)",
            report.validators,
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
    let params = client.params().await?;
    let head = client.header(None).await?.header.height;
    let total = args.rate.saturating_mul(args.seconds + 2);
    let per_sender = total.div_ceil(senders.len() as u64).max(1);
    // Every transfer has the same size, so one fee fits all.
    let sample = presign(&client, &senders[..1], 1, Balance::ZERO, head + 100_000);
    let size = wetee_types::codec::encode(&sample[0]).len();
    let fee = params
        .params
        .minimum_fee(size)
        .context("fee parameters overflow")?;
    eprintln!("signing {} transfers", per_sender * senders.len() as u64);
    let txs = presign(&client, &senders, per_sender, fee, head + 100_000);
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
