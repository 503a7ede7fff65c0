//! The Docker Engine API backend (through `bollard`). It works with Docker and with Podman's
//! Docker-compatible service. Every container is labelled (see [`super::MANAGED_LABEL`]),
//! confined (see [`super::confinement`]) and attached to its workload's own network. It
//! publishes no port on the host: the worker reaches it at its address on that network, which
//! only the worker's machine routes to (the worker's ingress is the way in). Publishing would
//! leave the engine's port-forwarding rules in the kernel, and Podman with CNI sometimes leaves
//! them behind when a container dies at once: a forgotten rule then captures that port on
//! 127.0.0.1 for good, whoever listens there later.
//!
//! Output is not logged by the engine (log driver `none`): the worker reads it from an attach
//! stream per container ([`output`]) and keeps it only sealed to the owner.
//!
//! Decrypted secrets reach a container as files: `<secrets_dir>/<container name>/<NAME>` on the
//! host, mounted read-only at `/run/secrets`, and deleted with the container. Never as
//! environment variables, which the engine writes into the container's configuration on disk;
//! and `secrets_dir` must be a tmpfs or ramfs, so the plaintext never reaches a disk either.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, Mount, MountType,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt as _;
use wetee_types::manifest::{Egress, ImageRef, Protocol};

use super::confinement::{Confinement, DEFAULT_PIDS_LIMIT, Engine};
use super::{
    Backend, BackendError, Instance, InstanceSpec, InstanceState, LogLine, MANAGED_LABEL,
    SecretFile, Usage, identity_from_labels,
};

mod egress;
mod network;
mod output;

/// The label listing a container's TCP ports (`8080,9000`): the engine lists only published
/// ports, and these are not published.
const PORTS_LABEL: &str = "wetee.ports";

/// Where the worker reaches each TCP port of the container `summary` describes: its address on
/// its own network (the one its label names, else the only one). Empty while it has none (not
/// running). Containers made before the ports label list their published ports instead.
fn endpoints_of(
    summary: &bollard::models::ContainerSummary,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<u16, std::net::SocketAddr> {
    let networks = summary
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref());
    let address = networks.and_then(|networks| {
        let endpoint = match labels.get(network::NETWORK_LABEL) {
            Some(name) => networks.get(name),
            None => networks.values().next(),
        }?;
        endpoint
            .ip_address
            .as_deref()
            .filter(|ip| !ip.is_empty())?
            .parse::<std::net::IpAddr>()
            .ok()
    });
    let Some(address) = address else {
        return BTreeMap::new();
    };
    let ports: BTreeSet<u16> = match labels.get(PORTS_LABEL) {
        Some(listed) => listed
            .split(',')
            .filter_map(|port| port.trim().parse().ok())
            .collect(),
        None => summary
            .ports
            .iter()
            .flatten()
            .map(|port| port.private_port)
            .collect(),
    };
    ports
        .into_iter()
        .map(|port| (port, std::net::SocketAddr::new(address, port)))
        .collect()
}

pub use output::{MAX_PENDING_BYTES, RECENT_LINES};

/// Seconds to wait for the engine to answer.
const TIMEOUT_SECS: u64 = 120;

/// A Docker-compatible engine.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
    /// The engine's Unix socket, for what only Podman's own API tells.
    socket: PathBuf,
    scope: String,
    /// Checked to be in memory; `None` until [`DockerBackend::with_secrets_dir`].
    secrets_dir: Option<PathBuf>,
    confinement: Confinement,
    /// Names of containers between their secrets being written and the engine knowing them:
    /// a sweep leaves their directories alone.
    creating: Arc<Mutex<BTreeSet<String>>>,
    /// Containers' output, as the worker reads it.
    outputs: output::Outputs,
    /// The rules denying egress to the workloads that asked.
    egress: Arc<egress::EgressFirewall>,
    /// Exit codes of ended containers (a listing does not carry them, and they never change):
    /// a task run's container is kept as its record, and is not inspected again each pass.
    exit_codes: Arc<Mutex<BTreeMap<String, i64>>>,
}

/// Where a container finds its secrets.
const SECRETS_MOUNT: &str = "/run/secrets";

