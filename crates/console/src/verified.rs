//! What the page shows or acts on that a node could lie about, proven through the light client
//! here: `GET /api/workers/{id}/trust` (the worker's evidence judged as the chain judges it,
//! for the Trust tab) and `GET /api/apps/{id}/seal-target?owner=…` (where the app's secrets
//! are to be sealed, after that judgement: the browser seals there, with keys it alone holds),
//! and `GET /api/apps/{id}/secrets-grant?image=…` (the record an update's owner signs so that
//! the new image receives the app's secrets).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wetee_client::secrets::{SealOptions, SecretsError};
use wetee_client::worker_trust::{FactsError, WorkerTrust};
use wetee_types::{AppId, WorkerId};

use crate::chain::{Chain, light_failure};

/// A worker's trust, proven at the latest verified height.
pub async fn worker_trust(State(chain): State<Arc<Chain>>, Path(id): Path<u64>) -> Response {
    let light = match chain.light().await {
        Ok(light) => light,
        Err(response) => return response,
    };
    match WorkerTrust::read(&light, WorkerId(id)).await {
        Ok(Some(trust)) => Json(trust).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("there is no worker {id}")).into_response(),
        Err(FactsError::Light(e)) => light_failure(&e),
        Err(FactsError::Missing(why)) => (StatusCode::CONFLICT, why).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct SealQuery {
    owner: String,
    /// Seal even to the simulated TEE: development chains only, and only when the page's user
    /// says so.
    #[serde(default)]
    allow_simulated: bool,
}

/// Where `owner`'s app `id` seals its secrets, judged as `wetee app secrets set` judges it.
pub async fn seal_target(
    State(chain): State<Arc<Chain>>,
    Path(id): Path<u64>,
    Query(query): Query<SealQuery>,
) -> Response {
    let owner = match crate::chain::parse_owner(&query.owner) {
        Ok(owner) => owner,
        Err(refusal) => return refusal.into_response(),
    };
    let light = match chain.light().await {
        Ok(light) => light,
        Err(response) => return response,
    };
    let options = SealOptions {
        allow_simulated: query.allow_simulated,
        ..SealOptions::default()
    };
    match wetee_client::secrets::prepare(&light, &owner, AppId(id), &options).await {
        Ok((target, _)) => Json(target).into_response(),
        Err(SecretsError::Light(e)) => light_failure(&e),
        Err(SecretsError::Client(e)) => crate::chain::unavailable(&e),
        // The chain's facts refuse it: the words say what to do.
        Err(other) => (StatusCode::CONFLICT, other.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct GrantQuery {
    /// The new image's digest, hex.
    image: String,
}

/// The secrets record the owner signs so that an update of app `id` to `image` may receive
/// its secrets, read through the light client (the page builds what it signs from it, and checks
/// that it allows `image` alone), or `null` when no consent is needed.
pub async fn secrets_grant(
    State(chain): State<Arc<Chain>>,
    Path(id): Path<u64>,
    Query(query): Query<GrantQuery>,
) -> Response {
    let image: [u8; 32] = match hex::decode(query.image.trim_start_matches("0x"))
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
    {
        Some(image) => image,
        None => {
            return (StatusCode::BAD_REQUEST, "image: 32 bytes of hex").into_response();
        }
    };
    let light = match chain.light().await {
        Ok(light) => light,
        Err(response) => return response,
    };
    match wetee_client::secrets::grant_record(&light, AppId(id), &image).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => Json(serde_json::Value::Null).into_response(),
        Err(SecretsError::Light(e)) => light_failure(&e),
        Err(SecretsError::Client(e)) => crate::chain::unavailable(&e),
        Err(other) => (StatusCode::CONFLICT, other.to_string()).into_response(),
    }
}

/// The sealing key `account` has published, proven: the page publishes the owner's key before
/// a deployment unless this is it (a node could otherwise have it replaced). `null`: none.
pub async fn sealing_key(State(chain): State<Arc<Chain>>, Path(account): Path<String>) -> Response {
    let account = match crate::chain::parse_owner(&account) {
        Ok(account) => account,
        Err(refusal) => return refusal.into_response(),
    };
    let light = match chain.light().await {
        Ok(light) => light,
        Err(response) => return response,
    };
    match light.snapshot().sealing_key(&account).await {
        Ok(key) => Json(key.map(hex::encode)).into_response(),
        Err(e) => light_failure(&e),
    }
}
