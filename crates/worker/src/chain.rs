//! The worker's dealings with the chain: registering and staking itself, and reading what is
//! assigned to it. Everything is read from finalized state through the node's RPC.

use wetee_client::rpc::{Client, ClientError};
use wetee_types::records::{RunStatus, WorkerStatus};
use wetee_types::transaction::WorkersCall;
use wetee_types::{Call, Event, Keypair, WorkerId, Workload};

use crate::backend::InstanceSpec;
use crate::config::WorkerConfig;
use crate::identity::WorkerIdentity;

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
            // Development chains only: production parameters refuse the simulated TEE.
            let genesis = client.genesis_hash();
            let attestation = identity
                .attestation(
                    &wetee_attest::provider::Simulated,
                    &genesis,
                    &operator.account_id(),
                    &genesis.0,
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

/// Every container that should run on `worker`, from finalized state alone.
pub async fn desired_instances(
    client: &Client,
    worker: WorkerId,
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
                for replica in 0..app.spec.replicas {
                    desired.push(InstanceSpec {
                        workload,
                        version: app.version,
                        replica,
                        generation: app.restarts,
                        container: app.spec.container.clone(),
                        health: app.spec.health.clone(),
                        timeout: None,
                        extra_env: Vec::new(),
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
                    extra_env: Vec::new(),
                });
            }
        }
    }
    Ok(desired)
}
