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

/// Entries as (key suffix, value).
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Up to `size` entries under `prefix` whose key suffix comes after `after` (the first ones
/// when `None`), in key order, with their suffixes; and whether any follow. Reads at most one
/// entry more than it answers.
fn entries_after(
    state: &dyn State,
    prefix: &[u8],
    after: Option<&[u8]>,
    size: usize,
) -> (Entries, bool) {
    let mut start = prefix.to_vec();
    if let Some(after) = after {
        start.extend_from_slice(after);
        // The least key above `prefix ++ after` itself.
        start.push(0);
    }
    let mut entries: Entries = state
        .scan_from(&start)
        .take_while(|(key, _)| key.starts_with(prefix))
        .take(size.saturating_add(1))
        .map(|(key, value)| (key.get(prefix.len()..).unwrap_or_default().to_vec(), value))
        .collect();
    let more = entries.len() > size;
    entries.truncate(size);
    (entries, more)
}

/// A page of the records under `prefix`, each keyed by a big-endian `u64` or `u32` id that is
/// also its cursor.
fn records_page<T: Canonical, C: Copy>(
    state: &dyn State,
    prefix: &[u8],
    page: &PageRequest<C>,
    encode_cursor: impl Fn(C) -> Vec<u8>,
    cursor_of: impl Fn(&T) -> C,
) -> Result<Page<T, C>, CallError> {
    let after = page.after.map(&encode_cursor);
    let (entries, more) = entries_after(state, prefix, after.as_deref(), page.size());
    let items: Vec<T> = entries
        .into_iter()
        .map(|(_, bytes)| decode(&bytes).map_err(CallError::from))
        .collect::<Result<_, _>>()?;
    let next = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A page of the records an owner's index under `index` points to, read one by one at `key`.
fn owned_page<T: Canonical, I: Copy>(
    state: &dyn State,
    index: &[u8],
    page: &PageRequest<I>,
    id_of: impl Fn(u64) -> I,
    id_bytes: impl Fn(I) -> u64,
    key: impl Fn(I) -> Vec<u8>,
) -> Result<Page<T, I>, CallError> {
    let after = page.after.map(|id| id_bytes(id).to_be_bytes().to_vec());
    let (entries, more) = entries_after(state, index, after.as_deref(), page.size());
    let mut items = Vec::with_capacity(entries.len());
    let mut last = None;
    for (suffix, _) in entries {
        let id = id_of(storage::read_u64(&suffix, 0)?);
        items.push(
            storage::get(state, &key(id))?.ok_or_else(|| CallError::State {
                detail: wetee_types::error::error_text("an owner's index names a missing record"),
            })?,
        );
        last = Some(id);
    }
    Ok(Page {
        items,
        next: if more { last } else { None },
    })
}

/// A page of the workers, by id.
pub fn workers_page(
    state: &dyn State,
    page: &PageRequest<WorkerId>,
) -> Result<Page<Worker, WorkerId>, CallError> {
    records_page(
        state,
        keys::WORKERS,
        page,
        |id| id.0.to_be_bytes().to_vec(),
        |w: &Worker| w.id,
    )
}

/// A page of the workloads placed on a worker, in workload order.
pub fn workloads_page(
    state: &dyn State,
    id: WorkerId,
    page: &PageRequest<Workload>,
) -> Result<Page<Workload, Workload>, CallError> {
    // One record holds them all (at most `MAX_WORKLOADS_PER_WORKER`): it is read whole.
    let mut workloads = scheduling::workloads_on(state, id)?;
    workloads.sort_unstable();
    let mut rest: Vec<Workload> = workloads
        .into_iter()
        .filter(|w| page.after.is_none_or(|after| *w > after))
        .take(page.size().saturating_add(1))
        .collect();
    let more = rest.len() > page.size();
    rest.truncate(page.size());
    let next = if more { rest.last().copied() } else { None };
    Ok(Page { items: rest, next })
}

/// A page of the apps, by id, or of an owner's.
pub fn apps_page(
    state: &dyn State,
    owner: Option<&AccountId>,
    page: &PageRequest<AppId>,
) -> Result<Page<App, AppId>, CallError> {
    match owner {
        Some(owner) => owned_page(
            state,
            &keys::owned_apps(owner),
            page,
            AppId,
            |id| id.0,
            keys::app,
        ),
        None => records_page(
            state,
            keys::APPS,
            page,
            |id| id.0.to_be_bytes().to_vec(),
            |a: &App| a.id,
        ),
    }
}

/// A page of the tasks, by id, or of an owner's.
pub fn tasks_page(
    state: &dyn State,
    owner: Option<&AccountId>,
    page: &PageRequest<TaskId>,
) -> Result<Page<Task, TaskId>, CallError> {
    match owner {
        Some(owner) => owned_page(
            state,
            &keys::owned_tasks(owner),
            page,
            TaskId,
            |id| id.0,
            keys::task,
        ),
        None => records_page(
            state,
            keys::TASKS,
            page,
            |id| id.0.to_be_bytes().to_vec(),
            |t: &Task| t.id,
        ),
    }
}

/// A page of an app's versions, oldest first.
pub fn app_versions_page(
    state: &dyn State,
    id: AppId,
    page: &PageRequest<u32>,
) -> Result<Page<AppVersion, u32>, CallError> {
    records_page(
        state,
        &keys::app_versions(id),
        page,
        |v| v.to_be_bytes().to_vec(),
        |v: &AppVersion| v.version,
    )
}

/// A page of a task's versions, oldest first.
pub fn task_versions_page(
    state: &dyn State,
    id: TaskId,
    page: &PageRequest<u32>,
) -> Result<Page<TaskVersion, u32>, CallError> {
    records_page(
        state,
        &keys::task_versions(id),
        page,
        |v| v.to_be_bytes().to_vec(),
        |v: &TaskVersion| v.version,
    )
}

/// A page of a task's runs, first first.
pub fn task_runs_page(
    state: &dyn State,
    id: TaskId,
    page: &PageRequest<u32>,
) -> Result<Page<TaskRun, u32>, CallError> {
    records_page(
        state,
        &keys::task_runs(id),
        page,
        |run| run.to_be_bytes().to_vec(),
        |r: &TaskRun| r.run,
    )
}

/// Most pending workloads one page explains: each reason is a placement search over the
/// started workers.
pub const MAX_PENDING_PAGE: usize = 50;

/// A page of the pending queue, front first, each with the reason it waits (at most
/// [`MAX_PENDING_PAGE`]).
pub fn pending_page(
    state: &dyn State,
    page: &PageRequest<u64>,
) -> Result<Page<PendingPlacement, u64>, CallError> {
    let after = page.after.map(|ticket| ticket.to_be_bytes().to_vec());
    let size = page.size().min(MAX_PENDING_PAGE);
    let (entries, more) = entries_after(state, keys::PENDING, after.as_deref(), size);
    let items: Vec<PendingPlacement> = entries
        .into_iter()
        .map(|(suffix, bytes)| {
            let workload: Workload = decode(&bytes)?;
            Ok(PendingPlacement {
                ticket: storage::read_u64(&suffix, 0)?,
                workload,
                reason: pending_reason(state, &workload)?.unwrap_or_default(),
            })
        })
        .collect::<Result<_, CallError>>()?;
    let next = if more {
        items.last().map(|p| p.ticket)
    } else {
        None
    };
    Ok(Page { items, next })
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

pub use wetee_types::rpc::{
    Page, PageRequest, PendingPlacement, PlacementPreview, PlacementRequest,
};

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
        .map(|(ticket, workload)| {
            Ok(PendingPlacement {
                ticket,
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
