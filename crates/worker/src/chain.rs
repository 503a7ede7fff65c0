//! The worker's dealings with the chain: registering and staking itself, and reading what is
//! assigned to it. Everything it acts on is read through the light client: final headers
//! certified by the chain's validators, and state values proven against them, all of one pass
//! at one height ([`ChainView`]). A node that lies is caught, never believed.

use std::collections::BTreeMap;

use wetee_client::light::{LightClient, LightError, Snapshot, VerifiedHead};
use wetee_client::rpc::ClientError;
use wetee_types::codec::decode;
use wetee_types::records::{
    App, AppSecrets, AppStatus, RunStatus, TaskRun, Worker, WorkerStatus, app_stamp,
};
use wetee_types::transaction::WorkersCall;
use wetee_types::{AccountId, AppId, Call, Hash, Keypair, TaskId, WorkerId, Workload};

use crate::backend::{InstanceSpec, SecretFile};
use crate::config::WorkerConfig;
use crate::identity::{Nonce, WorkerIdentity};
use crate::registration::Registration;
use crate::revisions::SecretRevisions;

/// How many times a pass starts over when the chain moves on while it reads.
const VIEW_ATTEMPTS: usize = 5;

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A read failed, or the node's answer failed verification.
    #[error(transparent)]
    Light(#[from] LightError),
    /// The chain's state is not what the worker expects.
    #[error("{0}")]
    Unexpected(String),
}

impl ChainError {
    /// Whether the node was caught answering what the chain's validators did not certify.
    pub fn is_untrusted(&self) -> bool {
        matches!(self, ChainError::Light(LightError::Untrusted { .. }))
    }
}

/// This worker's record, read through the light client.
async fn own_record(
    snapshot: &mut Snapshot<'_>,
    identity: &WorkerIdentity,
) -> Result<Option<Worker>, ChainError> {
    let mine = identity.keys().identity;
    let Some(id) = snapshot.worker_by_identity(&mine).await? else {
        return Ok(None);
    };
    let worker = snapshot.worker(id).await?.ok_or_else(|| {
        ChainError::Unexpected(format!("worker {id} is indexed but has no record"))
    })?;
    if worker.keys.identity != mine {
        return Err(ChainError::Unexpected(format!(
            "worker {id} does not hold this worker's identity key"
        )));
    }
    Ok(Some(worker))
}

/// The evidence the chain holds for `worker`, proven.
pub async fn registered_evidence(
    light: &LightClient,
    worker: WorkerId,
) -> Result<wetee_types::records::Evidence, ChainError> {
    let record = consistent(light, |mut snapshot| async move {
        Ok(snapshot.worker(worker).await?)
    })
    .await?;
    record
        .map(|worker| worker.evidence)
        .ok_or_else(|| ChainError::Unexpected(format!("worker {worker} has no record")))
}

/// Reads with `read` from fresh snapshots until one pass reads at one height.
async fn consistent<'a, T, F, Fut>(light: &'a LightClient, mut read: F) -> Result<T, ChainError>
where
    F: FnMut(Snapshot<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ChainError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read(light.snapshot()).await {
            Err(ChainError::Light(LightError::Moved { .. })) if attempt < VIEW_ATTEMPTS => {}
            other => return other,
        }
    }
}

