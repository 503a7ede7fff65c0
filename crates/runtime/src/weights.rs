//! The weight table: what each call costs a validator to execute, in nanoseconds on the
//! reference machine (see [`wetee_types::weight`]).
//!
//! ## Rules
//! - Every transaction weighs [`TRANSACTION_BASE`] (its signature check, the validity checks, the
//!   fee and the nonce) plus [`PER_BYTE`] for each of its bytes (decoding and hashing) plus what
//!   its call costs below. The figures are criterion medians of `cargo bench -p wetee-runtime
//!   --bench weights` rounded up (docs/benchmarks.md has the run); a call whose cost depends on
//!   its content or on the state is priced by what makes it expensive:
//!   - evidence verification by TEE kind ([`evidence`]): SEV-SNP's RSA chain costs five times a
//!     DCAP quote;
//!   - placement ([`placement`]) by the started workers a search reads, rounded up to a power of
//!     two so that a fee quoted a moment ago still holds after a few workers start;
//!   - a work report ([`report`]) by the workloads its worker holds (settlement reads each) and
//!     the apps and runs it reports;
//!   - app secrets and failure reports by their signature checks, an app's stop and a failure
//!     report by the rewrite of the worker's assignment list.
//! - Weights are computed from the transaction and the state it is checked or executed on: the
//!   pool and a fee quote use the finalized state; a block, the state the transactions before it
//!   left, the same for the proposer and every verifier. A quote can therefore fall short by
//!   the time a transaction runs (a worker started meanwhile), and the transaction is refused
//!   then like any other whose fee is too low.
//! - Every call fits what the transactions of a block at the smallest weight limit
//!   (`wetee_types::params::bounds::MAX_BLOCK_WEIGHT`) can use at its largest, but a placement
//!   among more than 32,768 started workers (at the default limit too), which is refused as
//!   too heavy (checked by this module's tests). The hooks' items are weighed here too
//!   ([`due_run`], [`DEADLINE`], [`liveness`]; [`crate::hooks`] has their budgets).

use crate::state::State;
use crate::storage;
use wetee_types::transaction::{
    AppsCall, AttestationCall, BalancesCall, RootCall, TasksCall, WorkersCall,
};
use wetee_types::{Call, CallError, SignedTransaction, TeeKind, Weight};

/// What every transaction costs: its signature check as a verifier makes it for a block it has
/// not seen (in parallel over the machine's cores, sr25519 in batches: 24 to 43 µs a
/// transaction on the reference machine), the validity checks, paying the fee, advancing the
/// nonce and committing the overlay (4 µs for a transfer).
pub const TRANSACTION_BASE: Weight = Weight::from_micros(50);
/// Decoding and hashing, per byte of the signed transaction.
pub const PER_BYTE: Weight = Weight(2);
/// A call that reads and writes a few records (a transfer, a stake, a setting).
pub const SIMPLE_CALL: Weight = Weight::from_micros(10);
/// One more signature check inside a call (a key proof, a signed report, a secrets grant),
/// made one at a time while the call runs (ed25519: 76 µs).
pub const SIGNATURE: Weight = Weight::from_micros(80);
/// An app or task record written with its placement and lease, apart from the search.
pub const PLACEMENT_BASE: Weight = Weight::from_micros(25);
/// Reading and judging one started worker in a placement search (1.7 µs measured).
pub const PER_CANDIDATE: Weight = Weight::from_micros(2);
/// Started workers a placement search is charged for at least.
pub const MIN_CANDIDATES: u64 = 16;
/// A work report's own checks (worker, epoch, window) before its entries.
pub const REPORT_BASE: Weight = Weight::from_micros(20);
/// Settling one workload of the reporting worker (an app's lease and payment, or a run):
/// 18 to 21 µs measured.
pub const PER_SETTLEMENT: Weight = Weight::from_micros(22);
/// Checking a collateral bundle's signatures and dates (root CRL, PCK CRL, TCB Info, QE
/// Identity).
pub const COLLATERAL: Weight = Weight::from_millis(2);
/// Rewriting a worker's assignment list (up to 1,024 entries) when one of its apps stops.
pub const ASSIGNMENTS: Weight = Weight::from_micros(100);
/// Checking an attestation policy (its measurement lists).
pub const POLICY: Weight = Weight::from_micros(50);
/// A deadline met by a hook (a lease's, a grace period's, a run's): releasing what it held
/// rewrites an assignment list.
pub const DEADLINE: Weight = ASSIGNMENTS;

