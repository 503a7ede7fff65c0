//! An app as its owner wants to see it: what state it is in and why, in words (where it runs,
//! what it waits for, why it failed, how long its deposit lasts), read from the chain at one
//! moment. The CLI prints it; the web console shows it.

use serde::{Deserialize, Serialize};

use crate::light::LightClient;
use crate::owner_key::{FailureLog, open_failure_log};
use crate::rpc::{Client, ClientError};
use wetee_types::records::{App, AppFailure, AppStatus, StopReason};
use wetee_types::{AccountId, AppId, Balance, EpochNumber, Keypair, WorkerId, Workload};

/// An app's state, from its record, its worker, its failure report and its pending reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppOverview {
    /// Its id.
    pub app_id: AppId,
    /// Its name.
    pub name: String,
    /// Who pays for it and may change it.
    pub owner: AccountId,
    /// Its current version.
    pub version: u32,
    /// Its lifecycle state.
    pub status: AppStatus,
    /// Its state in words, as `wetee app status` prints it.
    pub state: String,
    /// The worker it is placed on.
    pub worker: Option<WorkerId>,
    /// Where it serves: its worker's ingress.
    pub url: Option<String>,
    /// Prepaid funds not yet paid out.
    pub deposit: Balance,
    /// What its worker charges per epoch, while placed.
    pub price_per_epoch: Option<Balance>,
    /// Whole epochs the deposit pays for at that price, beyond what is held for work done.
    pub runway_epochs: Option<u128>,
    /// The last epoch of its grace period, once the deposit cannot pay for the next epoch: it
    /// stops after it unless recharged.
    pub grace_until: Option<EpochNumber>,
    /// Why no worker takes it, while it waits.
    pub pending_reason: Option<String>,
    /// Why its worker could not run it, if it reported so.
    pub failure: Option<AppFailure>,
    /// The failed version's last log lines, opened with the owner's key ([`Self::open_log`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_log: Option<String>,
    /// Why the owner's key did not open them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_log_error: Option<String>,
}

/// Where anyone reaches `app` on the worker at `endpoint`: always plain HTTP on the worker's
/// port. An `https://` endpoint serves TLS on the same port with a certificate bound to the
/// worker's attested key, for owners' tools; browsers accept only CA-issued certificates.
pub fn app_url(endpoint: &str, app: AppId) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    match endpoint.strip_prefix("https://") {
        Some(authority) => format!("http://{authority}/{app}/"),
        None => format!("{endpoint}/{app}/"),
    }
}

/// Whole epochs `app`'s deposit pays for at `price` per epoch, beyond what is held.
pub fn runway_epochs(app: &App, price: Balance) -> Option<u128> {
    let available = app.deposit.0.saturating_sub(app.held.0);
    available.checked_div(price.0)
}

impl AppOverview {
    /// Reads app `app` from the chain; `None` if there is no such app.
    pub async fn read(client: &Client, app: AppId) -> Result<Option<AppOverview>, ClientError> {
        let Some(record) = client.app(app).await? else {
            return Ok(None);
        };
        Self::of(client, record).await.map(Some)
    }

    /// Every app of `owner`, newest first.
    pub async fn of_owner(
        client: &Client,
        owner: &AccountId,
    ) -> Result<Vec<AppOverview>, ClientError> {
        let mut overviews = Vec::new();
        for record in client.apps(Some(owner)).await?.into_iter().rev() {
            overviews.push(Self::of(client, record).await?);
        }
        Ok(overviews)
    }

