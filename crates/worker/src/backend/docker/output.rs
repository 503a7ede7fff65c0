//! Containers' output, read from the engine as it is written and held in the worker's memory
//! until the log book seals it to the owner.
//!
//! Containers are created with the log driver `none`: the engine keeps no copy of their
//! output on the operator's disk. The worker attaches to each container before starting it
//! (and again to the containers it finds at start), so it sees every line from the first.
//! Output written while no worker was attached (between a worker's crash and its restart) is
//! lost, since nothing else keeps it.
//!
//! Each container's unread lines are capped ([`MAX_PENDING_BYTES`]): past it, lines are
//! dropped and counted, so a container printing faster than the worker collects cannot grow
//! the worker's memory. Its last lines ([`RECENT_LINES`]) stay readable until the container
//! is removed, to explain a crash.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use futures::StreamExt as _;
use tokio::sync::watch;

use crate::backend::{LogLine, LogStream};

/// Unread output held per container.
pub const MAX_PENDING_BYTES: usize = 8 << 20;
/// Lines kept per container for [`Outputs::recent`].
pub const RECENT_LINES: usize = 200;
/// The longest line kept whole; longer ones are cut there.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// What a line costs beyond its text (its time label and bookkeeping), counted against
/// [`MAX_PENDING_BYTES`] so that a flood of empty lines is capped too.
const LINE_OVERHEAD: usize = 96;
/// How long [`Outputs::take`] waits for an ended container's last lines.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Lines taken from a container, each with the worker's RFC 3339 time of reading it.
pub type Taken = Vec<(String, LogLine)>;

#[derive(Default)]
struct Output {
    pending: Vec<(String, LogLine)>,
    pending_bytes: usize,
    dropped: u64,
    recent: VecDeque<LogLine>,
    /// Whether an attach stream is open (or being opened).
    attached: bool,
    /// Signals the end of the attach stream.
    ended: Option<watch::Receiver<bool>>,
    /// Whether a take has already waited for the end: a stream the engine keeps open after
    /// the container ended must not delay every later pass.
    waited: bool,
    /// How many listings have missed the container since it was removed: its unread lines
    /// wait one listing for the log book to take them.
    removed: Option<u8>,
}

impl Output {
    fn push(&mut self, stream: LogStream, text: String) {
        let line = LogLine { stream, text };
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.clone());
        let cost = line.text.len() + LINE_OVERHEAD;
        if self.pending_bytes + cost > MAX_PENDING_BYTES {
            self.dropped += 1;
            return;
        }
        self.pending_bytes += cost;
        self.pending.push((now_rfc3339(), line));
    }
}

/// Every attached container's output.
#[derive(Clone, Default)]
pub struct Outputs {
    by_container: Arc<Mutex<BTreeMap<String, Output>>>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outputs({} containers)", self.lock().len())
    }
}