/// Which share of a block a transaction may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// What anyone may send: up to [`crate::normal_budget`] of a block.
    Normal,
    /// A work report that could be accepted now: sent by its worker's operator, signed by the
    /// worker's TEE-held identity key, for an ended epoch inside the reporting window that the
    /// worker has not reported yet. It is what pays
    /// workers and judges them: it may also use the rest of what a block's transactions can (a
    /// tenth), and pools rank it above every normal transaction, so that no flood of tipped
    /// transfers keeps reports out of their window. Each worker has one such report an epoch,
    /// and it costs a worker's stake; a copy sent again is normal once the first is in.
    Operational,
}

/// The class of `tx` against `state` in `epoch` on the chain `genesis_hash`, with reports
/// accepted for `window` epochs after theirs. The report's signature is checked last (it is in
/// the report's weight): an operator cannot sign a report in its worker's name, so a report
/// that would fail cannot keep the class block after block.
pub fn class(
    state: &dyn State,
    tx: &SignedTransaction,
    epoch: u64,
    window: u32,
    genesis_hash: &wetee_types::Hash,
) -> Class {
    let Some(report) = work_report(tx) else {
        return Class::Normal;
    };
    let reported = report.report.epoch;
    let acceptable = |worker: &wetee_types::records::Worker| {
        worker.operator == tx.tx.signer
            && reported < epoch
            && reported >= epoch.saturating_sub(u64::from(window))
            && worker.last_report_epoch.is_none_or(|last| reported > last)
            && wetee_types::Signature::Ed25519(report.signature).verify(
                &report.report.signing_payload(genesis_hash),
                &wetee_types::AccountId(worker.keys.identity),
            )
    };
    match storage::worker(state, report.report.worker) {
        Ok(worker) if acceptable(&worker) => Class::Operational,
        _ => Class::Normal,
    }
}

/// The report `tx` submits, if it submits one.
fn work_report(tx: &SignedTransaction) -> Option<&wetee_types::report::SignedWorkReport> {
    match &tx.tx.call {
        Call::Workers(WorkersCall::SubmitWorkReport { report }) => Some(report),
        _ => None,
    }
}

/// The worker `tx` reports for, if it is a work report (only those can be operational).
pub fn reported_worker(tx: &SignedTransaction) -> Option<wetee_types::WorkerId> {
    work_report(tx).map(|report| report.report.worker)
}

/// The weight of `tx` against `state`, the state the block it goes in has before it.
pub fn of(state: &dyn State, tx: &SignedTransaction, size: usize) -> Result<Weight, CallError> {
    let bytes = PER_BYTE.saturating_mul(u64::try_from(size).unwrap_or(u64::MAX));
    Ok(TRANSACTION_BASE
        .saturating_add(bytes)
        .saturating_add(call(state, &tx.tx.call)?))
}

/// What `call` itself costs.
pub fn call(state: &dyn State, call: &Call) -> Result<Weight, CallError> {
    Ok(match call {
        Call::Balances(BalancesCall::Transfer { .. } | BalancesCall::SetSealingKey { .. }) => {
            SIMPLE_CALL
        }
        Call::Workers(call) => workers(state, call)?,
        Call::Apps(call) => apps(state, call)?,
        Call::Tasks(call) => tasks(state, call)?,
        Call::Root(RootCall::SetParams { .. } | RootCall::SetRootKey { .. }) => SIMPLE_CALL,
        Call::Root(RootCall::SetAttestationPolicy { .. }) => POLICY,
        Call::Attestation(AttestationCall::PostCollateral { .. }) => COLLATERAL,
    })
}

