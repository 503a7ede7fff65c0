//! Where everything lives in the state, and typed access to it.
//!
//! Every key starts with a module prefix; numeric parts are fixed-width big-endian so that key
//! order is numeric order (queues keyed by height or time are scanned from their front).
//!
//! | key | value |
//! |---|---|
//! | `sys/genesis` | genesis hash |
//! | `sys/chain` | [`ChainConfig`] |
//! | `sys/params` | [`Params`] |
//! | `sys/root`, `sys/treasury` | [`AccountId`] |
//! | `sys/next/<kind>` | next id of a kind (`u64`) |
//! | `bal/<account>` | [`Account`] |
//! | `osk/<account>` | the account's X25519 sealing key (`[u8; 32]`) |
//! | `wrk/<worker>` | [`Worker`] |
//! | `rdy/<worker>`, `bsy/<worker>` | (empty): index of started workers, and of workers holding workloads |
//! | `wik/<identity key>` | [`WorkerId`] holding that identity key |
//! | `cmp/<complaint>` | [`Complaint`] |
//! | `app/<app>` | [`App`] |
//! | `aps/<app>` | [`AppSecrets`](wetee_types::records::AppSecrets) |
//! | `apf/<app>` | [`AppFailure`](wetee_types::records::AppFailure) |
//! | `apv/<app>/<version>` | [`AppVersion`] |
//! | `oap/<owner>/<app>`, `otk/<owner>/<task>` | (empty): index of each owner's apps and tasks |
//! | `tsk/<task>` | [`Task`] |
//! | `tsv/<task>/<version>` | [`TaskVersion`] |
//! | `run/<task>/<run>` | [`TaskRun`] |
//! | `due/h/<height>/<task>`, `due/t/<ms>/<task>` | (empty): task runs due |
//! | `ddl/<ms>/<task>/<run>` | (empty): run capacity deadlines |
//! | `plc/<worker>/<workload>` | [`Resources`] reserved on the worker |
//! | `asg/<worker>` | [`Assignments`](wetee_types::records::Assignments): every workload placed on the worker, in order (one record, so that one proof shows the list is complete), each app with the stamp of its records ([`app_stamp`]), kept current by [`put_app`] and [`put_app_secrets`] |
//! | `pnd/<ticket>` | [`Workload`] waiting for placement, in arrival order |
//! | `pnb/<workload>` | its ticket |
//! | `lse/<worker>/<app>/<seq>` | [`Lease`] |
//! | `epq/<epoch>/<item>` | (empty): [`EpochItem`] to process at the end of that epoch |

use crate::state::State;
use wetee_types::codec::{Canonical, decode, encode};
use wetee_types::records::{
    Account, App, AppVersion, Complaint, Lease, Task, TaskRun, TaskVersion, Worker,
};
use wetee_types::{
    AccountId, AppId, CallError, ComplaintId, TaskId, WorkerId, Workload, codec_enum,
};

