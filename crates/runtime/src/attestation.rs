//! Attestation on chain: the policy, the collateral registry, the nonces evidence is bound to,
//! and the verification of worker evidence, all deterministic.
//!
//! ## Rules
//! - Evidence is verified by `wetee-attest` with the block's timestamp as the time. Its report
//!   data must be [`worker_report_data`] over the genesis hash, the worker's keys and the hash of
//!   the block it names (`nonce_height`), which must be among the last [`nonce_window_blocks`]:
//!   evidence cannot be made before that block, nor replayed for other keys or another chain.
//! - The evidence vouches for the worker until that block's time plus the policy's
//!   `max_evidence_age_ms`. After that the worker gets no new placements and its work reports
//!   are refused until one carries fresh evidence.
//! - SGX and TDX quotes are verified with the collateral posted for their platform family
//!   (TEE kind and FMSPC) and the CA that issued their PCK certificate. SEV-SNP evidence
//!   carries the chip's VCEK after the report. Simulated evidence is verified against the
//!   development root, and only where the policy allows it.
//! - Debug TEEs are never accepted.
//!
//! ## Calls
//! - `post_collateral(json)`: anyone. Stored only if signed by Intel's root, current at the
//!   block's time, and not older (by TCB evaluation data number, then issue date) than the
//!   collateral already stored for its family: posting cannot roll collateral back.
//! - `root::set_attestation_policy(policy)`: root only, see [`crate::root`].

use crate::context::Ctx;
use crate::state::State;
use crate::storage::{self, keys};
use wetee_attest::stored;
use wetee_types::attestation::{
    AttestationPolicy, AttestedTee, nonce_window_blocks, worker_report_data,
};
use wetee_types::error::error_text;
use wetee_types::records::{CollateralRecord, Evidence, WorkerKeys};
use wetee_types::transaction::AttestationCall;
use wetee_types::{AccountId, BlockNumber, CallError, Event, Hash, TeeKind, TimestampMs};

/// A recent block, as a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentBlock {
    /// Its hash.
    pub hash: Hash,
    /// Its timestamp.
    pub timestamp_ms: TimestampMs,
}
wetee_types::codec_struct!(RecentBlock { hash, timestamp_ms });

pub(crate) fn dispatch(
    ctx: &mut Ctx,
    signer: AccountId,
    call: &AttestationCall,
) -> Result<(), CallError> {
    match call {
        AttestationCall::PostCollateral { collateral } => post_collateral(ctx, signer, collateral),
    }
}

/// The stored policy.
pub fn policy(state: &dyn State) -> Result<AttestationPolicy, CallError> {
    storage::get(state, keys::ATTESTATION_POLICY)?.ok_or_else(|| CallError::State {
        detail: error_text("attestation policy missing"),
    })
}

/// Start of a block: remembers the parent's hash and time as a nonce, and forgets the one that
/// left the window.
pub(crate) fn record_parent(
    state: &mut dyn State,
    height: BlockNumber,
    parent_hash: Hash,
    timestamp_ms: TimestampMs,
    target_block_time_ms: u64,
) -> Result<(), CallError> {
    if let Some(parent) = height.checked_sub(1) {
        // The genesis state has no block before it: its "parent time" is the block's own.
        let parent_time =
            storage::get::<TimestampMs>(state, keys::LAST_BLOCK_TIME)?.unwrap_or(timestamp_ms);
        storage::put(
            state,
            &keys::recent_block(parent),
            &RecentBlock {
                hash: parent_hash,
                timestamp_ms: parent_time,
            },
        );
        if let Some(old) = parent.checked_sub(nonce_window_blocks(target_block_time_ms)) {
            state.delete(&keys::recent_block(old));
        }
    }
    storage::put(state, keys::LAST_BLOCK_TIME, &timestamp_ms);
    Ok(())
}

/// A block among the last [`nonce_window_blocks`], if `height` is one.
pub fn recent_block(
    state: &dyn State,
    height: BlockNumber,
) -> Result<Option<RecentBlock>, CallError> {
    storage::get(state, &keys::recent_block(height))
}

fn rejected(reason: impl std::fmt::Display) -> CallError {
    CallError::EvidenceRejected {
        reason: error_text(&reason.to_string()),
    }
}

