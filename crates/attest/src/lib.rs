//! TEE evidence for WeTEE: what a worker's TEE says about itself, and whether to believe it.
//!
//! - [`verify`] checks SGX quotes (v3), TDX quotes (v4, v5) and SEV-SNP reports offline, from
//!   the evidence, its collateral and a time, and appraises them under a [`Policy`]: allowed TCB
//!   statuses, no debug TEEs, expected report data, allowed measurements. The result is a
//!   [`Verdict`] that says what the evidence contains even when it is refused.
//! - [`simulated`] is the development CA's TEE: TDX quotes in Intel's format signed by a
//!   development PKI, verified by the same code as genuine quotes against the development root,
//!   and accepted only where a policy explicitly allows the simulated TEE.
//! - [`collateral`] checks Intel DCAP collateral before the chain's registry stores it (Intel's
//!   signatures up to a given root, freshness, kind and FMSPC), and finds the FMSPC a quote needs.
//! - [`provider`] obtains evidence inside a TEE: Gramine's `/dev/attestation` for SGX, Linux
//!   configfs-tsm for TDX and SEV-SNP, or the simulated TEE.
//! - The report data that binds a worker's keys to its evidence is
//!   [`wetee_types::attestation::worker_report_data`]; the runtime and the worker compute it there.
//!
//! Verification is deterministic (the time is an argument, never the clock) and never panics on
//! untrusted bytes, so the runtime can run it inside consensus. This crate must not read the
//! network: collateral is fetched elsewhere and handed in.

#![forbid(unsafe_code)]

pub mod collateral;
mod dcap;
mod error;
mod policy;
pub mod provider;
pub mod simulated;
mod snp;
pub mod stored;
mod verdict;

pub use dcap_qvl::QuoteCollateralV3;
pub use error::AttestError;
pub use policy::Policy;
pub use verdict::Verdict;

use wetee_types::TeeKind;
use wetee_types::attestation::Measurements;

/// Largest evidence accepted, as on chain.
pub const MAX_EVIDENCE_BYTES: usize = wetee_types::records::MAX_EVIDENCE_BYTES;
/// Largest collateral accepted (Intel's TDX collateral with a PCK chain is about 25 KiB).
pub const MAX_COLLATERAL_BYTES: usize = 256 * 1024;

/// What evidence is verified with.
#[derive(Debug, Clone)]
pub enum Collateral {
    /// Intel's TCB Info, QE Identity, CRLs and issuer chains, for SGX and TDX quotes.
    Dcap(Box<QuoteCollateralV3>),
    /// The chip's VCEK certificate (DER), for SEV-SNP reports.
    Vcek(Vec<u8>),
}

