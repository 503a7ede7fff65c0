//! The owner API over TLS bound to the worker's attested identity key, against a dev chain and
//! real Podman: the owner's client, trusting only the identity key the chain attested, gets its
//! app's status over TLS; the same client expecting another key (a node pointing it at an
//! impostor, say) or other evidence refuses the worker's certificate; and the same port still
//! serves apps in plain HTTP.

mod support;

use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::owner_api::OwnerApiClient;
use wetee_types::AccountId;
use wetee_types::codec::BoundedString;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_reach_the_attested_worker_over_tls_and_refuse_any_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 20);
    let engine = support::engine();
    let port = free_port();
    let mut config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    config.ingress.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.profile.endpoint = BoundedString::try_new(format!("https://127.0.0.1:{port}")).unwrap();
    let agent = support::start_worker(config, &rpc).await;
    let running = agent.running.clone();
    let _cleanup = support::Cleanup(hex::encode(running.identity.0));
    let client = wetee_client::rpc::Client::connect(&rpc).await.unwrap();
    let bob = dev_keypair("Bob");
    let app = support::create_app(&client, &bob, support::app_spec("over-tls")).await;

    // Apps: plain HTTP on the same port.
    support::eventually("the app to serve in plain HTTP", 60, async || {
        support::http_get(port, &format!("/{}/", app.0))
            .contains("over-tls")
            .then_some(())
    })
    .await;

    // The owner: the worker's record proven through the light client, TLS to its key.
    let light = LightClient::connect(&rpc, &Trust::GenesisHash(genesis))
        .await
        .unwrap();
    let (record, owner_api) = support::owner_api_of(&light, genesis, running.worker).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(owner_api.is_tls());
    let status = support::eventually("the app's status over TLS", 30, async || {
        let response = owner_api
            .get(&bob, &format!("/_wetee/apps/{}/status", app.0))
            .await
            .ok()?;
        (response.status == 200).then_some(response.bytes().await.ok()?)
    })
    .await;
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert!(status["instances"].is_array(), "{status}");

    // Why the client refuses the worker when it expects the record `expected`.
    let refusal = async |expected: &wetee_types::records::Worker| {
        OwnerApiClient::new(genesis, expected, now)
            .unwrap()
            .get(&bob, &format!("/_wetee/apps/{}/status", app.0))
            .await
            .unwrap_err()
            .to_string()
    };
    // The same worker, when another identity key is expected: its certificate is refused.
    let mut impostor = record.clone();
    impostor.keys.identity = dev_keypair("Eve").account_id().0;
    let refused = refusal(&impostor).await;
    assert!(
        refused.contains(&AccountId(record.keys.identity).to_string())
            && refused.contains("not to worker's key"),
        "{refused}"
    );
    // The same key, when the chain holds other evidence for it: a certificate issued under
    // other evidence is refused too.
    let mut attested_again = record.clone();
    attested_again.evidence.nonce_height += 1;
    let refused = refusal(&attested_again).await;
    assert!(
        refused.contains("not the evidence the chain holds"),
        "{refused}"
    );
    // The same signed request in plain HTTP on the same port: refused, it would cross in the
    // clear.
    let headers = wetee_types::owner::sign_request(
        wetee_types::owner::Signer::Account(&bob),
        &genesis,
        running.worker,
        wetee_types::owner::RequestTarget {
            method: "GET",
            target: &format!("/_wetee/apps/{}/status", app.0),
            host: &format!("127.0.0.1:{port}"),
        },
        now,
        &[5; 16],
    );
    let mut raw = format!(
        "GET /_wetee/apps/{}/status HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n",
        app.0
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let answer = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(
        answer.starts_with("HTTP/1.0 403") || answer.starts_with("HTTP/1.1 403"),
        "{answer}"
    );
    assert!(answer.contains("TLS only"), "{answer}");
    // And a worker whose attestation the chain no longer vouches for is not asked at all.
    let expired = record.attested.expires_at_ms;
    assert!(OwnerApiClient::new(genesis, &record, expired).is_err());
    agent.stop().await;
}
