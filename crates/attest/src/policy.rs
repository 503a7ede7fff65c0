//! What evidence must show to be accepted.

use serde::{Deserialize, Serialize};
use wetee_types::attestation::{MeasurementRule, TcbStatus, hex_array_option};

/// The rules evidence is judged against. The default is strict: only `UpToDate` platforms, no
/// debug TEEs, no simulated TEE, any measurement, any report data.
///
/// Read from JSON by `wetee attest verify --policy FILE`; unknown fields are refused so a typo
/// never silently loosens a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// TCB statuses accepted for SGX and TDX platforms. `Revoked` is never accepted.
    #[serde(default = "up_to_date_only")]
    pub allowed_tcb_statuses: Vec<TcbStatus>,
    /// Accept debug enclaves, TDs and guests, whose memory the host can read.
    #[serde(default)]
    pub allow_debug: bool,
    /// Accept evidence from the development CA's simulated TEE.
    #[serde(default)]
    pub allow_simulated: bool,
    /// The report data the evidence must carry (the binding to keys and a nonce).
    #[serde(default, with = "hex_array_option")]
    pub report_data: Option<[u8; 64]>,
    /// Measurements accepted; empty accepts any.
    #[serde(default)]
    pub allowed_measurements: Vec<MeasurementRule>,
}

fn up_to_date_only() -> Vec<TcbStatus> {
    vec![TcbStatus::UpToDate]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed_tcb_statuses: up_to_date_only(),
            allow_debug: false,
            allow_simulated: false,
            report_data: None,
            allowed_measurements: Vec::new(),
        }
    }
}

impl Policy {
    /// A readable list of the allowed statuses.
    pub(crate) fn allowed_statuses_text(&self) -> String {
        if self.allowed_tcb_statuses.is_empty() {
            return "none".into();
        }
        let names: Vec<_> = self.allowed_tcb_statuses.iter().map(|s| s.name()).collect();
        names.join(", ")
    }

    /// Problems that make the policy itself unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.allowed_tcb_statuses.contains(&TcbStatus::Revoked) {
            return Err("Revoked can never be an allowed TCB status".into());
        }
        if let Some(rule) = self.allowed_measurements.iter().find(|r| !r.is_pinned()) {
            return Err(format!(
                "an allowed measurement must pin at least one value: {}",
                serde_json::to_string(rule).unwrap_or_default()
            ));
        }
        Ok(())
    }
}
