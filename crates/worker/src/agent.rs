//! The worker's main loop: register if needed, then at every finalized block (and every few
//! seconds, so that restarts with backoff happen without new blocks): reconcile, sample uptime
//! and usage, collect logs, and once an epoch has ended, submit its signed work report.
//! It reconnects to the node whenever the connection drops; containers keep running meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use wetee_client::light::{LightClient, Trust, VerifiedHead};
use wetee_types::records::MAX_LOG_TAIL_BYTES;
use wetee_types::report::{SignedWorkReport, WorkReport};
use wetee_types::transaction::WorkersCall;
use wetee_types::{AccountId, AppId, Call, Keypair, WorkerId, Workload};

use crate::backend::docker::DockerBackend;
use crate::backend::{Backend, BackendError, InstanceState};
use crate::chain::{
    ChainError, ChainView, ProvenApps, ensure_registered, evidence_if_due, evidence_provider,
    read_view, registered_evidence,
};
use crate::config::{BackendKind, WorkerConfig};
use crate::data_lock::DataDirLock;
use crate::identity::{IdentityError, WorkerIdentity};
use crate::ingress::{Ingress, Routes};
use crate::keys::{KeyStore, KeyStoreError, Protection};
use crate::logbook::LogBook;
use crate::owner_api::{AppStatus, InstanceStatus, OwnerApi};
use crate::reconcile::Reconciler;
use crate::registration::Registration;
use crate::report::{Meter, is_worth_sending, run_report};
use crate::revisions::SecretRevisions;
use crate::serving_tls::ServingCertificate;
use crate::topology::{EngineEndpoint, Layout, secrets_refusal};

