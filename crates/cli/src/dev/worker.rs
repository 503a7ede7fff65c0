//! `wetee dev`'s worker, supervised: restarted with backoff whenever it stops, its state
//! published for the banner and the status line.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use wetee_types::Keypair;
use wetee_worker::agent::Running;
use wetee_worker::config::WorkerConfig;

/// The first wait before restarting a worker that stopped; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A worker that ran this long before stopping starts again after [`FIRST_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a worker asked to stop may take to finish what it is doing.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where the dev worker stands.
#[derive(Debug, Clone)]
pub enum WorkerState {
    /// Starting (registering on the chain, the first time).
    Starting,
    /// Registered and following the chain.
    Running(Running),
    /// It stopped with `reason`, and starts again after `retry_in`.
    Failed {
        /// Why it stopped, as the worker said.
        reason: String,
        /// When it will be started again.
        retry_in: Duration,
    },
}

/// Runs the worker until `stop` turns true, starting it again after each failure (waiting
/// [`FIRST_BACKOFF`], doubling up to [`MAX_BACKOFF`]), and publishes its state on `state`.
pub async fn supervise(
    config: WorkerConfig,
    rpc: String,
    operator: Keypair,
    mut stop: watch::Receiver<bool>,
    state: watch::Sender<WorkerState>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let mut stopping = stop.clone();
        let outcome = wetee_worker::agent::run(
            config.clone(),
            &rpc,
            operator.clone(),
            async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            },
            |running| {
                state.send_replace(WorkerState::Running(running));
            },
        );
        // The worker stops by itself between two passes; one still registering is given
        // STOP_GRACE, then dropped.
        let reason = tokio::select! {
            biased;
            outcome = outcome => match outcome {
                Ok(()) => return,
                Err(e) => e.to_string(),
            },
            () = async {
                let _ = stop.wait_for(|stop| *stop).await;
                tokio::time::sleep(STOP_GRACE).await;
            } => return,
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        state.send_replace(WorkerState::Failed {
            reason,
            retry_in: backoff,
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        state.send_replace(WorkerState::Starting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_worker::config::{BackendConfig, BackendKind, IngressConfig};

    /// A worker whose node never answers: it fails at once, every time.
    fn unreachable_worker(dir: &std::path::Path) -> WorkerConfig {
        let mut config = super::super::dev_worker_config(
            dir,
            "/nonexistent/engine.sock",
            "127.0.0.1:0".parse().unwrap(),
            wetee_types::Hash::of(b"a chain"),
        );
        config.backend = BackendConfig {
            kind: BackendKind::Docker,
            socket: Some("/nonexistent/engine.sock".into()),
            secrets_dir: dir.join("secrets"),
            pids_limit: wetee_worker::backend::confinement::DEFAULT_PIDS_LIMIT,
        };
        config.ingress = IngressConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            domain: "localhost".into(),
            limits: Default::default(),
        };
        config
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_worker_is_reported_with_its_reason_and_restarted_with_growing_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let (stop_sender, stop) = watch::channel(false);
        let (state, mut states) = watch::channel(WorkerState::Starting);
        let supervisor = tokio::spawn(supervise(
            unreachable_worker(dir.path()),
            "ws://127.0.0.1:1".into(),
            wetee_client::keys::dev_keypair("Bob"),
            stop,
            state,
        ));
        let mut waits = Vec::new();
        while waits.len() < 3 {
            states.changed().await.unwrap();
            if let WorkerState::Failed { reason, retry_in } = &*states.borrow_and_update() {
                assert!(!reason.is_empty());
                waits.push(*retry_in);
            }
        }
        assert_eq!(
            waits,
            [1, 2, 4].map(Duration::from_secs).to_vec(),
            "each restart waits twice as long"
        );
        stop_sender.send_replace(true);
        supervisor.await.unwrap();
    }
}
