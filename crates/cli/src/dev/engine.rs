//! The container engine of `wetee dev`'s worker: one already serving the Docker API, or a
//! Podman service started for the dev chain and stopped with it; and removing the containers a
//! dev worker started.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wetee_worker::backend::Backend as _;
use wetee_worker::backend::docker::{DockerBackend, local_engine_socket};

/// How long Podman's service may take to open its socket.
const SERVICE_START: Duration = Duration::from_secs(20);

/// The engine the dev worker drives.
#[derive(Debug)]
pub struct DevEngine {
    /// The Docker-compatible API's Unix socket.
    pub socket: String,
    /// The Podman service started for the dev chain, if one had to be (killed on drop).
    service: Option<OwnedService>,
}

impl DevEngine {
    /// The Podman service this process started, if any: its process id.
    pub fn started_service(&self) -> Option<u32> {
        self.service.as_ref().map(|service| service.0.id())
    }

    /// An engine already serving the Docker API (`DOCKER_HOST`, Podman's or Docker's usual
    /// socket), else a Podman service started on a socket in `data_dir`. `None` when neither
    /// Docker nor Podman is installed.
    pub fn find_or_start(data_dir: &Path) -> Result<Option<DevEngine>> {
        if let Some(socket) = local_engine_socket() {
            return Ok(Some(DevEngine {
                socket: socket.display().to_string(),
                service: None,
            }));
        }
        let podman = Command::new("podman")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !podman {
            return Ok(None);
        }
        let socket = data_dir.join("podman.sock");
        let _ = std::fs::remove_file(&socket);
        let mut command = Command::new("podman");
        command
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: Ctrl-C in the terminal reaches `wetee dev` only, which
        // removes the worker's containers through this service before stopping it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let service = OwnedService(command.spawn().context("starting podman system service")?);
        let started = Instant::now();
        while !socket.exists() {
            if started.elapsed() > SERVICE_START {
                bail!(
                    "podman system service did not open {} within {} s",
                    socket.display(),
                    SERVICE_START.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(DevEngine {
            socket: socket.display().to_string(),
            service: Some(service),
        }))
    }
}

/// A child process stopped and reaped when dropped.
#[derive(Debug)]
struct OwnedService(Child);

impl Drop for OwnedService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes every container the worker with identity `scope` created on the engine at
/// `socket`; returns how many. Containers that resist are reported, not hidden.
pub async fn remove_containers(socket: &str, scope: &str) -> Result<usize> {
    let backend = DockerBackend::connect(Some(socket), scope)
        .await
        .with_context(|| format!("connecting to the engine at {socket}"))?;
    let instances = backend
        .list()
        .await
        .context("listing the worker's containers")?;
    let mut removed = 0;
    let mut failed = Vec::new();
    for instance in &instances {
        match backend.remove(&instance.id, Duration::from_secs(2)).await {
            Ok(()) => removed += 1,
            Err(e) => failed.push(format!("{}: {e}", instance.name)),
        }
    }
    if !failed.is_empty() {
        bail!("could not remove {}", failed.join("; "));
    }
    Ok(removed)
}
