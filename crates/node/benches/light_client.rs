//! What following the chain through the light client costs a worker with 100 apps, per block:
//! verifying one finalization certificate (4 and 100 validators), then the state proofs of the
//! records one pass reads (its worker record and assignment list, and each app's record and
//! secrets record: 202 keys), from a state of 100,000 records (50,000 apps and their secrets). Also prints the bytes such a pass
//! receives over RPC (JSON with hex, as `state_getProof` answers).

use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use criterion::{Criterion, criterion_group, criterion_main};
use wetee_light::testing::{finalize, header, spec};
use wetee_light::{Anchor, verify_entry};
use wetee_node::store::{ProvenValue, StateStore};
use wetee_types::Hash;
use wetee_types::rpc::{FinalityProof, Hex, ProvenEntry, StateProof};

const STATE_KEYS: u64 = 100_000;
const APPS: u64 = 100;

/// A state of `STATE_KEYS` records of 400 bytes; the proofs of one worker's pass and the root.
fn proofs() -> (Vec<ProvenValue>, Hash) {
    deterministic::Runner::default().start(|ctx| async move {
        let mut store = StateStore::open(ctx.child("store"), "bench").await.unwrap();
        // Half apps (400-byte records), half their secrets (300 bytes).
        let mut changes = std::collections::BTreeMap::new();
        for i in 0..STATE_KEYS / 2 {
            let app = wetee_types::AppId(i);
            changes.insert(wetee_types::state_keys::app(app), Some(vec![7u8; 400]));
            changes.insert(
                wetee_types::state_keys::app_secrets(app),
                Some(vec![9u8; 300]),
            );
        }
        let worker = wetee_types::WorkerId(1);
        changes.insert(
            wetee_types::state_keys::worker(worker),
            Some(vec![1u8; 300]),
        );
        changes.insert(
            wetee_types::state_keys::assignments(worker),
            Some(vec![2u8; 1_000]),
        );
        let (batch, _) = store
            .speculate(None, &changes, 1, &Hash::default())
            .await
            .unwrap();
        store
            .commit(batch, &changes, 1, &Hash::default())
            .await
            .unwrap();
        let mut keys = vec![
            wetee_types::state_keys::worker(worker),
            wetee_types::state_keys::assignments(worker),
        ];
        for i in 0..APPS {
            keys.push(wetee_types::state_keys::app(wetee_types::AppId(i * 997)));
            keys.push(wetee_types::state_keys::app_secrets(wetee_types::AppId(
                i * 997,
            )));
        }
        let proven = store.prove(&keys).await.unwrap();
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
    let (proven, root) = proofs();
    print_shared_digests(&proven);
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
        let answer = StateProof {
            finality: FinalityProof {
                header: head,
                descendants: Vec::new(),
                finalization: Hex(bytes.clone()),
            },
            entries: proven
                .iter()
                .map(|entry| ProvenEntry {
                    key: Hex(entry.key.clone()),
                    value: entry.value.clone().map(Hex),
                    proof: Hex(entry.proof.to_bytes()),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&answer).unwrap();
        let proof_bytes: usize = proven.iter().map(|e| e.proof.to_bytes().len()).sum();
        let value_bytes: usize = proven
            .iter()
            .filter_map(|e| e.value.as_ref())
            .map(Vec::len)
            .sum();
        println!(
            "one pass, {validators} validators: {} keys, {} B of proofs, {} B of values, \
             {} B of certificate, {} B of JSON",
            proven.len(),
            proof_bytes,
            value_bytes,
            bytes.len(),
            json.len()
        );
    }
    group.bench_function(format!("{}_state_proofs", proven.len()), |b| {
        let encoded: Vec<Vec<u8>> = proven.iter().map(|e| e.proof.to_bytes()).collect();
        b.iter(|| {
            for (entry, bytes) in proven.iter().zip(&encoded) {
                let proof = wetee_light::EntryProof::from_bytes(bytes).unwrap();
                verify_entry(&root, &entry.key, entry.value.as_deref(), &proof).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, light_client);
criterion_main!(benches);
