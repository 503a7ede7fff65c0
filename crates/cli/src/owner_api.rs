//! Requests to a worker's owner API (logs, status, metrics) through `wetee-client`: signed with
//! the owner's key, and over TLS bound to the worker's identity key whenever its endpoint is
//! `https://`. The worker's record (endpoint, identity key, attestation) is read through the
//! light client, so a node cannot point the CLI at an impostor.

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt as _;
use wetee_client::light::LightClient;
use wetee_client::owner_api::{OwnerApiClient, OwnerResponse, OwnerSession};
use wetee_types::{Keypair, WorkerId};

/// The owner API of `worker`, its record proven through `light`.
pub async fn client_for(light: &LightClient, worker: WorkerId) -> Result<OwnerApiClient> {
    let record = light
        .snapshot()
        .worker(worker)
        .await
        .map_err(|e| anyhow::anyhow!("reading worker {worker}: {e}"))?
        .with_context(|| format!("there is no worker {worker}"))?;
    Ok(OwnerApiClient::new(
        light.genesis_hash(),
        &record,
        crate::spec::now_ms(),
    )?)
}

/// How long `--follow` follows: the session the owner's key delegates to for it, after which
/// the worker ends the stream.
pub const FOLLOW_SESSION: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Sends a signed `GET target` to `worker`'s owner API and returns the head of its answer. A
/// followed log is signed by a session key `key` delegates to for [`FOLLOW_SESSION`].
pub async fn get(
    light: &LightClient,
    worker: WorkerId,
    key: &Keypair,
    target: &str,
) -> Result<OwnerResponse> {
    let client = client_for(light, worker).await?;
    let follows = target
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "follow=1"));
    if follows {
        let session = OwnerSession::delegate(key, &light.genesis_hash(), FOLLOW_SESSION)?;
        return Ok(client.get_as(session.signer(), target).await?);
    }
    Ok(client.get(key, target).await?)
}

/// Opens the sealed log records of the body as they arrive and writes their lines to stdout,
/// until the worker ends it or the reader goes away (`| head`).
pub async fn open_to_stdout(
    mut response: OwnerResponse,
    mut opener: wetee_client::owner_logs::LogOpener,
) -> Result<()> {
    if response.content_type.as_deref() != Some(wetee_client::owner_logs::SEALED_LOGS_TYPE) {
        bail!(
            "worker {} answered logs that are not sealed to you ({}): it runs an older or \
             altered worker",
            response.worker,
            response
                .content_type
                .as_deref()
                .unwrap_or("no content type")
        );
    }
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = response.chunk().await? {
        let lines = opener.feed(&chunk)?;
        if lines.is_empty() {
            continue;
        }
        let written = async {
            stdout.write_all(&lines).await?;
            stdout.flush().await
        };
        match written.await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    opener.finish()?;
    Ok(())
}

/// The body of a `200` answer as JSON; any other status is an error with the worker's words.
pub async fn json(response: OwnerResponse) -> Result<serde_json::Value> {
    let (worker, status) = (response.worker, response.status);
    let body = response.bytes().await?;
    if status != 200 {
        bail!(
            "worker {worker} refused (HTTP {status}): {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    serde_json::from_slice(&body).context("the worker's answer is not JSON")
}