fn engine(operation: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> BackendError {
    let operation = operation.into();
    move |e| BackendError::Engine {
        operation,
        reason: e.to_string(),
    }
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The socket of a Docker-compatible engine running on this machine: `$DOCKER_HOST` if it is a
/// Unix socket, else Podman's rootful or rootless socket, else Docker's.
pub fn local_engine_socket() -> Option<std::path::PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && let Some(path) = host.strip_prefix("unix://")
    {
        candidates.push(std::path::PathBuf::from(path));
    }
    candidates.push("/run/podman/podman.sock".into());
    if let Ok(runtime) = std::env::var("XDG_RUNTIME_DIR") {
        candidates.push(std::path::Path::new(&runtime).join("podman/podman.sock"));
    }
    candidates.push("/var/run/docker.sock".into());
    candidates.into_iter().find(|path| path.exists())
}

impl DockerBackend {
    /// Connects to the engine at `socket` (a Unix socket path such as
    /// `/run/podman/podman.sock`), or to the environment's default (`DOCKER_HOST`, else
    /// `/var/run/docker.sock`) when `None`, and checks that it answers.
    ///
    /// `scope` (the worker's identity) labels everything this backend creates, and it sees
    /// nothing else.
    pub async fn connect(socket: Option<&str>, scope: &str) -> Result<DockerBackend, BackendError> {
        let docker = match socket {
            Some(path) => {
                let path = path.strip_prefix("unix://").unwrap_or(path);
                Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let socket = PathBuf::from(match socket {
            Some(path) => path.strip_prefix("unix://").unwrap_or(path).to_string(),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .and_then(|host| host.strip_prefix("unix://").map(str::to_string))
                .unwrap_or_else(|| "/var/run/docker.sock".to_string()),
        });
        let version = docker
            .version()
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let engine = version
            .components
            .as_ref()
            .and_then(|c| c.first())
            .map_or(Engine::Docker, |c| Engine::from_component(&c.name));
        let info = docker
            .info()
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let security = |name: &str| {
            info.security_options
                .iter()
                .flatten()
                .any(|option| option.contains(&format!("name={name}")))
        };
        let seccomp = security("seccomp");
        if !seccomp {
            tracing::warn!(
                "the container engine reports no seccomp support: containers run without a \
                 system call filter"
            );
        }
        let disk_quota = caps_disk(
            info.driver.as_deref().unwrap_or_default(),
            info.driver_status.as_deref().unwrap_or_default(),
        );
        let backend = DockerBackend {
            docker,
            socket,
            scope: scope.to_string(),
            secrets_dir: None,
            creating: Arc::default(),
            outputs: output::Outputs::default(),
            egress: Arc::default(),
            exit_codes: Arc::default(),
            confinement: Confinement {
                engine,
                pids_limit: DEFAULT_PIDS_LIMIT,
                rootful: !security("rootless"),
                disk_quota,
            },
        };
        backend.check_engine_isolates().await?;
        if let Err(e) = backend.sweep_egress_rules().await {
            tracing::warn!(error = %e, "cannot sweep egress rules of networks that are gone");
        }
        Ok(backend)
    }

    /// Caps each container at `limit` processes.
    pub fn with_pids_limit(mut self, limit: u32) -> DockerBackend {
        self.confinement.pids_limit = limit;
        self
    }

    /// Whether the engine caps each container's writable layer at its manifest's `disk_gib`.
    /// Where it cannot, the worker offers no disk.
    pub fn caps_disk(&self) -> bool {
        self.confinement.disk_quota
    }

    /// Writes containers' secrets under `dir`, after checking that it is on a tmpfs or ramfs
    /// (refused otherwise) and creating it with mode 0700 if missing. Without it, an instance
    /// with secrets is refused.
    pub fn with_secrets_dir(mut self, dir: &Path) -> Result<DockerBackend, BackendError> {
        self.secrets_dir = Some(prepare_secrets_dir(dir)?);
        Ok(self)
    }

    fn lock_exit_codes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, i64>> {
        // Entries are inserted and removed whole: a panic cannot leave one half-written.
        self.exit_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What every container and network name of this worker starts with.
    fn name_prefix(&self) -> String {
        let scope: String = self.scope.chars().take(12).collect();
        format!("wetee-{scope}-")
    }

    /// Removes this worker's secrets directories that no container of it has: left by a worker
    /// killed between writing them and creating or removing their container, or by a container
    /// the engine lost. Other workers' directories and those of containers being created are
    /// left alone. How many it removed.
    fn sweep_secrets(&self, containers: &BTreeSet<String>) -> usize {
        let Some(root) = &self.secrets_dir else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(root) else {
            return 0;
        };
        let prefix = self.name_prefix();
        let creating = self
            .creating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) || containers.contains(&name) || creating.contains(&name)
            {
                continue;
            }
            if let Some(dir) = self.instance_secrets_dir(&name)
                && delete_secrets(&dir).is_ok()
            {
                tracing::info!(container = %name, "removed the secrets of a container that is gone");
                removed += 1;
            }
        }
        removed
    }

    /// The directory of the container `name`'s secrets, if this backend has secrets.
    fn instance_secrets_dir(&self, name: &str) -> Option<PathBuf> {
        let root = self.secrets_dir.as_ref()?;
        // The name comes from the engine: it must not lead out of the secrets directory.
        let mut components = Path::new(name).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(_)), None) => Some(root.join(name)),
            _ => None,
        }
    }

    /// Writes `secrets` into a new directory for the container `name` and returns it.
    async fn write_secrets(
        &self,
        name: &str,
        secrets: &[SecretFile],
    ) -> Result<PathBuf, BackendError> {
        for secret in secrets {
            if !is_secret_name(&secret.name) {
                return Err(BackendError::Secrets(format!(
                    "{:?} is not a valid secret name ([A-Za-z_][A-Za-z0-9_]*)",
                    secret.name
                )));
            }
        }
        let dir = self.instance_secrets_dir(name).ok_or_else(|| {
            BackendError::Secrets(
                "no secrets directory: set `[backend] secrets_dir` to a tmpfs".into(),
            )
        })?;
        let io = |what: &str, e: std::io::Error| {
            BackendError::Secrets(format!("{what} {}: {e}", dir.display()))
        };
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(io("creating", e));
            }
            // Either the instance runs already (and keeps its files), or a worker stopped
            // between writing them and removing them.
            match self.docker.inspect_container(name, None).await {
                Ok(_) => {
                    return Err(BackendError::Engine {
                        operation: format!("creating {name}"),
                        reason: "a container with this name exists".into(),
                    });
                }
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(engine(format!("inspecting {name}"))(e)),
            }
            std::fs::remove_dir_all(&dir).map_err(|e| io("removing", e))?;
            std::fs::create_dir(&dir).map_err(|e| io("creating", e))?;
        }
        // Readable by any user in the container: on the host, the 0700 secrets directory
        // keeps everyone else out, and in the container only this instance sees it.
        let written = (|| -> std::io::Result<()> {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            for secret in secrets {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o444)
                    .open(dir.join(&secret.name))?;
                file.set_permissions(std::fs::Permissions::from_mode(0o444))?;
                file.write_all(&secret.value)?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => Ok(dir),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(io("writing secrets in", e))
            }
        }
    }

    /// Starts container `id` again if the engine left it `created` after a successful start.
    ///
    /// Podman 4's compatible service does that now and then when the start follows closely on
    /// an attach (as here, so that no output is missed): the start answers 204 and the
    /// container never runs. It is only asked again after a second without any change, and
    /// only while the engine records no start time: a container that is `created` and was
    /// never started has not run its program, so starting it again cannot run a task twice.
    async fn confirm_started(&self, id: &str) {
        for _ in 0..3 {
            let mut still_created = true;
            for _ in 0..10 {
                let state = self
                    .docker
                    .inspect_container(id, None)
                    .await
                    .ok()
                    .and_then(|inspected| inspected.state);
                if !state.as_ref().is_some_and(never_started) {
                    still_created = false;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !still_created {
                return;
            }
            tracing::debug!(
                container = id,
                "the engine left it created: starting it again"
            );
            let _ = self.docker.start_container(id, None).await;
        }
    }

    /// Where the engine keeps images and containers (`docker info`'s root directory).
    pub async fn storage_root(&self) -> Result<Option<PathBuf>, BackendError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        Ok(info.docker_root_dir.map(PathBuf::from))
    }

    /// The engine's name and version, such as `Podman Engine 4.3.1`.
    pub async fn describe(&self) -> Result<String, BackendError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let name = version
            .components
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "Docker Engine".into());
        Ok(format!(
            "{name} {}",
            version.version.unwrap_or_else(|| "?".into())
        ))
    }
}

