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
    /// The operator's key, which registers the worker and receives its earnings: a keystore
    /// name or a key file (a mnemonic typed here is refused unless the chain is a development
    /// chain).
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
    let development = config
        .chain
        .trust()
        .is_ok_and(|trust| crate::calls::trusts_development_chain(&trust));
    let source = KeySource::parse_for_chain(&args.key, development)?;
    let operator = source
        .keypair(scheme, keystore)
        .with_context(|| format!("reading the operator key, {source}"))?;
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

/// What `wetee worker measurements` needs.
#[derive(Debug, Args)]
pub struct MeasurementsArgs {
    /// The worker's configuration: its TEE kinds decide where evidence comes from (default:
    /// the TEE this machine has).
    #[arg(long, conflicts_with = "simulated")]
    config: Option<PathBuf>,
    /// The simulated TEE of development chains.
    #[arg(long)]
    simulated: bool,
}

/// Prints what this machine's TEE attests for the running build, and the measurement rule
/// that admits exactly it: what an operator proposes for a chain's policy and an owner pins
/// with `--expect-measurement`.
pub fn measurements(args: MeasurementsArgs, format: Format) -> Result<()> {
    let mut config_digest = None;
    let provider: Box<dyn wetee_attest::provider::Provider> = if args.simulated {
        Box::new(wetee_attest::provider::Simulated)
    } else if let Some(path) = &args.config {
        let config = WorkerConfig::load(path)?;
        config_digest = config.text_digest;
        wetee_worker::chain::evidence_provider(&config).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        wetee_attest::provider::detect().ok_or_else(|| {
            anyhow::anyhow!(
                "no TEE found (neither Gramine's /dev/attestation nor configfs-tsm): run this \
                 inside the TEE the worker runs in, or pass --simulated"
            )
        })?
    };
    let produced = provider
        .produce(&[0u8; 64])
        .map_err(|e| anyhow::anyhow!("the TEE produced no evidence: {e}"))?;
    let measurements = wetee_attest::claimed_measurements(&produced.evidence, produced.kind)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rule = wetee_types::attestation::MeasurementRule::exactly(&measurements);
    // A TDX worker measures its configuration into RTMR3 at start: the rule admits the value
    // this configuration gives, whatever the register holds now.
    let config_rtmr3 = match (&mut rule, config_digest) {
        (wetee_types::attestation::MeasurementRule::Tdx { rtmr3, .. }, Some(digest)) => {
            let expected = wetee_worker::rtmr::expected(&digest);
            *rtmr3 = Some(expected);
            Some(hex::encode(expected))
        }
        _ => None,
    };
    let json = serde_json::json!({
        "kind": produced.kind,
        "measurements": measurements,
        "rule": rule,
        "config_rtmr3": config_rtmr3,
    });
    print(format, &json, || {
        format!(
            "this build attests, on {}:\n  {}\nthe rule admitting exactly it (for a chain's \
             allowed_worker_measurements, or `app secrets set --expect-measurement`):\n  {}",
            produced.kind,
            serde_json::to_string(&measurements).unwrap_or_default(),
            serde_json::to_string(&rule).unwrap_or_default()
        )
    });
    Ok(())
}
