//! Captured logs: every line an instance writes is appended, once, to its workload's file for
//! the epoch it was collected in (`<dir>/<workload>/epoch-<n>.log`), where the owner API reads
//! it and from which the work report's log root is computed: the BLAKE3 Merkle root of the
//! file's 64 KiB chunks.
//!
//! Collection polls the engine with `since` and skips what it already holds, remembering per
//! container the last second seen and how many lines of that second it took (engines such as
//! Podman stamp lines to the second). The cursors are saved, so a restarted worker neither
//! loses nor repeats lines.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wetee_types::{Hash, Workload};

use crate::backend::{Backend, BackendError, Instance, LogStream};

/// Bytes per hashed chunk of a log file.
pub const CHUNK_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    second: i64,
    taken: usize,
}

/// The worker's captured logs.
#[derive(Debug)]
pub struct LogBook {
    dir: PathBuf,
    cursors: BTreeMap<String, Cursor>,
}

/// Seconds since the Unix epoch of an RFC 3339 UTC timestamp (`2026-11-21T09:46:40Z`, with or
/// without fractions); `None` if it is not one.
pub fn unix_seconds(timestamp: &str) -> Option<i64> {
    let bytes = timestamp.as_bytes();
    if bytes.len() < 20 || bytes.get(4) != Some(&b'-') || bytes.get(10) != Some(&b'T') {
        return None;
    }
    let field = |range: std::ops::Range<usize>| timestamp.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// The directory name of a workload's logs.
pub fn workload_key(workload: &Workload) -> String {
    match workload {
        Workload::App { app } => format!("app-{app}"),
        Workload::TaskRun { task, run } => format!("task-{task}-run-{run}"),
    }
}

impl LogBook {
    /// Opens (or starts) the log book in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<LogBook> {
        private_dir(dir)?;
        let cursors = std::fs::read(dir.join("cursors.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(LogBook {
            dir: dir.to_path_buf(),
            cursors,
        })
    }

    /// The file of `workload`'s lines collected during `epoch`.
    pub fn file(&self, workload: &Workload, epoch: u64) -> PathBuf {
        self.dir
            .join(workload_key(workload))
            .join(format!("epoch-{epoch}.log"))
    }

    /// Takes the lines `instance` wrote since the last collection into `epoch`'s file.
    /// Returns how many lines were new.
    pub async fn collect<B: Backend>(
        &mut self,
        backend: &B,
        instance: &Instance,
        epoch: u64,
    ) -> Result<usize, BackendError> {
        let mut cursor = self.cursors.get(&instance.id).copied().unwrap_or_default();
        let lines = backend.logs_since(&instance.id, cursor.second).await?;
        let mut skipped = 0usize;
        let mut fresh = Vec::new();
        for (timestamp, line) in lines {
            let second = unix_seconds(&timestamp).unwrap_or(cursor.second);
            if second < cursor.second {
                continue;
            }
            if second == cursor.second && skipped < cursor.taken {
                skipped += 1;
                continue;
            }
            if second == cursor.second {
                cursor.taken += 1;
                skipped += 1;
            } else {
                cursor = Cursor { second, taken: 1 };
                skipped = 1;
            }
            let stream = match line.stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
            };
            fresh.push(format!("{timestamp} {stream} {}\n", line.text));
        }
        if !fresh.is_empty() {
            let path = self.file(&instance.identity.workload, epoch);
            if let Some(parent) = path.parent() {
                private_dir(parent).map_err(|e| io(&path, e))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(|e| io(&path, e))?;
            file.write_all(fresh.concat().as_bytes())
                .map_err(|e| io(&path, e))?;
            self.cursors.insert(instance.id.clone(), cursor);
            self.save_cursors()?;
        }
        Ok(fresh.len())
    }

    /// Forgets the cursors of containers other than `containers`.
    pub fn retain(&mut self, containers: &[String]) {
        let before = self.cursors.len();
        self.cursors.retain(|id, _| containers.contains(id));
        if self.cursors.len() != before {
            let _ = self.save_cursors();
        }
    }

    fn save_cursors(&self) -> Result<(), BackendError> {
        let path = self.dir.join("cursors.json");
        let bytes = serde_json::to_vec(&self.cursors).unwrap_or_default();
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, bytes).map_err(|e| io(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io(&path, e))
    }

    /// `workload`'s log lines of `epoch`, as collected.
    pub fn read(&self, workload: &Workload, epoch: u64) -> Vec<u8> {
        std::fs::read(self.file(workload, epoch)).unwrap_or_default()
    }

    /// The epochs for which `workload` has logs, oldest first.
    pub fn epochs(&self, workload: &Workload) -> Vec<u64> {
        let mut epochs: Vec<u64> = std::fs::read_dir(self.dir.join(workload_key(workload)))
            .map(|entries| {
                entries
                    .filter_map(|entry| {
                        let name = entry.ok()?.file_name().into_string().ok()?;
                        name.strip_prefix("epoch-")?
                            .strip_suffix(".log")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        epochs.sort_unstable();
        epochs
    }

    /// The Merkle root of `workload`'s logs of `epoch` (zero when there are none).
    pub fn root(&self, workload: &Workload, epoch: u64) -> Hash {
        log_root(&self.read(workload, epoch))
    }
}

/// The BLAKE3 Merkle root of `bytes` cut into [`CHUNK_BYTES`] chunks.
pub fn log_root(bytes: &[u8]) -> Hash {
    let leaves: Vec<Hash> = bytes.chunks(CHUNK_BYTES).map(Hash::of).collect();
    wetee_types::block::merkle_root(&leaves)
}

/// Creates `dir` (and its parents) readable by the worker's user only: logs are the owner's.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn io(path: &Path, error: std::io::Error) -> BackendError {
    BackendError::Engine {
        operation: format!("writing {}", path.display()),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-11-21T09:46:40Z"), Some(1_795_254_400));
        assert_eq!(
            unix_seconds("2026-11-21T09:46:40.601996866Z"),
            Some(1_795_254_400)
        );
        assert_eq!(unix_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn log_roots_commit_to_every_byte() {
        let text = vec![b'x'; CHUNK_BYTES * 2 + 10];
        let mut changed = text.clone();
        changed[CHUNK_BYTES + 5] = b'y';
        assert_ne!(log_root(&text), log_root(&changed));
        assert_eq!(log_root(&[]), Hash::default());
    }
}