/// Finds this worker on chain by its identity key, registering, staking and starting it as
/// needed. Returns its id. Safe to call at every start: it only does what is missing.
pub async fn ensure_registered(
    light: &LightClient,
    operator: &Keypair,
    identity: &WorkerIdentity,
    config: &WorkerConfig,
    scope: &str,
) -> Result<WorkerId, ChainError> {
    let client = light.rpc();
    let existing = consistent(light, |mut snapshot| async move {
        own_record(&mut snapshot, identity).await
    })
    .await?;
    let kept = Registration::load(&config.data_dir)
        .filter(|kept| kept.genesis_hash == light.genesis_hash());
    let mut worker = match (existing, &kept) {
        (Some(worker), _) => worker,
        // New keys for a worker registered before: they replace the old ones on chain.
        (None, Some(kept)) => rotate_keys(light, operator, identity, config, kept.worker).await?,
        (None, None) => {
            let attestation = fresh_attestation(light, operator, identity, config).await?;
            let call = Call::Workers(WorkersCall::Register {
                profile: config.profile.clone(),
                attestation,
            });
            client.send(operator, call, |_| {}).await?;
            // What the node said the registration emitted is not proof: the state is.
            let registered = consistent(light, |mut snapshot| async move {
                own_record(&mut snapshot, identity).await
            })
            .await?
            .ok_or_else(|| {
                ChainError::Unexpected("registered, yet no worker holds this identity key".into())
            })?;
            tracing::info!(worker = %registered.id, "registered");
            registered
        }
    };
    if worker.operator != operator.account_id() {
        return Err(ChainError::Unexpected(format!(
            "worker {} with this identity key is operated by {}, not by the signing key",
            worker.id, worker.operator
        )));
    }
    let registration = Registration {
        genesis_hash: light.genesis_hash(),
        worker: worker.id,
        scope: scope.to_string(),
    };
    if kept.as_ref() != Some(&registration)
        && let Err(e) = registration.save(&config.data_dir)
    {
        // Only a later key rotation needs it; the worker runs without.
        tracing::warn!(error = %e, "cannot keep the registration");
    }
    if worker.profile != config.profile {
        // The offer follows worker.toml and what the engine can enforce (no disk where it
        // cannot cap it). Refused while placed workloads need the old offer: it stays.
        let call = Call::Workers(WorkersCall::Update {
            worker: worker.id,
            profile: config.profile.clone(),
            attestation: None,
        });
        match client.send(operator, call, |_| {}).await {
            Ok(_) => {
                tracing::info!(worker = %worker.id, "the offer on chain now matches the configuration");
                worker.profile = config.profile.clone();
            }
            Err(error) => {
                tracing::warn!(worker = %worker.id, %error, "the offer on chain differs from the configuration and cannot be changed now");
            }
        }
    }
    let (_, params) = consistent(
        light,
        |mut snapshot| async move { Ok(snapshot.params().await?) },
    )
    .await?;
    let required = params
        .required_stake(worker.profile.level)
        .ok_or_else(|| ChainError::Unexpected("the required stake overflows".into()))?;
    let target = config.stake.max(required);
    if let Some(missing) = target.checked_sub(worker.stake).filter(|m| m.0 > 0) {
        let call = Call::Workers(WorkersCall::Stake {
            worker: worker.id,
            amount: missing,
        });
        client.send(operator, call, |_| {}).await?;
        tracing::info!(worker = %worker.id, stake = %target, "staked");
    }
    if matches!(
        worker.status,
        WorkerStatus::Registered | WorkerStatus::Stopped | WorkerStatus::Suspended
    ) {
        let call = Call::Workers(WorkersCall::Start { worker: worker.id });
        client.send(operator, call, |_| {}).await?;
        tracing::info!(worker = %worker.id, "started");
        worker.status = WorkerStatus::Started;
    }
    Ok(worker.id)
}

/// `identity`'s keys with fresh evidence bound to the latest final block, for `operator`.
async fn fresh_attestation(
    light: &LightClient,
    operator: &Keypair,
    identity: &WorkerIdentity,
    config: &WorkerConfig,
) -> Result<wetee_types::records::Attestation, ChainError> {
    let provider = evidence_provider(config)?;
    identity
        .attestation(
            provider.as_ref(),
            &light.genesis_hash(),
            &operator.account_id(),
            &latest_nonce(light).await?,
        )
        .map_err(|e| ChainError::Unexpected(e.to_string()))
}

