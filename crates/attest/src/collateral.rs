//! Intel DCAP collateral as the chain's registry receives it: checked before it is stored, and
//! the key it is stored under.
//!
//! Anyone may post collateral (TCB Info, QE Identity, the PCK and root CA CRLs, and the issuer
//! chains that sign them, in dcap-qvl's `QuoteCollateralV3` JSON layout). [`check_collateral`]
//! accepts it only if:
//! - the TCB Info and QE Identity are signed by certificates issued directly by the trusted root
//!   (as dcap-qvl requires when it verifies quotes), not revoked by the root CA CRL;
//! - the root CA CRL is signed by the root, and the PCK CRL by a CA the root issued;
//! - every certificate, CRL, the TCB Info and the QE Identity are current at the given time;
//! - the TCB Info and QE Identity are of the same kind (SGX with QE, TDX with TD_QE).
//!
//! It returns what a registry needs to key the collateral and to refuse rolling it back to an
//! older genuine one: the kind, the FMSPC, Intel's issue date and TCB evaluation data number,
//! and when it must be replaced. [`quote_fmspc`] says which entry a quote needs. Verifying a
//! quote with stored collateral is [`crate::verify`], which checks all of this again.
//!
//! Deterministic (the time is an argument), offline, and without panics on untrusted bytes.

use crate::error::AttestError;
use crate::{MAX_COLLATERAL_BYTES, MAX_EVIDENCE_BYTES};
use dcap_qvl::{QeIdentity, QuoteCollateralV3, TcbInfo};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use wetee_types::TeeKind;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::der::asn1::{BitString, ObjectIdentifier};
use x509_cert::der::{DateTime, Decode, Reader, SliceReader};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// Intel's SGX Root CA certificate, the same bytes as dcap-qvl 0.7.1's `TrustedRootCA.der`
/// (SHA-256 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3), from
/// <https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.cer>.
static INTEL_ROOT_CA: &[u8] = include_bytes!("intel_root_ca.der");

/// ecdsa-with-SHA256, the only signature algorithm of Intel's PKI (and the only one dcap-qvl
/// accepts).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// What a registry needs to know about collateral that passed [`check_collateral`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateralInfo {
    /// SGX or TDX, from the TCB Info's `id`.
    pub kind: TeeKind,
    /// The platform family the TCB Info is for.
    pub fmspc: [u8; 6],
    /// The TCB Info's `issueDate`, Unix seconds.
    pub issued_at: u64,
    /// Unix seconds after which the collateral is stale: the earliest `nextUpdate` of the TCB
    /// Info, the QE Identity and the two CRLs.
    pub next_update: u64,
    /// The TCB Info's `tcbEvaluationDataNumber`: Intel raises it with each TCB recovery.
    pub tcb_evaluation_data_number: u32,
    /// The CA whose revocation list it carries, `"processor"` or `"platform"`: a quote needs
    /// the list of the CA that issued its PCK certificate ([`quote_pck_ca`]).
    pub pck_ca: &'static str,
}

/// Intel's SGX Root CA certificate (DER), which production verification trusts.
pub fn intel_root_ca_der() -> &'static [u8] {
    INTEL_ROOT_CA
}

