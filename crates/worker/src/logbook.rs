//! Captured logs, kept only sealed to their owner: every line an instance writes is taken from
//! the backend (which holds it in memory, never on disk) and appended, in sealed batches, to
//! its workload's file for the epoch it was collected in
//! (`<dir>/<workload>/epoch-<n>.sealed`, see [`wetee_sealing::log_batch`]). The owner API
//! serves the sealed records; only the owner's account key opens them.
//!
//! The work report's log root is the Merkle root of the epoch's batch leaves, which the owner
//! can check after opening. The worker counts only its own records: the leaves it wrote, kept
//! in memory, and after a restart those on disk that carry its tag at their place (a planted or
//! altered record, and all after it, are cut off); so a record the operator plants is never
//! signed for, and one the operator deletes while the worker runs is missed by the owner. A task run's output hash (BLAKE3 of what it wrote to standard
//! output) is computed in memory as the lines pass.
//!
//! Limits (`[logs]` in `worker.toml`): each workload's file for an epoch stops growing at
//! `max_bytes_per_epoch` (further lines are dropped and counted), and files older than
//! `retention_epochs` are deleted.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wetee_sealing::log_batch;
use wetee_types::{AccountId, Hash, WorkerId, Workload};

use crate::backend::{Backend, BackendError, Instance, InstanceState, LogStream};

/// How long and how much output is kept (`[logs]` in `worker.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLimits {
    /// Epochs a workload's sealed output is kept for (the current one included).
    #[serde(default = "default_retention")]
    pub retention_epochs: u64,
    /// The most sealed bytes kept per workload and epoch.
    #[serde(default = "default_max_bytes")]
    pub max_bytes_per_epoch: u64,
}

fn default_retention() -> u64 {
    24
}

fn default_max_bytes() -> u64 {
    64 << 20
}

impl Default for LogLimits {
    fn default() -> LogLimits {
        LogLimits {
            retention_epochs: default_retention(),
            max_bytes_per_epoch: default_max_bytes(),
        }
    }
}

/// To whom a workload's output is sealed, and by whom.
#[derive(Clone)]
pub struct Sealing {
    /// The chain.
    pub genesis_hash: Hash,
    /// This worker.
    pub worker: WorkerId,
    /// The workload's owner.
    pub owner: AccountId,
    /// The owner's X25519 sealing key, as published on chain.
    pub owner_key: [u8; 32],
    /// This worker's X25519 sealing secret (attested): records sealed with it are the TEE's.
    pub worker_secret: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealing(to {} from worker {})", self.owner, self.worker)
    }
}

/// What is known of one epoch file: its records' leaves and their bytes.
#[derive(Debug, Clone, Default)]
struct FileState {
    leaves: Vec<Hash>,
    /// The bytes of those records, counted against the epoch's cap.
    bytes: u64,
    /// Where the file should end: `bytes`, unless records were removed behind the worker's
    /// back.
    end: u64,
}

impl FileState {
    fn records(&self) -> u32 {
        u32::try_from(self.leaves.len()).unwrap_or(u32::MAX)
    }
}

/// The worker's captured logs.
#[derive(Debug)]
pub struct LogBook {
    dir: PathBuf,
    limits: LogLimits,
    /// Tells this worker's records from others' ([`log_batch::tag_key`]).
    tag_key: zeroize::Zeroizing<[u8; 32]>,
    files: BTreeMap<(Workload, u64), FileState>,
    /// Task runs' standard output, hashed as it passes.
    outputs: BTreeMap<Workload, blake3::Hasher>,
    /// Lines lost per workload since the last warning.
    lost: BTreeMap<Workload, u64>,
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
    /// Opens (or starts) the log book in `dir` for the worker whose sealing secret is
    /// `worker_secret`. Plaintext files of earlier versions of the worker are deleted: output
    /// is only kept sealed.
    pub fn open(
        dir: &Path,
        limits: LogLimits,
        worker_secret: &[u8; 32],
    ) -> std::io::Result<LogBook> {
        private_dir(dir)?;
        remove_plaintext(dir);
        Ok(LogBook {
            dir: dir.to_path_buf(),
            limits,
            tag_key: log_batch::tag_key(worker_secret),
            files: BTreeMap::new(),
            outputs: BTreeMap::new(),
            lost: BTreeMap::new(),
        })
    }

    /// The file of `workload`'s records collected during `epoch`.
    pub fn file(&self, workload: &Workload, epoch: u64) -> PathBuf {
        file_of(&self.dir, workload, epoch)
    }

