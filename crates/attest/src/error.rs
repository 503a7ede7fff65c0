//! Why evidence was refused.

use wetee_types::TeeKind;
use wetee_types::attestation::TcbStatus;

/// Why evidence is not valid under a policy. Every variant is a refusal the caller can show as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// More bytes than any genuine evidence has.
    #[error("the evidence is {len} bytes, more than the {max} any genuine quote or report has")]
    Oversized {
        /// Bytes given.
        len: usize,
        /// Largest accepted.
        max: usize,
    },
    /// Not a quote or report of any known kind.
    #[error("the evidence is not an SGX or TDX quote nor an SEV-SNP report")]
    UnknownKind,
    /// The caller said one kind, the bytes are another.
    #[error("the evidence is {found}, not {expected}")]
    KindMismatch {
        /// What the caller expected.
        expected: TeeKind,
        /// What the bytes are.
        found: TeeKind,
    },
    /// The policy does not accept this kind (the simulated TEE, unless explicitly allowed).
    #[error("{kind} evidence is not accepted by this policy")]
    KindNotAllowed {
        /// The refused kind.
        kind: TeeKind,
    },
    /// The evidence does not parse.
    #[error("malformed {kind} evidence: {reason}")]
    Malformed {
        /// The kind it claims to be.
        kind: TeeKind,
        /// What is wrong.
        reason: String,
    },
    /// The collateral does not parse or does not fit the evidence.
    #[error("bad collateral: {0}")]
    Collateral(String),
    /// Collateral (or a certificate or CRL it carries) is genuine but not current at the time
    /// given: past its next update, or not yet issued.
    #[error(
        "the {what} is valid from {valid_from} to {valid_until} (Unix seconds), not at {at}: use collateral current at that time"
    )]
    CollateralNotCurrent {
        /// What is not current: "TCB Info", "QE Identity", "PCK CRL", a certificate...
        what: String,
        /// Its issue date (or a certificate's notBefore).
        valid_from: u64,
        /// Its next update (or a certificate's notAfter); `u64::MAX` when it has none.
        valid_until: u64,
        /// The time it was checked at.
        at: u64,
    },
    /// A signature, certificate chain, revocation list or validity period does not verify.
    #[error("verification failed: {0}")]
    Verification(String),
    /// The platform's TCB status is not one the policy allows.
    #[error("TCB status {status} is not allowed (allowed: {allowed})")]
    TcbStatusNotAllowed {
        /// The platform's status.
        status: TcbStatus,
        /// What the policy allows, comma separated.
        allowed: String,
    },
    /// The policy's other collateral rules (freshness, platform flags) refused it.
    #[error("refused by the TCB policy: {0}")]
    TcbPolicy(String),
    /// A debug enclave, TD or guest: its memory is readable by the host.
    #[error(
        "the TEE runs in debug mode, so the host can read its memory; the policy does not allow debug"
    )]
    Debug,
    /// The report data is not what the caller expected: the evidence is bound to something else.
    #[error("report_data is {found}, expected {expected}")]
    ReportDataMismatch {
        /// Expected, hex.
        expected: String,
        /// Found, hex.
        found: String,
    },
    /// The measurements match none of the policy's rules.
    #[error("the measurements match none of the policy's allowed measurements")]
    MeasurementNotAllowed,
    /// An SEV-SNP guest policy the verifier refuses (migration agent, or an invalid policy).
    #[error("guest policy refused: {0}")]
    GuestPolicy(String),
}
