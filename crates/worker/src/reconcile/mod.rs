//! Makes the backend match what the chain assigned: level-triggered and idempotent, so a pass
//! after a crash, or twice in a row, does only what is still missing. Each pass observes the
//! engine (its containers, and which of them answer their readiness probe), points the ingress
//! at what answers, asks the [`plan`] what to do, and hands that to the [`executor`].

pub mod executor;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wetee_types::Workload;

use crate::backend::{Backend, BackendError, Identity, Instance, InstanceSpec};
use crate::ingress::Routes;

pub use executor::STOP_GRACE;
pub use plan::{DRAIN, FAILURES_BEFORE_REPORT, STEADY};

use executor::{Executor, Outcome, PASS_BUDGET};
use plan::{Action, Memory, Observed, is_live};

/// How long a readiness probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a container that answered is asked again when its app names no health-check
/// interval.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// How many starts, replacements and removals the engine is given at once. A worker assigned
/// a hundred apps at once starts them a few at a time: given all at once, Podman on a small
/// machine finished none within its deadline, and the removals of the half-made ones piled up
/// behind them.
pub const MAX_ENGINE_ACTIONS: usize = 4;
/// How often the engine is looked at while nothing changes: the chain assigns the same, nothing
/// is under way, and everything live answers. A block that changes what is assigned, or any
/// pass with work left, brings the next pass at once.
pub const SETTLED_PASS_EVERY: Duration = Duration::from_secs(2);

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Instances started (or replaced) since the last pass.
    pub started: Vec<Identity>,
    /// Instances whose removal began.
    pub removed: Vec<Identity>,
    /// Actions that failed since the last pass, and why.
    pub failed: Vec<(Identity, String)>,
    /// Instances that answered their readiness probe.
    pub ready: BTreeSet<Identity>,
    /// The instances observed at the start of the pass.
    pub instances: Vec<Instance>,
    /// Whether the engine was looked at (else `instances` and `ready` are the last settled
    /// pass's, and nothing changed since).
    pub observed: bool,
}

