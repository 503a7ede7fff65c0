//! Events (what happened, for indexers, wallets and the worker) and receipts (what one
//! transaction did).

use crate::balance::Balance;
use crate::codec::{BoundedString, BoundedVec};
use crate::crypto::{AccountId, Hash};
use crate::error::CallError;
use crate::ids::{AppId, BlockNumber, ComplaintId, EpochNumber, TaskId, WorkerId, Workload};
use crate::records::StopReason;
use crate::{codec_enum, codec_struct};
use serde::{Deserialize, Serialize};

/// Events one receipt can carry (a full work report emits about two per entry).
pub const MAX_RECEIPT_EVENTS: usize = 16 * 1024;

/// Something that happened on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Tokens moved.
    Transferred {
        /// Sender.
        from: AccountId,
        /// Recipient.
        to: AccountId,
        /// Amount.
        amount: Balance,
    },
    /// An account published its sealing key.
    SealingKeySet {
        /// The account.
        account: AccountId,
    },
    /// A worker registered.
    WorkerRegistered {
        /// Worker.
        worker: WorkerId,
        /// Its operator.
        operator: AccountId,
    },
    /// A worker's profile or keys changed.
    WorkerUpdated {
        /// Worker.
        worker: WorkerId,
    },
    /// Stake bonded.
    WorkerStaked {
        /// Worker.
        worker: WorkerId,
        /// Amount added.
        amount: Balance,
        /// New stake.
        stake: Balance,
    },
    /// Stake started unbonding.
    WorkerUnstaked {
        /// Worker.
        worker: WorkerId,
        /// Amount.
        amount: Balance,
        /// When it can be withdrawn.
        unlock_at: BlockNumber,
    },
    /// A worker accepts placements.
    WorkerStarted {
        /// Worker.
        worker: WorkerId,
    },
    /// A worker drains before stopping.
    WorkerDraining {
        /// Worker.
        worker: WorkerId,
    },
    /// A worker stopped.
    WorkerStopped {
        /// Worker.
        worker: WorkerId,
    },
    /// A worker missed too many reports and was suspended.
    WorkerSuspended {
        /// Worker.
        worker: WorkerId,
        /// Consecutive epochs without a report.
        missed_epochs: u64,
    },
    /// A work report was accepted.
    WorkReportAccepted {
        /// Worker.
        worker: WorkerId,
        /// Epoch covered.
        epoch: EpochNumber,
        /// Total paid to the worker (after the protocol fee).
        earned: Balance,
    },
    /// Earnings and unlocked stake withdrawn.
    WorkerWithdrew {
        /// Worker.
        worker: WorkerId,
        /// Amount.
        amount: Balance,
    },
    /// A complaint was filed.
    ComplaintFiled {
        /// Complaint.
        complaint: ComplaintId,
        /// Worker.
        worker: WorkerId,
        /// Who filed it.
        reporter: AccountId,
    },
    /// A worker was slashed.
    WorkerSlashed {
        /// Worker.
        worker: WorkerId,
        /// Amount taken.
        amount: Balance,
        /// The complaint upheld.
        complaint: Option<ComplaintId>,
    },
    /// A complaint was dismissed.
    ComplaintDismissed {
        /// Complaint.
        complaint: ComplaintId,
    },
    /// An app was created.
    AppCreated {
        /// App.
        app: AppId,
        /// Owner.
        owner: AccountId,
    },
    /// A new app version.
    AppUpdated {
        /// App.
        app: AppId,
        /// Version.
        version: u32,
    },
    /// A restart was requested.
    AppRestarted {
        /// App.
        app: AppId,
        /// Restarts so far.
        restarts: u32,
    },
    /// Deposit added.
    AppRecharged {
        /// App.
        app: AppId,
        /// Amount.
        amount: Balance,
        /// New deposit.
        deposit: Balance,
    },
    /// The deposit cannot pay for the next epoch: the grace period started.
    AppDepositLow {
        /// App.
        app: AppId,
        /// Last epoch of grace.
        grace_until: EpochNumber,
    },
    /// An app's worker could not run it; it stopped (see its failure record).
    AppFailed {
        /// App.
        app: AppId,
        /// The worker.
        worker: WorkerId,
        /// Why.
        reason: BoundedString<256>,
    },
    /// An app stopped.
    AppStopped {
        /// App.
        app: AppId,
        /// Why.
        reason: StopReason,
        /// Deposit returned now.
        refund: Balance,
    },
    /// A task was created.
    TaskCreated {
        /// Task.
        task: TaskId,
        /// Owner.
        owner: AccountId,
    },
    /// A new task version.
    TaskUpdated {
        /// Task.
        task: TaskId,
        /// Version.
        version: u32,
    },
    /// Deposit added.
    TaskRecharged {
        /// Task.
        task: TaskId,
        /// Amount.
        amount: Balance,
        /// New deposit.
        deposit: Balance,
    },
    /// A task stopped before completing.
    TaskStopped {
        /// Task.
        task: TaskId,
        /// Why.
        reason: StopReason,
        /// Deposit returned now.
        refund: Balance,
    },
    /// A task reached its run limit and every run ended.
    TaskCompleted {
        /// Task.
        task: TaskId,
        /// Deposit returned.
        refund: Balance,
    },
    /// A run became due.
    TaskRunDue {
        /// Task.
        task: TaskId,
        /// Run.
        run: u32,
    },
    /// A run's result was recorded.
    TaskRunFinished {
        /// Task.
        task: TaskId,
        /// Run.
        run: u32,
        /// Worker.
        worker: WorkerId,
        /// Exit code.
        exit_code: i32,
        /// Paid to the worker (before the protocol fee).
        paid: Balance,
    },
    /// A run ended without a result; nothing was paid.
    TaskRunExpired {
        /// Task.
        task: TaskId,
        /// Run.
        run: u32,
    },
    /// A workload was placed on a worker.
    WorkloadPlaced {
        /// Workload.
        workload: Workload,
        /// Worker.
        worker: WorkerId,
        /// Price per epoch.
        price_per_epoch: Balance,
    },
    /// A workload waits for a worker.
    WorkloadPending {
        /// Workload.
        workload: Workload,
    },
    /// A workload left a worker (moved, stopped, drained).
    WorkloadReleased {
        /// Workload.
        workload: Workload,
        /// Worker.
        worker: WorkerId,
    },
    /// An owner paid a worker for an epoch of an app.
    AppPaid {
        /// App.
        app: AppId,
        /// Worker.
        worker: WorkerId,
        /// Epoch.
        epoch: EpochNumber,
        /// Amount taken from the deposit.
        amount: Balance,
        /// The treasury's share of it.
        protocol_fee: Balance,
    },
    /// The chain parameters changed.
    ParamsChanged,
    /// The root key changed.
    RootKeyChanged {
        /// The new root key.
        root: AccountId,
    },
    /// The attestation policy changed.
    AttestationPolicyChanged,
    /// Intel collateral for a platform family was posted and checked.
    CollateralPosted {
        /// SGX or TDX.
        kind: crate::resources::TeeKind,
        /// The platform family.
        #[serde(with = "crate::attestation::hex_array")]
        fmspc: [u8; 6],
        /// When it expires, in Unix seconds.
        next_update_secs: u64,
    },
    /// A worker's evidence was verified.
    WorkerAttested {
        /// Worker.
        worker: WorkerId,
        /// When the evidence stops vouching for it.
        expires_at_ms: crate::ids::TimestampMs,
    },
    /// The owner sealed secrets of an app to its worker.
    AppSecretsSet {
        /// App.
        app: AppId,
        /// The worker they are sealed to.
        worker: WorkerId,
    },
    /// An app was placed on a worker its secrets are not sealed to: it waits for the owner to
    /// reseal them.
    AppAwaitingSecrets {
        /// App.
        app: AppId,
        /// The worker it waits on.
        worker: WorkerId,
    },
}

