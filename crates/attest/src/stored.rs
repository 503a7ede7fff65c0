//! Worker evidence as the chain stores it, verified the same way by the runtime (inside
//! consensus) and by owners' tools (before sealing secrets): which registry collateral it needs,
//! the verifier policy a chain's attestation policy implies, and the verification itself.

use crate::{AttestError, Collateral, Policy, Verdict};
use std::fmt;
use wetee_types::TeeKind;
use wetee_types::attestation::AttestationPolicy;

/// Where the chain files the DCAP collateral a quote needs: its kind, its platform family and
/// the CA that issued its PCK certificate (whose revocation list it must be checked against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateralKey {
    /// SGX or TDX.
    pub kind: TeeKind,
    /// The platform family.
    pub fmspc: [u8; 6],
    /// `"processor"` or `"platform"`.
    pub pck_ca: &'static str,
}

impl fmt::Display for CollateralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} platforms of FMSPC {} (PCK {} CA)",
            self.kind,
            hex::encode(self.fmspc),
            self.pck_ca
        )
    }
}

/// The registry entry evidence labelled `kind` needs; `None` for SEV-SNP (the VCEK travels with
/// the report) and the simulated TEE (the development root). Nothing is verified here.
pub fn collateral_key(
    kind: TeeKind,
    evidence: &[u8],
) -> Result<Option<CollateralKey>, AttestError> {
    if !matches!(kind, TeeKind::Sgx | TeeKind::Tdx) {
        return Ok(None);
    }
    let (found, fmspc) = crate::collateral::quote_fmspc(evidence)?;
    if found != kind {
        return Err(AttestError::KindMismatch {
            expected: kind,
            found,
        });
    }
    Ok(Some(CollateralKey {
        kind,
        fmspc,
        pck_ca: crate::collateral::quote_pck_ca(evidence)?,
    }))
}

/// The verifier policy for worker evidence under a chain's attestation policy: its TCB statuses,
/// measurements and simulated-TEE rule, the expected report data, and never a debug TEE.
pub fn worker_policy(policy: &AttestationPolicy, report_data: [u8; 64]) -> Policy {
    Policy {
        allowed_tcb_statuses: policy.allowed_tcb_statuses.to_vec(),
        allow_debug: false,
        allow_simulated: policy.allow_simulated_tee,
        report_data: Some(report_data),
        allowed_measurements: policy.allowed_worker_measurements.to_vec(),
        platform_grace_days: policy.platform_grace_days,
        qe_grace_days: policy.qe_grace_days,
    }
}

/// Verifies evidence labelled `kind`, as stored on chain, at `at_secs`. `dcap_collateral` is the
/// JSON filed under its [`collateral_key`] (SGX and TDX only).
pub fn verify_stored(
    kind: TeeKind,
    evidence: &[u8],
    dcap_collateral: Option<&[u8]>,
    at_secs: u64,
    policy: &Policy,
) -> Verdict {
    let (quote, collateral) = match kind {
        TeeKind::Sgx | TeeKind::Tdx => {
            let Some(json) = dcap_collateral else {
                return Verdict::refused(
                    Some(kind),
                    AttestError::Collateral("no collateral for this platform".into()),
                );
            };
            let mut collateral = match Collateral::from_bytes(json) {
                Ok(collateral) => collateral,
                Err(error) => return Verdict::refused(Some(kind), error),
            };
            if let Collateral::Dcap(dcap) = &mut collateral {
                // Posted collateral may carry the poster's own PCK chain; every quote of the
                // family must be checked against the chain it carries itself.
                dcap.pck_certificate_chain = None;
            }
            (evidence, collateral)
        }
        TeeKind::SevSnp => match crate::split_snp_evidence(evidence) {
            Ok((report, vcek)) => (report, Collateral::Vcek(vcek.to_vec())),
            Err(error) => return Verdict::refused(Some(kind), error),
        },
        // Verified against the development root inside `verify`; no collateral is read.
        TeeKind::Simulated => (evidence, Collateral::Vcek(Vec::new())),
    };
    crate::verify(quote, Some(kind), &collateral, at_secs, policy)
}
