//! Applies the planner's actions to the engine, concurrently, each within its own deadline: a
//! slow image pull or a container that ignores SIGTERM holds up only itself, never the other
//! tenants' starts, the ingress routes or the work reports. A pass waits for its actions at
//! most [`PASS_BUDGET`]; what is still running then finishes in the background, is reported
//! in a later pass, and nothing new is planned for it meanwhile.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

use super::plan::{Action, Busy};
use crate::backend::{Backend, BackendError, Identity, InstanceSpec};

/// How long a removed container gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long pulling an image may take: a model server's image may be tens of gigabytes.
pub const PULL_DEADLINE: Duration = Duration::from_secs(3600);
/// How long creating and starting a container may take, its image ready.
pub const START_DEADLINE: Duration = Duration::from_secs(120);
/// How long killing a task run may take.
pub const KILL_DEADLINE: Duration = Duration::from_secs(30);
/// How long removing a container may take.
pub const REMOVE_DEADLINE: Duration = STOP_GRACE.saturating_add(Duration::from_secs(30));
/// How long a pass waits for the actions it started.
pub const PASS_BUDGET: Duration = Duration::from_secs(5);
/// How many lines of a dead container's output are kept to explain its death.
const LAST_LINES: usize = 20;

/// What an action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The instance acted on.
    pub identity: Identity,
    /// What was done: `start`, `replace`, `kill` or `remove`.
    pub what: &'static str,
    /// Whether it worked, or why not.
    pub result: Result<(), String>,
    /// What a replaced container printed last.
    pub last_output: Option<String>,
}

struct Running {
    identity: Identity,
    container: Option<String>,
    what: &'static str,
}

/// The actions in flight.
#[derive(Debug)]
pub struct Executor<B: Backend> {
    backend: B,
    /// Starts, replacements and kills: a pass waits for them, within its budget.
    foreground: JoinSet<Outcome>,
    /// Removals: never waited for.
    aside: JoinSet<Outcome>,
    running: BTreeMap<Id, (Identity, Option<String>, &'static str)>,
    busy: Busy,
}

impl<B: Backend> Executor<B> {
    /// An executor over `backend`.
    pub fn new(backend: B) -> Executor<B> {
        Executor {
            backend,
            foreground: JoinSet::new(),
            aside: JoinSet::new(),
            running: BTreeMap::new(),
            busy: Busy::default(),
        }
    }

    /// What the actions in flight work on.
    pub fn busy(&self) -> &Busy {
        &self.busy
    }

    /// How many actions are in flight.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// Starts `actions`, each in its own task under its deadline.
    pub fn launch(&mut self, actions: Vec<Action>) {
        for action in actions {
            if self.busy.overlaps(&action) {
                continue;
            }
            let running = Running {
                identity: action.identity(),
                container: action.container().map(str::to_string),
                what: match action {
                    Action::Start(_) => "start",
                    Action::Replace { .. } => "replace",
                    Action::Kill { .. } => "kill",
                    Action::Remove { .. } => "remove",
                },
            };
            if matches!(action, Action::Start(_) | Action::Replace { .. }) {
                self.busy.identities.insert(running.identity);
            }
            if let Some(container) = &running.container {
                self.busy.containers.insert(container.clone());
            }
            let backend = self.backend.clone();
            let (identity, what) = (running.identity, running.what);
            let task = async move {
                let mut last_output = None;
                let result = apply(&backend, action, &mut last_output).await;
                Outcome {
                    identity,
                    what,
                    result,
                    last_output,
                }
            };
            let handle = if running.what == "remove" {
                self.aside.spawn(task)
            } else {
                self.foreground.spawn(task)
            };
            self.running.insert(
                handle.id(),
                (running.identity, running.container, running.what),
            );
        }
    }

    /// The outcomes of actions finished since the last call, waiting at most `budget` for the
    /// starts, replacements and kills still running.
    pub async fn settle(&mut self, budget: Duration) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let until = tokio::time::Instant::now() + budget;
        while !self.foreground.is_empty() {
            match tokio::time::timeout_at(until, self.foreground.join_next_with_id()).await {
                Ok(Some(joined)) => outcomes.extend(self.finished(joined)),
                Ok(None) | Err(_) => break,
            }
        }
        while let Some(joined) = self.aside.try_join_next_with_id() {
            outcomes.extend(self.finished(joined));
        }
        outcomes
    }

