//! The simulated TEE: TDX quotes in Intel's real format, signed by a development PKI instead of
//! Intel's, with collateral signed by the same PKI. They are verified by exactly the code that
//! verifies genuine quotes, against the development root instead of Intel's.
//!
//! The development PKI's keys are derived from a public seed, so anyone can produce simulated
//! evidence: it proves nothing about hardware. Its only protection is that a verifier trusts the
//! development root solely when its policy says `allow_simulated` (on chain: the
//! `allow_simulated_tee` parameter of dev chain specs). Against Intel's root the same quote fails
//! at the first check: the development root's revocation list is not signed by Intel.
//!
//! Everything here is deterministic (fixed dates, RFC 6979 signatures), so every process derives
//! the same root certificate and collateral.

use crate::error::AttestError;
use dcap_qvl::QuoteCollateralV3;
use p256::ecdsa::signature::Signer;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData,
    SerialNumber, SignatureAlgorithm, SigningKey,
};
use sha2::{Digest, Sha256, Sha384};
use std::sync::OnceLock;

/// The simulated TD's MRTD: the SHA-384 of this label, so simulated measurements are recognisable.
pub const MR_TD_LABEL: &[u8] = b"wetee/simulated-td/v1";
/// FMSPC of the simulated platform: "WETEE" and a zero.
const FMSPC: [u8; 6] = *b"WETEE\0";
const CPU_SVN: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
const PCE_SVN: u8 = 11;
const QE_PROD_ID: u16 = 2;
const QE_SVN: u16 = 4;
/// TD attributes of a production TD: SEPT_VE_DISABLE only.
const TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];
/// Validity of everything the development PKI signs: long enough that dev chains never see
/// their collateral expire; freshness of simulated evidence is the chain's evidence-age rule.
const ISSUED: &str = "2025-01-01T00:00:00Z";
const NEXT_UPDATE: &str = "2125-01-01T00:00:00Z";

/// The SHA-384 MRTD every simulated quote carries.
pub fn mr_td() -> [u8; 48] {
    Sha384::digest(MR_TD_LABEL).into()
}

/// A P-256 key derived from the public seed, signing deterministically.
struct DevKey {
    key: p256::ecdsa::SigningKey,
    /// Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
    public: Vec<u8>,
}

impl DevKey {
    fn derive(name: &str) -> Result<DevKey, AttestError> {
        let mut seed: [u8; 32] = Sha256::digest(
            [
                b"wetee/simulated-tee/dev-pki/v1/".as_slice(),
                name.as_bytes(),
            ]
            .concat(),
        )
        .into();
        // A hash is a valid scalar with overwhelming probability; rehash in the rare other case.
        for _ in 0..8 {
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
                let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                return Ok(DevKey { key, public });
            }
            seed = Sha256::digest(seed).into();
        }
        Err(internal("no valid development key"))
    }

    fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_bytes().into()
    }
}

impl PublicKeyData for DevKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for DevKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

fn internal(reason: impl std::fmt::Display) -> AttestError {
    AttestError::Verification(format!("the simulated TEE's development PKI: {reason}"))
}

/// The development PKI: root, PCK and TCB-signing certificates, CRLs and the quoting enclave.
struct DevPki {
    root_der: Vec<u8>,
    collateral: QuoteCollateralV3,
    out_of_date_collateral: QuoteCollateralV3,
    attestation_key: DevKey,
    /// QE report ‖ its signature ‖ auth data ‖ PCK chain: the certification data after the
    /// attestation key, the same for every quote.
    qe_certification: Vec<u8>,
}

static PKI: OnceLock<Result<DevPki, AttestError>> = OnceLock::new();

fn pki() -> Result<&'static DevPki, AttestError> {
    PKI.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// The development root CA certificate (DER) that simulated quotes chain to.
pub fn root_ca_der() -> Result<&'static [u8], AttestError> {
    Ok(&pki()?.root_der)
}

/// The collateral simulated quotes verify with.
pub fn collateral() -> Result<&'static QuoteCollateralV3, AttestError> {
    Ok(&pki()?.collateral)
}

/// Collateral declaring the simulated platform `OutOfDate` since 2025-01-01 (its TCB date), as
/// Intel does after a TCB recovery: for checking what a policy does with out-of-date platforms.
pub fn out_of_date_collateral() -> Result<&'static QuoteCollateralV3, AttestError> {
    Ok(&pki()?.out_of_date_collateral)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "WeTEE development PKI (SIMULATED TEE, NOT SECURE)",
    );
    dn.push(DnType::CommonName, common_name);
    dn
}

fn params(common_name: &str, serial: u64) -> Result<CertificateParams, AttestError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// A DER TLV with a short or long length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// `SEQUENCE { OID 1.2.840.113741.1.13.1.<suffix>, value }`, Intel's SGX extension entries.
fn sgx_entry(suffix: &[u8], value: Vec<u8>) -> Vec<u8> {
    let mut oid = vec![0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01];
    oid.extend_from_slice(suffix);
    tlv(0x30, &[tlv(0x06, &oid), value].concat())
}

