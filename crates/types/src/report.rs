//! Work reports: a worker's signed account of one epoch.

use crate::codec::{BoundedVec, encode};
use crate::codec_struct;
use crate::crypto::Hash;
use crate::ids::{AppId, EpochNumber, TaskId, WorkerId};
use crate::records::Evidence;
use serde::{Deserialize, Serialize};

/// Apps one report can cover.
pub const MAX_REPORT_APPS: usize = 1024;
/// Task run results one report can carry.
pub const MAX_REPORT_RUNS: usize = 1024;
/// Uptime of a whole epoch, in basis points.
pub const FULL_UPTIME_BPS: u16 = 10_000;

/// Domain tag of the bytes a worker's identity key signs.
pub const WORK_REPORT_DOMAIN: &[u8] = b"wetee/work-report/v1";

/// Resources a workload consumed, measured by the worker from its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Usage {
    /// CPU time, in milliseconds.
    pub cpu_ms: u64,
    /// Peak memory, in MiB.
    pub memory_peak_mib: u64,
    /// Bytes received.
    pub net_rx_bytes: u64,
    /// Bytes sent.
    pub net_tx_bytes: u64,
    /// Disk in use at the end, in MiB.
    pub disk_mib: u64,
}
codec_struct!(Usage {
    cpu_ms,
    memory_peak_mib,
    net_rx_bytes,
    net_tx_bytes,
    disk_mib
});

/// What a worker proves about one app for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppProof {
    /// The app.
    pub app: AppId,
    /// Share of the epoch the app was healthy, in basis points (10,000 = all of it).
    pub uptime_bps: u16,
    /// Resources consumed.
    pub usage: Usage,
    /// BLAKE3 Merkle root of the epoch's log chunks.
    pub log_root: Hash,
}
codec_struct!(AppProof {
    app,
    uptime_bps,
    usage,
    log_root
});

/// The result of one task run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RunReport {
    /// The task.
    pub task: TaskId,
    /// The run's number.
    pub run: u32,
    /// Exit code.
    pub exit_code: i32,
    /// Hash of the output.
    pub output_hash: Hash,
    /// Merkle root of the logs.
    pub log_root: Hash,
    /// Wall time.
    pub duration_ms: u64,
    /// Resources consumed.
    pub usage: Usage,
}
codec_struct!(RunReport {
    task,
    run,
    exit_code,
    output_hash,
    log_root,
    duration_ms,
    usage
});

/// One worker's report for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WorkReport {
    /// The reporting worker.
    pub worker: WorkerId,
    /// The epoch covered (already ended).
    pub epoch: EpochNumber,
    /// Every app the worker ran in that epoch it wants to be paid for.
    pub apps: BoundedVec<AppProof, MAX_REPORT_APPS>,
    /// Task runs that finished since the last report.
    pub runs: BoundedVec<RunReport, MAX_REPORT_RUNS>,
    /// Fresh attestation evidence, when the worker refreshes it.
    pub evidence: Option<Evidence>,
}
codec_struct!(WorkReport {
    worker,
    epoch,
    apps,
    runs,
    evidence
});

impl WorkReport {
    /// The bytes the worker's identity key signs: domain tag, genesis hash, then the report.
    pub fn signing_payload(&self, genesis_hash: &Hash) -> Vec<u8> {
        let body = encode(self);
        let mut payload = Vec::with_capacity(WORK_REPORT_DOMAIN.len() + 32 + body.len());
        payload.extend_from_slice(WORK_REPORT_DOMAIN);
        payload.extend_from_slice(&genesis_hash.0);
        payload.extend_from_slice(&body);
        payload
    }
}

/// A work report with its identity-key signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SignedWorkReport {
    /// The report.
    pub report: WorkReport,
    /// Ed25519 signature by the worker's identity key over [`WorkReport::signing_payload`].
    #[serde(with = "signature_hex")]
    pub signature: [u8; 64],
}
codec_struct!(SignedWorkReport { report, signature });

pub(crate) mod signature_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 64 bytes"))
    }
}
