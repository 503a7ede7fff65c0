//! What the chain stores: accounts, workers, complaints, apps, tasks, runs and leases.
//!
//! These are the values behind the runtime's state keys and the answers of the RPC's typed
//! queries, so they live here where the node, the client and the worker can read them.

use crate::attestation::AttestedTee;
use crate::balance::Balance;
use crate::codec::{BoundedBytes, BoundedString, BoundedVec};
use crate::crypto::{AccountId, Hash};
use crate::ids::{
    AppId, BlockNumber, ComplaintId, EpochNumber, TaskId, TimestampMs, WorkerId, Workload,
};
use crate::manifest::{AppSpec, EnvName, EnvVar, MAX_ENV, MAX_SECRETS, TaskSpec};
use crate::report::Usage;
use crate::resources::{GpuModel, Prices, Region, Resources, TeeKind, TeeKinds};
use crate::{codec_enum, codec_struct};
use serde::{Deserialize, Serialize};

/// Largest attestation evidence accepted (a TDX quote with its certificate chain is ~8 KiB).
pub const MAX_EVIDENCE_BYTES: usize = 32 * 1024;
/// Pending unstakes per worker.
pub const MAX_UNBONDING: usize = 8;

/// An account's balances and transaction counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Account {
    /// Transactions sent so far: the next transaction must carry this nonce.
    pub nonce: u64,
    /// Spendable.
    pub free: Balance,
    /// Locked in stakes, deposits, earnings not yet withdrawn, and complaint bonds.
    pub reserved: Balance,
}
codec_struct!(Account {
    nonce,
    free,
    reserved
});

/// What a worker offers and at what price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WorkerProfile {
    /// Where owners reach the worker's API and ingress: `https://w1.example.com`.
    pub endpoint: BoundedString<256>,
    /// Region label matched against app constraints.
    pub region: Region,
    /// Service level the operator commits to; higher levels need more stake.
    pub level: u8,
    /// Total capacity of the cluster.
    pub capacity: Resources,
    /// The model of the cluster's GPUs, if it has any.
    pub gpu_model: Option<GpuModel>,
    /// TEE kinds the cluster can run.
    pub tee_kinds: TeeKinds,
    /// Prices per resource unit per epoch.
    pub prices: Prices,
}
codec_struct!(WorkerProfile {
    endpoint,
    region,
    level,
    capacity,
    gpu_model,
    tee_kinds,
    prices
});

/// Keys generated inside the worker's TEE and bound into its attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WorkerKeys {
    /// Ed25519 key that signs work reports.
    pub identity: [u8; 32],
    /// X25519 key that owners seal secrets to.
    pub sealing: [u8; 32],
}
codec_struct!(WorkerKeys { identity, sealing });

/// Attestation evidence, kept as typed opaque bytes (a quote or report in its native format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Evidence {
    /// The TEE that produced it.
    pub kind: TeeKind,
    /// The evidence in that TEE's format. For SEV-SNP: the attestation report followed by the
    /// chip's VCEK certificate (DER).
    pub data: BoundedBytes<MAX_EVIDENCE_BYTES>,
    /// The block whose hash is the nonce in the evidence's report data: proof that it was made
    /// after that block (which must be among the last
    /// [`crate::attestation::nonce_window_blocks`] when the evidence is submitted).
    pub nonce_height: BlockNumber,
}
codec_struct!(Evidence {
    kind,
    data,
    nonce_height
});

/// Domain tag of the bytes a worker's identity key signs to show it is operated by an account.
pub const KEY_PROOF_DOMAIN: &[u8] = b"wetee/worker-key/v1";

/// Proof that the holder of the identity key agreed to be operated by `operator` on this chain:
/// without it, anyone could register a copy of another worker's keys and evidence.
pub fn key_proof_payload(
    genesis_hash: &crate::crypto::Hash,
    operator: &AccountId,
    keys: &WorkerKeys,
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(KEY_PROOF_DOMAIN.len() + 32 * 4);
    payload.extend_from_slice(KEY_PROOF_DOMAIN);
    payload.extend_from_slice(&genesis_hash.0);
    payload.extend_from_slice(&operator.0);
    payload.extend_from_slice(&keys.identity);
    payload.extend_from_slice(&keys.sealing);
    payload
}

