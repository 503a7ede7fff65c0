//! The owner API, on the ingress port under `/_wetee/`: an app's or task run's captured logs
//! (`?follow=1` streams new lines) and an app's status and metrics, served only to requests
//! signed by the workload's owner on chain (see `wetee_types::owner`): for this worker (its id
//! and endpoint), within a minute of the latest block the worker verified, each once. Anyone
//! else gets 401 or 403. A followed log ends when the request's session does, by chain time.
//! Web pages may call it: preflight requests are answered (authentication is by signature,
//! never by cookie).
//!
//! Routing is `axum`'s: [`OwnerApi::router`] puts every route behind one authentication layer
//! (signature, owner, replay), so that no handler can be reached unauthenticated, and answers
//! cross-origin requests around it.
//!
//! - `GET /_wetee/apps/<id>/logs[?follow=1]`
//! - `GET /_wetee/apps/<id>/status`
//! - `GET /_wetee/tasks/<id>/runs/<n>/logs`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawPathParams, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::StatusCode;
use hyper::body::Frame;
use serde::Serialize;
use wetee_types::owner::{
    Audience, MAX_AHEAD_MS, OwnerAuthError, REPLAY_WINDOW_MS, VerifiedRequest, verify_request,
};
use wetee_types::{AccountId, AppId, Hash, TaskId, WorkerId, Workload};

/// Path prefix of the owner API.
pub const PREFIX: &str = "/_wetee/";
/// How often a followed log is checked for new lines.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Requests of one owner remembered (to refuse replays) at most; past it, that owner's requests
/// wait for the window to move on.
pub const MAX_REQUESTS_PER_OWNER: usize = 10_000;
/// Followed logs one owner may hold open at once: each holds a connection and a timer.
pub const MAX_FOLLOWS_PER_OWNER: usize = 8;

/// The requests served within the replay window.
#[derive(Debug, Default)]
struct Served {
    by_time: BTreeMap<(u64, [u8; 16]), AccountId>,
    per_owner: BTreeMap<AccountId, usize>,
    /// Requests signed before this are forgotten, so they are refused: a request verified
    /// against an older chain time than another's must not slip in once its record is gone.
    forgotten_before: u64,
}

impl Served {
    /// Forgets requests signed before `cutoff_ms`: they are refused as stale anyway.
    fn forget_older_than(&mut self, cutoff_ms: u64) {
        self.forgotten_before = self.forgotten_before.max(cutoff_ms);
        while let Some(entry) = self.by_time.first_entry() {
            if entry.key().0 >= cutoff_ms {
                break;
            }
            let owner = entry.remove();
            if let Some(count) = self.per_owner.get_mut(&owner) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_owner.remove(&owner);
                }
            }
        }
    }

    fn record(&mut self, verified: &VerifiedRequest) -> Result<(), OwnerAuthError> {
        if verified.timestamp_ms < self.forgotten_before {
            return Err(OwnerAuthError::Stale);
        }
        let key = (verified.timestamp_ms, verified.nonce);
        if self.by_time.contains_key(&key) {
            return Err(OwnerAuthError::Replayed);
        }
        let count = self.per_owner.entry(verified.account).or_default();
        if *count >= MAX_REQUESTS_PER_OWNER {
            return Err(OwnerAuthError::Malformed(
                "too many requests in the last minute; try again shortly".into(),
            ));
        }
        *count += 1;
        self.by_time.insert(key, verified.account);
        Ok(())
    }
}
/// The headers a web page may send.
const ALLOWED_HEADERS: &str =
    "x-wetee-account, x-wetee-timestamp, x-wetee-nonce, x-wetee-signature, x-wetee-session";

/// One instance as the owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    /// The container's name.
    pub name: String,
    /// The version it runs.
    pub version: u32,
    /// The replica.
    pub replica: u32,
    /// `running`, `exited (code)`, ...
    pub state: String,
    /// Whether it answers its readiness probe.
    pub ready: bool,
}

/// An app's status and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppStatus {
    /// Its containers.
    pub instances: Vec<InstanceStatus>,
    /// Uptime in basis points, by epoch.
    pub uptime_bps: BTreeMap<u64, u16>,
    /// Resource use, by epoch.
    pub usage: BTreeMap<u64, wetee_types::report::Usage>,
}

