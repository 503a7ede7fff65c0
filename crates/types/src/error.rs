//! Why a transaction was refused (it is not included) or its call failed (it is included, pays
//! its fee, and changes nothing else).

use crate::balance::Balance;
use crate::codec::BoundedString;
use crate::codec_enum;
use crate::ids::{AppId, BlockNumber, ComplaintId, EpochNumber, TaskId, WorkerId};
use crate::manifest::ManifestError;
use crate::records::WorkerStatus;
use crate::resources::TeeKind;
use crate::weight::Weight;
use serde::{Deserialize, Serialize};

/// Short free text carried in an error.
pub type ErrorText = BoundedString<512>;

/// Truncates `text` to fit an [`ErrorText`] on a character boundary.
pub fn error_text(text: &str) -> ErrorText {
    let mut end = text.len().min(ErrorText::MAX);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    BoundedString::try_new(text.get(..end).unwrap_or_default()).unwrap_or_default()
}

/// A transaction that cannot be included in a block: the mempool rejects it with this reason and
/// a block containing it is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum TxError {
    /// The bytes are not a transaction.
    #[error("the transaction cannot be decoded: {reason}")]
    Undecodable {
        /// The decoder's message.
        reason: String,
    },
    /// Larger than the limit.
    #[error("the transaction is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The signature does not verify for this signer and this chain.
    #[error("bad signature: not signed by the signer's key for this chain (genesis hash)")]
    BadSignature,
    /// Past its expiry height.
    #[error("expired at height {expires_at}; the chain is at {height}")]
    Expired {
        /// The transaction's expiry.
        expires_at: BlockNumber,
        /// The current height.
        height: BlockNumber,
    },
    /// A nonce already used.
    #[error("nonce {got} is already used; the account's next nonce is {expected}")]
    StaleNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// A nonce ahead of the account's next one.
    #[error("nonce {got} is ahead of the account's next nonce {expected}")]
    FutureNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The offered fee is below the minimum for its size.
    #[error("the fee {offered} is below the minimum {minimum} for this transaction")]
    FeeTooLow {
        /// The minimum.
        minimum: Balance,
        /// The offered fee.
        offered: Balance,
    },
    /// The signer cannot pay the fee.
    #[error("the signer's free balance {free} cannot pay the fee {fee}")]
    CannotPayFee {
        /// The fee.
        fee: Balance,
        /// The signer's free balance.
        free: Balance,
    },
    /// Heavier than any block may be: it can never be included.
    #[error("the transaction's weight {weight} is more than a block may hold ({max})")]
    TooHeavy {
        /// Its weight.
        weight: Weight,
        /// The chain's block weight limit.
        max: Weight,
    },
    /// Heavier than what is left of this block: it waits for the next one.
    #[error("the transaction's weight {weight} is more than is left in this block ({remaining})")]
    BlockFull {
        /// Its weight.
        weight: Weight,
        /// What the block can still take.
        remaining: Weight,
    },
    /// The runtime's state is damaged; the node must stop.
    #[error("state error: {0}")]
    State(String),
}

