//! Where the worker keeps its identity and sealing keys between restarts, and what protects
//! them from the operator whose machine it runs on.
//!
//! | store | TEE | what protects the keys |
//! |---|---|---|
//! | [`file`] | simulated | nothing: a plain file, for development only |
//! | [`snp`] | SEV-SNP | encrypted with a key the AMD secure processor derives from the launch measurement |
//! | [`gramine`] | SGX | Gramine's encrypted mount, keyed to MRENCLAVE |
//! | [`disk`] | TDX | the confidential VM's dm-crypt data disk (see `docs/key-storage.md` for the trade-off) |
//! | [`memory`] | any | never written: new keys at each start, rotated on chain |
//!
//! A store never logs, prints or returns key material in an error; what it holds in memory is
//! zeroized when dropped.

pub mod disk;
pub mod file;
pub mod gramine;
pub mod memory;
pub mod snp;

use std::path::Path;

use serde::Deserialize;
use wetee_types::TeeKind;
use zeroize::Zeroizing;

/// The two secret keys: the Ed25519 identity seed and the X25519 sealing secret.
pub struct KeyMaterial {
    /// Seeds the Ed25519 identity key that signs reports.
    pub identity_seed: Zeroizing<[u8; 32]>,
    /// The X25519 secret owners seal secrets to.
    pub sealing_secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

impl KeyMaterial {
    /// Fresh keys from the operating system's randomness.
    pub fn generate() -> Result<KeyMaterial, KeyStoreError> {
        let random = || {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(bytes.as_mut())
                .map_err(|e| KeyStoreError::Randomness(e.to_string()))?;
            Ok::<_, KeyStoreError>(bytes)
        };
        Ok(KeyMaterial {
            identity_seed: random()?,
            sealing_secret: random()?,
        })
    }

    /// Both keys, one after the other.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut bytes = Zeroizing::new([0u8; 64]);
        bytes[..32].copy_from_slice(self.identity_seed.as_ref());
        bytes[32..].copy_from_slice(self.sealing_secret.as_ref());
        bytes
    }

    /// The keys from [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<KeyMaterial> {
        if bytes.len() != 64 {
            return None;
        }
        let mut identity_seed = Zeroizing::new([0u8; 32]);
        let mut sealing_secret = Zeroizing::new([0u8; 32]);
        identity_seed.copy_from_slice(&bytes[..32]);
        sealing_secret.copy_from_slice(&bytes[32..]);
        Some(KeyMaterial {
            identity_seed,
            sealing_secret,
        })
    }
}

/// What keeps the keys from the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Nothing: the simulated TEE's plain file.
    Unprotected,
    /// Encrypted with a key only this launch measurement on this chip can derive.
    SealedToLaunch,
    /// An enclave's encrypted file.
    EnclaveFile,
    /// The confidential VM's encrypted disk.
    EncryptedDisk,
    /// Never written anywhere: gone when the worker stops.
    MemoryOnly,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protection::Unprotected => {
                "UNPROTECTED: a plain file the operator can read (simulated TEE, development only)"
            }
            Protection::SealedToLaunch => "sealed to the SEV-SNP launch measurement",
            Protection::EnclaveFile => "on Gramine's encrypted mount, keyed to the enclave",
            Protection::EncryptedDisk => "on the confidential VM's encrypted disk",
            Protection::MemoryOnly => "in memory only: new keys at every start",
        })
    }
}

/// Why the keys could not be kept or found.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The store's file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// What the store needs from the TEE or the machine is missing: it refuses rather than keep
    /// the keys unprotected.
    #[error("{0}")]
    Unavailable(String),
    /// The stored keys do not open with this TEE's key: another launch measurement, another
    /// chip, or an altered file.
    #[error("{0}")]
    Sealed(String),
    /// No randomness.
    #[error("no randomness from the operating system: {0}")]
    Randomness(String),
}

/// Where the keys live between restarts.
pub trait KeyStore: Send + Sync {
    /// What protects them.
    fn protection(&self) -> Protection;
    /// The keys kept before, if any.
    fn load(&self) -> Result<Option<KeyMaterial>, KeyStoreError>;
    /// Keeps `keys` for the next start.
    fn save(&self, keys: &KeyMaterial) -> Result<(), KeyStoreError>;
}

/// Which store `worker.toml` chooses (`[keys] store = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// [`file::KeyFile::unprotected`]: simulated TEE only.
    File,
    /// [`snp::SnpSealedFile`].
    SnpSealed,
    /// [`gramine::protected_file`].
    GramineProtected,
    /// [`disk::encrypted_disk_file`].
    EncryptedDisk,
    /// [`memory::MemoryOnly`].
    Memory,
}

impl StoreKind {
    /// The store for a worker offering `kinds`, when `worker.toml` names none: the plain file
    /// for a simulated TEE, otherwise what the hardware offers.
    pub fn default_for(kinds: wetee_types::TeeKinds) -> StoreKind {
        if kinds.contains(TeeKind::Simulated) {
            StoreKind::File
        } else if kinds.contains(TeeKind::SevSnp) {
            StoreKind::SnpSealed
        } else if kinds.contains(TeeKind::Sgx) {
            StoreKind::GramineProtected
        } else if kinds.contains(TeeKind::Tdx) {
            StoreKind::EncryptedDisk
        } else {
            StoreKind::Memory
        }
    }
}

/// Opens the store `kind` for a worker offering `kinds` with its data in `data_dir`. The plain
/// file is refused unless the worker offers the simulated TEE, whose keys protect nothing.
pub fn open(
    kind: StoreKind,
    kinds: wetee_types::TeeKinds,
    data_dir: &Path,
) -> Result<Box<dyn KeyStore>, KeyStoreError> {
    Ok(match kind {
        StoreKind::File => {
            if !kinds.contains(TeeKind::Simulated) {
                return Err(KeyStoreError::Unavailable(
                    "keys.store = \"file\" leaves the keys readable by the operator: it is only \
                     for a worker offering the simulated TEE; choose snp-sealed, \
                     gramine-protected, encrypted-disk or memory"
                        .into(),
                ));
            }
            Box::new(file::KeyFile::unprotected(data_dir))
        }
        StoreKind::SnpSealed => Box::new(snp::SnpSealedFile::new(
            data_dir,
            Box::new(snp::SevGuest::open()?),
        )),
        StoreKind::GramineProtected => Box::new(gramine::protected_file(
            data_dir,
            &gramine::Enclave::of_this_process(),
        )?),
        StoreKind::EncryptedDisk => Box::new(disk::encrypted_disk_file(
            data_dir,
            Path::new(disk::SYS_DEV_BLOCK),
        )?),
        StoreKind::Memory => Box::new(memory::MemoryOnly),
    })
}
