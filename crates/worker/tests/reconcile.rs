//! The worker against a real dev chain (in process) and a real engine (Podman): it registers
//! itself, runs the app the chain places on it, replaces it on update without a gap, restarts it
//! when it dies, and removes it when the owner stops it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::rpc::Client;
use wetee_types::transaction::AppsCall;
use wetee_types::{AppId, Call, Workload};
use wetee_worker::backend::docker::DockerBackend;
use wetee_worker::backend::{Backend, InstanceState};
use wetee_worker::chain::ensure_registered;
use wetee_worker::identity::WorkerIdentity;
use wetee_worker::ingress::Routes;
use wetee_worker::reconcile::Reconciler;
use wetee_worker::revisions::SecretRevisions;

async fn serving(backend: &DockerBackend, app: AppId) -> Option<(u32, String)> {
    let instances = backend.list().await.ok()?;
    let live: Vec<_> = instances
        .iter()
        .filter(|i| i.identity.workload == Workload::App { app })
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    let instance = live.iter().max_by_key(|i| i.identity.version)?;
    let address = *instance.endpoints.get(&8080)?;
    for _ in 0..50 {
        let response = support::http_get_at(address, "/");
        if response.starts_with("HTTP/1.") && response.contains(" 200 ") {
            return Some((instance.identity.version, response));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_updates_restarts_and_removes_what_the_chain_assigns() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 40);
    let client = Client::connect(&rpc).await.expect("connect");
    let light = LightClient::connect(&rpc, &Trust::GenesisHash(genesis))
        .await
        .expect("the node serves the chain");
    let engine = support::engine();
    let config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    let identity = WorkerIdentity::open_unprotected(&config.data_dir).unwrap();
    let revisions = SecretRevisions::load(&config.data_dir).unwrap();
    let mut known = wetee_worker::chain::ProvenApps::default();
    let operator = dev_keypair("Alice");
    let scope = hex::encode(identity.keys().identity);
    let worker = ensure_registered(&light, &operator, &identity, &config, &scope)
        .await
        .expect("registered");
    // Registering again finds the same worker and does nothing.
    assert_eq!(
        ensure_registered(&light, &operator, &identity, &config, &scope)
            .await
            .unwrap(),
        worker
    );
    let _cleanup = support::Cleanup(scope.clone());
    let backend = DockerBackend::connect(Some(&engine.socket), &scope)
        .await
        .unwrap();
    let routes = Arc::new(Routes::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = listener.local_addr().unwrap().port();
    let ingress_api =
        wetee_worker::ingress::Ingress::new(Arc::clone(&routes), "localhost", Default::default());
    tokio::spawn(Arc::new(ingress_api).serve(listener, std::future::pending()));
    let mut reconciler = Reconciler::new(backend.clone()).with_routes(Arc::clone(&routes));

    // Bob deploys: the chain places the app on our worker, the worker runs it.
    let bob = dev_keypair("Bob");
    let app = support::create_app(&client, &bob, support::app_spec("version-one")).await;
    let desired = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap()
        .desired;
    assert_eq!(desired.len(), 1, "{desired:?}");
    let pass = reconciler.reconcile(&desired).await.unwrap();
    assert_eq!(pass.started.len(), 1, "{pass:?}");
    let (version, page) = serving(&backend, app).await.expect("serves");
    assert!(page.contains("version-one"), "{page}");
    // Until it answers, the ingress has no route; then passes route to it.
    let mut through_ingress = String::new();
    for _ in 0..50 {
        reconciler.reconcile(&desired).await.unwrap();
        through_ingress = support::http_get(ingress, &format!("/{}/", app.0));
        if through_ingress.contains("version-one") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(through_ingress.contains(" 200 "), "{through_ingress}");
    assert!(through_ingress.contains("version-one"), "{through_ingress}");
    // A second pass with nothing new changes nothing.
    assert!(reconciler.reconcile(&desired).await.unwrap().is_quiet());

    // While the update rolls, a client keeps asking through the ingress.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client_done = Arc::clone(&done);
    let hammer = std::thread::spawn(move || {
        let (mut ok, mut failed, mut saw_two) = (0u32, Vec::new(), false);
        while !client_done.load(std::sync::atomic::Ordering::Relaxed) {
            let response = support::http_get(ingress, &format!("/{}/", app.0));
            if response.contains(" 200 ") {
                ok += 1;
                saw_two |= response.contains("version-two");
            } else {
                failed.push(response);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (ok, failed, saw_two)
    });

    // An update starts the new version, then removes the old one.
    client
        .send(
            &bob,
            Call::Apps(AppsCall::Update {
                app,
                spec: support::app_spec("version-two"),
                secrets_grant: None,
            }),
            |_| {},
        )
        .await
        .expect("updated");
    let desired = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap()
        .desired;
    let (mut started, mut removed) = (0, 0);
    for _ in 0..100 {
        let pass = reconciler.reconcile(&desired).await.unwrap();
        started += pass.started.len();
        removed += pass.removed.len();
        if removed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!((started, removed), (1, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, saw_two) = hammer.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} requests failed during the update: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        ok > 10 && saw_two,
        "{ok} answers, version two seen: {saw_two}"
    );
    let (new_version, page) = serving(&backend, app).await.expect("serves");
    assert!(new_version > version);
    assert!(page.contains("version-two"), "{page}");

    // The container dies: the next pass starts it again.
    let running = backend
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.identity.workload == Workload::App { app } && i.identity.version == new_version)
        .expect("running");
    let killed = std::process::Command::new(engine.cli)
        .args(["kill", &running.id])
        .output()
        .expect("kill");
    assert!(killed.status.success());
    let mut restarted = false;
    for _ in 0..40 {
        let pass = reconciler.reconcile(&desired).await.unwrap();
        if !pass.started.is_empty() {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restarted, "the dead container was replaced");
    assert!(serving(&backend, app).await.is_some());

    // Bob stops the app: the worker removes its container.
    client
        .send(&bob, Call::Apps(AppsCall::Stop { app }), |_| {})
        .await
        .expect("stopped");
    let desired = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap()
        .desired;
    assert!(desired.is_empty());
    let pass = reconciler.reconcile(&desired).await.unwrap();
    assert_eq!(pass.removed.len(), 1, "{pass:?}");
    // Removal happens aside (it may take the stop grace period).
    let mut gone = false;
    for _ in 0..100 {
        gone = backend
            .list()
            .await
            .unwrap()
            .iter()
            .all(|i| i.identity.workload != Workload::App { app });
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the stopped app's container was removed");
}