/// Why a call failed. Stored in receipts, so every variant has a stable tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CallError {
    /// Not enough free balance.
    #[error("insufficient free balance: {needed} needed, {available} available")]
    InsufficientBalance {
        /// Needed.
        needed: Balance,
        /// Available.
        available: Balance,
    },
    /// An amount of zero where something must move.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// Arithmetic would overflow.
    #[error("the amounts involved overflow")]
    Overflow,
    /// No such worker.
    #[error("worker {worker} does not exist")]
    WorkerNotFound {
        /// Id.
        worker: WorkerId,
    },
    /// No such app.
    #[error("app {app} does not exist")]
    AppNotFound {
        /// Id.
        app: AppId,
    },
    /// No such task.
    #[error("task {task} does not exist")]
    TaskNotFound {
        /// Id.
        task: TaskId,
    },
    /// No such complaint.
    #[error("complaint {complaint} does not exist")]
    ComplaintNotFound {
        /// Id.
        complaint: ComplaintId,
    },
    /// The signer does not operate this worker.
    #[error("only the operator of worker {worker} may do this")]
    NotWorkerOperator {
        /// Id.
        worker: WorkerId,
    },
    /// The signer does not own this app.
    #[error("only the owner of app {app} may do this")]
    NotAppOwner {
        /// Id.
        app: AppId,
    },
    /// The signer does not own this task.
    #[error("only the owner of task {task} may do this")]
    NotTaskOwner {
        /// Id.
        task: TaskId,
    },
    /// The call needs the root origin.
    #[error("only the root key may do this")]
    NotRoot,
    /// A manifest field is invalid.
    #[error("invalid manifest: {field}: {problem}")]
    InvalidManifest {
        /// The field.
        field: ErrorText,
        /// The problem.
        problem: ErrorText,
    },
    /// A worker profile field is invalid.
    #[error("invalid worker profile: {field}: {problem}")]
    InvalidWorkerProfile {
        /// The field.
        field: ErrorText,
        /// The problem.
        problem: ErrorText,
    },
    /// Chain parameters that do not make sense.
    #[error("invalid parameters: {problem}")]
    InvalidParams {
        /// The problem.
        problem: ErrorText,
    },
    /// The simulated TEE on a chain that does not allow it.
    #[error("this chain does not accept the simulated TEE (allow_simulated_tee is false)")]
    SimulatedTeeNotAllowed,
    /// The evidence's TEE is not one the worker declares.
    #[error("the evidence is from {kind}, which the worker's profile does not list")]
    EvidenceKindNotDeclared {
        /// The evidence's kind.
        kind: TeeKind,
    },
    /// Attestation evidence refused by the verifier.
    #[error("attestation evidence rejected: {reason}")]
    EvidenceRejected {
        /// The verifier's reason.
        reason: ErrorText,
    },
    /// The worker's stake is below what its level requires.
    #[error("worker {worker} has {staked} staked; its level requires {required}")]
    InsufficientStake {
        /// Id.
        worker: WorkerId,
        /// Required.
        required: Balance,
        /// Staked.
        staked: Balance,
    },
    /// Unstaking more than is staked.
    #[error("worker {worker} has only {staked} staked")]
    StakeTooLow {
        /// Id.
        worker: WorkerId,
        /// Staked.
        staked: Balance,
    },
    /// The worker is not in a state that allows this.
    #[error("worker {worker} is {status}")]
    WrongWorkerStatus {
        /// Id.
        worker: WorkerId,
        /// Its status.
        status: WorkerStatus,
    },
    /// A profile change that would break placed workloads.
    #[error("worker {worker} has {workloads} workloads placed: {problem}")]
    WorkerBusy {
        /// Id.
        worker: WorkerId,
        /// Workloads placed.
        workloads: u32,
        /// What would break.
        problem: ErrorText,
    },
    /// Too many unstakes in flight.
    #[error("worker {worker} already has the maximum of pending unstakes; withdraw first")]
    UnbondingQueueFull {
        /// Id.
        worker: WorkerId,
    },
    /// Nothing to withdraw.
    #[error("worker {worker} has no earnings and no unlocked stake to withdraw")]
    NothingToWithdraw {
        /// Id.
        worker: WorkerId,
    },
    /// A report for an epoch that has not ended.
    #[error("epoch {epoch} has not ended; the current epoch is {current}")]
    EpochNotEnded {
        /// The report's epoch.
        epoch: EpochNumber,
        /// The current epoch.
        current: EpochNumber,
    },
    /// A report after its window.
    #[error(
        "the window for reporting epoch {epoch} has closed; the oldest reportable epoch is {oldest}"
    )]
    ReportTooLate {
        /// The report's epoch.
        epoch: EpochNumber,
        /// The oldest accepted.
        oldest: EpochNumber,
    },
    /// A report for an epoch already reported, or older than the last one.
    #[error("worker {worker} already reported epoch {last}; reports must be for later epochs")]
    ReportReplayed {
        /// Id.
        worker: WorkerId,
        /// The last reported epoch.
        last: EpochNumber,
    },
    /// A work or failure report not signed by the worker's identity key.
    #[error("the report is not signed by worker {worker}'s identity key")]
    ReportSignatureInvalid {
        /// Id.
        worker: WorkerId,
    },
    /// The report names an app the worker did not run in that epoch.
    #[error("app {app} was not leased to worker {worker} in epoch {epoch}")]
    AppNotLeased {
        /// The app.
        app: AppId,
        /// The worker.
        worker: WorkerId,
        /// The epoch.
        epoch: EpochNumber,
    },
    /// A failure report about another version of the app, or observed too long ago.
    #[error(
        "the failure report is about version {version} of app {app} as of block {observed_at}: not its current version, or older than the chain accepts"
    )]
    FailureReportStale {
        /// The app.
        app: AppId,
        /// The version reported.
        version: u32,
        /// The height it was observed at.
        observed_at: BlockNumber,
    },
    /// The app does not run on that worker.
    #[error("app {app} does not run on worker {worker}")]
    AppNotOnWorker {
        /// The app.
        app: AppId,
        /// The worker.
        worker: WorkerId,
    },
    /// The report lists an app twice.
    #[error("app {app} appears twice in the report")]
    DuplicateAppProof {
        /// The app.
        app: AppId,
    },
    /// Uptime above 100 %.
    #[error("uptime {uptime_bps} basis points exceeds 10000")]
    InvalidUptime {
        /// The claimed uptime.
        uptime_bps: u16,
    },
    /// The report carries a run the worker was not assigned or that already ended.
    #[error("run {run} of task {task} is not an open run of worker {worker}")]
    RunNotAssigned {
        /// The task.
        task: TaskId,
        /// The run.
        run: u32,
        /// The worker.
        worker: WorkerId,
    },
    /// A deposit below the minimum.
    #[error("the deposit must be at least {minimum}")]
    DepositTooLow {
        /// The minimum.
        minimum: Balance,
    },
    /// The app is stopped.
    #[error("app {app} is stopped")]
    AppStopped {
        /// Id.
        app: AppId,
    },
    /// The task is no longer active.
    #[error("task {task} is no longer active")]
    TaskNotActive {
        /// Id.
        task: TaskId,
    },
    /// A settings change that changes nothing.
    #[error("nothing to change: give at least one setting")]
    NothingToChange,
    /// A complaint bond below the minimum.
    #[error("the complaint bond must be at least {minimum}")]
    BondTooLow {
        /// The minimum.
        minimum: Balance,
    },
    /// The complaint was already resolved.
    #[error("complaint {complaint} is already resolved")]
    ComplaintResolved {
        /// Id.
        complaint: ComplaintId,
    },
    /// The complaint is about another worker.
    #[error("complaint {complaint} is not about worker {worker}")]
    ComplaintWorkerMismatch {
        /// Id.
        complaint: ComplaintId,
        /// The worker slashed.
        worker: WorkerId,
    },
    /// The identity key did not sign the operator binding.
    #[error("the identity key's proof (key_proof) is not a signature over this operator and chain")]
    KeyProofInvalid,
    /// Another worker already registered this identity key.
    #[error("the identity key is already registered by worker {worker}")]
    IdentityKeyInUse {
        /// The worker holding it.
        worker: WorkerId,
    },
    /// Collateral that is not genuine, current and newer than what the chain has.
    #[error("collateral rejected: {reason}")]
    CollateralRejected {
        /// Why.
        reason: ErrorText,
    },
    /// The worker's evidence no longer vouches for it.
    #[error(
        "worker {worker}'s attestation expired at {expired_at_ms} ms: send fresh evidence with the report"
    )]
    AttestationExpired {
        /// Worker.
        worker: WorkerId,
        /// When it expired (block time, milliseconds).
        expired_at_ms: u64,
    },
    /// Secrets sealed to a worker the app is not placed on.
    #[error(
        "app {app} is not placed on worker {worker}: seal its secrets to the worker it is placed on"
    )]
    SecretsWrongWorker {
        /// App.
        app: AppId,
        /// The worker named.
        worker: WorkerId,
    },
    /// Secrets sealed to a key the worker no longer has.
    #[error("worker {worker}'s sealing key changed: fetch its attestation again and reseal")]
    SealingKeyChanged {
        /// Worker.
        worker: WorkerId,
    },
    /// A secret the app's spec does not declare.
    #[error("the app does not declare a secret named `{name}`")]
    SecretNotDeclared {
        /// The name.
        name: ErrorText,
    },
    /// A secret sealed under the wrong revision.
    #[error("secret `{name}` must be sealed as revision {expected}")]
    SecretRevision {
        /// The name.
        name: ErrorText,
        /// The revision the chain expects.
        expected: u32,
    },
    /// A reseal to another worker that leaves a secret behind.
    #[error(
        "secret `{name}` is sealed to another worker key: reseal every secret together (`wetee app secrets reseal`)"
    )]
    SecretNotResealed {
        /// The name.
        name: ErrorText,
    },
    /// The owner's signature does not cover the app's secrets as they would be stored.
    #[error(
        "the app owner's signature does not match the secrets record this call would store: sign the record again"
    )]
    SecretsSignature,
    /// An update to an image the app's secrets may not be given to, without the owner's consent.
    #[error(
        "the new image may not receive the app's secrets: sign the secrets record again with the new image allowed"
    )]
    ImageNotAllowedSecrets,
    /// A secret named twice in one call.
    #[error("secret `{name}` appears twice")]
    DuplicateSecret {
        /// The name.
        name: ErrorText,
    },
    /// The stored state could not be read: a bug, never the caller's fault.
    #[error("internal state error: {detail}")]
    State {
        /// What could not be read.
        detail: ErrorText,
    },
}