/// How often the worker reconciles without a new block.
pub const RESYNC: Duration = Duration::from_secs(2);
/// The least a pass waits for the engine's actions, however short the chain's epochs.
const MIN_PASS_BUDGET: Duration = Duration::from_millis(250);
/// How often resource usage is sampled.
pub const USAGE_EVERY: Duration = Duration::from_secs(5);

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The keys could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The configured key store cannot protect the keys here.
    #[error("the worker's keys: {0}")]
    Keys(#[from] KeyStoreError),
    /// The backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The chain refused the worker.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The process cannot be kept from dumping its memory.
    #[error(transparent)]
    Hardening(#[from] crate::hardening::HardeningError),
    /// Another worker uses the data directory.
    #[error(transparent)]
    DataDir(#[from] crate::data_lock::DataDirLockError),
    /// The TLS certificate cannot be made.
    #[error(transparent)]
    Tls(#[from] wetee_tls::CertificateError),
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
    /// What keeps its keys from the operator.
    pub key_protection: Protection,
    /// Why it gives no secrets to containers, if it gives none.
    pub secrets_refusal: Option<String>,
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
    /// Owners' sealing keys as read through the light client this epoch (`None`: none
    /// published), for sealing their output.
    owner_keys: BTreeMap<AccountId, Option<[u8; 32]>>,
    /// The owner of each workload with a container, kept after the chain lets the workload go
    /// so that the output it wrote last (a crash, a stop) is still sealed to its owner.
    workload_owners: BTreeMap<Workload, AccountId>,
    /// The epoch `owner_keys` and the log book's retention are current for.
    logs_epoch: Option<u64>,
    epoch_length: u64,
    last_usage: Option<Instant>,
    /// The containers the last pass listed: one removed since still has its last lines taken.
    last_instances: Vec<crate::backend::Instance>,
    owner_api: Arc<OwnerApi>,
    failed_reported: BTreeSet<crate::backend::Identity>,
    refused_report: Option<wetee_types::Hash>,
    revisions: SecretRevisions,
    proven_apps: ProvenApps,
    certificate: ServingCertificate,
}

impl<B: Backend> Worker<B> {
    async fn tick(&mut self, light: &LightClient, nodes: &mut Nodes) -> Result<(), ChainError> {
        let mut view = read_view(
            light,
            self.id,
            &self.identity,
            &self.revisions,
            &self.proven_apps,
        )
        .await?;
        tracing::debug!(
            height = view.head.height,
            apps = view.apps.len(),
            read = view.apps_read,
            "read the chain"
        );
        self.proven_apps = std::mem::take(&mut view.apps);
        // On disk before the owner API judges requests by it: a worker killed in this pass must
        // not come back to an earlier chain time, or requests it served could be served again.
        nodes.keep(light);
        self.owner_api.set_chain_time(view.head.timestamp_ms);
        match self.certificate.keep_current(
            self.identity.identity(),
            &view.worker.evidence,
            view.head.timestamp_ms,
        ) {
            Ok(true) => tracing::info!("renewed the TLS certificate"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot renew the TLS certificate"),
        }
        let epoch = view.head.height / self.epoch_length.max(1);
        let desired = view.desired.clone();
        // Recorded before anything is given: never an older revision again, even after a crash
        // or a restart. A worker that cannot record it gives nothing new this pass.
        if let Err(e) = self.revisions.raise(&view.secret_revisions) {
            tracing::warn!(error = %e, "cannot record the secrets revisions to give; what runs keeps running");
            return Ok(());
        }
        // The report of the epoch that ended goes first: its window is short, and a slow pass
        // over the engine (an image pulled, a crashing app restarted, a loaded machine) must
        // not make the worker miss it and be suspended. It reports what the engine showed at
        // the last pass.
        if epoch > 0 {
            let seen = self.last_instances.clone();
            self.report(light, &view, epoch - 1, &seen).await?;
        }
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
            if let Some(owner) = view.owners.get(&spec.workload) {
                self.owner_api.set_owner(spec.workload, *owner);
            }
        }
        let instances = std::mem::take(&mut pass.instances);
        // Only when the engine was looked at (at most 2 s apart; output that arrived meanwhile
        // waits for the next look), or when the epoch moved on (output is filed by epoch, and
        // old files expire).
        if pass.observed || self.logs_epoch != Some(epoch) {
            self.watch(light, &view, epoch, &instances, &pass.ready)
                .await;
        }
        self.report_failures(light, &view.owners, view.head.height)
            .await?;
        let live: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        self.meter.prune(epoch.saturating_sub(1), &live);
        Ok(())
    }

    /// What the owner API shows, the output collected (sealed to each owner) and usage
    /// sampled, from what the engine showed last.
    async fn watch(
        &mut self,
        light: &LightClient,
        view: &ChainView,
        epoch: u64,
        instances: &[crate::backend::Instance],
        ready: &BTreeSet<crate::backend::Identity>,
    ) {
        let mut statuses: BTreeMap<AppId, AppStatus> = BTreeMap::new();
        for instance in instances {
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
                    ready: ready.contains(&instance.identity),
                });
        }
        for (app, status) in statuses.iter_mut() {
            let (uptime, usage) = self.meter.history(*app);
            status.uptime_bps = uptime;
            status.usage = usage;
        }
        self.owner_api.set_statuses(statuses);
        let sample_usage = self.last_usage.is_none_or(|at| at.elapsed() >= USAGE_EVERY);
        if self.logs_epoch != Some(epoch) {
            // Once an epoch: owners may have published a key since, and old output expires.
            self.owner_keys.clear();
            self.logs.prune(epoch);
            self.logs_epoch = Some(epoch);
        }
        self.workload_owners
            .extend(view.owners.iter().map(|(w, o)| (*w, *o)));
        let present: BTreeSet<Workload> = instances
            .iter()
            .chain(&self.last_instances)
            .map(|i| i.identity.workload)
            .collect();
        self.workload_owners
            .retain(|w, _| present.contains(w) || view.owners.contains_key(w));
        // Removed since the last pass: their last lines are still to be taken.
        let listed: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        let mut gone: Vec<crate::backend::Instance> = std::mem::take(&mut self.last_instances)
            .into_iter()
            .filter(|i| !listed.contains(i.id.as_str()))
            .collect();
        for instance in &mut gone {
            instance.state = InstanceState::Other("removed".into());
        }
        for instance in instances.iter().chain(&gone) {
            let sealing = self.sealing_for(light, instance.identity.workload).await;
            if let Err(e) = self
                .logs
                .collect(self.reconciler.backend(), instance, epoch, sealing.as_ref())
                .await
            {
                tracing::debug!(error = %e, "log collection");
            }
        }
        self.last_instances = instances.to_vec();
        for instance in instances {
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
    }

    /// To whom `workload`'s output is sealed: its owner's sealing key, read through the light
    /// client (a node that swapped it would have the output sealed to itself) once an epoch.
    /// `None` if the owner has published none, or it cannot be read now.
    async fn sealing_for(
        &mut self,
        light: &LightClient,
        workload: Workload,
    ) -> Option<crate::logbook::Sealing> {
        let owner = *self.workload_owners.get(&workload)?;
        let key = match self.owner_keys.get(&owner) {
            Some(key) => *key,
            None => match light.snapshot().sealing_key(&owner).await {
                Ok(key) => {
                    self.owner_keys.insert(owner, key);
                    key
                }
                Err(e) => {
                    tracing::debug!(%owner, error = %e, "cannot read the owner's sealing key now");
                    None
                }
            },
        }?;
        Some(crate::logbook::Sealing {
            genesis_hash: light.genesis_hash(),
            worker: self.id,
            owner,
            owner_key: key,
            worker_secret: self.identity.sealing_secret(),
        })
    }

    /// Tells the chain about apps that keep failing, with their last log lines sealed to the
    /// owner, so that their owners see why (and get their deposit back) instead of paying for
    /// nothing.
    async fn report_failures(
        &mut self,
        light: &LightClient,
        owners: &BTreeMap<Workload, AccountId>,
        observed_at: u64,
    ) -> Result<(), ChainError> {
        for (identity, reason, tail) in self.reconciler.failing() {
            let Workload::App { app } = identity.workload else {
                continue;
            };
            if self.failed_reported.contains(&identity) {
                continue;
            }
            let Some(owner) = owners.get(&identity.workload) else {
                continue;
            };
            // Read through the light client: a node that hid or swapped the owner's key could
            // otherwise have the log sealed to itself.
            let owner_key = match light.snapshot().sealing_key(owner).await {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(%app, error = %e, "could not read the owner's sealing key; retrying");
                    continue;
                }
            };
            // The end of a log is what explains a crash: keep the last bytes that fit.
            let clip = |text: &str, max: usize| {
                let mut start = text.len().saturating_sub(max);
                while !text.is_char_boundary(start) {
                    start += 1;
                }
                text[start..].to_string()
            };
            let reason =
                wetee_types::codec::BoundedString::try_new(clip(&reason, 256)).unwrap_or_default();
            let genesis_hash = light.genesis_hash();
            let binding = wetee_sealing::log_tail::Binding {
                genesis_hash: &genesis_hash,
                app,
                version: identity.version,
                worker: self.id,
                owner,
            };
            let tail = clip(&tail, MAX_LOG_TAIL_BYTES);
            let sealed = match wetee_sealing::log_tail::seal(&binding, owner_key.as_ref(), &tail) {
                // A key that is no X25519 public key: the failure is reported without the log.
                Err(wetee_sealing::SealError::BadPublicKey) => {
                    tracing::warn!(%app, "the owner's sealing key is unusable: reporting without the log");
                    wetee_sealing::log_tail::seal(&binding, None, &tail)
                }
                sealed => sealed,
            };
            let log = match sealed {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!(%app, error = %e, "could not seal the log tail; retrying");
                    continue;
                }
            };
            let subject = wetee_types::transaction::FailureSubject {
                worker: self.id,
                app,
                version: identity.version,
                observed_at,
            };
            // Signed inside the TEE: the operator's account only pays for the transaction.
            let payload = wetee_types::transaction::app_failure_payload(
                &genesis_hash,
                &subject,
                &reason,
                &log.digest,
                &log.sealed,
            );
            let wetee_types::Signature::Ed25519(signature) =
                self.identity.identity().sign(&payload)
            else {
                continue;
            };
            let call = Call::Workers(WorkersCall::ReportAppFailure {
                worker: self.id,
                app,
                version: identity.version,
                observed_at,
                reason: reason.clone(),
                log_digest: log.digest,
                log_tail: log.sealed,
                signature,
            });
            match light.rpc().send(&self.operator, call, |_| {}).await {
                Ok(_) => {
                    self.failed_reported.insert(identity);
                    tracing::warn!(%app, reason = reason.as_str(), "reported the app as failed");
                }
                // The chain refused it (the app moved on, or stopped): nothing to retry.
                Err(e @ wetee_client::rpc::ClientError::Failed { .. }) => {
                    self.failed_reported.insert(identity);
                    tracing::warn!(%app, error = %e, "the chain refused the failure report");
                }
                // Retried at the next pass, signed again as of then.
                Err(e) => tracing::warn!(%app, error = %e, "could not report the app as failed"),
            }
        }
        Ok(())
    }

    /// Submits the report of `epoch` if the chain has not had one yet.
    async fn report(
        &mut self,
        light: &LightClient,
        view: &ChainView,
        epoch: u64,
        instances: &[crate::backend::Instance],
    ) -> Result<(), ChainError> {
        let desired = &view.desired;
        if view
            .worker
            .last_report_epoch
            .is_some_and(|last| last >= epoch)
        {
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
            let assigned = view.runs.get(&(task, run)).and_then(|r| r.assigned_at);
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
        report.evidence =
            evidence_if_due(view, &self.identity, &light.genesis_hash(), &self.config)?;
        // A due refresh goes out even in an otherwise empty report: an expired attestation
        // would stop placements.
        if report.evidence.is_none() && !is_worth_sending(&report) {
            return Ok(());
        }
        let signature = self
            .identity
            .identity()
            .sign(&report.signing_payload(&light.genesis_hash()));
        let signed = SignedWorkReport {
            report,
            signature: *signature.as_bytes(),
        };
        let apps = signed.report.apps.len();
        let runs = signed.report.runs.len();
        let call = Call::Workers(WorkersCall::SubmitWorkReport { report: signed });
        let sent = Instant::now();
        let outcome = light.rpc().send(&self.operator, call, |_| {}).await;
        let waited_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(_) => tracing::info!(epoch, apps, runs, waited_ms, "work report accepted"),
            Err(e) => {
                tracing::warn!(epoch, waited_ms, error = %e, "work report refused");
                self.refused_report = Some(digest);
            }
        }
        Ok(())
    }
}

