//! The measurements behind the weight table (`wetee_runtime::weights`): each kind of call
//! executed on the in-memory state with its signature taken as checked (the signature check is
//! measured by the `runtime` bench's `signature check` group), one call per iteration on a fresh
//! copy of the state.
//!
//! - `transfer`: the validity checks, the fee, the nonce and a transfer.
//! - `register/simulated`: a worker registration with simulated TDX evidence (DCAP kinds are
//!   measured by `wetee bench attest`).
//! - `create app/<n> started workers`: an app creation and its placement search.
//! - `report/<n> apps`: a work report settling `n` apps of its worker.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use wetee_runtime::SignatureCheck;
use wetee_runtime::testing::{TestChain, tokens};
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{Call, KeyScheme, Keypair, SignedTransaction, TeeKind};

/// Applies `tx` to a fresh copy of `chain`'s state in each iteration.
fn bench_call(
    c: &mut Criterion,
    group: &str,
    id: BenchmarkId,
    chain: &TestChain,
    tx: &SignedTransaction,
) {
    let block = chain.block();
    let mut group = c.benchmark_group(group);
    group.bench_function(id, |b| {
        b.iter_batched_ref(
            || chain.state.clone(),
            |state| {
                let receipt = chain
                    .runtime
                    .apply_checked_transaction(state, &block, tx, SignatureCheck::AlreadyVerified)
                    .expect("valid");
                assert!(receipt.is_success(), "{:?}", receipt.outcome);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn transfer(c: &mut Criterion) {
    let chain = TestChain::new();
    let tx = chain.transaction(
        chain.key("alice"),
        TestChain::transfer(chain.who("bob"), tokens(1)),
    );
    bench_call(c, "weights", BenchmarkId::new("transfer", ""), &chain, &tx);
}

fn register(c: &mut Criterion) {
    let chain = TestChain::new();
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [9; 32]);
    let operator = chain.key("eve").clone();
    let keys = TestChain::keys_for(&identity);
    let evidence = chain.evidence(TeeKind::Simulated, &keys);
    let call = Call::Workers(WorkersCall::Register {
        profile: chain.profile("eu", &[TeeKind::Simulated], 1_000, 1_000),
        attestation: chain.attestation(&operator.account_id(), &identity, keys, evidence),
    });
    let tx = chain.transaction(&operator, call);
    bench_call(
        c,
        "weights",
        BenchmarkId::new("register", "simulated"),
        &chain,
        &tx,
    );
}

fn create_app(c: &mut Criterion) {
    for started in [16u64, 64, 256] {
        let mut chain = TestChain::new();
        for _ in 0..started {
            chain.started_worker(
                "charlie",
                chain.profile("eu", &[TeeKind::Simulated], 1_000, 1_000),
            );
        }
        let call = Call::Apps(AppsCall::Create {
            spec: TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
            deposit: tokens(20),
        });
        let tx = chain.transaction(chain.key("alice"), call);
        bench_call(
            c,
            "weights/create app",
            BenchmarkId::new("started workers", started),
            &chain,
            &tx,
        );
    }
}

fn report(c: &mut Criterion) {
    for apps in [1u64, 64, 256] {
        let mut chain = TestChain::new();
        let worker = chain.started_worker(
            "eve",
            chain.profile("eu", &[TeeKind::Simulated], 200_000, 1_000_000),
        );
        let mut ids = Vec::new();
        for _ in 0..apps {
            ids.push(chain.create_app(
                "alice",
                TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
                tokens(20),
            ));
        }
        let epoch = chain.epoch();
        chain.advance_to_epoch(epoch + 1);
        let proofs = ids.iter().map(|id| TestChain::proof(*id, 10_000)).collect();
        let call = Call::Workers(WorkersCall::SubmitWorkReport {
            report: chain.signed_report(worker, epoch, proofs, vec![]),
        });
        let tx = chain.transaction(chain.key("eve"), call);
        bench_call(
            c,
            "weights/report",
            BenchmarkId::new("apps", apps),
            &chain,
            &tx,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = transfer, register, create_app, report
}
criterion_main!(benches);
