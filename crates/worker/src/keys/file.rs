//! The keys in a file whose protection, if any, is where it lives: the simulated TEE's plain
//! file, or a file on an enclave's encrypted mount or a confidential VM's encrypted disk (the
//! stores in [`super::gramine`] and [`super::disk`] check the place before using it).
//!
//! Every write is atomic (a fresh owner-only file, synced, renamed over the old one, the
//! directory synced), so a crash leaves the old keys or the new ones, never half of either.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize as _, Zeroizing};

use super::{KeyMaterial, KeyStore, KeyStoreError, Protection};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "worker-keys.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKeys {
    /// Says what protects the file, for whoever opens it.
    #[serde(default)]
    protection: String,
    identity_seed: String,
    sealing_secret: String,
}

/// The keys as hex in a JSON file.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
    protection: Protection,
}

impl KeyFile {
    /// The simulated TEE's file in `data_dir`, which protects nothing.
    pub fn unprotected(data_dir: &Path) -> KeyFile {
        KeyFile::protected_by(data_dir, Protection::Unprotected)
    }

    /// A file in `data_dir` that `protection` (checked by the caller) keeps from the operator.
    pub(super) fn protected_by(data_dir: &Path, protection: Protection) -> KeyFile {
        KeyFile {
            path: data_dir.join(FILE_NAME),
            protection,
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> KeyStoreError {
        KeyStoreError::File {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

fn decode32(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(hex::decode(text).ok()?);
    let mut array = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return None;
    }
    array.copy_from_slice(&bytes);
    Some(array)
}

impl KeyStore for KeyFile {
    fn protection(&self) -> Protection {
        self.protection
    }

    fn load(&self) -> Result<Option<KeyMaterial>, KeyStoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        // serde's message could quote the file: say only where it is malformed.
        let mut stored: StoredKeys = serde_json::from_str(&text)
            .map_err(|e| self.error(format_args!("not a key file (line {})", e.line())))?;
        let identity_seed = decode32(&stored.identity_seed);
        let sealing_secret = decode32(&stored.sealing_secret);
        stored.identity_seed.zeroize();
        stored.sealing_secret.zeroize();
        Ok(Some(KeyMaterial {
            identity_seed: identity_seed
                .ok_or_else(|| self.error("identity_seed is not 32 bytes of hex"))?,
            sealing_secret: sealing_secret
                .ok_or_else(|| self.error("sealing_secret is not 32 bytes of hex"))?,
        }))
    }

    fn save(&self, keys: &KeyMaterial) -> Result<(), KeyStoreError> {
        let mut stored = StoredKeys {
            protection: self.protection.to_string(),
            identity_seed: hex::encode(keys.identity_seed.as_ref()),
            sealing_secret: hex::encode(keys.sealing_secret.as_ref()),
        };
        let text = serde_json::to_vec_pretty(&stored).map(Zeroizing::new);
        stored.identity_seed.zeroize();
        stored.sealing_secret.zeroize();
        let text = text.map_err(|e| self.error(e))?;
        write_private(&self.path, &text).map_err(|e| self.error(e))
    }
}

/// Writes `bytes` to `path` atomically, readable by the worker's user only, creating its
/// directory (0700) if missing.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let temporary = path.with_extension("new");
    // A leftover from a crash is ours and incomplete.
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_keys_survive_a_restart_in_an_owner_only_file_that_says_it_is_unprotected() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = KeyFile::unprotected(&data);
        assert!(store.load().unwrap().is_none());
        let keys = KeyMaterial::generate().unwrap();
        store.save(&keys).unwrap();
        let again = store.load().unwrap().unwrap();
        assert_eq!(again.to_bytes().as_ref(), keys.to_bytes().as_ref());
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&data), 0o700);
        let text = std::fs::read_to_string(data.join(FILE_NAME)).unwrap();
        assert!(text.contains("UNPROTECTED"), "{text}");
        assert!(!data.join("worker-keys.new").exists());
    }

    #[test]
    fn a_key_file_of_an_earlier_release_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let seed = "11".repeat(32);
        let sealing = "22".repeat(32);
        std::fs::write(
            dir.path().join(FILE_NAME),
            format!(r#"{{"identity_seed":"{seed}","sealing_secret":"{sealing}"}}"#),
        )
        .unwrap();
        let keys = KeyFile::unprotected(dir.path()).load().unwrap().unwrap();
        assert_eq!(*keys.identity_seed, [0x11; 32]);
        assert_eq!(*keys.sealing_secret, [0x22; 32]);
    }

    #[test]
    fn a_damaged_file_is_an_error_that_quotes_nothing_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let secret_looking = "ab".repeat(31);
        std::fs::write(
            dir.path().join(FILE_NAME),
            format!(r#"{{"identity_seed":"{secret_looking}","sealing_secret":"zz"}}"#),
        )
        .unwrap();
        let error = KeyFile::unprotected(dir.path())
            .load()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("identity_seed is not 32 bytes"), "{error}");
        assert!(!error.contains(&secret_looking));
        std::fs::write(dir.path().join(FILE_NAME), format!("{{{secret_looking}")).unwrap();
        let error = KeyFile::unprotected(dir.path())
            .load()
            .err()
            .unwrap()
            .to_string();
        assert!(!error.contains(&secret_looking), "{error}");
    }
}