/// Replaces the keys of `worker` (this operator's, registered before from this data directory)
/// with `identity`'s, with fresh evidence binding them. Secrets sealed to the old sealing key no
/// longer open: their apps wait for their owners to reseal, as after a move.
async fn rotate_keys(
    light: &LightClient,
    operator: &Keypair,
    identity: &WorkerIdentity,
    config: &WorkerConfig,
    worker: WorkerId,
) -> Result<Worker, ChainError> {
    let record = consistent(light, |mut snapshot| async move {
        Ok(snapshot.worker(worker).await?)
    })
    .await?;
    let record = record.ok_or_else(|| {
        ChainError::Unexpected(format!(
            "{} names worker {worker}, which the chain does not have; move it aside to register \
             anew",
            crate::registration::FILE_NAME
        ))
    })?;
    if record.operator != operator.account_id() {
        return Err(ChainError::Unexpected(format!(
            "worker {worker} is operated by {}, not by the signing key",
            record.operator
        )));
    }
    let attestation = fresh_attestation(light, operator, identity, config).await?;
    let call = Call::Workers(WorkersCall::Update {
        worker,
        profile: record.profile.clone(),
        attestation: Some(attestation),
    });
    light.rpc().send(operator, call, |_| {}).await?;
    let rotated = consistent(light, |mut snapshot| async move {
        own_record(&mut snapshot, identity).await
    })
    .await?
    .filter(|rotated| rotated.id == worker)
    .ok_or_else(|| ChainError::Unexpected(format!("worker {worker} does not hold the new keys")))?;
    tracing::warn!(
        worker = %worker,
        "new keys registered in place of the old: apps with secrets wait for their owners to reseal"
    );
    Ok(rotated)
}

/// Where the worker's evidence comes from: the simulated TEE when its profile offers it (dev
/// chains; production policies refuse it), otherwise the TEE this machine has.
pub fn evidence_provider(
    config: &WorkerConfig,
) -> Result<Box<dyn wetee_attest::provider::Provider>, ChainError> {
    if config
        .profile
        .tee_kinds
        .contains(wetee_types::TeeKind::Simulated)
    {
        return Ok(Box::new(wetee_attest::provider::Simulated));
    }
    wetee_attest::provider::detect().ok_or_else(|| {
        ChainError::Unexpected(
            "no TEE found (neither Gramine's /dev/attestation nor configfs-tsm): run the worker \
             inside a TEE, or offer the simulated TEE on a development chain"
                .into(),
        )
    })
}

/// Fresh evidence when the worker's attestation has lived half its lifetime: it rides along
/// with the next work report, so the attestation never expires while the worker runs.
pub fn evidence_if_due(
    view: &ChainView,
    identity: &WorkerIdentity,
    genesis_hash: &wetee_types::Hash,
    config: &WorkerConfig,
) -> Result<Option<wetee_types::records::Evidence>, ChainError> {
    let attested = view.worker.attested;
    let lifetime = attested.expires_at_ms.saturating_sub(attested.fresh_at_ms);
    let left = attested
        .expires_at_ms
        .saturating_sub(view.head.timestamp_ms);
    if left > lifetime / 2 {
        return Ok(None);
    }
    let nonce = Nonce {
        height: view.head.height,
        hash: view.head.hash,
    };
    let provider = evidence_provider(config)?;
    identity
        .evidence(provider.as_ref(), genesis_hash, &nonce)
        .map(Some)
        .map_err(|e| ChainError::Unexpected(e.to_string()))
}

