//! What the worker remembers of its registration, none of it secret: the chain and worker id it
//! registered as, and the label scope of its containers. A worker whose keys are new (the
//! `memory` key store at every start, or a lost key file) finds its record here, rotates its
//! keys on chain in place of registering again, and keeps managing the containers it started.

use std::path::{Path, PathBuf};

use wetee_types::{Hash, WorkerId};

use crate::keys::file::write_private;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "worker.json";

/// The registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// The chain.
    pub genesis_hash: Hash,
    /// The worker's id on it.
    pub worker: WorkerId,
    /// The label scope of its containers: the identity key it first registered with, in hex.
    pub scope: String,
}

impl Registration {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// The registration kept in `data_dir`, if any and readable.
    pub fn load(data_dir: &Path) -> Option<Registration> {
        let bytes = std::fs::read(Registration::path(data_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps it in `data_dir`.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_private(&Registration::path(data_dir), &bytes)
    }

    /// The label scope of the containers of the worker in `data_dir` whose identity key is
    /// `identity`: the registration's, else the key's own.
    pub fn scope(data_dir: &Path, identity: &[u8; 32]) -> String {
        Registration::load(data_dir).map_or_else(|| hex::encode(identity), |r| r.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_outlives_the_keys_it_was_made_of() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Registration::scope(dir.path(), &[1; 32]),
            hex::encode([1; 32])
        );
        let registration = Registration {
            genesis_hash: Hash([9; 32]),
            worker: WorkerId(3),
            scope: hex::encode([1; 32]),
        };
        registration.save(dir.path()).unwrap();
        assert_eq!(Registration::load(dir.path()), Some(registration));
        assert_eq!(
            Registration::scope(dir.path(), &[2; 32]),
            hex::encode([1; 32])
        );
    }
}
