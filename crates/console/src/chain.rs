//! `GET /api/apps?owner=…` and `GET /api/apps/{id}`: apps as the SDK's `AppOverview` reads
//! them (where each runs, why it waits or failed, its URL and runway), the same words
//! `wetee app status` prints.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::Mutex;
use wetee_client::app_overview::AppOverview;
use wetee_client::light::{LightClient, LightError, Trust};
use wetee_client::rpc::{Client, ClientError};
use wetee_types::{AccountId, AppId};

/// How long connecting to the node may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The node this server reads for the page, connected on first use and again after a loss;
/// and the chain it trusts, for what it proves through the light client.
pub struct Chain {
    url: String,
    trust: Option<Trust>,
    /// Whether the chain is a development one: only then may a worker's owner API be plain
    /// HTTP on this machine (a worker of a real chain registering `http://127.0.0.1:…` would
    /// have the relay reach the user's own services).
    pub development: bool,
    client: Mutex<Option<Arc<Client>>>,
    light: Mutex<Option<Arc<LightClient>>>,
}

impl Chain {
    pub fn new(url: String, trust: Option<Trust>, development: bool) -> Arc<Chain> {
        Arc::new(Chain {
            url,
            trust,
            development,
            client: Mutex::new(None),
            light: Mutex::new(None),
        })
    }

    /// A light client of the node, following the trusted chain.
    pub async fn light(&self) -> Result<Arc<LightClient>, Response> {
        let Some(trust) = &self.trust else {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "this console was started without a chain to trust, so it cannot prove what \
                 the node says: start it with `wetee console --genesis-hash HASH` (or \
                 `--chain-spec FILE`)",
            )
                .into_response());
        };
        let mut light = self.light.lock().await;
        if let Some(connected) = light.as_ref()
            && connected.rpc().is_connected()
        {
            return Ok(Arc::clone(connected));
        }
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, LightClient::connect(&self.url, trust))
                .await
                .map_err(|_| {
                    (
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "reading the chain: the node at {} gave no answer within {} s",
                            self.url,
                            CONNECT_TIMEOUT.as_secs()
                        ),
                    )
                        .into_response()
                })?
                .map_err(|e| light_failure(&e))?;
        let connected = Arc::new(connected);
        *light = Some(Arc::clone(&connected));
        Ok(connected)
    }

    async fn client(&self) -> Result<Arc<Client>, ClientError> {
        let mut client = self.client.lock().await;
        if let Some(connected) = client.as_ref()
            && connected.is_connected()
        {
            return Ok(Arc::clone(connected));
        }
        // A node that accepts the connection and never answers must not hold every request.
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(&self.url))
            .await
            .map_err(|_| ClientError::Connection {
                url: self.url.clone(),
                reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })??;
        let connected = Arc::new(connected);
        *client = Some(Arc::clone(&connected));
        Ok(connected)
    }
}

/// A failure to read or prove the chain, as the page shows it.
pub fn light_failure(error: &LightError) -> Response {
    match error {
        LightError::Node(e) => unavailable(e),
        other => (
            StatusCode::BAD_GATEWAY,
            format!("proving the chain: {other}"),
        )
            .into_response(),
    }
}

/// A failure to read the chain, as the page shows it.
pub fn unavailable(error: &ClientError) -> Response {
    let status = match error {
        ClientError::Connection { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("reading the chain: {error}")).into_response()
}

/// An owner named in a query (SS58 or 0x hex), or the page's error.
pub fn parse_owner(text: &str) -> Result<AccountId, (StatusCode, String)> {
    text.parse()
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("owner `{text}`: {e}")))
}

#[derive(Debug, Deserialize)]
pub struct Owner {
    owner: String,
}

/// Every app of `owner`, newest first.
pub async fn apps(State(chain): State<Arc<Chain>>, Query(query): Query<Owner>) -> Response {
    let owner = match parse_owner(&query.owner) {
        Ok(owner) => owner,
        Err(refusal) => return refusal.into_response(),
    };
    let read = async { AppOverview::of_owner(&*chain.client().await?, &owner).await };
    match read.await {
        Ok(apps) => Json(apps).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// One app.
pub async fn app(State(chain): State<Arc<Chain>>, Path(id): Path<u64>) -> Response {
    let read = async { AppOverview::read(&*chain.client().await?, AppId(id)).await };
    match read.await {
        Ok(Some(app)) => Json(app).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("there is no app {id}")).into_response(),
        Err(e) => unavailable(&e),
    }
}