/// Reads and decodes `key`.
pub fn get<T: Canonical>(state: &dyn State, key: &[u8]) -> Result<Option<T>, CallError> {
    match state.get(key) {
        Some(bytes) => Ok(Some(decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Encodes and writes `value` at `key`.
pub fn put<T: Canonical>(state: &mut dyn State, key: &[u8], value: &T) {
    state.put(key, &encode(value));
}

/// Entries whose key starts with `prefix`, in key order, with the prefix stripped.
pub fn scan_prefix<'a>(
    state: &'a dyn State,
    prefix: &'a [u8],
) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a {
    state
        .scan_from(prefix)
        .take_while(move |(key, _)| key.starts_with(prefix))
        .map(move |(key, value)| (key.get(prefix.len()..).unwrap_or_default().to_vec(), value))
}

/// The big-endian `u64` at `offset` of a key suffix.
pub fn read_u64(bytes: &[u8], offset: usize) -> Result<u64, CallError> {
    bytes
        .get(offset..offset.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| CallError::State {
            detail: wetee_types::error::error_text("malformed key"),
        })
}

/// Something to do when an epoch ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochItem {
    /// A closed lease can no longer be reported: release what it still holds.
    LeaseExpiry {
        /// Worker.
        worker: WorkerId,
        /// App.
        app: AppId,
        /// Lease number.
        seq: u32,
    },
    /// An app's grace period ends: stop it unless it was recharged.
    GraceEnd {
        /// App.
        app: AppId,
    },
    /// A run's result can no longer be reported: expire it and release its escrow.
    RunExpiry {
        /// Task.
        task: TaskId,
        /// Run.
        run: u32,
    },
}
codec_enum!(EpochItem {
    0 => LeaseExpiry { worker, app, seq },
    1 => GraceEnd { app },
    2 => RunExpiry { task, run },
});

/// An epoch-end liveness sweep over the workers holding workloads, carried over from block to
/// block when one block's budget cannot finish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessSweep {
    /// The epoch whose end workers are judged by.
    pub epoch: u64,
    /// The first worker id not judged yet.
    pub next: u64,
    /// Moves off draining workers this sweep may still try.
    pub drain_budget: u32,
    /// Once every worker is judged: the retry of the pending queue, under way.
    pub retry: Option<PendingRetry>,
}
wetee_types::codec_struct!(LivenessSweep {
    epoch,
    next,
    drain_budget,
    retry
});

/// The epoch's retry of the pending queue, carried over from block to block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRetry {
    /// The first ticket not retried yet.
    pub next: u64,
    /// The first ticket given after the retries began: those wait for the next epoch.
    pub until: u64,
    /// Placements the retries may still try.
    pub budget: u32,
}
wetee_types::codec_struct!(PendingRetry {
    next,
    until,
    budget
});

/// Key builders: the layout shared with the node and light clients
/// ([`wetee_types::state_keys`]), plus the runtime's own bookkeeping.
pub mod keys {
    use super::{EpochItem, encode};
    pub use wetee_types::state_keys::*;

    /// The open liveness sweep, if any ([`super::LivenessSweep`]).
    pub const LIVENESS_SWEEP: &[u8] = b"sys/liveness-sweep";
    /// How many workers are started ([`super::started_workers`]).
    pub const STARTED_WORKERS: &[u8] = b"sys/started-workers";

    /// Work for the end of an epoch.
    pub fn epoch_item(epoch: u64, item: &EpochItem) -> Vec<u8> {
        let mut key = epoch_items(epoch);
        key.extend_from_slice(&encode(item));
        key
    }
    /// All work for the end of an epoch.
    pub fn epoch_items(epoch: u64) -> Vec<u8> {
        let mut key = b"epq/".to_vec();
        key.extend_from_slice(&epoch.to_be_bytes());
        key
    }
}

/// The id [`next_id`] gives next for `kind`, without taking it.
pub fn peek_next_id(state: &dyn State, kind: &str) -> Result<u64, CallError> {
    Ok(get(state, &keys::counter(kind))?.unwrap_or(1))
}

/// Takes the next id of `kind` (ids start at 1).
pub fn next_id(state: &mut dyn State, kind: &str) -> Result<u64, CallError> {
    let key = keys::counter(kind);
    let next = peek_next_id(state, kind)?;
    put(
        state,
        &key,
        &next.checked_add(1).ok_or(CallError::Overflow)?,
    );
    Ok(next)
}

/// An account, or an empty one.
pub fn account(state: &dyn State, id: &AccountId) -> Result<Account, CallError> {
    Ok(get(state, &keys::account(id))?.unwrap_or_default())
}

/// Writes an account.
pub fn put_account(state: &mut dyn State, id: &AccountId, account: &Account) {
    put(state, &keys::account(id), account);
}

/// A worker that must exist.
pub fn worker(state: &dyn State, id: WorkerId) -> Result<Worker, CallError> {
    get(state, &keys::worker(id))?.ok_or(CallError::WorkerNotFound { worker: id })
}

