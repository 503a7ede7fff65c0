//! What a block's signatures cost a validator, per transaction: a block of 1,000 transfers
//! (all ed25519, all sr25519), verified one by one on one thread as the node did before, by
//! `Signatures::check_block` seeing them for the first time (in parallel, sr25519 in batches),
//! and by `check_block` once admission has verified them (the usual case: a validator has most
//! of a block's transactions in its pool already).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wetee_node::signatures::Signatures;
use wetee_types::transaction::{BalancesCall, Transaction};
use wetee_types::{AccountId, Balance, Call, Hash, KeyScheme, Keypair, SignedTransaction};

const BLOCK: usize = 1_000;

fn block(chain: &Hash, scheme: KeyScheme) -> Vec<SignedTransaction> {
    (0..BLOCK)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = Keypair::from_seed(scheme, seed);
            Transaction {
                signer: key.account_id(),
                nonce: 0,
                fee: Balance(1_000_000),
                expires_at: 100,
                call: Call::Balances(BalancesCall::Transfer {
                    to: AccountId([7; 32]),
                    amount: Balance(1),
                }),
            }
            .sign(&key, chain)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let chain = Hash::of(b"bench");
    let mut group = c.benchmark_group("block_signatures");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.sample_size(20);
    for (name, scheme) in [
        ("ed25519", KeyScheme::Ed25519),
        ("sr25519", KeyScheme::Sr25519),
    ] {
        let txs = block(&chain, scheme);
        group.bench_with_input(BenchmarkId::new("one_by_one", name), &txs, |b, txs| {
            b.iter(|| assert!(txs.iter().all(|tx| tx.verify_signature(&chain))))
        });
        group.bench_with_input(BenchmarkId::new("parallel_unseen", name), &txs, |b, txs| {
            b.iter_batched(
                || Signatures::new(chain),
                |signatures| signatures.check_block(txs).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
        let admitted = Signatures::new(chain);
        admitted.check_block(&txs).unwrap();
        group.bench_with_input(BenchmarkId::new("admitted", name), &txs, |b, txs| {
            b.iter(|| admitted.check_block(txs).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
