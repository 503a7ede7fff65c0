//! One worker per data directory: its registration, keys, revisions and logs are the worker's
//! own, and two workers sharing them would undo each other (a revision given twice, a report
//! for work the other did). Held with `flock` on `worker.lock` for as long as the worker runs;
//! the kernel releases it when the process ends, however it ends.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "worker.lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another worker holds it.
    #[error(
        "another worker uses the data directory {0} (it holds {LOCK_FILE}): give each worker its own"
    )]
    Held(PathBuf),
    /// The lock file cannot be opened.
    #[error("cannot lock the data directory {path}: {error}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes `data_dir` for this process (creating it if missing), or says who has it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, DataDirLockError> {
        let io = |error| DataDirLockError::Io {
            path: data_dir.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DataDirLock { _file: file, path }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                Err(DataDirLockError::Held(data_dir.to_path_buf()))
            }
            Err(error) => Err(io(error.into())),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_worker_on_the_same_data_directory_is_refused_until_the_first_stops() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DataDirLock::acquire(dir.path()),
            Err(DataDirLockError::Held(_))
        ));
        let other = tempfile::tempdir().unwrap();
        assert!(DataDirLock::acquire(other.path()).is_ok());
        drop(first);
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }
}
