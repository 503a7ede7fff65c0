//! The vectors the web console's sealing and owner-API code is checked against
//! (`web/tests/vectors/sealing.json`, by `node --test` in `web/`): the owner's sealing key
//! derived from dev account keys as the CLI derives it, owner-API request and session payloads,
//! the secrets record an owner signs, and, sealed by Rust, a log stream and an owner's copy of a
//! secret for the page to open.
//!
//! Seals are randomized, so the file cannot be compared byte for byte: the test fails when a
//! derived value differs from the file's or when what the file holds sealed no longer opens
//! here as the page must open it. `WETEE_WRITE_VECTORS=1 cargo test -p wetee-client --test
//! console_sealing_vectors` writes it anew.

use serde_json::{Value, json};
use wetee_client::keys::dev_keypair;
use wetee_client::owner_logs::LogOpener;
use wetee_sealing::{SecretId, log_batch};
use wetee_types::owner::{RequestTarget, Session, request_payload};
use wetee_types::records::{SealedBox, SealedSecret, secrets_signing_payload};
use wetee_types::{AppId, Hash, WorkerId, Workload};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/tests/vectors/sealing.json"
);

const GENESIS: Hash = Hash([0x47; 32]);
const WORKER: WorkerId = WorkerId(3);
const WORKER_SECRET: [u8; 32] = [0x0b; 32];
const APP: AppId = AppId(7);

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn frame(epoch: u64, index: u32, record: &[u8]) -> Vec<u8> {
    [&epoch.to_be_bytes()[..], &index.to_be_bytes(), record].concat()
}

/// What does not depend on randomness.
fn derived() -> Value {
    let owner_keys: Vec<Value> = ["Alice", "Bob"]
        .into_iter()
        .map(|name| {
            let key = dev_keypair(name);
            let secret = wetee_sealing::owner_secret(&key);
            json!({
                "name": name,
                "account": hex(&key.account_id().0),
                "owner_secret": hex(&*secret),
                "owner_public": hex(&wetee_sealing::public_key(&secret)),
            })
        })
        .collect();
    let requests: Vec<Value> = [
        ("GET", "/_wetee/apps/7/logs?follow=1", "127.0.0.1:8800", 1_765_000_000_123u64),
        ("GET", "/_wetee/tasks/2/runs/1/logs", "worker.example:443", 42),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (method, target, host, timestamp))| {
        let nonce = [i as u8 + 1; 16];
        json!({
            "worker": WORKER.0 + i as u64,
            "method": method,
            "target": target,
            "host": host,
            "timestamp_ms": timestamp,
            "nonce": hex(&nonce),
            "payload": hex(&request_payload(&GENESIS, WorkerId(WORKER.0 + i as u64), RequestTarget { method, target, host }, timestamp, &nonce)),
        })
    })
    .collect();
    let session_key = [0x5a; 32];
    let sealed_box = |byte: u8| SealedBox {
        enc: [byte; 32],
        ciphertext: wetee_types::codec::BoundedVec::try_new(vec![byte; 40]).unwrap(),
    };
    let secrets = vec![
        SealedSecret {
            name: wetee_types::codec::BoundedString::try_new("API_TOKEN").unwrap(),
            revision: 2,
            for_worker: sealed_box(1),
            for_owner: sealed_box(2),
        },
        SealedSecret {
            name: wetee_types::codec::BoundedString::try_new("DB").unwrap(),
            revision: 1,
            for_worker: sealed_box(3),
            for_owner: sealed_box(4),
        },
    ];
    let images = [Hash([0x11; 32]), Hash([0x22; 32])];
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let phrase_accounts: Vec<Value> = [
        phrase.to_string(),
        format!("{phrase}//stash"),
        format!("{phrase}//0/1"),
        format!("{phrase}/soft//hard"),
        format!("{phrase}//wetee///a password"),
        format!(
            "{phrase}//{}",
            "a-name-longer-than-thirty-two-bytes-is-hashed"
        ),
    ]
    .into_iter()
    .map(|uri| {
        let key =
            wetee_client::keys::keypair_from_uri(&uri, wetee_types::KeyScheme::Sr25519).unwrap();
        json!({ "uri": uri, "account": hex(&key.account_id().0) })
    })
    .collect();
    json!({
        "genesis_hash": hex(&GENESIS.0),
        "owner_keys": owner_keys,
        "phrase_accounts": phrase_accounts,
        "owner_requests": requests,
        "session": {
            "key": hex(&session_key),
            "expires_ms": 1_765_003_600_000u64,
            "payload": hex(&Session::payload(&GENESIS, &session_key, 1_765_003_600_000)),
        },
        "secrets_record": {
            "app": APP.0,
            "worker": WORKER.0,
            "sealing_key": hex(&[0x33; 32]),
            "revision": 2,
            "secrets": secrets,
            "allowed_images": images,
            "payload": hex(&secrets_signing_payload(&GENESIS, APP, WORKER, &[0x33; 32], 2, &secrets, &images)),
        },
    })
}