/// The nodes a worker follows, in order of preference, and what it already verified: a node
/// caught lying is left for the next one, and no node may take the worker back behind a
/// header it accepted.
struct Nodes {
    urls: Vec<String>,
    next: usize,
    trust: Trust,
    highest: Option<VerifiedHead>,
    /// Where the highest verified header is kept across restarts.
    highest_file: std::path::PathBuf,
    /// Nodes dropped for answers that failed verification, over the worker's life.
    refused: u64,
}

/// The highest verified header, as kept on disk: a restarted worker is not taken back to an
/// older state (and its older secrets records) by a node serving one.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptHead {
    genesis_hash: wetee_types::Hash,
    height: u64,
    hash: wetee_types::Hash,
    state_root: wetee_types::Hash,
    timestamp_ms: u64,
}

impl Nodes {
    fn new(first: &str, more: &[String], trust: Trust, data_dir: &std::path::Path) -> Nodes {
        let mut urls = vec![first.to_string()];
        for url in more {
            if !urls.contains(url) {
                urls.push(url.clone());
            }
        }
        Nodes {
            urls,
            next: 0,
            trust,
            highest: None,
            highest_file: data_dir.join("verified-head.json"),
            refused: 0,
        }
    }

    /// The highest header this worker verified before, on this chain.
    fn load_highest(&mut self, genesis: wetee_types::Hash) {
        let kept = std::fs::read(&self.highest_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<KeptHead>(&bytes).ok())
            .filter(|kept| kept.genesis_hash == genesis);
        if let Some(kept) = kept {
            self.highest = Some(VerifiedHead {
                height: kept.height,
                hash: kept.hash,
                state_root: kept.state_root,
                timestamp_ms: kept.timestamp_ms,
            });
        }
    }