fn workers(state: &dyn State, call: &WorkersCall) -> Result<Weight, CallError> {
    Ok(match call {
        WorkersCall::Register { attestation, .. } => SIMPLE_CALL
            .saturating_add(SIGNATURE)
            .saturating_add(evidence(attestation.evidence.kind)),
        WorkersCall::Update { attestation, .. } => match attestation {
            Some(attestation) => SIMPLE_CALL
                .saturating_add(SIGNATURE)
                .saturating_add(evidence(attestation.evidence.kind)),
            None => SIMPLE_CALL,
        },
        WorkersCall::SubmitWorkReport { report } => {
            let held = match storage::worker(state, report.report.worker) {
                Ok(worker) => u64::from(worker.workloads),
                // No such worker: the call fails at its first check.
                Err(CallError::WorkerNotFound { .. }) => 0,
                Err(e) => return Err(e),
            };
            // Settlement goes through every app it proves (including apps it no longer holds,
            // whose closed leases are still paid), every run, and every workload it holds.
            let entries = report
                .report
                .apps
                .len()
                .saturating_add(report.report.runs.len());
            let entries = u64::try_from(entries).unwrap_or(u64::MAX);
            let refreshed = report
                .report
                .evidence
                .as_ref()
                .map_or(Weight::ZERO, |e| evidence(e.kind));
            self::report(held, entries).saturating_add(refreshed)
        }
        WorkersCall::ReportAppFailure { .. } => SIMPLE_CALL
            .saturating_add(SIGNATURE)
            .saturating_add(ASSIGNMENTS),
        WorkersCall::Stake { .. }
        | WorkersCall::Unstake { .. }
        | WorkersCall::Start { .. }
        | WorkersCall::Stop { .. }
        | WorkersCall::Withdraw { .. }
        | WorkersCall::FileComplaint { .. }
        | WorkersCall::Slash { .. }
        | WorkersCall::DismissComplaint { .. } => SIMPLE_CALL,
    })
}

fn apps(state: &dyn State, call: &AppsCall) -> Result<Weight, CallError> {
    Ok(match call {
        AppsCall::Create { .. }
        | AppsCall::SetSettings { .. }
        | AppsCall::Update {
            secrets_grant: None,
            ..
        } => placement(state)?,
        AppsCall::Update {
            secrets_grant: Some(_),
            ..
        } => placement(state)?.saturating_add(SIGNATURE),
        AppsCall::SetSecrets { .. } => SIMPLE_CALL.saturating_add(SIGNATURE),
        AppsCall::Recharge { .. } | AppsCall::Restart { .. } => SIMPLE_CALL,
        AppsCall::Stop { .. } => SIMPLE_CALL.saturating_add(ASSIGNMENTS),
    })
}

fn tasks(state: &dyn State, call: &TasksCall) -> Result<Weight, CallError> {
    Ok(match call {
        TasksCall::Create { .. } | TasksCall::Update { .. } | TasksCall::SetExecution { .. } => {
            placement(state)?
        }
        TasksCall::Recharge { .. } | TasksCall::Stop { .. } => SIMPLE_CALL,
    })
}

/// Verifying one piece of evidence of `kind` with all the checks a verifier makes
/// (`wetee bench attest`).
pub const fn evidence(kind: TeeKind) -> Weight {
    match kind {
        TeeKind::Sgx | TeeKind::Tdx | TeeKind::Simulated => Weight::from_millis(1),
        TeeKind::SevSnp => Weight::from_millis(4),
    }
}

/// A placement search over the started workers, and the record written after it.
pub fn placement(state: &dyn State) -> Result<Weight, CallError> {
    Ok(placement_among(storage::started_workers(state)))
}