codec_enum!(Event {
    0 => Transferred { from, to, amount },
    1 => WorkerRegistered { worker, operator },
    2 => WorkerUpdated { worker },
    3 => WorkerStaked { worker, amount, stake },
    4 => WorkerUnstaked { worker, amount, unlock_at },
    5 => WorkerStarted { worker },
    6 => WorkerDraining { worker },
    7 => WorkerStopped { worker },
    8 => WorkerSuspended { worker, missed_epochs },
    9 => WorkReportAccepted { worker, epoch, earned },
    10 => WorkerWithdrew { worker, amount },
    11 => ComplaintFiled { complaint, worker, reporter },
    12 => WorkerSlashed { worker, amount, complaint },
    13 => ComplaintDismissed { complaint },
    14 => AppCreated { app, owner },
    15 => AppUpdated { app, version },
    16 => AppRestarted { app, restarts },
    17 => AppRecharged { app, amount, deposit },
    18 => AppDepositLow { app, grace_until },
    19 => AppStopped { app, reason, refund },
    20 => TaskCreated { task, owner },
    21 => TaskUpdated { task, version },
    22 => TaskRecharged { task, amount, deposit },
    23 => TaskStopped { task, reason, refund },
    24 => TaskCompleted { task, refund },
    25 => TaskRunDue { task, run },
    26 => TaskRunFinished { task, run, worker, exit_code, paid },
    27 => TaskRunExpired { task, run },
    28 => WorkloadPlaced { workload, worker, price_per_epoch },
    29 => WorkloadPending { workload },
    30 => WorkloadReleased { workload, worker },
    31 => AppPaid { app, worker, epoch, amount, protocol_fee },
    32 => ParamsChanged,
    33 => RootKeyChanged { root },
    34 => AppFailed { app, worker, reason },
    35 => AttestationPolicyChanged,
    36 => CollateralPosted { kind, fmspc, next_update_secs },
    37 => WorkerAttested { worker, expires_at_ms },
    38 => AppSecretsSet { app, worker },
    39 => AppAwaitingSecrets { app, worker },
    40 => SealingKeySet { account },
});

