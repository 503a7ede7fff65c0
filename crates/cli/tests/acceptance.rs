//! The worker's acceptance test, with real processes and real Podman: a dev chain, a worker
//! process, the hello example built locally and deployed with the CLI, updated while a client
//! keeps asking (no failed request), its logs read by its owner and refused to anyone else, a
//! periodic task whose results reach the chain, the worker killed and restarted (nothing
//! duplicated, the app still serves), and the app stopped (container gone, deposit refunded).

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use support::{Cleanup, Processes, build, eventually, get, start, walk, wetee};

fn containers_of(scope: &str, app: u64) -> Vec<String> {
    support::containers_of(scope, Some(app))
}

#[test]
fn deploy_update_logs_tasks_restart_and_stop_on_a_dev_chain() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let offset = (std::process::id() % 400) as u16 * 8;
    let (rpc_port, p2p_port, ingress_port) = (34_000 + offset, 38_000 + offset, 42_000 + offset);
    let rpc = format!("ws://127.0.0.1:{rpc_port}");
    let mut cleanup = Cleanup(None);
    let mut processes = Processes::default();

    // Podman's API for the worker.
    let socket = home.join("podman.sock");
    let service = Command::new("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("podman system service (install podman)");
    processes.0.push(service);
    eventually("podman's socket", 30, || socket.exists().then_some(()));

    let chain_args: Vec<String> = [
        "dev",
        "--no-worker",
        "--data-dir",
        &home.join("chain").display().to_string(),
        "--rpc-port",
        &rpc_port.to_string(),
        "--p2p-port",
        &p2p_port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (chain, _) = start(&chain_args, &home.join("chain.log"));
    processes.0.push(chain);

    let config = home.join("worker.toml");
    std::fs::write(
        &config,
        format!(
            r#"stake = "200"
data_dir = "{}"
[chain]
spec = "{}"
[profile]
endpoint = "https://127.0.0.1:{ingress_port}"
region = "local"
level = 1
tee_kinds = ["simulated"]
capacity = {{ cpu_millicores = 4000, memory_mib = 4096, disk_gib = 50, gpus = 0 }}
prices = {{ cpu_millicore = "1000", memory_mib = "1000", disk_gib = "1000", gpu = "0" }}
[backend]
kind = "docker"
socket = "{}"
[ingress]
listen = "127.0.0.1:{ingress_port}"
"#,
            home.join("worker").display(),
            home.join("chain").join("chain.json").display(),
            socket.display()
        ),
    )
    .unwrap();
    let worker_args: Vec<String> = [
        "worker",
        "run",
        "--chain",
        &rpc,
        "--key",
        "//Alice",
        "--config",
        &config.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (worker, running) = start(&worker_args, &home.join("worker.log"));
    processes.0.push(worker);
    let identity: wetee_types::AccountId = running["identity"]
        .as_str()
        .expect("identity")
        .parse()
        .expect("an account");
    let scope = hex::encode(identity.0);
    cleanup.0 = Some(scope.clone());

    // The owner's tools trust this chain (through its spec) and, from it, the worker's TLS key.
    let spec_path = home.join("chain").join("chain.json");
    let spec_file = spec_path.to_str().unwrap();

    // Deploy the hello example and reach it.
    let manifest = build("hello");
    let (ok, deployed, stderr) = wetee(
        &rpc,
        &[
            "app",
            "deploy",
            "-f",
            manifest.to_str().unwrap(),
            "--from",
            "//Bob",
            "--deposit",
            "10",
            "--wait",
        ],
    );
    assert!(ok, "deploy: {deployed} {stderr}");
    let app = deployed["app_id"].as_u64().expect("app id");
    let url = deployed["url"].as_str().expect("url").to_string();
    let (code, body) = get(&url).expect("the app answers");
    assert_eq!(code, 200);
    assert!(body.contains("hello from WeTEE (v1)"), "{body}");

    // Update to v2 while a client keeps asking.
    let v2 = home.join("v2.toml");
    std::fs::write(
        &v2,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("VERSION = \"v1\"", "VERSION = \"v2\""),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let stop = Arc::clone(&stop);
        let url = url.clone();
        std::thread::spawn(move || {
            let (mut answers, mut failures, mut saw_v2) = (0u32, Vec::new(), false);
            while !stop.load(Ordering::Relaxed) {
                match get(&url) {
                    Some((200, body)) => {
                        answers += 1;
                        saw_v2 |= body.contains("(v2)");
                    }
                    other => failures.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (answers, failures, saw_v2)
        })
    };
    let app_id = app.to_string();
    let (ok, updated, stderr) = wetee(
        &rpc,
        &[
            "app",
            "update",
            &app_id,
            "-f",
            v2.to_str().unwrap(),
            "--from",
            "//Bob",
        ],
    );
    assert!(ok, "update: {updated} {stderr}");
    eventually("version two to answer", 60, || {
        get(&url).filter(|(_, body)| body.contains("(v2)"))
    });
    // Until the old container is gone, and a little after.
    eventually("the old version to be removed", 60, || {
        (containers_of(&scope, app).len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (answers, failures, saw_v2) = hammer.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the update: {:?}",
        failures.len(),
        answers as usize + failures.len(),
        failures.first()
    );
    assert!(saw_v2 && answers > 20, "{answers} answers");

    // The owner reads the logs; anyone else is refused.
    let logs = eventually("request lines in the logs", 30, || {
        let (ok, logs, _) = wetee(
            &rpc,
            &[
                "app",
                "logs",
                &app_id,
                "--from",
                "//Bob",
                "--chain-spec",
                spec_file,
            ],
        );
        let text = logs.as_str().unwrap_or_default().to_string();
        (ok && text.contains("response:200")).then_some(text)
    });
    assert!(logs.contains("serving v2"), "{logs}");
    let (ok, refused, _) = wetee(
        &rpc,
        &[
            "app",
            "logs",
            &app_id,
            "--from",
            "//Charlie",
            "--chain-spec",
            spec_file,
        ],
    );
    assert!(!ok);
    let reason = refused["error"].as_str().unwrap_or_default();
    assert!(reason.contains("403"), "{refused}");

    // Version three needs a sealed secret: it waits for it, then serves what only it can read.
    let v3 = home.join("v3.toml");
    std::fs::write(
        &v3,
        std::fs::read_to_string(&v2)
            .unwrap()
            .replace(
                r#"args = ["sh", "/app/serve.sh"]"#,
                r#"args = ["sh", "-c", "mkdir -p /www && cat /run/secrets/API_TOKEN > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
secrets = ["API_TOKEN"]"#,
            ),
    )
    .unwrap();
    let (ok, updated, stderr) = wetee(
        &rpc,
        &[
            "app",
            "update",
            &app_id,
            "-f",
            v3.to_str().unwrap(),
            "--from",
            "//Bob",
        ],
    );
    assert!(ok, "update: {updated} {stderr}");
    let (_, status, _) = wetee(&rpc, &["app", "status", &app_id]);
    assert_eq!(status["status"]["state"], "awaiting_secrets", "{status}");
    let token = format!("tok-{}", std::process::id());
    let secret_file = home.join("secrets.env");
    std::fs::write(
        &secret_file,
        format!(
            "# sealed to the worker
API_TOKEN={token}
"
        ),
    )
    .unwrap();
    let (ok, set, stderr) = wetee(
        &rpc,
        &[
            "app",
            "secrets",
            "set",
            &app_id,
            "--file",
            secret_file.to_str().unwrap(),
            "--from",
            "//Bob",
            "--allow-simulated-tee",
            // Everything sealing acts on is verified against this chain's validators.
            "--chain-spec",
            home.join("chain").join("chain.json").to_str().unwrap(),
        ],
    );
    assert!(ok, "secrets set: {set} {stderr}");
    eventually("the secret to be served", 60, || {
        get(&url).filter(|(_, body)| body.contains(&token))
    });
    let (ok, listed, _) = wetee(&rpc, &["app", "secrets", "list", &app_id]);
    assert!(
        ok && listed["secrets"][0]["name"] == "API_TOKEN",
        "{listed}"
    );
    std::fs::remove_file(&secret_file).unwrap();
    let leaks: Vec<_> = walk(home)
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .is_ok_and(|bytes| bytes.windows(token.len()).any(|w| w == token.as_bytes()))
        })
        .collect();
    assert!(leaks.is_empty(), "the secret in the clear in {leaks:?}");

    // A periodic task runs twice, and both results reach the chain.
    let tick = build("tick-c");
    let (ok, created, stderr) = wetee(
        &rpc,
        &[
            "task",
            "create",
            "-f",
            tick.to_str().unwrap(),
            "--from",
            "//Bob",
            "--deposit",
            "50",
        ],
    );
    assert!(ok, "task create: {created} {stderr}");
    let task = created["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event"] == "task_created"))
        .and_then(|e| e["task"].as_u64())
        .expect("task id");
    let runs = eventually("two task results on chain", 120, || {
        let (ok, runs, _) = wetee(&rpc, &["task", "runs", &task.to_string()]);
        let finished: Vec<Value> = runs
            .as_array()?
            .iter()
            .filter(|run| run["status"] == "finished")
            .cloned()
            .collect();
        (ok && finished.len() >= 2).then_some(finished)
    });
    for run in &runs {
        assert_eq!(run["result"]["exit_code"], 0, "{run}");
    }
    // The owner reads a run's output from the worker.
    let (ok, output, _) = wetee(
        &rpc,
        &[
            "task",
            "logs",
            &task.to_string(),
            "1",
            "--from",
            "//Bob",
            "--chain-spec",
            spec_file,
        ],
    );
    assert!(ok, "{output}");
    assert!(
        output
            .as_str()
            .unwrap_or_default()
            .contains("tick: checksum"),
        "{output}"
    );

    // An app that cannot start: the deployment says why, with its last log lines, which the
    // worker sealed to the owner; the chain shows everyone else only the reason.
    let crashing = home.join("crashing.toml");
    std::fs::write(
        &crashing,
        std::fs::read_to_string(&manifest).unwrap().replace(
            r#"args = ["sh", "/app/serve.sh"]"#,
            r#"args = ["sh", "-c", "echo missing DATABASE_URL; exit 3"]"#,
        ),
    )
    .unwrap();
    let (ok, failed, stderr) = wetee(
        &rpc,
        &[
            "app",
            "deploy",
            "-f",
            crashing.to_str().unwrap(),
            "--from",
            "//Bob",
            "--deposit",
            "10",
            "--wait",
            // The report's log lines are read with a proof from this chain.
            "--chain-spec",
            spec_file,
        ],
    );
    assert!(!ok, "{failed} {stderr}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("code 3"), "{failed}");
    assert!(error.contains("missing DATABASE_URL"), "{failed}");
    let broken = error
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.parse::<u64>().ok())
        .expect("the error names the app")
        .to_string();
    let (ok, public, _) = wetee(&rpc, &["app", "status", &broken]);
    assert!(ok && public["failure"]["log_tail"].is_object(), "{public}");
    assert!(!public.to_string().contains("DATABASE_URL"), "{public}");
    let (ok, opened, _) = wetee(
        &rpc,
        &[
            "app",
            "status",
            &broken,
            "--from",
            "//Bob",
            "--chain-spec",
            spec_file,
        ],
    );
    assert!(ok, "{opened}");
    assert!(
        opened["failure_log"]
            .as_str()
            .is_some_and(|log| log.contains("missing DATABASE_URL")),
        "{opened}"
    );
    let (_, stranger, _) = wetee(
        &rpc,
        &[
            "app",
            "status",
            &broken,
            "--from",
            "//Charlie",
            "--chain-spec",
            spec_file,
        ],
    );
    assert!(stranger["failure_log"].is_null(), "{stranger}");
    assert!(stranger["failure_log_error"].is_string(), "{stranger}");

    // Kill the worker and start it again: nothing duplicated, the app still serves.
    let worker = processes.0.remove(2);
    let mut worker = worker;
    worker.kill().expect("kill -9");
    let _ = worker.wait();
    let (worker, _) = start(&worker_args, &home.join("worker-2.log"));
    processes.0.push(worker);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        containers_of(&scope, app).len(),
        1,
        "{:?}",
        containers_of(&scope, app)
    );
    let (code, body) = eventually("still serving after the restart", 30, || {
        get(&url).filter(|(code, _)| *code == 200)
    });
    assert_eq!(code, 200);
    assert!(body.contains(&token), "{body}");

    // Stop: the container goes and the unused deposit comes back.
    let (ok, stopped, stderr) = wetee(&rpc, &["app", "stop", &app_id, "--from", "//Bob"]);
    assert!(ok, "stop: {stopped} {stderr}");
    let refund = stopped["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event"] == "app_stopped"))
        .and_then(|e| e["refund"].as_str())
        .and_then(|r| r.parse::<u128>().ok())
        .expect("refund");
    assert!(refund > 0);
    eventually("the container to go", 30, || {
        containers_of(&scope, app).is_empty().then_some(())
    });
}
