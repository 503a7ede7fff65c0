//! The web console's server. It serves the single-page app built from `web/` (the files in
//! `web/dist`, embedded in the binary, so that building and testing the Rust code never needs
//! Node) and `/config.json`, which tells the page where the node's JSON-RPC is and whether the
//! chain is a development one.
//!
//! The page talks to the node directly over WebSocket. What the CLI and the SDK already know
//! how to do, or a browser cannot verify by itself, this server does for it under `/api`,
//! through the SDK: reading a `wetee.toml` (`POST /api/manifest`), apps as `wetee app status`
//! sees them (`GET /api/apps`); and what must be proven, through the light client against the
//! chain it was told to trust: a worker's attestation judged as the chain judges it (`GET
//! /api/workers/{id}/trust`), where an app's secrets are sealed (`GET
//! /api/apps/{id}/seal-target`), what an update must have the owner sign for the app's secrets
//! to follow its new image (`GET /api/apps/{id}/secrets-grant`), the sealing key an account
//! published (`GET /api/accounts/{account}/sealing-key`), and the page's signed
//! requests to a worker's owner API, sent to the endpoint and TLS identity the chain attested (`GET /api/owner/{worker}/…`).
//!
//! This crate must never hold or see an account's private key: the browser keeps its keys and
//! signs; the server only relays and verifies.

#![forbid(unsafe_code)]

mod assets;
mod chain;
mod manifest;
mod relay;
mod verified;

pub use manifest::MAX_MANIFEST_BYTES;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use wetee_client::light::Trust;

/// What the page is told at `/config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleConfig {
    /// The node's JSON-RPC over WebSocket (`ws://…`), as the browser reaches it.
    pub rpc: String,
    /// Whether the chain is a development chain: dev keys (`//Alice`…) are offered only then.
    pub dev: bool,
    /// The genesis hash of the chain this console trusts, hex: the page refuses a node that
    /// serves another (`None`: the console was told of none; the page warns that nothing it
    /// shows is proven, and the proving routes refuse with how to name one).
    pub genesis: Option<String>,
}

/// The header every `/api` request carries. A page of another site cannot send it without
/// the browser first asking this server's permission (a CORS preflight), which it never gives:
/// only the console's own page reaches `/api`.
pub const API_HEADER: &str = "x-wetee-console";

async fn only_the_consoles_page(request: Request, next: Next) -> Response {
    if !request.headers().contains_key(API_HEADER) {
        return (
            StatusCode::FORBIDDEN,
            format!("/api answers only the console's own page (it sends `{API_HEADER}`)"),
        )
            .into_response();
    }
    // A site whose name was rebound to 127.0.0.1 would be the page's own origin: only the
    // loopback names this server listens under are its page.
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_host(host) {
        return (
            StatusCode::FORBIDDEN,
            format!("/api answers only at 127.0.0.1, localhost or [::1], not `{host}`"),
        )
            .into_response();
    }
    next.run(request).await
}

/// Whether `host` (a `Host` header) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// The console's routes: `/config.json`, `/api` (what the page asks this server to do), the
/// app's files, and the app's page for any other path (the app routes in the browser).
pub fn router(config: ConsoleConfig, trust: Option<Trust>) -> Router {
    let api = Router::new()
        .route("/manifest", post(manifest::parse))
        .route("/apps", get(chain::apps))
        .route("/apps/{id}", get(chain::app))
        .route("/apps/{id}/seal-target", get(verified::seal_target))
        .route("/apps/{id}/secrets-grant", get(verified::secrets_grant))
        .route("/workers/{id}/trust", get(verified::worker_trust))
        .route(
            "/accounts/{account}/sealing-key",
            get(verified::sealing_key),
        )
        .route("/owner/{worker}/{*path}", get(relay::relay))
        .with_state(chain::Chain::new(config.rpc.clone(), trust, config.dev))
        .layer(DefaultBodyLimit::max(manifest::MAX_MANIFEST_BYTES))
        .layer(axum::middleware::from_fn(only_the_consoles_page));
    Router::new()
        .nest("/api", api)
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
    trust: Option<Trust>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config, trust))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address the console listens on by default: `wetee dev` prints it.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9955);

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_are_the_consoles() {
        for host in [
            "127.0.0.1:9955",
            "localhost:9955",
            "[::1]:9955",
            "localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:9955",
            "127.0.0.1.evil.example",
            "",
            "localhost.evil:1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