/// Verifies that `evidence` proves `keys` live in a genuine, allowed TEE, recently.
pub(crate) fn verify_evidence(
    ctx: &Ctx,
    keys: &WorkerKeys,
    evidence: &Evidence,
) -> Result<AttestedTee, CallError> {
    let policy = &ctx.attestation;
    if evidence.kind == TeeKind::Simulated && !policy.allow_simulated_tee {
        return Err(CallError::SimulatedTeeNotAllowed);
    }
    let nonce = recent_block(ctx.state, evidence.nonce_height)?
        .filter(|_| evidence.nonce_height < ctx.height)
        .ok_or_else(|| {
            rejected(format!(
                "it is bound to block {}, which is not one of the last {} blocks before {}: \
                 make evidence bound to a recent block",
                evidence.nonce_height,
                nonce_window_blocks(ctx.params.target_block_time_ms),
                ctx.height
            ))
        })?;
    let expires_at_ms = nonce
        .timestamp_ms
        .checked_add(policy.max_evidence_age_ms)
        .ok_or(CallError::Overflow)?;
    if expires_at_ms <= ctx.time_ms {
        return Err(rejected(format!(
            "it is bound to a block from {} ms before this one, more than the {} ms allowed",
            ctx.time_ms.saturating_sub(nonce.timestamp_ms),
            policy.max_evidence_age_ms
        )));
    }
    let data: &[u8] = &evidence.data;
    let collateral = match stored::collateral_key(evidence.kind, data).map_err(rejected)? {
        Some(key) => {
            let record: CollateralRecord = storage::get(
                ctx.state,
                &keys::collateral(key.kind, &key.fmspc, key.pck_ca),
            )?
            .ok_or_else(|| {
                rejected(format!(
                    "the chain has no collateral for {key}: post Intel's collateral for \
                             it first"
                ))
            })?;
            Some(record.json)
        }
        None => None,
    };
    let report_data = worker_report_data(&ctx.genesis_hash, keys, &nonce.hash.0);
    let verdict = stored::verify_stored(
        evidence.kind,
        data,
        collateral.as_deref(),
        ctx.time_ms / 1000,
        &stored::worker_policy(policy, report_data),
    );
    if !verdict.valid {
        return Err(rejected(verdict.reason.unwrap_or_default()));
    }
    Ok(AttestedTee {
        fresh_at_ms: nonce.timestamp_ms,
        expires_at_ms,
        tcb_status: verdict.tcb_status,
        measurements: verdict.measurements,
    })
}

/// Whether the current policy still accepts what was verified in `worker`'s evidence (the root
/// may have tightened it since): the kind, the TCB status and the measurements.
pub(crate) fn still_allowed(
    policy: &AttestationPolicy,
    worker: &wetee_types::records::Worker,
) -> bool {
    let attested = &worker.attested;
    let kind_allowed = worker.evidence.kind != TeeKind::Simulated || policy.allow_simulated_tee;
    let tcb_allowed = attested
        .tcb_status
        .is_none_or(|status| policy.allowed_tcb_statuses.contains(&status));
    let measured_allowed = match &attested.measurements {
        Some(measurements) => policy.allows_measurements(measurements),
        None => policy.allowed_worker_measurements.is_empty(),
    };
    kind_allowed && tcb_allowed && measured_allowed
}

fn post_collateral(ctx: &mut Ctx, signer: AccountId, json: &[u8]) -> Result<(), CallError> {
    let refuse = |reason: String| CallError::CollateralRejected {
        reason: error_text(&reason),
    };
    let now_secs = ctx.time_ms / 1000;
    let info = wetee_attest::collateral::check_collateral(
        json,
        wetee_attest::collateral::intel_root_ca_der(),
        now_secs,
    )
    .map_err(|e| refuse(e.to_string()))?;
    // Keyed by the PCK CA too: otherwise a genuine list of the other CA, posted first, would
    // make every quote of the family fail its revocation check.
    let key = keys::collateral(info.kind, &info.fmspc, info.pck_ca);
    if let Some(stored) = storage::get::<CollateralRecord>(ctx.state, &key)? {
        let older = (info.tcb_evaluation_data_number, info.issued_at)
            <= (stored.tcb_evaluation_data_number, stored.issued_at_secs);
        if older {
            return Err(refuse(format!(
                "the chain already has collateral for this family that is as new (TCB evaluation \
                 data number {}, issued at {})",
                stored.tcb_evaluation_data_number, stored.issued_at_secs
            )));
        }
    }
    let record = CollateralRecord {
        kind: info.kind,
        fmspc: info.fmspc,
        json: json
            .to_vec()
            .try_into()
            .map_err(|_| refuse("the collateral is too large".into()))?,
        issued_at_secs: info.issued_at,
        next_update_secs: info.next_update,
        tcb_evaluation_data_number: info.tcb_evaluation_data_number,
        posted_by: signer,
        posted_at: ctx.height,
    };
    storage::put(ctx.state, &key, &record);
    ctx.emit(Event::CollateralPosted {
        kind: info.kind,
        fmspc: info.fmspc,
        next_update_secs: info.next_update,
    });
    Ok(())
}
