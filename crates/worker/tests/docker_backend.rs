//! The Docker backend against a real engine (Podman in CI): containers are created with their
//! labels, limits and ports, found again from their labels, logged, metered and removed.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::{ContainerSpec, EnvVar, ImageRef, Port, Protocol};
use wetee_types::{AppId, Resources, TaskId, Workload};
use wetee_worker::backend::docker::DockerBackend;
use wetee_worker::backend::{
    Backend, BackendError, InstanceSpec, InstanceState, LogStream, SecretFile,
};

fn image() -> ImageRef {
    let id = support::busybox_image();
    ImageRef::parse(&format!("localhost/wetee-test-busybox@{id}")).expect("image ref")
}

fn words(words: &[&str]) -> BoundedVec<BoundedString<1024>, 64> {
    BoundedVec::try_new(
        words
            .iter()
            .map(|w| BoundedString::try_new(*w).expect("short"))
            .collect(),
    )
    .expect("few")
}

fn container(args: &[&str], ports: &[u16]) -> ContainerSpec {
    ContainerSpec {
        image: image(),
        command: words(&["/bin/busybox"]),
        args: words(args),
        env: BoundedVec::try_new(vec![EnvVar {
            name: BoundedString::try_new("GREETING").unwrap(),
            value: BoundedString::try_new("hello").unwrap(),
        }])
        .unwrap(),
        secrets: BoundedVec::default(),
        ports: BoundedVec::try_new(
            ports
                .iter()
                .map(|&container| Port {
                    container,
                    protocol: Protocol::Tcp,
                })
                .collect(),
        )
        .unwrap(),
        resources: Resources {
            cpu_millicores: 250,
            memory_mib: 64,
            disk_gib: 1,
            gpus: 0,
        },
        gpu_model: None,
        security: Default::default(),
    }
}

/// Ids unique to this test process, so runs never see each other's containers.
fn unique(offset: u64) -> u64 {
    u64::from(std::process::id()) * 100 + offset
}

async fn backend() -> DockerBackend {
    DockerBackend::connect(
        Some(&support::engine().socket),
        &format!("backend-test-{}", std::process::id()),
    )
    .await
    .expect("the engine answers")
}

