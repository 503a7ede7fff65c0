//! Runtime throughput on the in-memory state, signature checks included.
//!
//! - `transfers`: 10,000 signed transfers from 100 accounts (half ed25519, half sr25519) in one
//!   block.
//! - `apps`: 1,000 app creations (each placed on a worker), then the epoch's end, then one work
//!   report proving all 1,000 apps, which settles every one of them.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wetee_runtime::testing::{TestChain, tokens};
use wetee_runtime::{BlockInfo, MemoryState};
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{Call, Hash, KeyScheme, Keypair, SignedTransaction, TeeKind};

const ACCOUNTS: usize = 100;

fn funded_accounts(chain: &mut TestChain) -> Vec<Keypair> {
    let keys: Vec<Keypair> = (0..ACCOUNTS)
        .map(|i| {
            let scheme = if i % 2 == 0 {
                KeyScheme::Ed25519
            } else {
                KeyScheme::Sr25519
            };
            Keypair::from_seed(scheme, Hash::of(&(i as u64).to_be_bytes()).0)
        })
        .collect();
    for key in &keys {
        chain.ok(
            "alice",
            TestChain::transfer(key.account_id(), tokens(1_000)),
        );
    }
    keys
}

fn apply_all(
    chain: &TestChain,
    state: &mut MemoryState,
    block: &BlockInfo,
    txs: &[SignedTransaction],
) {
    for tx in txs {
        let receipt = chain
            .runtime
            .apply_transaction(state, block, tx)
            .expect("valid");
        assert!(receipt.is_success());
    }
}

fn transfers(c: &mut Criterion) {
    let mut chain = TestChain::new();
    let keys = funded_accounts(&mut chain);
    let per_account = 10_000 / ACCOUNTS;
    let mut txs = Vec::with_capacity(10_000);
    for round in 0..per_account {
        for (i, key) in keys.iter().enumerate() {
            let to = keys[(i + 1) % ACCOUNTS].account_id();
            let call = TestChain::transfer(to, wetee_types::Balance(1_000 + round as u128));
            txs.push(chain.transaction_with_nonce(key, call, round as u64));
        }
    }
    let block = chain.block();
    let mut group = c.benchmark_group("runtime");
    group.sample_size(10);
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.bench_function("10k signed transfers", |b| {
        b.iter_batched_ref(
            || chain.state.clone(),
            |state| apply_all(&chain, state, &block, &txs),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn apps(c: &mut Criterion) {
    let mut chain = TestChain::new();
    let keys = funded_accounts(&mut chain);
    let worker = chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 200_000, 1_000_000),
    );
    let mut creates = Vec::with_capacity(1_000);
    for n in 0..1_000 / ACCOUNTS {
        for key in &keys {
            let call = Call::Apps(AppsCall::Create {
                spec: TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
                deposit: tokens(20),
            });
            creates.push(chain.transaction_with_nonce(key, call, n as u64));
        }
    }
    // The report is signed ahead for the app ids 1..=1000 the creations will get.
    let epoch = chain.epoch();
    let proofs = (1..=1_000)
        .map(|id| TestChain::proof(wetee_types::AppId(id), 10_000))
        .collect();
    let report = chain.signed_report(worker, epoch, proofs, vec![]);
    let eve = chain.key("eve").clone();
    let eve_nonce = chain.account(&eve.account_id()).nonce;
    let submit = chain.transaction_with_nonce(
        &eve,
        Call::Workers(WorkersCall::SubmitWorkReport { report }),
        eve_nonce,
    );
    let create_block = chain.block();
    let epoch_end = BlockInfo {
        height: (epoch + 1) * 10 - 1,
        timestamp_ms: create_block.timestamp_ms + 10_000,
        parent_hash: TestChain::block_hash((epoch + 1) * 10 - 2),
    };
    let report_block = BlockInfo {
        height: (epoch + 1) * 10,
        timestamp_ms: create_block.timestamp_ms + 11_000,
        parent_hash: TestChain::block_hash((epoch + 1) * 10 - 1),
    };

    let mut group = c.benchmark_group("runtime");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("1k app creations + settlements", |b| {
        b.iter_batched_ref(
            || chain.state.clone(),
            |state| {
                apply_all(&chain, state, &create_block, &creates);
                chain
                    .runtime
                    .end_block(state, &epoch_end)
                    .expect("epoch end");
                chain
                    .runtime
                    .begin_block(state, &report_block)
                    .expect("next block");
                let receipt = chain
                    .runtime
                    .apply_transaction(state, &report_block, &submit)
                    .expect("valid");
                assert!(receipt.is_success(), "{:?}", receipt.outcome);
                assert_eq!(receipt.events.len(), 1_001);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// For context: what one signature check costs, per scheme.
fn signatures(c: &mut Criterion) {
    let chain = TestChain::new();
    let mut group = c.benchmark_group("signature check");
    for (name, scheme) in [
        ("ed25519", KeyScheme::Ed25519),
        ("sr25519", KeyScheme::Sr25519),
    ] {
        let key = Keypair::from_seed(scheme, [7; 32]);
        let tx =
            chain.transaction_with_nonce(&key, TestChain::transfer(chain.who("bob"), tokens(1)), 0);
        group.bench_function(name, |b| {
            b.iter(|| assert!(tx.verify_signature(&chain.genesis_hash)))
        });
    }
    group.finish();
}

criterion_group!(benches, transfers, apps, signatures);
criterion_main!(benches);