/// Writes a worker and keeps the started and busy indexes in step with it.
pub fn put_worker(state: &mut dyn State, worker: &Worker) {
    put(state, &keys::worker(worker.id), worker);
    let index = |state: &mut dyn State, key: Vec<u8>, member: bool| {
        if member {
            state.put(&key, &[]);
        } else {
            state.delete(&key);
        }
    };
    let ready = worker.status == wetee_types::records::WorkerStatus::Started;
    let ready_key = keys::ready_worker(worker.id);
    if state.get(&ready_key).is_some() != ready {
        let started = started_workers(state);
        let counted = if ready {
            started.saturating_add(1)
        } else {
            started.saturating_sub(1)
        };
        put(state, keys::STARTED_WORKERS, &counted);
    }
    index(state, ready_key, ready);
    index(state, keys::busy_worker(worker.id), worker.workloads > 0);
}

/// How many workers are started (in `keys::READY_WORKERS`), kept by [`put_worker`]: a
/// placement's weight reads it without scanning the index.
pub fn started_workers(state: &dyn State) -> u64 {
    get::<u64>(state, keys::STARTED_WORKERS)
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The ids in an index of workers (`keys::READY_WORKERS`, `keys::BUSY_WORKERS`), in order.
pub fn indexed_workers(state: &dyn State, index: &[u8]) -> Result<Vec<WorkerId>, CallError> {
    scan_prefix(state, index)
        .map(|(suffix, _)| read_u64(&suffix, 0).map(WorkerId))
        .collect()
}

/// Every workload placed on a worker, in order.
pub fn assignments(
    state: &dyn State,
    worker: WorkerId,
) -> Result<wetee_types::records::Assignments, CallError> {
    Ok(get(state, &keys::assignments(worker))?.unwrap_or_default())
}

/// Writes a worker's assignment list (deleting it when empty).
pub fn put_assignments(
    state: &mut dyn State,
    worker: WorkerId,
    assignments: &wetee_types::records::Assignments,
) {
    if assignments.is_empty() {
        state.delete(&keys::assignments(worker));
    } else {
        put(state, &keys::assignments(worker), assignments);
    }
}

/// A complaint that must exist.
pub fn complaint(state: &dyn State, id: ComplaintId) -> Result<Complaint, CallError> {
    get(state, &keys::complaint(id))?.ok_or(CallError::ComplaintNotFound { complaint: id })
}

/// An app that must exist.
pub fn app(state: &dyn State, id: AppId) -> Result<App, CallError> {
    get(state, &keys::app(id))?.ok_or(CallError::AppNotFound { app: id })
}

/// Writes an app.
pub fn put_app(state: &mut dyn State, app: &App) -> Result<(), CallError> {
    let unchanged_for_worker = get::<App>(state, &keys::app(app.id))?
        .is_some_and(|old| wetee_types::records::same_for_worker(&old, app));
    put(state, &keys::app(app.id), app);
    if unchanged_for_worker {
        return Ok(());
    }
    refresh_app_stamp(state, app)
}

/// Writes an app's sealed secrets.
pub fn put_app_secrets(
    state: &mut dyn State,
    app: AppId,
    secrets: &wetee_types::records::AppSecrets,
) -> Result<(), CallError> {
    put(state, &keys::app_secrets(app), secrets);
    match get::<App>(state, &keys::app(app))? {
        Some(app) => refresh_app_stamp(state, &app),
        None => Ok(()),
    }
}

/// The stamp of app `id`'s records as they are stored now.
pub fn app_stamp(state: &dyn State, id: AppId) -> Result<Option<wetee_types::Hash>, CallError> {
    let Some(app) = get::<App>(state, &keys::app(id))? else {
        return Ok(None);
    };
    let secrets: Option<wetee_types::records::AppSecrets> = get(state, &keys::app_secrets(id))?;
    Ok(Some(wetee_types::records::app_stamp(
        &app,
        secrets.as_ref(),
    )))
}

/// Brings the stamp in the assignment list of the worker `app` is placed on up to date with its
/// stored records (`app` as just stored). Every write that changes what the worker acts on comes through here, so
/// that a worker can trust an unchanged stamp to mean unchanged records (the invariant checks
/// in `testing` hold the runtime to it).
fn refresh_app_stamp(state: &mut dyn State, app: &App) -> Result<(), CallError> {
    let Some(placement) = app.placement else {
        return Ok(());
    };
    let secrets: Option<wetee_types::records::AppSecrets> = get(state, &keys::app_secrets(app.id))?;
    let stamp = wetee_types::records::app_stamp(app, secrets.as_ref());
    let workload = Workload::App { app: app.id };
    let mut entries = assignments(state, placement.worker)?.into_inner();
    // The list is in workload order.
    let listed = entries
        .binary_search_by(|a| a.workload.cmp(&workload))
        .ok()
        .and_then(|at| entries.get_mut(at));
    let Some(entry) = listed else {
        // Not listed yet: the placement lists it with the stamp of the records then stored.
        return Ok(());
    };
    if entry.stamp != stamp {
        entry.stamp = stamp;
        let assigned =
            wetee_types::records::Assignments::try_new(entries).map_err(|_| CallError::State {
                detail: wetee_types::error::error_text("an assignment list grew while restamped"),
            })?;
        put_assignments(state, placement.worker, &assigned);
    }
    Ok(())
}

/// An account's sealing key, if it published one.
pub fn sealing_key(state: &dyn State, id: &AccountId) -> Result<Option<[u8; 32]>, CallError> {
    get(state, &keys::sealing_key(id))
}

/// Publishes an account's sealing key.
pub fn put_sealing_key(state: &mut dyn State, id: &AccountId, key: &[u8; 32]) {
    put(state, &keys::sealing_key(id), key);
}

/// Why an app's worker could not run it, if it reported so.
pub fn app_failure(
    state: &dyn State,
    id: AppId,
) -> Result<Option<wetee_types::records::AppFailure>, CallError> {
    get(state, &keys::app_failure(id))
}

/// Records why an app's worker could not run it.
pub fn put_app_failure(
    state: &mut dyn State,
    id: AppId,
    failure: &wetee_types::records::AppFailure,
) {
    put(state, &keys::app_failure(id), failure);
}

/// Records a version of an app.
pub fn put_app_version(state: &mut dyn State, app: AppId, version: &AppVersion) {
    put(state, &keys::app_version(app, version.version), version);
}

/// A task that must exist.
pub fn task(state: &dyn State, id: TaskId) -> Result<Task, CallError> {
    get(state, &keys::task(id))?.ok_or(CallError::TaskNotFound { task: id })
}

/// Writes a task.
pub fn put_task(state: &mut dyn State, task: &Task) {
    put(state, &keys::task(task.id), task);
}

/// Records a version of a task.
pub fn put_task_version(state: &mut dyn State, task: TaskId, version: &TaskVersion) {
    put(state, &keys::task_version(task, version.version), version);
}

/// A run that must exist.
pub fn task_run(state: &dyn State, task: TaskId, run: u32) -> Result<TaskRun, CallError> {
    get(state, &keys::task_run(task, run))?.ok_or(CallError::TaskNotFound { task })
}

/// Writes a run.
pub fn put_task_run(state: &mut dyn State, run: &TaskRun) {
    put(state, &keys::task_run(run.task, run.run), run);
}

/// A lease, if it still exists.
pub fn lease(
    state: &dyn State,
    worker: WorkerId,
    app: AppId,
    seq: u32,
) -> Result<Option<Lease>, CallError> {
    get(state, &keys::lease(worker, app, seq))
}

/// Writes a lease.
pub fn put_lease(state: &mut dyn State, lease: &Lease) {
    put(
        state,
        &keys::lease(lease.worker, lease.app, lease.seq),
        lease,
    );
}

/// Deletes a lease.
pub fn delete_lease(state: &mut dyn State, lease: &Lease) {
    state.delete(&keys::lease(lease.worker, lease.app, lease.seq));
}

/// Queues `item` for the end of `epoch`.
pub fn schedule_at_epoch_end(state: &mut dyn State, epoch: u64, item: &EpochItem) {
    state.put(&keys::epoch_item(epoch, item), &[]);
}