/// New TEE-bound keys, the evidence that binds them, and the identity key's proof that it
/// belongs to this operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Attestation {
    /// The keys.
    pub keys: WorkerKeys,
    /// The evidence.
    pub evidence: Evidence,
    /// Ed25519 signature by `keys.identity` over [`key_proof_payload`].
    #[serde(with = "crate::report::signature_hex")]
    pub key_proof: [u8; 64],
}
codec_struct!(Attestation {
    keys,
    evidence,
    key_proof
});

/// A worker's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Registered, never started: receives nothing.
    Registered,
    /// Accepting placements.
    Started,
    /// Stop requested: no new placements; its workloads move away, then it stops.
    Draining,
    /// Stopped: empty, receives nothing.
    Stopped,
    /// Missed too many work reports: its apps moved away; the operator must start it again.
    Suspended,
}
codec_enum!(WorkerStatus {
    0 => Registered,
    1 => Started,
    2 => Draining,
    3 => Stopped,
    4 => Suspended,
});

impl std::fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkerStatus::Registered => "registered (not started)",
            WorkerStatus::Started => "started",
            WorkerStatus::Draining => "draining",
            WorkerStatus::Stopped => "stopped",
            WorkerStatus::Suspended => "suspended",
        })
    }
}

/// Stake on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Unbonding {
    /// Amount.
    pub amount: Balance,
    /// First height at which it can be withdrawn.
    pub unlock_at: BlockNumber,
}
codec_struct!(Unbonding { amount, unlock_at });

/// A worker cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Worker {
    /// Its id.
    pub id: WorkerId,
    /// The account that registered it, stakes for it and is paid.
    pub operator: AccountId,
    /// Offer.
    pub profile: WorkerProfile,
    /// TEE-bound keys.
    pub keys: WorkerKeys,
    /// The attestation binding the keys.
    pub evidence: Evidence,
    /// What the chain verified in it, and until when it vouches for the worker.
    pub attested: AttestedTee,
    /// Lifecycle.
    pub status: WorkerStatus,
    /// Bonded stake (reserved in the operator's account).
    pub stake: Balance,
    /// Unstaked amounts waiting for their unlock height (still slashable).
    pub unbonding: BoundedVec<Unbonding, MAX_UNBONDING>,
    /// Payments received and not yet withdrawn (reserved in the operator's account).
    pub earnings: Balance,
    /// Capacity taken by placed workloads.
    pub used: Resources,
    /// Number of placed workloads.
    pub workloads: u32,
    /// Reputation, 0..=1000: up with each accepted report, down when suspended.
    pub score: u32,
    /// Height of registration.
    pub registered_at: BlockNumber,
    /// The last epoch a work report was accepted for.
    pub last_report_epoch: Option<EpochNumber>,
    /// The first epoch the worker must prove (reset when it starts or gets its first workload).
    pub liable_since: EpochNumber,
}
codec_struct!(Worker {
    id,
    operator,
    profile,
    keys,
    evidence,
    attested,
    status,
    stake,
    unbonding,
    earnings,
    used,
    workloads,
    score,
    registered_at,
    last_report_epoch,
    liable_since
});

impl Worker {
    /// Capacity not yet taken.
    pub fn free_capacity(&self) -> Resources {
        self.profile
            .capacity
            .checked_sub(&self.used)
            .unwrap_or(Resources::ZERO)
    }

    /// Whether its evidence still vouches for it at `now_ms`.
    pub fn attestation_valid(&self, now_ms: TimestampMs) -> bool {
        now_ms < self.attested.expires_at_ms
    }

    /// Stake plus unbonding amounts: what a slash can take.
    pub fn slashable(&self) -> Option<Balance> {
        self.unbonding
            .iter()
            .try_fold(self.stake, |sum, u| sum.checked_add(u.amount))
    }
}

/// How a complaint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    /// Waiting for the root origin.
    Open,
    /// The worker was slashed; the bond went back to the reporter.
    Upheld,
    /// Dismissed; the bond went to the treasury.
    Dismissed,
}
codec_enum!(ComplaintStatus {
    0 => Open,
    1 => Upheld,
    2 => Dismissed,
});

