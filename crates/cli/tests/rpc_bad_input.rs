//! Bad input to a running dev node's RPC: every request gets a JSON-RPC error with a clear
//! reason, nothing stored changes, and the node keeps running.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wetee_client::keys::dev_keypair;
use wetee_types::balance::UNIT;
use wetee_types::codec::encode;
use wetee_types::transaction::{BalancesCall, Transaction};
use wetee_types::{Balance, Call, Hash, SignedTransaction};

use support::{DevNode, rpc_call, rpc_post};

/// The error of a call that must fail: its code and message.
fn error_of(port: u16, method: &str, params: Value) -> (i64, String) {
    let response = rpc_call(port, method, params);
    let error = &response["error"];
    assert!(!error.is_null(), "{method} should fail: {response}");
    (
        error["code"].as_i64().expect("code"),
        error["message"].as_str().expect("message").to_string(),
    )
}

fn hex_of(tx: &SignedTransaction) -> String {
    format!("0x{}", hex::encode(encode(tx)))
}

fn transfer(nonce: u64, fee: Balance, expires_at: u64, genesis: &Hash) -> SignedTransaction {
    let alice = dev_keypair("Alice");
    Transaction {
        signer: alice.account_id(),
        nonce,
        fee,
        expires_at,
        call: Call::Balances(BalancesCall::Transfer {
            to: dev_keypair("Bob").account_id(),
            amount: Balance(UNIT),
        }),
    }
    .sign(&alice, genesis)
}

