//! Tenant isolation against a real engine (Podman in CI), tried from inside a tenant's
//! container as a hostile tenant would: its neighbours' containers cannot be reached, raw and
//! packet sockets, mounts and writes outside its writable layer are refused, nothing outside
//! its container is visible to attach to, a fork bomb stops at its process limit while the
//! neighbour keeps serving, disk is sold only where the engine caps it, a workload denied
//! egress opens no connection beyond its own network while it still serves, and no tenant is
//! put on a network the worker did not make (and check to be isolated) itself.

mod support;

use std::process::Command;
use std::time::Duration;

use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::{Capability, ContainerSpec, Egress, Security};
use wetee_types::{AppId, Workload};
use wetee_worker::backend::docker::DockerBackend;
use wetee_worker::backend::{Backend, Instance, InstanceSpec};

/// Processes per container in these tests: small, so that the fork bomb ends quickly.
const PIDS_LIMIT: u32 = 48;

fn words(words: &[&str]) -> BoundedVec<BoundedString<1024>, 64> {
    BoundedVec::try_new(words.iter().map(|w| support::text(w)).collect()).expect("few")
}

/// A busybox web server answering `page` on port 8080.
fn server(page: &str, security: Security) -> ContainerSpec {
    let mut container = support::app_spec(page).container;
    container.security = security;
    container
}

fn replica(app: AppId, replica: u32, container: ContainerSpec) -> InstanceSpec {
    InstanceSpec {
        workload: Workload::App { app },
        version: 1,
        replica,
        generation: 0,
        container,
        health: None,
        timeout: None,
        secrets: Vec::new(),
    }
}

/// Runs `script` in the container `name` (as its tenant could); whether it succeeded, and its
/// output.
fn inside(name: &str, script: &str) -> (bool, String) {
    let output = Command::new(support::engine().cli)
        .args(["exec", name, "/bin/busybox", "sh", "-c", script])
        .output()
        .expect("exec runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A shell command fetching `/` from `host:port` over TCP, failing when it cannot connect.
fn get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}")
}

fn address_of(name: &str) -> String {
    let output = Command::new(support::engine().cli)
        .args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ])
        .output()
        .expect("inspect runs");
    let address = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(!address.is_empty(), "{name} has no address");
    address
}

