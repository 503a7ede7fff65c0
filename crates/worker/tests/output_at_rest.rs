//! An app that prints its secret, on a dev chain and real Podman: its owner reads every line
//! through the owner API (opened with the owner's key), while no file under the worker's data
//! directory or the engine's storage holds the secret or any line of the output in plaintext.

mod support;

use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::owner_logs::LogOpener;
use wetee_client::secrets::{SealOptions, SecretValue, seal};
use wetee_types::Workload;
use wetee_types::codec::BoundedString;
use zeroize::Zeroizing;

/// Files under `root` (not following links) whose bytes contain `needle` (all of them for an
/// empty one).
fn files_containing(root: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && meta.len() < 256 << 20
            && let Ok(bytes) = std::fs::read(&path)
            && (needle.is_empty() || bytes.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_an_app_prints_is_readable_by_its_owner_and_nowhere_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 20);
    let engine = support::engine();
    let mut config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.ingress.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.profile.endpoint = BoundedString::try_new(format!("https://127.0.0.1:{port}")).unwrap();
    config.backend.secrets_dir = support::own_secrets_dir("at-rest");
    let data_dir = config.data_dir.clone();
    let agent = support::start_worker(config, &rpc).await;
    let running = agent.running.clone();
    let _cleanup = support::Cleanup(hex::encode(running.identity.0));
    let client = wetee_client::rpc::Client::connect(&rpc).await.unwrap();
    let light = LightClient::connect(&rpc, &Trust::GenesisHash(genesis))
        .await
        .unwrap();
    let bob = dev_keypair("Bob");
    assert!(
        wetee_client::owner_key::publish(&client, &bob)
            .await
            .unwrap()
    );

    // The app prints its token, and a line made from it at run time (so that it is in no
    // configuration), then serves.
    let token = support::random_token();
    let marker = token.to_uppercase();
    let spec = support::secret_using_spec(
        "cat /run/secrets/API_TOKEN; echo; tr a-z A-Z < /run/secrets/API_TOKEN >&2; \
         echo >&2; mkdir -p /www && echo up > /www/index.html && \
         exec /bin/busybox httpd -f -p 8080 -h /www",
    );
    let app = support::create_app(&client, &bob, spec).await;
    let values = [SecretValue {
        name: "API_TOKEN".into(),
        value: Zeroizing::new(token.as_bytes().to_vec()),
    }];
    let options = SealOptions {
        allow_simulated: true,
        ..SealOptions::default()
    };
    let (call, _) = seal(&light, &bob, app, &values, &[], &options)
        .await
        .expect("sealed");
    client.send(&bob, call, |_| {}).await.expect("secrets set");
    let ingress = running.ingress.port();
    support::eventually("the app to serve", 60, async || {
        support::http_get(ingress, &format!("/{}/", app.0))
            .contains("up")
            .then_some(())
    })
    .await;

    // The owner reads both lines, opened with its key.
    let (record, owner_api) = support::owner_api_of(&light, genesis, running.worker).await;
    let text = support::eventually("the owner to read the output", 30, async || {
        let response = owner_api
            .get(&bob, &format!("/_wetee/apps/{}/logs", app.0))
            .await
            .ok()?;
        let body = response.bytes().await.ok()?;
        let mut opener = LogOpener::new(
            &bob,
            genesis,
            running.worker,
            record.keys.sealing,
            Workload::App { app },
        );
        let lines = opener.feed(&body).expect("every record opens");
        opener.finish().expect("whole records");
        let text = String::from_utf8_lossy(&lines).to_string();
        (text.contains(&token) && text.contains(&marker)).then_some(text)
    })
    .await;
    assert!(text.contains(&format!(" out {token}")), "{text}");
    assert!(text.contains(&format!(" err {marker}")), "{text}");
    // Someone else's key opens nothing.
    let body = owner_api
        .get(&bob, &format!("/_wetee/apps/{}/logs", app.0))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut eve = LogOpener::new(
        &dev_keypair("Eve"),
        genesis,
        running.worker,
        record.keys.sealing,
        Workload::App { app },
    );
    assert!(eve.feed(&body).is_err());

    // On disk: sealed records, and neither the secret nor the output in the clear.
    let sealed = files_containing(&data_dir.join("logs"), b"");
    assert!(
        sealed
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "sealed")),
        "no sealed log file in {sealed:?}"
    );
    let backend =
        wetee_worker::backend::docker::DockerBackend::connect(Some(&engine.socket), "probe")
            .await
            .unwrap();
    let mut roots = vec![data_dir.clone()];
    if let Some(storage) = backend.storage_root().await.unwrap() {
        roots.push(storage);
    }
    for root in &roots {
        for needle in [token.as_bytes(), marker.as_bytes()] {
            let found = files_containing(root, needle);
            assert!(
                found.is_empty(),
                "{} in the clear in {found:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    agent.stop().await;
}
