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
    /// How many days past the date of its TCB level an out-of-date platform (an allowed
    /// `OutOfDate` or `OutOfDateConfigurationNeeded` status) is still accepted; `null`: for as
    /// long as the collateral is valid. Default [`DEFAULT_TCB_GRACE_DAYS`].
    #[serde(default = "default_grace")]
    pub platform_grace_days: Option<u32>,
    /// The same for an out-of-date quoting enclave.
    #[serde(default = "default_grace")]
    pub qe_grace_days: Option<u32>,
}

pub use wetee_types::attestation::DEFAULT_TCB_GRACE_DAYS;

fn default_grace() -> Option<u32> {
    Some(DEFAULT_TCB_GRACE_DAYS)
}

fn up_to_date_only() -> Vec<TcbStatus> {
    vec![TcbStatus::UpToDate]
}

/// A grace in days as dcap-qvl's period (`None`: unlimited).
pub(crate) fn grace_period(days: Option<u32>) -> std::time::Duration {
    match days {
        Some(days) => std::time::Duration::from_secs(u64::from(days) * 86_400),
        None => std::time::Duration::from_secs(u64::MAX),
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed_tcb_statuses: up_to_date_only(),
            allow_debug: false,
            allow_simulated: false,
            report_data: None,
            allowed_measurements: Vec::new(),
            platform_grace_days: default_grace(),
            qe_grace_days: default_grace(),
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