/// What Rust seals for the page to open, freshly.
fn sealed() -> Value {
    let alice = dev_keypair("Alice");
    let owner = alice.account_id();
    let owner_key = wetee_sealing::public_key(&wetee_sealing::owner_secret(&alice));
    let workload = Workload::App { app: APP };
    let binding = |epoch| log_batch::Binding {
        genesis_hash: &GENESIS,
        workload,
        epoch,
        worker: WORKER,
        owner: &owner,
    };
    let lines: [(u64, u32, &[u8]); 3] = [
        (4, 0, b"hello from the container\n"),
        (4, 1, b"second line\n"),
        (5, 0, b"next epoch\n"),
    ];
    let mut stream = Vec::new();
    for (epoch, index, text) in lines {
        let record =
            log_batch::seal(&binding(epoch), index, &WORKER_SECRET, &owner_key, text).unwrap();
        stream.extend(frame(epoch, index, &record));
    }
    // Sealed to the owner by someone else than the worker: must not open.
    let planted = log_batch::seal(&binding(4), 0, &[0x0c; 32], &owner_key, b"forged\n").unwrap();
    let id = SecretId {
        genesis_hash: &GENESIS,
        app: APP,
        name: "API_TOKEN",
        revision: 2,
    };
    let owner_copy = wetee_sealing::seal(
        &owner_key,
        &wetee_sealing::for_owner(&id, &owner),
        b"hunter2",
    )
    .unwrap();
    json!({
        "logs": {
            "owner": "Alice",
            "worker": WORKER.0,
            "worker_key": hex(&wetee_sealing::public_key(&WORKER_SECRET)),
            "app": APP.0,
            "stream": hex(&stream),
            "text": "hello from the container\nsecond line\nnext epoch\n",
            "planted": hex(&frame(4, 0, &planted)),
        },
        "owner_copy": {
            "owner": "Alice",
            "app": APP.0,
            "name": "API_TOKEN",
            "revision": 2,
            "value": "hunter2",
            "sealed": owner_copy,
        },
    })
}

/// Checks that what `file` holds sealed opens here as the page must open it.
fn still_opens(file: &Value) -> Result<(), String> {
    let alice = dev_keypair("Alice");
    let logs = &file["logs"];
    let bytes = |value: &Value| {
        hex::decode(value.as_str().unwrap_or_default().trim_start_matches("0x"))
            .map_err(|e| e.to_string())
    };
    let worker_key: [u8; 32] = bytes(&logs["worker_key"])?
        .try_into()
        .map_err(|_| "worker_key")?;
    let mut opener = LogOpener::new(
        &alice,
        GENESIS,
        WORKER,
        worker_key,
        Workload::App { app: APP },
    );
    let text = opener
        .feed(&bytes(&logs["stream"])?)
        .map_err(|e| e.to_string())?;
    if text.as_slice() != logs["text"].as_str().unwrap_or_default().as_bytes() {
        return Err("the log stream opens to other lines".into());
    }
    let sealed: SealedBox =
        serde_json::from_value(file["owner_copy"]["sealed"].clone()).map_err(|e| e.to_string())?;
    let id = SecretId {
        genesis_hash: &GENESIS,
        app: APP,
        name: "API_TOKEN",
        revision: 2,
    };
    let value = wetee_sealing::open(
        &wetee_sealing::owner_secret(&alice),
        &wetee_sealing::for_owner(&id, &alice.account_id()),
        &sealed,
    )
    .map_err(|e| e.to_string())?;
    if value.as_slice() != b"hunter2" {
        return Err("the owner copy opens to another value".into());
    }
    Ok(())
}

#[test]
fn the_consoles_sealing_vectors_are_current() {
    let committed: Option<Value> = std::fs::read_to_string(VECTORS)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    if std::env::var_os("WETEE_WRITE_VECTORS").is_some() {
        let mut file = json!({
            "about": "written by crates/client/tests/console_sealing_vectors.rs; do not edit",
            "derived": derived(),
        });
        file.as_object_mut()
            .unwrap()
            .extend(sealed().as_object().unwrap().clone());
        std::fs::write(
            VECTORS,
            format!("{}\n", serde_json::to_string_pretty(&file).unwrap()),
        )
        .unwrap();
        return;
    }
    let committed = committed.expect(
        "web/tests/vectors/sealing.json is missing: WETEE_WRITE_VECTORS=1 cargo test -p \
         wetee-client --test console_sealing_vectors",
    );
    assert!(
        committed["derived"] == derived(),
        "web/tests/vectors/sealing.json is stale: WETEE_WRITE_VECTORS=1 cargo test -p \
         wetee-client --test console_sealing_vectors"
    );
    if let Err(why) = still_opens(&committed) {
        panic!("web/tests/vectors/sealing.json no longer opens here ({why}): write it anew");
    }
}