    /// Takes what `instance` wrote since the last collection and appends it to `epoch`'s file,
    /// sealed to the owner (`None`: the owner has published no sealing key, and the lines are
    /// lost rather than kept readable). Returns how many lines were taken.
    pub async fn collect<B: Backend>(
        &mut self,
        backend: &B,
        instance: &Instance,
        epoch: u64,
        sealing: Option<&Sealing>,
    ) -> Result<usize, BackendError> {
        let finished = !matches!(
            instance.state,
            InstanceState::Running | InstanceState::Created
        );
        let (lines, dropped) = backend.take_output(&instance.id, finished).await?;
        let workload = instance.identity.workload;
        if dropped > 0 {
            *self.lost.entry(workload).or_default() += dropped;
        }
        if lines.is_empty() {
            self.warn_lost(workload);
            return Ok(0);
        }
        let mut text = String::new();
        for (timestamp, line) in &lines {
            let stream = match line.stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
            };
            text.push_str(&format!("{timestamp} {stream} {}\n", line.text));
        }
        if matches!(workload, Workload::TaskRun { .. }) {
            let hasher = self.outputs.entry(workload).or_default();
            for (_, line) in lines.iter().filter(|(_, l)| l.stream == LogStream::Stdout) {
                hasher.update(line.text.as_bytes());
                hasher.update(b"\n");
            }
        }
        let kept = match sealing {
            Some(sealing) => self.append(workload, epoch, sealing, text.as_bytes())?,
            None => false,
        };
        if !kept {
            *self.lost.entry(workload).or_default() += lines.len() as u64;
            if sealing.is_none() {
                tracing::debug!(%workload, "the owner has no sealing key: output not kept");
            }
        }
        self.warn_lost(workload);
        Ok(lines.len())
    }

    fn warn_lost(&mut self, workload: Workload) {
        if let Some(lost) = self.lost.remove(&workload) {
            tracing::warn!(
                %workload,
                lines = lost,
                "output lines not kept (the owner has no sealing key, the epoch's cap was \
                 reached, or the worker fell behind)"
            );
        }
    }

    /// Seals `text` in batches and appends them; `false` if the epoch's cap leaves no room.
    fn append(
        &mut self,
        workload: Workload,
        epoch: u64,
        sealing: &Sealing,
        text: &[u8],
    ) -> Result<bool, BackendError> {
        let path = self.file(&workload, epoch);
        let mut state = match self.files.remove(&(workload, epoch)) {
            Some(state) => state,
            None => recover(&path, &self.tag_key, workload, epoch).map_err(|e| io(&path, e))?,
        };
        // Kept whatever happens: re-read from disk, it would take what the operator did there.
        let appended = self.append_to(&path, &mut state, workload, epoch, sealing, text);
        self.files.insert((workload, epoch), state);
        appended
    }

    /// [`LogBook::append`] to the file at `path`, whose records this worker wrote are `state`;
    /// `state` changes only once the records are written.
    fn append_to(
        &self,
        path: &Path,
        state: &mut FileState,
        workload: Workload,
        epoch: u64,
        sealing: &Sealing,
        text: &[u8],
    ) -> Result<bool, BackendError> {
        if state.bytes.saturating_add(text.len() as u64) > self.limits.max_bytes_per_epoch {
            return Ok(false);
        }
        let binding = log_batch::Binding {
            genesis_hash: &sealing.genesis_hash,
            workload,
            epoch,
            worker: sealing.worker,
            owner: &sealing.owner,
        };
        let mut sealed = Vec::new();
        for batch in batches(text) {
            let index = state.records() + u32::try_from(sealed.len()).unwrap_or(u32::MAX);
            let record = log_batch::seal(
                &binding,
                index,
                &sealing.worker_secret,
                &sealing.owner_key,
                batch,
            )
            .map_err(|e| BackendError::Engine {
                operation: format!("sealing the output of {workload}"),
                reason: e.to_string(),
            })?;
            sealed.push(record);
        }
        if let Some(parent) = path.parent() {
            private_dir(parent).map_err(|e| io(path, e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| io(path, e))?;
        // The file must end where this worker's last record does: anything appended behind its
        // back would shift every later record from the place it is sealed for.
        let mut length = file.metadata().map_err(|e| io(path, e))?.len();
        if length > state.end {
            tracing::warn!(
                file = %path.display(),
                bytes = length - state.end,
                "bytes this worker did not write were appended to the file: cut off"
            );
            file.set_len(state.end).map_err(|e| io(path, e))?;
            length = state.end;
        } else if length < state.end {
            tracing::warn!(
                file = %path.display(),
                "records this worker wrote were removed from the file: its owner finds them \
                 missing from the signed log root"
            );
            state.end = length;
        }
        let bytes = sealed.concat();
        if let Err(e) = file.write_all(&bytes) {
            // A torn record would make every later one unreadable: cut it off.
            let _ = file.set_len(length);
            return Err(io(path, e));
        }
        state.leaves.extend(
            sealed
                .iter()
                .filter_map(|record| log_batch::leaf_of(record)),
        );
        state.bytes += bytes.len() as u64;
        state.end = length + bytes.len() as u64;
        Ok(true)
    }

    /// `workload`'s sealed records of `epoch`, as stored.
    pub fn read(&self, workload: &Workload, epoch: u64) -> Vec<u8> {
        stored(&self.dir, workload, epoch)
    }

    /// The epochs for which `workload` has logs, oldest first.
    pub fn epochs(&self, workload: &Workload) -> Vec<u64> {
        stored_epochs(&self.dir, workload)
    }

    /// The Merkle root of `workload`'s logs of `epoch` (zero when there are none).
    pub fn root(&self, workload: &Workload, epoch: u64) -> Hash {
        wetee_types::block::merkle_root(&self.leaves(workload, epoch))
    }

    /// The Merkle root of all of `workload`'s logs, every epoch in order (a task run's).
    pub fn root_of_all(&self, workload: &Workload) -> Hash {
        // Epochs whose files are gone count too: their leaves are in memory.
        let mut epochs: std::collections::BTreeSet<u64> =
            self.epochs(workload).into_iter().collect();
        epochs.extend(
            self.files
                .keys()
                .filter(|(of, _)| of == workload)
                .map(|(_, epoch)| *epoch),
        );
        let all: Vec<Hash> = epochs
            .into_iter()
            .flat_map(|epoch| self.leaves(workload, epoch))
            .collect();
        wetee_types::block::merkle_root(&all)
    }

    /// The leaves of this worker's records of `workload`'s `epoch`: those it wrote, or, for a
    /// file it has not written since it started, those on disk carrying its tag in order.
    fn leaves(&self, workload: &Workload, epoch: u64) -> Vec<Hash> {
        match self.files.get(&(*workload, epoch)) {
            Some(state) => state.leaves.clone(),
            None => {
                let bytes = self.read(workload, epoch);
                own_records(&self.tag_key, *workload, epoch, &bytes)
                    .into_iter()
                    .filter_map(log_batch::leaf_of)
                    .collect()
            }
        }
    }

    /// BLAKE3 of what a task run wrote to standard output, as collected.
    pub fn output_hash(&self, workload: &Workload) -> Hash {
        let hasher = self.outputs.get(workload).cloned().unwrap_or_default();
        Hash(*hasher.finalize().as_bytes())
    }

    /// Deletes files of epochs before the retention window that ends at `epoch`, and forgets
    /// the state of apps' files it no longer appends to.
    pub fn prune(&mut self, epoch: u64) {
        let oldest = epoch.saturating_sub(self.limits.retention_epochs.saturating_sub(1));
        // A task run's root covers all its epochs: what it wrote is remembered while its files
        // are kept, so that a file deleted behind the worker's back is missed, not forgotten.
        self.files.retain(|(workload, file_epoch), _| {
            *file_epoch + 1 >= epoch
                || (matches!(workload, Workload::TaskRun { .. }) && *file_epoch >= oldest)
        });
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            for old in epochs_in(&dir).into_iter().filter(|e| *e < oldest) {
                let _ = std::fs::remove_file(dir.join(format!("epoch-{old}.sealed")));
            }
            // Empty: the workload's last file went.
            let _ = std::fs::remove_dir(&dir);
        }
        // A task run whose output is gone has been reported long ago.
        let dir = self.dir.clone();
        self.outputs
            .retain(|workload, _| dir.join(workload_key(workload)).exists());
    }
}