codec_enum!(CallError {
    0 => InsufficientBalance { needed, available },
    1 => ZeroAmount,
    2 => Overflow,
    3 => WorkerNotFound { worker },
    4 => AppNotFound { app },
    5 => TaskNotFound { task },
    6 => ComplaintNotFound { complaint },
    7 => NotWorkerOperator { worker },
    8 => NotAppOwner { app },
    9 => NotTaskOwner { task },
    10 => NotRoot,
    11 => InvalidManifest { field, problem },
    12 => InvalidWorkerProfile { field, problem },
    13 => InvalidParams { problem },
    14 => SimulatedTeeNotAllowed,
    15 => EvidenceKindNotDeclared { kind },
    16 => EvidenceRejected { reason },
    17 => InsufficientStake { worker, required, staked },
    18 => StakeTooLow { worker, staked },
    19 => WrongWorkerStatus { worker, status },
    20 => WorkerBusy { worker, workloads, problem },
    21 => UnbondingQueueFull { worker },
    22 => NothingToWithdraw { worker },
    23 => EpochNotEnded { epoch, current },
    24 => ReportTooLate { epoch, oldest },
    25 => ReportReplayed { worker, last },
    26 => ReportSignatureInvalid { worker },
    27 => AppNotLeased { app, worker, epoch },
    28 => DuplicateAppProof { app },
    29 => InvalidUptime { uptime_bps },
    30 => RunNotAssigned { task, run, worker },
    31 => DepositTooLow { minimum },
    32 => AppStopped { app },
    33 => TaskNotActive { task },
    34 => NothingToChange,
    35 => BondTooLow { minimum },
    36 => ComplaintResolved { complaint },
    37 => ComplaintWorkerMismatch { complaint, worker },
    38 => State { detail },
    39 => IdentityKeyInUse { worker },
    40 => KeyProofInvalid,
    41 => AppNotOnWorker { app, worker },
    42 => CollateralRejected { reason },
    43 => SecretsWrongWorker { app, worker },
    44 => SealingKeyChanged { worker },
    45 => SecretNotDeclared { name },
    46 => SecretRevision { name, expected },
    47 => DuplicateSecret { name },
    48 => AttestationExpired { worker, expired_at_ms },
    49 => SecretNotResealed { name },
    50 => SecretsSignature,
    51 => ImageNotAllowedSecrets,
    52 => FailureReportStale { app, version, observed_at },
});

impl From<ManifestError> for CallError {
    fn from(e: ManifestError) -> CallError {
        CallError::InvalidManifest {
            field: error_text(&e.field),
            problem: error_text(&e.problem),
        }
    }
}

impl From<crate::codec::CodecError> for CallError {
    fn from(e: crate::codec::CodecError) -> CallError {
        CallError::State {
            detail: error_text(&format!("undecodable stored value: {e}")),
        }
    }
}