    /// Keeps what `light` verified, on disk too.
    fn keep(&mut self, light: &LightClient) {
        let before = self.highest.map(|h| h.height);
        self.leave(light);
        let Some(head) = self.highest.filter(|h| Some(h.height) != before) else {
            return;
        };
        let kept = KeptHead {
            genesis_hash: light.genesis_hash(),
            height: head.height,
            hash: head.hash,
            state_root: head.state_root,
            timestamp_ms: head.timestamp_ms,
        };
        let temporary = self.highest_file.with_extension("json.new");
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &self.highest_file));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep the highest verified header");
        }
    }

    /// Connects to the next node in turn.
    async fn connect(&mut self) -> Result<LightClient, ChainError> {
        let url = self.urls[self.next % self.urls.len()].clone();
        self.next = (self.next + 1) % self.urls.len();
        match LightClient::connect(&url, &self.trust).await {
            Ok(light) => {
                if let Some(head) = self.highest {
                    light.remember(head);
                }
                Ok(light)
            }
            Err(e) => {
                let error = ChainError::from(e);
                self.note(&error);
                Err(error)
            }
        }
    }

    /// Connects to the first node, in turn, that serves the trusted chain.
    async fn connect_any(&mut self) -> Result<LightClient, ChainError> {
        let mut last = None;
        for _ in 0..self.urls.len() {
            match self.connect().await {
                Ok(light) => return Ok(light),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ChainError::Unexpected("no node to follow".into())))
    }

    /// Keeps what `light` verified, before leaving it.
    fn leave(&mut self, light: &LightClient) {
        if let Some(head) = light.highest()
            && self.highest.is_none_or(|h| h.height < head.height)
        {
            self.highest = Some(head);
        }
    }

    fn note(&mut self, error: &ChainError) {
        if error.is_untrusted() {
            self.refused = self.refused.saturating_add(1);
            tracing::warn!(error = %error, refused_nodes = self.refused, "dropped a node whose answer failed verification");
        }
    }
}

