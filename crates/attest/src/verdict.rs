//! The outcome of verifying evidence: what it says, and whether the policy accepts it.

use crate::error::AttestError;
use serde::Serialize;
use wetee_types::TeeKind;
use wetee_types::attestation::{Measurements, TcbStatus, hex_array_option};

/// Everything learned from evidence, valid or not. Fields stay `None` when verification stopped
/// before they could be read (for instance, unparseable bytes have no measurements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the evidence is genuine and the policy accepts it.
    pub valid: bool,
    /// The TEE that produced it.
    pub kind: Option<TeeKind>,
    /// Intel's TCB status of the platform (SGX and TDX only).
    pub tcb_status: Option<TcbStatus>,
    /// Intel security advisories that apply to the platform.
    pub advisory_ids: Vec<String>,
    /// Whether the TEE runs in debug mode.
    pub debug: Option<bool>,
    /// What runs in the TEE.
    pub measurements: Option<Measurements>,
    /// The 64 bytes the TEE bound into the evidence.
    #[serde(with = "hex_array_option")]
    pub report_data: Option<[u8; 64]>,
    /// Why it is not valid.
    pub reason: Option<String>,
    /// The typed refusal behind `reason`.
    #[serde(skip)]
    pub error: Option<AttestError>,
}

impl Verdict {
    pub(crate) fn empty() -> Self {
        Verdict {
            valid: false,
            kind: None,
            tcb_status: None,
            advisory_ids: Vec::new(),
            debug: None,
            measurements: None,
            report_data: None,
            reason: None,
            error: None,
        }
    }

    /// A refusal before the evidence could be read.
    pub fn refused(kind: Option<wetee_types::TeeKind>, error: AttestError) -> Self {
        Verdict {
            kind,
            ..Verdict::empty()
        }
        .conclude(Err(error))
    }

    /// Records the outcome of the checks.
    pub(crate) fn conclude(mut self, outcome: Result<(), AttestError>) -> Self {
        match outcome {
            Ok(()) => {
                self.valid = true;
                self.reason = None;
                self.error = None;
            }
            Err(error) => {
                self.valid = false;
                self.reason = Some(error.to_string());
                self.error = Some(error);
            }
        }
        self
    }

    /// The verdict as a result, for callers that only need accept or refuse.
    pub fn into_result(self) -> Result<Verdict, AttestError> {
        match self.error.clone() {
            Some(error) => Err(error),
            None if self.valid => Ok(self),
            None => Err(AttestError::Verification("not verified".into())),
        }
    }
}