impl Event {
    /// The app this event concerns, if any.
    pub fn app(&self) -> Option<AppId> {
        match self {
            Event::AppCreated { app, .. }
            | Event::AppUpdated { app, .. }
            | Event::AppRestarted { app, .. }
            | Event::AppRecharged { app, .. }
            | Event::AppDepositLow { app, .. }
            | Event::AppStopped { app, .. }
            | Event::AppFailed { app, .. }
            | Event::AppSecretsSet { app, .. }
            | Event::AppAwaitingSecrets { app, .. }
            | Event::AppPaid { app, .. } => Some(*app),
            Event::WorkloadPlaced { workload, .. }
            | Event::WorkloadPending { workload }
            | Event::WorkloadReleased { workload, .. } => match workload {
                Workload::App { app } => Some(*app),
                Workload::TaskRun { .. } => None,
            },
            _ => None,
        }
    }

    /// The task this event concerns, if any.
    pub fn task(&self) -> Option<TaskId> {
        match self {
            Event::TaskCreated { task, .. }
            | Event::TaskUpdated { task, .. }
            | Event::TaskRecharged { task, .. }
            | Event::TaskStopped { task, .. }
            | Event::TaskCompleted { task, .. }
            | Event::TaskRunDue { task, .. }
            | Event::TaskRunFinished { task, .. }
            | Event::TaskRunExpired { task, .. } => Some(*task),
            Event::WorkloadPlaced { workload, .. }
            | Event::WorkloadPending { workload }
            | Event::WorkloadReleased { workload, .. } => match workload {
                Workload::TaskRun { task, .. } => Some(*task),
                Workload::App { .. } => None,
            },
            _ => None,
        }
    }

    /// The worker this event concerns, if any.
    pub fn worker(&self) -> Option<WorkerId> {
        match self {
            Event::WorkerRegistered { worker, .. }
            | Event::WorkerUpdated { worker }
            | Event::WorkerStaked { worker, .. }
            | Event::WorkerUnstaked { worker, .. }
            | Event::WorkerStarted { worker }
            | Event::WorkerDraining { worker }
            | Event::WorkerStopped { worker }
            | Event::WorkerSuspended { worker, .. }
            | Event::WorkReportAccepted { worker, .. }
            | Event::WorkerWithdrew { worker, .. }
            | Event::ComplaintFiled { worker, .. }
            | Event::WorkerSlashed { worker, .. }
            | Event::TaskRunFinished { worker, .. }
            | Event::WorkloadPlaced { worker, .. }
            | Event::WorkloadReleased { worker, .. }
            | Event::AppPaid { worker, .. }
            | Event::WorkerAttested { worker, .. }
            | Event::AppSecretsSet { worker, .. }
            | Event::AppAwaitingSecrets { worker, .. }
            | Event::AppFailed { worker, .. } => Some(*worker),
            _ => None,
        }
    }

    /// The accounts this event names.
    pub fn accounts(&self) -> Vec<AccountId> {
        match self {
            Event::Transferred { from, to, .. } => vec![*from, *to],
            Event::WorkerRegistered { operator, .. } => vec![*operator],
            Event::ComplaintFiled { reporter, .. } => vec![*reporter],
            Event::AppCreated { owner, .. } | Event::TaskCreated { owner, .. } => vec![*owner],
            Event::RootKeyChanged { root } => vec![*root],
            _ => Vec::new(),
        }
    }
}

/// Whether a call succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The call's effects were applied.
    Success,
    /// The call changed nothing; only the fee was taken.
    Failed {
        /// Why.
        error: CallError,
    },
}
codec_enum!(Outcome {
    0 => Success,
    1 => Failed { error },
});

/// What one included transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Receipt {
    /// The transaction's hash.
    pub tx_hash: Hash,
    /// Its signer.
    pub signer: AccountId,
    /// Its nonce.
    pub nonce: u64,
    /// The fee taken.
    pub fee: Balance,
    /// Success or the error.
    pub outcome: Outcome,
    /// Events of a successful call (none for a failed one).
    pub events: BoundedVec<Event, MAX_RECEIPT_EVENTS>,
}
codec_struct!(Receipt {
    tx_hash,
    signer,
    nonce,
    fee,
    outcome,
    events
});

impl Receipt {
    /// Whether the call succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self.outcome, Outcome::Success)
    }
}
