//! `wetee worker run`: the worker agent.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use wetee_client::keys::{KeySource, Keystore};
use wetee_types::KeyScheme;
use wetee_worker::config::{BackendKind, WorkerConfig};

use crate::output::{Format, print};

/// What `wetee worker run` needs.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node to follow.
    #[arg(long, default_value = "ws://127.0.0.1:9944")]
    chain: String,
    /// The operator's key, which registers the worker and receives its earnings.
    #[arg(long)]
    key: String,
    /// Where workloads run (overrides the config's `backend.kind`).
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// The worker's configuration (`worker.toml`).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    Docker,
}

/// Runs the worker until Ctrl-C or SIGTERM (its containers keep running: a restarted worker
/// takes them over).
pub fn run(args: RunArgs, scheme: KeyScheme, keystore: &Keystore, format: Format) -> Result<()> {
    crate::logs::init(crate::logs::OPERATOR, std::io::stderr);
    let mut config = WorkerConfig::load(&args.config)?;
    if let Some(BackendArg::Docker) = args.backend {
        config.backend.kind = BackendKind::Docker;
    }
    let operator = KeySource::parse(&args.key)?
        .keypair(scheme, keystore)
        .with_context(|| format!("reading the operator key {}", args.key))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let chain = args.chain.clone();
    runtime.block_on(async move {
        let stop = async {
            let signal = crate::signals::shutdown().await;
            tracing::info!(signal, "stopping");
        };
        wetee_worker::agent::run(config, &chain, operator, stop, |running| {
            let json = serde_json::json!({
                "worker": running.worker,
                "identity": running.identity,
                "engine": running.engine,
                "ingress": format!("http://{}", running.ingress),
                "chain": chain,
            });
            print(format, &json, || {
                format!(
                    "worker {} running on {} (identity {}), following {}\n  ingress http://{}/<app-id>/",
                    running.worker, running.engine, running.identity, chain, running.ingress
                )
            });
        })
        .await
    })?;
    Ok(())
}