/// The PCK certificate's SGX extension: PPID, TCB (CPUSVN components, PCESVN, CPUSVN), PCE id,
/// FMSPC and SGX type, as Intel's Processor CA issues them.
fn sgx_extension() -> Vec<u8> {
    let mut tcb = Vec::new();
    for (i, svn) in CPU_SVN.iter().enumerate() {
        tcb.extend(sgx_entry(&[2, i as u8 + 1], tlv(0x02, &[*svn])));
    }
    tcb.extend(sgx_entry(&[2, 17], tlv(0x02, &[PCE_SVN])));
    tcb.extend(sgx_entry(&[2, 18], tlv(0x04, &CPU_SVN)));
    let ppid: [u8; 16] = Sha256::digest(b"wetee/simulated-tee/ppid")[..16]
        .try_into()
        .unwrap_or_default();
    tlv(
        0x30,
        &[
            sgx_entry(&[1], tlv(0x04, &ppid)),
            sgx_entry(&[2], tlv(0x30, &tcb)),
            sgx_entry(&[3], tlv(0x04, &[0, 0])),
            sgx_entry(&[4], tlv(0x04, &FMSPC)),
            sgx_entry(&[5], tlv(0x0A, &[0])),
        ]
        .concat(),
    )
}

fn crl(issuer: &Issuer<'_, &DevKey>) -> Result<Vec<u8>, AttestError> {
    let params = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2125, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(issuer).map_err(internal)?.der().to_vec())
}

fn qe_mr_signer() -> [u8; 32] {
    Sha256::digest(b"wetee/simulated-tee/quoting-enclave").into()
}

/// The TCB Info of the simulated platform, whose one TCB level has `status` since `ISSUED`.
fn tcb_info_json(status: &str) -> String {
    let sgx: Vec<String> = CPU_SVN.iter().map(|s| format!("{{\"svn\":{s}}}")).collect();
    let tdx = vec!["{\"svn\":0}"; 16];
    format!(
        concat!(
            r#"{{"id":"TDX","version":3,"issueDate":"{issued}","nextUpdate":"{next}","#,
            r#""fmspc":"{fmspc}","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"#,
            r#""tdxModule":{{"mrsigner":"{zeros48}","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"}},"#,
            r#""tdxModuleIdentities":[],"#,
            r#""tcbLevels":[{{"tcb":{{"sgxtcbcomponents":[{sgx}],"pcesvn":{pcesvn},"tdxtcbcomponents":[{tdx}]}},"#,
            r#""tcbDate":"{issued}","tcbStatus":"{status}","advisoryIDs":[]}}]}}"#
        ),
        status = status,
        issued = ISSUED,
        next = NEXT_UPDATE,
        fmspc = hex::encode_upper(FMSPC),
        zeros48 = "00".repeat(48),
        sgx = sgx.join(","),
        pcesvn = PCE_SVN,
        tdx = tdx.join(","),
    )
}

fn qe_identity_json() -> String {
    format!(
        concat!(
            r#"{{"id":"TD_QE","version":2,"issueDate":"{issued}","nextUpdate":"{next}","#,
            r#""tcbEvaluationDataNumber":1,"miscselect":"00000000","miscselectMask":"FFFFFFFF","#,
            r#""attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","#,
            r#""mrsigner":"{mrsigner}","isvprodid":{prod},"#,
            r#""tcbLevels":[{{"tcb":{{"isvsvn":{svn}}},"tcbDate":"{issued}","tcbStatus":"UpToDate"}}]}}"#
        ),
        issued = ISSUED,
        next = NEXT_UPDATE,
        mrsigner = hex::encode_upper(qe_mr_signer()),
        prod = QE_PROD_ID,
        svn = QE_SVN,
    )
}

