//! Work proofs: what the worker measured of each workload, per epoch, and the signed report it
//! submits once an epoch has ended.
//!
//! - Uptime: at every reconcile pass, an app counts as up when all its wanted replicas answer
//!   their readiness probe; its uptime is the share of the epoch's samples it was up.
//! - Usage: CPU time, peak memory and network bytes from the engine, as deltas between samples.
//! - Logs: the Merkle root of the epoch's sealed log batches ([`crate::logbook`]).
//! - Task runs: exit code, the hash of the run's standard output, its log root, its duration and
//!   usage, reported once the run's container has exited.

use std::collections::BTreeMap;

use wetee_types::report::{AppProof, FULL_UPTIME_BPS, RunReport, Usage, WorkReport};
use wetee_types::{AppId, TaskId, Workload};

use crate::backend;
use crate::logbook::LogBook;

#[derive(Debug, Default, Clone, Copy)]
struct Samples {
    total: u32,
    up: u32,
}

/// What the worker measured, by app and epoch, and by container.
#[derive(Debug, Default)]
pub struct Meter {
    uptime: BTreeMap<(AppId, u64), Samples>,
    usage: BTreeMap<(AppId, u64), Usage>,
    runs: BTreeMap<(TaskId, u32), Usage>,
    last: BTreeMap<String, backend::Usage>,
}

fn add_usage(total: &mut Usage, last: Option<&backend::Usage>, now: &backend::Usage) {
    let before = last.copied().unwrap_or_default();
    // A restarted container starts its counters again.
    let delta = |now: u64, before: u64| now.checked_sub(before).unwrap_or(now);
    total.cpu_ms = total
        .cpu_ms
        .saturating_add(delta(now.cpu_nanos, before.cpu_nanos) / 1_000_000);
    total.net_rx_bytes = total
        .net_rx_bytes
        .saturating_add(delta(now.network_rx_bytes, before.network_rx_bytes));
    total.net_tx_bytes = total
        .net_tx_bytes
        .saturating_add(delta(now.network_tx_bytes, before.network_tx_bytes));
    total.memory_peak_mib = total.memory_peak_mib.max(now.memory_bytes >> 20);
}

impl Meter {
    /// Records whether `app` was up at a sample of `epoch`.
    pub fn sample_uptime(&mut self, epoch: u64, app: AppId, up: bool) {
        let samples = self.uptime.entry((app, epoch)).or_default();
        samples.total = samples.total.saturating_add(1);
        if up {
            samples.up = samples.up.saturating_add(1);
        }
    }

    /// Records a container's counters at a sample of `epoch`.
    pub fn sample_usage(
        &mut self,
        epoch: u64,
        workload: Workload,
        container: &str,
        usage: backend::Usage,
    ) {
        let last = self.last.get(container);
        let total = match workload {
            Workload::App { app } => self.usage.entry((app, epoch)).or_default(),
            Workload::TaskRun { task, run } => self.runs.entry((task, run)).or_default(),
        };
        add_usage(total, last, &usage);
        self.last.insert(container.to_string(), usage);
    }

    /// The proofs of every app sampled during `epoch`.
    pub fn app_proofs(&self, epoch: u64, logs: &LogBook) -> Vec<AppProof> {
        self.uptime
            .iter()
            .filter(|((_, e), _)| *e == epoch)
            .map(|((app, _), samples)| {
                let uptime = u64::from(samples.up) * u64::from(FULL_UPTIME_BPS)
                    / u64::from(samples.total.max(1));
                AppProof {
                    app: *app,
                    uptime_bps: u16::try_from(uptime).unwrap_or(FULL_UPTIME_BPS),
                    usage: self.usage.get(&(*app, epoch)).copied().unwrap_or_default(),
                    log_root: logs.root(&Workload::App { app: *app }, epoch),
                }
            })
            .collect()
    }

    /// An app's uptime (basis points) and usage by epoch, as measured so far.
    pub fn history(&self, app: AppId) -> (BTreeMap<u64, u16>, BTreeMap<u64, Usage>) {
        let uptime = self
            .uptime
            .iter()
            .filter(|((a, _), _)| *a == app)
            .map(|((_, epoch), samples)| {
                let bps = u64::from(samples.up) * u64::from(FULL_UPTIME_BPS)
                    / u64::from(samples.total.max(1));
                (*epoch, u16::try_from(bps).unwrap_or(FULL_UPTIME_BPS))
            })
            .collect();
        let usage = self
            .usage
            .iter()
            .filter(|((a, _), _)| *a == app)
            .map(|((_, epoch), usage)| (*epoch, *usage))
            .collect();
        (uptime, usage)
    }

    /// The usage measured of a task run.
    pub fn run_usage(&self, task: TaskId, run: u32) -> Usage {
        self.runs.get(&(task, run)).copied().unwrap_or_default()
    }

    /// Forgets samples of epochs before `epoch`, and of containers that are gone.
    pub fn prune(&mut self, epoch: u64, live_containers: &[String]) {
        self.uptime.retain(|(_, e), _| *e >= epoch);
        self.usage.retain(|(_, e), _| *e >= epoch);
        self.last.retain(|id, _| live_containers.contains(id));
    }
}

/// A finished task run's result from its captured logs.
pub fn run_report(
    task: TaskId,
    run: u32,
    exit_code: i64,
    duration_ms: u64,
    usage: Usage,
    logs: &LogBook,
) -> RunReport {
    let workload = Workload::TaskRun { task, run };
    RunReport {
        task,
        run,
        exit_code: i32::try_from(exit_code).unwrap_or(i32::MIN),
        // What the run wrote to standard output, in order.
        output_hash: logs.output_hash(&workload),
        log_root: logs.root_of_all(&workload),
        duration_ms,
        usage,
    }
}

/// Whether a report covering `epoch` still has something to say.
pub fn is_worth_sending(report: &WorkReport) -> bool {
    !report.apps.is_empty() || !report.runs.is_empty()
}
