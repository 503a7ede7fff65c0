//! Attestation vocabulary shared by the verifier, the chain and the tools: TCB statuses, the
//! measurements a TEE reports, and the rules that say which measurements are allowed.
//!
//! Byte strings read and write as hex in JSON, like keys everywhere else.

use crate::codec_enum;
use crate::codec_struct;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Intel's verdict on a platform's trusted computing base, from the TCB Info collateral.
///
/// Names are Intel's, exactly as they appear in collateral and in `dcap-qvl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum TcbStatus {
    /// Patched and configured as recommended.
    UpToDate,
    /// Patched, but software mitigations are needed.
    SwHardeningNeeded,
    /// Patched, but the platform's configuration needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// Missing microcode or firmware updates.
    OutOfDate,
    /// Out of date and needing configuration.
    OutOfDateConfigurationNeeded,
    /// TDX 1.5: launched on an old TCB, now running on an updated one.
    TdRelaunchAdvised,
    /// As above, and the platform needs configuration.
    TdRelaunchAdvisedConfigurationNeeded,
    /// The platform's keys are revoked: never acceptable.
    Revoked,
}
codec_enum!(TcbStatus {
    0 => UpToDate,
    1 => SwHardeningNeeded,
    2 => ConfigurationNeeded,
    3 => ConfigurationAndSwHardeningNeeded,
    4 => OutOfDate,
    5 => OutOfDateConfigurationNeeded,
    6 => TdRelaunchAdvised,
    7 => TdRelaunchAdvisedConfigurationNeeded,
    8 => Revoked,
});