/// [`placement`] with `started` workers to read.
pub const fn placement_among(started: u64) -> Weight {
    let charged = match started.checked_next_power_of_two() {
        Some(rounded) if rounded > MIN_CANDIDATES => rounded,
        Some(_) => MIN_CANDIDATES,
        None => u64::MAX,
    };
    PLACEMENT_BASE.saturating_add(PER_CANDIDATE.saturating_mul(charged))
}

/// A task run started by the hook when it falls due: the run fee, its record, and the placement
/// search.
pub fn due_run(state: &dyn State) -> Result<Weight, CallError> {
    Ok(SIMPLE_CALL.saturating_add(placement(state)?))
}

/// Judging a worker holding `held` workloads in the liveness sweep: reading it, and reading each
/// workload (evicted when the worker is suspended); moves off a draining worker are placements,
/// weighed apart.
pub const fn liveness(held: u64) -> Weight {
    SIMPLE_CALL.saturating_add(PER_SETTLEMENT.saturating_mul(held))
}

/// A work report from a worker holding `held` workloads, with `entries` apps and runs.
pub const fn report(held: u64, entries: u64) -> Weight {
    REPORT_BASE
        .saturating_add(SIGNATURE)
        .saturating_add(PER_SETTLEMENT.saturating_mul(held.saturating_add(entries)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::MAX_WORKLOADS_PER_WORKER;
    use wetee_types::params::bounds::MAX_BLOCK_WEIGHT;
    use wetee_types::report::{MAX_REPORT_APPS, MAX_REPORT_RUNS};
    use wetee_types::transaction::MAX_TRANSACTION_BYTES;

    /// The heaviest a transaction can be: every valid one must fit the smallest block.
    #[test]
    fn the_heaviest_transaction_fits_the_smallest_block() {
        let bytes = PER_BYTE.saturating_mul(MAX_TRANSACTION_BYTES as u64);
        let heaviest = |calls: &[Weight]| {
            TRANSACTION_BASE
                .saturating_add(bytes)
                .saturating_add(calls.iter().copied().max().unwrap())
        };
        let normal = heaviest(&[
            // A placement among 32,768 started workers. Past that a placement no longer fits
            // the smallest block and is refused as too heavy: searching needs an index by then.
            placement_among(32_768),
            COLLATERAL,
            SIMPLE_CALL
                .saturating_add(SIGNATURE)
                .saturating_add(evidence(TeeKind::SevSnp)),
        ]);
        let operational = heaviest(&[report(
            u64::from(MAX_WORKLOADS_PER_WORKER),
            (MAX_REPORT_APPS + MAX_REPORT_RUNS) as u64,
        )
        .saturating_add(evidence(TeeKind::SevSnp))]);
        let smallest = Weight(*MAX_BLOCK_WEIGHT.start());
        for (weight, class) in [(normal, Class::Normal), (operational, Class::Operational)] {
            let room = crate::class_budget(smallest, class);
            assert!(
                weight <= room,
                "{weight} does not fit the {room} of {class:?}"
            );
        }
        assert!(placement_among(65_536) > crate::normal_budget(smallest));
    }

    #[test]
    fn a_placement_is_charged_by_powers_of_two_of_the_started_workers() {
        assert_eq!(placement_among(0), placement_among(MIN_CANDIDATES));
        assert_eq!(placement_among(17), placement_among(32));
        assert!(placement_among(33) > placement_among(32));
        assert_eq!(
            placement_among(1_000),
            PLACEMENT_BASE.saturating_add(PER_CANDIDATE.saturating_mul(1_024))
        );
        assert_eq!(placement_among(u64::MAX).0, u64::MAX);
    }

    #[test]
    fn verifying_evidence_costs_what_its_kind_costs() {
        assert!(evidence(TeeKind::SevSnp) > evidence(TeeKind::Tdx));
        assert!(report(10, 0) > report(1, 0));
        assert!(report(1, 5) > report(1, 0));
    }
}
