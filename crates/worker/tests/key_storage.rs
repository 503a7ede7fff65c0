//! A worker whose keys are never written (the `memory` store, what a production worker without
//! a sealing key uses): no file under its data directory holds either key, in raw bytes or in
//! hex, while it serves an app with a secret and after it restarts. The restarted worker has
//! new keys, rotated on chain in place of the old ones under the same worker id; its app waits
//! for the owner to reseal, then serves the new secret.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::rpc::Client;
use wetee_client::secrets::{SealOptions, SecretValue, seal};
use wetee_worker::keys::memory::MemoryOnly;
use wetee_worker::keys::{KeyMaterial, KeyStore, KeyStoreError, Protection};
use zeroize::Zeroizing;

/// The memory store, remembering for the test what it was given to keep (and kept nowhere).
#[derive(Default)]
struct Witnessed {
    seen: Mutex<Vec<Zeroizing<[u8; 64]>>>,
}

impl KeyStore for Witnessed {
    fn protection(&self) -> Protection {
        MemoryOnly.protection()
    }

    fn load(&self) -> Result<Option<KeyMaterial>, KeyStoreError> {
        MemoryOnly.load()
    }

    fn save(&self, keys: &KeyMaterial) -> Result<(), KeyStoreError> {
        self.seen.lock().unwrap().push(keys.to_bytes());
        MemoryOnly.save(keys)
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Which files under `dir` hold any 32-byte key of `keys`, raw or in hex.
fn files_holding_keys(dir: &Path, keys: &[Zeroizing<[u8; 64]>]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for material in keys {
            for key in material.chunks(32) {
                if bytes.windows(32).any(|w| w == key) || text.contains(&hex::encode(key)) {
                    found.push(file.display().to_string());
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_kept_in_memory_never_reach_the_data_dir_and_rotate_on_chain_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = support::dev_chain(&dir.path().join("chain"), 40);
    let engine = support::engine();
    let data_dir = dir.path().join("worker");
    let mut config = support::worker_config(&data_dir, &engine.socket, genesis);
    config.ingress.listen = "127.0.0.1:0".parse().unwrap();
    let secrets_dir = support::own_secrets_dir("key-storage");
    config.backend.secrets_dir = secrets_dir.clone();
    let keys = Arc::new(Witnessed::default());

    let worker = support::start_worker_with(config.clone(), &rpc, Some(keys.clone())).await;
    let first = worker.running.clone();
    assert_eq!(first.key_protection, Protection::MemoryOnly);
    let _cleanup = support::Cleanup(hex::encode(first.identity.0));

    let client = Client::connect(&rpc).await.unwrap();
    let owner_light = LightClient::connect(&rpc, &Trust::GenesisHash(genesis))
        .await
        .unwrap();
    let bob = dev_keypair("Bob");
    let app = support::create_app(&client, &bob, support::secret_serving_spec()).await;
    support::eventually("the app to be placed", 60, async || {
        client.app(app).await.ok()??.placement.map(|_| ())
    })
    .await;
    let set_token = async |token: &str| {
        let values = [SecretValue {
            name: "API_TOKEN".into(),
            value: Zeroizing::new(token.as_bytes().to_vec()),
        }];
        let options = SealOptions {
            allow_simulated: true,
            ..SealOptions::default()
        };
        let (call, _) = seal(&owner_light, &bob, app, &values, &[], &options)
            .await
            .expect("sealed");
        client.send(&bob, call, |_| {}).await.expect("secrets set");
    };
    // A new token, sealed, until the worker at `ingress` serves it.
    let serve_new_token = async |ingress: u16, what: &str, seconds: u64| {
        let token = support::random_token();
        set_token(&token).await;
        support::eventually(what, seconds, async || {
            support::http_get(ingress, &format!("/{}/", app.0))
                .contains(&token)
                .then_some(())
        })
        .await;
    };
    serve_new_token(first.ingress.port(), "the app to serve its secret", 60).await;
    worker.stop().await;

    // Started again: new keys, registered in place of the old ones, under the same id.
    let worker = support::start_worker_with(config, &rpc, Some(keys.clone())).await;
    let second = worker.running.clone();
    assert_eq!(second.worker, first.worker);
    assert_ne!(second.identity, first.identity);
    let record = client.worker(first.worker).await.unwrap().unwrap();
    assert_eq!(record.keys.identity, second.identity.0);
    let mut snapshot = owner_light.snapshot();
    assert_eq!(
        snapshot
            .worker_by_identity(&first.identity.0)
            .await
            .unwrap(),
        None,
        "the old identity key is gone from the chain"
    );

    // The secret was sealed to the old key: the owner reseals, and the app serves it again.
    serve_new_token(
        second.ingress.port(),
        "the app to serve its resealed secret",
        90,
    )
    .await;

    let seen = keys.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one set of keys per start");
    let holding = files_holding_keys(&data_dir, &seen);
    assert!(holding.is_empty(), "files holding key bytes: {holding:?}");
    assert!(!data_dir.join("worker-keys.json").exists());
    // The check can fail: the same scan finds the keys the simulated TEE's file keeps.
    let plain = tempfile::tempdir().unwrap();
    let store = wetee_worker::keys::file::KeyFile::unprotected(plain.path());
    let material = KeyMaterial::generate().unwrap();
    store.save(&material).unwrap();
    assert_eq!(
        files_holding_keys(plain.path(), &[material.to_bytes()]).len(),
        2
    );

    worker.stop().await;
    let _ = std::fs::remove_dir_all(&secrets_dir);
}
