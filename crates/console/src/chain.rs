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
use wetee_client::rpc::{Client, ClientError};
use wetee_types::{AccountId, AppId};

/// How long connecting to the node may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The node this server reads for the page, connected on first use and again after a loss.
pub struct Chain {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl Chain {
    pub fn new(url: String) -> Arc<Chain> {
        Arc::new(Chain {
            url,
            client: Mutex::new(None),
        })
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

/// A failure to read the chain, as the page shows it.
fn unavailable(error: &ClientError) -> Response {
    let status = match error {
        ClientError::Connection { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("reading the chain: {error}")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Owner {
    owner: String,
}

/// Every app of `owner`, newest first.
pub async fn apps(State(chain): State<Arc<Chain>>, Query(query): Query<Owner>) -> Response {
    let owner: AccountId = match query.owner.parse() {
        Ok(owner) => owner,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("owner `{}`: {e}", query.owner),
            )
                .into_response();
        }
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
