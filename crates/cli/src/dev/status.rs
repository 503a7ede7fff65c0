//! What `wetee dev` tells its user: a banner saying truthfully what runs, the worker's ups and
//! downs as they happen, and a compact status line (height, workers, apps) every few seconds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use wetee_client::rpc::Client;
use wetee_node::service::Started;
use wetee_types::records::{AppStatus, WorkerStatus};

use super::worker::WorkerState;
use crate::node::running_of;
use crate::output::{Format, print};
use crate::progress::Progress;

/// How often the status line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// The worker, as the banner and later messages describe it.
#[derive(Debug, Clone)]
pub enum WorkerLine {
    /// `--no-worker`.
    Disabled,
    /// Neither Docker nor Podman is installed.
    NoEngine,
    /// The engine could not be started.
    EngineFailed(String),
    /// Starting, or starting again.
    Starting,
    /// Registered and following the chain.
    Running {
        worker: wetee_types::WorkerId,
        identity: wetee_types::AccountId,
        engine: String,
        ingress: SocketAddr,
    },
    /// Stopped, to be started again.
    Failed { reason: String, retry_in: Duration },
}

impl WorkerLine {
    pub fn from_state(state: &WorkerState) -> WorkerLine {
        match state {
            WorkerState::Starting => WorkerLine::Starting,
            WorkerState::Running(running) => WorkerLine::Running {
                worker: running.worker,
                identity: running.identity,
                engine: running.engine.clone(),
                ingress: running.ingress,
            },
            WorkerState::Failed { reason, retry_in } => WorkerLine::Failed {
                reason: reason.clone(),
                retry_in: *retry_in,
            },
        }
    }

    /// The banner's words for the worker.
    pub fn describe(&self) -> String {
        match self {
            WorkerLine::Disabled => "none (--no-worker)".into(),
            WorkerLine::NoEngine => "none: neither Podman nor Docker is installed (run \
                 scripts/install-system-packages.sh, or: sudo apt-get install podman runc, then \
                 start wetee dev again)"
                .into(),
            WorkerLine::EngineFailed(reason) => format!("none: {reason}"),
            WorkerLine::Starting => "starting".into(),
            WorkerLine::Running { worker, engine, .. } => format!("{worker} on {engine}"),
            WorkerLine::Failed { reason, retry_in } => format!(
                "not running: {reason} (starting again in {} s)",
                retry_in.as_secs()
            ),
        }
    }

    /// What to say when the worker changes state after the banner.
    pub fn transition(&self) -> Option<String> {
        match self {
            WorkerLine::Running {
                worker, ingress, ..
            } => Some(format!(
                "worker {worker} is running; apps at http://{ingress}/<app-id>/"
            )),
            WorkerLine::Failed { .. } => Some(format!("the worker {}", self.describe())),
            _ => None,
        }
    }

    fn status(&self) -> &'static str {
        match self {
            WorkerLine::Disabled => "disabled",
            WorkerLine::NoEngine => "no_engine",
            WorkerLine::EngineFailed(_) => "engine_failed",
            WorkerLine::Starting => "starting",
            WorkerLine::Running { .. } => "running",
            WorkerLine::Failed { .. } => "failed",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({ "worker_status": self.status() });
        match self {
            WorkerLine::Running {
                worker,
                identity,
                engine,
                ingress,
            } => {
                value["worker"] = serde_json::json!({
                    "id": worker, "identity": identity, "engine": engine,
                });
                value["ingress"] = serde_json::json!(format!("http://{ingress}"));
            }
            WorkerLine::Failed { reason, retry_in } => {
                value["worker_error"] = serde_json::json!(reason);
                value["retry_in_secs"] = serde_json::json!(retry_in.as_secs());
            }
            WorkerLine::EngineFailed(reason) => {
                value["worker_error"] = serde_json::json!(reason);
            }
            _ => {}
        }
        value
    }
}

/// The banner: what runs, where, and how to stop it.
#[derive(Debug)]
pub struct Banner {
    pub chain: String,
    pub data_dir: PathBuf,
    pub started: Started,
    pub worker: WorkerLine,
    /// The dev worker's operator account, as a URI.
    pub operator: Option<String>,
    /// The Podman service started for the dev chain.
    pub engine_service: Option<u32>,
    /// The web console: its URL, or why it is not served; `None` with `--no-console`.
    pub console: Option<Result<String, String>>,
}

#[derive(Serialize)]
struct BannerDocument<'a> {
    #[serde(flatten)]
    node: crate::node::Running<'a>,
    accounts: Vec<String>,
    worker: Option<serde_json::Value>,
    worker_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_error: Option<String>,
    worker_operator: Option<&'a str>,
    engine_service_pid: Option<u32>,
    ingress: Option<String>,
    console: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    console_error: Option<&'a str>,
}

