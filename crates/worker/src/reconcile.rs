//! Makes the backend match what the chain assigned: level-triggered and idempotent, so a pass
//! after a crash, or twice in a row, does only what is still missing.
//!
//! - A desired instance that is missing is started (its image prepared first). One that
//!   exited is replaced if it belongs to an app (restart with exponential backoff, from 1 s up
//!   to a minute); a task run's exited container is kept, as the record of its result, until
//!   the chain no longer lists the run.
//! - An instance nobody wants is removed, except an app's old version while its new version
//!   does not answer yet: the ingress moves to the new version once all its replicas answer
//!   (health check, else a TCP connection to the first port), and the old version is removed
//!   a second after that.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wetee_types::{AppId, Workload};

use crate::ingress::Routes;

use crate::backend::{Backend, BackendError, Identity, Instance, InstanceSpec, InstanceState};

/// How long a removed container gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long an old version keeps running after traffic moved away from it.
pub const DRAIN: Duration = Duration::from_secs(1);
/// How long an instance must run for its earlier failures to be forgiven.
pub const STEADY: Duration = Duration::from_secs(60);
/// How long a readiness probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
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
    /// Instances that answered their readiness probe after the pass.
    pub ready: BTreeSet<Identity>,
    /// The instances found after starting what was missing (including those now being
    /// removed aside).
    pub instances: Vec<Instance>,
}

