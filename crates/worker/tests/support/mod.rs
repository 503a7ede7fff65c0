//! A container engine for tests: `$WETEE_TEST_ENGINE_SOCKET` if set, else a Podman service
//! started for the test run, and a tiny image built locally (`FROM scratch` plus a static
//! busybox), since no registry is reachable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The engine's socket and the CLI that builds images for it.
pub struct Engine {
    /// The Unix socket of the Docker-compatible API.
    pub socket: String,
    /// `podman` or `docker`.
    pub cli: &'static str,
    /// The service started for the tests (stopped when the test process exits).
    _service: Option<ServiceGuard>,
}

struct ServiceGuard(Child);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The engine shared by every test of this binary.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        if let Ok(socket) = std::env::var("WETEE_TEST_ENGINE_SOCKET") {
            let cli = if which("podman") { "podman" } else { "docker" };
            return Engine {
                socket,
                cli,
                _service: None,
            };
        }
        assert!(
            which("podman"),
            "these tests need Podman (apt-get install podman runc) or a Docker-compatible \
             engine in WETEE_TEST_ENGINE_SOCKET; see .ci/run for the setup"
        );
        let dir = std::env::temp_dir().join(format!("wetee-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("socket directory");
        let socket = dir.join("podman.sock");
        let service = Command::new("podman")
            // It exits by itself after 10 s without requests: statics are never dropped.
            .args(["system", "service", "--time=10"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service starts");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "podman's API socket did not appear"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Engine {
            socket: socket.display().to_string(),
            cli: "podman",
            _service: Some(ServiceGuard(service)),
        }
    })
}

fn busybox() -> PathBuf {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(candidate);
        if path.exists() {
            return path.to_path_buf();
        }
    }
    panic!("these tests need a static busybox (apt-get install busybox-static)");
}

/// Builds (once) an image holding only a static busybox and returns its id (`sha256:<hex>`).
pub fn busybox_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let engine = engine();
        let context = tempfile::tempdir().expect("build context");
        std::fs::copy(busybox(), context.path().join("busybox")).expect("copy busybox");
        std::fs::write(
            context.path().join("Containerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
        )
        .expect("Containerfile");
        let output = Command::new(engine.cli)
            .args([
                "build",
                "-q",
                "-t",
                "localhost/wetee-test-busybox:latest",
                "-f",
            ])
            .arg(context.path().join("Containerfile"))
            .arg(context.path())
            .output()
            .expect("image build runs");
        assert!(
            output.status.success(),
            "image build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        let hex = id.strip_prefix("sha256:").unwrap_or(&id).to_string();
        assert_eq!(hex.len(), 64, "unexpected image id {id}");
        format!("sha256:{hex}")
    })
}
