//! Obtaining evidence inside a TEE, with chosen report data.
//!
//! - [`Gramine`]: SGX enclaves under Gramine, through its `/dev/attestation` pseudo-files.
//! - [`ConfigfsTsm`]: TDX and SEV-SNP guests on Linux 6.7+, through configfs-tsm
//!   (`/sys/kernel/config/tsm/report`).
//! - [`Simulated`]: the development PKI's TDX quotes, for dev chains and tests.

use crate::simulated;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wetee_types::TeeKind;

/// Evidence as the TEE produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// The TEE.
    pub kind: TeeKind,
    /// The quote or report.
    pub evidence: Vec<u8>,
    /// What the platform supplies beside it: for SEV-SNP, the certificate table (with the VCEK).
    pub auxiliary: Option<Vec<u8>>,
}

/// The VCEK's entry in an SEV-SNP certificate table: GUID 63da758d-e664-4564-adc5-f4b93be8accd
/// in its little-endian binary layout.
const VCEK_GUID: [u8; 16] = [
    0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];

/// The VCEK certificate in an SEV-SNP certificate table (entries of GUID, offset and length,
/// ended by a zero entry; offsets from the table's start).
pub fn vcek_from_cert_table(table: &[u8]) -> Option<&[u8]> {
    for entry in table.chunks_exact(24) {
        let (guid, place) = entry.split_at(16);
        if guid.iter().all(|b| *b == 0) {
            return None;
        }
        if guid == VCEK_GUID {
            let offset = usize::try_from(crate::le_u32(place, 0)?).ok()?;
            let length = usize::try_from(crate::le_u32(place, 4)?).ok()?;
            return table.get(offset..offset.checked_add(length)?);
        }
    }
    None
}

impl Produced {
    /// The evidence as the chain takes it: an SEV-SNP report is followed by the chip's VCEK
    /// from the certificate table, so verifiers need nothing else.
    pub fn for_chain(&self) -> Result<Vec<u8>, ProviderError> {
        if self.kind != TeeKind::SevSnp {
            return Ok(self.evidence.clone());
        }
        let vcek = self
            .auxiliary
            .as_deref()
            .and_then(vcek_from_cert_table)
            .ok_or_else(|| {
                ProviderError::Unsupported(
                    "the host supplied no VCEK certificate with the SEV-SNP report (configure                      the hypervisor to provide the certificate table)"
                        .into(),
                )
            })?;
        let mut evidence = self.evidence.clone();
        evidence.extend_from_slice(vcek);
        Ok(evidence)
    }
}

/// Why evidence could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A TEE interface failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The interface is there but not usable for attestation.
    #[error("{0}")]
    Unsupported(String),
    /// Another process wrote the same report request at the same time.
    #[error("the configfs-tsm report changed under us {attempts} times; giving up")]
    Raced {
        /// Attempts made.
        attempts: u32,
    },
    /// The simulated TEE failed.
    #[error(transparent)]
    Simulated(#[from] crate::AttestError),
}

fn io(path: &Path, error: std::io::Error) -> ProviderError {
    ProviderError::Io {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ProviderError> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io(path, e))?;
    Ok(bytes)
}

fn read_text(path: &Path) -> Result<String, ProviderError> {
    Ok(String::from_utf8_lossy(&read(path)?).trim().to_owned())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ProviderError> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| io(path, e))
}

/// A source of evidence.
pub trait Provider: Send + Sync {
    /// The TEE it speaks for.
    fn kind(&self) -> TeeKind;
    /// Evidence carrying `report_data`.
    fn produce(&self, report_data: &[u8; 64]) -> Result<Produced, ProviderError>;
}

/// Gramine's SGX attestation pseudo-files. Callers must not produce concurrently: Gramine does
/// not lock between writing the report data and reading the quote.
#[derive(Debug, Clone)]
pub struct Gramine {
    root: PathBuf,
}

impl Gramine {
    /// The default location, `/dev/attestation`.
    pub const ROOT: &str = "/dev/attestation";

