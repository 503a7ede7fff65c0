//! The owner API, on the ingress port under `/_wetee/`: an app's or task run's captured logs
//! (`?follow=1` streams new lines) and an app's status and metrics, served only to requests
//! signed by the workload's owner on chain (see `wetee_types::owner`); anyone else gets 403.
//!
//! - `GET /_wetee/apps/<id>/logs[?follow=1]`
//! - `GET /_wetee/apps/<id>/status`
//! - `GET /_wetee/tasks/<id>/runs/<n>/logs`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use wetee_types::owner::verify_request;
use wetee_types::{AccountId, AppId, Hash, TaskId, Workload};

use crate::logbook::LogBook;

/// Path prefix of the owner API.
pub const PREFIX: &str = "/_wetee/";
/// How often a followed log is checked for new lines.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// How long one request may follow a log (the client asks again with a fresh signature).
pub const FOLLOW_LIMIT: Duration = Duration::from_secs(3_600);

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
    logs_dir: PathBuf,
    owners: RwLock<BTreeMap<Workload, AccountId>>,
    apps: RwLock<BTreeMap<AppId, AppStatus>>,
}

type Body = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl OwnerApi {
    /// An owner API for the chain `genesis_hash`, reading logs from `logs_dir`.
    pub fn new(genesis_hash: Hash, logs_dir: PathBuf) -> OwnerApi {
        OwnerApi {
            genesis_hash,
            logs_dir,
            owners: RwLock::new(BTreeMap::new()),
            apps: RwLock::new(BTreeMap::new()),
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

    /// Replaces the status of every app.
    pub fn set_statuses(&self, statuses: BTreeMap<AppId, AppStatus>) {
        *self.apps.write().unwrap_or_else(|p| p.into_inner()) = statuses;
    }

    /// Answers a request under [`PREFIX`].
    pub async fn handle<B>(&self, request: &Request<B>) -> Response<Body> {
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let signed_target = request
            .uri()
            .path_and_query()
            .map_or(path.clone(), |p| p.as_str().to_string());
        let host = request
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some(target) = parse_target(&path) else {
            return text(StatusCode::NOT_FOUND, "no such owner API path\n");
        };
        let signer = verify_request(
            &self.genesis_hash,
            wetee_types::owner::RequestTarget {
                method: request.method().as_str(),
                target: &signed_target,
                host: &host,
            },
            |name| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            },
            now_ms(),
        );
        let signer = match signer {
            Ok(signer) => signer,
            Err(e) => return text(StatusCode::UNAUTHORIZED, format!("{e}\n")),
        };
        let workload = target.workload();
        let owner = self
            .owners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&workload)
            .copied();
        match owner {
            Some(owner) if owner == signer => {}
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
        match target {
            Target::Status(app) => {
                let status = self
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
            Target::AppLogs(_) | Target::RunLogs(..) => {
                let follow = query.split('&').any(|pair| pair == "follow=1");
                self.logs(workload, follow)
            }
        }
    }

    fn logs(&self, workload: Workload, follow: bool) -> Response<Body> {
        let Ok(book) = LogBook::open(&self.logs_dir) else {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "logs unavailable\n");
        };
        let mut everything = Vec::new();
        let epochs = book.epochs(&workload);
        for epoch in &epochs {
            everything.extend(book.read(&workload, *epoch));
        }
        if !follow {
            return text(StatusCode::OK, everything);
        }
        // Follow: what exists now, then whatever is appended, epoch after epoch.
        let mut position: (u64, usize) = epochs
            .last()
            .map(|epoch| (*epoch, book.read(&workload, *epoch).len()))
            .unwrap_or((0, 0));
        let logs_dir = self.logs_dir.clone();
        let first = futures::stream::once(async move {
            Ok::<_, hyper::Error>(Frame::data(Bytes::from(everything)))
        });
        let until = std::time::Instant::now() + FOLLOW_LIMIT;
        let rest = futures::stream::unfold((), move |()| {
            let logs_dir = logs_dir.clone();
            async move {
                loop {
                    if std::time::Instant::now() > until {
                        return None;
                    }
                    tokio::time::sleep(FOLLOW_POLL).await;
                    let Ok(book) = LogBook::open(&logs_dir) else {
                        continue;
                    };
                    let mut fresh = Vec::new();
                    for epoch in book.epochs(&workload) {
                        if epoch < position.0 {
                            continue;
                        }
                        let bytes = book.read(&workload, epoch);
                        let from = if epoch == position.0 { position.1 } else { 0 };
                        if bytes.len() > from {
                            fresh.extend_from_slice(&bytes[from..]);
                        }
                        position = (epoch, bytes.len());
                    }
                    if !fresh.is_empty() {
                        return Some((Ok(Frame::data(Bytes::from(fresh))), ()));
                    }
                }
            }
        });
        use futures::StreamExt as _;
        Response::new(http_body_util::BodyExt::boxed(StreamBody::new(
            first.chain(rest),
        )))
    }
}

enum Target {
    AppLogs(AppId),
    Status(AppId),
    RunLogs(TaskId, u32),
}

impl Target {
    fn workload(&self) -> Workload {
        match self {
            Target::AppLogs(app) | Target::Status(app) => Workload::App { app: *app },
            Target::RunLogs(task, run) => Workload::TaskRun {
                task: *task,
                run: *run,
            },
        }
    }
}

fn parse_target(path: &str) -> Option<Target> {
    let rest = path.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["apps", id, "logs"] => Some(Target::AppLogs(AppId(id.parse().ok()?))),
        ["apps", id, "status"] => Some(Target::Status(AppId(id.parse().ok()?))),
        ["tasks", id, "runs", run, "logs"] => {
            Some(Target::RunLogs(TaskId(id.parse().ok()?), run.parse().ok()?))
        }
        _ => None,
    }
}
