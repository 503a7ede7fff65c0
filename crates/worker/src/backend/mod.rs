//! Where workloads run. The reconciler speaks only this interface; each backend (Docker
//! Engine API today, Kubernetes later) maps it onto its own objects, and labels every object it
//! creates with the workload, version and replica, so that the worker's view can always be
//! rebuilt from the backend after a restart.

pub mod confinement;
pub mod docker;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use wetee_types::manifest::{ContainerSpec, HealthCheck, ImageRef};
use wetee_types::{AppId, TaskId, Workload};

/// Label on every object a worker creates; its value is the worker's scope (its identity key),
/// so that workers sharing an engine, or a worker and its predecessor on another chain, never
/// touch each other's containers.
pub const MANAGED_LABEL: &str = "wetee.managed";
/// Label: the app's id.
pub const APP_LABEL: &str = "wetee.app";
/// Label: the task's id.
pub const TASK_LABEL: &str = "wetee.task";
/// Label: the task run's number.
pub const RUN_LABEL: &str = "wetee.run";
/// Label: the app or task version.
pub const VERSION_LABEL: &str = "wetee.version";
/// Label: the replica's index.
pub const REPLICA_LABEL: &str = "wetee.replica";
/// Label: how many restarts the owner asked for before this instance was created.
pub const GENERATION_LABEL: &str = "wetee.generation";

/// What went wrong in the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend could not be reached.
    #[error("cannot reach the container engine: {0}")]
    Unreachable(String),
    /// The image is neither present nor pullable.
    #[error("image {image}: {reason}")]
    Image {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// The engine refused an operation.
    #[error("{operation}: {reason}")]
    Engine {
        /// What was attempted.
        operation: String,
        /// The engine's answer.
        reason: String,
    },
    /// No such instance.
    #[error("no instance {0}")]
    NotFound(String),
    /// Secrets cannot be handed over safely: the directory is not in memory, a name is not
    /// valid, or a file cannot be written. Never carries a secret's value.
    #[error("secrets: {0}")]
    Secrets(String),
}

/// A decrypted secret, handed to the container as the file `/run/secrets/<name>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// The file's name, an environment-variable-like name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub name: String,
    /// The plaintext, wiped from memory when dropped.
    pub value: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretFile")
            .field("name", &self.name)
            .field("value", &format_args!("<redacted>"))
            .finish()
    }
}

/// One container to run: a replica of an app version, or a task run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The workload.
    pub workload: Workload,
    /// The app or task version.
    pub version: u32,
    /// The replica (0 for task runs).
    pub replica: u32,
    /// Restarts the owner asked for (an app's `restarts`): a new generation replaces the old.
    pub generation: u32,
    /// What to run.
    pub container: ContainerSpec,
    /// How to tell it is ready and healthy (apps only).
    pub health: Option<HealthCheck>,
    /// A task run is killed after this long.
    pub timeout: Option<Duration>,
    /// The owner's decrypted secrets. Files, not environment variables: an engine keeps a
    /// container's environment in its configuration on disk.
    pub secrets: Vec<SecretFile>,
}

impl InstanceSpec {
    /// The instance's name within its worker's scope: deterministic, so creating it twice is
    /// caught by the engine.
    pub fn name(&self) -> String {
        match self.workload {
            Workload::App { app } => {
                format!(
                    "app-{app}-v{}-r{}-g{}",
                    self.version, self.replica, self.generation
                )
            }
            Workload::TaskRun { task, run } => {
                format!("task-{task}-run{run}-v{}", self.version)
            }
        }
    }

    /// The labels that identify it (the backend adds its scope).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (VERSION_LABEL.to_string(), self.version.to_string()),
            (REPLICA_LABEL.to_string(), self.replica.to_string()),
            (GENERATION_LABEL.to_string(), self.generation.to_string()),
        ]);
        match self.workload {
            Workload::App { app } => {
                labels.insert(APP_LABEL.into(), app.to_string());
            }
            Workload::TaskRun { task, run } => {
                labels.insert(TASK_LABEL.into(), task.to_string());
                labels.insert(RUN_LABEL.into(), run.to_string());
            }
        }
        labels
    }
}

