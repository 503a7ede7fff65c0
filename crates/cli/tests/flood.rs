//! A stranger's flood through RPC on a real `wetee dev` node: 400 freshly funded accounts send
//! 250 transfers each, all skipping their next nonce (100,000 transactions that could never
//! execute), and four accounts send 1,000 worker registrations whose evidence does not verify.
//! The pool keeps only what its budgets allow, and an honest transfer sent afterwards is
//! admitted at once and finalizes. How long finality paused is `wetee bench`'s to report, not
//! this test's to assert.

mod support;

use std::time::{Duration, Instant};

use support::{DevNode, rpc_call, rpc_request};

use serde_json::{Value, json};
use wetee_client::keys::dev_keypair;
use wetee_types::balance::UNIT;
use wetee_types::codec::{BoundedVec, encode};
use wetee_types::records::{Attestation, Evidence, WorkerKeys, WorkerProfile, key_proof_payload};
use wetee_types::resources::{Prices, Resources, TeeKinds};
use wetee_types::transaction::{BalancesCall, Transaction, WorkersCall};
use wetee_types::{Balance, Call, Hash, KeyScheme, Keypair, SignedTransaction, TeeKind};

const FLOODERS: usize = 400;
const GAPPED_EACH: u64 = 250;
const REGISTRATIONS_EACH: u64 = 250;
/// The node's budget for transactions waiting behind a missing nonce (`MempoolLimits`).
const MAX_WAITING: usize = 5_000;

/// Submits `txs` in JSON-RPC batches of 100; returns how many were admitted.
fn submit_all(port: u16, txs: &[SignedTransaction]) -> usize {
    let mut admitted = 0;
    for chunk in txs.chunks(100) {
        let batch: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(id, tx)| {
                json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "method": "author_submitTransaction",
                    "params": [format!("0x{}", hex::encode(encode(tx)))],
                })
            })
            .collect();
        let answers = rpc_request(port, &Value::Array(batch));
        let answers = answers.as_array().expect("one answer per call");
        assert_eq!(answers.len(), chunk.len());
        admitted += answers.iter().filter(|a| a["result"].is_string()).count();
    }
    admitted
}

fn nonce_of(port: u16, key: &Keypair) -> u64 {
    rpc_call(port, "state_account", json!([key.account_id()]))["result"]["nonce"]
        .as_u64()
        .expect("nonce")
}

fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(seconds),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Chain {
    port: u16,
    genesis: Hash,
    /// The least fee of each kind of call (its weight) and size, as the node quotes it: asked
    /// once per kind, since a flood signs a hundred thousand of them.
    fees: std::cell::RefCell<std::collections::BTreeMap<(Vec<u8>, usize), Balance>>,
}

impl Chain {
    fn height(&self) -> u64 {
        rpc_call(self.port, "system_health", json!([]))["result"]["finalized"]["height"]
            .as_u64()
            .expect("height")
    }

    /// `call` from `key` with `nonce`, paying the minimum fee.
    fn sign(&self, key: &Keypair, nonce: u64, call: Call) -> SignedTransaction {
        let mut tx = Transaction {
            signer: key.account_id(),
            nonce,
            fee: Balance::ZERO,
            expires_at: self.height() + 2_000,
            call,
        };
        let probe = tx.clone().sign(key, &self.genesis);
        let encoded = encode(&probe);
        // Calls of one kind (module and call index) and size weigh the same here.
        let kind = (encode(&tx.call)[..2].to_vec(), encoded.len());
        let known = self.fees.borrow().get(&kind).copied();
        tx.fee = known.unwrap_or_else(|| {
            let quote = rpc_call(
                self.port,
                "payment_queryFee",
                json!([format!("0x{}", hex::encode(&encoded))]),
            );
            let fee = quote["result"]["minimum_fee"]
                .as_str()
                .and_then(|fee| fee.parse().ok())
                .map(Balance)
                .unwrap_or_else(|| panic!("no fee quoted: {quote}"));
            self.fees.borrow_mut().insert(kind, fee);
            fee
        });
        tx.sign(key, &self.genesis)
    }
}

fn transfer(to: &Keypair, amount: u128) -> Call {
    Call::Balances(BalancesCall::Transfer {
        to: to.account_id(),
        amount: Balance(amount),
    })
}