/// The names of the engine's networks, one per line.
fn network_names() -> String {
    let output = Command::new(support::engine().cli)
        .args(["network", "ls", "--format", "{{.Name}}"])
        .output()
        .expect("network ls runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn serving(instance: &Instance, page: &str) {
    let address = *instance.endpoints.get(&8080).expect("an address");
    support::eventually(&format!("{} to serve", instance.name), 30, async || {
        support::http_get_at(address, "/")
            .contains(page)
            .then_some(())
    })
    .await;
}

async fn backend(test: &str) -> (DockerBackend, support::Cleanup) {
    let scope = format!("isolation-{test}-{}", std::process::id());
    let backend = DockerBackend::connect(Some(&support::engine().socket), &scope)
        .await
        .expect("the engine answers")
        .with_pids_limit(PIDS_LIMIT);
    (backend, support::Cleanup(scope))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_its_neighbours_or_leave_its_container() {
    let (backend, _cleanup) = backend("tenants").await;
    let image = backend
        .prepare_image(&server("x", Security::default()).image)
        .await
        .expect("local image");
    let (mallory, alice) = (AppId(u64::from(std::process::id())), AppId(1));
    let mut started = Vec::new();
    for (app, replica_index, page) in [
        (mallory, 0, "mallory-0"),
        (mallory, 1, "mallory-1"),
        (alice, 0, "alice"),
    ] {
        let instance = backend
            .start(
                &replica(app, replica_index, server(page, Security::default())),
                &image,
            )
            .await
            .expect("started");
        serving(&instance, page).await;
        started.push(instance);
    }
    let [attacker, sibling, neighbour] = <[Instance; 3]>::try_from(started).expect("three");
    let me = attacker.name.as_str();
    let neighbour_ip = address_of(&neighbour.name);
    let sibling_ip = address_of(&sibling.name);
    let neighbour_address = neighbour.endpoints[&8080];

    // A replica of the same app is reachable; another tenant is not, neither directly nor
    // through the host, where nothing of it is published.
    let (ok, page) = inside(me, &get(&sibling_ip, 8080));
    assert!(ok && page.contains("mallory-1"), "{page}");
    let (ok, out) = inside(me, &get(&neighbour_ip, 8080));
    assert!(
        !ok && !out.contains("alice"),
        "the neighbour answered directly: {out}"
    );
    let gateway = inside(me, "ip route | awk '/default/ {print $3}'").1;
    let published = Command::new(support::engine().cli)
        .args(["port", &neighbour.name])
        .output()
        .expect("port runs");
    assert!(
        String::from_utf8_lossy(&published.stdout).trim().is_empty(),
        "the neighbour is published on the host: {}",
        String::from_utf8_lossy(&published.stdout)
    );
    let (ok, out) = inside(me, &get(gateway.trim(), 8080));
    assert!(
        !ok && !out.contains("alice"),
        "the neighbour answered through the host: {out}"
    );

    // No capability, no privilege gain, a system call filter, its own user ids (Podman).
    let (_, status) = inside(me, "cat /proc/self/status");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    if support::engine().cli == "podman" {
        let (_, map) = inside(me, "cat /proc/self/uid_map");
        let host_id: u64 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_ne!(
            host_id, 0,
            "root in the container is root on the host: {map}"
        );
    }

    // Raw and packet sockets (ARP spoofing, forged packets) are refused.
    let (ok, out) = inside(me, &format!("ping -c 1 -W 1 {neighbour_ip}"));
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = inside(me, &format!("arping -c 1 -w 1 -I eth0 {sibling_ip}"));
    assert!(!ok && out.contains("not permitted"), "{out}");

    // No mount, and nothing outside its container to attach to: the only processes it sees
    // are its own, so neither the worker nor a neighbour can be traced.
    let (ok, out) = inside(me, "mkdir -p /m && mount -t tmpfs none /m");
    assert!(!ok, "mounted: {out}");
    let (_, processes) = inside(me, "ls /proc | grep -c '^[0-9]'");
    let visible: u32 = processes.trim().parse().unwrap();
    assert!(visible <= 4, "{visible} processes visible");
    let (_, init) = inside(me, "tr '\\0' ' ' < /proc/1/cmdline");
    assert!(init.contains("httpd"), "{init}");

    // Writing outside the writable layer fails.
    for target in ["/proc/sys/kernel/core_pattern", "/sys/kernel/uevent_helper"] {
        let (ok, out) = inside(me, &format!("echo x > {target}"));
        assert!(!ok, "wrote {target}: {out}");
    }

    // A fork bomb stops at the process limit, and the neighbour keeps serving meanwhile.
    let bomb = std::thread::spawn({
        let me = me.to_string();
        move || {
            inside(
                &me,
                "i=0; while [ $i -lt 200 ]; do sleep 20 & i=$((i+1)); done; echo forked-all",
            )
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = support::http_get_at(neighbour_address, "/");
    assert!(page.contains("alice"), "{page}");
    let (_, out) = tokio::task::spawn_blocking(move || bomb.join().unwrap())
        .await
        .unwrap();
    assert!(!out.contains("forked-all"), "200 processes forked: {out}");
    assert!(out.contains("can't fork"), "{out}");
    let (_, count) = inside(me, "ls /proc | grep -c '^[0-9]'");
    assert!(
        count.trim().parse::<u32>().unwrap_or(0) <= PIDS_LIMIT,
        "{count}"
    );

    // Removing a tenant's last replica removes its network; the other's stays.
    backend
        .remove(&attacker.id, Duration::ZERO)
        .await
        .expect("removed");
    backend
        .remove(&sibling.id, Duration::ZERO)
        .await
        .expect("removed");
    let networks = network_names();
    assert!(!networks.contains(&format!("-app-{mallory}")), "{networks}");
    assert!(networks.contains(&format!("-app-{alice}")), "{networks}");
    serving(&neighbour, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_the_worker_did_not_make_is_never_used() {
    let engine = support::engine();
    let (backend, cleanup) = backend("unisolated").await;
    let container = server("x", Security::default());
    let image = backend
        .prepare_image(&container.image)
        .await
        .expect("local image");
    let app = AppId(u64::from(std::process::id()));
    let first = backend
        .start(&replica(app, 0, container.clone()), &image)
        .await
        .expect("started");
    let network = String::from_utf8(
        Command::new(engine.cli)
            .args([
                "inspect",
                "-f",
                "{{index .Config.Labels \"wetee.network\"}}",
                &first.name,
            ])
            .output()
            .expect("inspect runs")
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    backend
        .remove(&first.id, Duration::ZERO)
        .await
        .expect("removed");
    assert!(!network_names().lines().any(|n| n == network), "released");
    // A network of that name made by someone else, without isolation: the worker finds it
    // and refuses to put a tenant on it.
    let created = Command::new(engine.cli)
        .args(["network", "create", &network])
        .output()
        .expect("network create runs");
    assert!(created.status.success(), "{created:?}");
    let refused = backend
        .start(&replica(app, 0, container.clone()), &image)
        .await
        .expect_err("a tenant on a network other tenants can reach")
        .to_string();
    assert!(
        refused.contains("did not create it") && refused.contains(&network),
        "{refused}"
    );
    assert!(
        backend.list().await.unwrap().is_empty(),
        "nothing left running"
    );
    // Once it is gone, the worker makes its own, checked to be isolated, and the app starts.
    let removed = Command::new(engine.cli)
        .args(["network", "rm", &network])
        .output()
        .expect("network rm runs");
    assert!(removed.status.success(), "{removed:?}");
    let again = backend
        .start(&replica(app, 0, container), &image)
        .await
        .expect("started on a network of its own");
    serving(&again, "x").await;
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_gets_back_only_what_it_asks_for() {
    let (backend, _cleanup) = backend("security").await;
    let security = Security {
        capabilities: BoundedVec::try_new(vec![Capability::Chown]).unwrap(),
        read_only_root: true,
        ..Security::default()
    };
    // A read-only root: the page is written to /tmp, the one writable place.
    let mut container = server("x", security);
    container.args = words(&[
        "sh",
        "-c",
        "echo ro > /tmp/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp",
    ]);
    let image = backend
        .prepare_image(&container.image)
        .await
        .expect("local image");
    let app = AppId(u64::from(std::process::id()));
    let instance = backend
        .start(&replica(app, 0, container), &image)
        .await
        .expect("started");
    serving(&instance, "ro").await;
    let (_, status) = inside(&instance.name, "grep CapEff /proc/self/status");
    // CAP_CHOWN is bit 0, and nothing else.
    assert!(status.contains("0000000000000001"), "{status}");
    let (ok, out) = inside(&instance.name, "touch /written");
    assert!(!ok && out.contains("Read-only"), "{out}");
    let (ok, out) = inside(&instance.name, "touch /tmp/written");
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_denied_egress_reaches_only_its_replicas_and_still_serves() {
    let (backend, _cleanup) = backend("egress").await;
    // A service of the worker's machine, on every address: what an app could phone home to.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            use std::io::Write as _;
            let _ = stream.write_all(b"host-answered\n");
        }
    });
    let image = backend
        .prepare_image(&server("x", Security::default()).image)
        .await
        .expect("local image");
    // Ids no other test here uses: their networks' names are asserted on.
    let (open, closed) = (AppId(3), AppId(4));
    let denied = Security {
        egress: Egress::Denied,
        ..Security::default()
    };
    if !rustix::process::geteuid().is_root() {
        // Only root can add the rules: a workload denied egress is refused, never run open.
        let refused = backend
            .start(&replica(closed, 0, server("closed", denied)), &image)
            .await
            .expect_err("started without its egress denied");
        assert!(refused.to_string().contains("denying egress"), "{refused}");
        return;
    }
    let mut started = Vec::new();
    for (app, replica_index, page, security) in [
        (open, 0, "open", Security::default()),
        (closed, 0, "closed-0", denied.clone()),
        (closed, 1, "closed-1", denied.clone()),
    ] {
        let instance = backend
            .start(&replica(app, replica_index, server(page, security)), &image)
            .await
            .expect("started");
        // Reached through its published port, as the ingress reaches it.
        serving(&instance, page).await;
        started.push(instance);
    }
    let [open_one, closed_one, closed_two] = <[Instance; 3]>::try_from(started).expect("three");
    let gateway_of = |name: &str| inside(name, "ip route | awk '/default/ {print $3}'").1;
    let open_gateway = gateway_of(&open_one.name);
    let closed_gateway = gateway_of(&closed_one.name);

    // The machine's service answers a container whose egress is open ...
    let (ok, out) = inside(&open_one.name, &get(open_gateway.trim(), host_port));
    assert!(ok && out.contains("host-answered"), "{out}");
    // ... and no container denied egress: not through its own gateway, not through another
    // address of the machine.
    for address in [closed_gateway.trim(), open_gateway.trim()] {
        let (ok, out) = inside(&closed_one.name, &get(address, host_port));
        assert!(
            !ok && !out.contains("host-answered"),
            "reached {address}: {out}"
        );
    }
    // Its replicas still reach each other.
    let (ok, page) = inside(&closed_one.name, &get(&address_of(&closed_two.name), 8080));
    assert!(ok && page.contains("closed-1"), "{page}");

    // Its network and its rules go with its last replica.
    for instance in [&closed_one, &closed_two] {
        backend
            .remove(&instance.id, Duration::ZERO)
            .await
            .expect("removed");
    }
    let networks = network_names();
    assert!(
        !networks.contains(&format!("-app-{closed}-noegress")),
        "{networks}"
    );
    let rules = Command::new("iptables")
        .args(["-w", "-t", "mangle", "-S"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        !rules.contains(&format!("-app-{closed}-noegress")),
        "{rules}"
    );
    backend
        .remove(&open_one.id, Duration::ZERO)
        .await
        .expect("removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_is_sold_only_where_the_engine_caps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 20);
    let engine = support::engine();
    let caps_disk = DockerBackend::connect(Some(&engine.socket), "disk-probe")
        .await
        .expect("the engine answers")
        .caps_disk();
    let mut config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    config.ingress.listen = "127.0.0.1:0".parse().unwrap();
    let configured = config.profile.capacity.disk_gib;
    assert!(configured > 0);
    let agent = support::start_worker(config, &rpc).await;
    let running = agent.running.clone();
    let _cleanup = support::Cleanup(hex::encode(running.identity.0));
    let client = wetee_client::rpc::Client::connect(&rpc).await.unwrap();
    let offered = client
        .worker(running.worker)
        .await
        .unwrap()
        .unwrap()
        .profile
        .capacity
        .disk_gib;
    let bob = wetee_client::keys::dev_keypair("Bob");
    let mut spec = support::app_spec("with-disk");
    spec.container.resources.disk_gib = 1;
    let app = support::create_app(&client, &bob, spec).await;

    if caps_disk {
        // The engine caps the writable layer: disk is sold, and writing past it fails.
        assert_eq!(offered, configured);
        let name = support::eventually("the app's container", 60, async || {
            let output = Command::new(engine.cli)
                .args(["ps", "--format", "{{.Names}}", "--filter"])
                .arg(format!("label=wetee.app={}", app.0))
                .output()
                .ok()?;
            let names = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (!names.is_empty()).then_some(names)
        })
        .await;
        let (ok, out) = inside(&name, "dd if=/dev/zero of=/www/fill bs=1M count=1200 2>&1");
        assert!(!ok, "wrote past disk_gib: {out}");
        assert!(out.contains("No space") || out.contains("quota"), "{out}");
    } else {
        // It cannot: the worker offers no disk, and the app waits, saying why.
        assert_eq!(offered, 0, "a worker whose engine cannot cap disk sells it");
        let record = client.app(app).await.unwrap().unwrap();
        assert_eq!(record.status, wetee_types::records::AppStatus::Pending);
        let reason = client
            .pending_reason(Workload::App { app })
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(reason.contains("sells disk"), "{reason}");
    }
    agent.stop().await;
}
