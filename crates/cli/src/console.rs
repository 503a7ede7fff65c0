//! `wetee console`, and the console `wetee dev` serves: the web console (`wetee-console`) on a
//! local port, pointed at a node's JSON-RPC.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};
use clap::Args;

use wetee_client::light::Trust;

use crate::output::{Format, print};

/// What `wetee console` needs.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The node's JSON-RPC over WebSocket, as the browser reaches it.
    #[arg(long, default_value = "ws://127.0.0.1:9944")]
    chain: String,
    /// The port to serve the console on, on 127.0.0.1. The chain it proves against is named by
    /// `--genesis-hash` or `--chain-spec`.
    #[arg(long, default_value_t = wetee_console::DEFAULT_ADDRESS.port())]
    port: u16,
}

/// Serves the console at `address` for the node at `rpc` (whose chain is a development one if
/// `development`) until the runtime stops; its URL.
/// What it proves is proven against `trust`.
pub async fn start(
    address: SocketAddr,
    rpc: &str,
    development: bool,
    trust: Option<Trust>,
) -> Result<String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (--console-port chooses another)"))?;
    let genesis = trust.as_ref().map(|trust| {
        let hash = match trust {
            Trust::Spec(spec) => spec.genesis_hash(),
            Trust::GenesisHash(hash) => *hash,
        };
        hex::encode(hash.0)
    });
    let config = wetee_console::ConsoleConfig {
        rpc: rpc.to_string(),
        dev: development,
        genesis,
    };
    tokio::spawn(async move {
        if let Err(e) = wetee_console::serve(listener, config, trust, std::future::pending()).await
        {
            tracing::warn!(error = %e, "the web console stopped");
        }
    });
    Ok(format!("http://{address}"))
}

/// `wetee console`: serves the console for any chain until Ctrl-C. What it proves (a worker's
/// attestation, where secrets are sealed, where owner-API requests go), it proves against the
/// chain `trust_args` name (`--genesis-hash` or `--chain-spec`, never the dev chain by default:
/// `--chain` may be any node); without one, the page says that nothing is proven.
pub fn run(args: ConsoleArgs, trust_args: &crate::calls::TrustArgs, format: Format) -> Result<()> {
    let trust = match (&trust_args.genesis_hash, &trust_args.chain_spec) {
        (None, None) => None,
        _ => Some(trust_args.trust()?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        anyhow::ensure!(
            args.chain.starts_with("ws://") || args.chain.starts_with("wss://"),
            "--chain must be the node's WebSocket URL (ws://… or wss://…), not {}",
            args.chain
        );
        // Whether dev keys may be offered is the chain's to say, not the user's.
        let client = wetee_client::rpc::Client::connect(&args.chain)
            .await
            .with_context(|| format!("cannot reach the node at {}", args.chain))?;
        let spec = client
            .chain_spec()
            .await
            .with_context(|| format!("{} does not answer as a WeTEE node", args.chain))?;
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let url = start(address, &args.chain, spec.is_development(), trust).await?;
        let document = serde_json::json!({ "console": url, "chain": spec.name, "rpc": args.chain });
        print(format, &document, || {
            format!(
                "the web console for {} is at {url} (Ctrl-C stops it)",
                spec.name
            )
        });
        crate::signals::shutdown().await;
        Ok(())
    })
}
