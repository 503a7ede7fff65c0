//! Sealed secrets end to end, against a real dev chain (in process) and a real engine (Podman):
//! the owner seals a secret to the worker's attested key, the worker opens it in its TEE and the
//! container reads it from /run/secrets; nothing else (chain, worker disk, another worker) holds
//! it in the clear, and a rotated value replaces the container.

mod support;

use std::path::Path;
use std::time::Duration;

use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::rpc::Client;
use wetee_client::secrets::{SealOptions, SecretValue, seal};
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::records::AppStatus;
use wetee_types::transaction::AppsCall;
use wetee_types::{AppId, Call, Workload};
use wetee_worker::backend::docker::DockerBackend;
use wetee_worker::backend::{Backend, InstanceState};
use wetee_worker::chain::{ensure_registered, open_secrets};
use wetee_worker::identity::WorkerIdentity;
use wetee_worker::reconcile::Reconciler;
use wetee_worker::revisions::SecretRevisions;
use zeroize::Zeroizing;

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    format!("tok-{}", hex::encode(bytes))
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

async fn page(backend: &DockerBackend, app: AppId, generation: u32) -> Option<String> {
    for _ in 0..100 {
        let instances = backend.list().await.ok()?;
        let address = instances
            .iter()
            .filter(|i| i.identity.workload == Workload::App { app })
            .filter(|i| i.identity.generation == generation && i.state == InstanceState::Running)
            .find_map(|i| i.endpoints.get(&8080).copied());
        if let Some(address) = address {
            let response = support::http_get_at(address, "/");
            if response.contains(" 200 ") {
                return Some(response);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_secret_reaches_the_container_and_nothing_else() {
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
    let scope = hex::encode(identity.keys().identity);
    let worker = ensure_registered(&light, &dev_keypair("Alice"), &identity, &config, &scope)
        .await
        .expect("registered");
    let _cleanup = support::Cleanup(scope.clone());
    let backend = DockerBackend::connect(Some(&engine.socket), &scope)
        .await
        .unwrap()
        .with_secrets_dir(&config.backend.secrets_dir)
        .unwrap();
    let mut reconciler = Reconciler::new(backend.clone());

    // Bob's app reads its token from /run/secrets and serves it (a stand-in for using it).
    let bob = dev_keypair("Bob");
    let mut spec = support::app_spec("unused");
    let script = "mkdir -p /www && cat /run/secrets/API_TOKEN > /www/index.html && \
                  exec /bin/busybox httpd -f -p 8080 -h /www";
    spec.container.args = BoundedVec::try_new(vec![
        support::text("sh"),
        support::text("-c"),
        support::text(script),
    ])
    .unwrap();
    spec.container.secrets =
        BoundedVec::try_new(vec![BoundedString::try_new("API_TOKEN").unwrap()]).unwrap();
    let app = support::create_app(&client, &bob, spec).await;
    assert_eq!(
        client.app(app).await.unwrap().unwrap().status,
        AppStatus::AwaitingSecrets
    );
    assert!(
        support::next_view(&light, worker, &identity, &revisions, &mut known)
            .await
            .unwrap()
            .desired
            .is_empty()
    );

    // Bob seals the token to the worker's attested key (verified locally first).
    let simulated = SealOptions {
        allow_simulated: true,
        ..SealOptions::default()
    };
    let token = random_token();
    let values = [SecretValue {
        name: "API_TOKEN".into(),
        value: Zeroizing::new(token.as_bytes().to_vec()),
    }];
    // The simulated TEE protects nothing: sealing to it must be asked for.
    assert!(
        seal(&light, &bob, app, &values, &[], &SealOptions::default())
            .await
            .is_err()
    );
    let (call, sealed_to) = seal(&light, &bob, app, &values, &[], &simulated)
        .await
        .expect("sealed");
    assert_eq!(sealed_to.id, worker);
    client.send(&bob, call, |_| {}).await.expect("secrets set");
    assert_eq!(
        client.app(app).await.unwrap().unwrap().status,
        AppStatus::Running
    );

    let view = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap();
    // The secrets changed the app's stamp: its records were read again.
    assert_eq!(view.apps_read, 1);
    let desired = view.desired;
    assert_eq!(desired.len(), 1);
    assert_eq!(desired[0].secrets.len(), 1);
    // Nothing changed since: the next pass proves the assignment list and reads no app record,
    // and wants the same.
    let again = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap();
    assert_eq!(again.apps_read, 0);
    assert_eq!(again.desired.len(), 1);
    assert_eq!(again.desired[0].generation, desired[0].generation);
    assert!(
        !format!("{desired:?}").contains(&token),
        "Debug shows no value"
    );
    let generation = desired[0].generation;
    reconciler.reconcile(&desired).await.unwrap();
    let served = page(&backend, app, generation).await.expect("serves");
    assert!(served.contains(&token), "{served}");

    // Nowhere in the clear: the chain's answer, the chain's files, the worker's files.
    let record = client.app_secrets(app).await.unwrap().unwrap();
    assert!(!serde_json::to_string(&record).unwrap().contains(&token));
    assert_eq!(
        files_containing(dir.path(), token.as_bytes()),
        Vec::<String>::new()
    );
    // The worker gives secrets only to what the app's owner signed, for the owner's image, and
    // never an older revision than it gave before, whoever wrote the record.
    let app_record = light.snapshot().app(app).await.unwrap().unwrap();
    let opens = |app_record: &wetee_types::records::App,
                 record: &wetee_types::records::AppSecrets,
                 revisions: &SecretRevisions| {
        open_secrets(
            app_record,
            Some(record),
            worker,
            &identity,
            &genesis,
            revisions,
        )
        .is_some()
    };
    assert!(opens(&app_record, &record, &revisions));
    let mut forged = record.clone();
    forged.owner_signature = dev_keypair("Charlie").sign(&forged.signing_payload(&genesis, app));
    assert!(
        !opens(&app_record, &forged, &revisions),
        "signed by someone else"
    );
    let mut another_image = app_record.clone();
    another_image.spec.container.image.digest = [0x5a; 32];
    assert!(!opens(&another_image, &record, &revisions), "another image");
    let mut given = SecretRevisions::load(&dir.path().join("marks")).unwrap();
    given
        .raise(&std::collections::BTreeMap::from([(
            app,
            record.revision + 1,
        )]))
        .unwrap();
    assert!(!opens(&app_record, &record, &given), "an older revision");

    // Another worker's TEE cannot open it.
    let stranger = WorkerIdentity::open_unprotected(&dir.path().join("stranger")).unwrap();
    let secret = record.get("API_TOKEN").unwrap();
    let id = wetee_sealing::SecretId {
        genesis_hash: &client.genesis_hash(),
        app,
        name: "API_TOKEN",
        revision: secret.revision,
    };
    let aad = wetee_sealing::for_worker(&id, record.worker, &record.sealing_key);
    assert!(identity.open_secret(&aad, &secret.for_worker).is_ok());
    assert!(stranger.open_secret(&aad, &secret.for_worker).is_err());

    // Rotating the value replaces the container with one that sees the new value.
    let rotated = random_token();
    let values = [SecretValue {
        name: "API_TOKEN".into(),
        value: Zeroizing::new(rotated.as_bytes().to_vec()),
    }];
    let (call, _) = seal(&light, &bob, app, &values, &[], &simulated)
        .await
        .unwrap();
    client.send(&bob, call, |_| {}).await.unwrap();
    let view = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap();
    assert_eq!(view.apps_read, 1, "a new secret is a new stamp");
    let desired = view.desired;
    assert!(desired[0].generation > generation);
    reconciler.reconcile(&desired).await.unwrap();
    let served = page(&backend, app, desired[0].generation)
        .await
        .expect("serves the rotated value");
    assert!(served.contains(&rotated), "{served}");
    assert_eq!(
        files_containing(dir.path(), rotated.as_bytes()),
        Vec::<String>::new()
    );

    // Stopping the app removes its container and its secret files.
    client
        .send(&bob, Call::Apps(AppsCall::Stop { app }), |_| {})
        .await
        .unwrap();
    let desired = support::next_view(&light, worker, &identity, &revisions, &mut known)
        .await
        .unwrap()
        .desired;
    reconciler.reconcile(&desired).await.unwrap();
    let mut left = true;
    for _ in 0..100 {
        left = std::fs::read_dir(&config.backend.secrets_dir)
            .map(|entries| {
                // This worker's files (other tests' workers leave theirs).
                entries.flatten().any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.contains(&scope[..12]) && name.contains(&format!("app-{app}-"))
                })
            })
            .unwrap_or(false);
        if !left {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!left, "the secret files went with the container");
}