#[tokio::test(flavor = "current_thread")]
async fn an_app_replica_runs_serves_logs_and_is_removed() {
    let backend = backend().await;
    let image = backend.prepare_image(&image()).await.expect("local image");
    let spec = InstanceSpec {
        workload: Workload::App {
            app: AppId(unique(1)),
        },
        version: 2,
        replica: 0,
        generation: 0,
        health: None,
        timeout: None,
        container: container(
            &[
                "sh",
                "-c",
                "mkdir -p /www && echo page-$GREETING > /www/index.html && \
                 echo started $GREETING && echo oops >&2 && \
                 exec /bin/busybox httpd -f -p 8080 -h /www",
            ],
            &[8080],
        ),
        secrets: Vec::new(),
    };
    let started = backend.start(&spec, &image).await.expect("started");
    assert!(started.name.ends_with(&spec.name()), "{}", started.name);
    assert_eq!(started.identity, spec.identity());
    let address = *started.endpoints.get(&8080).expect("an address");

    // It serves at its address on its own network, with the manifest's environment.
    let mut response = String::new();
    for _ in 0..50 {
        response = support::http_get_at(address, "/");
        if response.contains("page-") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(response.contains("page-hello"), "{response}");

    // Found again from its labels alone, as after a worker restart.
    let listed = backend.list().await.expect("list");
    let found = listed.iter().find(|i| i.id == started.id).expect("listed");
    assert_eq!(found.state, InstanceState::Running);
    assert_eq!(found.identity.workload, spec.workload);

    // The same instance twice is refused by the engine, not duplicated.
    assert!(backend.start(&spec, &image).await.is_err());

    let logs = backend.logs(&started.id, 100).await.expect("logs");
    assert!(
        logs.iter()
            .any(|l| l.text == "started hello" && l.stream == LogStream::Stdout)
    );
    assert!(
        logs.iter()
            .any(|l| l.text == "oops" && l.stream == LogStream::Stderr)
    );

    let usage = backend.usage(&started.id).await.expect("usage");
    assert!(usage.memory_bytes > 0, "{usage:?}");

    backend
        .remove(&started.id, Duration::from_secs(2))
        .await
        .expect("removed");
    let listed = backend.list().await.expect("list");
    assert!(listed.iter().all(|i| i.id != started.id));
    // Removing what is gone is not an error: reconciling twice is harmless.
    backend
        .remove(&started.id, Duration::from_secs(2))
        .await
        .expect("removed again");
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_run_exits_with_its_code() {
    let backend = backend().await;
    let image = backend.prepare_image(&image()).await.expect("local image");
    let spec = InstanceSpec {
        workload: Workload::TaskRun {
            task: TaskId(unique(2)),
            run: 3,
        },
        version: 1,
        replica: 0,
        generation: 0,
        health: None,
        timeout: None,
        container: container(&["sh", "-c", "echo working; exit 3"], &[]),
        secrets: Vec::new(),
    };
    let started = backend.start(&spec, &image).await.expect("started");
    let mut state = started.state.clone();
    for _ in 0..100 {
        let listed = backend.list().await.expect("list");
        state = listed
            .into_iter()
            .find(|i| i.id == started.id)
            .expect("listed")
            .state;
        if matches!(state, InstanceState::Exited { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, InstanceState::Exited { code: 3 });
    let logs = backend.logs(&started.id, 10).await.expect("logs");
    assert!(logs.iter().any(|l| l.text == "working"));
    backend
        .remove(&started.id, Duration::from_secs(1))
        .await
        .expect("removed");
}

#[tokio::test(flavor = "current_thread")]
async fn an_image_that_is_not_here_and_cannot_be_pulled_is_a_clear_error() {
    let backend = backend().await;
    let missing = ImageRef::parse(&format!("localhost:1/nothing@sha256:{}", "ab".repeat(32)))
        .expect("image ref");
    let error = backend.prepare_image(&missing).await.expect_err("missing");
    let text = error.to_string();
    assert!(text.contains("pulling failed"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_run_past_its_timeout_is_killed_and_kept() {
    // Its own scope: a reconciler removes whatever else it finds in its scope.
    let backend = DockerBackend::connect(
        Some(&support::engine().socket),
        &format!("timeout-test-{}", std::process::id()),
    )
    .await
    .expect("the engine answers");
    let spec = InstanceSpec {
        workload: Workload::TaskRun {
            task: TaskId(unique(3)),
            run: 1,
        },
        version: 1,
        replica: 0,
        generation: 0,
        container: container(&["sleep", "30"], &[]),
        secrets: Vec::new(),
        health: None,
        timeout: Some(Duration::from_secs(1)),
    };
    let mut reconciler = wetee_worker::reconcile::Reconciler::new(backend.clone());
    let started = std::time::Instant::now();
    let mut state = InstanceState::Running;
    while started.elapsed() < Duration::from_secs(20) {
        reconciler
            .reconcile(std::slice::from_ref(&spec))
            .await
            .expect("pass");
        let listed = backend.list().await.expect("list");
        if let Some(instance) = listed.iter().find(|i| i.identity == spec.identity()) {
            state = instance.state.clone();
            if matches!(state, InstanceState::Exited { .. }) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, InstanceState::Exited { code: 137 });
    assert!(started.elapsed() < Duration::from_secs(10));
    // Kept, as the run's record, while the chain still lists the run.
    let pass = reconciler
        .reconcile(std::slice::from_ref(&spec))
        .await
        .unwrap();
    assert!(pass.is_quiet(), "{pass:?}");
    // Only this test's container: the others share the scope and run alongside.
    for instance in backend.list().await.unwrap() {
        if instance.identity == spec.identity() {
            backend
                .remove(&instance.id, Duration::from_secs(1))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_are_files_in_memory_and_nowhere_in_the_container_config() {
    let shm = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
    let secrets_dir = shm.path().join("secrets");
    let backend = backend()
        .await
        .with_secrets_dir(&secrets_dir)
        .expect("a tmpfs is accepted");
    let mode = std::fs::metadata(&secrets_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let image = backend.prepare_image(&image()).await.expect("local image");
    let mut value = [0u8; 16];
    getrandom::getrandom(&mut value).unwrap();
    let value = hex::encode(value);
    let spec = InstanceSpec {
        workload: Workload::TaskRun {
            task: TaskId(unique(4)),
            run: 1,
        },
        version: 1,
        replica: 0,
        generation: 0,
        health: None,
        timeout: None,
        container: container(
            &[
                "sh",
                "-c",
                "echo token=$(cat /run/secrets/API_TOKEN); \
                 touch /run/secrets/new 2>/dev/null && echo writable || echo read-only; \
                 exec sleep 30",
            ],
            &[],
        ),
        secrets: vec![SecretFile {
            name: "API_TOKEN".into(),
            value: value.clone().into_bytes().into(),
        }],
    };
    assert!(!format!("{spec:?}").contains(&value));
    let started = backend.start(&spec, &image).await.expect("started");

    // The container reads it, and cannot write there.
    let mut logs = Vec::new();
    for _ in 0..100 {
        logs = backend.logs(&started.id, 10).await.expect("logs");
        if logs.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<&str> = logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, [format!("token={value}").as_str(), "read-only"]);

    // On the host, it is a file on a tmpfs, in a directory of the container's own.
    let instance_dir = secrets_dir.canonicalize().unwrap().join(&started.name);
    let file = instance_dir.join("API_TOKEN");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), value);
    let fs_type = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&file)
        .output()
        .expect("stat runs");
    assert_eq!(String::from_utf8_lossy(&fs_type.stdout).trim(), "tmpfs");

    // Neither the engine's answer nor its own full inspection mentions the value.
    let docker = bollard::Docker::connect_with_unix(
        &support::engine().socket,
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let inspected = docker.inspect_container(&started.id, None).await.unwrap();
    let inspected = serde_json::to_string(&inspected).unwrap();
    assert!(inspected.contains("/run/secrets"), "{inspected}");
    assert!(!inspected.contains(&value));
    let cli = std::process::Command::new(support::engine().cli)
        .args(["inspect", &started.id])
        .output()
        .expect("inspect runs");
    assert!(cli.status.success());
    assert!(!String::from_utf8_lossy(&cli.stdout).contains(&value));

    // Starting it again is refused and leaves the running instance's secrets alone.
    assert!(backend.start(&spec, &image).await.is_err());
    assert!(file.exists());

    backend
        .remove(&started.id, Duration::from_secs(1))
        .await
        .expect("removed");
    assert!(!instance_dir.exists());
}

#[tokio::test(flavor = "current_thread")]
async fn a_secrets_dir_on_disk_is_refused_and_so_are_bad_names() {
    // The target directory is on a disk (`/tmp` may be a tmpfs).
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory on disk");
    let error = backend()
        .await
        .with_secrets_dir(&disk.path().join("secrets"))
        .expect_err("a disk is refused");
    assert!(matches!(error, BackendError::Secrets(_)), "{error}");
    assert!(error.to_string().contains("not in memory"), "{error}");
    assert!(!disk.path().join("secrets").exists());

    // In memory, but open to others: refused too.
    let shm = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
    std::fs::set_permissions(shm.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let error = backend()
        .await
        .with_secrets_dir(shm.path())
        .expect_err("others can read it");
    assert!(error.to_string().contains("0700"), "{error}");

    // A symbolic link, which whoever owns it could point elsewhere: refused.
    let target = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
    let link = shm.path().join("link");
    std::os::unix::fs::symlink(target.path(), &link).unwrap();
    let error = backend()
        .await
        .with_secrets_dir(&link)
        .expect_err("a link is refused");
    assert!(error.to_string().contains("symbolic link"), "{error}");

    let secrets_dir = shm.path().join("secrets");
    let backend = backend().await.with_secrets_dir(&secrets_dir).unwrap();
    let image = backend.prepare_image(&image()).await.expect("local image");
    let spec = InstanceSpec {
        workload: Workload::TaskRun {
            task: TaskId(unique(5)),
            run: 1,
        },
        version: 1,
        replica: 0,
        generation: 0,
        health: None,
        timeout: None,
        container: container(&["true"], &[]),
        secrets: vec![SecretFile {
            name: "../escape".into(),
            value: b"hidden-value".to_vec().into(),
        }],
    };
    let error = backend.start(&spec, &image).await.expect_err("refused");
    assert!(matches!(error, BackendError::Secrets(_)), "{error}");
    // Nothing of it is left behind: no network either.
    let networks = std::process::Command::new(support::engine().cli)
        .args(["network", "ls", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    let networks = String::from_utf8_lossy(&networks.stdout);
    assert!(
        !networks.contains(&format!("-task-{}", unique(5))),
        "{networks}"
    );
    assert!(!error.to_string().contains("hidden-value"));
    assert_eq!(std::fs::read_dir(&secrets_dir).unwrap().count(), 0);
    assert!(!shm.path().join("escape").exists());
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_left_by_gone_containers_are_swept_and_nobody_elses() {
    let dir = support::own_secrets_dir("sweep");
    let scope = format!("sweep-test-{}", std::process::id());
    let backend = DockerBackend::connect(Some(&support::engine().socket), &scope)
        .await
        .expect("the engine answers")
        .with_secrets_dir(&dir)
        .expect("secrets dir");
    // What a worker killed between writing secrets and creating the container leaves.
    let prefix: String = scope.chars().take(12).collect();
    let leftover = dir.join(format!("wetee-{prefix}-app-1-v1-r0-g0"));
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("API_TOKEN"), "s3cret").unwrap();
    // Another worker's, sharing the directory.
    let neighbours = dir.join("wetee-otherworker0-app-1-v1-r0-g0");
    std::fs::create_dir(&neighbours).unwrap();
    backend.list().await.expect("list");
    assert!(!leftover.exists(), "a leftover secret stayed in memory");
    assert!(neighbours.exists(), "another worker's secrets were removed");
    std::fs::remove_dir_all(&dir).unwrap();
}
