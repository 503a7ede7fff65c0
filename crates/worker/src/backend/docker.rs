//! The Docker Engine API backend (through `bollard`). It works with Docker and with Podman's
//! Docker-compatible service. Every container is labelled (see [`super::MANAGED_LABEL`]),
//! publishes its ports on 127.0.0.1 only (the worker's ingress is the way in), and gets the
//! CPU and memory limits of its manifest.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt as _;
use wetee_types::manifest::{ImageRef, Protocol};

use super::{
    Backend, BackendError, Instance, InstanceSpec, InstanceState, LogLine, LogStream,
    MANAGED_LABEL, Usage, identity_from_labels,
};

/// Seconds to wait for the engine to answer.
const TIMEOUT_SECS: u64 = 120;

/// A Docker-compatible engine.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
    scope: String,
}

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
        docker
            .version()
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        Ok(DockerBackend {
            docker,
            scope: scope.to_string(),
        })
    }

    /// An instance's output lines as the engine returns them for `options`.
    async fn read_logs(
        &self,
        id: &str,
        options: bollard::query_parameters::LogsOptions,
    ) -> Result<Vec<LogLine>, BackendError> {
        let mut stream = self.docker.logs(id, Some(options));
        let mut lines = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if not_found(&e) {
                    BackendError::NotFound(id.to_string())
                } else {
                    engine(format!("reading logs of {id}"))(e)
                }
            })?;
            let (stream, message) = match chunk {
                LogOutput::StdErr { message } => (LogStream::Stderr, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (LogStream::Stdout, message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            for text in String::from_utf8_lossy(&message).lines() {
                lines.push(LogLine {
                    stream,
                    text: text.to_string(),
                });
            }
        }
        Ok(lines)
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
                // The list does not carry the exit code.
                if let Ok(inspected) = self.docker.inspect_container(&id, None).await {
                    let code = inspected.state.and_then(|s| s.exit_code).unwrap_or(-1);
                    state = InstanceState::Exited { code };
                }
            }
            let ports = summary
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p.private_port, p.public_port?)))
                .collect();
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
                ports,
            });
        }
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(instances)
    }

    async fn start(&self, spec: &InstanceSpec, image: &str) -> Result<Instance, BackendError> {
        let container = &spec.container;
        // Names are global to the engine: the scope keeps workers sharing it apart.
        let scope: String = self.scope.chars().take(12).collect();
        let name = format!("wetee-{scope}-{}", spec.name());
        let mut env: Vec<String> = container
            .env
            .iter()
            .map(|var| format!("{}={}", var.name.as_str(), var.value.as_str()))
            .collect();
        env.extend(spec.extra_env.iter().map(|(k, v)| format!("{k}={v}")));
        let port_key = |port: &wetee_types::manifest::Port| {
            let protocol = match port.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            format!("{}/{protocol}", port.container)
        };
        let exposed: Vec<String> = container.ports.iter().map(port_key).collect();
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = container
            .ports
            .iter()
            .map(|port| {
                (
                    port_key(port),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect();
        let resources = &container.resources;
        let nano_cpus = i64::try_from(resources.cpu_millicores)
            .ok()
            .and_then(|m| m.checked_mul(1_000_000));
        let memory = i64::try_from(resources.memory_mib)
            .ok()
            .and_then(|m| m.checked_mul(1 << 20));
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
                labels
            }),
            exposed_ports: Some(exposed),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                nano_cpus: nano_cpus.filter(|n| *n > 0),
                memory: memory.filter(|m| *m > 0),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(engine(format!("creating {name}")))?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            // A container that never started would block its name and look alive.
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = self
                .docker
                .remove_container(&created.id, Some(options))
                .await;
            return Err(engine(format!("starting {name}"))(e));
        }
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
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let stop = StopContainerOptionsBuilder::new().t(seconds).build();
        match self.docker.stop_container(id, Some(stop)).await {
            Ok(()) => {}
            Err(e) if not_found(&e) => return Ok(()),
            // Already stopped (304) or stopping: removal below settles it.
            Err(_) => {}
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(engine(format!("removing {id}"))(e)),
        }
    }

    async fn logs_since(
        &self,
        id: &str,
        since: i64,
    ) -> Result<Vec<(String, LogLine)>, BackendError> {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(since).unwrap_or(i32::MAX))
            .build();
        let lines = self.read_logs(id, options).await?;
        Ok(lines
            .into_iter()
            .map(|line| {
                let (timestamp, text) = line.text.split_once(' ').unwrap_or((&line.text, ""));
                (
                    timestamp.to_string(),
                    LogLine {
                        stream: line.stream,
                        text: text.to_string(),
                    },
                )
            })
            .collect())
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
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        self.read_logs(id, options).await
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