/// Checks DCAP collateral (`QuoteCollateralV3` JSON) against `root_ca_der` at `now_secs` (Unix
/// seconds), and returns what it is for. See the module documentation for what is checked.
pub fn check_collateral(
    json: &[u8],
    root_ca_der: &[u8],
    now_secs: u64,
) -> Result<CollateralInfo, AttestError> {
    if json.len() > MAX_COLLATERAL_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_COLLATERAL_BYTES} accepted",
            json.len()
        )));
    }
    let collateral: QuoteCollateralV3 =
        serde_json::from_slice(json).map_err(|e| bad(format!("not DCAP collateral JSON: {e}")))?;

    let root = Signer::parse(root_ca_der.to_vec(), "trusted root CA certificate")
        .map_err(|_| refused("the trusted root CA is not a P-256 certificate".into()))?;
    root.check_current(now_secs)?;
    let (root_crl, root_crl_next) = crl(&collateral.root_ca_crl, "root CA CRL", &root, now_secs)?;
    let issued = |chain: &str, what: &str| issued_by_root(chain, what, &root, &root_crl, now_secs);

    let tcb_signer = issued(&collateral.tcb_info_issuer_chain, "TCB Info")?;
    tcb_signer.check_signed_text(
        &collateral.tcb_info,
        &collateral.tcb_info_signature,
        "TCB Info",
    )?;
    let qe_signer = issued(&collateral.qe_identity_issuer_chain, "QE Identity")?;
    qe_signer.check_signed_text(
        &collateral.qe_identity,
        &collateral.qe_identity_signature,
        "QE Identity",
    )?;
    let pck_ca = issued(&collateral.pck_crl_issuer_chain, "PCK CRL")?;
    let (_, pck_crl_next) = crl(&collateral.pck_crl, "PCK CRL", &pck_ca, now_secs)?;
    let pck_ca_subject = pck_ca.cert.tbs_certificate.subject.to_string();
    let pck_ca = if pck_ca_subject.contains("PCK Platform CA") {
        "platform"
    } else if pck_ca_subject.contains("PCK Processor CA") {
        "processor"
    } else {
        return Err(bad(format!(
            "the PCK CRL is issued by \"{pck_ca_subject}\", neither a PCK Processor nor a PCK Platform CA"
        )));
    };

    // Signed by Intel from here on: what remains is whether it is current and consistent.
    let tcb: TcbInfo = serde_json::from_str(&collateral.tcb_info)
        .map_err(|e| bad(format!("the TCB Info does not parse: {e}")))?;
    let qe: QeIdentity = serde_json::from_str(&collateral.qe_identity)
        .map_err(|e| bad(format!("the QE Identity does not parse: {e}")))?;
    // The versions dcap-qvl accepts for each kind when it verifies a quote.
    let kind = match (tcb.id.as_str(), qe.id.as_str()) {
        ("SGX", "QE") if tcb.version >= 2 && qe.version == 2 => TeeKind::Sgx,
        ("TDX", "TD_QE") if tcb.version >= 3 && matches!(qe.version, 2 | 3) => TeeKind::Tdx,
        (tcb_id, qe_id) => {
            return Err(bad(format!(
                "TCB Info \"{tcb_id}\" v{} with QE Identity \"{qe_id}\" v{}: expected SGX (v2+) \
                 with QE (v2), or TDX (v3+) with TD_QE (v2 or v3)",
                tcb.version, qe.version
            )));
        }
    };
    let fmspc = hex::decode(&tcb.fmspc)
        .ok()
        .and_then(|bytes| <[u8; 6]>::try_from(bytes).ok())
        .ok_or_else(|| bad(format!("FMSPC \"{}\" is not 12 hex digits", tcb.fmspc)))?;

    let tcb_issued = intel_date(&tcb.issue_date, "TCB Info issueDate")?;
    let tcb_next = intel_date(&tcb.next_update, "TCB Info nextUpdate")?;
    let qe_issued = intel_date(&qe.issue_date, "QE Identity issueDate")?;
    let qe_next = intel_date(&qe.next_update, "QE Identity nextUpdate")?;
    current("TCB Info", tcb_issued, tcb_next, now_secs)?;
    current("QE Identity", qe_issued, qe_next, now_secs)?;

    let next_update = [root_crl_next, pck_crl_next]
        .into_iter()
        .flatten()
        .fold(tcb_next.min(qe_next), u64::min);
    Ok(CollateralInfo {
        kind,
        fmspc,
        issued_at: tcb_issued,
        next_update,
        tcb_evaluation_data_number: tcb.tcb_evaluation_data_number,
        pck_ca,
    })
}

/// The CA that issued an SGX or TDX quote's PCK certificate, `"processor"` or `"platform"`.
/// Nothing is verified here.
pub fn quote_pck_ca(evidence: &[u8]) -> Result<&'static str, AttestError> {
    let kind = crate::detect_kind(evidence)?;
    let quote = crate::dcap::parse(evidence, kind)?;
    let ca = dcap_qvl::intel::quote_ca(&quote).map_err(|e| AttestError::Malformed {
        kind,
        reason: format!("no PCK certificate issuer: {e}"),
    })?;
    Ok(match ca {
        dcap_qvl::config::PckCa::Platform => "platform",
        dcap_qvl::config::PckCa::Processor => "processor",
    })
}