impl Pass {
    /// Whether the pass changed nothing.
    pub fn is_quiet(&self) -> bool {
        self.started.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    next_attempt: Instant,
    last_error: String,
}

/// An app failing this many times in a row (not starting, or exiting) is reported to the chain
/// as failed.
pub const FAILURES_BEFORE_REPORT: u32 = 3;

/// The reconciler and what it remembers between passes (only backoffs: everything else is
/// read again from the chain and the backend).
#[derive(Debug)]
pub struct Reconciler<B: Backend> {
    backend: B,
    backoff: BTreeMap<Identity, Backoff>,
    /// Old instances traffic moved away from, and when.
    unrouted: BTreeMap<String, Instant>,
    /// When each running task run was first seen running.
    running_since: BTreeMap<String, Instant>,
    /// Containers being removed in the background.
    removing: Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// The last lines of each instance's last dead container.
    last_output: BTreeMap<Identity, String>,
    /// When each container was first seen running.
    steady_since: BTreeMap<String, Instant>,
    routes: Option<Arc<Routes>>,
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
            unrouted: BTreeMap::new(),
            running_since: BTreeMap::new(),
            removing: Arc::default(),
            last_output: BTreeMap::new(),
            steady_since: BTreeMap::new(),
            routes: None,
        }
    }

    /// Keeps `routes` pointing at the containers that answer.
    pub fn with_routes(mut self, routes: Arc<Routes>) -> Reconciler<B> {
        self.routes = Some(routes);
        self
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

    /// Instances that failed [`FAILURES_BEFORE_REPORT`] times in a row, with the last reason and
    /// with the last output of the last container that died.
    pub fn failing(&self) -> Vec<(Identity, String, String)> {
        self.backoff
            .iter()
            .filter(|(_, b)| b.failures >= FAILURES_BEFORE_REPORT)
            .map(|(identity, b)| {
                let output = self.last_output.get(identity).cloned().unwrap_or_default();
                (*identity, b.last_error.clone(), output)
            })
            .collect()
    }

    fn record_failure(&mut self, identity: Identity, now: Instant, error: String) {
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
                last_error: error,
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
                self.record_failure(identity, Instant::now(), e.to_string());
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
                    // What it printed before dying explains why: keep it before removing it.
                    let tail = self
                        .backend
                        .logs(&instance.id, 20)
                        .await
                        .map(|lines| lines.iter().map(|l| format!("{}\n", l.text)).collect())
                        .unwrap_or_default();
                    self.backend.remove(&instance.id, STOP_GRACE).await?;
                    // Counts as a failure so that a crash loop backs off.
                    let why = match &instance.state {
                        InstanceState::Exited { code } => format!("exited with code {code}"),
                        other => format!("stopped ({other:?})"),
                    };
                    self.record_failure(identity, now, why);
                    self.last_output.insert(identity, tail);
                    self.start(spec, &mut pass).await;
                }
                None => {
                    if self.may_attempt(&identity, now) {
                        self.start(spec, &mut pass).await;
                    }
                }
            }
        }

        // Task runs past their timeout are killed; their exit code says so.
        for instance in &existing {
            let Some(timeout) = specs_timeout(desired, &instance.identity) else {
                continue;
            };
            if instance.state != InstanceState::Running {
                self.running_since.remove(&instance.id);
                continue;
            }
            let since = *self.running_since.entry(instance.id.clone()).or_insert(now);
            if now.duration_since(since) > timeout {
                tracing::info!(workload = %instance.identity.workload, "timed out: killing");
                self.backend.kill(&instance.id).await?;
                self.running_since.remove(&instance.id);
            }
        }

        // A minute of steady running clears an instance's failures.
        for instance in &existing {
            if instance.state != InstanceState::Running {
                continue;
            }
            let since = *self.steady_since.entry(instance.id.clone()).or_insert(now);
            if now.duration_since(since) >= STEADY
                && self.backoff.remove(&instance.identity).is_some()
            {
                self.last_output.remove(&instance.identity);
            }
        }
        let present: BTreeSet<&String> = existing.iter().map(|i| &i.id).collect();
        self.steady_since.retain(|id, _| present.contains(id));
        self.running_since.retain(|id, _| present.contains(id));

        // What runs and answers now.
        let current = self.backend.list().await?;
        let specs: BTreeMap<Identity, &InstanceSpec> =
            desired.iter().map(|s| (s.identity(), s)).collect();
        let mut ready: BTreeSet<Identity> = BTreeSet::new();
        for instance in current.iter().filter(|i| is_live(i)) {
            let probe = specs
                .get(&instance.identity)
                .and_then(|spec| probe_port(spec, instance));
            if probe_answers(probe).await {
                ready.insert(instance.identity);
            }
        }
        let wanted: BTreeSet<Identity> = desired.iter().map(InstanceSpec::identity).collect();
        let successors_ready = |workload: Workload| {
            let successors: Vec<&Identity> =
                wanted.iter().filter(|w| w.workload == workload).collect();
            !successors.is_empty() && successors.iter().all(|w| ready.contains(w))
        };

        // Routes: an app's wanted replicas once they all answer; until then its old version
        // while any of it answers, else whatever of the new version answers.
        if let Some(routes) = &self.routes {
            let old_answers = |workload: Workload| {
                current.iter().any(|i| {
                    i.identity.workload == workload
                        && !wanted.contains(&i.identity)
                        && ready.contains(&i.identity)
                })
            };
            let mut table: BTreeMap<AppId, Vec<SocketAddr>> = BTreeMap::new();
            for instance in current.iter().filter(|i| ready.contains(&i.identity)) {
                let Workload::App { app } = instance.identity.workload else {
                    continue;
                };
                let is_wanted = wanted.contains(&instance.identity);
                let switched = successors_ready(instance.identity.workload);
                let routed = if switched {
                    is_wanted
                } else {
                    !is_wanted || !old_answers(instance.identity.workload)
                };
                let Some(&container_port) = instance.ports.keys().next() else {
                    continue;
                };
                let port = specs
                    .get(&instance.identity)
                    .and_then(|spec| spec.container.ports.first())
                    .map_or(container_port, |p| p.container);
                if routed && let Some(host_port) = instance.ports.get(&port) {
                    table
                        .entry(app)
                        .or_default()
                        .push(SocketAddr::from(([127, 0, 0, 1], *host_port)));
                }
            }
            routes.replace(table);
        }

        for instance in &current {
            if wanted.contains(&instance.identity) {
                self.unrouted.remove(&instance.id);
                continue;
            }
            let has_successors = wanted
                .iter()
                .any(|w| w.workload == instance.identity.workload);
            if has_successors && is_live(instance) {
                if !successors_ready(instance.identity.workload) {
                    // Rolling update: the old version serves until the new one answers.
                    continue;
                }
                // Traffic has just moved: let requests in flight finish first.
                let since = *self.unrouted.entry(instance.id.clone()).or_insert(now);
                if now.duration_since(since) < DRAIN {
                    continue;
                }
            }
            // Stopping may take the whole grace period: do it aside, so that the next pass
            // (and the next deployment) does not wait for it.
            let id = instance.id.clone();
            if !lock(&self.removing).insert(id.clone()) {
                continue;
            }
            let backend = self.backend.clone();
            let removing = Arc::clone(&self.removing);
            tokio::spawn(async move {
                if let Err(e) = backend.remove(&id, STOP_GRACE).await {
                    tracing::warn!(container = %id, error = %e, "cannot remove");
                }
                lock(&removing).remove(&id);
            });
            self.unrouted.remove(&instance.id);
            self.backoff.remove(&instance.identity);
            pass.removed.push(instance.identity);
        }
        // Forget backoffs of what is no longer wanted.
        self.backoff.retain(|identity, _| wanted.contains(identity));
        self.last_output
            .retain(|identity, _| wanted.contains(identity));
        pass.ready = ready;
        pass.instances = current;
        Ok(pass)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn specs_timeout(desired: &[InstanceSpec], identity: &Identity) -> Option<Duration> {
    desired
        .iter()
        .find(|spec| spec.identity() == *identity)
        .and_then(|spec| spec.timeout)
}

/// The host port to probe for readiness: the health check's port, else the first port; `None`
/// when the container publishes nothing (running is then ready).
fn probe_port(spec: &InstanceSpec, instance: &Instance) -> Option<(u16, Option<String>)> {
    use wetee_types::manifest::Probe;
    let (port, path) = match spec.workload {
        Workload::TaskRun { .. } => return None,
        Workload::App { .. } => match spec.health.as_ref().map(|h| &h.probe) {
            Some(Probe::Http { port, path }) => (*port, Some(path.as_str().to_string())),
            Some(Probe::Tcp { port }) => (*port, None),
            None => (spec.container.ports.first()?.container, None),
        },
    };
    // A port that is not published yet answers nothing: probing port 0 fails.
    Some((instance.ports.get(&port).copied().unwrap_or(0), path))
}

/// Whether the probe answers (a TCP connection, or an HTTP 2xx/3xx for a path).
async fn probe_answers(probe: Option<(u16, Option<String>)>) -> bool {
    let Some((port, path)) = probe else {
        return true;
    };
    if port == 0 {
        return false;
    }
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let Some(path) = path else {
            return Some(true);
        };
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        let status = std::str::from_utf8(&head[9..12]).ok()?;
        Some(status.starts_with('2') || status.starts_with('3'))
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