/// A container name in [`DockerBackend::creating`] while this lives.
struct Creating<'a> {
    set: &'a Mutex<BTreeSet<String>>,
    name: String,
}

impl<'a> Creating<'a> {
    fn mark(set: &'a Mutex<BTreeSet<String>>, name: &str) -> Creating<'a> {
        set.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        Creating {
            set,
            name: name.to_string(),
        }
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

/// Whether an engine whose storage driver is `driver` (with `status`, `docker info`'s pairs) can
/// cap a container's writable layer: overlay only on XFS (mounted with project quotas, which
/// the engine checks when a container asks), or drivers with their own quotas.
fn caps_disk(driver: &str, status: &[Vec<String>]) -> bool {
    let backing = status
        .iter()
        .find(|pair| pair.first().is_some_and(|key| key == "Backing Filesystem"))
        .and_then(|pair| pair.get(1))
        .map(String::as_str);
    match driver {
        "overlay" | "overlay2" => backing == Some("xfs"),
        "btrfs" | "zfs" | "devicemapper" => true,
        _ => false,
    }
}

/// `error`, with what to do when the engine says Podman has no user ids to give containers.
fn with_hint(error: BackendError) -> BackendError {
    match error {
        BackendError::Engine { operation, reason } if reason.contains("subuid") => {
            BackendError::Engine {
                operation,
                reason: format!(
                    "{reason} (each container gets its own user ids: add \
                     `containers:2147483647:2147483648` to /etc/subuid and /etc/subgid, as \
                     scripts/install-system-packages.sh does)"
                ),
            }
        }
        other => other,
    }
}

/// Deletes a container's secrets directory.
fn delete_secrets(dir: &Path) -> Result<(), BackendError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackendError::Secrets(format!(
            "deleting {}: {e}",
            dir.display()
        ))),
    }
}

