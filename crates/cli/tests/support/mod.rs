//! What the CLI's end-to-end tests share: the `wetee` binary run as a user runs it, free
//! ports, the example images, plain HTTP, waiting for a condition, and cleaning up.
#![allow(dead_code)] // Each test binary uses part of this module.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WETEE: &str = env!("CARGO_BIN_EXE_wetee");

/// Processes killed (SIGKILL) and reaped when the test ends, however it ends.
#[derive(Default)]
pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes the containers of the worker whose identity is `scope` when the test ends (declare
/// it before the processes, so it runs after they are killed).
#[derive(Default)]
pub struct Cleanup(pub Option<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(scope) = &self.0 {
            for name in containers_of(scope, None) {
                let _ = Command::new("podman").args(["rm", "-f", &name]).output();
            }
        }
    }
}

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `count` ports nothing listens on now.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}

/// Starts `wetee args... --output json` (stderr to `log`) and returns it once it printed its
/// first JSON document.
pub fn start(args: &[String], log: &Path) -> (Child, Value) {
    let child = spawn(args, log);
    read_document(child, args, log)
}

/// Starts `wetee args... --output json`, stderr to `log`, stdout piped.
pub fn spawn(args: &[String], log: &Path) -> Child {
    Command::new(WETEE)
        .args(args)
        .args(["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("wetee starts")
}

/// Reads `child`'s first JSON document from its stdout, then keeps draining it.
pub fn read_document(mut child: Child, args: &[String], log: &Path) -> (Child, Value) {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let value = loop {
        let read = reader.read_line(&mut printed).expect("output");
        assert!(
            read > 0,
            "wetee {args:?} exited: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        if let Ok(value) = serde_json::from_str(&printed) {
            break value;
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = reader.read_to_string(&mut sink);
    });
    (child, value)
}

/// Runs `wetee args... --rpc rpc --output json`: success, the JSON on stdout, stderr.
pub fn wetee(rpc: &str, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(WETEE)
        .args(args)
        .args(["--rpc", rpc, "--output", "json"])
        .output()
        .expect("wetee runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout));
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), value, stderr)
}

/// `GET url` (`http://host:port/path`): the status code and the body.
pub fn get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/')?);
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// Whether the node's RPC on `port` answers `system_health`.
pub fn rpc_answers(port: u16) -> bool {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"system_health","params":[]}"#;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains("genesis_hash")
}

pub fn eventually<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Builds an example's image locally (once per test binary: its script writes into the
/// example's directory) and returns its manifest.
pub fn build(example: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = repository()
        .join("examples")
        .join(example)
        .join("wetee.toml");
    if built.iter().any(|done| done == example) {
        return manifest;
    }
    let script = repository().join("examples").join(example).join("build.sh");
    let output = Command::new("sh")
        .arg(&script)
        .output()
        .expect("build.sh runs");
    assert!(
        output.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.push(example.to_string());
    manifest
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The containers (names) of the worker whose identity is `scope`, all or `app`'s, as the
/// engine lists them (others may share the engine).
pub fn containers_of(scope: &str, app: Option<u64>) -> Vec<String> {
    let mut command = Command::new("podman");
    command
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=wetee.managed={scope}"));
    if let Some(app) = app {
        command
            .arg("--filter")
            .arg(format!("label=wetee.app={app}"));
    }
    let output = command.output().expect("podman ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sends `signal` (`TERM`, `INT`) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits up to `seconds` for `child` to exit; its status, or `None` if it still runs.
pub fn wait_exit(child: &mut Child, seconds: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// `wetee dev --no-worker` on ports derived from this process's id (`rpc_base` and `p2p_base`
/// plus an offset), killed when dropped.
pub struct DevNode {
    child: Child,
    /// Its RPC port.
    pub port: u16,
    /// Its chain's genesis hash, once its first block is final.
    pub genesis: wetee_types::Hash,
    /// What it printed when it started.
    pub banner: Value,
}

impl DevNode {
    /// Starts it in `home` and waits for its banner and its first finalized block.
    pub fn start(home: &Path, rpc_base: u16, p2p_base: u16) -> DevNode {
        DevNode::start_with(home, rpc_base, p2p_base, &[])
    }

    /// As [`DevNode::start`], with `extra` arguments to `wetee dev`.
    pub fn start_with(home: &Path, rpc_base: u16, p2p_base: u16, extra: &[&str]) -> DevNode {
        let offset = (std::process::id() % 500) as u16 * 4;
        let port = rpc_base + offset;
        let mut child = Command::new(WETEE)
            .args([
                "dev",
                "--no-worker",
                "--data-dir",
                home.join("dev").to_str().expect("utf-8"),
                "--rpc-port",
                &port.to_string(),
                "--p2p-port",
                &(p2p_base + offset).to_string(),
                "--output",
                "json",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wetee dev starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut node = DevNode {
            child,
            port,
            genesis: wetee_types::Hash::default(),
            banner: Value::Null,
        };
        let mut reader = BufReader::new(stdout);
        let mut printed = String::new();
        while serde_json::from_str::<Value>(&printed).is_err() {
            assert!(
                reader.read_line(&mut printed).expect("output") > 0,
                "dev exited"
            );
        }
        node.banner = serde_json::from_str(&printed).expect("a JSON banner");
        node.genesis = eventually("the first block", 60, || {
            let health = rpc_call(port, "system_health", serde_json::json!([]));
            let final_height = health["result"]["finalized"]["height"].as_u64()?;
            (final_height >= 1)
                .then(|| serde_json::from_value(health["result"]["genesis_hash"].clone()).ok())
                .flatten()
        });
        node
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange with `address` (`head` without its final blank line, then `body`),
/// the connection closed after it: the status code (0 when there is none) and the body.
pub fn http_exchange(address: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        stream,
        "{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    // A server may refuse before reading a large body: a failed write is its answer.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `POST /` of the JSON `body` to the node's RPC on `port`: the status code and the body.
pub fn rpc_post(port: u16, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
        body.len()
    );
    http_exchange(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        &head,
        body,
    )
}

/// One JSON-RPC request (a call or a batch) over HTTP to the node on `port`; the parsed answer.
pub fn rpc_request(port: u16, request: &Value) -> Value {
    let (status, body) = rpc_post(port, request.to_string().as_bytes());
    assert_eq!(status, 200, "HTTP {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// One JSON-RPC call over HTTP to the node on `port`; the parsed answer.
pub fn rpc_call(port: u16, method: &str, params: Value) -> Value {
    rpc_request(
        port,
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
}
