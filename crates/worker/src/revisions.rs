//! The highest secrets revision this worker has given each app's containers, kept across
//! restarts: an older secrets record (a rotated-out credential), however it is offered, is
//! refused.
//!
//! The file holds revision numbers only, never a secret. On the operator's disk it protects
//! against a node serving an old state, not against an operator who rewrites the file; sealing
//! it to the TEE comes with the TEE key stores.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wetee_types::AppId;

/// The marks, and where they are kept.
#[derive(Debug)]
pub struct SecretRevisions {
    path: PathBuf,
    marks: BTreeMap<AppId, u32>,
}

impl SecretRevisions {
    /// Loads the marks from `dir/secret-revisions.json` (none yet: an empty file is made on
    /// the first raise).
    pub fn load(dir: &Path) -> std::io::Result<SecretRevisions> {
        let path = dir.join("secret-revisions.json");
        let marks = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(SecretRevisions { path, marks })
    }

    /// Whether `revision` of `app`'s secrets may be given to its containers: not older than
    /// any this worker gave before.
    pub fn allows(&self, app: AppId, revision: u32) -> bool {
        self.marks.get(&app).is_none_or(|mark| revision >= *mark)
    }

    /// Records that these revisions were given, durably (written to a temporary file, synced,
    /// then renamed over the old one).
    pub fn raise(&mut self, given: &BTreeMap<AppId, u32>) -> std::io::Result<()> {
        let mut changed = false;
        for (app, revision) in given {
            let mark = self.marks.entry(*app).or_insert(0);
            if *revision > *mark {
                *mark = *revision;
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.marks).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = self.path.with_extension("json.new");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_revision_is_refused_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut marks = SecretRevisions::load(dir.path()).unwrap();
        assert!(marks.allows(AppId(1), 1));
        marks
            .raise(&BTreeMap::from([(AppId(1), 3), (AppId(2), 1)]))
            .unwrap();
        let marks = SecretRevisions::load(dir.path()).unwrap();
        assert!(!marks.allows(AppId(1), 2));
        assert!(marks.allows(AppId(1), 3) && marks.allows(AppId(1), 4));
        assert!(marks.allows(AppId(3), 1));
        // Raising never lowers.
        let mut marks = marks;
        marks.raise(&BTreeMap::from([(AppId(1), 2)])).unwrap();
        assert!(
            !SecretRevisions::load(dir.path())
                .unwrap()
                .allows(AppId(1), 2)
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret-revisions.json"), b"{not json").unwrap();
        assert!(SecretRevisions::load(dir.path()).is_err());
    }
}