/// Checks that `dir` is on a tmpfs or ramfs, creates it (0700) if missing, and returns its
/// canonical path.
fn prepare_secrets_dir(dir: &Path) -> Result<PathBuf, BackendError> {
    let refuse = |reason: String| BackendError::Secrets(format!("{}: {reason}", dir.display()));
    if !dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir) {
        return Err(refuse("give an absolute path without `..`".into()));
    }
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(refuse(
            "is a symbolic link: name the directory itself, which nobody else can redirect".into(),
        ));
    }
    let canonical = crate::mounts::canonical(dir).map_err(|e| refuse(e.to_string()))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| refuse(format!("cannot read /proc/self/mountinfo: {e}")))?;
    match crate::mounts::mount_of(&mountinfo, &canonical).map(|m| m.fs_type) {
        Some(fs) if fs == "tmpfs" || fs == "ramfs" => {}
        found => {
            return Err(refuse(format!(
                "is on {}, not in memory: decrypted secrets must never reach a disk; \
                 choose a directory on a tmpfs such as /dev/shm",
                found.as_deref().unwrap_or("an unknown filesystem")
            )));
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&canonical)
        .map_err(|e| refuse(format!("cannot create it: {e}")))?;
    // Asked of the filesystem itself too, not only of the mount table.
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    let kind = rustix::fs::statfs(&canonical).map_err(|e| refuse(e.to_string()))?;
    let magic = u64::try_from(kind.f_type).unwrap_or_default();
    if magic != TMPFS_MAGIC && magic != RAMFS_MAGIC {
        return Err(refuse(format!(
            "is not on a tmpfs or ramfs (filesystem {magic:#x}): decrypted secrets must never \
             reach a disk"
        )));
    }
    let metadata = std::fs::symlink_metadata(&canonical).map_err(|e| refuse(e.to_string()))?;
    let me = rustix::process::geteuid().as_raw();
    if std::os::unix::fs::MetadataExt::uid(&metadata) != me {
        return Err(refuse(format!(
            "belongs to user {}, not to the worker's ({me}): give the worker a directory of \
             its own",
            std::os::unix::fs::MetadataExt::uid(&metadata)
        )));
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "has mode {:o}: give the worker a directory of its own (0700)",
            mode & 0o7777
        )));
    }
    Ok(canonical)
}

