//! Requests to a worker's owner API (logs, status, metrics), signed with the owner's key for
//! this chain and this worker's address.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wetee_client::rpc::Client;
use wetee_types::{Keypair, WorkerId};

/// The most header bytes read from a worker (which answers from a stranger's machine).
const MAX_HEAD: usize = 64 * 1024;

/// The start of a worker's answer: its status, the body received so far, and the connection
/// for the rest.
#[derive(Debug)]
pub struct OwnerResponse {
    pub worker: WorkerId,
    pub code: u16,
    pub body: Vec<u8>,
    stream: TcpStream,
}

impl OwnerResponse {
    /// The whole body.
    pub async fn read_to_end(mut self) -> Result<Vec<u8>> {
        self.stream.read_to_end(&mut self.body).await?;
        Ok(self.body)
    }

    /// Copies the body to stdout as it arrives (logs, `--follow`), until the worker ends it or
    /// the reader goes away (`| head`).
    pub async fn stream_to_stdout(mut self) -> Result<()> {
        let mut stdout = tokio::io::stdout();
        let mut chunk = std::mem::take(&mut self.body);
        let mut buffer = [0u8; 8192];
        loop {
            let written = async {
                stdout.write_all(&chunk).await?;
                stdout.flush().await
            };
            match written.await {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other?,
            }
            let read = self.stream.read(&mut buffer).await?;
            if read == 0 {
                return Ok(());
            }
            chunk.clear();
            chunk.extend_from_slice(&buffer[..read]);
        }
    }

    /// The body of a `200` answer as JSON; any other status is an error with the worker's
    /// words.
    pub async fn json(self) -> Result<serde_json::Value> {
        let (worker, code) = (self.worker, self.code);
        let body = self.read_to_end().await?;
        if code != 200 {
            bail!(
                "worker {worker} refused (HTTP {code}): {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        serde_json::from_slice(&body).context("the worker's answer is not JSON")
    }
}

/// Sends a signed `GET target` to `worker`'s owner API and reads the head of its answer.
pub async fn get(
    client: &Client,
    worker: WorkerId,
    key: &Keypair,
    target: &str,
) -> Result<OwnerResponse> {
    let endpoint = client
        .worker(worker)
        .await?
        .with_context(|| format!("there is no worker {worker}"))?
        .profile
        .endpoint
        .as_str()
        .to_string();
    let authority = endpoint
        .strip_prefix("http://")
        .with_context(|| format!("worker endpoint {endpoint} is not http://"))?
        .trim_end_matches('/')
        .to_string();
    let headers = wetee_types::owner::sign_request(
        key,
        &client.genesis_hash(),
        wetee_types::owner::RequestTarget {
            method: "GET",
            target,
            host: &authority,
        },
        crate::spec::now_ms(),
    );
    let mut request = format!("GET {target} HTTP/1.0\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(&authority)
        .await
        .with_context(|| format!("connecting to worker {worker} at {authority}"))?;
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            bail!("worker {worker} closed the connection");
        }
        received.extend_from_slice(&buffer[..read]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if received.len() > MAX_HEAD {
            bail!("worker {worker} sent more than {MAX_HEAD} bytes of headers");
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(OwnerResponse {
        worker,
        code,
        body: received[head_end..].to_vec(),
        stream,
    })
}