    /// Gramine's interface under `root`, if it offers DCAP quotes.
    pub fn open(root: impl Into<PathBuf>) -> Result<Gramine, ProviderError> {
        let root = root.into();
        let kind = read_text(&root.join("attestation_type"))?;
        if kind != "dcap" {
            return Err(ProviderError::Unsupported(format!(
                "Gramine's attestation type is `{kind}`; the manifest needs sgx.remote_attestation = \"dcap\""
            )));
        }
        Ok(Gramine { root })
    }
}

impl Provider for Gramine {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn produce(&self, report_data: &[u8; 64]) -> Result<Produced, ProviderError> {
        write(&self.root.join("user_report_data"), report_data)?;
        let quote = read(&self.root.join("quote"))?;
        Ok(Produced {
            kind: TeeKind::Sgx,
            evidence: quote,
            auxiliary: None,
        })
    }
}

/// Linux configfs-tsm: one report entry per request, checked for concurrent writers by its
/// generation counter.
#[derive(Debug, Clone)]
pub struct ConfigfsTsm {
    reports: PathBuf,
    kind: TeeKind,
}

impl ConfigfsTsm {
    /// The default location.
    pub const REPORTS: &str = "/sys/kernel/config/tsm/report";
    const ATTEMPTS: u32 = 3;

    /// The interface under `reports`; the provider (TDX or SEV-SNP) is read from a probe entry.
    pub fn open(reports: impl Into<PathBuf>) -> Result<ConfigfsTsm, ProviderError> {
        let reports = reports.into();
        let probe = Entry::create(&reports)?;
        let provider = read_text(&probe.path.join("provider"))?;
        let kind = match provider.as_str() {
            "tdx_guest" => TeeKind::Tdx,
            "sev_guest" => TeeKind::SevSnp,
            other => {
                return Err(ProviderError::Unsupported(format!(
                    "configfs-tsm provider `{other}` is not TDX or SEV-SNP"
                )));
            }
        };
        Ok(ConfigfsTsm { reports, kind })
    }
}

/// A report entry, removed when dropped.
struct Entry {
    path: PathBuf,
}

