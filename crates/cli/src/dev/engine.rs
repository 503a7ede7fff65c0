//! The container engine of `wetee dev`'s worker, and removing the containers a dev worker
//! started.
//!
//! Which engine: the one `DOCKER_HOST` names; else, where Podman is installed, a Podman service
//! already serving this user or one started for the dev chain (stopped with it); else Docker's.
//! Podman comes first because that is what the examples' `build.sh` builds with: the worker
//! must find the images in the same engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wetee_worker::backend::Backend as _;
use wetee_worker::backend::docker::DockerBackend;

/// How long Podman's service may take to open its socket.
const SERVICE_START: Duration = Duration::from_secs(20);

/// The file holding the pid of the Podman service a dev chain started, so that the next start
/// stops one left behind by a `wetee dev` that was killed.
const SERVICE_PID_FILE: &str = "podman-service.pid";

/// The engine the dev worker drives.
#[derive(Debug)]
pub struct DevEngine {
    /// The Docker-compatible API's Unix socket.
    pub socket: String,
    /// The Podman service started for the dev chain, if one had to be (stopped on drop).
    service: Option<OwnedService>,
}

impl DevEngine {
    /// The Podman service this process started, if any: its process id.
    pub fn started_service(&self) -> Option<u32> {
        self.service.as_ref().map(|service| service.child.id())
    }

    /// The engine for a dev chain kept in `data_dir` (see the module's rule). `None` when
    /// neither Podman nor Docker can be used.
    pub fn find_or_start(data_dir: &Path) -> Result<Option<DevEngine>> {
        let serving = |socket: PathBuf| DevEngine {
            socket: socket.display().to_string(),
            service: None,
        };
        if let Some(socket) = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        {
            if answers(&socket) {
                return Ok(Some(serving(socket)));
            }
            bail!(
                "DOCKER_HOST names {}, which does not answer",
                socket.display()
            );
        }
        if installed("podman") {
            let mut sockets = vec![PathBuf::from("/run/podman/podman.sock")];
            if let Ok(runtime) = std::env::var("XDG_RUNTIME_DIR") {
                sockets.insert(0, Path::new(&runtime).join("podman/podman.sock"));
            }
            if let Some(socket) = sockets.into_iter().find(|socket| answers(socket)) {
                return Ok(Some(serving(socket)));
            }
            return start_podman(data_dir).map(Some);
        }
        let docker = PathBuf::from("/var/run/docker.sock");
        Ok(answers(&docker).then(|| serving(docker)))
    }
}

/// Whether a program runs (`--version`).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this user can connect to the Unix socket `path` (an engine's socket may exist and
/// belong to root).
fn answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Starts `podman system service` on a socket in `data_dir`, after stopping one a killed
/// `wetee dev` left there.
fn start_podman(data_dir: &Path) -> Result<DevEngine> {
    let socket = data_dir.join("podman.sock");
    let pid_file = data_dir.join(SERVICE_PID_FILE);
    stop_orphaned_service(&pid_file, &socket);
    let _ = std::fs::remove_file(&socket);
    let mut command = Command::new("podman");
    command
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: Ctrl-C in the terminal reaches `wetee dev` only, which removes
    // the worker's containers through this service before stopping it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().context("starting podman system service")?;
    let _ = std::fs::write(&pid_file, format!("{}\n", child.id()));
    let service = OwnedService { child, pid_file };
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
    Ok(DevEngine {
        socket: socket.display().to_string(),
        service: Some(service),
    })
}

/// Stops the Podman service recorded in `pid_file` if it still runs on `socket` (a process
/// with that pid serving anything else is left alone).
fn stop_orphaned_service(pid_file: &Path, socket: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return;
    };
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
    if command_line.contains("system service") && command_line.contains(&*socket.to_string_lossy())
    {
        eprintln!("wetee dev: stopping the Podman service (pid {pid}) a previous run left behind");
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    let _ = std::fs::remove_file(pid_file);
}

/// The Podman service started for the dev chain: stopped, reaped and forgotten when dropped.
#[derive(Debug)]
struct OwnedService {
    child: Child,
    pid_file: PathBuf,
}

/// How long the service may take to stop when asked (SIGTERM) before it is killed.
const SERVICE_STOP: Duration = Duration::from_secs(5);

impl Drop for OwnedService {
    fn drop(&mut self) {
        // Asked first, so that it finishes what it is doing with its containers' state.
        let asked = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + SERVICE_STOP;
        while asked && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Removes every container the worker with identity `scope` created on the engine at
/// `socket`, and their secrets; returns how many. Containers that resist are reported, not
/// hidden.
pub async fn remove_containers(socket: &str, scope: &str) -> Result<usize> {
    let backend = DockerBackend::connect(Some(socket), scope)
        .await
        .with_context(|| format!("connecting to the engine at {socket}"))?;
    // The dev worker's secrets directory: a container's decrypted secrets go with it.
    let secrets_dir = std::path::Path::new(wetee_worker::config::DEFAULT_SECRETS_DIR);
    let backend = backend
        .clone()
        .with_secrets_dir(secrets_dir)
        .unwrap_or(backend);
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
