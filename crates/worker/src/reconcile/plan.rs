//! What to do next, decided from what the chain wants and what the engine shows, without
//! touching the engine: deterministic, so every case is a table row in the tests below.
//!
//! - A desired instance that is missing is started. One that exited is replaced if it belongs
//!   to an app (a failure: restarts back off exponentially, from 1 s up to a minute); a task
//!   run's exited container is kept, as the record of its result, until the chain no longer
//!   lists the run. A container left created past [`CREATED_GRACE`] never ran and is
//!   replaced. A running task run past its timeout is killed.
//! - An instance nobody wants is removed, except an app's old version (or old secrets
//!   generation) while its successors do not all answer yet: the ingress moves to them once
//!   they all answer, and the old one is removed [`DRAIN`] after that.
//! - Nothing is planned for an instance or container an earlier action still works on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use wetee_types::{AppId, Workload};

use crate::backend::{Identity, Instance, InstanceSpec, InstanceState};

/// How long an old version keeps running after traffic moved away from it.
pub const DRAIN: Duration = Duration::from_secs(1);
/// How long an instance must run for its earlier failures to be forgiven.
pub const STEADY: Duration = Duration::from_secs(60);
/// How long a container may stay created without running before it counts as dead (a start
/// cut short by its deadline, or by the worker stopping).
pub const CREATED_GRACE: Duration = Duration::from_secs(60);
/// An app failing this many times in a row (not starting, or exiting) is reported to the chain
/// as failed.
pub const FAILURES_BEFORE_REPORT: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One thing to do to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Prepare the image and start the instance.
    Start(Box<InstanceSpec>),
    /// Keep the last output of the dead container `dead`, remove it, and start the instance.
    Replace {
        /// What to start.
        spec: Box<InstanceSpec>,
        /// The container that died.
        dead: String,
    },
    /// Kill a task run's container past its timeout (its exit code says so).
    Kill {
        /// The container.
        container: String,
        /// Its instance.
        identity: Identity,
    },
    /// Stop and remove a container nobody wants.
    Remove {
        /// The container.
        container: String,
        /// Its instance.
        identity: Identity,
    },
}

impl Action {
    /// The instance it acts on.
    pub fn identity(&self) -> Identity {
        match self {
            Action::Start(spec) | Action::Replace { spec, .. } => spec.identity(),
            Action::Kill { identity, .. } | Action::Remove { identity, .. } => *identity,
        }
    }

    /// The existing container it acts on, if any.
    pub fn container(&self) -> Option<&str> {
        match self {
            Action::Start(_) => None,
            Action::Replace { dead, .. } => Some(dead),
            Action::Kill { container, .. } | Action::Remove { container, .. } => Some(container),
        }
    }
}

/// What earlier actions are still working on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Busy {
    /// Instances being started or replaced.
    pub identities: BTreeSet<Identity>,
    /// Containers being killed, removed or replaced.
    pub containers: BTreeSet<String>,
}

impl Busy {
    /// Whether `action` would touch what an earlier one still works on.
    pub fn overlaps(&self, action: &Action) -> bool {
        self.identities.contains(&action.identity())
            || action
                .container()
                .is_some_and(|c| self.containers.contains(c))
    }
}

/// What the engine shows.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The worker's containers.
    pub instances: &'a [Instance],
    /// The instances whose readiness probe answered.
    pub ready: &'a BTreeSet<Identity>,
    /// What earlier actions still work on.
    pub busy: &'a Busy,
    /// How many more starts, replacements and removals the engine may be given now: the rest
    /// wait for a later pass (a kill is never held back).
    pub room: usize,
    /// Now.
    pub now: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Backoff {
    failures: u32,
    next_attempt: Instant,
    last_error: String,
}

/// What the planner remembers between passes: failures and their backoff, and since when
/// each container has been running or unrouted. Everything else is observed again.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    backoff: BTreeMap<Identity, Backoff>,
    unrouted: BTreeMap<String, Instant>,
    running_since: BTreeMap<String, Instant>,
    steady_since: BTreeMap<String, Instant>,
    created_since: BTreeMap<String, Instant>,
}