/// A complaint against a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Complaint {
    /// Its id.
    pub id: ComplaintId,
    /// The worker complained about.
    pub worker: WorkerId,
    /// Who filed it.
    pub reporter: AccountId,
    /// Hash of the evidence, kept off chain by the reporter.
    pub evidence_hash: Hash,
    /// Bond locked by the reporter.
    pub bond: Balance,
    /// Height filed.
    pub filed_at: BlockNumber,
    /// Outcome.
    pub status: ComplaintStatus,
}
codec_struct!(Complaint {
    id,
    worker,
    reporter,
    evidence_hash,
    bond,
    filed_at,
    status
});

/// Why a workload stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Its owner stopped it.
    Owner,
    /// The deposit ran out and the grace period passed.
    DepositExhausted,
    /// Its worker could not run it (see the app's failure record).
    Failed,
}
codec_enum!(StopReason {
    0 => Owner,
    1 => DepositExhausted,
    2 => Failed,
});

/// Why an app's worker could not run it, as the worker reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppFailure {
    /// The worker that reported it.
    pub worker: WorkerId,
    /// The version that failed.
    pub version: u32,
    /// Why.
    pub reason: BoundedString<256>,
    /// A hiding commitment to the app's last log lines: the owner checks what they open
    /// against it, nobody else learns anything from it.
    pub log_digest: Hash,
    /// The app's last log lines, sealed to the owner's sealing key; absent when the owner had
    /// none on chain.
    pub log_tail: Option<SealedLog>,
    /// Height it was reported.
    pub at: BlockNumber,
}
codec_struct!(AppFailure {
    worker,
    version,
    reason,
    log_digest,
    log_tail,
    at
});

/// Where an app runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Placement {
    /// The worker.
    pub worker: WorkerId,
    /// The lease paying that worker.
    pub lease: u32,
    /// Price per epoch of all replicas, fixed for the lease.
    pub price_per_epoch: Balance,
    /// Height it was placed.
    pub since: BlockNumber,
}
codec_struct!(Placement {
    worker,
    lease,
    price_per_epoch,
    since
});

/// An app's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AppStatus {
    /// Waiting for a worker that satisfies its constraints.
    Pending,
    /// Placed on a worker.
    Running,
    /// Placed on a worker, which cannot start it before the owner seals the app's secrets to
    /// that worker (`wetee app secrets set` or `reseal`).
    AwaitingSecrets,
    /// Stopped for good.
    Stopped {
        /// Why.
        reason: StopReason,
    },
}
codec_enum!(AppStatus {
    0 => Pending,
    1 => Running,
    2 => Stopped { reason },
    3 => AwaitingSecrets,
});

/// A long-running app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct App {
    /// Its id.
    pub id: AppId,
    /// Who created it, pays for it and may change it.
    pub owner: AccountId,
    /// Current version, from 1; every update or settings change adds one.
    pub version: u32,
    /// Current specification.
    pub spec: AppSpec,
    /// Lifecycle.
    pub status: AppStatus,
    /// Prepaid funds not yet paid out (reserved in the owner's account).
    pub deposit: Balance,
    /// The part of `deposit` held for work done under closed leases and not yet reported.
    pub held: Balance,
    /// Where it runs.
    pub placement: Option<Placement>,
    /// Leases created so far (numbers the next one).
    pub leases: u32,
    /// Restarts requested by the owner.
    pub restarts: u32,
    /// Last epoch of the grace period, when the deposit is running out.
    pub grace_until: Option<EpochNumber>,
    /// Consecutive reports of its worker that left it out (it moves after `max_missed_proofs`).
    pub unproven_reports: u32,
    /// Height created.
    pub created_at: BlockNumber,
}
codec_struct!(App {
    id,
    owner,
    version,
    spec,
    status,
    deposit,
    held,
    placement,
    leases,
    restarts,
    grace_until,
    unproven_reports,
    created_at
});

/// What produced a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum VersionChange {
    /// Creation.
    Created,
    /// A new specification.
    Updated,
    /// New settings (env, secrets, replicas, or execution).
    Settings,
}
codec_enum!(VersionChange {
    0 => Created,
    1 => Updated,
    2 => Settings,
});

