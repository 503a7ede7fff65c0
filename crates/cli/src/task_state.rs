//! A task as its owner wants to see it: its schedule, its runs, and why a run waits or
//! failed, in words.

use anyhow::{Context, Result};
use serde::Serialize;
use wetee_client::rpc::Client;
use wetee_types::manifest::Schedule;
use wetee_types::records::{Due, RunStatus, Task, TaskRun, TaskStatus, TaskVersion};
use wetee_types::{TaskId, Workload};

use wetee_client::app_overview::stop_words;

/// How many recent runs the text shows.
const RECENT_RUNS: usize = 5;

/// A task with its versions, its runs and, if a run waits, why.
#[derive(Debug, Clone, Serialize)]
pub struct TaskState {
    pub task: Task,
    pub versions: Vec<TaskVersion>,
    pub runs: Vec<TaskRun>,
    /// Why the waiting run gets no worker.
    pub pending_reason: Option<String>,
}

impl TaskState {
    /// Reads task `task` from the chain.
    pub async fn read(client: &Client, task: TaskId) -> Result<TaskState> {
        let record = client
            .task(task)
            .await?
            .with_context(|| format!("there is no task {task}"))?;
        let pending_reason = match record.waiting_run {
            Some(run) => {
                client
                    .pending_reason(Workload::TaskRun { task, run })
                    .await?
            }
            None => None,
        };
        Ok(TaskState {
            versions: client.task_versions(task).await?,
            runs: client.task_runs(task).await?,
            task: record,
            pending_reason,
        })
    }

    /// Every line a person needs.
    pub fn to_text(&self) -> String {
        let task = &self.task;
        let execution = &task.spec.execution;
        let state = match &task.status {
            TaskStatus::Active => match task.next_due {
                Some(Due::Height { height }) => format!("active; next run due at block #{height}"),
                Some(Due::Time { ms }) => {
                    format!("active; next run due at {} (block time)", utc(ms))
                }
                None => "active; no run due".into(),
            },
            TaskStatus::Stopped { reason } => format!("stopped: {}", stop_words(reason)),
            TaskStatus::Completed => "completed: every run ended".into(),
        };
        let schedule = match &execution.schedule {
            Schedule::Once => "once".to_string(),
            Schedule::EveryBlocks { blocks } => format!("every {blocks} blocks"),
            Schedule::Cron { expression } => format!("cron `{}` (UTC)", expression.as_str()),
        };
        let limit = execution
            .max_runs
            .map_or_else(String::new, |max| format!(", at most {max} runs"));
        let mut text = format!(
            "task {} ({}), version {}\n  state    {state}\n  schedule {schedule}, timeout {} s{limit}\n  \
             runs     {} created, {} ended\n  owner    {}\n  deposit  {} ({} held for runs in flight)",
            task.id,
            task.spec.name.as_str(),
            task.version,
            execution.timeout_secs,
            task.runs,
            task.runs_ended,
            task.owner,
            task.deposit,
            task.held,
        );
        if let Some(run) = task.waiting_run {
            let why = self
                .pending_reason
                .as_deref()
                .unwrap_or("no worker has taken it yet");
            text.push_str(&format!("\n  waiting  run {run} waits for a worker: {why}"));
        }
        let recent: Vec<&TaskRun> = self.runs.iter().rev().take(RECENT_RUNS).collect();
        if !recent.is_empty() {
            text.push_str("\n  recent runs:");
            for run in recent.into_iter().rev() {
                text.push_str(&format!("\n    {}", run_words(run)));
            }
        }
        text
    }
}

/// One run in words: `run 3 (version 1) on worker 1: exited 0 after 1.2 s, paid 0.01 WTE`.
pub fn run_words(run: &TaskRun) -> String {
    let place = run
        .worker
        .map_or_else(String::new, |worker| format!(" on worker {worker}"));
    let what = match (&run.status, &run.result) {
        (RunStatus::Waiting, _) => "waiting for a worker".to_string(),
        (RunStatus::Assigned, _) => "running".to_string(),
        (RunStatus::Finished, Some(result)) => format!(
            "exited {} after {}.{:01} s, paid {}",
            result.exit_code,
            result.duration_ms / 1000,
            (result.duration_ms % 1000) / 100,
            result.paid
        ),
        (RunStatus::Finished, None) => "finished".to_string(),
        (RunStatus::Expired, _) => "expired: no result arrived in time; nothing was paid".into(),
        (RunStatus::Cancelled, _) => "cancelled before it was placed".into(),
    };
    format!("run {} (version {}){place}: {what}", run.run, run.version)
}

/// A Unix time in milliseconds as `2026-12-06 05:25:51 UTC`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = wetee_types::cron::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_250_434_698), "2026-11-21 08:40:34 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