impl Memory {
    /// The one error policy: every failure of an instance (it did not start, it exited, an
    /// action on it timed out) counts, and its next attempt waits 1 s, 2 s, 4 s ... up to a
    /// minute.
    pub fn record_failure(&mut self, identity: Identity, now: Instant, error: String) {
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

    /// Instances that failed [`FAILURES_BEFORE_REPORT`] times in a row, with the last reason.
    pub fn failing(&self) -> Vec<(Identity, String)> {
        self.backoff
            .iter()
            .filter(|(_, b)| b.failures >= FAILURES_BEFORE_REPORT)
            .map(|(identity, b)| (*identity, b.last_error.clone()))
            .collect()
    }

    /// When `identity` may be tried again, if it is backing off.
    pub fn next_attempt(&self, identity: &Identity) -> Option<Instant> {
        self.backoff.get(identity).map(|b| b.next_attempt)
    }

    fn may_attempt(&self, identity: &Identity, now: Instant) -> bool {
        self.backoff
            .get(identity)
            .is_none_or(|b| now >= b.next_attempt)
    }
}

/// Whether the container runs or is about to.
pub fn is_live(instance: &Instance) -> bool {
    matches!(
        instance.state,
        InstanceState::Running | InstanceState::Created
    )
}

/// The actions that bring `observed` towards `desired`, updating `memory`'s timers.
pub fn plan(memory: &mut Memory, desired: &[InstanceSpec], observed: &Observed) -> Vec<Action> {
    let now = observed.now;
    let mut room = observed.room;
    let mut actions = Vec::new();
    let by_identity: BTreeMap<Identity, &Instance> =
        observed.instances.iter().map(|i| (i.identity, i)).collect();

    for instance in observed.instances {
        if instance.state == InstanceState::Created {
            memory
                .created_since
                .entry(instance.id.clone())
                .or_insert(now);
        } else {
            memory.created_since.remove(&instance.id);
        }
    }
    let stuck = |memory: &Memory, instance: &Instance| {
        memory
            .created_since
            .get(&instance.id)
            .is_some_and(|since| now.duration_since(*since) >= CREATED_GRACE)
    };

    for spec in desired {
        let identity = spec.identity();
        let action = match by_identity.get(&identity) {
            Some(instance) if is_live(instance) && !stuck(memory, instance) => continue,
            // A finished run: its container is its record until the chain lets go. One the
            // engine left created never ran its program, so it is replaced like an app's.
            Some(instance)
                if matches!(identity.workload, Workload::TaskRun { .. })
                    && instance.state != InstanceState::Created =>
            {
                continue;
            }
            Some(instance) => Action::Replace {
                spec: Box::new(spec.clone()),
                dead: instance.id.clone(),
            },
            None => Action::Start(Box::new(spec.clone())),
        };
        if observed.busy.overlaps(&action) || !memory.may_attempt(&identity, now) || room == 0 {
            continue;
        }
        room -= 1;
        if let (Action::Replace { .. }, Some(instance)) = (&action, by_identity.get(&identity)) {
            // Counts as a failure so that a crash loop backs off.
            let why = match &instance.state {
                InstanceState::Exited { code } => format!("exited with code {code}"),
                other => format!("stopped ({other:?})"),
            };
            memory.record_failure(identity, now, why);
        }
        actions.push(action);
    }

    let timeouts: BTreeMap<Identity, Duration> = desired
        .iter()
        .filter_map(|spec| Some((spec.identity(), spec.timeout?)))
        .collect();
    for instance in observed.instances {
        let Some(timeout) = timeouts.get(&instance.identity) else {
            continue;
        };
        if instance.state != InstanceState::Running {
            memory.running_since.remove(&instance.id);
            continue;
        }
        let since = *memory
            .running_since
            .entry(instance.id.clone())
            .or_insert(now);
        let kill = Action::Kill {
            container: instance.id.clone(),
            identity: instance.identity,
        };
        if now.duration_since(since) > *timeout && !observed.busy.overlaps(&kill) {
            actions.push(kill);
        }
    }

    // A while of steady running clears an instance's failures.
    for instance in observed.instances {
        if instance.state != InstanceState::Running {
            continue;
        }
        let since = *memory
            .steady_since
            .entry(instance.id.clone())
            .or_insert(now);
        if now.duration_since(since) >= STEADY {
            memory.backoff.remove(&instance.identity);
        }
    }
    let present: BTreeSet<&String> = observed.instances.iter().map(|i| &i.id).collect();
    memory.steady_since.retain(|id, _| present.contains(id));
    memory.running_since.retain(|id, _| present.contains(id));
    memory.unrouted.retain(|id, _| present.contains(id));
    memory.created_since.retain(|id, _| present.contains(id));

    let wanted: BTreeSet<Identity> = desired.iter().map(InstanceSpec::identity).collect();
    for instance in observed.instances {
        if wanted.contains(&instance.identity) {
            memory.unrouted.remove(&instance.id);
            continue;
        }
        let remove = Action::Remove {
            container: instance.id.clone(),
            identity: instance.identity,
        };
        if observed.busy.overlaps(&remove) || room == 0 {
            continue;
        }
        let has_successors = wanted
            .iter()
            .any(|w| w.workload == instance.identity.workload);
        if has_successors && is_live(instance) {
            if !successors_ready(&wanted, observed.ready, instance.identity.workload) {
                // Rolling update: the old version serves until the new one answers.
                continue;
            }
            // Traffic has just moved: let requests in flight finish first.
            let since = *memory.unrouted.entry(instance.id.clone()).or_insert(now);
            if now.duration_since(since) < DRAIN {
                continue;
            }
        }
        memory.unrouted.remove(&instance.id);
        memory.backoff.remove(&instance.identity);
        room -= 1;
        actions.push(remove);
    }
    // Forget the failures of what is no longer wanted.
    memory
        .backoff
        .retain(|identity, _| wanted.contains(identity));
    actions
}

fn successors_ready(
    wanted: &BTreeSet<Identity>,
    ready: &BTreeSet<Identity>,
    workload: Workload,
) -> bool {
    let mut successors = wanted.iter().filter(|w| w.workload == workload).peekable();
    successors.peek().is_some() && successors.all(|w| ready.contains(w))
}

/// Where the ingress sends each app's traffic: its wanted replicas once they all answer; until
/// then its old version while any of it answers, else whatever of the new version answers.
/// Each address is the container's own, at the app's first port.
pub fn route_table(
    desired: &[InstanceSpec],
    instances: &[Instance],
    ready: &BTreeSet<Identity>,
) -> BTreeMap<AppId, Vec<SocketAddr>> {
    let specs: BTreeMap<Identity, &InstanceSpec> =
        desired.iter().map(|s| (s.identity(), s)).collect();
    let wanted: BTreeSet<Identity> = specs.keys().copied().collect();
    let old_answers = |workload: Workload| {
        instances.iter().any(|i| {
            i.identity.workload == workload
                && !wanted.contains(&i.identity)
                && ready.contains(&i.identity)
        })
    };
    let mut table: BTreeMap<AppId, Vec<SocketAddr>> = BTreeMap::new();
    for instance in instances
        .iter()
        .filter(|i| ready.contains(&i.identity) && is_live(i))
    {
        let Workload::App { app } = instance.identity.workload else {
            continue;
        };
        let is_wanted = wanted.contains(&instance.identity);
        let routed = if successors_ready(&wanted, ready, instance.identity.workload) {
            is_wanted
        } else {
            !is_wanted || !old_answers(instance.identity.workload)
        };
        let Some(&container_port) = instance.endpoints.keys().next() else {
            continue;
        };
        let port = specs
            .get(&instance.identity)
            .and_then(|spec| spec.container.ports.first())
            .map_or(container_port, |p| p.container);
        if routed && let Some(address) = instance.endpoints.get(&port) {
            table.entry(app).or_default().push(*address);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use wetee_types::codec::{BoundedString, BoundedVec};
    use wetee_types::manifest::{ContainerSpec, ImageRef, Port, Protocol};
    use wetee_types::{Resources, TaskId};

    use super::*;

    fn container() -> ContainerSpec {
        ContainerSpec {
            image: ImageRef {
                repository: BoundedString::try_new("example/app").unwrap(),
                digest: [7; 32],
            },
            command: BoundedVec::default(),
            args: BoundedVec::default(),
            env: BoundedVec::default(),
            secrets: BoundedVec::default(),
            ports: BoundedVec::try_new(vec![Port {
                container: 8080,
                protocol: Protocol::Tcp,
            }])
            .unwrap(),
            resources: Resources::ZERO,
            gpu_model: None,
            security: Default::default(),
        }
    }

    /// Replica `replica` of app 1 at `version`, secrets generation `generation`.
    fn app(version: u32, replica: u32, generation: u32) -> InstanceSpec {
        InstanceSpec {
            workload: Workload::App { app: AppId(1) },
            version,
            replica,
            generation,
            container: container(),
            health: None,
            timeout: None,
            secrets: Vec::new(),
        }
    }

    fn task_run(timeout_secs: u64) -> InstanceSpec {
        InstanceSpec {
            workload: Workload::TaskRun {
                task: TaskId(5),
                run: 1,
            },
            version: 1,
            replica: 0,
            generation: 0,
            container: container(),
            health: None,
            timeout: Some(Duration::from_secs(timeout_secs)),
            secrets: Vec::new(),
        }
    }

    /// An instance of `spec` at `10.89.0.<version>` (none when it is not running).
    fn instance(spec: &InstanceSpec, state: InstanceState) -> Instance {
        let endpoints = match state {
            InstanceState::Running => BTreeMap::from([(8080, at(spec.version as u8)[0])]),
            _ => BTreeMap::new(),
        };
        Instance {
            id: format!("c-{}", spec.name()),
            name: spec.name(),
            identity: spec.identity(),
            state,
            endpoints,
        }
    }

    fn at(host: u8) -> Vec<SocketAddr> {
        vec![SocketAddr::from(([10, 89, 0, host], 8080))]
    }

    fn running(spec: &InstanceSpec) -> Instance {
        instance(spec, InstanceState::Running)
    }

    fn exited(spec: &InstanceSpec, code: i64) -> Instance {
        instance(spec, InstanceState::Exited { code })
    }

    /// A short name for each action, for readable tables.
    fn names(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                Action::Start(spec) => format!("start {}", spec.name()),
                Action::Replace { spec, .. } => format!("replace {}", spec.name()),
                Action::Kill { identity, .. } => format!("kill {:?}", identity.workload),
                Action::Remove { container, .. } => format!("remove {container}"),
            })
            .collect()
    }

    /// One row: seconds since the start, the containers, which of them answer, the plan.
    type Row<'a> = (f64, Vec<Instance>, Vec<&'a InstanceSpec>, Vec<&'a str>);

    /// A planner and a clock.
    struct Planner {
        memory: Memory,
        start: Instant,
        room: usize,
    }

    impl Planner {
        fn new() -> Planner {
            Planner {
                memory: Memory::default(),
                start: Instant::now(),
                room: usize::MAX,
            }
        }

        /// The plan `at_secs` after the start.
        fn at(
            &mut self,
            at_secs: f64,
            desired: &[InstanceSpec],
            instances: &[Instance],
            ready: &[&InstanceSpec],
        ) -> Vec<String> {
            let ready: BTreeSet<Identity> = ready.iter().map(|s| s.identity()).collect();
            let observed = Observed {
                instances,
                ready: &ready,
                busy: &Busy::default(),
                room: self.room,
                now: self.start + Duration::from_secs_f64(at_secs),
            };
            names(&plan(&mut self.memory, desired, &observed))
        }

        /// Checks each row's plan, in order: rows share the planner's memory.
        fn table<const N: usize>(&mut self, desired: &[InstanceSpec], rows: [Row; N]) {
            for (at, instances, ready, expected) in rows {
                assert_eq!(
                    self.at(at, desired, &instances, &ready),
                    expected,
                    "at {at}s"
                );
            }
        }
    }

    #[test]
    fn first_start_starts_every_replica_once() {
        let (r0, r1) = (app(1, 0, 0), app(1, 1, 0));
        let mut planner = Planner::new();
        let desired = [r0.clone(), r1.clone()];
        let cases: [Row; 3] = [
            (
                0.0,
                vec![],
                vec![],
                vec!["start app-1-v1-r0-g0", "start app-1-v1-r1-g0"],
            ),
            (1.0, vec![running(&r0), running(&r1)], vec![], vec![]),
            (
                2.0,
                vec![running(&r0), running(&r1)],
                vec![&r0, &r1],
                vec![],
            ),
        ];
        planner.table(&desired, cases);
    }

    #[test]
    fn a_rolling_update_removes_the_old_version_only_after_the_new_one_answers_and_drains() {
        let (old, new) = (app(1, 0, 0), app(2, 0, 0));
        let mut planner = Planner::new();
        let desired = [new.clone()];
        let both = vec![running(&old), running(&new)];
        let cases: [Row; 5] = [
            (
                0.0,
                vec![running(&old)],
                vec![&old],
                vec!["start app-1-v2-r0-g0"],
            ),
            // The new version runs but does not answer yet: the old one serves.
            (1.0, both.clone(), vec![&old], vec![]),
            // It answers: traffic moves, and the old one drains first.
            (2.0, both.clone(), vec![&old, &new], vec![]),
            (2.5, both.clone(), vec![&old, &new], vec![]),
            (
                3.1,
                both.clone(),
                vec![&old, &new],
                vec!["remove c-app-1-v1-r0-g0"],
            ),
        ];
        planner.table(&desired, cases);
    }

    #[test]
    fn routes_follow_the_new_version_once_all_of_it_answers() {
        let (old, new) = (app(1, 0, 0), app(2, 0, 0));
        let instances = [running(&old), running(&new)];
        let route = |ready: &[&InstanceSpec]| {
            let ready: BTreeSet<Identity> = ready.iter().map(|s| s.identity()).collect();
            let table = route_table(std::slice::from_ref(&new), &instances, &ready);
            table.get(&AppId(1)).cloned().unwrap_or_default()
        };
        assert_eq!(route(&[&old]), at(1));
        assert_eq!(route(&[&old, &new]), at(2));
        assert_eq!(route(&[&new]), at(2));
        assert_eq!(route(&[]), Vec::<SocketAddr>::new());
    }

    #[test]
    fn a_crashing_app_is_replaced_with_growing_backoff_and_reported_after_three_failures() {
        let spec = app(1, 0, 0);
        let desired = [spec.clone()];
        let dead = [exited(&spec, 1)];
        let mut planner = Planner::new();
        let replace = vec!["replace app-1-v1-r0-g0".to_string()];
        // Replaced at once, then after 1 s, then after 2 s more.
        assert_eq!(planner.at(0.0, &desired, &dead, &[]), replace);
        assert_eq!(planner.at(0.5, &desired, &dead, &[]), Vec::<String>::new());
        assert_eq!(planner.at(1.0, &desired, &dead, &[]), replace);
        assert_eq!(planner.at(2.5, &desired, &dead, &[]), Vec::<String>::new());
        assert!(planner.memory.failing().is_empty());
        assert_eq!(planner.at(3.0, &desired, &dead, &[]), replace);
        let failing = planner.memory.failing();
        assert_eq!(
            failing,
            vec![(spec.identity(), "exited with code 1".to_string())]
        );
        // A start that fails counts the same way.
        planner.memory.record_failure(
            spec.identity(),
            planner.start + Duration::from_secs(3),
            "image example/app: not found".into(),
        );
        assert_eq!(
            planner.memory.failing()[0].1,
            "image example/app: not found"
        );
        assert_eq!(
            planner.memory.next_attempt(&spec.identity()),
            Some(planner.start + Duration::from_secs(3 + 8))
        );
        // A minute of steady running forgives it.
        let up = [running(&spec)];
        assert_eq!(
            planner.at(20.0, &desired, &up, &[&spec]),
            Vec::<String>::new()
        );
        assert!(!planner.memory.failing().is_empty());
        planner.at(80.0, &desired, &up, &[&spec]);
        assert!(planner.memory.failing().is_empty());
    }

    #[test]
    fn the_engine_is_given_only_as_many_actions_as_there_is_room_for() {
        let specs: Vec<InstanceSpec> = (0..10).map(|replica| app(1, replica, 0)).collect();
        let mut planner = Planner::new();
        planner.room = 4;
        let first = planner.at(0.0, &specs, &[], &[]);
        assert_eq!(first.len(), 4, "{first:?}");
        // The next pass (the first four running) starts the next four.
        let up: Vec<Instance> = specs[..4].iter().map(running).collect();
        let ready: Vec<&InstanceSpec> = specs[..4].iter().collect();
        let second = planner.at(1.0, &specs, &up, &ready);
        assert_eq!(
            second,
            specs[4..8]
                .iter()
                .map(|s| format!("start {}", s.name()))
                .collect::<Vec<_>>()
        );
        // A crash held back for want of room is not counted as a failure.
        planner.room = 0;
        let mut crashed = up.clone();
        crashed[0] = exited(&specs[0], 1);
        assert!(planner.at(2.0, &specs, &crashed, &ready[1..]).is_empty());
        assert!(planner.memory.next_attempt(&specs[0].identity()).is_none());
    }

    #[test]
    fn a_container_created_but_never_started_is_replaced_after_a_grace() {
        let spec = app(1, 0, 0);
        let desired = [spec.clone()];
        let created = [instance(&spec, InstanceState::Created)];
        let mut planner = Planner::new();
        assert_eq!(
            planner.at(0.0, &desired, &created, &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            planner.at(59.0, &desired, &created, &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            planner.at(60.0, &desired, &created, &[]),
            vec!["replace app-1-v1-r0-g0"]
        );
    }

    #[test]
    fn a_task_run_the_engine_left_created_is_replaced_after_the_grace() {
        let run = task_run(600);
        let desired = [run.clone()];
        let created = [instance(&run, InstanceState::Created)];
        let mut planner = Planner::new();
        assert_eq!(
            planner.at(0.0, &desired, &created, &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            planner.at(60.0, &desired, &created, &[]),
            vec![format!("replace {}", run.name())]
        );
    }

    #[test]
    fn a_task_run_starts_once_is_killed_at_its_timeout_and_its_result_is_kept() {
        let run = task_run(10);
        let desired = [run.clone()];
        let mut planner = Planner::new();
        let kill = vec![format!("kill {:?}", run.workload)];
        let cases: [(f64, Vec<Instance>, Vec<String>); 5] = [
            (0.0, vec![], vec![format!("start {}", run.name())]),
            (1.0, vec![running(&run)], vec![]),
            (10.5, vec![running(&run)], vec![]),
            (11.5, vec![running(&run)], kill),
            // Exited (killed or done): kept as the run's record, never restarted.
            (12.0, vec![exited(&run, 137)], vec![]),
        ];
        for (at, instances, expected) in cases {
            assert_eq!(
                planner.at(at, &desired, &instances, &[]),
                expected,
                "at {at}s"
            );
        }
        // Once the chain lets go of the run, its record goes.
        let kept = [exited(&run, 137)];
        assert_eq!(
            planner.at(13.0, &[], &kept, &[]),
            vec![format!("remove c-{}", run.name())]
        );
    }

    #[test]
    fn new_secrets_start_a_new_generation_that_replaces_the_old_once_it_answers() {
        let (old, rotated) = (app(1, 0, 3), app(1, 0, 4));
        let desired = [rotated.clone()];
        let mut planner = Planner::new();
        let both = vec![running(&old), running(&rotated)];
        assert_eq!(
            planner.at(0.0, &desired, &[running(&old)], &[&old]),
            vec!["start app-1-v1-r0-g4"]
        );
        assert_eq!(
            planner.at(1.0, &desired, &both, &[&old]),
            Vec::<String>::new()
        );
        assert_eq!(
            planner.at(2.0, &desired, &both, &[&old, &rotated]),
            Vec::<String>::new()
        );
        assert_eq!(
            planner.at(3.5, &desired, &both, &[&old, &rotated]),
            vec!["remove c-app-1-v1-r0-g3"]
        );
    }

    #[test]
    fn containers_nobody_wants_are_removed_at_once() {
        let (stopped_app, other) = (app(1, 0, 0), task_run(60));
        let mut planner = Planner::new();
        let instances = [running(&stopped_app), exited(&other, 0)];
        assert_eq!(
            planner.at(0.0, &[], &instances, &[&stopped_app]),
            vec![
                "remove c-app-1-v1-r0-g0".to_string(),
                format!("remove c-{}", other.name())
            ]
        );
    }

    #[test]
    fn nothing_is_planned_for_what_an_earlier_action_still_works_on() {
        let (slow, dead) = (app(1, 0, 0), app(1, 1, 0));
        let desired = [slow.clone(), dead.clone()];
        let instances = [exited(&dead, 1)];
        let busy = Busy {
            identities: BTreeSet::from([slow.identity()]),
            containers: BTreeSet::from([format!("c-{}", dead.name())]),
        };
        let observed = Observed {
            instances: &instances,
            ready: &BTreeSet::new(),
            busy: &busy,
            room: usize::MAX,
            now: Instant::now(),
        };
        let mut memory = Memory::default();
        assert_eq!(plan(&mut memory, &desired, &observed), Vec::new());
        // Not counted as a failure either: nothing was tried.
        assert!(memory.next_attempt(&dead.identity()).is_none());
    }
}
