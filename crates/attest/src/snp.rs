//! AMD SEV-SNP attestation reports, verified with the `sev` crate (AMD's ARK → ASK → VCEK →
//! report signatures, pinned to AMD's built-in roots) plus the checks `sev` leaves to its
//! callers: certificate validity at the given time, the VCEK's TCB and chip id against the
//! report, the signing key, and the guest policy.

use crate::error::AttestError;
use crate::policy::Policy;
use crate::verdict::Verdict;
use sev::certs::snp::{Certificate, Chain, Verifiable, builtin, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use wetee_types::TeeKind;
use wetee_types::attestation::{Measurements, SnpMeasurement};
use x509_cert::der::asn1::Ia5StringRef;
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::spki::ObjectIdentifier;

/// Every SEV-SNP report is exactly this long.
pub(crate) const REPORT_LEN: usize = 1184;
/// ECDSA P-384 with SHA-384, the only signature algorithm reports use.
const SIG_ALGO_ECDSA_P384: u32 = 1;
/// Guest policy bit 18: a migration agent may export the guest's memory.
const POLICY_MIGRATE_MA: u64 = 1 << 18;
/// Guest policy bit 19: the host may debug the guest, reading its memory.
const POLICY_DEBUG: u64 = 1 << 19;

const OID_PRODUCT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Whether `bytes` have an SEV-SNP report's length, version and signature algorithm.
pub(crate) fn looks_like_report(bytes: &[u8]) -> bool {
    bytes.len() == REPORT_LEN
        && matches!(crate::le_u32(bytes, 0), Some(2..=5))
        && crate::le_u32(bytes, 0x34) == Some(SIG_ALGO_ECDSA_P384)
}

/// One PEM certificate to DER.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    x509_cert::Certificate::from_pem(pem.as_bytes())
        .and_then(|cert| cert.to_der())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

fn malformed(reason: impl std::fmt::Display) -> AttestError {
    AttestError::Malformed {
        kind: TeeKind::SevSnp,
        reason: reason.to_string(),
    }
}

fn verification(reason: impl std::fmt::Display) -> AttestError {
    AttestError::Verification(reason.to_string())
}

/// The value of the certificate's only extension `oid`.
fn extension<'a>(
    cert: &'a x509_cert::Certificate,
    oid: &ObjectIdentifier,
    name: &str,
) -> Result<&'a [u8], AttestError> {
    let mut found = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|e| &e.extn_id == oid);
    let first = found
        .next()
        .ok_or_else(|| verification(format!("the VCEK has no {name} extension")))?;
    if found.next().is_some() {
        return Err(verification(format!("the VCEK has two {name} extensions")));
    }
    Ok(first.extn_value.as_bytes())
}

fn spl(
    cert: &x509_cert::Certificate,
    oid: &ObjectIdentifier,
    name: &str,
) -> Result<u8, AttestError> {
    u8::from_der(extension(cert, oid, name)?)
        .map_err(|e| verification(format!("the VCEK's {name} is not a small integer: {e}")))
}

/// AMD's root and signing key for the processor generation the VCEK names.
fn amd_roots(product: &str) -> Result<ca::Chain, AttestError> {
    let roots = if product.starts_with("Milan") {
        builtin::milan::ark().and_then(|ark| Ok((ark, builtin::milan::ask()?)))
    } else if product.starts_with("Genoa") {
        builtin::genoa::ark().and_then(|ark| Ok((ark, builtin::genoa::ask()?)))
    } else if product.starts_with("Turin") {
        builtin::turin::ark().and_then(|ark| Ok((ark, builtin::turin::ask()?)))
    } else {
        return Err(verification(format!(
            "the VCEK is for `{product}`, not a Milan, Genoa or Turin processor"
        )));
    };
    let (ark, ask) = roots.map_err(verification)?;
    Ok(ca::Chain { ark, ask })
}

fn check_validity(
    cert: &x509_cert::Certificate,
    name: &str,
    at_secs: u64,
) -> Result<(), AttestError> {
    let validity = &cert.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if at_secs < not_before {
        return Err(verification(format!(
            "the {name} certificate is not valid before {not_before} (checked at {at_secs})"
        )));
    }
    if at_secs > not_after {
        return Err(verification(format!(
            "the {name} certificate expired at {not_after} (checked at {at_secs})"
        )));
    }
    Ok(())
}