    /// The outcome of a joined task, its work no longer busy. Every task is entered in
    /// `running` before it can be joined; one that is not is none of this executor's.
    fn finished(
        &mut self,
        joined: Result<(Id, Outcome), tokio::task::JoinError>,
    ) -> Option<Outcome> {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let (identity, container, what) = self.running.remove(&id)?;
        self.busy.identities.remove(&identity);
        if let Some(container) = container {
            self.busy.containers.remove(&container);
        }
        Some(match joined {
            Ok((_, outcome)) => outcome,
            Err(e) => Outcome {
                identity,
                what,
                result: Err(format!("{what} failed: {e}")),
                last_output: None,
            },
        })
    }
}

impl<B: Backend> Drop for Executor<B> {
    fn drop(&mut self) {
        // A removal under way finishes even when the worker stops: nothing would resume it.
        self.aside.detach_all();
    }
}

/// Runs `step` within `deadline`, saying what did not finish in time.
async fn within<T>(
    what: &str,
    deadline: Duration,
    step: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, step).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{what} did not finish within {}s",
            deadline.as_secs()
        )),
    }
}

async fn start<B: Backend>(backend: &B, spec: &InstanceSpec) -> Result<(), String> {
    let image = within(
        "pulling the image",
        PULL_DEADLINE,
        backend.prepare_image(&spec.container.image),
    )
    .await?;
    within("starting", START_DEADLINE, backend.start(spec, &image))
        .await
        .map(drop)
}