/// What the owner API serves from, shared with the agent that keeps it current.
#[derive(Debug)]
pub struct OwnerApi {
    genesis_hash: Hash,
    worker: WorkerId,
    authority: String,
    /// The latest verified block's time: the only clock requests are judged by.
    chain_time: Arc<AtomicU64>,
    /// [`MAX_AHEAD_MS`] past the chain time of the first block verified after start (0 until
    /// then). The record of served requests lives in memory, and before a restart the worker
    /// accepted requests signed up to [`MAX_AHEAD_MS`] ahead of its chain time, which was at
    /// most that block's: requests signed up to this may have been served, so they are refused.
    serving_since: AtomicU64,
    /// Requests served within the window, by their signed timestamp and nonce (a replay
    /// carries both unchanged), oldest first.
    seen: Mutex<Served>,
    logs_dir: PathBuf,
    owners: RwLock<BTreeMap<Workload, AccountId>>,
    apps: RwLock<BTreeMap<AppId, AppStatus>>,
    /// Followed logs open, per owner.
    follows: Arc<Mutex<BTreeMap<AccountId, usize>>>,
}

/// One followed log held open; its owner's count goes down when it ends.
struct FollowSlot {
    follows: Arc<Mutex<BTreeMap<AccountId, usize>>>,
    owner: AccountId,
}

impl FollowSlot {
    /// A slot for `owner`, unless it already holds [`MAX_FOLLOWS_PER_OWNER`].
    fn take(follows: &Arc<Mutex<BTreeMap<AccountId, usize>>>, owner: AccountId) -> Option<Self> {
        let mut open = follows.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(owner).or_default();
        if *count >= MAX_FOLLOWS_PER_OWNER {
            return None;
        }
        *count += 1;
        Some(FollowSlot {
            follows: Arc::clone(follows),
            owner,
        })
    }
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut open = self.follows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// 503 with `Retry-After`: the request will be served if signed again in `seconds`.
fn retry_after(seconds: u64, body: impl Into<Bytes>) -> Response {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, body);
    response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, seconds.into());
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut response = Response::new(Body::from(body.into()));
    *response.status_mut() = status;
    response
}

/// Lets a web page read every answer, and answers its preflight requests.
async fn cross_origin(request: Request, next: Next) -> Response {
    let mut response = if request.method() == hyper::Method::OPTIONS {
        preflight()
    } else {
        next.run(request).await
    };
    response.headers_mut().insert(
        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        hyper::header::HeaderValue::from_static("*"),
    );
    response
}