/// The app's secrets opened with this worker's sealing key, and their revision; `None` when
/// they may not be given to this app's containers: not signed by the app's owner, not for this
/// worker, not for this image, older than a revision given before, or one does not open (sealed
/// to another key, altered, or relabelled). Who the secrets are for is this worker's own
/// identity, never the record's say.
pub fn open_secrets(
    app: &App,
    record: Option<&wetee_types::records::AppSecrets>,
    worker: WorkerId,
    identity: &WorkerIdentity,
    genesis: &wetee_types::Hash,
    revisions: &SecretRevisions,
) -> Option<(Vec<SecretFile>, u32)> {
    if app.spec.container.secrets.is_empty() {
        return Some((Vec::new(), 0));
    }
    let record = record?;
    let refuse = |why: &str| {
        tracing::warn!(app = %app.id, revision = record.revision, "{why}; the app waits");
        None
    };
    if let Some(why) = identity.secrets_refusal() {
        return refuse(why);
    }
    if !record.signed_by(&app.owner, genesis, app.id) {
        return refuse("the app's secrets are not signed by its owner");
    }
    if record.worker != worker {
        return refuse("the app's secrets are sealed for another worker");
    }
    if !record.allows_image(&app.spec.container.image.digest) {
        return refuse("the app's owner did not allow its image to receive its secrets");
    }
    if !revisions.allows(app.id, record.revision) {
        return refuse("the app's secrets are older than a revision this worker gave before");
    }
    let sealing_key = identity.keys().sealing;
    let mut files = Vec::new();
    for name in app.spec.container.secrets.iter() {
        let sealed = record.get(name)?;
        let id = wetee_sealing::SecretId {
            genesis_hash: genesis,
            app: app.id,
            name,
            revision: sealed.revision,
        };
        let aad = wetee_sealing::for_worker(&id, worker, &sealing_key);
        match identity.open_secret(&aad, &sealed.for_worker) {
            Ok(value) => files.push(SecretFile {
                name: name.to_string(),
                value,
            }),
            Err(e) => {
                tracing::warn!(app = %app.id, secret = %name.as_str(), error = %e, "a secret does not open; the app waits");
                return None;
            }
        }
    }
    Some((files, record.revision))
}

/// The latest final block, verified, as the nonce of fresh evidence.
pub async fn latest_nonce(light: &LightClient) -> Result<Nonce, ChainError> {
    let head = light.finalized_head().await?;
    Ok(Nonce {
        height: head.height,
        hash: head.hash,
    })
}

/// What one pass of the worker acts on: the chain's state at one final height, verified.
#[derive(Debug, Clone)]
pub struct ChainView {
    /// The header it was read at.
    pub head: VerifiedHead,
    /// This worker's record.
    pub worker: Worker,
    /// Every container that should run here, secrets opened.
    pub desired: Vec<InstanceSpec>,
    /// The owner of each workload placed here.
    pub owners: BTreeMap<Workload, AccountId>,
    /// The task runs placed here.
    pub runs: BTreeMap<(TaskId, u32), TaskRun>,
    /// The secrets revision of each app whose secrets `desired` carries.
    pub secret_revisions: BTreeMap<wetee_types::AppId, u32>,
    /// The records of the apps placed here, for the next pass.
    pub apps: ProvenApps,
    /// How many apps' records this pass read (the others were unchanged).
    pub apps_read: usize,
}

/// An app's records as proven at some state, and their stamp.
#[derive(Debug, Clone)]
struct ProvenApp {
    stamp: Hash,
    app: App,
    secrets: Option<AppSecrets>,
}

/// The records of the apps placed on this worker, proven at an earlier pass. The assignment
/// list carries each app's stamp (`wetee_types::records::app_stamp`), proven with the list at
/// every pass: while it is the one these records give, nothing the worker acts on changed, and
/// they are used without being read again. What a pass reads then follows what changed, not
/// how many apps the worker runs.
#[derive(Debug, Default, Clone)]
pub struct ProvenApps(BTreeMap<AppId, ProvenApp>);