/// One entry of an app's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppVersion {
    /// Version number.
    pub version: u32,
    /// The specification of that version.
    pub spec: AppSpec,
    /// What produced it.
    pub change: VersionChange,
    /// Height.
    pub at: BlockNumber,
}
codec_struct!(AppVersion {
    version,
    spec,
    change,
    at
});

/// Settings an owner may change without a new image: each present field replaces the current.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppSettings {
    /// Plain environment variables.
    pub env: Option<BoundedVec<EnvVar, MAX_ENV>>,
    /// Secret names.
    pub secrets: Option<BoundedVec<EnvName, MAX_SECRETS>>,
    /// Replicas.
    pub replicas: Option<u32>,
}
codec_struct!(AppSettings {
    env,
    secrets,
    replicas
});

/// A task's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TaskStatus {
    /// Runs when due.
    Active,
    /// Stopped before completing.
    Stopped {
        /// Why.
        reason: StopReason,
    },
    /// Reached its run limit and every run ended.
    Completed,
}
codec_enum!(TaskStatus {
    0 => Active,
    1 => Stopped { reason },
    2 => Completed,
});

/// When a task's next run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum Due {
    /// At this block height.
    Height {
        /// Height.
        height: BlockNumber,
    },
    /// At the first block stamped at or after this time.
    Time {
        /// Unix milliseconds.
        ms: TimestampMs,
    },
}
codec_enum!(Due {
    0 => Height { height },
    1 => Time { ms },
});

/// A one-off or periodic task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Who created it and pays for it.
    pub owner: AccountId,
    /// Current version, from 1.
    pub version: u32,
    /// Current specification.
    pub spec: TaskSpec,
    /// Lifecycle.
    pub status: TaskStatus,
    /// Prepaid funds not yet paid out (reserved in the owner's account).
    pub deposit: Balance,
    /// The part of `deposit` in escrow for runs in flight.
    pub held: Balance,
    /// Runs created so far (the next run's number minus one).
    pub runs: u32,
    /// Runs that ended (finished or expired).
    pub runs_ended: u32,
    /// When the next run is due.
    pub next_due: Option<Due>,
    /// A run waiting for a worker.
    pub waiting_run: Option<u32>,
    /// Height created.
    pub created_at: BlockNumber,
}
codec_struct!(Task {
    id,
    owner,
    version,
    spec,
    status,
    deposit,
    held,
    runs,
    runs_ended,
    next_due,
    waiting_run,
    created_at
});

/// One entry of a task's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TaskVersion {
    /// Version number.
    pub version: u32,
    /// The specification of that version.
    pub spec: TaskSpec,
    /// What produced it.
    pub change: VersionChange,
    /// Height.
    pub at: BlockNumber,
}
codec_struct!(TaskVersion {
    version,
    spec,
    change,
    at
});

/// A run's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Due, waiting for a worker.
    Waiting,
    /// Assigned to a worker.
    Assigned,
    /// The worker reported its result.
    Finished,
    /// No result arrived in time; nothing was paid.
    Expired,
    /// The owner stopped the task before the run was placed.
    Cancelled,
}
codec_enum!(RunStatus {
    0 => Waiting,
    1 => Assigned,
    2 => Finished,
    3 => Expired,
    4 => Cancelled,
});

/// What a worker reported about a finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RunResult {
    /// The container's exit code.
    pub exit_code: i32,
    /// Hash of its output (stdout and the files it declared).
    pub output_hash: Hash,
    /// Merkle root of its log chunks.
    pub log_root: Hash,
    /// Wall time, capped by the timeout for payment.
    pub duration_ms: u64,
    /// Resources it consumed.
    pub usage: Usage,
    /// What the owner paid for it.
    pub paid: Balance,
    /// The report's epoch.
    pub epoch: EpochNumber,
}
codec_struct!(RunResult {
    exit_code,
    output_hash,
    log_root,
    duration_ms,
    usage,
    paid,
    epoch
});