/// The answer to a web page's preflight request.
fn preflight() -> Response {
    let mut response = text(StatusCode::NO_CONTENT, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
        hyper::header::HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_HEADERS,
        hyper::header::HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert(
        hyper::header::ACCESS_CONTROL_MAX_AGE,
        hyper::header::HeaderValue::from_static("600"),
    );
    response
}

/// What the authentication layer hands a handler: the workload its owner signed for, and until
/// when (chain time) the signature's session lasts.
#[derive(Debug, Clone, Copy)]
struct Authorized {
    workload: Workload,
    account: AccountId,
    valid_until_ms: u64,
}

fn no_such_path() -> Response {
    text(StatusCode::NOT_FOUND, "no such owner API path\n")
}

/// The authority (`host:port`) of an endpoint URL, as clients send it in `Host`.
pub fn authority_of(endpoint: &str) -> String {
    wetee_types::owner::endpoint_authority(endpoint).map_or_else(
        || {
            let rest = endpoint
                .split_once("://")
                .map_or(endpoint, |(_, rest)| rest);
            rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
        },
        |(_, authority)| authority,
    )
}

impl OwnerApi {
    /// The owner API of `worker`, reached at `endpoint`, on the chain `genesis_hash`, reading
    /// logs from `logs_dir`; requests are judged by the chain time `chain_time_ms` until
    /// [`OwnerApi::set_chain_time`] moves it on.
    pub fn new(
        genesis_hash: Hash,
        worker: WorkerId,
        endpoint: &str,
        chain_time_ms: u64,
        logs_dir: PathBuf,
    ) -> OwnerApi {
        OwnerApi {
            genesis_hash,
            worker,
            authority: authority_of(endpoint),
            chain_time: Arc::new(AtomicU64::new(chain_time_ms)),
            serving_since: AtomicU64::new(0),
            seen: Mutex::new(Served::default()),
            logs_dir,
            owners: RwLock::new(BTreeMap::new()),
            apps: RwLock::new(BTreeMap::new()),
            follows: Arc::default(),
        }
    }

    /// Whether the owner of `workload` is known.
    pub fn knows_owner(&self, workload: &Workload) -> bool {
        self.owners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(workload)
    }

    /// Records who owns `workload` (owners never change).
    pub fn set_owner(&self, workload: Workload, owner: AccountId) {
        self.owners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(workload, owner);
    }

    /// The latest verified block's time; it never goes back. The first call opens the API.
    pub fn set_chain_time(&self, time_ms: u64) {
        self.chain_time.fetch_max(time_ms, Ordering::Relaxed);
        let _ = self.serving_since.compare_exchange(
            0,
            time_ms.saturating_add(MAX_AHEAD_MS).max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Records an owner's request as served, refusing it if it was served before within the
    /// window, or if this owner already has [`MAX_REQUESTS_PER_OWNER`] in it. `now` is the
    /// chain time the request was verified at; a request another one's later chain time made
    /// stale meanwhile is refused, its record possibly gone.
    fn first_time(&self, verified: &VerifiedRequest, now: u64) -> Result<(), OwnerAuthError> {
        if verified.timestamp_ms <= self.serving_since.load(Ordering::Relaxed) {
            return Err(OwnerAuthError::BeforeStart);
        }
        let mut served = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        served.forget_older_than(now.saturating_sub(REPLAY_WINDOW_MS));
        served.record(verified)
    }

    /// Replaces the status of every app.
    pub fn set_statuses(&self, statuses: BTreeMap<AppId, AppStatus>) {
        *self.apps.write().unwrap_or_else(|p| p.into_inner()) = statuses;
    }

    /// The owner API's routes, each behind the authentication layer.
    pub fn router(self: &Arc<OwnerApi>) -> Router {
        Router::new()
            .route("/_wetee/apps/{app}/logs", get(logs))
            .route("/_wetee/apps/{app}/status", get(status))
            .route("/_wetee/tasks/{task}/runs/{run}/logs", get(logs))
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(self),
                authenticate,
            ))
            .fallback(|| async { no_such_path() })
            .layer(middleware::from_fn(cross_origin))
            .with_state(Arc::clone(self))
    }

    /// The workload's logs; followed until the chain time passes `follow_until_ms`, if given.
    fn logs(&self, workload: Workload, follow: Option<(AccountId, u64)>) -> Response {
        let slot = match follow {
            Some((owner, _)) => match FollowSlot::take(&self.follows, owner) {
                Some(slot) => Some(slot),
                None => {
                    return text(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "{MAX_FOLLOWS_PER_OWNER} followed logs are open already: end one first\n"
                        ),
                    );
                }
            },
            None => None,
        };
        let follow_until_ms = follow.map(|(_, until)| until);
        // Sent a bounded piece at a time, read off the runtime's threads: a long history costs
        // the worker a few MiB of memory per answer, not the history's size.
        let logs_dir = self.logs_dir.clone();
        let chain_time = Arc::clone(&self.chain_time);
        let pieces = futures::stream::unfold((LogCursor::default(), true), move |state| {
            let logs_dir = logs_dir.clone();
            let chain_time = Arc::clone(&chain_time);
            // The slot lives in this closure, so as long as the answer: dropped with it.
            let _held = &slot;
            async move {
                let (mut cursor, first) = state;
                loop {
                    let dir = logs_dir.clone();
                    let (moved, piece) = tokio::task::spawn_blocking(move || {
                        let mut cursor = cursor;
                        let piece = cursor.advance(&dir, &workload);
                        (cursor, piece)
                    })
                    .await
                    .ok()?;
                    cursor = moved;
                    // The first piece goes out even when empty: the client learns at once
                    // that its request was answered.
                    if !piece.is_empty() || first {
                        return Some((
                            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(piece))),
                            (cursor, false),
                        ));
                    }
                    // All that is stored now was sent: done, or (following) wait for more
                    // until the session ends by chain time.
                    let until = follow_until_ms?;
                    if chain_time.load(Ordering::Relaxed) > until {
                        return None;
                    }
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
            }
        });
        sealed_logs(Body::new(StreamBody::new(pieces)))
    }
}

