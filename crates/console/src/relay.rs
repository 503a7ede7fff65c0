//! `GET /api/owner/{worker}/{path}`: the page's requests to a worker's owner API (logs,
//! status), passed on as the browser signed them. The worker's record is read through the
//! light client, so the request goes only to the endpoint the chain registered, over TLS bound
//! to the identity key the chain attested (`wetee_client::owner_api`). This server adds no
//! authority of its own: the browser signs each request (with a session key its account
//! delegated), and what the worker answers, logs sealed to the owner, opens only in the
//! browser.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use wetee_client::owner_api::{OwnerApiClient, OwnerApiError};
use wetee_types::WorkerId;

use crate::chain::{Chain, light_failure};

/// The owner-API paths the page may reach: an app's logs and status, a task run's logs.
fn allowed(path: &str) -> bool {
    let number = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["apps", app, "logs" | "status"] => number(app),
        ["tasks", task, "runs", run, "logs"] => number(task) && number(run),
        _ => false,
    }
}

/// Passes the page's signed request on to worker `worker`, and its answer back as it arrives.
pub async fn relay(
    State(chain): State<Arc<Chain>>,
    Path((worker, path)): Path<(u64, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !allowed(&path) {
        return (
            StatusCode::NOT_FOUND,
            format!("the console relays a workload's logs and an app's status only, not `{path}`"),
        )
            .into_response();
    }
    let light = match chain.light().await {
        Ok(light) => light,
        Err(response) => return response,
    };
    let record = match light.snapshot().worker(WorkerId(worker)).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                format!("there is no worker {worker}"),
            )
                .into_response();
        }
        Err(e) => return light_failure(&e),
    };
    let client = match OwnerApiClient::new(light.genesis_hash(), &record, wetee_client::now_ms()) {
        Ok(client) => client,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if !client.is_tls() && !chain.development {
        return (
            StatusCode::BAD_GATEWAY,
            format!(
                "worker {worker} offers its owner API only in plain HTTP on this machine: the \
                 console relays to such an endpoint on a development chain only"
            ),
        )
            .into_response();
    }
    let target = match uri.query() {
        Some(query) => format!("/_wetee/{path}?{query}"),
        None => format!("/_wetee/{path}"),
    };
    let signed: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-wetee-") && *name != crate::API_HEADER)
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let answer = match client.forward(&target, &signed).await {
        Ok(answer) => answer,
        Err(e) => return unreachable_worker(&e),
    };
    let mut response = Response::builder().status(answer.status);
    if let Some(content_type) = &answer.content_type {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(seconds) = answer.retry_after {
        response = response.header(header::RETRY_AFTER, seconds);
    }
    // Proxies and the browser must not hold back a followed log.
    response = response
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no");
    let body = futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(answer))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    response
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

fn unreachable_worker(error: &OwnerApiError) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("reaching the worker: {error}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_workload_logs_and_status_are_relayed() {
        for path in ["apps/1/logs", "tasks/22/runs/3/logs", "apps/7/status"] {
            assert!(allowed(path), "{path}");
        }
        for path in [
            "apps/1/logs/../../x",
            "apps//logs",
            "apps/x/logs",
            "workers/1/logs",
            "tasks/22/status",
            "tasks/2/runs//logs",
            "apps/1",
            "",
            "apps/1/logs/",
        ] {
            assert!(!allowed(path), "{path}");
        }
    }
}
