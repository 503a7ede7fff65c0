//! An app as its owner wants to see it: what state it is in and why, in words (where it runs,
//! what it waits for, why it failed), read from the chain at one moment.

use anyhow::{Context, Result};
use serde::Serialize;
use wetee_client::rpc::Client;
use wetee_types::records::{AppFailure, AppStatus, StopReason};
use wetee_types::{AccountId, AppId, Balance, WorkerId, Workload};

/// An app's state, from its record, its worker, its failure report and its pending reason.
#[derive(Debug, Clone, Serialize)]
pub struct AppState {
    pub app_id: AppId,
    pub name: String,
    pub owner: AccountId,
    pub version: u32,
    pub status: AppStatus,
    pub worker: Option<WorkerId>,
    /// Where it serves: its worker's ingress.
    pub url: Option<String>,
    pub deposit: Balance,
    /// Why no worker takes it, while it waits.
    pub pending_reason: Option<String>,
    /// Why its worker could not run it, if it reported so.
    pub failure: Option<AppFailure>,
}

impl AppState {
    /// Reads app `app` from the chain.
    pub async fn read(client: &Client, app: AppId) -> Result<AppState> {
        let record = client
            .app(app)
            .await?
            .with_context(|| format!("there is no app {app}"))?;
        let mut url = None;
        if let Some(placement) = &record.placement
            && let Some(worker) = client.worker(placement.worker).await?
        {
            let endpoint = worker.profile.endpoint.as_str().trim_end_matches('/');
            url = Some(format!("{endpoint}/{app}/"));
        }
        let pending_reason = match record.status {
            AppStatus::Pending => client.pending_reason(Workload::App { app }).await?,
            _ => None,
        };
        Ok(AppState {
            app_id: app,
            name: record.spec.name.as_str().to_string(),
            owner: record.owner,
            version: record.version,
            status: record.status,
            worker: record.placement.map(|p| p.worker),
            url,
            deposit: record.deposit,
            pending_reason,
            failure: client.app_failure(app).await?,
        })
    }

    /// Its state in a few words: `running on worker 1`, `waiting for a worker: no worker is
    /// started`.
    pub fn state_words(&self) -> String {
        let app = self.app_id;
        match (&self.status, self.worker) {
            (AppStatus::Pending, _) => match &self.pending_reason {
                Some(reason) => format!("waiting for a worker: {reason}"),
                None => "waiting for a worker".into(),
            },
            (AppStatus::Running, Some(worker)) => format!("running on worker {worker}"),
            (AppStatus::Running, None) => "running".into(),
            (AppStatus::AwaitingSecrets, worker) => format!(
                "placed on worker {}, waiting for its secrets: run `wetee app secrets reseal \
                 {app} --from <owner>` (or `wetee app secrets set` for new ones)",
                worker.map_or_else(|| "?".to_string(), |w| w.to_string())
            ),
            (AppStatus::Stopped { reason }, _) => format!("stopped: {}", stop_words(reason)),
        }
    }

    /// Every line a person needs.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "app {} ({}), version {}\n  state    {}",
            self.app_id,
            self.name,
            self.version,
            self.state_words()
        );
        if let Some(url) = &self.url {
            text.push_str(&format!("\n  url      {url}"));
        }
        text.push_str(&format!(
            "\n  owner    {}\n  deposit  {}",
            self.owner, self.deposit
        ));
        if let Some(failure) = &self.failure {
            text.push_str(&format!(
                "\n  failed   version {} on worker {}, at block #{}: {}",
                failure.version,
                failure.worker,
                failure.at,
                failure.reason.as_str()
            ));
            let tail = failure.log_tail.as_str().trim_end();
            if !tail.is_empty() {
                text.push_str("\n  its last log lines:");
                for line in tail.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
        }
        text
    }
}

/// Why an app or a task stopped, in words.
pub fn stop_words(reason: &StopReason) -> &'static str {
    match reason {
        StopReason::Owner => "its owner stopped it",
        StopReason::DepositExhausted => "its deposit ran out and the grace period passed",
        StopReason::Failed => "its worker could not run it",
    }
}