impl Collateral {
    /// Reads collateral from a file's bytes: DCAP JSON in `QuoteCollateralV3` layout, or a VCEK
    /// certificate in DER or PEM.
    pub fn from_bytes(bytes: &[u8]) -> Result<Collateral, AttestError> {
        if bytes.len() > MAX_COLLATERAL_BYTES {
            return Err(AttestError::Collateral(format!(
                "{} bytes, more than the {MAX_COLLATERAL_BYTES} accepted",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).ok().map(str::trim_start);
        match text {
            Some(text) if text.starts_with('{') => serde_json::from_str(text)
                .map(|c| Collateral::Dcap(Box::new(c)))
                .map_err(|e| AttestError::Collateral(format!("not DCAP collateral JSON: {e}"))),
            Some(text) if text.starts_with("-----BEGIN") => snp::pem_to_der(text)
                .map(Collateral::Vcek)
                .map_err(AttestError::Collateral),
            _ if bytes.first() == Some(&0x30) => Ok(Collateral::Vcek(bytes.to_vec())),
            _ => Err(AttestError::Collateral(
                "neither DCAP collateral JSON nor a certificate in DER or PEM".into(),
            )),
        }
    }
}

/// What `evidence` of `kind` claims runs in the TEE, read without verifying anything: for an
/// operator printing what their own build attests (`wetee worker measurements`), never for
/// deciding whom to trust. SEV-SNP evidence may be the report alone or followed by the VCEK.
pub fn claimed_measurements(evidence: &[u8], kind: TeeKind) -> Result<Measurements, AttestError> {
    match kind {
        TeeKind::Sgx | TeeKind::Tdx | TeeKind::Simulated => {
            let quote = dcap::parse(evidence, kind)?;
            Ok(dcap::inspect(&quote).1)
        }
        TeeKind::SevSnp => {
            let report = evidence.get(..snp::REPORT_LEN).unwrap_or(evidence);
            snp::claimed_measurements(report)
        }
    }
}

/// Splits SEV-SNP evidence as workers submit it (the attestation report, then the chip's VCEK
/// certificate in DER) into the report and the certificate.
pub fn split_snp_evidence(evidence: &[u8]) -> Result<(&[u8], &[u8]), AttestError> {
    match evidence.split_at_checked(snp::REPORT_LEN) {
        Some((report, vcek)) if !vcek.is_empty() => Ok((report, vcek)),
        _ => Err(AttestError::Malformed {
            kind: TeeKind::SevSnp,
            reason: format!(
                "{} bytes: expected the {}-byte report followed by the VCEK certificate",
                evidence.len(),
                snp::REPORT_LEN
            ),
        }),
    }
}

/// Reads evidence from a file's bytes: raw binary, or hex text (whitespace and a `0x` prefix
/// are ignored).
pub fn evidence_from_bytes(bytes: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bytes.to_vec();
    };
    let text = text.trim();
    let digits: String = text
        .strip_prefix("0x")
        .unwrap_or(text)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    match hex::decode(&digits) {
        Ok(decoded) if !digits.is_empty() => decoded,
        _ => bytes.to_vec(),
    }
}

/// The kind of TEE that produced `evidence`, from its header alone (nothing is verified).
/// Simulated evidence has a TDX quote's format, so it is never detected: callers name it.
pub fn detect_kind(evidence: &[u8]) -> Result<TeeKind, AttestError> {
    if snp::looks_like_report(evidence) {
        return Ok(TeeKind::SevSnp);
    }
    let version = le_u32(evidence, 0).map(|word| word & 0xFFFF);
    match (version, le_u32(evidence, 4)) {
        (Some(3 | 4), Some(0x00)) => Ok(TeeKind::Sgx),
        (Some(4 | 5), Some(0x81)) => Ok(TeeKind::Tdx),
        _ => Err(AttestError::UnknownKind),
    }
}

/// The little-endian `u32` at `at`, if the bytes reach that far.
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    word.try_into().ok().map(u32::from_le_bytes)
}

/// Verifies `evidence` with `collateral` at `at_secs` (Unix seconds) and appraises it under
/// `policy`. `kind` is detected from the bytes when `None`.
///
/// Never panics on any input; the verdict says why evidence is refused.
pub fn verify(
    evidence: &[u8],
    kind: Option<TeeKind>,
    collateral: &Collateral,
    at_secs: u64,
    policy: &Policy,
) -> Verdict {
    let mut verdict = Verdict::empty();
    let outcome = verify_into(evidence, kind, collateral, at_secs, policy, &mut verdict);
    verdict.conclude(outcome)
}

/// Verifies simulated evidence with `collateral` signed by the development PKI (such as
/// [`simulated::out_of_date_collateral`]) rather than its usual collateral: how a policy treats
/// other TCB verdicts, through the genuine code path.
pub fn verify_simulated_with(
    evidence: &[u8],
    collateral: &QuoteCollateralV3,
    at_secs: u64,
    policy: &Policy,
) -> Verdict {
    let mut verdict = Verdict::empty();
    verdict.kind = Some(TeeKind::Simulated);
    let outcome = if policy.allow_simulated {
        policy
            .validate()
            .map_err(AttestError::TcbPolicy)
            .and_then(|()| {
                dcap::verify(
                    evidence,
                    TeeKind::Simulated,
                    collateral,
                    at_secs,
                    Some(simulated::root_ca_der()?.to_vec()),
                    policy,
                    &mut verdict,
                )
            })
    } else {
        Err(AttestError::KindNotAllowed {
            kind: TeeKind::Simulated,
        })
    };
    verdict.conclude(outcome)
}

fn verify_into(
    evidence: &[u8],
    kind: Option<TeeKind>,
    collateral: &Collateral,
    at_secs: u64,
    policy: &Policy,
    verdict: &mut Verdict,
) -> Result<(), AttestError> {
    if evidence.len() > MAX_EVIDENCE_BYTES {
        return Err(AttestError::Oversized {
            len: evidence.len(),
            max: MAX_EVIDENCE_BYTES,
        });
    }
    policy.validate().map_err(AttestError::TcbPolicy)?;
    let kind = match kind {
        Some(kind) => kind,
        None => detect_kind(evidence)?,
    };
    verdict.kind = Some(kind);
    if kind == TeeKind::Simulated && !policy.allow_simulated {
        return Err(AttestError::KindNotAllowed { kind });
    }
    match (kind, collateral) {
        (TeeKind::Sgx | TeeKind::Tdx, Collateral::Dcap(collateral)) => {
            dcap::verify(evidence, kind, collateral, at_secs, None, policy, verdict)
        }
        (TeeKind::SevSnp, Collateral::Vcek(vcek)) => {
            snp::verify(evidence, vcek, at_secs, policy, verdict)
        }
        // Simulated evidence verifies with the development PKI's own collateral and root, by the
        // same code; whatever collateral the caller holds is not needed.
        (TeeKind::Simulated, _) => dcap::verify(
            evidence,
            kind,
            simulated::collateral()?,
            at_secs,
            Some(simulated::root_ca_der()?.to_vec()),
            policy,
            verdict,
        ),
        (TeeKind::Sgx | TeeKind::Tdx, Collateral::Vcek(_)) => Err(AttestError::Collateral(
            format!("{kind} quotes need DCAP collateral JSON, not a certificate"),
        )),
        (TeeKind::SevSnp, Collateral::Dcap(_)) => Err(AttestError::Collateral(
            "SEV-SNP reports need the chip's VCEK certificate, not DCAP collateral".into(),
        )),
    }
}

/// The checks common to every kind, once the evidence is known to be genuine.
pub(crate) fn appraise(
    policy: &Policy,
    measurements: &Measurements,
    debug: bool,
    report_data: &[u8; 64],
) -> Result<(), AttestError> {
    if debug && !policy.allow_debug {
        return Err(AttestError::Debug);
    }
    if let Some(expected) = &policy.report_data
        && expected != report_data
    {
        return Err(AttestError::ReportDataMismatch {
            expected: hex::encode(expected),
            found: hex::encode(report_data),
        });
    }
    if !policy.allowed_measurements.is_empty()
        && !policy
            .allowed_measurements
            .iter()
            .any(|rule| rule.matches(measurements))
    {
        return Err(AttestError::MeasurementNotAllowed);
    }
    Ok(())
}
