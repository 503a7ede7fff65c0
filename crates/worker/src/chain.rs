//! The worker's dealings with the chain: registering and staking itself, and reading what is
//! assigned to it. Everything is read from finalized state through the node's RPC.

use wetee_client::rpc::{Client, ClientError};
use wetee_types::records::{RunStatus, WorkerStatus};
use wetee_types::transaction::WorkersCall;
use wetee_types::{Call, Event, Keypair, WorkerId, Workload};

use crate::backend::{InstanceSpec, SecretFile};
use crate::config::WorkerConfig;
use crate::identity::{Nonce, WorkerIdentity};

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The chain's state is not what the worker expects.
    #[error("{0}")]
    Unexpected(String),
}

/// Finds this worker on chain by its identity key, registering, staking and starting it as
/// needed. Returns its id. Safe to call at every start: it only does what is missing.
pub async fn ensure_registered(
    client: &Client,
    operator: &Keypair,
    identity: &WorkerIdentity,
    config: &WorkerConfig,
) -> Result<WorkerId, ChainError> {
    let mine = identity.keys().identity;
    let existing = client
        .workers()
        .await?
        .into_iter()
        .find(|worker| worker.keys.identity == mine);
    let mut worker = match existing {
        Some(worker) => worker,
        None => {
            let genesis = client.genesis_hash();
            let provider = evidence_provider(config)?;
            let attestation = identity
                .attestation(
                    provider.as_ref(),
                    &genesis,
                    &operator.account_id(),
                    &latest_nonce(client).await?,
                )
                .map_err(|e| ChainError::Unexpected(e.to_string()))?;
            let call = Call::Workers(WorkersCall::Register {
                profile: config.profile.clone(),
                attestation,
            });
            let finalized = client.send(operator, call, |_| {}).await?;
            let id = finalized
                .receipt
                .events
                .iter()
                .find_map(|event| match event {
                    Event::WorkerRegistered { worker, .. } => Some(*worker),
                    _ => None,
                })
                .ok_or_else(|| {
                    ChainError::Unexpected("registration emitted no WorkerRegistered".into())
                })?;
            tracing::info!(worker = %id, "registered");
            client
                .worker(id)
                .await?
                .ok_or_else(|| ChainError::Unexpected(format!("worker {id} vanished")))?
        }
    };
    if worker.operator != operator.account_id() {
        return Err(ChainError::Unexpected(format!(
            "worker {} with this identity key is operated by {}, not by the signing key",
            worker.id, worker.operator
        )));
    }
    let params = client.params().await?.params;
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
pub async fn evidence_if_due(
    client: &Client,
    worker: WorkerId,
    identity: &WorkerIdentity,
    config: &WorkerConfig,
) -> Result<Option<wetee_types::records::Evidence>, ChainError> {
    let Some(record) = client.worker(worker).await? else {
        return Ok(None);
    };
    let head = client.header(None).await?;
    let attested = record.attested;
    let lifetime = attested.expires_at_ms.saturating_sub(attested.fresh_at_ms);
    let left = attested
        .expires_at_ms
        .saturating_sub(head.header.timestamp_ms);
    if left > lifetime / 2 {
        return Ok(None);
    }
    let nonce = Nonce {
        height: head.header.height,
        hash: head.hash,
    };
    let provider = evidence_provider(config)?;
    identity
        .evidence(provider.as_ref(), &client.genesis_hash(), &nonce)
        .map(Some)
        .map_err(|e| ChainError::Unexpected(e.to_string()))
}

/// The app's secrets opened with this worker's sealing key, and their revision; `None` when one
/// does not open (sealed to another key, altered, or relabelled).
async fn open_secrets(
    client: &Client,
    app: &wetee_types::records::App,
    identity: &WorkerIdentity,
) -> Result<Option<(Vec<SecretFile>, u32)>, ChainError> {
    if app.spec.container.secrets.is_empty() {
        return Ok(Some((Vec::new(), 0)));
    }
    let Some(record) = client.app_secrets(app.id).await? else {
        return Ok(None);
    };
    let genesis = client.genesis_hash();
    let mut files = Vec::new();
    for name in app.spec.container.secrets.iter() {
        let Some(sealed) = record.get(name) else {
            return Ok(None);
        };
        let id = wetee_sealing::SecretId {
            genesis_hash: &genesis,
            app: app.id,
            name,
            revision: sealed.revision,
        };
        let aad = wetee_sealing::for_worker(&id, record.worker, &record.sealing_key);
        match identity.open_secret(&aad, &sealed.for_worker) {
            Ok(value) => files.push(SecretFile {
                name: name.to_string(),
                value,
            }),
            Err(e) => {
                tracing::warn!(app = %app.id, secret = %name.as_str(), error = %e, "a secret does not open; the app waits");
                return Ok(None);
            }
        }
    }
    Ok(Some((files, record.revision)))
}

/// The latest finalized block, as the nonce of fresh evidence.
pub async fn latest_nonce(client: &Client) -> Result<Nonce, ChainError> {
    let head = client.header(None).await?;
    Ok(Nonce {
        height: head.header.height,
        hash: head.hash,
    })
}

/// Every container that should run on `worker`, from finalized state alone.
///
/// Secrets are opened here, inside the worker's TEE, with its sealing key: an app whose secrets
/// do not open is left out (and its secret's name, never its value, logged).
pub async fn desired_instances(
    client: &Client,
    worker: WorkerId,
    identity: &WorkerIdentity,
) -> Result<Vec<InstanceSpec>, ChainError> {
    let mut desired = Vec::new();
    for workload in client.workloads(worker).await? {
        match workload {
            Workload::App { app } => {
                let Some(app) = client.app(app).await? else {
                    continue;
                };
                let placed_here = app.placement.as_ref().is_some_and(|p| p.worker == worker);
                if !placed_here || !matches!(app.status, wetee_types::records::AppStatus::Running) {
                    continue;
                }
                let (secrets, revision) = match open_secrets(client, &app, identity).await? {
                    Some(opened) => opened,
                    None => continue,
                };
                for replica in 0..app.spec.replicas {
                    desired.push(InstanceSpec {
                        workload,
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
            Workload::TaskRun { task, run } => {
                let runs = client.task_runs(task).await?;
                let Some(record) = runs.iter().find(|r| r.run == run) else {
                    continue;
                };
                if record.worker != Some(worker) || record.status != RunStatus::Assigned {
                    continue;
                }
                let versions = client.task_versions(task).await?;
                let Some(version) = versions.iter().find(|v| v.version == record.version) else {
                    continue;
                };
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
        }
    }
    Ok(desired)
}