/// The workload a route names: `{app}`, or `{task}` and `{run}`.
fn workload_of(params: &RawPathParams) -> Option<Workload> {
    let param = |name: &str| params.iter().find(|(key, _)| *key == name).map(|(_, v)| v);
    if let (Some(task), Some(run)) = (param("task"), param("run")) {
        return Some(Workload::TaskRun {
            task: TaskId(task.parse().ok()?),
            run: run.parse().ok()?,
        });
    }
    Some(Workload::App {
        app: AppId(param("app")?.parse().ok()?),
    })
}

/// The authentication layer: the request is signed for this worker at its address, by the
/// owner of the workload its path names, and was not served before. Only then does a handler
/// run, with [`Authorized`].
async fn authenticate(
    State(api): State<Arc<OwnerApi>>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(workload) = workload_of(&params) else {
        return no_such_path();
    };
    let serving_since = api.serving_since.load(Ordering::Relaxed);
    if serving_since == 0 {
        return retry_after(
            1,
            "the worker has not verified a block since it started: try again shortly\n",
        );
    }
    let signed_target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let now = api.chain_time.load(Ordering::Relaxed);
    let headers = request.headers();
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let verified = verify_request(
        &api.genesis_hash,
        Audience {
            worker: api.worker,
            authority: &api.authority,
        },
        wetee_types::owner::RequestTarget {
            method: request.method().as_str(),
            target: &signed_target,
            host,
        },
        |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        },
        now,
    );
    let verified = match verified {
        Ok(verified) => verified,
        Err(e) => return text(StatusCode::UNAUTHORIZED, format!("{e}\n")),
    };
    let owner = api
        .owners
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&workload)
        .copied();
    match owner {
        Some(owner) if owner == verified.account => {}
        Some(_) => {
            return text(
                StatusCode::FORBIDDEN,
                format!("only the owner of {workload} may read this\n"),
            );
        }
        None => {
            return text(
                StatusCode::NOT_FOUND,
                format!("{workload} has not run on this worker\n"),
            );
        }
    }
    // Only now, so that only owners of workloads here take room in the record.
    match api.first_time(&verified, now) {
        Ok(()) => {}
        Err(e @ OwnerAuthError::BeforeStart) => {
            // Signed anew once the signer's clock has passed `serving_since`, it is served.
            let wait_ms = serving_since.saturating_sub(verified.timestamp_ms) + 1;
            return retry_after(wait_ms.div_ceil(1_000), format!("{e}\n"));
        }
        Err(e) => return text(StatusCode::UNAUTHORIZED, format!("{e}\n")),
    }
    request.extensions_mut().insert(Authorized {
        workload,
        account: verified.account,
        valid_until_ms: verified.valid_until_ms,
    });
    next.run(request).await
}