/// A registration whose keys and proof of operator are right but whose SEV-SNP evidence is
/// noise: it passes admission, and fails only when executed.
fn bogus_registration(chain: &Chain, operator: &Keypair, i: u64) -> Call {
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [(i % 251) as u8 + 1; 32]);
    let keys = WorkerKeys {
        identity: identity.account_id().0,
        sealing: [7; 32],
    };
    let proof = identity.sign(&key_proof_payload(
        &chain.genesis,
        &operator.account_id(),
        &keys,
    ));
    Call::Workers(WorkersCall::Register {
        profile: WorkerProfile {
            endpoint: "https://flood.example.com".try_into().expect("short"),
            region: "nowhere".try_into().expect("short"),
            level: 0,
            capacity: Resources {
                cpu_millicores: 1_000,
                memory_mib: 1_024,
                disk_gib: 1,
                gpus: 0,
            },
            gpu_model: None,
            tee_kinds: TeeKinds::of(&[TeeKind::SevSnp]),
            prices: Prices {
                cpu_millicore: Balance(1),
                memory_mib: Balance(1),
                disk_gib: Balance(1),
                gpu: Balance(1),
            },
        },
        attestation: Attestation {
            keys,
            evidence: Evidence {
                kind: TeeKind::SevSnp,
                data: BoundedVec::try_new(vec![(i % 256) as u8; 2_048]).expect("small"),
                nonce_height: chain.height(),
            },
            key_proof: *proof.as_bytes(),
        },
    })
}

#[test]
fn a_flood_of_gapped_and_invalid_transactions_leaves_room_for_an_honest_transfer() {
    let home = tempfile::tempdir().expect("temp dir");
    let node = DevNode::start(home.path(), 41_000, 46_000);
    let (port, genesis) = (node.port, node.genesis);
    let chain = Chain {
        port,
        genesis,
        fees: Default::default(),
    };

    // 400 fresh accounts, 1 WTE each, from two dev accounts.
    let flooders: Vec<Keypair> = (0..FLOODERS)
        .map(|i| {
            let mut seed = [0xf1; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Keypair::from_seed(KeyScheme::Ed25519, seed)
        })
        .collect();
    let funders = [dev_keypair("Alice"), dev_keypair("Charlie")];
    let mut funding = Vec::new();
    for (half, funder) in flooders.chunks(FLOODERS / 2).zip(&funders) {
        let first = nonce_of(port, funder);
        for (i, flooder) in half.iter().enumerate() {
            funding.push(chain.sign(funder, first + i as u64, transfer(flooder, UNIT)));
        }
    }
    assert_eq!(
        submit_all(port, &funding),
        FLOODERS,
        "every funding transfer"
    );
    wait_for("the flooders to be funded", 120, || {
        flooders.iter().all(|f| {
            rpc_call(port, "state_account", json!([f.account_id()]))["result"]["free"] != "0"
        })
    });

    // The flood: every flooder skips nonce 0.
    let gapped: Vec<SignedTransaction> = flooders
        .iter()
        .flat_map(|key| {
            let chain = &chain;
            (1..=GAPPED_EACH).map(move |nonce| chain.sign(key, nonce, transfer(key, 1)))
        })
        .collect();
    assert_eq!(gapped.len(), 100_000);
    let flood_started = Instant::now();
    let kept = submit_all(port, &gapped);
    eprintln!(
        "the pool kept {kept} of 100,000 nonce-gapped transactions, answered in {:?}",
        flood_started.elapsed()
    );
    assert!(kept <= MAX_WAITING, "{kept} gapped transactions kept");

    // 1,000 registrations with evidence that does not verify: they execute, fail and pay.
    let operators = [
        dev_keypair("Dave"),
        dev_keypair("Eve"),
        dev_keypair("Ferdie"),
        dev_keypair("Charlie"),
    ];
    let mut registrations = Vec::new();
    for operator in &operators {
        let first = nonce_of(port, operator);
        for i in 0..REGISTRATIONS_EACH {
            let call = bogus_registration(&chain, operator, i);
            registrations.push(chain.sign(operator, first + i, call));
        }
    }
    assert_eq!(submit_all(port, &registrations), 1_000);

    let pending = rpc_call(port, "system_health", json!([]))["result"]["pending_transactions"]
        .as_u64()
        .expect("pending") as usize;
    assert!(pending <= MAX_WAITING + 1_000, "{pending} pending");

    // An honest transfer, now: admitted at once, final soon after.
    let bob = dev_keypair("Bob");
    let ferdie = dev_keypair("Ferdie");
    let honest = chain.sign(&bob, nonce_of(port, &bob), transfer(&ferdie, 3 * UNIT));
    let answer = rpc_call(
        port,
        "author_submitTransaction",
        json!([format!("0x{}", hex::encode(encode(&honest)))]),
    );
    assert!(answer["result"].is_string(), "{answer}");
    let bob_nonce = honest.tx.nonce;
    let sent = Instant::now();
    wait_for("the honest transfer to finalize", 120, || {
        nonce_of(port, &bob) > bob_nonce
    });
    eprintln!(
        "{pending} pending; the honest transfer was final {:?} after it was sent",
        sent.elapsed()
    );
    // The registrations went through too, each refused by the runtime for its evidence.
    wait_for("the registrations to execute", 300, || {
        operators
            .iter()
            .take(3)
            .all(|operator| nonce_of(port, operator) >= REGISTRATIONS_EACH)
    });
    let workers = rpc_call(port, "state_workers", json!([]));
    assert_eq!(
        workers["result"]["items"].as_array().map(Vec::len),
        Some(0),
        "{workers}"
    );
}