/// One run of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TaskRun {
    /// The task.
    pub task: TaskId,
    /// Its number, from 1.
    pub run: u32,
    /// The task version it runs.
    pub version: u32,
    /// Lifecycle.
    pub status: RunStatus,
    /// Height it became due.
    pub due_at: BlockNumber,
    /// The worker it was assigned to.
    pub worker: Option<WorkerId>,
    /// Height it was assigned.
    pub assigned_at: Option<BlockNumber>,
    /// Block time it was assigned.
    pub assigned_ms: Option<TimestampMs>,
    /// Its timeout, fixed when it was assigned.
    pub timeout_secs: u32,
    /// Block time after which the worker must have killed it.
    pub deadline_ms: Option<TimestampMs>,
    /// Price per epoch of its resources on its worker.
    pub price_per_epoch: Balance,
    /// The most it can cost (its timeout's worth), held from the task's deposit.
    pub escrow: Balance,
    /// Whether it still occupies worker capacity.
    pub holds_capacity: bool,
    /// The result, once reported.
    pub result: Option<RunResult>,
}
codec_struct!(TaskRun {
    task,
    run,
    version,
    status,
    due_at,
    worker,
    assigned_at,
    assigned_ms,
    timeout_secs,
    deadline_ms,
    price_per_epoch,
    escrow,
    holds_capacity,
    result
});

/// A worker's right to be paid for an app between two heights, at a fixed price.
///
/// A lease opens when an app is placed and closes when it stops, moves or is repriced. Work
/// reports settle it epoch by epoch; a closed lease keeps `hold` of the app's deposit until its
/// last epoch is settled or can no longer be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Lease {
    /// The app.
    pub app: AppId,
    /// The worker.
    pub worker: WorkerId,
    /// The app's lease number.
    pub seq: u32,
    /// Price per epoch of all replicas.
    pub price_per_epoch: Balance,
    /// First height covered.
    pub start: BlockNumber,
    /// First height not covered, once closed.
    pub end: Option<BlockNumber>,
    /// Heights before this are settled (paid or forfeited).
    pub settled_to: BlockNumber,
    /// Deposit held for the unsettled part of a closed lease.
    pub hold: Balance,
}
codec_struct!(Lease {
    app,
    worker,
    seq,
    price_per_epoch,
    start,
    end,
    settled_to,
    hold
});

/// Largest DCAP collateral the registry stores (Intel's TDX collateral is about 25 KiB).
pub const MAX_COLLATERAL_BYTES: usize = 64 * 1024;

/// Intel collateral for one platform family (TEE kind and FMSPC), checked when posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CollateralRecord {
    /// SGX or TDX.
    pub kind: TeeKind,
    /// The platform family.
    #[serde(with = "crate::attestation::hex_array")]
    pub fmspc: [u8; 6],
    /// The collateral, JSON in `QuoteCollateralV3` layout.
    pub json: BoundedBytes<MAX_COLLATERAL_BYTES>,
    /// When Intel issued its TCB Info, in Unix seconds.
    pub issued_at_secs: u64,
    /// When it expires (its earliest `nextUpdate`), in Unix seconds: evidence of this family
    /// cannot be verified after that until newer collateral is posted.
    pub next_update_secs: u64,
    /// Intel's TCB evaluation data number: posts never go back to an older one.
    pub tcb_evaluation_data_number: u32,
    /// Who posted it.
    pub posted_by: AccountId,
    /// Height.
    pub posted_at: BlockNumber,
}
codec_struct!(CollateralRecord {
    kind,
    fmspc,
    json,
    issued_at_secs,
    next_update_secs,
    tcb_evaluation_data_number,
    posted_by,
    posted_at
});

/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 2048;
/// Largest sealed secret: the value plus the AEAD tag.
pub const MAX_SEALED_BYTES: usize = MAX_SECRET_BYTES + 16;

/// A value sealed with HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305) to one public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SealedBox {
    /// The sender's ephemeral public key.
    #[serde(with = "crate::attestation::hex_array")]
    pub enc: [u8; 32],
    /// The ciphertext and tag.
    pub ciphertext: BoundedBytes<MAX_SEALED_BYTES>,
}
codec_struct!(SealedBox { enc, ciphertext });

