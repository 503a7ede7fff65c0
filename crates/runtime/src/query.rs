//! Read-only queries over the state: what the RPC's typed `state_*` methods answer.

use crate::scheduling::{self, Demand};
use crate::state::State;
use crate::storage::{self, keys, scan_prefix};
use wetee_types::codec::{Canonical, decode};
use wetee_types::params::{ChainConfig, Params};
use wetee_types::records::{
    Account, App, AppVersion, Complaint, Lease, Task, TaskRun, TaskVersion, Worker,
};
use wetee_types::{AccountId, AppId, CallError, ComplaintId, Hash, TaskId, WorkerId, Workload};

fn all<T: Canonical>(state: &dyn State, prefix: &[u8]) -> Result<Vec<T>, CallError> {
    scan_prefix(state, prefix)
        .map(|(_, bytes)| decode(&bytes).map_err(CallError::from))
        .collect()
}

/// An account (empty if never used).
pub fn account(state: &dyn State, id: &AccountId) -> Result<Account, CallError> {
    storage::account(state, id)
}

/// The chain parameters.
pub fn params(state: &dyn State) -> Result<Option<Params>, CallError> {
    storage::get(state, keys::PARAMS)
}

/// The fixed chain configuration.
pub fn chain_config(state: &dyn State) -> Result<Option<ChainConfig>, CallError> {
    storage::get(state, keys::CHAIN)
}

/// The genesis hash.
pub fn genesis_hash(state: &dyn State) -> Result<Option<Hash>, CallError> {
    storage::get(state, keys::GENESIS)
}

/// The root key.
pub fn root_key(state: &dyn State) -> Result<Option<AccountId>, CallError> {
    storage::get(state, keys::ROOT)
}

/// The treasury account.
pub fn treasury(state: &dyn State) -> Result<Option<AccountId>, CallError> {
    storage::get(state, keys::TREASURY)
}

/// A worker.
pub fn worker(state: &dyn State, id: WorkerId) -> Result<Option<Worker>, CallError> {
    storage::get(state, &keys::worker(id))
}

/// Every worker, by id.
pub fn workers(state: &dyn State) -> Result<Vec<Worker>, CallError> {
    scheduling::all_workers(state)
}

/// The workloads placed on a worker: what it must run.
pub fn workloads_on(state: &dyn State, id: WorkerId) -> Result<Vec<Workload>, CallError> {
    scheduling::workloads_on(state, id)
}

/// A complaint.
pub fn complaint(state: &dyn State, id: ComplaintId) -> Result<Option<Complaint>, CallError> {
    storage::get(state, &keys::complaint(id))
}

/// An app.
pub fn app(state: &dyn State, id: AppId) -> Result<Option<App>, CallError> {
    storage::get(state, &keys::app(id))
}

/// Every app, by id, optionally only an owner's.
pub fn apps(state: &dyn State, owner: Option<&AccountId>) -> Result<Vec<App>, CallError> {
    let apps: Vec<App> = all(state, keys::APPS)?;
    Ok(apps
        .into_iter()
        .filter(|a| owner.is_none_or(|o| a.owner == *o))
        .collect())
}

/// An account's sealing key, if it published one.
pub fn sealing_key(state: &dyn State, id: &AccountId) -> Result<Option<[u8; 32]>, CallError> {
    crate::storage::sealing_key(state, id)
}

/// Why an app's worker could not run it, if it reported so.
pub fn app_failure(
    state: &dyn State,
    id: AppId,
) -> Result<Option<wetee_types::records::AppFailure>, CallError> {
    crate::storage::app_failure(state, id)
}

/// An app's versions, oldest first.
pub fn app_versions(state: &dyn State, id: AppId) -> Result<Vec<AppVersion>, CallError> {
    all(state, &keys::app_versions(id))
}

/// A task.
pub fn task(state: &dyn State, id: TaskId) -> Result<Option<Task>, CallError> {
    storage::get(state, &keys::task(id))
}

/// Every task, by id, optionally only an owner's.
pub fn tasks(state: &dyn State, owner: Option<&AccountId>) -> Result<Vec<Task>, CallError> {
    let tasks: Vec<Task> = all(state, keys::TASKS)?;
    Ok(tasks
        .into_iter()
        .filter(|t| owner.is_none_or(|o| t.owner == *o))
        .collect())
}

/// A task's versions, oldest first.
pub fn task_versions(state: &dyn State, id: TaskId) -> Result<Vec<TaskVersion>, CallError> {
    all(state, &keys::task_versions(id))
}

/// A task's runs, first first.
pub fn task_runs(state: &dyn State, id: TaskId) -> Result<Vec<TaskRun>, CallError> {
    all(state, &keys::task_runs(id))
}

/// The leases of an app with a worker (open and not yet settled).
pub fn leases(state: &dyn State, worker: WorkerId, app: AppId) -> Result<Vec<Lease>, CallError> {
    all(state, &keys::leases_of(worker, app))
}

