//! End to end with real processes on 127.0.0.1: `wetee testnet --validators 4`, transfers
//! through the CLI, one validator killed with SIGKILL while transfers keep finalizing, then
//! restarted from its data directory until it reaches the same state root as the others.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const WETEE: &str = env!("CARGO_BIN_EXE_wetee");

/// Kills what it holds when the test ends, passing or not.
#[derive(Default)]
struct Processes {
    /// Started here.
    children: Vec<Child>,
    /// Started by the testnet command.
    others: Vec<u32>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for pid in &self.others {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wetee(home: &Path, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(WETEE)
        .args(args)
        .args(["--output", "json"])
        .env("WETEE_HOME", home)
        .output()
        .expect("wetee runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), value, stderr)
}

fn rpc(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

fn status(home: &Path, port: u16) -> Option<Value> {
    let (ok, value, _) = wetee(home, &["chain", "status", "--rpc", &rpc(port)]);
    ok.then_some(value)
}

fn finalized_height(home: &Path, port: u16) -> Option<u64> {
    status(home, port)?["finalized"]["height"].as_u64()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn address_of(home: &Path, uri: &str) -> String {
    let (ok, value, stderr) = wetee(home, &["key", "inspect", uri]);
    assert!(ok, "key inspect: {stderr}");
    value["account"].as_str().expect("account").to_string()
}

fn transfer(home: &Path, port: u16, to: &str) -> Value {
    let (ok, value, stderr) = wetee(
        home,
        &[
            "account",
            "transfer",
            "--from",
            "//Alice",
            "--to",
            to,
            "--amount",
            "1",
            "--rpc",
            &rpc(port),
        ],
    );
    assert!(ok, "transfer failed: {value} {stderr}");
    assert_eq!(value["success"], true);
    value
}

fn state_root(home: &Path, port: u16, height: u64) -> String {
    let (ok, value, stderr) = wetee(
        home,
        &["chain", "block", &height.to_string(), "--rpc", &rpc(port)],
    );
    assert!(ok, "chain block {height}: {stderr}");
    value["header"]["state_root"]
        .as_str()
        .expect("state root")
        .to_string()
}

fn balance(home: &Path, port: u16, account: &str) -> String {
    let (ok, value, stderr) = wetee(home, &["account", "balance", account, "--rpc", &rpc(port)]);
    assert!(ok, "balance: {stderr}");
    value["free"].to_string()
}

#[test]
fn a_local_testnet_survives_a_killed_validator_and_the_validator_catches_up() {
    let home = tempfile::tempdir().expect("temp dir");
    let base = home.path().join("testnet");
    // Ports derived from the process id, so parallel runs on one machine do not collide.
    let offset = (std::process::id() % 500) as u16 * 8;
    let rpc_port = 20_000 + offset;
    let p2p_port = 25_000 + offset;
    let mut testnet = Command::new(WETEE)
        .args([
            "testnet",
            "--validators",
            "4",
            "--base-dir",
            base.to_str().expect("utf-8 path"),
            "--rpc-port",
            &rpc_port.to_string(),
            "--p2p-port",
            &p2p_port.to_string(),
            "--full-nodes",
            "1",
            "--output",
            "json",
        ])
        .env("WETEE_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wetee testnet starts");
    let stdout = testnet.stdout.take().expect("stdout");
    let mut guard = Processes::default();
    guard.children.push(testnet);
    // The testnet prints one JSON document describing its validators, then stays running.
    let mut reader = BufReader::new(stdout);
    let mut printed = String::new();
    let started: Value = loop {
        let read = reader.read_line(&mut printed).expect("testnet output");
        assert!(read > 0, "the testnet exited: {printed}");
        if let Ok(value) = serde_json::from_str(&printed) {
            break value;
        }
    };
    let validators = started["validators"]
        .as_array()
        .expect("validators")
        .clone();
    assert_eq!(validators.len(), 4);
    let full_nodes = started["full_nodes"]
        .as_array()
        .expect("full nodes")
        .clone();
    assert_eq!(full_nodes.len(), 1);
    guard.others.extend(
        full_nodes
            .iter()
            .filter_map(|v| v["pid"].as_u64())
            .map(|p| p as u32),
    );
    guard.others.extend(
        validators
            .iter()
            .filter_map(|v| v["pid"].as_u64())
            .map(|p| p as u32),
    );

    let ports: Vec<u16> = (0..4).map(|i| rpc_port + i).collect();
    wait_until(
        "every validator to finalize blocks",
        Duration::from_secs(120),
        || {
            ports
                .iter()
                .all(|port| finalized_height(home.path(), *port).unwrap_or(0) >= 2)
        },
    );

    let bob = address_of(home.path(), "//Bob");
    transfer(home.path(), ports[0], &bob);

    // SIGKILL the last validator: no chance to flush anything.
    let victim = &validators[3];
    let victim_pid = victim["pid"].as_u64().expect("pid");
    assert!(
        Command::new("kill")
            .args(["-9", &victim_pid.to_string()])
            .status()
            .expect("kill runs")
            .success()
    );
    let height_at_kill = finalized_height(home.path(), ports[0]).expect("status");
    for _ in 0..3 {
        transfer(home.path(), ports[1], &bob);
    }
    let height_after = finalized_height(home.path(), ports[0]).expect("status");
    assert!(
        height_after > height_at_kill,
        "finality went on with one validator down"
    );

    // Restart it with the same command the testnet used.
    let command: Vec<String> = victim["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|part| part.as_str().expect("string").to_string())
        .collect();
    let log = std::fs::File::create(home.path().join("restarted.log")).expect("log");
    let restarted = Command::new(&command[0])
        .args(&command[1..])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("restart");
    guard.children.push(restarted);

    let target = finalized_height(home.path(), ports[0]).expect("status");
    wait_until(
        "the restarted validator to catch up",
        Duration::from_secs(120),
        || finalized_height(home.path(), ports[3]).unwrap_or(0) >= target,
    );
    assert_eq!(
        state_root(home.path(), ports[3], target),
        state_root(home.path(), ports[0], target),
        "the restarted validator reached the same state root"
    );
    assert_eq!(
        balance(home.path(), ports[3], &bob),
        balance(home.path(), ports[0], &bob)
    );
    // And it takes part again: a transfer submitted to it finalizes.
    transfer(home.path(), ports[3], &bob);

    // The full node followed everything without voting, and relays transactions.
    let full_node = rpc_port + 4;
    let status = status(home.path(), full_node).expect("the full node answers");
    assert_eq!(status["is_validator"], false);
    let target = finalized_height(home.path(), ports[0]).expect("status");
    wait_until("the full node to follow", Duration::from_secs(60), || {
        finalized_height(home.path(), full_node).unwrap_or(0) >= target
    });
    assert_eq!(
        state_root(home.path(), full_node, target),
        state_root(home.path(), ports[0], target)
    );
    transfer(home.path(), full_node, &bob);
    assert_eq!(
        balance(home.path(), full_node, &bob),
        balance(home.path(), ports[0], &bob)
    );
}