impl Pass {
    /// Whether the pass changed nothing.
    pub fn is_quiet(&self) -> bool {
        self.started.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

/// The reconciler, and what it remembers between passes.
#[derive(Debug)]
pub struct Reconciler<B: Backend> {
    backend: B,
    memory: Memory,
    executor: Executor<B>,
    /// The last lines of each instance's last dead container.
    last_output: BTreeMap<Identity, String>,
    routes: Option<Arc<Routes>>,
    /// When each container that answered its probe is to be asked again. One that did not
    /// answer (or is new) is asked at every pass, so that traffic moves to it as soon as it
    /// answers.
    next_probe: BTreeMap<String, Instant>,
    /// The last pass, when it left nothing to do.
    settled: Option<Settled>,
    /// How long a pass waits for the actions it started.
    pass_budget: Duration,
}

/// A pass that left nothing to do: what it wanted, saw and found ready.
#[derive(Debug)]
struct Settled {
    at: Instant,
    desired: Vec<InstanceSpec>,
    instances: Vec<Instance>,
    ready: BTreeSet<Identity>,
}

impl<B: Backend> Reconciler<B> {
    /// A reconciler over `backend`.
    pub fn new(backend: B) -> Reconciler<B> {
        Reconciler {
            executor: Executor::new(backend.clone()),
            backend,
            memory: Memory::default(),
            last_output: BTreeMap::new(),
            routes: None,
            next_probe: BTreeMap::new(),
            settled: None,
            pass_budget: PASS_BUDGET,
        }
    }

    /// Waits at most `budget` (and never more than [`PASS_BUDGET`]) for a pass's actions: a
    /// chain with short epochs needs the passes, and so the work reports between them, to come
    /// often.
    pub fn with_pass_budget(mut self, budget: Duration) -> Reconciler<B> {
        self.pass_budget = budget.min(PASS_BUDGET);
        self
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

    /// Instances that failed [`FAILURES_BEFORE_REPORT`] times in a row, with the last reason and
    /// with the last output of the last container that died.
    pub fn failing(&self) -> Vec<(Identity, String, String)> {
        self.memory
            .failing()
            .into_iter()
            .map(|(identity, reason)| {
                let output = self.last_output.get(&identity).cloned().unwrap_or_default();
                (identity, reason, output)
            })
            .collect()
    }

    /// One pass towards `desired`.
    pub async fn reconcile(&mut self, desired: &[InstanceSpec]) -> Result<Pass, BackendError> {
        if let Some(settled) = &self.settled
            && settled.at.elapsed() < SETTLED_PASS_EVERY
            && settled.desired == desired
        {
            return Ok(Pass {
                ready: settled.ready.clone(),
                instances: settled.instances.clone(),
                ..Pass::default()
            });
        }
        self.settled = None;
        let mut pass = Pass {
            observed: true,
            ..Pass::default()
        };
        let instances = self.backend.list().await?;
        let ready = self.probe_due(desired, &instances).await;
        if let Some(routes) = &self.routes {
            routes.replace(plan::route_table(desired, &instances, &ready));
        }
        let observed = Observed {
            instances: &instances,
            ready: &ready,
            busy: self.executor.busy(),
            room: MAX_ENGINE_ACTIONS.saturating_sub(self.executor.in_flight()),
            now: Instant::now(),
        };
        let actions = plan::plan(&mut self.memory, desired, &observed);
        for action in &actions {
            match action {
                Action::Remove { identity, .. } => {
                    tracing::debug!(workload = %identity.workload, version = identity.version,
                        replica = identity.replica, generation = identity.generation, "removing");
                    pass.removed.push(*identity);
                }
                Action::Kill { identity, .. } => {
                    tracing::info!(workload = %identity.workload, "timed out: killing");
                }
                Action::Replace { spec, .. } => {
                    tracing::info!(workload = %spec.workload, "restarting");
                }
                Action::Start(_) => {}
            }
        }
        let planned = !actions.is_empty();
        self.executor.launch(actions);
        for outcome in self.executor.settle(self.pass_budget).await {
            self.absorb(outcome, &mut pass);
        }
        // A dead container's output explains failures still counted, and nothing else.
        let memory = &self.memory;
        self.last_output
            .retain(|identity, _| memory.next_attempt(identity).is_some());
        let busy = self.executor.busy();
        if !planned
            && pass.is_quiet()
            && busy.identities.is_empty()
            && busy.containers.is_empty()
            && is_settled(desired, &instances, &ready)
        {
            self.settled = Some(Settled {
                at: Instant::now(),
                desired: desired.to_vec(),
                instances: instances.clone(),
                ready: ready.clone(),
            });
        }
        pass.ready = ready;
        pass.instances = instances;
        Ok(pass)
    }

    fn absorb(&mut self, outcome: Outcome, pass: &mut Pass) {
        if let Some(output) = outcome.last_output {
            self.last_output.insert(outcome.identity, output);
        }
        match (outcome.what, outcome.result) {
            ("start" | "replace", Ok(())) => pass.started.push(outcome.identity),
            ("remove", Err(e)) => {
                tracing::warn!(workload = %outcome.identity.workload, error = %e, "cannot remove");
            }
            (_, Ok(())) => {}
            (what, Err(e)) => {
                tracing::warn!(workload = %outcome.identity.workload, error = %e, "cannot {what}");
                self.memory
                    .record_failure(outcome.identity, Instant::now(), e.clone());
                pass.failed.push((outcome.identity, e));
            }
        }
    }
}

/// Whether the engine shows exactly what is wanted, all of it answering: every instance is
/// wanted, and every wanted one runs and answers (a task run may also have ended). Anything
/// else (a crash backing off, an old version draining, a start under way) has work left that
/// a later pass must not wait for.
fn is_settled(
    desired: &[InstanceSpec],
    instances: &[Instance],
    ready: &BTreeSet<Identity>,
) -> bool {
    let wanted: BTreeSet<Identity> = desired.iter().map(InstanceSpec::identity).collect();
    let observed: BTreeMap<Identity, &Instance> =
        instances.iter().map(|i| (i.identity, i)).collect();
    instances.iter().all(|i| wanted.contains(&i.identity))
        && wanted.iter().all(|identity| match observed.get(identity) {
            Some(instance) if is_live(instance) => ready.contains(identity),
            Some(_) => matches!(identity.workload, Workload::TaskRun { .. }),
            None => false,
        })
}

impl<B: Backend> Reconciler<B> {
    /// The live instances that answer their readiness probe. Those due (new, not answering, or
    /// past their app's health-check interval) are probed, all at once; the others answered
    /// last time.
    async fn probe_due(
        &mut self,
        desired: &[InstanceSpec],
        instances: &[Instance],
    ) -> BTreeSet<Identity> {
        let now = Instant::now();
        let specs: BTreeMap<Identity, &InstanceSpec> =
            desired.iter().map(|s| (s.identity(), s)).collect();
        let live: Vec<&Instance> = instances.iter().filter(|i| is_live(i)).collect();
        self.next_probe
            .retain(|id, _| live.iter().any(|instance| &instance.id == id));
        let mut ready = BTreeSet::new();
        let mut probes = Vec::new();
        for instance in live {
            let spec = specs.get(&instance.identity);
            if self
                .next_probe
                .get(&instance.id)
                .is_some_and(|at| now < *at)
            {
                ready.insert(instance.identity);
                continue;
            }
            let probe = spec.and_then(|spec| probe_port(spec, instance));
            let interval = spec
                .and_then(|spec| spec.health.as_ref())
                .map_or(DEFAULT_PROBE_INTERVAL, |health| {
                    Duration::from_secs(u64::from(health.interval_secs.max(1)))
                });
            probes.push(async move { (instance, interval, probe_answers(probe).await) });
        }
        for (instance, interval, answered) in futures::future::join_all(probes).await {
            if answered {
                ready.insert(instance.identity);
                self.next_probe.insert(instance.id.clone(), now + interval);
            } else {
                self.next_probe.remove(&instance.id);
            }
        }
        ready
    }
}

/// Where to probe for readiness: the health check's port, else the first port, at the
/// container's address (`None` inside while it has none); `None` when the container has no
/// port (running is then ready).
fn probe_port(
    spec: &InstanceSpec,
    instance: &Instance,
) -> Option<(Option<SocketAddr>, Option<String>)> {
    use wetee_types::manifest::Probe;
    let (port, path) = match spec.workload {
        Workload::TaskRun { .. } => return None,
        Workload::App { .. } => match spec.health.as_ref().map(|h| &h.probe) {
            Some(Probe::Http { port, path }) => (*port, Some(path.as_str().to_string())),
            Some(Probe::Tcp { port }) => (*port, None),
            None => (spec.container.ports.first()?.container, None),
        },
    };
    // A container without an address yet answers nothing: the probe fails.
    Some((instance.endpoints.get(&port).copied(), path))
}

/// Whether the probe answers (a TCP connection, or an HTTP 2xx/3xx for a path).
async fn probe_answers(probe: Option<(Option<SocketAddr>, Option<String>)>) -> bool {
    let Some((address, path)) = probe else {
        return true;
    };
    let Some(address) = address else {
        return false;
    };
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
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