/// The sealed records of `workload`'s `epoch` in the log directory `dir`.
pub fn stored(dir: &Path, workload: &Workload, epoch: u64) -> Vec<u8> {
    std::fs::read(file_of(dir, workload, epoch)).unwrap_or_default()
}

/// The file of `workload`'s `epoch` in the log directory `dir`.
pub fn stored_path(dir: &Path, workload: &Workload, epoch: u64) -> PathBuf {
    file_of(dir, workload, epoch)
}

/// The epochs with records of `workload` in the log directory `dir`, oldest first.
pub fn stored_epochs(dir: &Path, workload: &Workload) -> Vec<u64> {
    epochs_in(&dir.join(workload_key(workload)))
}

fn file_of(dir: &Path, workload: &Workload, epoch: u64) -> PathBuf {
    dir.join(workload_key(workload))
        .join(format!("epoch-{epoch}.sealed"))
}

fn epochs_in(dir: &Path) -> Vec<u64> {
    let mut epochs: Vec<u64> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name().into_string().ok()?;
                    name.strip_prefix("epoch-")?
                        .strip_suffix(".sealed")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    epochs.sort_unstable();
    epochs
}

/// The complete records at the start of `bytes` that carry the tag of the worker whose tag key
/// is `tag_key`, each at its place: the first that does not ends them.
fn own_records<'a>(
    tag_key: &[u8; 32],
    workload: Workload,
    epoch: u64,
    bytes: &'a [u8],
) -> Vec<&'a [u8]> {
    log_batch::records(bytes)
        .into_iter()
        .enumerate()
        .take_while(|(index, record)| {
            u32::try_from(*index)
                .is_ok_and(|index| log_batch::is_tagged_by(tag_key, workload, epoch, index, record))
        })
        .map(|(_, record)| record)
        .collect()
}

