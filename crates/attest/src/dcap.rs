//! Intel DCAP quotes (SGX quote v3, TDX quote v4 and v5), verified by `dcap-qvl` against a root
//! CA, then appraised: TCB status, debug, report data and measurements.

use crate::error::AttestError;
use crate::policy::Policy;
use crate::verdict::Verdict;
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::policy::{Policy as _, QuotePolicy};
use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use wetee_types::TeeKind;
use wetee_types::attestation::{Measurements, SgxMeasurement, TcbStatus, TdxMeasurement};

/// SGX attributes: bit 1 of the first byte marks a debug enclave.
const SGX_DEBUG: u8 = 0x02;
/// TD attributes: bit 0 marks a debug TD.
const TD_DEBUG: u8 = 0x01;

/// What a quote says before anything is verified: its kind, measurements, debug flag and
/// report data.
pub(crate) fn inspect(quote: &Quote) -> (TeeKind, Measurements, bool, [u8; 64]) {
    match &quote.report {
        Report::SgxEnclave(r) => (
            TeeKind::Sgx,
            Measurements::Sgx(SgxMeasurement {
                mr_enclave: r.mr_enclave,
                mr_signer: r.mr_signer,
                isv_prod_id: r.isv_prod_id,
                isv_svn: r.isv_svn,
            }),
            r.attributes[0] & SGX_DEBUG != 0,
            r.report_data,
        ),
        Report::TD10(_) | Report::TD15(_) | Report::TD15Ex(_) => {
            let Some(r) = quote.report.as_td10() else {
                unreachable!("every TD report has a TD 1.0 base")
            };
            (
                TeeKind::Tdx,
                Measurements::Tdx(TdxMeasurement {
                    mr_td: r.mr_td,
                    rtmr0: r.rt_mr0,
                    rtmr1: r.rt_mr1,
                    rtmr2: r.rt_mr2,
                    rtmr3: r.rt_mr3,
                }),
                r.td_attributes[0] & TD_DEBUG != 0,
                r.report_data,
            )
        }
    }
}

pub(crate) fn parse(bytes: &[u8], kind: TeeKind) -> Result<Quote, AttestError> {
    Quote::parse(bytes).map_err(|e| AttestError::Malformed {
        kind,
        reason: e.to_string(),
    })
}

fn status_of(status: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as Intel;
    match status {
        Intel::UpToDate => TcbStatus::UpToDate,
        Intel::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        Intel::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        Intel::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        Intel::OutOfDate => TcbStatus::OutOfDate,
        Intel::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        Intel::TDRelaunchAdvised => TcbStatus::TdRelaunchAdvised,
        Intel::TDRelaunchAdvisedConfigurationNeeded => {
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded
        }
        Intel::Revoked => TcbStatus::Revoked,
    }
}

fn intel_status(status: TcbStatus) -> dcap_qvl::TcbStatus {
    use dcap_qvl::TcbStatus as Intel;
    match status {
        TcbStatus::UpToDate => Intel::UpToDate,
        TcbStatus::SwHardeningNeeded => Intel::SWHardeningNeeded,
        TcbStatus::ConfigurationNeeded => Intel::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded => Intel::ConfigurationAndSWHardeningNeeded,
        TcbStatus::OutOfDate => Intel::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded => Intel::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised => Intel::TDRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
            Intel::TDRelaunchAdvisedConfigurationNeeded
        }
        TcbStatus::Revoked => Intel::Revoked,
    }
}

/// dcap-qvl reports failures as a chain of contexts; all of them together say what broke.
fn chain_text(error: &anyhow::Error) -> String {
    let parts: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
    parts.join(": ")
}

/// Verifies `bytes` (a quote of `kind`) with `collateral` at `at_secs` against `root_ca_der` (Intel's root CA when `None`), and
/// appraises it under `policy`. Fills `verdict` with what was learned along the way.
pub(crate) fn verify(
    bytes: &[u8],
    kind: TeeKind,
    collateral: &QuoteCollateralV3,
    at_secs: u64,
    root_ca_der: Option<Vec<u8>>,
    policy: &Policy,
    verdict: &mut Verdict,
) -> Result<(), AttestError> {
    let quote = parse(bytes, kind)?;
    // Quote buffers come zero-padded from the quoting service; anything else after the quote
    // would be bytes no signature covers.
    let signed = quote.signed_length();
    let declared = crate::le_u32(bytes, signed).and_then(|auth| {
        signed
            .checked_add(4)?
            .checked_add(usize::try_from(auth).ok()?)
    });
    match declared.and_then(|end| bytes.get(end..)) {
        Some(rest) if rest.iter().all(|b| *b == 0) => {}
        _ => {
            return Err(AttestError::Malformed {
                kind,
                reason: "bytes after the quote's signature data".into(),
            });
        }
    }
    let (found, measurements, debug, report_data) = inspect(&quote);
    if kind != TeeKind::Simulated && found != kind {
        return Err(AttestError::KindMismatch {
            expected: kind,
            found,
        });
    }
    verdict.measurements = Some(measurements);
    verdict.debug = Some(debug);
    verdict.report_data = Some(report_data);

    // Verify every signature, chain, revocation list and validity period, and compute the TCB
    // verdict; the appraisal below decides what is acceptable. Debug TEEs are let through here
    // only so that the refusal names the reason.
    let verifier = match root_ca_der {
        Some(root) => QuoteVerifier::new(root),
        None => QuoteVerifier::new(crate::collateral::intel_root_ca_der().to_vec()),
    };
    let claims = verifier
        .allow_debug(true)
        .verify_with_policy(
            bytes,
            collateral,
            at_secs,
            &QuotePolicy::claims_only(at_secs),
        )
        .map_err(|e| AttestError::Verification(chain_text(&e)))?;
    let status = status_of(claims.tcb.status);
    verdict.tcb_status = Some(status);
    verdict.advisory_ids = claims.tcb.advisory_ids.clone();

    if status == TcbStatus::Revoked || !policy.allowed_tcb_statuses.contains(&status) {
        return Err(AttestError::TcbStatusNotAllowed {
            status,
            allowed: policy.allowed_statuses_text(),
        });
    }
    // Collateral freshness and the TCB status rules stay strict; an allowed out-of-date TCB is
    // accepted for the policy's grace past its date. Platform flags are not a
    // confidentiality question for us: Intel issues multi-socket servers (dynamic platform,
    // cached keys) and SMT-enabled hosts genuine UpToDate verdicts.
    let strict = policy
        .allowed_tcb_statuses
        .iter()
        .fold(QuotePolicy::strict(at_secs), |p, s| {
            p.allow_status(intel_status(*s))
        })
        .platform_grace_period(crate::policy::grace_period(policy.platform_grace_days))
        .qe_grace_period(crate::policy::grace_period(policy.qe_grace_days))
        .allow_dynamic_platform(true)
        .allow_cached_keys(true)
        .allow_smt(true);
    strict
        .validate(&claims)
        .map_err(|e| AttestError::TcbPolicy(chain_text(&e)))?;
    crate::appraise(policy, &measurements, debug, &report_data)
}