impl Entry {
    fn create(reports: &Path) -> Result<Entry, ProviderError> {
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| ProviderError::Unsupported(format!("no randomness: {e}")))?;
        let path = reports.join(format!(
            "wetee-{}-{}",
            std::process::id(),
            hex::encode(nonce)
        ));
        fs::create_dir(&path).map_err(|e| io(&path, e))?;
        Ok(Entry { path })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// Reads one report from an existing entry: the generation must advance by exactly one across
/// our write, or someone else wrote the entry in between and the blob may not be ours.
pub(crate) fn read_entry(
    entry: &Path,
    kind: TeeKind,
    report_data: &[u8; 64],
) -> Result<Option<Produced>, ProviderError> {
    let generation = |path: &Path| -> Result<u64, ProviderError> {
        let text = read_text(&path.join("generation"))?;
        text.parse().map_err(|_| ProviderError::Io {
            path: path.join("generation"),
            reason: format!("not a number: `{text}`"),
        })
    };
    let before = generation(entry)?;
    write(&entry.join("inblob"), report_data)?;
    let outblob = read(&entry.join("outblob"))?;
    let auxblob = match fs::metadata(entry.join("auxblob")) {
        Ok(_) => Some(read(&entry.join("auxblob"))?).filter(|b| !b.is_empty()),
        Err(_) => None,
    };
    if generation(entry)? != before.wrapping_add(1) {
        return Ok(None);
    }
    Ok(Some(Produced {
        kind,
        evidence: outblob,
        auxiliary: auxblob,
    }))
}

impl Provider for ConfigfsTsm {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn produce(&self, report_data: &[u8; 64]) -> Result<Produced, ProviderError> {
        for _ in 0..Self::ATTEMPTS {
            let entry = Entry::create(&self.reports)?;
            if let Some(produced) = read_entry(&entry.path, self.kind, report_data)? {
                return Ok(produced);
            }
        }
        Err(ProviderError::Raced {
            attempts: Self::ATTEMPTS,
        })
    }
}

/// The development PKI's simulated TDX quotes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulated;

impl Provider for Simulated {
    fn kind(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn produce(&self, report_data: &[u8; 64]) -> Result<Produced, ProviderError> {
        Ok(Produced {
            kind: TeeKind::Simulated,
            evidence: simulated::quote(report_data)?,
            auxiliary: None,
        })
    }
}

/// The hardware TEE this process runs in, if any: Gramine SGX, then configfs-tsm.
pub fn detect() -> Option<Box<dyn Provider>> {
    if let Ok(gramine) = Gramine::open(Gramine::ROOT) {
        return Some(Box::new(gramine));
    }
    if Path::new(ConfigfsTsm::REPORTS).is_dir()
        && let Ok(tsm) = ConfigfsTsm::open(ConfigfsTsm::REPORTS)
    {
        return Some(Box::new(tsm));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snp_evidence_for_the_chain_carries_the_vcek_from_the_certificate_table() {
        let vcek = b"vcek certificate".to_vec();
        let mut table = Vec::new();
        let other_guid = [0x11; 16];
        for (guid, offset) in [(other_guid, 72u32), (VCEK_GUID, 80u32)] {
            table.extend_from_slice(&guid);
            table.extend_from_slice(&offset.to_le_bytes());
            table.extend_from_slice(&(8u32).to_le_bytes());
        }
        table.extend_from_slice(&[0; 24]);
        table.extend_from_slice(b"ark+ask.");
        table.truncate(80);
        table.extend_from_slice(&vcek[..8]);
        assert_eq!(vcek_from_cert_table(&table), Some(&vcek[..8]));
        let produced = Produced {
            kind: TeeKind::SevSnp,
            evidence: vec![7; 4],
            auxiliary: Some(table),
        };
        assert_eq!(
            produced.for_chain().unwrap(),
            [&[7u8; 4][..], &vcek[..8]].concat()
        );
        let bare = Produced {
            auxiliary: None,
            ..produced
        };
        assert!(bare.for_chain().is_err());
        assert_eq!(vcek_from_cert_table(&[0xff; 23]), None);
    }

    #[test]
    fn gramine_writes_the_report_data_then_reads_the_quote() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("attestation_type"), "dcap\n").unwrap();
        fs::write(dir.path().join("user_report_data"), []).unwrap();
        fs::write(dir.path().join("quote"), b"quote bytes").unwrap();
        let gramine = Gramine::open(dir.path()).unwrap();
        let produced = gramine.produce(&[5; 64]).unwrap();
        assert_eq!(produced.evidence, b"quote bytes");
        assert_eq!(
            fs::read(dir.path().join("user_report_data")).unwrap(),
            [5; 64]
        );

        fs::write(dir.path().join("attestation_type"), "none").unwrap();
        let refused = Gramine::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("remote_attestation"), "{refused}");
        assert!(Gramine::open(dir.path().join("absent")).is_err());
    }

    #[test]
    fn a_configfs_report_whose_generation_did_not_advance_once_is_not_ours() {
        // A plain directory stands in for a configfs entry: the kernel would bump the generation
        // on our write; here nothing does, exactly what a concurrent writer looks like.
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("generation", "4"),
            ("inblob", ""),
            ("outblob", "report"),
            ("provider", "tdx_guest"),
        ] {
            fs::write(dir.path().join(name), content).unwrap();
        }
        assert!(
            read_entry(dir.path(), TeeKind::Tdx, &[1; 64])
                .unwrap()
                .is_none()
        );
        assert_eq!(fs::read(dir.path().join("inblob")).unwrap(), [1; 64]);
        fs::write(dir.path().join("generation"), "x").unwrap();
        assert!(read_entry(dir.path(), TeeKind::Tdx, &[1; 64]).is_err());
    }

    #[test]
    fn the_simulated_provider_binds_the_report_data() {
        let produced = Simulated.produce(&[3; 64]).unwrap();
        assert_eq!(produced.kind, TeeKind::Simulated);
        let verdict = crate::verify(
            &produced.evidence,
            Some(TeeKind::Simulated),
            &crate::Collateral::Vcek(Vec::new()),
            1_800_000_000,
            &crate::Policy {
                allow_simulated: true,
                report_data: Some([3; 64]),
                ..crate::Policy::default()
            },
        );
        assert!(verdict.valid, "{verdict:?}");
    }
}