async fn apply<B: Backend>(
    backend: &B,
    action: Action,
    last_output: &mut Option<String>,
) -> Result<(), String> {
    match action {
        Action::Start(spec) => start(backend, &spec).await,
        Action::Replace { spec, dead } => {
            // What it printed before dying explains why: keep it before removing it.
            *last_output = Some(
                within(
                    "reading its logs",
                    KILL_DEADLINE,
                    backend.logs(&dead, LAST_LINES),
                )
                .await
                .map(|lines| lines.iter().map(|l| format!("{}\n", l.text)).collect())
                .unwrap_or_default(),
            );
            let removed = backend.remove(&dead, STOP_GRACE);
            within("removing the dead container", REMOVE_DEADLINE, removed).await?;
            start(backend, &spec).await
        }
        Action::Kill { container, .. } => {
            within("kill", KILL_DEADLINE, backend.kill(&container)).await
        }
        Action::Remove { container, .. } => {
            within(
                "remove",
                REMOVE_DEADLINE,
                backend.remove(&container, STOP_GRACE),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use wetee_types::codec::{BoundedString, BoundedVec};
    use wetee_types::manifest::{ContainerSpec, ImageRef};
    use wetee_types::{AppId, Resources, Workload};

    use super::*;
    use crate::backend::{Instance, InstanceState, LogLine, LogStream, Usage};

    /// An engine whose `slow/*` images never finish pulling and whose `broken/*` images do not
    /// exist; it records what it did.
    #[derive(Debug, Clone, Default)]
    struct FakeEngine {
        done: Arc<Mutex<Vec<String>>>,
    }

    impl FakeEngine {
        fn did(&self, what: String) {
            self.done.lock().unwrap().push(what);
        }
    }

    impl Backend for FakeEngine {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn prepare_image(&self, image: &ImageRef) -> Result<String, BackendError> {
            let name = image.repository.as_str().to_string();
            if name.starts_with("slow/") {
                std::future::pending::<()>().await;
            }
            if name.starts_with("broken/") {
                return Err(BackendError::Image {
                    image: name,
                    reason: "not found".into(),
                });
            }
            Ok(name)
        }

        async fn list(&self) -> Result<Vec<Instance>, BackendError> {
            Ok(Vec::new())
        }

        async fn start(&self, spec: &InstanceSpec, _image: &str) -> Result<Instance, BackendError> {
            self.did(format!("started {}", spec.name()));
            Ok(Instance {
                id: spec.name(),
                name: spec.name(),
                identity: spec.identity(),
                state: InstanceState::Running,
                endpoints: Default::default(),
            })
        }

        async fn kill(&self, id: &str) -> Result<(), BackendError> {
            self.did(format!("killed {id}"));
            Ok(())
        }

        async fn remove(&self, id: &str, grace: Duration) -> Result<(), BackendError> {
            // `old-*` containers ignore SIGTERM and are slow to go even then.
            if id.starts_with("old-") {
                tokio::time::sleep(grace * 2).await;
            }
            self.did(format!("removed {id}"));
            Ok(())
        }

        async fn take_output(
            &self,
            _: &str,
            _: bool,
        ) -> Result<(Vec<(String, LogLine)>, u64), BackendError> {
            Ok((Vec::new(), 0))
        }

        async fn run_times(&self, _: &str) -> Result<Option<(u64, u64)>, BackendError> {
            Ok(None)
        }

        async fn logs(&self, id: &str, _tail: usize) -> Result<Vec<LogLine>, BackendError> {
            Ok(vec![LogLine {
                stream: LogStream::Stderr,
                text: format!("{id}: panic: no config"),
            }])
        }

        async fn usage(&self, _: &str) -> Result<Usage, BackendError> {
            Ok(Usage::default())
        }
    }

    fn spec(app: u64, image: &str) -> InstanceSpec {
        InstanceSpec {
            workload: Workload::App { app: AppId(app) },
            version: 1,
            replica: 0,
            generation: 0,
            container: ContainerSpec {
                image: ImageRef {
                    repository: BoundedString::try_new(image).unwrap(),
                    digest: [1; 32],
                },
                command: BoundedVec::default(),
                args: BoundedVec::default(),
                env: BoundedVec::default(),
                secrets: BoundedVec::default(),
                ports: BoundedVec::default(),
                resources: Resources::ZERO,
                gpu_model: None,
                security: Default::default(),
            },
            health: None,
            timeout: None,
            secrets: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_pull_holds_up_only_itself_until_its_deadline() {
        let engine = FakeEngine::default();
        let mut executor = Executor::new(engine.clone());
        let (slow, fast, broken, crashed) = (
            spec(1, "slow/model"),
            spec(2, "example/web"),
            spec(3, "broken/app"),
            spec(4, "example/api"),
        );
        executor.launch(vec![
            Action::Start(Box::new(slow.clone())),
            Action::Start(Box::new(fast.clone())),
            Action::Start(Box::new(broken.clone())),
            Action::Replace {
                spec: Box::new(crashed.clone()),
                dead: "dead-4".into(),
            },
            Action::Remove {
                container: "old-5".into(),
                identity: spec(5, "example/old").identity(),
            },
        ]);
        let started = tokio::time::Instant::now();
        let mut outcomes = executor.settle(PASS_BUDGET).await;
        assert_eq!(
            started.elapsed(),
            PASS_BUDGET,
            "the pass waited its budget, no more"
        );
        outcomes.sort_by_key(|o| o.identity);
        let results: Vec<(&str, Result<(), String>)> = outcomes
            .iter()
            .map(|o| (o.what, o.result.clone()))
            .collect();
        // The fast start, the failed one and the replacement are reported; the slow pull and
        // the slow removal go on, and stay busy.
        assert_eq!(
            results,
            vec![
                ("start", Ok(())),
                ("start", Err("image broken/app: not found".into())),
                ("replace", Ok(())),
            ]
        );
        assert!(executor.busy().containers.contains("old-5"));
        assert_eq!(
            outcomes[2].last_output.as_deref(),
            Some("dead-4: panic: no config\n")
        );
        assert!(executor.busy().identities.contains(&slow.identity()));
        assert!(!executor.busy().identities.contains(&fast.identity()));
        // Launching it again while it runs does nothing.
        executor.launch(vec![Action::Start(Box::new(slow.clone()))]);
        assert_eq!(executor.running.len(), 2);

        // At its deadline it fails, and is free to be tried again.
        tokio::time::sleep(PULL_DEADLINE).await;
        let mut outcomes = executor.settle(PASS_BUDGET).await;
        outcomes.sort_by_key(|o| o.identity);
        assert_eq!(outcomes.len(), 2);
        assert_eq!((outcomes[1].what, &outcomes[1].result), ("remove", &Ok(())));
        assert_eq!(
            outcomes[0].result,
            Err(format!(
                "pulling the image did not finish within {}s",
                PULL_DEADLINE.as_secs()
            ))
        );
        assert!(executor.busy().identities.is_empty());
        assert!(executor.busy().containers.is_empty());
        let done = engine.done.lock().unwrap().clone();
        assert!(done.contains(&"removed dead-4".to_string()), "{done:?}");
        assert!(done.contains(&"removed old-5".to_string()), "{done:?}");
    }
}