/// The kind of an SGX or TDX quote and the FMSPC in its PCK certificate: the registry entry
/// whose collateral verifies it. Nothing is verified here.
pub fn quote_fmspc(evidence: &[u8]) -> Result<(TeeKind, [u8; 6]), AttestError> {
    if evidence.len() > MAX_EVIDENCE_BYTES {
        return Err(AttestError::Oversized {
            len: evidence.len(),
            max: MAX_EVIDENCE_BYTES,
        });
    }
    let kind = match crate::detect_kind(evidence)? {
        TeeKind::SevSnp => {
            return Err(bad(
                "SEV-SNP reports verify with the chip's VCEK certificate, not DCAP collateral"
                    .into(),
            ));
        }
        kind => kind,
    };
    let quote = crate::dcap::parse(evidence, kind)?;
    let (found, ..) = crate::dcap::inspect(&quote);
    if found != kind {
        return Err(AttestError::KindMismatch {
            expected: kind,
            found,
        });
    }
    let fmspc = dcap_qvl::intel::quote_fmspc(&quote).map_err(|e| AttestError::Malformed {
        kind,
        reason: format!("no FMSPC in its PCK certificate: {e}"),
    })?;
    Ok((kind, fmspc))
}

fn bad(reason: String) -> AttestError {
    AttestError::Collateral(reason)
}

fn refused(reason: String) -> AttestError {
    AttestError::Verification(reason)
}

/// `Ok` if `at` is within `[from, until]`.
fn current(what: &str, from: u64, until: u64, at: u64) -> Result<(), AttestError> {
    if (from..=until).contains(&at) {
        Ok(())
    } else {
        Err(AttestError::CollateralNotCurrent {
            what: what.to_string(),
            valid_from: from,
            valid_until: until,
            at,
        })
    }
}

/// A certificate, its DER and its P-256 key.
struct Signer {
    der: Vec<u8>,
    cert: Certificate,
    key: VerifyingKey,
    /// What it is, for messages: "TCB Info signing certificate"...
    what: String,
}

impl Signer {
    fn parse(der: Vec<u8>, what: &str) -> Result<Signer, AttestError> {
        let cert = Certificate::from_der(&der)
            .map_err(|e| bad(format!("the {what} does not parse: {e}")))?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .as_bytes()
            .and_then(|point| VerifyingKey::from_sec1_bytes(point).ok())
            .ok_or_else(|| bad(format!("the {what} has no P-256 key")))?;
        Ok(Signer {
            der,
            cert,
            key,
            what: what.to_string(),
        })
    }

    fn check_current(&self, at: u64) -> Result<(), AttestError> {
        let validity = &self.cert.tbs_certificate.validity;
        current(
            &self.what,
            validity.not_before.to_unix_duration().as_secs(),
            validity.not_after.to_unix_duration().as_secs(),
            at,
        )
    }

    /// Whether this key signed `der`, a certificate or CRL with the given signature fields.
    fn signed(
        &self,
        der: &[u8],
        algorithm: &AlgorithmIdentifierOwned,
        signature: &BitString,
    ) -> bool {
        let Some(signature) = signature
            .as_bytes()
            .and_then(|bytes| Signature::from_der(bytes).ok())
        else {
            return false;
        };
        algorithm.oid == ECDSA_WITH_SHA256
            && to_be_signed(der).is_some_and(|tbs| self.key.verify(tbs, &signature).is_ok())
    }

    /// Checks Intel's signature over JSON text: raw `r ‖ s`, over its exact bytes.
    fn check_signed_text(
        &self,
        text: &str,
        signature: &[u8],
        what: &str,
    ) -> Result<(), AttestError> {
        let signature = Signature::from_slice(signature).map_err(|_| {
            refused(format!(
                "the {what} signature is not a P-256 signature (64 bytes, r ‖ s)"
            ))
        })?;
        self.key.verify(text.as_bytes(), &signature).map_err(|_| {
            refused(format!(
                "the {what} signature does not verify with its signing certificate"
            ))
        })
    }
}

/// The signing certificate of `what`, from its PEM issuer chain: issued directly by `root`, not
/// revoked by `root_crl`, current at `now`. The chain may end with the root itself, byte for
/// byte.
fn issued_by_root(
    chain: &str,
    what: &str,
    root: &Signer,
    root_crl: &CertificateList,
    now: u64,
) -> Result<Signer, AttestError> {
    let mut ders = pem_certificates(chain)
        .ok_or_else(|| bad(format!("the {what} issuer chain is not PEM certificates")))?;
    if ders.len() == 2 && ders.last() == Some(&root.der) {
        ders.pop();
    }
    let der = match <[Vec<u8>; 1]>::try_from(ders) {
        Ok([der]) if der != root.der => der,
        _ => {
            return Err(refused(format!(
                "the {what} issuer chain must be one certificate issued by the trusted root CA, \
                 optionally followed by that root"
            )));
        }
    };
    let signer = Signer::parse(der, &format!("{what} signing certificate"))?;
    let cert = &signer.cert;
    if cert.tbs_certificate.issuer != root.cert.tbs_certificate.subject
        || !root.signed(&signer.der, &cert.signature_algorithm, &cert.signature)
    {
        return Err(refused(format!(
            "the {} is not issued by the trusted root CA",
            signer.what
        )));
    }
    signer.check_current(now)?;
    let serial = &cert.tbs_certificate.serial_number;
    if root_crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .any(|revoked| &revoked.serial_number == serial)
    {
        return Err(refused(format!(
            "the {} is revoked by the root CA CRL",
            signer.what
        )));
    }
    Ok(signer)
}