impl Outputs {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Output>> {
        // A panic while holding it cannot leave the map inconsistent: entries are replaced
        // whole.
        self.by_container
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Attaches to container `id`'s output unless already attached. Returns once the stream
    /// is open, so that a container started afterwards loses no line.
    pub async fn attach(&self, docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
        {
            let mut outputs = self.lock();
            let output = outputs.entry(id.to_string()).or_default();
            if output.attached {
                return Ok(());
            }
            output.attached = true;
        }
        let options = AttachContainerOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = match docker.attach_container(id, Some(options)).await {
            Ok(attached) => attached,
            Err(e) => {
                if let Some(output) = self.lock().get_mut(id) {
                    output.attached = false;
                }
                return Err(e);
            }
        };
        let (ended_tx, ended_rx) = watch::channel(false);
        if let Some(output) = self.lock().get_mut(id) {
            output.ended = Some(ended_rx);
        }
        let outputs = self.clone();
        let id = id.to_string();
        let mut stream = attached.output;
        tokio::spawn(async move {
            let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            while let Some(Ok(chunk)) = stream.next().await {
                let (kind, bytes) = match chunk {
                    LogOutput::StdErr { message } => (LogStream::Stderr, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (LogStream::Stdout, message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                let buffer = &mut partial[usize::from(kind == LogStream::Stderr)];
                buffer.extend_from_slice(&bytes);
                // One pass over the buffer, one drain: linear in what arrived.
                let mut lines = Vec::new();
                let mut start = 0;
                while let Some(at) = buffer[start..].iter().position(|b| *b == b'\n') {
                    lines.push(line_text(&buffer[start..start + at]));
                    start += at + 1;
                }
                buffer.drain(..start);
                if buffer.len() > MAX_LINE_BYTES {
                    lines.push(line_text(&std::mem::take(buffer)));
                }
                if lines.is_empty() {
                    continue;
                }
                let mut all = outputs.lock();
                let Some(output) = all.get_mut(&id).filter(|o| o.removed.is_none()) else {
                    // Removed: nobody wants its output any more.
                    return;
                };
                for text in lines {
                    output.push(kind, text);
                }
            }
            let mut all = outputs.lock();
            if let Some(output) = all.get_mut(&id) {
                for (index, rest) in partial.into_iter().enumerate() {
                    if !rest.is_empty() {
                        let kind = [LogStream::Stdout, LogStream::Stderr][index];
                        output.push(kind, line_text(&rest));
                    }
                }
                output.attached = false;
            }
            drop(all);
            let _ = ended_tx.send(true);
        });
        Ok(())
    }

    /// Takes the lines container `id` wrote since the last call, and how many were dropped
    /// meanwhile. For a container that has `finished`, first waits (briefly) for its stream to
    /// deliver its last lines.
    pub async fn take(&self, id: &str, finished: bool) -> (Taken, u64) {
        let ended = match self.lock().get_mut(id) {
            // A removed container's stream ends with it: nothing more to wait for.
            Some(output) if finished && !output.waited && output.removed.is_none() => {
                output.waited = true;
                output.ended.clone()
            }
            _ => None,
        };
        if finished && let Some(mut ended) = ended {
            let _ = tokio::time::timeout(DRAIN_WAIT, ended.wait_for(|done| *done)).await;
        }
        let mut all = self.lock();
        let Some(output) = all.get_mut(id) else {
            return (Vec::new(), 0);
        };
        if output.removed.is_some() {
            let output = all.remove(id).unwrap_or_default();
            return (output.pending, output.dropped);
        }
        output.pending_bytes = 0;
        (
            std::mem::take(&mut output.pending),
            std::mem::take(&mut output.dropped),
        )
    }

    /// The last `tail` lines container `id` wrote.
    pub fn recent(&self, id: &str, tail: usize) -> Vec<LogLine> {
        let all = self.lock();
        let Some(output) = all.get(id) else {
            return Vec::new();
        };
        let skip = output.recent.len().saturating_sub(tail);
        output.recent.iter().skip(skip).cloned().collect()
    }

    /// Forgets container `id` (it never started): its stream task ends at its next line.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Container `id` was removed: its unread lines stay for one [`Outputs::take`] (the log
    /// book collects from the listing made before the removal), and are dropped at the second
    /// listing that misses it if nobody took them.
    pub fn removed(&self, id: &str) {
        if let Some(output) = self.lock().get_mut(id) {
            output.removed = Some(0);
        }
    }

    /// The engine listed `present`: forgets removed containers nobody collected from.
    pub fn sweep(&self, present: &BTreeSet<String>) {
        self.lock().retain(|id, output| match &mut output.removed {
            Some(misses) if !present.contains(id) => {
                *misses += 1;
                *misses < 2
            }
            _ => true,
        });
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LINE_BYTES)]).into_owned()
}

/// This machine's time as RFC 3339 UTC with milliseconds: a label for the owner to read, never
/// used to decide anything.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_label_is_rfc3339_utc() {
        let label = now_rfc3339();
        let seconds = crate::logbook::unix_seconds(&label).expect("parses back");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - seconds).abs() <= 1, "{label}");
        assert_eq!(label.len(), "2026-12-06T20:00:00.000Z".len());
    }

    #[tokio::test]
    async fn a_removed_containers_last_lines_are_taken_once_then_forgotten() {
        let outputs = Outputs::default();
        let insert = |id: &str| {
            let mut output = Output::default();
            output.push(LogStream::Stdout, "last words".into());
            outputs.lock().insert(id.to_string(), output);
        };
        insert("a");
        outputs.removed("a");
        outputs.sweep(&BTreeSet::new());
        let (taken, _) = outputs.take("a", true).await;
        assert_eq!(taken.len(), 1);
        assert!(outputs.lock().is_empty(), "taken once, then gone");
        // Nobody takes them: gone at the second listing that misses it.
        insert("b");
        outputs.removed("b");
        outputs.sweep(&BTreeSet::new());
        assert_eq!(outputs.lock().len(), 1);
        outputs.sweep(&BTreeSet::new());
        assert!(outputs.lock().is_empty());
    }

    #[test]
    fn pending_output_is_capped_and_drops_are_counted() {
        let mut output = Output::default();
        let line = "x".repeat(MAX_LINE_BYTES - LINE_OVERHEAD);
        let fits = MAX_PENDING_BYTES / MAX_LINE_BYTES;
        for _ in 0..fits + 3 {
            output.push(LogStream::Stdout, line.clone());
        }
        assert_eq!(output.pending.len(), fits);
        assert_eq!(output.dropped, 3);
        assert_eq!(output.recent.len(), RECENT_LINES.min(fits + 3));
        // Empty lines are capped as well.
        let mut empty = Output::default();
        for _ in 0..MAX_PENDING_BYTES / LINE_OVERHEAD + 10 {
            empty.push(LogStream::Stdout, String::new());
        }
        assert_eq!(empty.pending.len(), MAX_PENDING_BYTES / LINE_OVERHEAD);
        assert_eq!(empty.dropped, 10);
    }
}