/// What a report claims, unverified.
pub(crate) fn claimed_measurements(bytes: &[u8]) -> Result<Measurements, AttestError> {
    if bytes.len() != REPORT_LEN {
        return Err(malformed(format!(
            "{} bytes, but a report is {REPORT_LEN}",
            bytes.len()
        )));
    }
    let report = AttestationReport::from_bytes(bytes).map_err(malformed)?;
    Ok(Measurements::SevSnp(SnpMeasurement {
        measurement: report.measurement,
        host_data: report.host_data,
        policy: report.policy.0,
    }))
}

/// Verifies a report signed by the chip whose VCEK is `vcek_der`, at `at_secs`, under `policy`.
pub(crate) fn verify(
    bytes: &[u8],
    vcek_der: &[u8],
    at_secs: u64,
    policy: &Policy,
    verdict: &mut Verdict,
) -> Result<(), AttestError> {
    if bytes.len() != REPORT_LEN {
        return Err(malformed(format!(
            "{} bytes, but a report is {REPORT_LEN}",
            bytes.len()
        )));
    }
    let report = AttestationReport::from_bytes(bytes).map_err(malformed)?;
    // `sev` checks the signature over the report as it re-encodes it, which drops reserved bytes;
    // insisting the bytes re-encode exactly makes the signature cover everything we were given.
    let canonical = report.to_bytes().map_err(malformed)?;
    if canonical[..] != bytes[..] {
        return Err(malformed("reserved bytes are not zero"));
    }
    let policy_bits = report.policy.0;
    let debug = policy_bits & POLICY_DEBUG != 0;
    let measurements = Measurements::SevSnp(SnpMeasurement {
        measurement: report.measurement,
        host_data: report.host_data,
        policy: policy_bits,
    });
    verdict.measurements = Some(measurements);
    verdict.debug = Some(debug);
    verdict.report_data = Some(report.report_data);

    if report.sig_algo != SIG_ALGO_ECDSA_P384 {
        return Err(malformed(format!(
            "signature algorithm {} is not ECDSA P-384",
            report.sig_algo
        )));
    }
    if report.key_info.signing_key() != 0 {
        return Err(verification(
            "the report is not signed by a VCEK (VLEK-signed reports are not supported)",
        ));
    }

    let vcek_x509 = x509_cert::Certificate::from_der(vcek_der)
        .map_err(|e| AttestError::Collateral(format!("the VCEK is not a DER certificate: {e}")))?;
    let product = Ia5StringRef::from_der(extension(&vcek_x509, &OID_PRODUCT, "product name")?)
        .map_err(|e| verification(format!("the VCEK's product name is not text: {e}")))?
        .as_str()
        .to_owned();
    let roots = amd_roots(&product)?;
    for (cert, name) in [(&roots.ark, "ARK"), (&roots.ask, "ASK")] {
        let x509: x509_cert::Certificate = cert.clone().into();
        check_validity(&x509, name, at_secs)?;
    }
    check_validity(&vcek_x509, "VCEK", at_secs)?;
    let chain = Chain {
        ca: roots,
        vek: Certificate::from(vcek_x509.clone()),
    };
    (&chain, &report).verify().map_err(verification)?;

    // The VCEK is derived for one chip at one TCB: the report must claim exactly those.
    let reported = report.reported_tcb;
    let expected = [
        ("bootloader", OID_BL_SPL, reported.bootloader),
        ("TEE", OID_TEE_SPL, reported.tee),
        ("SNP firmware", OID_SNP_SPL, reported.snp),
        ("microcode", OID_UCODE_SPL, reported.microcode),
    ];
    for (name, oid, value) in expected {
        let certified = spl(&vcek_x509, &oid, name)?;
        if certified != value {
            return Err(verification(format!(
                "the report's {name} TCB is {value} but its VCEK certifies {certified}"
            )));
        }
    }
    if let Some(fmc) = reported.fmc {
        let certified = spl(&vcek_x509, &OID_FMC_SPL, "FMC")?;
        if certified != fmc {
            return Err(verification(format!(
                "the report's FMC TCB is {fmc} but its VCEK certifies {certified}"
            )));
        }
    }
    let hw_id = extension(&vcek_x509, &OID_HW_ID, "hardware id")?;
    let chip_matches = match hw_id.len() {
        64 => hw_id == report.chip_id,
        8 => hw_id == &report.chip_id[..8],
        _ => false,
    };
    if !chip_matches {
        return Err(verification("the VCEK belongs to another chip"));
    }

    if policy_bits & POLICY_MIGRATE_MA != 0 {
        return Err(AttestError::GuestPolicy(
            "a migration agent may export the guest's memory".into(),
        ));
    }
    crate::appraise(policy, &measurements, debug, &report.report_data)
}