/// `[A-Za-z_][A-Za-z0-9_]*`, as the manifest requires: a plain file name.
fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether the engine shows the container created and never started: its program has not run.
fn never_started(state: &bollard::models::ContainerState) -> bool {
    let unset = |time: &Option<String>| {
        time.as_deref()
            .is_none_or(|t| t.is_empty() || t.starts_with("0001-01-01"))
    };
    state.status == Some(bollard::models::ContainerStateStatusEnum::CREATED)
        && unset(&state.started_at)
        && unset(&state.finished_at)
}

fn state_of(summary: Option<&ContainerSummaryStateEnum>) -> InstanceState {
    match summary {
        Some(ContainerSummaryStateEnum::CREATED) => InstanceState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => InstanceState::Running,
        Some(ContainerSummaryStateEnum::EXITED) => InstanceState::Exited { code: -1 },
        Some(other) => InstanceState::Other(format!("{other:?}").to_lowercase()),
        None => InstanceState::Other("unknown".into()),
    }
}

impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn prepare_image(&self, image: &ImageRef) -> Result<String, BackendError> {
        let digest = image.digest_string();
        // A local image is known by its id (the digest of its config) or by a repository
        // digest (the digest of the manifest it was pulled by).
        match self.docker.inspect_image(&digest).await {
            Ok(found) if found.id.as_deref() == Some(digest.as_str()) => return Ok(digest),
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => {
                return Err(BackendError::Image {
                    image: image.to_string(),
                    reason: e.to_string(),
                });
            }
        }
        let by_digest = image.to_string();
        if self.docker.inspect_image(&by_digest).await.is_ok() {
            return Ok(by_digest);
        }
        let options = CreateImageOptionsBuilder::new()
            .from_image(&by_digest)
            .build();
        let mut pull = self.docker.create_image(Some(options), None, None);
        while let Some(progress) = pull.next().await {
            progress.map_err(|e| BackendError::Image {
                image: by_digest.clone(),
                reason: format!("not present locally, and pulling failed: {e}"),
            })?;
        }
        Ok(by_digest)
    }

    async fn list(&self) -> Result<Vec<Instance>, BackendError> {
        let filters = HashMap::from([("label", vec![format!("{MANAGED_LABEL}={}", self.scope)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        // Podman (4.x) briefly reports a container that just ended as `stopped`, a state the
        // Docker API does not have, which fails the whole answer's decoding: ask again.
        let mut attempts = 0;
        let summaries = loop {
            match self.docker.list_containers(Some(options.clone())).await {
                Ok(summaries) => break summaries,
                Err(bollard::errors::Error::JsonDataError { .. }) if attempts < 40 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(engine("listing containers")(e)),
            }
        };
        let mut instances = Vec::new();
        for summary in summaries {
            let labels: BTreeMap<String, String> = summary
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let Some(identity) = identity_from_labels(&labels) else {
                continue;
            };
            let Some(id) = summary.id.clone() else {
                continue;
            };
            let mut state = state_of(summary.state.as_ref());
            if matches!(state, InstanceState::Exited { .. }) {
                let known = self.lock_exit_codes().get(&id).copied();
                if let Some(code) = known {
                    state = InstanceState::Exited { code };
                } else if let Ok(inspected) = self.docker.inspect_container(&id, None).await {
                    let inspected = inspected.state.unwrap_or_default();
                    let code = inspected.exit_code.unwrap_or(-1);
                    // Podman lists a container as exited a moment before it records how: the
                    // code is kept only once the engine says it exited, and when.
                    let settled = inspected.status
                        == Some(bollard::models::ContainerStateStatusEnum::EXITED)
                        && inspected
                            .finished_at
                            .as_deref()
                            .is_some_and(|t| !t.is_empty() && !t.starts_with("0001-01-01"));
                    if settled {
                        self.lock_exit_codes().insert(id.clone(), code);
                    }
                    state = InstanceState::Exited { code };
                }
            }
            let endpoints = endpoints_of(&summary, &labels);
            let name = summary
                .names
                .and_then(|names| names.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            instances.push(Instance {
                id,
                name,
                identity,
                state,
                endpoints,
            });
        }
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        // Containers found running (after a restart of the worker) are read from now on.
        for instance in &instances {
            if instance.state == InstanceState::Running
                && let Err(e) = self.outputs.attach(&self.docker, &instance.id).await
            {
                tracing::debug!(container = %instance.name, error = %e, "attaching to the output");
            }
        }
        let names: BTreeSet<String> = instances.iter().map(|i| i.name.clone()).collect();
        self.sweep_secrets(&names);
        let ids: BTreeSet<String> = instances.iter().map(|i| i.id.clone()).collect();
        self.outputs.sweep(&ids);
        self.lock_exit_codes().retain(|id, _| ids.contains(id));
        Ok(instances)
    }

    async fn start(&self, spec: &InstanceSpec, image: &str) -> Result<Instance, BackendError> {
        let container = &spec.container;
        // Names are global to the engine: the scope keeps workers sharing it apart.
        let name = format!("{}{}", self.name_prefix(), spec.name());
        let env: Vec<String> = container
            .env
            .iter()
            .map(|var| format!("{}={}", var.name.as_str(), var.value.as_str()))
            .collect();
        let port_key = |port: &wetee_types::manifest::Port| {
            let protocol = match port.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            format!("{}/{protocol}", port.container)
        };
        let exposed: Vec<String> = container.ports.iter().map(port_key).collect();
        let tcp_ports: Vec<String> = container
            .ports
            .iter()
            .filter(|port| port.protocol == Protocol::Tcp)
            .map(|port| port.container.to_string())
            .collect();
        let _creating = Creating::mark(&self.creating, &name);
        let secrets = if spec.secrets.is_empty() {
            None
        } else {
            Some(self.write_secrets(&name, &spec.secrets).await?)
        };
        let network = match self
            .ensure_network(&spec.workload, container.security.egress)
            .await
        {
            Ok(network) => network,
            Err(e) => {
                if let Some(dir) = &secrets {
                    let _ = delete_secrets(dir);
                }
                return Err(e);
            }
        };
        let mounts = secrets.as_ref().map(|dir| {
            vec![Mount {
                target: Some(SECRETS_MOUNT.into()),
                source: Some(dir.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Mount::default()
            }]
        });
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: (!container.command.is_empty()).then(|| {
                container
                    .command
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            }),
            cmd: (!container.args.is_empty()).then(|| {
                container
                    .args
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            }),
            env: Some(env),
            labels: Some({
                let mut labels: HashMap<String, String> = spec.labels().into_iter().collect();
                labels.insert(MANAGED_LABEL.to_string(), self.scope.clone());
                labels.insert(network::NETWORK_LABEL.to_string(), network.clone());
                labels.insert(PORTS_LABEL.to_string(), tcp_ports.join(","));
                labels
            }),
            exposed_ports: Some(exposed),
            host_config: Some(HostConfig {
                mounts,
                ..self.confinement.host_config(container, &network)
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created,
            Err(e) => {
                if let Some(dir) = &secrets {
                    let _ = delete_secrets(dir);
                }
                // A network made for this container alone goes with it.
                let _ = self.release_network(&network).await;
                return Err(with_hint(engine(format!("creating {name}"))(e)));
            }
        };
        // Attached before it starts, so that no line is missed. Without it the container still
        // runs; its owner then gets no logs, and is told so in the worker's log.
        if let Err(e) = self.outputs.attach(&self.docker, &created.id).await {
            tracing::warn!(container = %name, error = %e, "cannot read the container's output");
        }
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            self.outputs.forget(&created.id);
            // A container that never started would block its name and look alive.
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = self
                .docker
                .remove_container(&created.id, Some(options))
                .await;
            if let Some(dir) = &secrets {
                let _ = delete_secrets(dir);
            }
            let _ = self.release_network(&network).await;
            return Err(with_hint(engine(format!("starting {name}"))(e)));
        }
        self.confirm_started(&created.id).await;
        let instances = self.list().await?;
        instances
            .into_iter()
            .find(|instance| instance.id == created.id)
            .ok_or(BackendError::NotFound(name))
    }

    async fn kill(&self, id: &str) -> Result<(), BackendError> {
        match self.docker.kill_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Err(BackendError::NotFound(id.to_string())),
            // Not running any more (409): nothing to kill.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(engine(format!("killing {id}"))(e)),
        }
    }

    async fn remove(&self, id: &str, grace: Duration) -> Result<(), BackendError> {
        // Its secrets and network are found by its name and labels, which the engine forgets
        // with it.
        let inspected = match self.docker.inspect_container(id, None).await {
            Ok(inspected) => inspected,
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(engine(format!("inspecting {id}"))(e)),
        };
        let secrets = inspected
            .name
            .as_deref()
            .and_then(|name| self.instance_secrets_dir(name.trim_start_matches('/')));
        let labels: BTreeMap<String, String> = inspected
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // Containers made before they were labelled with their network are on their
        // workload's first network.
        let network = labels.get(network::NETWORK_LABEL).cloned().or_else(|| {
            identity_from_labels(&labels)
                .map(|identity| self.network_name(&identity.workload, Egress::Open))
        });
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let stop = StopContainerOptionsBuilder::new().t(seconds).build();
        // Gone (404), already stopped (304) or stopping: removal below settles it.
        let _ = self.docker.stop_container(id, Some(stop)).await;
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        // Podman unmounts a container that just ended in a cleanup process of its own; removing
        // it meanwhile fails with "device or resource busy" (more often with a user namespace):
        // ask again once that is done.
        let mut attempts = 0;
        loop {
            match self
                .docker
                .remove_container(id, Some(options.clone()))
                .await
            {
                Ok(()) => break,
                Err(e) if not_found(&e) => break,
                Err(e) if e.to_string().contains("resource busy") && attempts < 40 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(engine(format!("removing {id}"))(e)),
            }
        }
        self.outputs.removed(id);
        if let Some(dir) = &secrets {
            delete_secrets(dir)?;
        }
        match network {
            Some(network) => self.release_network(&network).await,
            None => Ok(()),
        }
    }

    async fn take_output(
        &self,
        id: &str,
        finished: bool,
    ) -> Result<(Vec<(String, LogLine)>, u64), BackendError> {
        Ok(self.outputs.take(id, finished).await)
    }

    async fn run_times(&self, id: &str) -> Result<Option<(u64, u64)>, BackendError> {
        let inspected = match self.docker.inspect_container(id, None).await {
            Ok(inspected) => inspected,
            Err(e) if not_found(&e) => return Err(BackendError::NotFound(id.to_string())),
            Err(e) => return Err(engine(format!("inspecting {id}"))(e)),
        };
        let state = inspected.state.unwrap_or_default();
        let millis = |text: Option<String>| -> Option<u64> {
            let text = text?;
            let seconds = crate::logbook::unix_seconds(&text)?;
            // Milliseconds from the fraction, if any.
            let fraction = text
                .split_once('.')
                .map(|(_, rest)| rest.trim_end_matches('Z'))
                .map(|digits| {
                    let padded = format!("{digits:0<3}");
                    padded
                        .get(..3)
                        .and_then(|d| d.parse::<i64>().ok())
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            u64::try_from(seconds.checked_mul(1_000)?.checked_add(fraction)?).ok()
        };
        Ok(millis(state.started_at).zip(millis(state.finished_at)))
    }

    async fn logs(&self, id: &str, tail: usize) -> Result<Vec<LogLine>, BackendError> {
        Ok(self.outputs.recent(id, tail))
    }

    async fn usage(&self, id: &str) -> Result<Usage, BackendError> {
        let options = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(options));
        let Some(stats) = stream.next().await else {
            return Err(BackendError::NotFound(id.to_string()));
        };
        let stats = stats.map_err(|e| {
            if not_found(&e) {
                BackendError::NotFound(id.to_string())
            } else {
                engine(format!("reading the usage of {id}"))(e)
            }
        })?;
        let cpu_nanos = stats
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or_default();
        let memory_bytes = stats.memory_stats.and_then(|m| m.usage).unwrap_or_default();
        let (mut rx, mut tx) = (0u64, 0u64);
        for network in stats.networks.unwrap_or_default().values() {
            rx = rx.saturating_add(network.rx_bytes.unwrap_or_default());
            tx = tx.saturating_add(network.tx_bytes.unwrap_or_default());
        }
        Ok(Usage {
            cpu_nanos,
            memory_bytes,
            network_rx_bytes: rx,
            network_tx_bytes: tx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_plain_file_names() {
        for good in ["API_TOKEN", "_x", "a1"] {
            assert!(is_secret_name(good), "{good}");
        }
        for bad in ["", "1A", "../etc", "a/b", ".", "A-B", "A B", "\u{e9}"] {
            assert!(!is_secret_name(bad), "{bad}");
        }
    }
}
