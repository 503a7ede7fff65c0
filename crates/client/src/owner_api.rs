//! A worker's owner API (logs, status, metrics): requests signed with the owner's key for this
//! chain and this worker's address, sent over TLS bound to the worker's attested identity key
//! whenever the worker's endpoint is `https://` (`wetee-tls`), never trusting a certificate
//! authority. Give it the worker's record as proven through the light client: the identity key
//! it trusts is the one the chain attested.

use std::time::Duration;

use bytes::Bytes;
use wetee_types::owner::{RequestTarget, Session, Signer, sign_request};
use wetee_types::records::Worker;
use wetee_types::{AccountId, Hash, KeyScheme, Keypair, WorkerId};

/// How long to wait for a worker to connect and answer a request's head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a request is signed again when a worker that has just started asks for it.
const MAX_STARTUP_RETRIES: usize = 3;
/// The longest `Retry-After` waited for: a restarted worker asks for at most
/// [`wetee_types::owner::MAX_AHEAD_MS`] and a little more.
const MAX_RETRY_AFTER_SECS: u64 = 20;

/// Why a request to a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnerApiError {
    /// The worker's endpoint is not a URL this client can use.
    #[error("worker {worker}'s endpoint {endpoint} is not http:// or https://host:port")]
    Endpoint {
        /// The worker.
        worker: WorkerId,
        /// Its endpoint.
        endpoint: String,
    },
    /// The worker offers only plain HTTP, and not on this machine.
    #[error(
        "worker {worker} offers only plain HTTP at {endpoint}: its owner API would cross the \
         network in the clear"
    )]
    Plaintext {
        /// The worker.
        worker: WorkerId,
        /// Its endpoint.
        endpoint: String,
    },
    /// The operating system gave no randomness for a nonce or a session key.
    #[error("the operating system gave no randomness")]
    NoRandomness,
    /// The chain no longer vouches for the worker's identity key.
    #[error("worker {0}'s attestation has expired: its TLS identity is not vouched for")]
    NotAttested(WorkerId),
    /// Connecting, TLS (a certificate not bound to the worker's attested key) or HTTP failed.
    #[error("worker {worker}: {reason}")]
    Request {
        /// The worker.
        worker: WorkerId,
        /// Why, with every cause.
        reason: String,
    },
}

/// The way to one worker's owner API.
#[derive(Debug, Clone)]
pub struct OwnerApiClient {
    worker: WorkerId,
    genesis_hash: Hash,
    base: String,
    authority: String,
    tls: bool,
    http: reqwest::Client,
}

/// A worker's answer: its status, then its body as it arrives.
#[derive(Debug)]
pub struct OwnerResponse {
    /// The worker.
    pub worker: WorkerId,
    /// The HTTP status.
    pub status: u16,
    /// The body's media type, if the worker named one.
    pub content_type: Option<String>,
    /// The seconds after which a worker that has just started serves a request signed anew.
    pub retry_after: Option<u64>,
    response: reqwest::Response,
}