/// At most this many bytes of an app's output go into its failure report.
pub const MAX_LOG_TAIL_BYTES: usize = 4096;
/// The size of every sealed log tail: a 32-byte commitment nonce, the tail's length (2 bytes),
/// the tail padded to [`MAX_LOG_TAIL_BYTES`] (so the size says nothing of it), the AEAD tag.
pub const MAX_SEALED_LOG_BYTES: usize = 32 + 2 + MAX_LOG_TAIL_BYTES + 16;

/// An app's last log lines, sealed with HPKE to its owner's sealing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SealedLog {
    /// The sender's ephemeral public key.
    #[serde(with = "crate::attestation::hex_array")]
    pub enc: [u8; 32],
    /// The ciphertext and tag.
    pub ciphertext: BoundedBytes<MAX_SEALED_LOG_BYTES>,
}
codec_struct!(SealedLog { enc, ciphertext });

/// One secret of an app, sealed twice: to the worker's TEE, which injects it, and to the
/// owner, who can reseal it to the next worker without typing it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SealedSecret {
    /// The secret's name, one the app's spec declares.
    pub name: EnvName,
    /// The app's secrets revision ([`AppSecrets::revision`]) it was sealed in; bound into both
    /// seals, so an older ciphertext cannot be passed off as a newer one.
    pub revision: u32,
    /// Sealed to the worker's sealing key.
    pub for_worker: SealedBox,
    /// Sealed to the owner's key.
    pub for_owner: SealedBox,
}
codec_struct!(SealedSecret {
    name,
    revision,
    for_worker,
    for_owner
});

/// Most image digests an app's secrets may be given to at once.
pub const MAX_ALLOWED_IMAGES: usize = 8;

/// Domain tag of the owner's signature over an app's secrets record.
pub const SECRETS_SIGNATURE_DOMAIN: &[u8] = b"wetee/app-secrets/v1";

/// An app's sealed secrets, the worker they are sealed to, and the images allowed to receive
/// them, signed by the app's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppSecrets {
    /// The worker whose TEE can open them.
    pub worker: WorkerId,
    /// That worker's sealing key when they were sealed.
    #[serde(with = "crate::attestation::hex_array")]
    pub sealing_key: [u8; 32],
    /// Counts the owner's changes, from 1: each change seals its secrets under the next one.
    pub revision: u32,
    /// The secrets, sorted by name.
    pub secrets: BoundedVec<SealedSecret, MAX_SECRETS>,
    /// Digests of the images allowed to receive them: a container of any other image gets none.
    pub allowed_images: BoundedVec<ImageDigest, MAX_ALLOWED_IMAGES>,
    /// The owner's signature over all of the above ([`AppSecrets::signing_payload`]): a worker
    /// gives the secrets only to what the app's owner signed, whoever wrote the record.
    pub owner_signature: crate::crypto::Signature,
}
codec_struct!(AppSecrets {
    worker,
    sealing_key,
    revision,
    secrets,
    allowed_images,
    owner_signature
});

/// An image's content digest (the SHA-256 of [`crate::manifest::ImageRef::digest`]), as 32 bytes.
pub type ImageDigest = Hash;

/// What the owner signs: everything an [`AppSecrets`] record holds but the signature.
pub fn secrets_signing_payload(
    genesis_hash: &Hash,
    app: AppId,
    worker: WorkerId,
    sealing_key: &[u8; 32],
    revision: u32,
    secrets: &[SealedSecret],
    allowed_images: &[ImageDigest],
) -> Vec<u8> {
    let mut payload = SECRETS_SIGNATURE_DOMAIN.to_vec();
    payload.extend_from_slice(&genesis_hash.0);
    payload.extend_from_slice(&app.0.to_be_bytes());
    payload.extend_from_slice(&worker.0.to_be_bytes());
    payload.extend_from_slice(sealing_key);
    payload.extend_from_slice(&revision.to_be_bytes());
    payload.extend_from_slice(&(secrets.len() as u64).to_be_bytes());
    for secret in secrets {
        payload.extend_from_slice(&crate::codec::encode(secret));
    }
    payload.extend_from_slice(&(allowed_images.len() as u64).to_be_bytes());
    for image in allowed_images {
        payload.extend_from_slice(&image.0);
    }
    payload
}

