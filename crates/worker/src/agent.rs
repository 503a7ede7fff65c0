//! The worker's main loop: register if needed, then at every finalized block (and every few
//! seconds, so that restarts with backoff happen without new blocks): reconcile, sample uptime
//! and usage, collect logs, and once an epoch has ended, submit its signed work report.
//! It reconnects to the node whenever the connection drops; containers keep running meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use wetee_client::rpc::Client;
use wetee_types::report::{SignedWorkReport, WorkReport};
use wetee_types::transaction::WorkersCall;
use wetee_types::{AppId, Call, Keypair, WorkerId, Workload};

use crate::backend::docker::DockerBackend;
use crate::backend::{Backend, BackendError, InstanceState};
use crate::chain::{ChainError, desired_instances, ensure_registered, evidence_if_due};
use crate::config::{BackendKind, WorkerConfig};
use crate::identity::{IdentityError, WorkerIdentity};
use crate::ingress::Routes;
use crate::logbook::LogBook;
use crate::owner_api::{AppStatus, InstanceStatus, OwnerApi};
use crate::reconcile::Reconciler;
use crate::report::{Meter, is_worth_sending, run_report};

/// How often the worker reconciles without a new block.
pub const RESYNC: Duration = Duration::from_secs(2);
/// How often resource usage is sampled.
pub const USAGE_EVERY: Duration = Duration::from_secs(5);

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The keys could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The chain refused the worker.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The ingress cannot listen, or the log directory cannot be written.
    #[error("{what}: {error}")]
    Io {
        /// What failed.
        what: String,
        /// Why.
        error: std::io::Error,
    },
}

/// What the worker announces once it runs.
#[derive(Debug, Clone)]
pub struct Running {
    /// Its id on chain.
    pub worker: WorkerId,
    /// Its identity key.
    pub identity: wetee_types::AccountId,
    /// The engine it drives.
    pub engine: String,
    /// Where its ingress listens.
    pub ingress: std::net::SocketAddr,
}