fn build() -> Result<DevPki, AttestError> {
    let root_key = DevKey::derive("root")?;
    let pck_ca_key = DevKey::derive("pck-ca")?;
    let pck_key = DevKey::derive("pck")?;
    let tcb_key = DevKey::derive("tcb-signing")?;
    let attestation_key = DevKey::derive("attestation")?;

    let mut root_params = params("WeTEE Simulated TEE Root CA", 1)?;
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = root_params.self_signed(&root_key).map_err(internal)?;
    let root_issuer = Issuer::new(root_params, &root_key);

    let mut pck_ca_params = params("WeTEE Simulated TEE PCK Processor CA", 2)?;
    pck_ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    pck_ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pck_ca = pck_ca_params
        .signed_by(&pck_ca_key, &root_issuer)
        .map_err(internal)?;
    let pck_ca_issuer = Issuer::new(pck_ca_params, &pck_ca_key);

    let mut pck_params = params("WeTEE Simulated TEE PCK Certificate", 3)?;
    pck_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    pck_params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 2, 840, 113741, 1, 13, 1],
        sgx_extension(),
    )];
    let pck = pck_params
        .signed_by(&pck_key, &pck_ca_issuer)
        .map_err(internal)?;

    let mut tcb_params = params("WeTEE Simulated TEE TCB Signing", 4)?;
    tcb_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let tcb_signer = tcb_params
        .signed_by(&tcb_key, &root_issuer)
        .map_err(internal)?;

    let tcb_chain = format!("{}{}", tcb_signer.pem(), root.pem());
    let qe_identity = qe_identity_json();
    let collateral_with = |status: &str| -> Result<QuoteCollateralV3, AttestError> {
        let tcb_info = tcb_info_json(status);
        Ok(QuoteCollateralV3 {
            pck_crl_issuer_chain: format!("{}{}", pck_ca.pem(), root.pem()),
            root_ca_crl: crl(&root_issuer)?,
            pck_crl: crl(&pck_ca_issuer)?,
            tcb_info_issuer_chain: tcb_chain.clone(),
            tcb_info_signature: tcb_key.sign_raw(tcb_info.as_bytes()).to_vec(),
            tcb_info,
            qe_identity_issuer_chain: tcb_chain.clone(),
            qe_identity_signature: tcb_key.sign_raw(qe_identity.as_bytes()).to_vec(),
            qe_identity: qe_identity.clone(),
            pck_certificate_chain: None,
        })
    };
    let collateral = collateral_with("UpToDate")?;
    let out_of_date_collateral = collateral_with("OutOfDate")?;

    // The quoting enclave vouches for the attestation key: its report data is the SHA-256 of
    // the key and the authentication data, and the PCK key signs its report.
    let auth_data: [u8; 32] = std::array::from_fn(|i| i as u8);
    let attestation_public = &attestation_key.public[1..];
    let mut qe_report = [0u8; 384];
    qe_report[48] = 0x15; // INIT | MODE64BIT | PROVISIONKEY, not DEBUG
    qe_report[128..160].copy_from_slice(&qe_mr_signer());
    qe_report[256..258].copy_from_slice(&QE_PROD_ID.to_le_bytes());
    qe_report[258..260].copy_from_slice(&QE_SVN.to_le_bytes());
    let binding = Sha256::digest([attestation_public, auth_data.as_slice()].concat());
    qe_report[320..352].copy_from_slice(&binding);
    let qe_signature = pck_key.sign_raw(&qe_report);
    let pck_chain = format!("{}{}{}", pck.pem(), pck_ca.pem(), root.pem());

    let mut inner = Vec::new();
    inner.extend_from_slice(&qe_report);
    inner.extend_from_slice(&qe_signature);
    inner.extend_from_slice(&32u16.to_le_bytes());
    inner.extend_from_slice(&auth_data);
    inner.extend_from_slice(&5u16.to_le_bytes());
    inner.extend_from_slice(&len_u32(pck_chain.len())?);
    inner.extend_from_slice(pck_chain.as_bytes());
    let mut qe_certification = Vec::new();
    qe_certification.extend_from_slice(&6u16.to_le_bytes());
    qe_certification.extend_from_slice(&len_u32(inner.len())?);
    qe_certification.extend_from_slice(&inner);

    Ok(DevPki {
        root_der: root.der().to_vec(),
        collateral,
        out_of_date_collateral,
        attestation_key,
        qe_certification,
    })
}

fn len_u32(len: usize) -> Result<[u8; 4], AttestError> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| internal("certification data too long"))
}

/// A simulated TDX quote (v4) carrying `report_data`, with the simulated MRTD and zero RTMRs.
pub fn quote(report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    let pki = pki()?;
    let mut quote = Vec::with_capacity(8 * 1024);
    // Header: version 4, ECDSA P-256 attestation key, TDX, Intel's QE vendor id.
    quote.extend_from_slice(&4u16.to_le_bytes());
    quote.extend_from_slice(&2u16.to_le_bytes());
    quote.extend_from_slice(&0x81u32.to_le_bytes());
    quote.extend_from_slice(&[0; 4]);
    quote.extend_from_slice(&dcap_qvl::INTEL_QE_VENDOR_ID);
    quote.extend_from_slice(&[0; 20]);
    // TD report 1.0.
    quote.extend_from_slice(&[0; 16]); // TEE TCB SVN
    quote.extend_from_slice(&[0; 48]); // MRSEAM
    quote.extend_from_slice(&[0; 48]); // MRSIGNERSEAM
    quote.extend_from_slice(&[0; 8]); // SEAM attributes
    quote.extend_from_slice(&TD_ATTRIBUTES);
    quote.extend_from_slice(&[0xE7, 0x18, 0x06, 0, 0, 0, 0, 0]); // XFAM
    quote.extend_from_slice(&mr_td());
    quote.extend_from_slice(&[0; 48 * 3]); // MRCONFIGID, MROWNER, MROWNERCONFIG
    quote.extend_from_slice(&[0; 48 * 4]); // RTMR0-3
    quote.extend_from_slice(report_data);
    debug_assert_eq!(quote.len(), 632);

    let signature = pki.attestation_key.sign_raw(&quote);
    let auth_len = 64 + 64 + pki.qe_certification.len();
    quote.extend_from_slice(&len_u32(auth_len)?);
    quote.extend_from_slice(&signature);
    quote.extend_from_slice(&pki.attestation_key.public[1..]);
    quote.extend_from_slice(&pki.qe_certification);
    Ok(quote)
}