/// The secrets a change leaves: those `set` now, and those of `stored` it neither sets nor
/// removes, sorted by name. Callers check names and revisions first.
pub fn merge_secrets(
    stored: Option<&AppSecrets>,
    set: &[SealedSecret],
    remove: &[EnvName],
) -> Vec<SealedSecret> {
    let mut merged: std::collections::BTreeMap<EnvName, SealedSecret> = set
        .iter()
        .map(|secret| (secret.name.clone(), secret.clone()))
        .collect();
    for kept in stored.iter().flat_map(|s| s.secrets.iter()) {
        if !remove.contains(&kept.name) && !merged.contains_key(&kept.name) {
            merged.insert(kept.name.clone(), kept.clone());
        }
    }
    merged.into_values().collect()
}

impl AppSecrets {
    /// What the owner signs for this record.
    pub fn signing_payload(&self, genesis_hash: &Hash, app: AppId) -> Vec<u8> {
        secrets_signing_payload(
            genesis_hash,
            app,
            self.worker,
            &self.sealing_key,
            self.revision,
            &self.secrets,
            &self.allowed_images,
        )
    }

    /// Whether `owner` signed this record, for `app` on the chain `genesis_hash`.
    pub fn signed_by(&self, owner: &AccountId, genesis_hash: &Hash, app: AppId) -> bool {
        self.owner_signature
            .verify_account(&self.signing_payload(genesis_hash, app), owner)
    }

    /// Whether the image `digest` may receive these secrets.
    pub fn allows_image(&self, digest: &[u8; 32]) -> bool {
        self.allowed_images
            .iter()
            .any(|allowed| allowed.0 == *digest)
    }

    /// The secret named `name`.
    pub fn get(&self, name: &str) -> Option<&SealedSecret> {
        self.secrets.iter().find(|s| s.name.as_str() == name)
    }
}

/// Most workloads one worker holds: what one work report can prove.
pub const MAX_WORKER_WORKLOADS: usize = crate::report::MAX_REPORT_APPS;

/// One workload placed on a worker, with a digest of everything the worker acts on for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Assignment {
    /// The workload.
    pub workload: Workload,
    /// For an app, [`app_stamp`] of its current records: a worker that proved the records
    /// earlier and finds the same stamp in a newer state knows that nothing it acts on changed,
    /// so it need not read them again. Zero for a task run (read at every pass).
    pub stamp: Hash,
}
codec_struct!(Assignment { workload, stamp });

/// Every workload placed on a worker, in workload order. One record rather than one key per
/// workload, so that one state proof shows a light client the list is complete: keys are hashed
/// in the state's Merkle structure, so no proof can show that a prefix holds nothing more.
pub type Assignments = BoundedVec<Assignment, MAX_WORKER_WORKLOADS>;

/// Domain of [`app_stamp`].
pub const APP_STAMP_DOMAIN: &[u8] = b"wetee/app-stamp/v1";

/// The part of an app's record a worker acts on: what it runs (id, owner, version, spec,
/// restarts), whether it runs it (status, the placement's worker), and the sealed secrets. The
/// rest (deposit, leases, grace) changes every epoch and is the chain's business.
pub fn app_stamp(app: &App, secrets: Option<&AppSecrets>) -> Hash {
    use crate::codec::encode;
    let mut bytes = APP_STAMP_DOMAIN.to_vec();
    bytes.extend_from_slice(&encode(&app.id));
    bytes.extend_from_slice(&encode(&app.owner));
    bytes.extend_from_slice(&encode(&app.version));
    bytes.extend_from_slice(&encode(&app.spec));
    bytes.extend_from_slice(&encode(&app.status));
    bytes.extend_from_slice(&encode(&app.restarts));
    bytes.extend_from_slice(&encode(&app.placement.map(|p| p.worker)));
    bytes.extend_from_slice(&encode(&secrets.cloned()));
    Hash::of(&bytes)
}

/// Whether two versions of an app's record give the same [`app_stamp`] for the same secrets.
pub fn same_for_worker(a: &App, b: &App) -> bool {
    app_stamp(a, None) == app_stamp(b, None)
}
