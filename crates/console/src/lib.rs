//! The web console's server. It serves the single-page app built from `web/` (the files in
//! `web/dist`, embedded in the binary, so that building and testing the Rust code never needs
//! Node) and `/config.json`, which tells the page where the node's JSON-RPC is and whether the
//! chain is a development one.
//!
//! The page talks to the node directly over WebSocket. What a browser cannot verify by itself
//! (a worker's RA-TLS certificate, proofs of chain state) is for this server to do on its
//! behalf, through the SDK.
//!
//! This crate must never hold or see an account's private key: the browser keeps its keys and
//! signs; the server only relays and verifies.

#![forbid(unsafe_code)]

mod assets;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use serde::Serialize;

/// What the page is told at `/config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleConfig {
    /// The node's JSON-RPC over WebSocket (`ws://…`), as the browser reaches it.
    pub rpc: String,
    /// Whether the chain is a development chain: dev keys (`//Alice`…) are offered only then.
    pub dev: bool,
}

/// The console's routes: `/config.json`, the app's files, and the app's page for any other
/// path (the app routes in the browser).
pub fn router(config: ConsoleConfig) -> Router {
    Router::new()
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move { axum::Json(config) }
            }),
        )
        .fallback(assets::serve)
}

/// Serves the console on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ConsoleConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address the console listens on by default: `wetee dev` prints it.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9955);