/// Runs the worker until `stop` completes. `started` hears once it is registered. `rpc` is the
/// first node to follow; `config.chain` names the chain and further nodes; `config.keys` the
/// store of its keys.
pub async fn run(
    config: WorkerConfig,
    rpc: &str,
    operator: Keypair,
    stop: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), AgentError> {
    crate::hardening::harden_process()?;
    let lock = DataDirLock::acquire(&config.data_dir)?;
    let keys = crate::keys::open(
        config.key_store(),
        config.profile.tee_kinds,
        &config.data_dir,
    )?;
    run_locked(config, rpc, operator, keys.as_ref(), lock, stop, started).await
}

/// [`run`], with the keys kept in `keys`.
pub async fn run_with_keys(
    config: WorkerConfig,
    rpc: &str,
    operator: Keypair,
    keys: &dyn KeyStore,
    stop: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), AgentError> {
    crate::hardening::harden_process()?;
    let lock = DataDirLock::acquire(&config.data_dir)?;
    run_locked(config, rpc, operator, keys, lock, stop, started).await
}

/// The worker, once its process is hardened and its data directory is its own (until `_lock`
/// is dropped, when it stops).
async fn run_locked(
    config: WorkerConfig,
    rpc: &str,
    operator: Keypair,
    keys: &dyn KeyStore,
    _lock: DataDirLock,
    stop: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), AgentError> {
    let trust = config
        .chain
        .trust()
        .map_err(|e| AgentError::Chain(ChainError::Unexpected(e)))?;
    let mut nodes = Nodes::new(rpc, &config.chain.rpc, trust, &config.data_dir);
    let mut identity = WorkerIdentity::open(keys)?;
    let key_protection = keys.protection();
    match key_protection {
        Protection::Unprotected => tracing::warn!(
            "the worker's keys are in a plain file the operator can read: fine for the \
             simulated TEE only"
        ),
        protection => tracing::info!(%protection, "the worker's keys"),
    }
    let scope = Registration::scope(&config.data_dir, &identity.keys().identity);
    let revisions = SecretRevisions::load(&config.data_dir).map_err(|error| AgentError::Io {
        what: "the secrets revisions record".into(),
        error,
    })?;
    let backend = match config.backend.kind {
        BackendKind::Docker => DockerBackend::connect(config.backend.socket.as_deref(), &scope)
            .await?
            .with_secrets_dir(&config.backend.secrets_dir)?
            .with_pids_limit(config.backend.pids_limit),
    };
    let mut config = config;
    if !backend.caps_disk() && config.profile.capacity.disk_gib > 0 {
        tracing::warn!(
            configured_gib = config.profile.capacity.disk_gib,
            "the container engine cannot cap a container's disk (overlay needs XFS with project \
             quotas): the worker offers no disk"
        );
        config.profile.capacity.disk_gib = 0;
    }
    let engine = backend.describe().await?;
    let layout = Layout {
        tee: evidence_provider(&config)?.kind(),
        data_dir: &config.data_dir,
        engine: EngineEndpoint::of(
            config.backend.socket.as_deref(),
            std::env::var("DOCKER_HOST").ok().as_deref(),
        ),
        engine_storage: backend.storage_root().await?,
        sys_dev_block: std::path::Path::new(crate::keys::disk::SYS_DEV_BLOCK),
        swaps: &std::fs::read_to_string("/proc/swaps").unwrap_or_default(),
    };
    let mut refusals: Vec<String> = secrets_refusal(&layout).into_iter().collect();
    // Before any evidence is produced (registration below), so that it shows the configuration.
    if layout.tee == wetee_types::TeeKind::Tdx {
        let register = crate::rtmr::SysfsRegister(std::path::Path::new(crate::rtmr::RTMR3));
        match config
            .text_digest
            .map(|digest| crate::rtmr::measure(&register, &digest))
        {
            Some(Ok(measured)) => tracing::info!(?measured, "the configuration is in RTMR3"),
            Some(Err(why)) => refusals.push(format!("the configuration is not measured: {why}")),
            None => refusals.push(
                "the configuration was not read from a file, so RTMR3 cannot measure it".into(),
            ),
        }
    }
    if !refusals.is_empty() {
        let reason = refusals.join("; ");
        tracing::warn!(%reason, "the worker gives no secrets to containers");
        identity.refuse_secrets(reason);
    }
    let listener = tokio::net::TcpListener::bind(config.ingress.listen)
        .await
        .map_err(|error| AgentError::Io {
            what: format!("the ingress cannot listen on {}", config.ingress.listen),
            error,
        })?;
    let ingress = listener.local_addr().unwrap_or(config.ingress.listen);
    let logs_dir = config.data_dir.join("logs");
    let logs =
        LogBook::open(&logs_dir, config.logs, &identity.sealing_secret()).map_err(|error| {
            AgentError::Io {
                what: format!("the log directory {}", logs_dir.display()),
                error,
            }
        })?;
    let light = nodes.connect_any().await?;
    nodes.load_highest(light.genesis_hash());
    if let Some(head) = nodes.highest {
        light.remember(head);
    }
    let id = ensure_registered(&light, &operator, &identity, &config, &scope).await?;
    let (chain_config, params) = light.snapshot().params().await.map_err(ChainError::from)?;
    let epoch_length = chain_config.epoch_length;
    // A pass waits for the engine at most an eighth of an epoch: the report of the epoch that
    // ended goes out at the next pass, and must not miss its window behind a slow engine.
    let epoch_ms = epoch_length.saturating_mul(params.target_block_time_ms);
    let pass_budget = Duration::from_millis(epoch_ms / 8).max(MIN_PASS_BUDGET);
    let routes = Arc::new(Routes::default());
    let owner_api = Arc::new(OwnerApi::new(
        light.genesis_hash(),
        id,
        config.profile.endpoint.as_str(),
        light.highest().map_or(0, |head| head.timestamp_ms),
        logs_dir.clone(),
    ));
    let evidence = registered_evidence(&light, id).await?;
    let chain_time = light.highest().map_or(0, |head| head.timestamp_ms);
    let certificate = ServingCertificate::issue(
        identity.identity(),
        light.genesis_hash(),
        &evidence,
        chain_time,
    )?;
    let ingress_api = Ingress::new(
        Arc::clone(&routes),
        &config.ingress.domain,
        config.ingress.limits,
    )
    .with_owner_api(Arc::clone(&owner_api))
    .with_tls(certificate.server_config()?);
    let (stop_ingress, ingress_stop) = tokio::sync::oneshot::channel::<()>();
    let mut serving = AbortOnDrop(tokio::spawn(Arc::new(ingress_api).serve(
        listener,
        async move {
            let _ = ingress_stop.await;
        },
    )));
    started(Running {
        worker: id,
        identity: identity.identity().account_id(),
        engine,
        ingress,
        key_protection,
        secrets_refusal: identity.secrets_refusal().map(str::to_string),
    });
    let mut worker = Worker {
        id,
        config: config.clone(),
        identity,
        operator,
        reconciler: Reconciler::new(backend)
            .with_routes(routes)
            .with_pass_budget(pass_budget),
        meter: Meter::default(),
        logs,
        owner_keys: BTreeMap::new(),
        workload_owners: BTreeMap::new(),
        logs_epoch: None,
        epoch_length,
        last_usage: None,
        last_instances: Vec::new(),
        owner_api,
        failed_reported: BTreeSet::new(),
        refused_report: None,
        revisions,
        proven_apps: ProvenApps::default(),
        certificate,
    };
    let mut light = Some(light);
    let stop = stop.fuse();
    futures::pin_mut!(stop);
    let followed: Result<(), AgentError> = async {
        loop {
            let Some(connected) = light.as_ref() else {
                // Reconnect (to the next node), keeping what runs running meanwhile.
                match nodes.connect().await {
                    Ok(fresh) => light = Some(fresh),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot follow a node; retrying");
                        futures::select! {
                            _ = tokio::time::sleep(RESYNC).fuse() => {}
                            _ = stop => return Ok(()),
                        }
                    }
                }
                continue;
            };
            // New heads only wake the worker up: what it acts on is read and verified each pass.
            let mut heads = match connected.rpc().finalized_heads().await {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the node");
                    nodes.leave(connected);
                    light = None;
                    continue;
                }
            };
            loop {
                if let Err(e) = worker.tick(connected, &mut nodes).await {
                    nodes.note(&e);
                    tracing::warn!(error = %e, "cannot read the chain; what runs keeps running");
                    nodes.leave(connected);
                    light = None;
                    // A node that keeps failing the same way is not asked again at once.
                    futures::select! {
                        _ = tokio::time::sleep(RESYNC).fuse() => {}
                        _ = stop => return Ok(()),
                    }
                    break;
                }
                nodes.keep(connected);
                futures::select! {
                    head = heads.next().fuse() => match head {
                        Some(Ok(_)) => {}
                        _ => {
                            nodes.leave(connected);
                            light = None;
                            break;
                        }
                    },
                    _ = tokio::time::sleep(RESYNC).fuse() => {}
                    _ = stop => return Ok(()),
                }
            }
        }
    }
    .await;
    // Requests under way get a few seconds to finish before the worker stops.
    let _ = stop_ingress.send(());
    let _ = (&mut serving.0).await;
    followed
}