/// A DER CRL signed by `issuer` and current at `now`, with its next update if it has one.
fn crl(
    der: &[u8],
    what: &str,
    issuer: &Signer,
    now: u64,
) -> Result<(CertificateList, Option<u64>), AttestError> {
    let list = CertificateList::from_der(der)
        .map_err(|e| bad(format!("the {what} is not a DER CRL: {e}")))?;
    let tbs = &list.tbs_cert_list;
    if tbs.issuer != issuer.cert.tbs_certificate.subject
        || !issuer.signed(der, &list.signature_algorithm, &list.signature)
    {
        return Err(refused(format!(
            "the {what} is not signed by the {}",
            issuer.what
        )));
    }
    let this_update = tbs.this_update.to_unix_duration().as_secs();
    let next_update = tbs.next_update.map(|t| t.to_unix_duration().as_secs());
    current(what, this_update, next_update.unwrap_or(u64::MAX), now)?;
    Ok((list, next_update))
}

/// The signed part of a certificate or CRL (both `SEQUENCE { tbs, algorithm, signature }`),
/// exactly as encoded.
fn to_be_signed(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    reader
        .sequence(|body| {
            let tbs = body.tlv_bytes()?;
            body.tlv_bytes()?;
            body.tlv_bytes()?;
            Ok(tbs)
        })
        .ok()
}

/// The DER of each certificate in a PEM chain, or `None` if it holds anything else.
fn pem_certificates(text: &str) -> Option<Vec<Vec<u8>>> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut ders = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (block, tail) = rest.split_at(rest.find(END)? + END.len());
        let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes()).ok()?;
        if label != "CERTIFICATE" {
            return None;
        }
        ders.push(der);
        rest = tail.trim_start();
    }
    Some(ders)
}

/// Unix seconds of one of Intel's dates, `YYYY-MM-DDTHH:MM:SSZ` (fractions of a second are
/// ignored).
fn intel_date(text: &str, what: &str) -> Result<u64, AttestError> {
    let parse = || -> Option<u64> {
        let (main, zone) = text.split_at_checked(19)?;
        let fraction = zone.strip_suffix('Z')?;
        let shape = main.bytes().zip(b"0000-00-00T00:00:00").all(|(c, t)| {
            if *t == b'0' {
                c.is_ascii_digit()
            } else {
                c == *t
            }
        });
        let fraction_ok = fraction.is_empty()
            || fraction
                .strip_prefix('.')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if !shape || !fraction_ok {
            return None;
        }
        let two = |at: usize| main.get(at..at + 2)?.parse::<u8>().ok();
        let year = main.get(..4)?.parse::<u16>().ok()?;
        let date = DateTime::new(year, two(5)?, two(8)?, two(11)?, two(14)?, two(17)?).ok()?;
        Some(date.unix_duration().as_secs())
    };
    parse().ok_or_else(|| {
        bad(format!(
            "{what} \"{text}\" is not a date like 2025-06-19T10:56:11Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::intel_date;

    #[test]
    fn intel_dates_are_read_strictly() {
        let secs = |text| intel_date(text, "date").ok();
        assert_eq!(secs("2025-06-19T10:56:11Z"), Some(1_750_330_571));
        assert_eq!(secs("2025-06-19T10:56:11.999Z"), Some(1_750_330_571));
        assert_eq!(secs("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2025-06-19T10:56:11",
            "2025-06-19 10:56:11Z",
            "2025-06-19T10:56:11+00:00",
            "2025-06-19T10:56:11.Z",
            "+025-06-19T10:56:11Z",
            "2025-13-19T10:56:11Z",
            "2025-02-29T00:00:00Z",
            "2025-06-19T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2025-06-19T10:56:1éZ",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }
}