/// `text` in pieces of at most a batch, cut after a line where one fits.
fn batches(text: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= log_batch::MAX_BATCH_BYTES {
            pieces.push(rest);
            break;
        }
        let window = &rest[..log_batch::MAX_BATCH_BYTES];
        let cut = window
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(log_batch::MAX_BATCH_BYTES, |at| at + 1);
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// The state of an existing file, cut back to its last complete record (a crash mid-append
/// leaves a partial one, which would make every later record unreadable).
fn recover(
    path: &Path,
    tag_key: &[u8; 32],
    workload: Workload,
    epoch: u64,
) -> std::io::Result<FileState> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::default()),
        Err(e) => return Err(e),
    };
    let own = own_records(tag_key, workload, epoch, &bytes);
    let kept: usize = own.iter().map(|r| r.len()).sum();
    if kept != bytes.len() {
        let torn = log_batch::records(&bytes).len() == own.len();
        if !torn {
            tracing::warn!(
                file = %path.display(),
                "records this worker did not write (planted, altered, or sealed by another \
                 worker) are cut off with everything after them"
            );
        }
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(kept as u64)?;
    }
    Ok(FileState {
        leaves: own.into_iter().filter_map(log_batch::leaf_of).collect(),
        bytes: kept as u64,
        end: kept as u64,
    })
}