/// `GET /_wetee/apps/{app}/status`: the app's containers, uptime and usage, as JSON.
async fn status(
    State(api): State<Arc<OwnerApi>>,
    axum::Extension(authorized): axum::Extension<Authorized>,
) -> Response {
    let Workload::App { app } = authorized.workload else {
        return no_such_path();
    };
    let status = api
        .apps
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&app)
        .cloned()
        .unwrap_or_default();
    let mut response = text(
        StatusCode::OK,
        serde_json::to_vec(&status).unwrap_or_default(),
    );
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET .../logs[?follow=1]`: the workload's sealed output; followed until its session ends.
async fn logs(
    State(api): State<Arc<OwnerApi>>,
    axum::Extension(authorized): axum::Extension<Authorized>,
    RawQuery(query): RawQuery,
) -> Response {
    let follow = query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "follow=1");
    api.logs(
        authorized.workload,
        follow.then_some((authorized.account, authorized.valid_until_ms)),
    )
}

/// A log answer: sealed records, framed (see [`LogCursor`]).
fn sealed_logs(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(wetee_client::owner_logs::SEALED_LOGS_TYPE),
    );
    response
}

/// How far a log answer has gone: the epoch, the records sent of it and their bytes. Each
/// record is sent as `epoch: u64 BE ‖ index: u32 BE ‖ record` (the position the owner opens it
/// at, see `wetee_sealing::log_batch`). Reads start where the last ended: a follow does not
/// read a file again.
#[derive(Debug, Default, Clone, Copy)]
struct LogCursor {
    epoch: u64,
    index: u32,
    offset: u64,
}

/// The most a log answer reads from disk at once: at least one whole record (at most 1 MiB).
const LOG_PIECE_BYTES: u64 = 2 << 20;

impl LogCursor {
    /// The next stored records (about [`LOG_PIECE_BYTES`] at most), framed; empty when all
    /// that is stored now has been sent.
    fn advance(&mut self, dir: &std::path::Path, workload: &Workload) -> Vec<u8> {
        let mut framed = Vec::new();
        for epoch in crate::logbook::stored_epochs(dir, workload) {
            if epoch < self.epoch {
                continue;
            }
            if epoch > self.epoch {
                *self = LogCursor {
                    epoch,
                    index: 0,
                    offset: 0,
                };
            }
            let path = crate::logbook::stored_path(dir, workload, epoch);
            let Ok(bytes) = read_from(&path, self.offset, LOG_PIECE_BYTES) else {
                continue;
            };
            for record in wetee_sealing::log_batch::records(&bytes) {
                framed.extend_from_slice(&epoch.to_be_bytes());
                framed.extend_from_slice(&self.index.to_be_bytes());
                framed.extend_from_slice(record);
                self.index += 1;
                self.offset += record.len() as u64;
            }
            if !framed.is_empty() {
                break;
            }
        }
        framed
    }
}

/// At most `limit` bytes of `path` from `offset` on.
fn read_from(path: &std::path::Path, offset: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use wetee_types::owner::{RequestTarget, Session, Signer, sign_request};
    use wetee_types::{KeyScheme, Keypair};

    const GENESIS: Hash = Hash([4; 32]);
    const WORKER: WorkerId = WorkerId(2);
    const HOST: &str = "127.0.0.1:8800";
    const NOW: u64 = 1_700_000_000_000;

    fn api(dir: &std::path::Path, owner: &Keypair) -> Arc<OwnerApi> {
        let api = OwnerApi::new(
            GENESIS,
            WORKER,
            "https://127.0.0.1:8800",
            NOW,
            dir.to_path_buf(),
        );
        api.set_owner(Workload::App { app: AppId(1) }, owner.account_id());
        // Serving since a minute before NOW.
        api.set_chain_time(NOW - 60_000);
        api.set_chain_time(NOW);
        Arc::new(api)
    }

    /// A signed request for `target`, as it arrives with the `Host` header `host`.
    fn request(headers: &[(&'static str, String)], target: &str, host: &str) -> Request<()> {
        let mut request = Request::get(target).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.body(()).unwrap()
    }

    /// The headers of a request signed at `NOW`.
    fn signed(
        signer: Signer<'_>,
        worker: WorkerId,
        target: &str,
        nonce: u8,
    ) -> Vec<(&'static str, String)> {
        signed_at(signer, worker, target, nonce, NOW)
    }

    fn signed_at(
        signer: Signer<'_>,
        worker: WorkerId,
        target: &str,
        nonce: u8,
        timestamp_ms: u64,
    ) -> Vec<(&'static str, String)> {
        sign_request(
            signer,
            &GENESIS,
            worker,
            RequestTarget {
                method: "GET",
                target,
                host: HOST,
            },
            timestamp_ms,
            &[nonce; 16],
        )
    }

    async fn answer(api: &Arc<OwnerApi>, request: &Request<()>) -> (StatusCode, String) {
        let response = handle(api, request).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The request through the router, as the ingress hands it over.
    async fn handle(api: &Arc<OwnerApi>, request: &Request<()>) -> Response {
        let mut routed = Request::new(Body::empty());
        *routed.method_mut() = request.method().clone();
        *routed.uri_mut() = request.uri().clone();
        *routed.headers_mut() = request.headers().clone();
        tower::ServiceExt::oneshot(api.router(), routed)
            .await
            .unwrap_or_else(|never| match never {})
    }

    #[tokio::test]
    async fn a_captured_request_is_served_once_and_only_by_its_worker_at_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
        let api = api(dir.path(), &owner);
        let target = "/_wetee/apps/1/status";
        let headers = signed(Signer::Account(&owner), WORKER, target, 1);
        let (status, _) = answer(&api, &request(&headers, target, HOST)).await;
        assert_eq!(status, StatusCode::OK);
        // The same request again.
        let (status, body) = answer(&api, &request(&headers, target, HOST)).await;
        assert_eq!(
            (status, body.trim()),
            (StatusCode::UNAUTHORIZED, "this request was already served")
        );
        // Signed for another worker, or sent to this one under another address.
        let elsewhere = signed(Signer::Account(&owner), WorkerId(9), target, 2);
        let (status, _) = answer(&api, &request(&elsewhere, target, HOST)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let fresh = signed(Signer::Account(&owner), WORKER, target, 3);
        let (status, body) = answer(&api, &request(&fresh, target, "10.0.0.1:8800")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        // The furthest ahead of the chain's time this worker serves.
        let ahead = signed_at(
            Signer::Account(&owner),
            WORKER,
            target,
            4,
            NOW + MAX_AHEAD_MS,
        );
        let (status, _) = answer(&api, &request(&ahead, target, HOST)).await;
        assert_eq!(status, StatusCode::OK);
        // A worker restarted (its record of served requests lost) serves nothing until it has
        // verified a block, then refuses what its predecessor may have served: anything signed
        // up to MAX_AHEAD_MS past that block, telling the client when to sign again.
        let restarted = Arc::new(OwnerApi::new(
            GENESIS,
            WORKER,
            "https://127.0.0.1:8800",
            NOW,
            dir.path().to_path_buf(),
        ));
        restarted.set_owner(Workload::App { app: AppId(1) }, owner.account_id());
        let (status, _) = answer(&restarted, &request(&headers, target, HOST)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        restarted.set_chain_time(NOW + 2_000);
        for captured in [&headers, &ahead] {
            let response = handle(&restarted, &request(captured, target, HOST)).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            let retry: u64 = response.headers()[hyper::header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=(MAX_AHEAD_MS + 2_000) / 1_000 + 1).contains(&retry));
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains("before this worker started"));
        }
        // Signed again when told, by which time the chain has moved on a little.
        let after = signed_at(
            Signer::Account(&owner),
            WORKER,
            target,
            5,
            NOW + 2_000 + MAX_AHEAD_MS + 1,
        );
        restarted.set_chain_time(NOW + 3_000);
        let (status, _) = answer(&restarted, &request(&after, target, HOST)).await;
        assert_eq!(status, StatusCode::OK);
        // Once the chain's time has moved past the window, the request is stale, not replayable.
        api.set_chain_time(NOW + REPLAY_WINDOW_MS + 1);
        let (status, body) = answer(&api, &request(&headers, target, HOST)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("more than a minute before"), "{body}");
    }

    #[test]
    fn a_request_whose_record_another_request_forgot_is_refused() {
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
        let request = VerifiedRequest {
            account: owner.account_id(),
            timestamp_ms: NOW,
            nonce: [1; 16],
            valid_until_ms: NOW + REPLAY_WINDOW_MS,
        };
        let mut served = Served::default();
        assert_eq!(served.record(&request), Ok(()));
        assert_eq!(served.record(&request), Err(OwnerAuthError::Replayed));
        // A request verified at a later chain time forgets it; the same request, verified
        // meanwhile against the earlier chain time, is refused all the same.
        served.forget_older_than(NOW + 1);
        assert_eq!(served.record(&request), Err(OwnerAuthError::Stale));
    }

    #[tokio::test]
    async fn a_session_past_its_expiry_is_refused_and_its_follow_ends_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
        let api = api(dir.path(), &owner);
        let key = Keypair::from_seed(KeyScheme::Ed25519, [2; 32]);
        let session = Session::delegate(&owner, &GENESIS, &key, NOW + 30_000);
        let signer = Signer::Session {
            account: owner.account_id(),
            key: &key,
            session: &session,
        };
        let target = "/_wetee/apps/1/logs?follow=1";
        let response = handle(
            &api,
            &request(&signed(signer, WORKER, target, 1), target, HOST),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        // What exists now, then it waits for more while the session lasts.
        assert!(body.frame().await.is_some());
        let waiting = tokio::time::timeout(FOLLOW_POLL * 3, body.frame()).await;
        assert!(
            waiting.is_err(),
            "the followed log ended within its session"
        );
        // The chain's time passes the session's expiry: the stream ends.
        api.set_chain_time(NOW + 30_001);
        let ended = tokio::time::timeout(FOLLOW_POLL * 4, body.frame()).await;
        assert!(
            matches!(ended, Ok(None)),
            "the followed log outlived its session"
        );
        // And the session signs nothing more: a request made at that time, correctly signed.
        let late = signed_at(signer, WORKER, "/_wetee/apps/1/status", 2, NOW + 30_001);
        let (status, body) = answer(&api, &request(&late, "/_wetee/apps/1/status", HOST)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("session has expired"), "{body}");
    }

    #[tokio::test]
    async fn an_owner_holds_a_bounded_number_of_followed_logs() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
        let api = api(dir.path(), &owner);
        let target = "/_wetee/apps/1/logs?follow=1";
        let follow = |nonce: u8| {
            let headers = signed(Signer::Account(&owner), WORKER, target, nonce);
            let api = Arc::clone(&api);
            async move { handle(&api, &request(&headers, target, HOST)).await }
        };
        let mut open = Vec::new();
        for nonce in 0..MAX_FOLLOWS_PER_OWNER as u8 {
            let response = follow(nonce).await;
            assert_eq!(response.status(), StatusCode::OK);
            open.push(response);
        }
        assert_eq!(follow(100).await.status(), StatusCode::TOO_MANY_REQUESTS);
        // One ends (the client went away): room for another.
        open.pop();
        assert_eq!(follow(101).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn no_route_answers_an_unsigned_request() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
        let api = api(dir.path(), &owner);
        for target in [
            "/_wetee/apps/1/logs",
            "/_wetee/apps/1/status",
            "/_wetee/tasks/1/runs/1/logs",
        ] {
            let (status, body) = answer(&api, &request(&[], target, HOST)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{target}: {body}");
        }
        for target in ["/_wetee/apps/x/logs", "/_wetee/apps/1/secrets", "/_wetee/"] {
            let (status, body) = answer(&api, &request(&[], target, HOST)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{target}: {body}");
        }
    }

    #[tokio::test]
    async fn web_pages_get_their_preflight_answered() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [1; 32]);
        let api = api(dir.path(), &owner);
        let preflight = Request::options("/_wetee/apps/1/status").body(()).unwrap();
        let response = handle(&api, &preflight).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let allowed = response.headers()[hyper::header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap();
        assert!(allowed.contains("x-wetee-session"), "{allowed}");
        assert_eq!(
            response.headers()[hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*"
        );
    }

    #[test]
    fn logs_are_read_a_bounded_piece_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
        let account = owner.account_id();
        let workload = Workload::App { app: AppId(1) };
        let key = wetee_sealing::public_key(&wetee_sealing::owner_secret(&owner));
        let binding = wetee_sealing::log_batch::Binding {
            genesis_hash: &GENESIS,
            workload,
            epoch: 3,
            worker: WORKER,
            owner: &account,
        };
        let lines = vec![b'x'; 900 << 10];
        let file: Vec<u8> = (0..3)
            .flat_map(|index| {
                wetee_sealing::log_batch::seal(&binding, index, &[2; 32], &key, &lines).unwrap()
            })
            .collect();
        let path = crate::logbook::stored_path(dir.path(), &workload, 3);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &file).unwrap();
        let mut cursor = LogCursor::default();
        let mut pieces = Vec::new();
        loop {
            let piece = cursor.advance(dir.path(), &workload);
            if piece.is_empty() {
                break;
            }
            assert!(
                piece.len() as u64 <= LOG_PIECE_BYTES + 64,
                "{}",
                piece.len()
            );
            pieces.push(piece);
        }
        assert_eq!(pieces.len(), 2, "two pieces for three records of 900 KiB");
        assert_eq!(pieces.concat().len(), file.len() + 3 * 12);
        assert_eq!(cursor.index, 3);
    }
}