pub use wetee_types::rpc::{PendingPlacement, PlacementPreview, PlacementRequest};

/// What creating `request` now would do: the checks `create` makes, then the placement it would
/// get, or the reason it would wait. Nothing is written.
pub fn placement_preview(
    state: &dyn State,
    request: &PlacementRequest,
) -> Result<PlacementPreview, CallError> {
    let params: Params = storage::get(state, keys::PARAMS)?
        .ok_or_else(|| scheduling::state_error("parameters missing"))?;
    let chain: ChainConfig = storage::get(state, keys::CHAIN)?
        .ok_or_else(|| scheduling::state_error("chain configuration missing"))?;
    let attestation = crate::attestation::policy(state)?;
    let rules = scheduling::Rules {
        params: &params,
        attestation: &attestation,
        now_ms: storage::get(state, keys::LAST_BLOCK_TIME)?.unwrap_or_default(),
    };
    let (mut problems, constraints) = match request {
        PlacementRequest::App(spec) => (spec.problems(), &spec.constraints),
        PlacementRequest::Task(spec) => (spec.problems(), &spec.constraints),
    };
    if constraints.tee == wetee_types::TeeKind::Simulated && !attestation.allow_simulated_tee {
        problems.push(wetee_types::manifest::ManifestError::new(
            "placement.tee",
            CallError::SimulatedTeeNotAllowed.to_string(),
        ));
    }
    let refused = PlacementPreview {
        problems,
        worker: None,
        price_per_epoch: None,
        waiting_reason: None,
        min_deposit: None,
    };
    if !refused.problems.is_empty() {
        return Ok(refused);
    }
    let (demand, min_deposit) = match request {
        PlacementRequest::App(spec) => (
            Demand::of_app(spec)?,
            crate::apps::min_deposit(&params, spec),
        ),
        PlacementRequest::Task(spec) => (
            Demand::of_task(spec),
            crate::tasks::min_deposit(&chain, &params, spec)?,
        ),
    };
    let placed = scheduling::best_worker(state, &demand, &rules, None)?;
    let waiting_reason = match placed {
        Some(_) => None,
        None => Some(scheduling::explain(state, &demand, &rules)?),
    };
    Ok(PlacementPreview {
        worker: placed.map(|(worker, _)| worker),
        price_per_epoch: placed.map(|(_, price)| price),
        waiting_reason,
        min_deposit: Some(min_deposit),
        ..refused
    })
}

/// Why a workload is not placed: `None` if it is not waiting.
pub fn pending_reason(state: &dyn State, workload: &Workload) -> Result<Option<String>, CallError> {
    if state.get(&keys::pending_ticket(workload)).is_none() {
        return Ok(None);
    }
    let params: Params = storage::get(state, keys::PARAMS)?
        .ok_or_else(|| scheduling::state_error("parameters missing"))?;
    let attestation = crate::attestation::policy(state)?;
    let rules = scheduling::Rules {
        params: &params,
        attestation: &attestation,
        now_ms: storage::get(state, keys::LAST_BLOCK_TIME)?.unwrap_or_default(),
    };
    let reason = match workload {
        Workload::App { app } => {
            let app = storage::app(state, *app)?;
            scheduling::explain(state, &Demand::of_app(&app.spec)?, &rules)?
        }
        Workload::TaskRun { task, .. } => {
            let task = storage::task(state, *task)?;
            scheduling::explain(state, &Demand::of_task(&task.spec), &rules)?
        }
    };
    Ok(Some(reason))
}

/// Every workload in the pending queue, front first, with the reason it waits.
pub fn pending_placements(state: &dyn State) -> Result<Vec<PendingPlacement>, CallError> {
    scheduling::pending(state, usize::MAX)?
        .into_iter()
        .map(|(_, workload)| {
            Ok(PendingPlacement {
                workload,
                reason: pending_reason(state, &workload)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// An app's sealed secrets, if the owner set any.
pub fn app_secrets(
    state: &dyn State,
    id: AppId,
) -> Result<Option<wetee_types::records::AppSecrets>, CallError> {
    storage::get(state, &keys::app_secrets(id))
}

/// The collateral stored for a platform family and PCK CA (`processor` or `platform`).
pub fn collateral(
    state: &dyn State,
    kind: wetee_types::TeeKind,
    fmspc: &[u8; 6],
    pck_ca: &str,
) -> Result<Option<wetee_types::records::CollateralRecord>, CallError> {
    storage::get(state, &keys::collateral(kind, fmspc, pck_ca))
}

/// The attestation policy.
pub fn attestation_policy(
    state: &dyn State,
) -> Result<wetee_types::attestation::AttestationPolicy, CallError> {
    crate::attestation::policy(state)
}

/// A recent block (hash and time), if it is still within the nonce window.
pub fn recent_block(
    state: &dyn State,
    height: wetee_types::BlockNumber,
) -> Result<Option<crate::attestation::RecentBlock>, CallError> {
    crate::attestation::recent_block(state, height)
}