fn reason(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl OwnerApiClient {
    /// A client for `worker` (its record, proven) on the chain `genesis_hash`, at `now_ms`
    /// (the caller's clock, for the attestation's expiry).
    pub fn new(
        genesis_hash: Hash,
        worker: &Worker,
        now_ms: u64,
    ) -> Result<OwnerApiClient, OwnerApiError> {
        let endpoint = worker.profile.endpoint.as_str().trim_end_matches('/');
        let bad = || OwnerApiError::Endpoint {
            worker: worker.id,
            endpoint: endpoint.to_string(),
        };
        let (scheme, authority) =
            wetee_types::owner::endpoint_authority(endpoint).ok_or_else(bad)?;
        let tls = scheme == "https";
        let host = authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(host, _)| host);
        if !tls && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            // Signed requests and the logs they read would cross the network in the clear.
            return Err(OwnerApiError::Plaintext {
                worker: worker.id,
                endpoint: endpoint.to_string(),
            });
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let builder = if tls {
            if !worker.attestation_valid(now_ms) {
                return Err(OwnerApiError::NotAttested(worker.id));
            }
            let config = wetee_tls::WorkerVerifier::new(wetee_tls::ExpectedWorker {
                genesis_hash,
                identity: wetee_types::AccountId(worker.keys.identity),
                evidence_hash: wetee_tls::evidence_hash(&worker.evidence),
            })
            .client_config()
            .map_err(|e| OwnerApiError::Request {
                worker: worker.id,
                reason: e.to_string(),
            })?;
            builder.tls_backend_preconfigured(config)
        } else {
            builder
        };
        let http = builder.build().map_err(|e| OwnerApiError::Request {
            worker: worker.id,
            reason: reason(&e),
        })?;
        Ok(OwnerApiClient {
            worker: worker.id,
            genesis_hash,
            base: endpoint.to_string(),
            authority,
            tls,
            http,
        })
    }

    /// Whether requests go over TLS bound to the worker's identity.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Sends `GET target` (a path under `/_wetee/`) signed by the owner's `key`; the answer's
    /// head.
    pub async fn get(&self, key: &Keypair, target: &str) -> Result<OwnerResponse, OwnerApiError> {
        self.get_as(Signer::Account(key), target).await
    }

    /// [`OwnerApiClient::get`], signed by `signer` (a session, say).
    pub async fn get_as(
        &self,
        signer: Signer<'_>,
        target: &str,
    ) -> Result<OwnerResponse, OwnerApiError> {
        let mut response = self.send_signed(signer, target).await?;
        // A worker that has just started answers 503 with the seconds after which a request
        // signed anew will be served (it cannot know what its predecessor served before).
        for _ in 0..MAX_STARTUP_RETRIES {
            match retry_after(&response) {
                Some(seconds) if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                    response = self.send_signed(signer, target).await?;
                }
                _ => break,
            }
        }
        Ok(self.answer(response))
    }

    /// Sends `GET target` with `headers` signed elsewhere (a browser, whose keys never leave
    /// it): only the owner-API headers (`x-wetee-…`) are passed on. A worker that asks for the
    /// request to be signed again says so in [`OwnerResponse::retry_after`].
    pub async fn forward(
        &self,
        target: &str,
        headers: &[(String, String)],
    ) -> Result<OwnerResponse, OwnerApiError> {
        let mut request = self.http.get(format!("{}{target}", self.base));
        for (name, value) in headers {
            if name.starts_with("x-wetee-") {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let response = request.send().await.map_err(|e| OwnerApiError::Request {
            worker: self.worker,
            reason: reason(&e),
        })?;
        Ok(self.answer(response))
    }

    fn answer(&self, response: reqwest::Response) -> OwnerResponse {
        OwnerResponse {
            worker: self.worker,
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            retry_after: retry_after(&response),
            response,
        }
    }
}

/// A `Retry-After` in seconds, if short enough to wait for.
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .filter(|&seconds| seconds <= MAX_RETRY_AFTER_SECS)
}

impl OwnerApiClient {
    async fn send_signed(
        &self,
        signer: Signer<'_>,
        target: &str,
    ) -> Result<reqwest::Response, OwnerApiError> {
        let headers = sign_request(
            signer,
            &self.genesis_hash,
            self.worker,
            RequestTarget {
                method: "GET",
                target,
                host: &self.authority,
            },
            crate::now_ms(),
            &random_bytes()?,
        );
        let mut request = self.http.get(format!("{}{target}", self.base));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.map_err(|e| OwnerApiError::Request {
            worker: self.worker,
            reason: reason(&e),
        })
    }
}

/// A short-lived key the owner delegated its owner-API requests to, once: a followed log or a
/// web page signs with it instead of asking the wallet for every request.
#[derive(Debug)]
pub struct OwnerSession {
    account: AccountId,
    key: Keypair,
    session: Session,
}

impl OwnerSession {
    /// `account` delegates to a fresh key for `lifetime` (at most a day) on `genesis_hash`.
    pub fn delegate(
        account: &Keypair,
        genesis_hash: &Hash,
        lifetime: Duration,
    ) -> Result<OwnerSession, OwnerApiError> {
        let key = Keypair::from_seed(KeyScheme::Ed25519, random_bytes()?);
        let lifetime = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let expires_ms =
            crate::now_ms().saturating_add(lifetime.min(wetee_types::owner::MAX_SESSION_MS));
        Ok(OwnerSession {
            account: account.account_id(),
            session: Session::delegate(account, genesis_hash, &key, expires_ms),
            key,
        })
    }

    /// When it ends, Unix milliseconds.
    pub fn expires_ms(&self) -> u64 {
        self.session.expires_ms
    }

    /// What signs requests with it.
    pub fn signer(&self) -> Signer<'_> {
        Signer::Session {
            account: self.account,
            key: &self.key,
            session: &self.session,
        }
    }
}

impl OwnerResponse {
    /// The next part of the body as it arrives; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, OwnerApiError> {
        self.response
            .chunk()
            .await
            .map_err(|e| OwnerApiError::Request {
                worker: self.worker,
                reason: reason(&e),
            })
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, OwnerApiError> {
        let worker = self.worker;
        self.response
            .bytes()
            .await
            .map_err(|e| OwnerApiError::Request {
                worker,
                reason: reason(&e),
            })
    }
}

/// Random bytes from the operating system.
fn random_bytes<const N: usize>() -> Result<[u8; N], OwnerApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| OwnerApiError::NoRandomness)?;
    Ok(bytes)
}