/// The methods docs/rpc.md documents: each heading and each table row that starts with one.
fn documented_methods(docs: &str) -> std::collections::BTreeSet<String> {
    docs.lines()
        .filter_map(|line| {
            line.strip_prefix("### `")
                .or_else(|| line.strip_prefix("| `"))
        })
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        // Method names have a namespace: `system_health`, `rpc_methods`.
        .filter(|name| name.contains('_') && !name.starts_with('_'))
        .collect()
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let home = tempfile::tempdir().expect("temp dir");
    let node = DevNode::start(home.path(), 40_000, 45_000);
    let (port, genesis) = (node.port, node.genesis);
    let alice = dev_keypair("Alice").account_id();
    let before = rpc_call(port, "state_account", json!([alice]))["result"].clone();
    let params = rpc_call(port, "state_params", json!([]))["result"]["params"].clone();
    let minimum: u128 = params["base_fee"]
        .as_str()
        .and_then(|fee| fee.parse().ok())
        .expect("base fee");
    let fee = Balance(minimum * 10);
    let height = rpc_call(port, "chain_getHeader", json!([]))["result"]["height"]
        .as_u64()
        .expect("height");

    // Not JSON, not a method, bad parameters.
    let (status, body) = rpc_post(port, b"{\"jsonrpc\": \"2.0\", nope");
    assert_eq!(status, 200);
    let parsed: Value = serde_json::from_str(&body).expect("a JSON-RPC error");
    assert_eq!(parsed["error"]["code"], -32700);
    assert_eq!(error_of(port, "system_explode", json!([])).0, -32601);
    assert_eq!(error_of(port, "chain_getHeader", json!(["tall"])).0, -32602);
    let (code, message) = error_of(port, "state_account", json!(["not an account"]));
    assert_eq!(code, -32602, "{message}");
    let (code, message) = error_of(port, "chain_getBlock", json!([1_000_000_000u64]));
    assert_eq!(code, 1002, "{message}");
    assert!(message.contains("not found"), "{message}");
    // docs/rpc.md names exactly the methods the node serves.
    let served: std::collections::BTreeSet<String> =
        serde_json::from_value(rpc_call(port, "rpc_methods", json!([]))["result"].clone())
            .expect("method names");
    let docs = std::fs::read_to_string(support::repository().join("docs/rpc.md")).expect("docs");
    let documented = documented_methods(&docs);
    let undocumented: Vec<_> = served
        .iter()
        .filter(|m| !docs.contains(&format!("`{m}")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/rpc.md: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    // Parameters are positional: an object, which names could be misspelt in, is refused.
    let (code, message) = error_of(port, "chain_getHeader", json!({"height": 1}));
    assert_eq!(code, -32602, "{message}");
    assert!(message.contains("positional"), "{message}");
    // Lists answer pages: a bad page request is refused in words, a huge limit is cut.
    let (code, message) = error_of(port, "state_workers", json!([{"after": "first"}]));
    assert_eq!(code, -32602, "{message}");
    let (code, message) = error_of(port, "state_apps", json!([null, {"limit": -1}]));
    assert_eq!(code, -32602, "{message}");
    let answer = rpc_call(port, "state_tasks", json!([null, {"limt": 5}]));
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer.to_string().contains("unknown field `limt`"),
        "{answer}"
    );
    let workers = rpc_call(port, "state_workers", json!([{"limit": 4_000_000_000u64}]));
    assert!(workers["result"]["items"].is_array(), "{workers}");
    assert!(workers["result"]["next"].is_null(), "{workers}");
    let apps = rpc_call(port, "state_apps", json!([alice, {"after": 9_999_999}]));
    assert_eq!(apps["result"], json!({"items": [], "next": null}));
    // A batch of 10,000 calls is refused whole; one of 100 is answered call by call.
    let batch = |calls: usize| {
        let one = json!({"jsonrpc": "2.0", "id": 1, "method": "system_health", "params": []});
        serde_json::to_vec(&vec![one; calls]).expect("JSON")
    };
    let (status, body) = rpc_post(port, &batch(10_000));
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).expect("a JSON-RPC answer");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("batch")),
        "{body}"
    );
    let (_, body) = rpc_post(port, &batch(100));
    let answers: Vec<Value> = serde_json::from_str(&body).expect("100 answers");
    assert_eq!(answers.len(), 100);
    assert!(answers.iter().all(|a| a["result"]["chain"].is_string()));
    // Subscriptions need a WebSocket; over HTTP the server library answers -32603.
    let (code, message) = error_of(port, "events_subscribe", json!([{"colour": "red"}]));
    assert_eq!(code, -32603, "{message}");

    // Malformed and oversized transactions.
    let (code, message) = error_of(port, "author_submitTransaction", json!(["0x1234"]));
    assert_eq!(code, -32602);
    assert!(message.contains("does not decode"), "{message}");
    let (code, message) = error_of(port, "author_submitTransaction", json!(["xyz"]));
    assert_eq!(code, -32602);
    assert!(message.contains("not hex"), "{message}");
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"author_submitTransaction\",\"params\":[\"0x{}\"]}}",
        "00".repeat(3 << 20)
    );
    let (status, _) = rpc_post(port, huge.as_bytes());
    assert!(
        status == 413 || status == 0,
        "an oversized request is refused: {status}"
    );

    // Badly signed, expired, too low a fee, a nonce far ahead.
    let mut forged = transfer(0, fee, height + 100, &genesis);
    if let wetee_types::Call::Balances(BalancesCall::Transfer { amount, .. }) = &mut forged.tx.call
    {
        *amount = Balance(1_000 * UNIT);
    }
    let rejected = |tx: &SignedTransaction, needle: &str| {
        let (code, message) = error_of(port, "author_submitTransaction", json!([hex_of(tx)]));
        assert_eq!(code, 1001, "{message}");
        assert!(
            message.to_lowercase().contains(needle),
            "{message} should mention {needle}"
        );
    };
    rejected(&forged, "signature");
    rejected(&transfer(0, fee, 0, &genesis), "expire");
    rejected(&transfer(0, Balance(1), height + 100, &genesis), "fee");
    rejected(&transfer(5_000, fee, height + 100, &genesis), "nonce");
    // Valid for days: it would hold its place in every pool for days.
    rejected(
        &transfer(0, fee, height + 1_000_000, &genesis),
        "sign it with an expiry within",
    );
    rejected(
        &transfer(0, fee, height + 100, &Hash::of(b"another chain")),
        "signature",
    );

    // A transfer that waits behind a gap (nonce 1 before 0): pending, it does not count for
    // the next nonce; sent again, the same hash and nothing doubled; another transaction with
    // its nonce is refused as taken, naming it.
    let ahead = transfer(1, fee, height + 100, &genesis);
    let ahead_hash =
        rpc_call(port, "author_submitTransaction", json!([hex_of(&ahead)]))["result"].clone();
    assert!(ahead_hash.is_string(), "{ahead_hash}");
    let next = |port| rpc_call(port, "system_accountNextIndex", json!([alice]))["result"].clone();
    assert_eq!(
        next(port),
        0,
        "a pending transaction behind a gap does not count"
    );
    let again = rpc_call(port, "author_submitTransaction", json!([hex_of(&ahead)]));
    assert_eq!(again["result"], ahead_hash, "{again}");
    let rival = transfer(1, Balance(fee.0 + 1), height + 100, &genesis);
    let taken = rpc_call(port, "author_submitTransaction", json!([hex_of(&rival)]));
    assert_eq!(taken["error"]["code"], 1005, "{taken}");
    assert_eq!(taken["error"]["data"]["pending"], ahead_hash, "{taken}");
    assert_eq!(taken["error"]["data"]["nonce"], 1, "{taken}");
    assert_eq!(taken["error"]["data"]["next"], 0, "{taken}");

    // The good transfer fills the gap: both are final. The same bytes again are a replay,
    // refused as a used nonce with the next one to take.
    let good = transfer(0, fee, height + 100, &genesis);
    let hash = rpc_call(port, "author_submitTransaction", json!([hex_of(&good)]));
    assert!(hash["result"].is_string(), "{hash}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while rpc_call(port, "state_account", json!([alice]))["result"]["nonce"] != 2 {
        assert!(
            Instant::now() < deadline,
            "the good transfers were not finalized"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let replayed = rpc_call(port, "author_submitTransaction", json!([hex_of(&good)]));
    assert_eq!(replayed["error"]["code"], 1006, "{replayed}");
    assert_eq!(replayed["error"]["data"]["next"], 2, "{replayed}");
    assert_eq!(next(port), 2);

    // Nothing but the two good transfers changed Alice's account, and the node still runs.
    let after = rpc_call(port, "state_account", json!([alice]))["result"].clone();
    assert_eq!(after["nonce"], 2);
    let spent: u128 = before["free"].as_str().unwrap().parse::<u128>().unwrap()
        - after["free"].as_str().unwrap().parse::<u128>().unwrap();
    assert_eq!(
        spent,
        2 * (UNIT + fee.0),
        "only the good transfers and their fees"
    );
    let health = rpc_call(port, "system_health", json!([]));
    assert!(health["result"]["finalized"]["height"].as_u64().unwrap() > height);
}
