//! The app of `wetee bench ingress --container`: an image holding this very binary and the
//! shared libraries it links, started through the worker's engine backend like any workload
//! (its own network, no capabilities, port 8080 published on 127.0.0.1), running
//! `wetee bench ingress-app`. The same server as the in-process app, so that the two runs
//! differ only in where the app lives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wetee_types::manifest::{ImageRef, Manifest};
use wetee_types::{AppId, Workload};
use wetee_worker::backend::docker::{DockerBackend, local_engine_socket};
use wetee_worker::backend::{Backend, InstanceSpec};

/// Labels what this benchmark starts, apart from any worker's containers.
const SCOPE: &str = "wetee-bench-ingress";
const PORT: u16 = 8080;
const REPOSITORY: &str = "localhost/wetee-bench-ingress";

/// The running container; [`ContainerApp::remove`] takes it down.
pub struct ContainerApp {
    backend: DockerBackend,
    id: String,
}

impl ContainerApp {
    /// Removes the container and its network.
    pub async fn remove(self) {
        if let Err(e) = self.backend.remove(&self.id, Duration::ZERO).await {
            eprintln!("the benchmark's container {} stays: {e}", self.id);
        }
    }
}

/// Builds the image, starts the app and waits until its published port answers.
pub async fn start() -> Result<(ContainerApp, SocketAddr)> {
    let image = tokio::task::spawn_blocking(build_image).await??;
    let socket = local_engine_socket()
        .context("no Podman or Docker socket (see docs/worker.md for starting Podman's)")?;
    let backend = DockerBackend::connect(Some(&socket.display().to_string()), SCOPE).await?;
    // A benchmark killed mid-run leaves its container behind.
    for leftover in backend.list().await? {
        backend.remove(&leftover.id, Duration::ZERO).await?;
    }
    let prepared = backend
        .prepare_image(&ImageRef::parse(&image).map_err(anyhow::Error::msg)?)
        .await?;
    let spec = InstanceSpec {
        workload: Workload::App { app: AppId(1) },
        version: 1,
        replica: 0,
        generation: 0,
        container: manifest(&image)?,
        health: None,
        timeout: None,
        secrets: Vec::new(),
    };
    let instance = backend.start(&spec, &prepared).await?;
    let app = ContainerApp {
        backend,
        id: instance.id,
    };
    let Some(&address) = instance.endpoints.get(&PORT) else {
        app.remove().await;
        bail!("the engine gave the app's container no address");
    };
    if let Err(e) = answers(address).await {
        app.remove().await;
        return Err(e);
    }
    Ok((app, address))
}

fn manifest(image: &str) -> Result<wetee_types::manifest::ContainerSpec> {
    let text = format!(
        r#"kind = "app"
name = "bench-ingress"
image = "{image}"
command = ["/wetee"]
args = ["bench", "ingress-app", "--port", "{PORT}"]
ports = [{{ container = {PORT} }}]
resources = {{ cpu_millicores = 1000, memory_mib = 128 }}
placement = {{ tee = "simulated", max_price_per_epoch = "1" }}
"#
    );
    match Manifest::from_toml(&text)? {
        Manifest::App(spec) => Ok(spec.container),
        Manifest::Task(_) => bail!("not an app"),
    }
}

/// Waits up to 30 s for an HTTP answer on `address`.
async fn answers(address: SocketAddr) -> Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(address).await?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            anyhow::ensure!(answer.starts_with(b"HTTP/1.1 200"), "no 200 yet");
            Ok(())
        };
        let attempt = tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within 2 s")));
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("the container app at {address} never answered")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `FROM scratch` with this executable as `/wetee` and every library `ldd` names at its path;
/// returns the image's reference by digest.
fn build_image() -> Result<String> {
    let executable = std::env::current_exe()?;
    let context = tempfile::tempdir()?;
    let root = context.path().join("root");
    std::fs::create_dir_all(&root)?;
    std::fs::copy(&executable, root.join("wetee"))?;
    for library in linked_libraries(&executable)? {
        let relative = library.strip_prefix("/").unwrap_or(&library);
        let target = root.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Copies what a symlink points at, under the name the loader asks for.
        std::fs::copy(&library, &target)
            .with_context(|| format!("copying {}", library.display()))?;
    }
    std::fs::write(
        context.path().join("Containerfile"),
        "FROM scratch\nCOPY root/ /\n",
    )?;
    crate::bench::build_image(context.path(), REPOSITORY)
}

/// The shared libraries `executable` loads, the dynamic loader included, as `ldd` lists them.
fn linked_libraries(executable: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(executable)
        .output()
        .context("running ldd")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let complaint = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // A static executable needs nothing beside it (glibc's ldd says so on stderr).
        if format!("{listing}{complaint}").contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        bail!("ldd: {complaint}");
    }
    parse_ldd(&listing)
}

fn parse_ldd(listing: &str) -> Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in listing.lines().map(str::trim) {
        let path = match line.split_once("=>") {
            Some((name, resolved)) => {
                if resolved.trim().starts_with("not found") {
                    bail!("{} is not installed on this machine", name.trim());
                }
                resolved.trim()
            }
            None => line,
        };
        if let Some(path) = path.split_whitespace().next()
            && path.starts_with('/')
        {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_listings_name_each_library_and_the_loader_once_and_a_missing_one_fails() {
        let listing = "\tlinux-vdso.so.1 (0x00007fb0b0896000)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fb0b0865000)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb0adc1e000)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007fb0b0898000)\n";
        assert_eq!(
            parse_ldd(listing).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let missing = "\tlibssl.so.3 => not found\n";
        assert!(
            parse_ldd(missing)
                .unwrap_err()
                .to_string()
                .contains("libssl.so.3")
        );
    }
}