    async fn of(client: &Client, record: App) -> Result<AppOverview, ClientError> {
        let app = record.id;
        let mut url = None;
        if let Some(placement) = &record.placement
            && let Some(worker) = client.worker(placement.worker).await?
        {
            url = Some(app_url(worker.profile.endpoint.as_str(), app));
        }
        let pending_reason = match record.status {
            AppStatus::Pending => client.pending_reason(Workload::App { app }).await?,
            _ => None,
        };
        let price = record.placement.as_ref().map(|p| p.price_per_epoch);
        let mut overview = AppOverview {
            app_id: app,
            name: record.spec.name.as_str().to_string(),
            owner: record.owner,
            version: record.version,
            status: record.status,
            state: String::new(),
            worker: record.placement.as_ref().map(|p| p.worker),
            url,
            deposit: record.deposit,
            price_per_epoch: price,
            runway_epochs: price.and_then(|price| runway_epochs(&record, price)),
            grace_until: record.grace_until,
            pending_reason,
            failure: client.app_failure(app).await?,
            failure_log: None,
            failure_log_error: None,
        };
        overview.state = overview.state_words();
        Ok(overview)
    }

    /// Opens the failure report's log lines, sealed to the owner, with `owner`'s key. The
    /// record is read again through `light`, with a proof: only the stored record is known to
    /// carry the worker's signature, and anyone could seal text to the owner's public key.
    pub async fn open_log(&mut self, light: Option<&LightClient>, owner: &Keypair) {
        if self.failure.is_none() {
            return;
        }
        let Some(light) = light else {
            self.failure_log_error = Some(
                "no chain to verify the report against: name it with --genesis-hash or \
                 --chain-spec"
                    .into(),
            );
            return;
        };
        let failure = match light.snapshot().app_failure(self.app_id).await {
            Ok(Some(failure)) => failure,
            Ok(None) => {
                self.failure_log_error = Some("the chain holds no failure report".into());
                return;
            }
            Err(e) => {
                self.failure_log_error = Some(format!("the report could not be verified: {e}"));
                return;
            }
        };
        let opened = open_failure_log(owner, &light.genesis_hash(), self.app_id, &failure);
        self.failure = Some(failure);
        match opened {
            FailureLog::Opened(text) => self.failure_log = Some(text.as_str().to_string()),
            FailureLog::NotSealed => {}
            FailureLog::Unreadable(e) => self.failure_log_error = Some(e.to_string()),
        }
    }

    /// The failure's log lines, or why they cannot be shown.
    pub fn log_words(&self) -> Option<Result<&str, String>> {
        let failure = self.failure.as_ref()?;
        let app = self.app_id;
        Some(
            match (
                &failure.log_tail,
                &self.failure_log,
                &self.failure_log_error,
            ) {
                (None, _, _) => Err(
                    "no log lines: the owner had published no sealing key when the worker reported"
                        .into(),
                ),
                (Some(_), Some(text), _) => Ok(text.trim_end()),
                (Some(_), None, Some(e)) => Err(format!("its last log lines cannot be shown: {e}")),
                (Some(_), None, None) => Err(format!(
                    "its last log lines are sealed to the owner: `wetee app status {app} --from <owner>` opens them"
                )),
            },
        )
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
        if let (Some(price), Some(runway)) = (self.price_per_epoch, self.runway_epochs) {
            text.push_str(&format!(
                "\n  runway   {runway} epochs at {price} per epoch"
            ));
        }
        if let Some(last) = self.grace_until {
            text.push_str(&format!(
                "\n  warning  the deposit cannot pay for the next epoch: the app stops after \
                 epoch {last} unless recharged (`wetee app recharge`)"
            ));
        }
        if let Some(failure) = &self.failure {
            text.push_str(&format!(
                "\n  failed   version {} on worker {}, at block #{}: {}",
                failure.version,
                failure.worker,
                failure.at,
                failure.reason.as_str()
            ));
            match self.log_words() {
                Some(Ok("")) | None => {}
                Some(Ok(tail)) => {
                    text.push_str("\n  its last log lines:");
                    for line in tail.lines() {
                        text.push_str(&format!("\n    {line}"));
                    }
                }
                Some(Err(why)) => text.push_str(&format!("\n  {why}")),
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
