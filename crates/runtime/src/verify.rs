//! The hook through which attestation evidence and work-report signatures are checked.
//!
//! The runtime calls [`AttestationVerifier`] on every worker registration, key rotation,
//! evidence refresh and work report, before anything is stored or paid. [`BaselineVerifier`] is
//! what runs until quote verification lands (the attestation issue): it verifies the work
//! report's Ed25519 signature by the worker's registered identity key (real cryptography), and
//! checks evidence only for structure (present, non-empty, a well-formed identity key). It does
//! **not** verify quotes: until the attestation verifier replaces it, a registered worker's TEE
//! claim is unproven, which is why production parameters refuse the simulated TEE and placement
//! trusts no worker more than its stake.

use wetee_types::records::{Evidence, Worker, WorkerKeys};
use wetee_types::report::SignedWorkReport;
use wetee_types::{AccountId, BlockNumber, Hash, Signature, TimestampMs};

/// What a verifier may use: deterministic inputs only.
#[derive(Debug, Clone, Copy)]
pub struct AttestationContext<'a> {
    /// The chain's genesis hash (bound into evidence and signatures).
    pub genesis_hash: &'a Hash,
    /// Current height.
    pub height: BlockNumber,
    /// Current block time, the only clock a verifier may read.
    pub timestamp_ms: TimestampMs,
}

/// Verifies TEE evidence and work-report signatures, deterministically.
pub trait AttestationVerifier: Send + Sync {
    /// Whether `evidence` proves that `keys` live in a genuine TEE of the evidence's kind.
    /// The error is shown to the caller.
    fn verify_evidence(
        &self,
        ctx: &AttestationContext,
        keys: &WorkerKeys,
        evidence: &Evidence,
    ) -> Result<(), String>;

    /// Whether `report` was signed by `worker`'s attested identity key.
    fn verify_work_report(
        &self,
        ctx: &AttestationContext,
        worker: &Worker,
        report: &SignedWorkReport,
    ) -> bool;
}

/// Signature checks now, quote verification later: see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct BaselineVerifier;

impl AttestationVerifier for BaselineVerifier {
    fn verify_evidence(
        &self,
        _ctx: &AttestationContext,
        keys: &WorkerKeys,
        evidence: &Evidence,
    ) -> Result<(), String> {
        if evidence.data.is_empty() {
            return Err("the evidence is empty".into());
        }
        if !wetee_types::crypto::is_valid_ed25519_public_key(&keys.identity) {
            return Err("the identity key is not a valid Ed25519 public key".into());
        }
        Ok(())
    }

    fn verify_work_report(
        &self,
        ctx: &AttestationContext,
        worker: &Worker,
        report: &SignedWorkReport,
    ) -> bool {
        let payload = report.report.signing_payload(ctx.genesis_hash);
        Signature::Ed25519(report.signature).verify(&payload, &AccountId(worker.keys.identity))
    }
}