/// At most `MAX` items: a report longer than a report may be proves what fits.
fn bounded<T, const MAX: usize>(mut items: Vec<T>) -> wetee_types::codec::BoundedVec<T, MAX> {
    items.truncate(MAX);
    wetee_types::codec::BoundedVec::try_new(items).unwrap_or_default()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The worker's state between ticks.
struct Worker<B: Backend> {
    id: WorkerId,
    config: WorkerConfig,
    identity: WorkerIdentity,
    operator: Keypair,
    reconciler: Reconciler<B>,
    meter: Meter,
    logs: LogBook,
    epoch_length: u64,
    last_usage: Option<Instant>,
    owner_api: Arc<OwnerApi>,
    failed_reported: BTreeSet<crate::backend::Identity>,
    refused_report: Option<wetee_types::Hash>,
}

impl<B: Backend> Worker<B> {
    async fn tick(&mut self, client: &Client, height: u64) -> Result<(), ChainError> {
        let epoch = height / self.epoch_length.max(1);
        let desired = desired_instances(client, self.id, &self.identity).await?;
        let mut pass = match self.reconciler.reconcile(&desired).await {
            Ok(pass) => pass,
            Err(e) => {
                tracing::warn!(error = %e, "the backend failed; retrying");
                return Ok(());
            }
        };
        if !pass.is_quiet() {
            tracing::info!(
                started = pass.started.len(),
                removed = pass.removed.len(),
                failed = pass.failed.len(),
                "reconciled"
            );
        }
        let apps: BTreeSet<Workload> = desired
            .iter()
            .map(|spec| spec.workload)
            .filter(|w| matches!(w, Workload::App { .. }))
            .collect();
        for workload in &apps {
            let Workload::App { app } = *workload else {
                continue;
            };
            let up = desired
                .iter()
                .filter(|spec| spec.workload == *workload)
                .all(|spec| pass.ready.contains(&spec.identity()));
            self.meter.sample_uptime(epoch, app, up);
        }
        // Owners never change: learn each once, for the owner API.
        for spec in &desired {
            if self.owner_api.knows_owner(&spec.workload) {
                continue;
            }
            let owner = match spec.workload {
                Workload::App { app } => client.app(app).await?.map(|a| a.owner),
                Workload::TaskRun { task, .. } => client.task(task).await?.map(|t| t.owner),
            };
            if let Some(owner) = owner {
                self.owner_api.set_owner(spec.workload, owner);
            }
        }
        let instances = std::mem::take(&mut pass.instances);
        let mut statuses: BTreeMap<AppId, AppStatus> = BTreeMap::new();
        for instance in &instances {
            let Workload::App { app } = instance.identity.workload else {
                continue;
            };
            statuses
                .entry(app)
                .or_default()
                .instances
                .push(InstanceStatus {
                    name: instance.name.clone(),
                    version: instance.identity.version,
                    replica: instance.identity.replica,
                    state: match &instance.state {
                        InstanceState::Running => "running".into(),
                        InstanceState::Created => "created".into(),
                        InstanceState::Exited { code } => format!("exited ({code})"),
                        InstanceState::Other(other) => other.clone(),
                    },
                    ready: pass.ready.contains(&instance.identity),
                });
        }
        for (app, status) in statuses.iter_mut() {
            let (uptime, usage) = self.meter.history(*app);
            status.uptime_bps = uptime;
            status.usage = usage;
        }
        self.owner_api.set_statuses(statuses);
        let sample_usage = self.last_usage.is_none_or(|at| at.elapsed() >= USAGE_EVERY);
        for instance in &instances {
            if let Err(e) = self
                .logs
                .collect(self.reconciler.backend(), instance, epoch)
                .await
            {
                tracing::debug!(error = %e, "log collection");
            }
            if sample_usage
                && instance.state == InstanceState::Running
                && let Ok(usage) = self.reconciler.backend().usage(&instance.id).await
            {
                self.meter
                    .sample_usage(epoch, instance.identity.workload, &instance.id, usage);
            }
        }
        if sample_usage {
            self.last_usage = Some(Instant::now());
        }
        self.report_failures(client).await?;
        // Cursors of containers that are gone are of no more use.
        self.logs
            .retain(&instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>());
        if epoch > 0 {
            self.report(client, epoch - 1, &desired, &instances).await?;
        }
        let live: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        self.meter.prune(epoch.saturating_sub(1), &live);
        Ok(())
    }

    /// Tells the chain about apps that keep failing, with their last log lines, so that their
    /// owners see why (and get their deposit back) instead of paying for nothing.
    async fn report_failures(&mut self, client: &Client) -> Result<(), ChainError> {
        for (identity, reason, tail) in self.reconciler.failing() {
            let Workload::App { app } = identity.workload else {
                continue;
            };
            if self.failed_reported.contains(&identity) {
                continue;
            }
            // The end of a log is what explains a crash: keep the last bytes that fit.
            let clip = |text: &str, max: usize| {
                let mut start = text.len().saturating_sub(max);
                while !text.is_char_boundary(start) {
                    start += 1;
                }
                text[start..].to_string()
            };
            let call = Call::Workers(WorkersCall::ReportAppFailure {
                worker: self.id,
                app,
                reason: wetee_types::codec::BoundedString::try_new(clip(&reason, 256))
                    .unwrap_or_default(),
                log_tail: wetee_types::codec::BoundedString::try_new(clip(&tail, 4096))
                    .unwrap_or_default(),
            });
            match client.send(&self.operator, call, |_| {}).await {
                Ok(_) => {
                    self.failed_reported.insert(identity);
                    tracing::warn!(%app, reason, "reported the app as failed");
                }
                // Retried at the next pass.
                Err(e) => tracing::warn!(%app, error = %e, "could not report the app as failed"),
            }
        }
        Ok(())
    }

    /// Submits the report of `epoch` if the chain has not had one yet.
    async fn report(
        &mut self,
        client: &Client,
        epoch: u64,
        desired: &[crate::backend::InstanceSpec],
        instances: &[crate::backend::Instance],
    ) -> Result<(), ChainError> {
        let Some(record) = client.worker(self.id).await? else {
            return Ok(());
        };
        if record.last_report_epoch.is_some_and(|last| last >= epoch) {
            return Ok(());
        }
        let mut runs = Vec::new();
        for instance in instances {
            let Workload::TaskRun { task, run } = instance.identity.workload else {
                continue;
            };
            let InstanceState::Exited { code } = instance.state else {
                continue;
            };
            // The engine could not say how it ended: ask again next time.
            if code < 0 {
                continue;
            }
            // A run assigned after the epoch ended belongs to a later report.
            let assigned = client
                .task_runs(task)
                .await?
                .into_iter()
                .find(|r| r.run == run)
                .and_then(|r| r.assigned_at);
            if assigned.is_none_or(|at| at >= (epoch + 1).saturating_mul(self.epoch_length)) {
                continue;
            }
            // Only runs the chain still waits on.
            if !desired.iter().any(|d| d.identity() == instance.identity) {
                continue;
            }
            let duration = match self.reconciler.backend().run_times(&instance.id).await {
                Ok(Some((started, finished))) => finished.saturating_sub(started),
                _ => 0,
            };
            let usage = self.meter.run_usage(task, run);
            runs.push(run_report(task, run, code, duration, usage, &self.logs));
        }
        let report = WorkReport {
            worker: self.id,
            epoch,
            apps: bounded(self.meter.app_proofs(epoch, &self.logs)),
            runs: bounded(runs),
            evidence: None,
        };
        // Fresh evidence differs every time: the digest of what was refused leaves it out.
        let digest = wetee_types::Hash::of(&wetee_types::codec::encode(&report));
        if self.refused_report == Some(digest) {
            // The chain refused exactly this report: sending it again would only cost fees.
            return Ok(());
        }
        let mut report = report;
        report.evidence = evidence_if_due(client, self.id, &self.identity, &self.config).await?;
        // A due refresh goes out even in an otherwise empty report: an expired attestation
        // would stop placements.
        if report.evidence.is_none() && !is_worth_sending(&report) {
            return Ok(());
        }
        let signature = self
            .identity
            .identity()
            .sign(&report.signing_payload(&client.genesis_hash()));
        let signed = SignedWorkReport {
            report,
            signature: *signature.as_bytes(),
        };
        let apps = signed.report.apps.len();
        let runs = signed.report.runs.len();
        let call = Call::Workers(WorkersCall::SubmitWorkReport { report: signed });
        match client.send(&self.operator, call, |_| {}).await {
            Ok(_) => tracing::debug!(epoch, apps, runs, "work report accepted"),
            Err(e) => {
                tracing::warn!(epoch, error = %e, "work report refused");
                self.refused_report = Some(digest);
            }
        }
        Ok(())
    }
}

/// Runs the worker until `stop` completes. `started` hears once it is registered.
pub async fn run(
    config: WorkerConfig,
    rpc: &str,
    operator: Keypair,
    stop: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), AgentError> {
    let identity = WorkerIdentity::load_or_create(&config.data_dir)?;
    let backend = match config.backend.kind {
        BackendKind::Docker => {
            let scope = hex::encode(identity.keys().identity);
            DockerBackend::connect(config.backend.socket.as_deref(), &scope)
                .await?
                .with_secrets_dir(&config.backend.secrets_dir)?
        }
    };
    let engine = backend.describe().await?;
    let listener = tokio::net::TcpListener::bind(config.ingress.listen)
        .await
        .map_err(|error| AgentError::Io {
            what: format!("the ingress cannot listen on {}", config.ingress.listen),
            error,
        })?;
    let ingress = listener.local_addr().unwrap_or(config.ingress.listen);
    let logs_dir = config.data_dir.join("logs");
    let logs = LogBook::open(&logs_dir).map_err(|error| AgentError::Io {
        what: format!("the log directory {}", logs_dir.display()),
        error,
    })?;
    let client = Client::connect(rpc).await.map_err(ChainError::from)?;
    let id = ensure_registered(&client, &operator, &identity, &config).await?;
    let epoch_length = client
        .params()
        .await
        .map_err(ChainError::from)?
        .chain
        .epoch_length;
    let routes = Arc::new(Routes::default());
    let owner_api = Arc::new(OwnerApi::new(client.genesis_hash(), logs_dir.clone()));
    let _serving = AbortOnDrop(tokio::spawn(crate::ingress::serve(
        listener,
        Arc::clone(&routes),
        config.ingress.domain.clone(),
        Some(Arc::clone(&owner_api)),
    )));
    started(Running {
        worker: id,
        identity: identity.identity().account_id(),
        engine,
        ingress,
    });
    let mut worker = Worker {
        id,
        config: config.clone(),
        identity,
        operator,
        reconciler: Reconciler::new(backend).with_routes(routes),
        meter: Meter::default(),
        logs,
        epoch_length,
        last_usage: None,
        owner_api,
        failed_reported: BTreeSet::new(),
        refused_report: None,
    };
    let mut client = Some(client);
    let stop = stop.fuse();
    futures::pin_mut!(stop);
    loop {
        let Some(connected) = client.as_ref() else {
            // Reconnect, keeping what runs running meanwhile.
            match Client::connect(rpc).await {
                Ok(fresh) => client = Some(fresh),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the node; retrying");
                    futures::select! {
                        _ = tokio::time::sleep(RESYNC).fuse() => {}
                        _ = stop => return Ok(()),
                    }
                }
            }
            continue;
        };
        let mut heads = match connected.finalized_heads().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "lost the node");
                client = None;
                continue;
            }
        };
        let mut height = match connected.header(None).await {
            Ok(head) => head.header.height,
            Err(_) => {
                client = None;
                continue;
            }
        };
        loop {
            // The latest head: a slow pass must not leave the worker an epoch behind.
            if let Ok(head) = connected.header(None).await {
                height = height.max(head.header.height);
            }
            if let Err(e) = worker.tick(connected, height).await {
                tracing::warn!(error = %e, "cannot read the chain");
                client = None;
                break;
            }
            futures::select! {
                head = heads.next().fuse() => match head {
                    Some(Ok(head)) => height = height.max(head.header.height),
                    _ => {
                        client = None;
                        break;
                    }
                },
                _ = tokio::time::sleep(RESYNC).fuse() => {}
                _ = stop => return Ok(()),
            }
        }
    }
}
