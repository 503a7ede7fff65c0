//! `wetee dev` as a newcomer meets it, with real processes and real Podman: deploying the
//! moment its RPC answers (while its worker registers, and while the same account sends a
//! transfer), SIGTERM leaving nothing it started behind, a deployment no worker can take that
//! says why, gives up at its timeout, stops cleanly on Ctrl-C, and outlives a node restart, and
//! one the chain refuses that says why.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    Cleanup, Processes, WETEE, build, eventually, free_ports, get, read_document, rpc_answers,
    signal, spawn, start, wait_exit, wetee,
};

/// The `wetee dev` tests run one at a time: each runs a chain, a worker and Podman, on a
/// machine that may have two cores.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where one `wetee dev` keeps its chain and listens.
struct DevPlace {
    data_dir: String,
    rpc_port: u16,
    p2p_port: u16,
    ingress_port: u16,
}

impl DevPlace {
    fn new(dir: &Path) -> DevPlace {
        let ports = free_ports(3);
        DevPlace {
            data_dir: dir.join("dev").display().to_string(),
            rpc_port: ports[0],
            p2p_port: ports[1],
            ingress_port: ports[2],
        }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "dev",
            "--data-dir",
            &self.data_dir,
            "--rpc-port",
            &self.rpc_port.to_string(),
            "--p2p-port",
            &self.p2p_port.to_string(),
            "--ingress-port",
            &self.ingress_port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn rpc(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }
}

/// The dev worker's identity (the label scope of its containers), from the banner.
fn worker_scope(banner: &Value) -> String {
    let identity: wetee_types::AccountId = banner["worker"]["identity"]
        .as_str()
        .unwrap_or_else(|| panic!("no worker in the banner: {banner}"))
        .parse()
        .expect("an account");
    hex::encode(identity.0)
}

/// Stops `wetee dev` as `kill` does and waits for it to finish cleaning up.
fn terminate(dev: &mut Child) {
    signal(dev.id(), "TERM");
    let status = wait_exit(dev, 60).expect("wetee dev exits after SIGTERM");
    assert!(status.success(), "wetee dev exited with {status}");
}

fn deploy_command(rpc: &str, manifest: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(WETEE);
    command
        .args(["app", "deploy", "-f"])
        .arg(manifest)
        .args(["--rpc", rpc])
        .args(extra);
    command
}

#[test]
fn deploying_the_moment_the_rpc_answers_serves_every_time_and_the_worker_never_stops() {
    let _alone = one_at_a_time();
    let manifest = build("hello");
    let bob = wetee_client::keys::dev_keypair("Bob")
        .account_id()
        .to_string();
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let place = DevPlace::new(dir.path());
        let log = dir.path().join("dev.log");
        let mut cleanup = Cleanup::default();
        let mut processes = Processes::default();
        let args = place.args(&[]);
        let dev = spawn(&args, &log);
        // The banner waits for the worker: the user does not, only for the RPC.
        eventually("the RPC to answer", 60, || {
            rpc_answers(place.rpc_port).then_some(())
        });
        let rpc = place.rpc();
        let deploy = deploy_command(
            &rpc,
            &manifest,
            &[
                "--from",
                "//Alice",
                "--wait",
                "--timeout",
                "120",
                "-o",
                "json",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deploy starts");
        let (transferred, sent, stderr) = wetee(
            &rpc,
            &[
                "account", "transfer", "--from", "//Alice", "--to", &bob, "--amount", "1.5",
            ],
        );
        assert!(transferred, "round {round}: transfer: {sent} {stderr}");
        let (dev, banner) = read_document(dev, &args, &log);
        processes.0.push(dev);
        assert_eq!(
            banner["worker_status"], "running",
            "round {round}: {banner}"
        );
        cleanup.0 = Some(worker_scope(&banner));
        let deployed = deploy.wait_with_output().expect("deploy runs");
        let result: Value = serde_json::from_slice(&deployed.stdout).unwrap_or(Value::Null);
        assert!(
            deployed.status.success(),
            "round {round}: deploy: {result} {}\nwetee dev said (last lines):\n{}",
            String::from_utf8_lossy(&deployed.stderr),
            last_lines(&log, 80)
        );
        let url = result["url"].as_str().expect("the app's URL");
        let (code, body) = get(url).expect("the app answers");
        assert_eq!(code, 200, "round {round}: {body}");
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(
            !said.contains("\"worker_status\":\"failed\"") && !said.contains("not running"),
            "round {round}: the worker stopped: {said}"
        );
        terminate(&mut processes.0[0]);
    }
}

/// The last `count` lines `wetee dev` wrote to `log`: what a failure needs to be understood
/// from CI's output alone.
fn last_lines(log: &Path, count: usize) -> String {
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = said.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Every process whose parent chain leads to `root`.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`: the name may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// The containers of the worker `scope`, as the engine's API lists them (through a Podman
/// service of the test's own: the one `wetee dev` started is gone).
fn containers_by_api(dir: &Path, scope: &str) -> Vec<String> {
    use wetee_worker::backend::Backend as _;
    let socket = dir.join("check.sock");
    let mut processes = Processes::default();
    processes.0.push(
        Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service"),
    );
    eventually("the check's Podman socket", 30, || {
        socket.exists().then_some(())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = wetee_worker::backend::docker::DockerBackend::connect(
            Some(&socket.display().to_string()),
            scope,
        )
        .await
        .expect("the engine answers");
        backend
            .list()
            .await
            .expect("listing")
            .into_iter()
            .map(|instance| instance.name)
            .collect()
    })
}

#[test]
fn sigterm_leaves_no_process_or_container_that_wetee_dev_started() {
    let _alone = one_at_a_time();
    let manifest = build("hello");
    let dir = tempfile::tempdir().unwrap();
    let place = DevPlace::new(dir.path());
    let mut cleanup = Cleanup::default();
    let mut processes = Processes::default();
    let (dev, banner) = start(&place.args(&[]), &dir.path().join("dev.log"));
    processes.0.push(dev);
    let scope = worker_scope(&banner);
    cleanup.0 = Some(scope.clone());
    let (ok, deployed, stderr) = wetee(
        &place.rpc(),
        &[
            "app",
            "deploy",
            "-f",
            manifest.to_str().unwrap(),
            "--from",
            "//Bob",
            "--wait",
        ],
    );
    assert!(ok, "deploy: {deployed} {stderr}");
    assert!(!support::containers_of(&scope, None).is_empty());

    let dev = &mut processes.0[0];
    let started = descendants(dev.id());
    // Without an engine already serving, wetee dev starts Podman's service: it must go too.
    match banner["engine_service_pid"].as_u64() {
        Some(service) => assert!(
            started.contains(&(service as u32)),
            "the Podman service {service} is among {started:?}"
        ),
        None => assert!(
            std::env::var_os("DOCKER_HOST").is_some()
                || Path::new("/run/podman/podman.sock").exists(),
            "no engine was serving, yet wetee dev started none: {banner}"
        ),
    }
    terminate(dev);
    let left: Vec<u32> = started.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
    let containers = containers_by_api(dir.path(), &scope);
    assert!(containers.is_empty(), "containers left: {containers:?}");
}

/// Lines of a child's stderr, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Waits for a line containing `needle`; returns every line read until then.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?} within {seconds} s:\n{seen}");
}

#[test]
fn a_deployment_no_worker_takes_says_why_times_out_stops_on_ctrl_c_and_outlives_a_node_restart() {
    let _alone = one_at_a_time();
    let manifest = build("hello");
    let dir = tempfile::tempdir().unwrap();
    let place = DevPlace::new(dir.path());
    let rpc = place.rpc();
    let mut cleanup = Cleanup::default();
    let mut processes = Processes::default();
    let (dev, _) = start(&place.args(&["--no-worker"]), &dir.path().join("chain.log"));
    processes.0.push(dev);

    // No worker: the chain's reason, then the timeout it names, with a failing status.
    let began = Instant::now();
    let timed_out = deploy_command(&rpc, &manifest, &["--wait", "--timeout", "20"])
        .output()
        .expect("deploy runs");
    let waited = began.elapsed();
    let said = String::from_utf8_lossy(&timed_out.stderr);
    assert!(!timed_out.status.success(), "{said}");
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(60),
        "gave up after {waited:?}: {said}"
    );
    assert!(
        said.contains("waiting for a worker: no worker is registered"),
        "{said}"
    );
    assert!(said.contains("not serving after 20 s"), "{said}");
    let status = Command::new(WETEE)
        .args(["app", "status", "1", "--rpc", &rpc])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("state    waiting for a worker: no worker is registered"),
        "{status}"
    );
    assert!(!status.contains('{'), "words, not JSON: {status}");

    // A deployment the chain refuses: the chain's reason, and a failing status.
    let refused = deploy_command(&rpc, &manifest, &["--deposit", "100000000", "--wait"])
        .output()
        .expect("deploy runs");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("the chain refused the deployment") && said.contains("insufficient"),
        "{said}"
    );

    // Ctrl-C while waiting: a clean exit that names the app and how to follow it.
    let mut waiting = deploy_command(&rpc, &manifest, &["--wait"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut waiting);
    wait_for_line(&lines, "waiting for a worker", 60);
    signal(waiting.id(), "INT");
    let interrupted = wait_exit(&mut waiting, 10).expect("deploy stops on Ctrl-C");
    assert_eq!(interrupted.code(), Some(130));
    let said = wait_for_line(&lines, "stays deployed", 5);
    assert!(
        said.contains("App 2") && said.contains("wetee app status 2"),
        "{said}"
    );

    // The node restarts under a waiting deploy, now with a worker: it reconnects, keeps
    // waiting, and sees its app serve.
    let mut waiting = deploy_command(
        &rpc,
        &manifest,
        &["--wait", "--timeout", "180", "-o", "json"],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = lines_of(&mut waiting);
    wait_for_line(&lines, "waiting for a worker", 60);
    terminate(&mut processes.0[0]);
    let (dev, banner) = start(&place.args(&[]), &dir.path().join("dev.log"));
    processes.0.push(dev);
    cleanup.0 = Some(worker_scope(&banner));
    let said = wait_for_line(&lines, "\"stage\":\"serving\"", 120);
    assert!(said.contains("\"stage\":\"reconnected\""), "{said}");
    let done = waiting.wait_with_output().unwrap();
    assert!(done.status.success());
    let result: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(result["state"], "serving", "{result}");
    let (code, _) = get(result["url"].as_str().unwrap()).expect("it answers");
    assert_eq!(code, 200);
    terminate(processes.0.last_mut().unwrap());
}