/// Removes what earlier workers kept in plaintext: `*.log` files and their cursors.
fn remove_plaintext(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("cursors.json"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for file in files.flatten() {
            if file.path().extension().is_some_and(|e| e == "log") {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
}

/// Creates `dir` (and its parents) readable by the worker's user only.
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
    use wetee_types::{AppId, KeyScheme, Keypair};

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

    fn sealing(owner: &Keypair) -> Sealing {
        Sealing {
            genesis_hash: Hash::of(b"chain"),
            worker: WorkerId(1),
            owner: owner.account_id(),
            owner_key: wetee_sealing::public_key(&wetee_sealing::owner_secret(owner)),
            worker_secret: zeroize::Zeroizing::new(WORKER_SECRET),
        }
    }

    const WORKER_SECRET: [u8; 32] = [8; 32];

    #[test]
    fn output_is_kept_sealed_capped_recovered_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [3; 32]);
        let sealing = sealing(&owner);
        let limits = LogLimits {
            retention_epochs: 2,
            max_bytes_per_epoch: 4_000,
        };
        let mut book = LogBook::open(dir.path(), limits, &WORKER_SECRET).unwrap();
        let app = Workload::App { app: AppId(5) };
        assert!(
            book.append(app, 7, &sealing, b"one secret=hunter2\n")
                .unwrap()
        );
        assert!(book.append(app, 7, &sealing, b"two\n").unwrap());
        let stored = book.read(&app, 7);
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(log_batch::records(&stored).len(), 2);
        assert_ne!(book.root(&app, 7), Hash::default());

        // The owner opens each record at its position, sealed by this worker.
        let secret = wetee_sealing::owner_secret(&owner);
        let worker_key = wetee_sealing::public_key(&WORKER_SECRET);
        let binding = log_batch::Binding {
            genesis_hash: &sealing.genesis_hash,
            workload: app,
            epoch: 7,
            worker: sealing.worker,
            owner: &sealing.owner,
        };
        let opened: Vec<u8> = log_batch::records(&stored)
            .into_iter()
            .enumerate()
            .flat_map(|(i, r)| {
                log_batch::open(&secret, &worker_key, &binding, i as u32, r)
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert_eq!(opened, b"one secret=hunter2\ntwo\n");

        // Past the cap, nothing more is kept.
        assert!(!book.append(app, 7, &sealing, &[b'x'; 4_000]).unwrap());

        // A torn append is cut back on the next open, and numbering goes on.
        let path = book.file(&app, 7);
        let mut torn = stored.clone();
        torn.extend_from_slice(&stored[..50]);
        std::fs::write(&path, &torn).unwrap();
        let mut book = LogBook::open(dir.path(), limits, &WORKER_SECRET).unwrap();
        assert!(book.append(app, 7, &sealing, b"three\n").unwrap());
        let records = log_batch::records(&std::fs::read(&path).unwrap())
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        assert_eq!(records.len(), 3);
        assert_eq!(
            &log_batch::open(&secret, &worker_key, &binding, 2, &records[2]).unwrap()[..],
            b"three\n"
        );

        // A record the operator plants (sealed to the owner's public key) is not signed for,
        // and is cut off before the worker's next record, while it runs or after a restart.
        let plant = |index: u32| {
            let planted =
                log_batch::seal(&binding, index, &[6; 32], &sealing.owner_key, b"forged\n")
                    .unwrap();
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(&planted)
                .unwrap();
        };
        let opened_last = |count: usize| {
            let records = log_batch::records(&std::fs::read(&path).unwrap())
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>();
            assert_eq!(records.len(), count);
            log_batch::open(
                &secret,
                &worker_key,
                &binding,
                count as u32 - 1,
                &records[count - 1],
            )
            .unwrap()
            .to_vec()
        };
        let root = book.root(&app, 7);
        plant(3);
        assert_eq!(book.root(&app, 7), root);
        assert!(book.append(app, 7, &sealing, b"four\n").unwrap());
        assert_eq!(opened_last(4), b"four\n");
        let root = book.root(&app, 7);
        plant(4);
        let mut book = LogBook::open(dir.path(), limits, &WORKER_SECRET).unwrap();
        assert_eq!(book.root(&app, 7), root, "read again from disk");
        assert!(book.append(app, 7, &sealing, b"five\n").unwrap());
        assert_eq!(opened_last(5), b"five\n");
        assert_ne!(book.root(&app, 7), root);
        // Another worker's book (another sealing secret) counts none of these records.
        let stranger = LogBook::open(dir.path(), limits, &[1; 32]).unwrap();
        assert_eq!(stranger.root(&app, 7), Hash::default());

        // Two epochs are kept: at epoch 9, epoch 7 goes.
        assert!(book.append(app, 8, &sealing, b"later\n").unwrap());
        book.prune(9);
        assert_eq!(book.epochs(&app), vec![8]);
    }

    #[test]
    fn a_task_runs_root_counts_every_epoch_it_wrote_even_if_a_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [3; 32]);
        let sealing = sealing(&owner);
        let mut book = LogBook::open(dir.path(), LogLimits::default(), &WORKER_SECRET).unwrap();
        let run = Workload::TaskRun {
            task: wetee_types::TaskId(2),
            run: 1,
        };
        for epoch in 1..=4 {
            assert!(book.append(run, epoch, &sealing, b"step\n").unwrap());
            book.prune(epoch + 1);
        }
        let root = book.root_of_all(&run);
        std::fs::remove_file(book.file(&run, 1)).unwrap();
        assert_eq!(
            book.root_of_all(&run),
            root,
            "the deleted epoch is still signed for: its owner finds it missing"
        );
    }

    #[test]
    fn plaintext_from_earlier_workers_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app-1")).unwrap();
        std::fs::write(dir.path().join("app-1/epoch-3.log"), "secret\n").unwrap();
        std::fs::write(dir.path().join("cursors.json"), "{}").unwrap();
        LogBook::open(dir.path(), LogLimits::default(), &WORKER_SECRET).unwrap();
        assert!(!dir.path().join("app-1/epoch-3.log").exists());
        assert!(!dir.path().join("cursors.json").exists());
    }

    #[test]
    fn long_output_is_cut_into_batches_at_line_ends() {
        let line = vec![b'a'; 1000];
        let mut text = Vec::new();
        for _ in 0..2_000 {
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        let pieces = batches(&text);
        assert!(pieces.len() >= 2);
        assert!(pieces.iter().all(|p| p.len() <= log_batch::MAX_BATCH_BYTES));
        assert!(pieces.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(pieces.concat(), text);
    }
}