/// Which workload, version, replica and generation an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    /// The workload.
    pub workload: Workload,
    /// The version.
    pub version: u32,
    /// The replica.
    pub replica: u32,
    /// The generation.
    pub generation: u32,
}

impl InstanceSpec {
    /// What the instance will be known as.
    pub fn identity(&self) -> Identity {
        Identity {
            workload: self.workload,
            version: self.version,
            replica: self.replica,
            generation: self.generation,
        }
    }
}

/// The identity read back from an object's labels.
pub fn identity_from_labels(labels: &BTreeMap<String, String>) -> Option<Identity> {
    let number = |key: &str| labels.get(key)?.parse::<u64>().ok();
    let version = u32::try_from(number(VERSION_LABEL)?).ok()?;
    let replica = u32::try_from(number(REPLICA_LABEL)?).ok()?;
    let generation = u32::try_from(number(GENERATION_LABEL).unwrap_or(0)).ok()?;
    let workload = if let Some(app) = number(APP_LABEL) {
        Workload::App { app: AppId(app) }
    } else {
        Workload::TaskRun {
            task: TaskId(number(TASK_LABEL)?),
            run: u32::try_from(number(RUN_LABEL)?).ok()?,
        }
    };
    Some(Identity {
        workload,
        version,
        replica,
        generation,
    })
}

/// Where an instance is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Ended with this exit code.
    Exited {
        /// The exit code.
        code: i64,
    },
    /// Anything else the engine reports (paused, restarting, dead).
    Other(String),
}

/// A container the backend runs for this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The engine's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Which workload, version, replica and generation it is.
    pub identity: Identity,
    /// Its state.
    pub state: InstanceState,
    /// Each TCP port of the container, with the address the worker reaches it at (the
    /// container's own, on its network). Empty while it is not running.
    pub endpoints: BTreeMap<u16, std::net::SocketAddr>,
}

/// Resource use of an instance since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time, in nanoseconds.
    pub cpu_nanos: u64,
    /// Memory in use now, in bytes.
    pub memory_bytes: u64,
    /// Bytes received over the network.
    pub network_rx_bytes: u64,
    /// Bytes sent over the network.
    pub network_tx_bytes: u64,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of an instance's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its stream.
    pub stream: LogStream,
    /// The text, without the trailing newline.
    pub text: String,
}

/// A place to run containers.
pub trait Backend: Clone + Send + Sync + 'static {
    /// The backend's name (`docker`).
    fn name(&self) -> &'static str;

    /// Makes `image` available locally (a present image is used as is, by its digest; otherwise
    /// it is pulled by digest) and returns the reference to run.
    fn prepare_image(
        &self,
        image: &ImageRef,
    ) -> impl Future<Output = Result<String, BackendError>> + Send;

    /// Every instance this worker manages.
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, BackendError>> + Send;

    /// Creates and starts `spec` from the prepared `image`.
    fn start(
        &self,
        spec: &InstanceSpec,
        image: &str,
    ) -> impl Future<Output = Result<Instance, BackendError>> + Send;

    /// Kills a running instance (SIGKILL), keeping it and its logs.
    fn kill(&self, id: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stops an instance (SIGTERM, then SIGKILL after `grace`) and removes it with its data.
    fn remove(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The lines an instance wrote since the last call (each with the RFC 3339 time it was
    /// read), and how many were dropped meanwhile because the worker fell behind. For an
    /// instance that has `finished`, its last lines are waited for.
    fn take_output(
        &self,
        id: &str,
        finished: bool,
    ) -> impl Future<Output = Result<(Vec<(String, LogLine)>, u64), BackendError>> + Send;

    /// When an ended instance started and finished, in Unix milliseconds.
    fn run_times(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(u64, u64)>, BackendError>> + Send;

    /// The last `tail` lines of an instance's output (while it is not removed).
    fn logs(
        &self,
        id: &str,
        tail: usize,
    ) -> impl Future<Output = Result<Vec<LogLine>, BackendError>> + Send;

    /// Resource use of a running instance.
    fn usage(&self, id: &str) -> impl Future<Output = Result<Usage, BackendError>> + Send;
}