impl ProvenApps {
    /// How many apps' records are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads what this worker should run, from one verified state of the chain, reusing the app
/// records of `known` whose stamps did not change (pass the previous view's `apps`).
///
/// Secrets are opened here, inside the worker's TEE, with its sealing key: an app whose secrets
/// do not open is left out (and its secret's name, never its value, logged).
pub async fn read_view(
    light: &LightClient,
    worker: WorkerId,
    identity: &WorkerIdentity,
    revisions: &SecretRevisions,
    known: &ProvenApps,
) -> Result<ChainView, ChainError> {
    consistent(light, |snapshot| {
        view_at(snapshot, light, (worker, identity), revisions, known)
    })
    .await
}

/// The records of `assigned` apps: those of `known` whose stamp is the listed one, the others
/// read in `snapshot`. Returns them and how many were read.
async fn app_records(
    snapshot: &mut Snapshot<'_>,
    assigned: &[(AppId, Hash)],
    known: &ProvenApps,
) -> Result<(ProvenApps, usize), ChainError> {
    let stale: Vec<AppId> = assigned
        .iter()
        .filter(|(id, stamp)| known.0.get(id).is_none_or(|k| k.stamp != *stamp))
        .map(|(id, _)| *id)
        .collect();
    let keys: Vec<Vec<u8>> = stale
        .iter()
        .flat_map(|id| {
            [
                wetee_types::state_keys::app(*id),
                wetee_types::state_keys::app_secrets(*id),
            ]
        })
        .collect();
    let values = snapshot.read(&keys).await?;
    let undecodable = |what: &str, id: &AppId| {
        ChainError::Unexpected(format!("app {id}'s {what} does not decode"))
    };
    let mut read = BTreeMap::new();
    for (id, pair) in stale.iter().zip(values.chunks(2)) {
        let [app, secrets] = pair else {
            return Err(ChainError::Unexpected("a short answer".into()));
        };
        let Some(app) = app else { continue };
        let app: App = decode(app).map_err(|_| undecodable("record", id))?;
        let secrets: Option<AppSecrets> = secrets
            .as_ref()
            .map(|bytes| decode(bytes).map_err(|_| undecodable("secrets record", id)))
            .transpose()?;
        read.insert(*id, (app, secrets));
    }
    let mut proven = ProvenApps::default();
    for (id, listed) in assigned {
        let entry = match (known.0.get(id), read.remove(id)) {
            (Some(kept), _) if kept.stamp == *listed => kept.clone(),
            (_, Some((app, secrets))) => {
                let stamp = app_stamp(&app, secrets.as_ref());
                if stamp != *listed {
                    // Both were proven in this state, so the records are right; only the
                    // shortcut is unsafe for this app, and its stored stamp keeps it re-read.
                    tracing::warn!(app = %id, "the app's records do not give its listed stamp");
                }
                ProvenApp {
                    stamp,
                    app,
                    secrets,
                }
            }
            _ => continue,
        };
        proven.0.insert(*id, entry);
    }
    Ok((proven, stale.len()))
}

async fn view_at(
    mut snapshot: Snapshot<'_>,
    light: &LightClient,
    (worker_id, identity): (WorkerId, &WorkerIdentity),
    revisions: &SecretRevisions,
    known: &ProvenApps,
) -> Result<ChainView, ChainError> {
    // One request for both: each answer carries the finality proof.
    let listed = snapshot
        .read(&[
            wetee_types::state_keys::worker(worker_id),
            wetee_types::state_keys::assignments(worker_id),
        ])
        .await?;
    let [worker, assigned] = listed.as_slice() else {
        return Err(ChainError::Unexpected("a short answer".into()));
    };
    let worker: Worker = worker
        .as_deref()
        .map(decode)
        .transpose()
        .map_err(|_| {
            ChainError::Unexpected(format!("worker {worker_id}'s record does not decode"))
        })?
        .ok_or_else(|| ChainError::Unexpected(format!("worker {worker_id} is not on chain")))?;
    let assigned: wetee_types::records::Assignments = assigned
        .as_deref()
        .map(decode)
        .transpose()
        .map_err(|_| {
            ChainError::Unexpected(format!("worker {worker_id}'s assignments do not decode"))
        })?
        .unwrap_or_default();
    if worker.keys.identity != identity.keys().identity {
        return Err(ChainError::Unexpected(format!(
            "worker {worker_id} on chain holds another identity key"
        )));
    }
    if assigned.len() != worker.workloads as usize {
        return Err(ChainError::Unexpected(format!(
            "worker {worker_id} holds {} workloads but lists {}",
            worker.workloads,
            assigned.len()
        )));
    }
    let head = snapshot
        .head()
        .ok_or_else(|| ChainError::Unexpected("a read without a head".into()))?;
    let genesis = light.genesis_hash();

    let app_stamps: Vec<(AppId, Hash)> = assigned
        .iter()
        .filter_map(|a| match a.workload {
            Workload::App { app } => Some((app, a.stamp)),
            Workload::TaskRun { .. } => None,
        })
        .collect();
    let run_ids: Vec<(TaskId, u32)> = assigned
        .iter()
        .filter_map(|a| match a.workload {
            Workload::TaskRun { task, run } => Some((task, run)),
            Workload::App { .. } => None,
        })
        .collect();
    let (apps, apps_read) = app_records(&mut snapshot, &app_stamps, known).await?;
    let run_keys: Vec<Vec<u8>> = run_ids
        .iter()
        .map(|(task, run)| wetee_types::state_keys::task_run(*task, *run))
        .collect();
    let runs: Vec<Option<TaskRun>> = snapshot.get_many(&run_keys).await?;
    let mut task_ids: Vec<TaskId> = run_ids.iter().map(|(task, _)| *task).collect();
    task_ids.dedup();
    let task_keys: Vec<Vec<u8>> = task_ids
        .iter()
        .map(|task| wetee_types::state_keys::task(*task))
        .collect();
    let tasks: Vec<Option<wetee_types::records::Task>> = snapshot.get_many(&task_keys).await?;
    let run_versions: Vec<(TaskId, u32)> = runs
        .iter()
        .flatten()
        .map(|run| (run.task, run.version))
        .collect();
    let version_keys: Vec<Vec<u8>> = run_versions
        .iter()
        .map(|(task, version)| wetee_types::state_keys::task_version(*task, *version))
        .collect();
    let versions: BTreeMap<(TaskId, u32), wetee_types::records::TaskVersion> = run_versions
        .into_iter()
        .zip(snapshot.get_many(&version_keys).await?)
        .filter_map(|(at, version)| Some((at, version?)))
        .collect();

    let mut owners = BTreeMap::new();
    let mut desired = Vec::new();
    let mut given = BTreeMap::new();
    for proven in apps.0.values() {
        let (app, record) = (&proven.app, &proven.secrets);
        owners.insert(Workload::App { app: app.id }, app.owner);
        let placed_here = app
            .placement
            .as_ref()
            .is_some_and(|p| p.worker == worker_id);
        if !placed_here || !matches!(app.status, AppStatus::Running) {
            continue;
        }
        let Some((secrets, revision)) = open_secrets(
            app,
            record.as_ref(),
            worker_id,
            identity,
            &genesis,
            revisions,
        ) else {
            continue;
        };
        if !secrets.is_empty() {
            given.insert(app.id, revision);
        }
        for replica in 0..app.spec.replicas {
            desired.push(InstanceSpec {
                workload: Workload::App { app: app.id },
                version: app.version,
                replica,
                // A new value of a secret needs new containers, like a restart.
                generation: app.restarts.saturating_add(revision),
                container: app.spec.container.clone(),
                health: app.spec.health.clone(),
                timeout: None,
                secrets: secrets.clone(),
            });
        }
    }
    for task in tasks.iter().flatten() {
        for (id, run) in &run_ids {
            if *id == task.id {
                owners.insert(
                    Workload::TaskRun {
                        task: *id,
                        run: *run,
                    },
                    task.owner,
                );
            }
        }
    }
    let mut proven_runs = BTreeMap::new();
    for record in runs.into_iter().flatten() {
        let workload = Workload::TaskRun {
            task: record.task,
            run: record.run,
        };
        let version = versions.get(&(record.task, record.version));
        if record.worker == Some(worker_id)
            && record.status == RunStatus::Assigned
            && let Some(version) = version
        {
            desired.push(InstanceSpec {
                workload,
                version: record.version,
                replica: 0,
                generation: 0,
                container: version.spec.container.clone(),
                health: None,
                timeout: Some(std::time::Duration::from_secs(u64::from(
                    record.timeout_secs,
                ))),
                secrets: Vec::new(),
            });
        }
        proven_runs.insert((record.task, record.run), record);
    }
    Ok(ChainView {
        head,
        worker,
        desired,
        owners,
        runs: proven_runs,
        secret_revisions: given,
        apps,
        apps_read,
    })
}