impl Banner {
    pub fn print(&self, format: Format) {
        let accounts: Vec<String> = wetee_client::keys::DEV_ACCOUNTS
            .iter()
            .map(|name| format!("//{name}"))
            .collect();
        let json = self.worker.to_json();
        let document = BannerDocument {
            node: running_of(&self.chain, &self.data_dir, &self.started),
            accounts,
            worker: json.get("worker").cloned(),
            worker_status: self.worker.status(),
            worker_error: json
                .get("worker_error")
                .and_then(|e| e.as_str())
                .map(str::to_string),
            worker_operator: self.operator.as_deref(),
            engine_service_pid: self.engine_service,
            ingress: json
                .get("ingress")
                .and_then(|i| i.as_str())
                .map(str::to_string),
            console: self
                .console
                .as_ref()
                .and_then(|c| c.as_ref().ok())
                .map(String::as_str),
            console_error: self
                .console
                .as_ref()
                .and_then(|c| c.as_ref().err())
                .map(String::as_str),
        };
        print(format, &document, || {
            let node = &document.node;
            let mut text = format!(
                "{}: running\n  RPC      {} (WebSocket {})\n  metrics  {}\n  worker   {}",
                self.chain,
                node.rpc,
                node.ws,
                node.metrics.as_deref().unwrap_or("not served"),
                self.worker.describe(),
            );
            if let (WorkerLine::Running { .. } | WorkerLine::Failed { .. }, Some(operator)) =
                (&self.worker, &self.operator)
            {
                text.push_str(&format!(", operated by {operator}"));
            }
            if let Some(ingress) = &document.ingress {
                text.push_str(&format!("\n  apps     {ingress}/<app-id>/"));
            }
            match &self.console {
                Some(Ok(url)) => text.push_str(&format!("\n  console  {url}")),
                Some(Err(why)) => text.push_str(&format!("\n  console  not served: {why}")),
                None => {}
            }
            text.push_str(&format!(
                "\n  data     {}\n  accounts {} (funded; sign with --from //Alice)",
                self.data_dir.display(),
                document.accounts.join(" ")
            ));
            let stops = match (&self.worker, self.engine_service) {
                (WorkerLine::Disabled | WorkerLine::NoEngine | WorkerLine::EngineFailed(_), _) => {
                    "the node".to_string()
                }
                (_, None) => "the node and the worker, and removes the apps' containers".into(),
                (_, Some(pid)) => format!(
                    "the node, the worker and the Podman service it started (pid {pid}), and \
                     removes the apps' containers"
                ),
            };
            text.push_str(&format!(
                "\n  stop     Ctrl-C (or SIGTERM) stops {stops}; the chain keeps the apps for \
                 the next start"
            ));
            text
        });
    }
}

/// Keeps the status line current: the finalized height, workers and apps, every
/// [`STATUS_EVERY`]. Never completes.
pub async fn watch_chain(rpc: &str, progress: &Progress, format: Format) {
    if format == Format::Json {
        return std::future::pending().await;
    }
    let mut client: Option<Client> = None;
    loop {
        if client.is_none() {
            client = Client::connect(rpc).await.ok();
        }
        if let Some(connected) = &client {
            match chain_status(connected).await {
                Ok((live, summary)) => progress.waiting(&live, &summary),
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(STATUS_EVERY).await;
    }
}

/// The status line: `live` with the height (redrawn in place), `summary` without (printed
/// when it changes, where lines cannot be redrawn).
async fn chain_status(client: &Client) -> Result<(String, String), wetee_client::rpc::ClientError> {
    let health = client.health().await?;
    let workers = client
        .workers()
        .await?
        .iter()
        .filter(|w| w.status == WorkerStatus::Started)
        .count();
    let apps = client.apps(None).await?;
    let count = |wanted: fn(&AppStatus) -> bool| apps.iter().filter(|a| wanted(&a.status)).count();
    let running = count(|s| matches!(s, AppStatus::Running));
    let pending = count(|s| matches!(s, AppStatus::Pending));
    let awaiting = count(|s| matches!(s, AppStatus::AwaitingSecrets));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut summary = format!(
        "{} started · {} running",
        plural(workers, "worker"),
        plural(running, "app")
    );
    if pending > 0 {
        summary.push_str(&format!(" · {pending} waiting for a worker"));
    }
    if awaiting > 0 {
        summary.push_str(&format!(" · {awaiting} awaiting secrets"));
    }
    let live = format!(
        "block #{} · {summary} · {} pending transactions",
        health.finalized.height, health.pending_transactions
    );
    Ok((live, summary))
}
