//! Where everything lives in the chain's state: the key of every record the runtime writes.
//!
//! The runtime writes at these keys, the node proves values at them, and light clients ask for
//! proofs of them, so the layout lives here, in the one crate all three share. Every key starts
//! with a module prefix; numeric parts are fixed-width big-endian so that key order is numeric
//! order. The table of keys and values is in `wetee_runtime::storage`.

use crate::codec::encode;
use crate::{AccountId, AppId, ComplaintId, TaskId, WorkerId, Workload};
/// Genesis hash.
pub const GENESIS: &[u8] = b"sys/genesis";
/// Chain configuration.
pub const CHAIN: &[u8] = b"sys/chain";
/// Parameters.
pub const PARAMS: &[u8] = b"sys/params";
/// Root key.
pub const ROOT: &[u8] = b"sys/root";
/// Treasury account.
pub const TREASURY: &[u8] = b"sys/treasury";
/// The attestation policy.
pub const ATTESTATION_POLICY: &[u8] = b"sys/attestation";
/// The timestamp of the last block executed (the next block records it with its hash).
pub const LAST_BLOCK_TIME: &[u8] = b"sys/last-time";
/// Recent block hashes, the nonces evidence is bound to.
pub const RECENT_BLOCKS: &[u8] = b"blk/";
/// Intel collateral by TEE kind and FMSPC.
pub const COLLATERAL: &[u8] = b"col/";
/// Account prefix.
pub const ACCOUNTS: &[u8] = b"bal/";
/// Worker prefix.
pub const WORKERS: &[u8] = b"wrk/";
/// Started workers: the only candidates for placement.
pub const READY_WORKERS: &[u8] = b"rdy/";
/// Workers holding workloads: the only ones whose liveness is checked.
pub const BUSY_WORKERS: &[u8] = b"bsy/";
/// Complaint prefix.
pub const COMPLAINTS: &[u8] = b"cmp/";
/// App prefix.
pub const APPS: &[u8] = b"app/";
/// Task prefix.
pub const TASKS: &[u8] = b"tsk/";
/// Placement prefix.
pub const PLACEMENTS: &[u8] = b"plc/";
/// Pending queue prefix.
pub const PENDING: &[u8] = b"pnd/";
/// Height-due prefix.
pub const DUE_HEIGHT: &[u8] = b"due/h/";
/// Time-due prefix.
pub const DUE_TIME: &[u8] = b"due/t/";
/// Run deadline prefix.
pub const DEADLINES: &[u8] = b"ddl/";
/// Lease prefix.
pub const LEASES: &[u8] = b"lse/";

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// Next id counter of a kind.
pub fn counter(kind: &str) -> Vec<u8> {
    key(b"sys/next/", &[kind.as_bytes()])
}
/// An account.
pub fn account(id: &AccountId) -> Vec<u8> {
    key(ACCOUNTS, &[&id.0])
}
/// An account's sealing key: the X25519 key workers seal what only the account may read to.
pub fn sealing_key(id: &AccountId) -> Vec<u8> {
    key(b"osk/", &[&id.0])
}
/// A worker.
pub fn worker(id: WorkerId) -> Vec<u8> {
    key(WORKERS, &[&id.0.to_be_bytes()])
}
/// A started worker.
pub fn ready_worker(id: WorkerId) -> Vec<u8> {
    key(READY_WORKERS, &[&id.0.to_be_bytes()])
}
/// A worker holding workloads.
pub fn busy_worker(id: WorkerId) -> Vec<u8> {
    key(BUSY_WORKERS, &[&id.0.to_be_bytes()])
}
/// The worker registered with an identity key.
pub fn identity(identity_key: &[u8; 32]) -> Vec<u8> {
    key(b"wik/", &[identity_key])
}
/// A complaint.
pub fn complaint(id: ComplaintId) -> Vec<u8> {
    key(COMPLAINTS, &[&id.0.to_be_bytes()])
}
/// An app.
pub fn app(id: AppId) -> Vec<u8> {
    key(APPS, &[&id.0.to_be_bytes()])
}
/// An app's sealed secrets.
pub fn app_secrets(id: AppId) -> Vec<u8> {
    key(b"aps/", &[&id.0.to_be_bytes()])
}
/// A recent block's hash and time.
pub fn recent_block(height: u64) -> Vec<u8> {
    key(RECENT_BLOCKS, &[&height.to_be_bytes()])
}
/// Collateral of one platform family whose PCK certificates one CA issues (`processor`
/// or `platform`): each needs that CA's revocation list.
pub fn collateral(kind: crate::TeeKind, fmspc: &[u8; 6], pck_ca: &str) -> Vec<u8> {
    key(
        COLLATERAL,
        &[kind.name().as_bytes(), b"/", fmspc, b"/", pck_ca.as_bytes()],
    )
}
/// Why an app's worker could not run it.
pub fn app_failure(id: AppId) -> Vec<u8> {
    key(b"apf/", &[&id.0.to_be_bytes()])
}
/// One version of an app.
pub fn app_version(id: AppId, version: u32) -> Vec<u8> {
    key(
        b"apv/",
        &[&id.0.to_be_bytes(), b"/", &version.to_be_bytes()],
    )
}
/// All versions of an app.
pub fn app_versions(id: AppId) -> Vec<u8> {
    key(b"apv/", &[&id.0.to_be_bytes(), b"/"])
}
/// An app in its owner's index (empty value): an owner's apps are listed without reading
/// everyone's.
pub fn owned_app(owner: &AccountId, id: AppId) -> Vec<u8> {
    key(b"oap/", &[&owner.0, b"/", &id.0.to_be_bytes()])
}
/// All apps of an owner.
pub fn owned_apps(owner: &AccountId) -> Vec<u8> {
    key(b"oap/", &[&owner.0, b"/"])
}
/// A task in its owner's index (empty value).
pub fn owned_task(owner: &AccountId, id: TaskId) -> Vec<u8> {
    key(b"otk/", &[&owner.0, b"/", &id.0.to_be_bytes()])
}
/// All tasks of an owner.
pub fn owned_tasks(owner: &AccountId) -> Vec<u8> {
    key(b"otk/", &[&owner.0, b"/"])
}
/// A task.
pub fn task(id: TaskId) -> Vec<u8> {
    key(TASKS, &[&id.0.to_be_bytes()])
}
/// One version of a task.
pub fn task_version(id: TaskId, version: u32) -> Vec<u8> {
    key(
        b"tsv/",
        &[&id.0.to_be_bytes(), b"/", &version.to_be_bytes()],
    )
}
/// All versions of a task.
pub fn task_versions(id: TaskId) -> Vec<u8> {
    key(b"tsv/", &[&id.0.to_be_bytes(), b"/"])
}
/// One run of a task.
pub fn task_run(id: TaskId, run: u32) -> Vec<u8> {
    key(b"run/", &[&id.0.to_be_bytes(), b"/", &run.to_be_bytes()])
}
/// All runs of a task.
pub fn task_runs(id: TaskId) -> Vec<u8> {
    key(b"run/", &[&id.0.to_be_bytes(), b"/"])
}
/// A task due at a height.
pub fn due_height(height: u64, task: TaskId) -> Vec<u8> {
    key(DUE_HEIGHT, &[&height.to_be_bytes(), &task.0.to_be_bytes()])
}
/// A task due at a time.
pub fn due_time(ms: u64, task: TaskId) -> Vec<u8> {
    key(DUE_TIME, &[&ms.to_be_bytes(), &task.0.to_be_bytes()])
}
/// A run's capacity deadline.
pub fn deadline(ms: u64, task: TaskId, run: u32) -> Vec<u8> {
    key(
        DEADLINES,
        &[&ms.to_be_bytes(), &task.0.to_be_bytes(), &run.to_be_bytes()],
    )
}
/// A workload's capacity on a worker.
pub fn placement(worker: WorkerId, workload: &Workload) -> Vec<u8> {
    key(PLACEMENTS, &[&worker.0.to_be_bytes(), &encode(workload)])
}
/// The list of every workload placed on a worker.
pub fn assignments(worker: WorkerId) -> Vec<u8> {
    key(b"asg/", &[&worker.0.to_be_bytes()])
}
/// All workloads on a worker.
pub fn placements_of(worker: WorkerId) -> Vec<u8> {
    key(PLACEMENTS, &[&worker.0.to_be_bytes()])
}
/// A pending queue slot.
pub fn pending(ticket: u64) -> Vec<u8> {
    key(PENDING, &[&ticket.to_be_bytes()])
}
/// A workload's pending queue ticket.
pub fn pending_ticket(workload: &Workload) -> Vec<u8> {
    key(b"pnb/", &[&encode(workload)])
}
/// A lease.
pub fn lease(worker: WorkerId, app: AppId, seq: u32) -> Vec<u8> {
    key(
        LEASES,
        &[
            &worker.0.to_be_bytes(),
            &app.0.to_be_bytes(),
            &seq.to_be_bytes(),
        ],
    )
}
/// All leases of an app with a worker.
pub fn leases_of(worker: WorkerId, app: AppId) -> Vec<u8> {
    key(LEASES, &[&worker.0.to_be_bytes(), &app.0.to_be_bytes()])
}