impl TcbStatus {
    /// Every status, in tag order.
    pub const ALL: [TcbStatus; 9] = [
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Intel's name for the status.
    pub fn name(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SwHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TcbStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TcbStatus::ALL
            .into_iter()
            .find(|status| status.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = TcbStatus::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown TCB status `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl Serialize for TcbStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TcbStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An SGX enclave's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct SgxMeasurement {
    /// Hash of the enclave's code and initial data.
    #[serde(with = "hex_array")]
    pub mr_enclave: [u8; 32],
    /// Hash of the key that signed the enclave.
    #[serde(with = "hex_array")]
    pub mr_signer: [u8; 32],
    /// Product id chosen by the signer.
    pub isv_prod_id: u16,
    /// Security version chosen by the signer.
    pub isv_svn: u16,
}
codec_struct!(SgxMeasurement {
    mr_enclave,
    mr_signer,
    isv_prod_id,
    isv_svn
});

/// A TDX trust domain's identity: its build-time measurement and run-time registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct TdxMeasurement {
    /// Measurement of the TD's initial memory (firmware).
    #[serde(with = "hex_array")]
    pub mr_td: [u8; 48],
    /// Run-time measurement register 0 (firmware configuration).
    #[serde(with = "hex_array")]
    pub rtmr0: [u8; 48],
    /// Run-time measurement register 1 (kernel).
    #[serde(with = "hex_array")]
    pub rtmr1: [u8; 48],
    /// Run-time measurement register 2 (kernel command line, initrd).
    #[serde(with = "hex_array")]
    pub rtmr2: [u8; 48],
    /// Run-time measurement register 3 (application).
    #[serde(with = "hex_array")]
    pub rtmr3: [u8; 48],
}
codec_struct!(TdxMeasurement {
    mr_td,
    rtmr0,
    rtmr1,
    rtmr2,
    rtmr3
});

/// An SEV-SNP guest's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct SnpMeasurement {
    /// Launch measurement of the guest's initial memory.
    #[serde(with = "hex_array")]
    pub measurement: [u8; 48],
    /// Data the host supplied at launch.
    #[serde(with = "hex_array")]
    pub host_data: [u8; 32],
    /// The guest policy the firmware enforces.
    pub policy: u64,
}
codec_struct!(SnpMeasurement {
    measurement,
    host_data,
    policy
});

/// What a TEE's evidence says is running in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(untagged)]
pub enum Measurements {
    /// An SGX enclave.
    Sgx(SgxMeasurement),
    /// A TDX trust domain.
    Tdx(TdxMeasurement),
    /// An SEV-SNP guest.
    SevSnp(SnpMeasurement),
}
codec_enum!(Measurements {
    0 => Sgx(inner),
    1 => Tdx(inner),
    2 => SevSnp(inner),
});

/// One allowed identity. Every field given must match; a field left out matches anything, but a
/// rule must pin at least one measurement (see [`MeasurementRule::is_pinned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum MeasurementRule {
    /// An SGX enclave, by code or by signer.
    #[serde(rename = "sgx")]
    Sgx {
        /// Exact enclave measurement.
        #[serde(default, with = "hex_array_option")]
        mr_enclave: Option<[u8; 32]>,
        /// Exact signer.
        #[serde(default, with = "hex_array_option")]
        mr_signer: Option<[u8; 32]>,
        /// Exact product id.
        #[serde(default)]
        isv_prod_id: Option<u16>,
        /// Lowest acceptable security version.
        #[serde(default)]
        min_isv_svn: Option<u16>,
    },
    /// A TDX trust domain.
    #[serde(rename = "tdx")]
    Tdx {
        /// Exact MRTD.
        #[serde(default, with = "hex_array_option")]
        mr_td: Option<[u8; 48]>,
        /// Exact RTMR0.
        #[serde(default, with = "hex_array_option")]
        rtmr0: Option<[u8; 48]>,
        /// Exact RTMR1.
        #[serde(default, with = "hex_array_option")]
        rtmr1: Option<[u8; 48]>,
        /// Exact RTMR2.
        #[serde(default, with = "hex_array_option")]
        rtmr2: Option<[u8; 48]>,
        /// Exact RTMR3.
        #[serde(default, with = "hex_array_option")]
        rtmr3: Option<[u8; 48]>,
    },
    /// An SEV-SNP guest.
    #[serde(rename = "sev-snp", alias = "snp")]
    SevSnp {
        /// Exact launch measurement.
        #[serde(default, with = "hex_array_option")]
        measurement: Option<[u8; 48]>,
        /// Exact host data.
        #[serde(default, with = "hex_array_option")]
        host_data: Option<[u8; 32]>,
    },
}
codec_enum!(MeasurementRule {
    0 => Sgx { mr_enclave, mr_signer, isv_prod_id, min_isv_svn },
    1 => Tdx { mr_td, rtmr0, rtmr1, rtmr2, rtmr3 },
    2 => SevSnp { measurement, host_data },
});

fn same<const N: usize>(rule: &Option<[u8; N]>, actual: &[u8; N]) -> bool {
    rule.as_ref().is_none_or(|wanted| wanted == actual)
}

impl MeasurementRule {
    /// The rule that admits exactly this build: every code measurement pinned (for SEV-SNP the
    /// launch measurement; host data is the operator's, and left free).
    pub fn exactly(measurements: &Measurements) -> MeasurementRule {
        match *measurements {
            Measurements::Sgx(m) => MeasurementRule::Sgx {
                mr_enclave: Some(m.mr_enclave),
                mr_signer: Some(m.mr_signer),
                isv_prod_id: Some(m.isv_prod_id),
                min_isv_svn: Some(m.isv_svn),
            },
            Measurements::Tdx(m) => MeasurementRule::Tdx {
                mr_td: Some(m.mr_td),
                rtmr0: Some(m.rtmr0),
                rtmr1: Some(m.rtmr1),
                rtmr2: Some(m.rtmr2),
                rtmr3: Some(m.rtmr3),
            },
            Measurements::SevSnp(m) => MeasurementRule::SevSnp {
                measurement: Some(m.measurement),
                host_data: None,
            },
        }
    }

    /// Whether the rule names at least one code measurement (a signer or product id alone
    /// counts for SGX, where the signer vouches for the code).
    pub fn is_pinned(&self) -> bool {
        match self {
            MeasurementRule::Sgx {
                mr_enclave,
                mr_signer,
                ..
            } => mr_enclave.is_some() || mr_signer.is_some(),
            MeasurementRule::Tdx {
                mr_td,
                rtmr0,
                rtmr1,
                rtmr2,
                rtmr3,
            } => [mr_td, rtmr0, rtmr1, rtmr2, rtmr3]
                .iter()
                .any(|m| m.is_some()),
            MeasurementRule::SevSnp { measurement, .. } => measurement.is_some(),
        }
    }

    /// Whether `measurements` satisfy the rule.
    pub fn matches(&self, measurements: &Measurements) -> bool {
        match (self, measurements) {
            (
                MeasurementRule::Sgx {
                    mr_enclave,
                    mr_signer,
                    isv_prod_id,
                    min_isv_svn,
                },
                Measurements::Sgx(m),
            ) => {
                same(mr_enclave, &m.mr_enclave)
                    && same(mr_signer, &m.mr_signer)
                    && isv_prod_id.is_none_or(|id| id == m.isv_prod_id)
                    && min_isv_svn.is_none_or(|svn| m.isv_svn >= svn)
            }
            (
                MeasurementRule::Tdx {
                    mr_td,
                    rtmr0,
                    rtmr1,
                    rtmr2,
                    rtmr3,
                },
                Measurements::Tdx(m),
            ) => {
                same(mr_td, &m.mr_td)
                    && same(rtmr0, &m.rtmr0)
                    && same(rtmr1, &m.rtmr1)
                    && same(rtmr2, &m.rtmr2)
                    && same(rtmr3, &m.rtmr3)
            }
            (
                MeasurementRule::SevSnp {
                    measurement,
                    host_data,
                },
                Measurements::SevSnp(m),
            ) => same(measurement, &m.measurement) && same(host_data, &m.host_data),
            _ => false,
        }
    }
}

/// Domain tag of the report data a worker binds into its evidence.
pub const WORKER_REPORT_DATA_DOMAIN: &[u8] = b"wetee/worker/v1";

/// The report data a worker's evidence must carry: SHA-512 over the domain tag, the chain's
/// genesis hash, the identity and sealing public keys, and a nonce (a recent block hash), so the
/// evidence vouches for exactly these keys, on this chain, and recently.
pub fn worker_report_data(
    genesis_hash: &crate::Hash,
    keys: &crate::records::WorkerKeys,
    nonce: &[u8; 32],
) -> [u8; 64] {
    use sha2::{Digest, Sha512};
    let mut hasher = Sha512::new();
    hasher.update(WORKER_REPORT_DATA_DOMAIN);
    hasher.update(genesis_hash.0);
    hasher.update(keys.identity);
    hasher.update(keys.sealing);
    hasher.update(nonce);
    hasher.finalize().into()
}

/// Fixed-size byte arrays as hex strings (an optional `0x` prefix is accepted).
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes hex.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    /// Reads hex of exactly `N` bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Parses hex of exactly `N` bytes.
    pub fn parse<const N: usize>(text: &str) -> Result<[u8; N], String> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(digits).map_err(|e| format!("not hex: {e}"))?;
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| format!("expected {N} bytes of hex, got {len}"))
    }
}

/// Optional fixed-size byte arrays as hex strings.
pub mod hex_array_option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes hex, or null.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &Option<[u8; N]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads hex of exactly `N` bytes, or null.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::hex_array::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_intel_names() {
        for status in TcbStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.name()));
            assert_eq!(serde_json::from_str::<TcbStatus>(&json).unwrap(), status);
        }
        assert!(
            "Fine"
                .parse::<TcbStatus>()
                .unwrap_err()
                .contains("UpToDate")
        );
    }

    #[test]
    fn a_rule_matches_only_what_it_pins() {
        let m = Measurements::Sgx(SgxMeasurement {
            mr_enclave: [1; 32],
            mr_signer: [2; 32],
            isv_prod_id: 3,
            isv_svn: 4,
        });
        let by_signer: MeasurementRule = serde_json::from_str(&format!(
            r#"{{"kind":"sgx","mr_signer":"{}","min_isv_svn":4}}"#,
            hex::encode([2u8; 32])
        ))
        .unwrap();
        assert!(by_signer.is_pinned());
        assert!(by_signer.matches(&m));
        let newer: MeasurementRule = serde_json::from_str(&format!(
            r#"{{"kind":"sgx","mr_signer":"{}","min_isv_svn":5}}"#,
            hex::encode([2u8; 32])
        ))
        .unwrap();
        assert!(!newer.matches(&m));
        let tdx: MeasurementRule = serde_json::from_str(&format!(
            r#"{{"kind":"tdx","mr_td":"{}"}}"#,
            hex::encode([1u8; 48])
        ))
        .unwrap();
        assert!(!tdx.matches(&m), "a rule for another kind never matches");
        let empty: MeasurementRule = serde_json::from_str(r#"{"kind":"tdx"}"#).unwrap();
        assert!(!empty.is_pinned());
        assert!(serde_json::from_str::<MeasurementRule>(r#"{"kind":"tdx","mrtd":"00"}"#).is_err());
    }
}

/// Measurement rules one policy or one app version can list.
pub const MAX_MEASUREMENT_RULES: usize = 32;

/// What the chain accepts as a worker's TEE: set in the chain spec, changed by the root origin.
///
/// Debug TEEs are never accepted on chain: their memory is open to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// TCB statuses accepted for SGX and TDX platforms.
    pub allowed_tcb_statuses: crate::codec::BoundedVec<TcbStatus, 9>,
    /// Worker TEEs must match one of these; any measurement when empty.
    #[serde(default)]
    pub allowed_worker_measurements:
        crate::codec::BoundedVec<MeasurementRule, MAX_MEASUREMENT_RULES>,
    /// Whether the simulated TEE of development chains is accepted: true only on dev chains.
    pub allow_simulated_tee: bool,
    /// How long evidence vouches for a worker after the block it is bound to: a worker whose
    /// evidence is older gets no new placements and no pay until it sends fresh evidence.
    pub max_evidence_age_ms: u64,
    /// Days past the date of its TCB level an out-of-date platform (an allowed `OutOfDate*`
    /// status) is still accepted; `null`: for as long as its collateral is valid.
    #[serde(default = "default_tcb_grace_days")]
    pub platform_grace_days: Option<u32>,
    /// The same for an out-of-date quoting enclave.
    #[serde(default = "default_tcb_grace_days")]
    pub qe_grace_days: Option<u32>,
}
codec_struct!(AttestationPolicy {
    allowed_tcb_statuses,
    allowed_worker_measurements,
    allow_simulated_tee,
    max_evidence_age_ms,
    platform_grace_days,
    qe_grace_days
});

/// Days an allowed out-of-date TCB stays acceptable past its date unless a policy says
/// otherwise: a quarter, the time operators commonly get to apply a TCB recovery.
pub const DEFAULT_TCB_GRACE_DAYS: u32 = 90;

fn default_tcb_grace_days() -> Option<u32> {
    Some(DEFAULT_TCB_GRACE_DAYS)
}

/// How far back the block whose hash serves as an evidence nonce may be: evidence must be
/// bound to a block of about the last this many milliseconds when it is submitted (512 blocks of
/// 250 ms). A time, converted into blocks with the chain's block time
/// ([`nonce_window_blocks`]), so that it means the same on a fast chain as on a slow one.
pub const NONCE_WINDOW_MS: u64 = 128_000;

/// The evidence nonce window in blocks on a chain with `target_block_time_ms` blocks.
pub fn nonce_window_blocks(target_block_time_ms: u64) -> u64 {
    NONCE_WINDOW_MS.div_ceil(target_block_time_ms.max(1)).max(1)
}

impl AttestationPolicy {
    /// Development chains: the simulated TEE is accepted, evidence lasts an hour.
    pub fn dev() -> AttestationPolicy {
        AttestationPolicy {
            allowed_tcb_statuses: vec![TcbStatus::UpToDate]
                .try_into()
                .unwrap_or_else(|_| unreachable!("one status")),
            allowed_worker_measurements: Default::default(),
            allow_simulated_tee: true,
            max_evidence_age_ms: 3_600_000,
            platform_grace_days: default_tcb_grace_days(),
            qe_grace_days: default_tcb_grace_days(),
        }
    }

    /// Production chains: genuine TEEs only, up to date, evidence refreshed daily, running one
    /// of the worker builds `pinned` describes (a chain without the simulated TEE must pin them;
    /// more than [`MAX_MEASUREMENT_RULES`] leave none, which [`AttestationPolicy::validate`]
    /// refuses).
    pub fn production(pinned: Vec<MeasurementRule>) -> AttestationPolicy {
        AttestationPolicy {
            allow_simulated_tee: false,
            max_evidence_age_ms: 24 * 3_600_000,
            allowed_worker_measurements: pinned.try_into().unwrap_or_default(),
            ..AttestationPolicy::dev()
        }
    }

    /// Checks that the policy can be met and means what it says.
    pub fn validate(&self) -> Result<(), String> {
        if self.allowed_tcb_statuses.is_empty() {
            return Err("allowed_tcb_statuses must list at least one status".into());
        }
        if self.allowed_tcb_statuses.contains(&TcbStatus::Revoked) {
            return Err("a revoked platform can never be allowed".into());
        }
        if let Some(i) = self
            .allowed_worker_measurements
            .iter()
            .position(|rule| !rule.is_pinned())
        {
            return Err(format!(
                "allowed_worker_measurements[{i}] pins no measurement and would match anything"
            ));
        }
        if !self.allow_simulated_tee && self.allowed_worker_measurements.is_empty() {
            // Empty means "any": a genuine TEE running a modified worker would be accepted, and
            // given the owners' secrets.
            return Err(
                "allowed_worker_measurements must pin the worker builds a chain of genuine TEEs \
                 accepts (empty accepts any worker binary); `wetee worker measurements` prints \
                 what a build attests"
                    .into(),
            );
        }
        if self.max_evidence_age_ms < 60_000 {
            return Err("max_evidence_age_ms must be at least 60000 (a minute)".into());
        }
        Ok(())
    }

    /// Whether `measurements` are among the allowed worker measurements.
    pub fn allows_measurements(&self, measurements: &Measurements) -> bool {
        self.allowed_worker_measurements.is_empty()
            || self
                .allowed_worker_measurements
                .iter()
                .any(|rule| rule.matches(measurements))
    }
}

/// What the chain learned from a worker's accepted evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AttestedTee {
    /// Time of the block the evidence is bound to: it was produced after this.
    pub fresh_at_ms: crate::TimestampMs,
    /// When it stops vouching for the worker (`fresh_at_ms` plus the policy's maximum age).
    pub expires_at_ms: crate::TimestampMs,
    /// The platform's TCB status (SGX and TDX).
    pub tcb_status: Option<TcbStatus>,
    /// What runs in the TEE.
    pub measurements: Option<Measurements>,
}
codec_struct!(AttestedTee {
    fresh_at_ms,
    expires_at_ms,
    tcb_status,
    measurements
});
