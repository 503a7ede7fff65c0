//! Makes the backend match what the chain assigned: level-triggered and idempotent, so a pass
//! after a crash, or twice in a row, does only what is still missing.
//!
//! - A desired instance that is missing is started (its image prepared first). One that
//!   exited is replaced if it belongs to an app (restart with exponential backoff, from 1 s up
//!   to a minute); a task run's exited container is kept, as the record of its result, until
//!   the chain no longer lists the run.
//! - An instance nobody wants is removed, except an app's old version while its new version
//!   is not running yet: updates replace containers only once the new ones run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use wetee_types::Workload;

use crate::backend::{Backend, BackendError, Identity, Instance, InstanceSpec, InstanceState};

/// How long a removed container gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Instances started.
    pub started: Vec<Identity>,
    /// Instances removed.
    pub removed: Vec<Identity>,
    /// Instances that could not be started, and why.
    pub failed: Vec<(Identity, String)>,
}

impl Pass {
    /// Whether the pass changed nothing.
    pub fn is_quiet(&self) -> bool {
        self.started.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next_attempt: Instant,
}

/// The reconciler and what it remembers between passes (only backoffs: everything else is
/// read again from the chain and the backend).
#[derive(Debug)]
pub struct Reconciler<B: Backend> {
    backend: B,
    backoff: BTreeMap<Identity, Backoff>,
}

fn is_live(instance: &Instance) -> bool {
    matches!(
        instance.state,
        InstanceState::Running | InstanceState::Created
    )
}

impl<B: Backend> Reconciler<B> {
    /// A reconciler over `backend`.
    pub fn new(backend: B) -> Reconciler<B> {
        Reconciler {
            backend,
            backoff: BTreeMap::new(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn may_attempt(&self, identity: &Identity, now: Instant) -> bool {
        self.backoff
            .get(identity)
            .is_none_or(|b| now >= b.next_attempt)
    }

    fn record_failure(&mut self, identity: Identity, now: Instant) {
        let failures = self
            .backoff
            .get(&identity)
            .map_or(0, |b| b.failures)
            .saturating_add(1);
        let delay = FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(10)))
            .min(MAX_BACKOFF);
        self.backoff.insert(
            identity,
            Backoff {
                failures,
                next_attempt: now + delay,
            },
        );
    }

    async fn start(&mut self, spec: &InstanceSpec, pass: &mut Pass) {
        let identity = spec.identity();
        let started = async {
            let image = self.backend.prepare_image(&spec.container.image).await?;
            self.backend.start(spec, &image).await
        }
        .await;
        match started {
            Ok(_) => pass.started.push(identity),
            Err(e) => {
                tracing::warn!(workload = %spec.workload, error = %e, "cannot start");
                self.record_failure(identity, Instant::now());
                pass.failed.push((identity, e.to_string()));
            }
        }
    }

    /// One pass towards `desired`.
    pub async fn reconcile(&mut self, desired: &[InstanceSpec]) -> Result<Pass, BackendError> {
        let mut pass = Pass::default();
        let now = Instant::now();
        let existing = self.backend.list().await?;
        let by_identity: BTreeMap<Identity, &Instance> =
            existing.iter().map(|i| (i.identity, i)).collect();

        for spec in desired {
            let identity = spec.identity();
            match by_identity.get(&identity) {
                Some(instance) if is_live(instance) => {}
                // A finished run: its container is its record until the chain lets go.
                Some(_) if matches!(identity.workload, Workload::TaskRun { .. }) => {}
                Some(instance) => {
                    if !self.may_attempt(&identity, now) {
                        continue;
                    }
                    tracing::info!(workload = %identity.workload, state = ?instance.state, "restarting");
                    self.backend.remove(&instance.id, STOP_GRACE).await?;
                    // Counts as a failure so that a crash loop backs off.
                    self.record_failure(identity, now);
                    self.start(spec, &mut pass).await;
                }
                None => {
                    if self.may_attempt(&identity, now) {
                        self.start(spec, &mut pass).await;
                    }
                }
            }
        }

        // What is running now, to decide whether old versions may go.
        let live: BTreeSet<Identity> = self
            .backend
            .list()
            .await?
            .iter()
            .filter(|i| is_live(i))
            .map(|i| i.identity)
            .collect();
        let wanted: BTreeSet<Identity> = desired.iter().map(InstanceSpec::identity).collect();
        for instance in &existing {
            if wanted.contains(&instance.identity) {
                continue;
            }
            let successors: Vec<&Identity> = wanted
                .iter()
                .filter(|w| w.workload == instance.identity.workload)
                .collect();
            let successors_live = successors.iter().all(|w| live.contains(w));
            if !successors.is_empty() && !successors_live && is_live(instance) {
                // Rolling update: the old version serves until the new one runs.
                continue;
            }
            self.backend.remove(&instance.id, STOP_GRACE).await?;
            self.backoff.remove(&instance.identity);
            pass.removed.push(instance.identity);
        }
        // Forget backoffs of what is no longer wanted.
        self.backoff.retain(|identity, _| wanted.contains(identity));
        Ok(pass)
    }
}
