//! What following the chain through the light client costs a worker with 100 apps, per block:
//! verifying one finalization certificate (4 and 100 validators), then the state proofs of the
//! records one pass reads, from a state of 100,000 records (50,000 apps and their secrets). A
//! pass proves the worker's record and its assignment list; the list carries each app's stamp,
//! so the app and secrets records are read only for apps whose stamp changed: all 100 on the
//! first pass (202 keys), none on a block that changed nothing of the worker's (2 keys), one on
//! a block that changed one app (4 keys). Also prints the bytes each such pass receives over
//! RPC (JSON with hex, as `state_getProof` answers).

use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use criterion::{Criterion, criterion_group, criterion_main};
use wetee_light::testing::{finalize, header, spec};
use wetee_light::{Anchor, verify_entry};
use wetee_node::store::{ProvenValue, StateStore};
use wetee_types::Hash;
use wetee_types::records::{Assignment, Assignments};
use wetee_types::rpc::{FinalityProof, Hex, ProvenEntry, StateProof};
use wetee_types::{AppId, WorkerId, Workload};

const STATE_KEYS: u64 = 100_000;
const APPS: u64 = 100;

/// The apps on the benchmark's worker.
fn app(i: u64) -> AppId {
    AppId(i * 997)
}

/// The passes measured: a name and the keys it proves.
fn passes() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let worker = WorkerId(1);
    let base = vec![
        wetee_types::state_keys::worker(worker),
        wetee_types::state_keys::assignments(worker),
    ];
    let records = |apps: std::ops::Range<u64>| {
        let mut keys = base.clone();
        for i in apps {
            keys.push(wetee_types::state_keys::app(app(i)));
            keys.push(wetee_types::state_keys::app_secrets(app(i)));
        }
        keys
    };
    vec![
        ("first_pass", records(0..APPS)),
        ("unchanged", base.clone()),
        ("one_app_changed", records(0..1)),
    ]
}

/// A state of `STATE_KEYS` records of 400 bytes; the proofs of each pass and the root.
fn proofs() -> (Vec<(&'static str, Vec<ProvenValue>)>, Hash) {
    deterministic::Runner::default().start(|ctx| async move {
        let mut store = StateStore::open(ctx.child("store"), "bench").await.unwrap();
        // Half apps (400-byte records), half their secrets (300 bytes).
        let mut changes = std::collections::BTreeMap::new();
        for i in 0..STATE_KEYS / 2 {
            let app = AppId(i);
            changes.insert(wetee_types::state_keys::app(app), Some(vec![7u8; 400]));
            changes.insert(
                wetee_types::state_keys::app_secrets(app),
                Some(vec![9u8; 300]),
            );
        }
        let worker = WorkerId(1);
        changes.insert(
            wetee_types::state_keys::worker(worker),
            Some(vec![1u8; 300]),
        );
        let assigned: Vec<Assignment> = (0..APPS)
            .map(|i| Assignment {
                workload: Workload::App { app: app(i) },
                stamp: Hash::of(&i.to_be_bytes()),
            })
            .collect();
        changes.insert(
            wetee_types::state_keys::assignments(worker),
            Some(wetee_types::codec::encode(
                &Assignments::try_new(assigned).unwrap(),
            )),
        );
        let (batch, _) = store
            .speculate(None, &changes, 1, &Hash::default())
            .await
            .unwrap();
        store
            .commit(batch, &changes, 1, &Hash::default())
            .await
            .unwrap();
        let mut proven = Vec::new();
        for (name, keys) in passes() {
            proven.push((name, store.prove(&keys).await.unwrap()));
        }
        (proven, store.committed().unwrap().root)
    })
}

/// How many Merkle digests the pass's proofs carry, and how many of them differ: what a batch
/// encoding sharing digests would save.
fn print_shared_digests(proven: &[ProvenValue]) {
    use commonware_storage::qmdb::current::ordered::proof::ExclusionProof;
    let mut all = Vec::new();
    for entry in proven {
        let operation = match &entry.proof {
            wetee_light::EntryProof::Value(proof) => &proof.proof,
            wetee_light::EntryProof::Absent(
                ExclusionProof::KeyValue(operation, _) | ExclusionProof::Commit(operation, _),
            ) => operation,
        };
        all.extend(operation.range_proof.proof.digests.iter().map(|d| d.0));
        all.push(operation.range_proof.ops_root.0);
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    println!(
        "digests in one pass's proofs: {total}, of which distinct: {}",
        all.len()
    );
}

fn light_client(c: &mut Criterion) {
    let (passes, root) = proofs();
    let first = &passes[0].1;
    print_shared_digests(first);
    let mut group = c.benchmark_group("light_client");
    for validators in [4u8, 100] {
        let chain = spec("wetee-bench", validators);
        let anchor = Anchor::new(&chain).unwrap();
        let mut head = header(9, Hash::of(b"parent"), 12);
        head.state_root = root;
        let quorum = validators - (validators - 1) / 3;
        let signers: Vec<u8> = (0..quorum).collect();
        let finalization = finalize(&chain, &head, &signers);
        let bytes = commonware_codec::Encode::encode(&finalization).to_vec();
        group.bench_function(format!("certificate_{validators}_validators"), |b| {
            b.iter(|| {
                let decoded = anchor.decode_finalization(&bytes).unwrap();
                anchor.verify(&head, &[], &decoded).unwrap()
            })
        });
        for (name, proven) in &passes {
            // The worker asks in two requests (its record and list, then the apps' records),
            // each answered with the finality proof.
            let requests = if proven.len() > 2 { 2 } else { 1 };
            let answer = |entries: &[ProvenValue]| StateProof {
                finality: FinalityProof {
                    header: head,
                    descendants: Vec::new(),
                    finalization: Hex(bytes.clone()),
                },
                entries: entries
                    .iter()
                    .map(|entry| ProvenEntry {
                        key: Hex(entry.key.clone()),
                        value: entry.value.clone().map(Hex),
                        proof: Hex(entry.proof.to_bytes()),
                    })
                    .collect(),
            };
            let (list, apps) = proven.split_at(2);
            let mut json = serde_json::to_vec(&answer(list)).unwrap().len();
            if requests == 2 {
                json += serde_json::to_vec(&answer(apps)).unwrap().len();
            }
            let proof_bytes: usize = proven.iter().map(|e| e.proof.to_bytes().len()).sum();
            let value_bytes: usize = proven
                .iter()
                .filter_map(|e| e.value.as_ref())
                .map(Vec::len)
                .sum();
            println!(
                "pass `{name}`, {validators} validators: {} keys, {} B of proofs, {} B of values, \
                 {} B of certificate per answer, {} B of JSON in {requests} answers",
                proven.len(),
                proof_bytes,
                value_bytes,
                bytes.len(),
                json
            );
        }
    }
    for (name, proven) in &passes {
        group.bench_function(format!("{name}_{}_state_proofs", proven.len()), |b| {
            let encoded: Vec<Vec<u8>> = proven.iter().map(|e| e.proof.to_bytes()).collect();
            b.iter(|| {
                for (entry, bytes) in proven.iter().zip(&encoded) {
                    let proof = wetee_light::EntryProof::from_bytes(bytes).unwrap();
                    verify_entry(&root, &entry.key, entry.value.as_deref(), &proof).unwrap();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, light_client);
criterion_main!(benches);
