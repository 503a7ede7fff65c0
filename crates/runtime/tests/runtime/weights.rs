//! Weights and fees: every transaction pays for what it costs, and a block holds only what the
//! chain can afford to verify.

use wetee_runtime::testing::*;
use wetee_runtime::weights::Class;
use wetee_runtime::{BlockBuilder, MemoryState, RuntimeError, SignatureCheck, State, weights};
use wetee_types::params::Params;
use wetee_types::transaction::{AppsCall, WorkersCall};
use wetee_types::{
    Balance, Call, Hash, KeyScheme, Keypair, SignedTransaction, TeeKind, TxError, Weight,
};

#[test]
fn the_fee_is_the_base_plus_the_weight_plus_the_bytes() {
    let chain = TestChain::new();
    let params = chain.params();
    let tx = chain.transaction(
        chain.key("alice"),
        TestChain::transfer(chain.who("bob"), tokens(1)),
    );
    let size = tx.encode().len();
    let weight = weights::of(&chain.state, &tx, size).unwrap();
    assert_eq!(
        tx.tx.fee,
        Balance(
            params.base_fee.0
                + params.fee_per_byte.0 * size as u128
                + params.fee_per_weight.0 * u128::from(weight.0)
        )
    );
    let quote = chain
        .runtime
        .fee_quote(&chain.state, &chain.block(), &tx)
        .unwrap();
    assert_eq!(
        (quote.weight, quote.size as usize, quote.minimum_fee),
        (weight, size, tx.tx.fee)
    );
}

#[test]
fn a_fee_that_pays_the_bytes_but_not_the_weight_is_refused() {
    let mut chain = TestChain::new();
    let key = chain.key("alice").clone();
    let mut tx = chain
        .transaction(&key, TestChain::transfer(chain.who("bob"), tokens(1)))
        .tx;
    let params = chain.params();
    let size = tx.clone().sign(&key, &chain.genesis_hash).encode().len();
    let bytes_only = Balance(params.base_fee.0 + params.fee_per_byte.0 * size as u128);
    let minimum = tx.fee;
    tx.fee = bytes_only;
    let signed = tx.sign(&key, &chain.genesis_hash);
    assert_eq!(
        chain.apply(&signed),
        Err(TxError::FeeTooLow {
            minimum,
            offered: bytes_only
        })
    );
}

#[test]
fn expensive_calls_cost_more_than_a_transfer_of_the_same_size() {
    let mut chain = TestChain::new();
    let transfer = chain.fee_for("alice", TestChain::transfer(chain.who("bob"), tokens(1)));
    // A placement searches the started workers: it costs more as they grow (by powers of two).
    let create = || {
        Call::Apps(AppsCall::Create {
            spec: TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
            deposit: tokens(20),
        })
    };
    let placing_among_few = chain.fee_for("alice", create());
    assert!(placing_among_few > transfer);
    let workers: Vec<_> = (0..17)
        .map(|_| {
            chain.started_worker(
                "charlie",
                chain.profile("eu", &[TeeKind::Simulated], 1_000, 1_000),
            )
        })
        .collect();
    assert!(chain.fee_for("alice", create()) > placing_among_few);

    // A work report pays for settling every workload its worker holds.
    let first = workers[0];
    let report = |chain: &TestChain| {
        Call::Workers(WorkersCall::SubmitWorkReport {
            report: chain.signed_report(first, chain.epoch(), vec![], vec![]),
        })
    };
    let holding_nothing = chain.fee_for("charlie", report(&chain));
    chain.create_app(
        "alice",
        TestChain::app_spec(100, 256, TeeKind::Simulated, Some("eu")),
        tokens(20),
    );
    assert_eq!(
        chain.worker(first).workloads,
        1,
        "the app went to the first worker"
    );
    assert!(chain.fee_for("charlie", report(&chain)) > holding_nothing);
}

/// Funded accounts, each with `count` signed transfers ready.
fn transfers(chain: &mut TestChain, accounts: usize, count: usize) -> Vec<SignedTransaction> {
    let keys: Vec<Keypair> = (0..accounts)
        .map(|i| Keypair::from_seed(KeyScheme::Ed25519, Hash::of(&(i as u64).to_be_bytes()).0))
        .collect();
    for key in &keys {
        chain.ok(
            "alice",
            TestChain::transfer(key.account_id(), tokens(1_000)),
        );
    }
    let bob = chain.who("bob");
    let mut txs = Vec::new();
    for nonce in 0..count {
        for key in &keys {
            txs.push(chain.transaction_with_nonce(
                key,
                TestChain::transfer(bob, Balance(1)),
                nonce as u64,
            ));
        }
    }
    txs
}

#[test]
fn a_proposer_fills_a_block_up_to_its_weight_limit_and_a_verifier_refuses_one_over_it() {
    let params = Params {
        max_block_weight: Weight(*wetee_types::params::bounds::MAX_BLOCK_WEIGHT.start()),
        ..Params::dev()
    };
    let mut chain = TestChain::with_params(params.clone());
    let txs = transfers(&mut chain, 20, 80);
    let block = chain.block();
    let one = weights::of(&chain.state, &txs[0], txs[0].encode().len()).unwrap();
    // A quiet chain's block: its start used nothing, its end keeps its share, and so do
    // operational transactions.
    let room = wetee_runtime::normal_budget(params.max_block_weight);
    let fits = (room.0 / one.0) as usize;
    assert!(fits < txs.len(), "the test offers more than a block holds");

    // The proposer's side: every transaction that fits goes in, then the block is full.
    let mut state = chain.state.clone();
    let mut builder = BlockBuilder::begin(chain.runtime, &mut state, block).unwrap();
    let mut included = Vec::new();
    let mut full = None;
    for tx in &txs {
        match builder.try_push(tx, SignatureCheck::AlreadyVerified) {
            Ok(receipt) => {
                assert!(receipt.is_success());
                included.push(tx.clone());
            }
            Err(error) => {
                full = Some(error);
                break;
            }
        }
    }
    assert_eq!(included.len(), fits);
    assert!(builder.weight() <= params.max_block_weight);
    assert!(builder.remaining_for(Class::Normal) < one);
    assert!(
        matches!(full, Some(TxError::BlockFull { weight, remaining }) if weight == one && remaining < one),
        "{full:?}"
    );
    let built = builder.finish().unwrap();
    assert_eq!(built.receipts.len(), fits);

    // The verifier's side: the same block executes to the same state; one more transaction
    // makes it invalid, and nothing of it is applied to the caller's view of it.
    let mut verified = chain.state.clone();
    let outcome = chain
        .runtime
        .execute_block(&mut verified, &block, &included)
        .unwrap();
    assert_eq!(outcome, built);
    assert_eq!(root_of(&verified), root_of(&state));
    let mut over = included.clone();
    over.push(txs[fits].clone());
    let mut scratch = chain.state.clone();
    match chain.runtime.execute_block(&mut scratch, &block, &over) {
        Err(RuntimeError::InvalidTransaction {
            index,
            error: TxError::BlockFull { .. },
        }) => assert_eq!(index, fits),
        other => panic!("a block over the weight limit was accepted: {other:?}"),
    }
}

fn root_of(state: &MemoryState) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.scan_from(b"").collect()
}

#[test]
fn a_skipped_transaction_leaves_the_block_as_it_was() {
    let mut chain = TestChain::new();
    let txs = transfers(&mut chain, 1, 2);
    let block = chain.block();
    let mut state = chain.state.clone();
    let mut builder = BlockBuilder::begin(chain.runtime, &mut state, block).unwrap();
    // Nonce 1 before nonce 0: refused, and nothing changes.
    assert!(matches!(
        builder.try_push(&txs[1], SignatureCheck::Verify),
        Err(TxError::FutureNonce { .. })
    ));
    assert_eq!((builder.len(), builder.weight()), (0, Weight::ZERO));
    assert!(builder.try_push(&txs[0], SignatureCheck::Verify).is_ok());
    assert!(builder.try_push(&txs[1], SignatureCheck::Verify).is_ok());
    assert_eq!(builder.len(), 2);
}

#[test]
fn a_block_full_of_transfers_still_takes_a_workers_report() {
    let params = Params {
        max_block_weight: Weight(*wetee_types::params::bounds::MAX_BLOCK_WEIGHT.start()),
        ..Params::dev()
    };
    let (mut chain, worker, app) = TestChain::serving(params.clone());
    chain.advance_to_epoch(1);
    let txs = transfers(&mut chain, 20, 80);
    let report = chain.signed_report(worker, 0, vec![TestChain::proof(app, 10_000)], vec![]);
    let mut forged = report.clone();
    forged.signature[0] ^= 1;
    let forged = chain.transaction(
        chain.key("eve"),
        Call::Workers(WorkersCall::SubmitWorkReport { report: forged }),
    );
    let call = Call::Workers(WorkersCall::SubmitWorkReport { report });
    let by_operator = chain.transaction(chain.key("eve"), call.clone());
    let by_stranger = chain.transaction(chain.key("bob"), call);
    let block = chain.block();
    let mut state = chain.state.clone();
    let mut builder = BlockBuilder::begin(chain.runtime, &mut state, block).unwrap();
    assert_eq!(builder.class_of(&by_operator), Class::Operational);
    assert_eq!(builder.class_of(&by_stranger), Class::Normal);
    // One the worker did not sign would fail: the operator cannot claim the share with it.
    assert_eq!(builder.class_of(&forged), Class::Normal);
    let mut full = None;
    for tx in &txs {
        if let Err(error) = builder.try_push(tx, SignatureCheck::AlreadyVerified) {
            full = Some(error);
            break;
        }
    }
    assert!(matches!(full, Some(TxError::BlockFull { .. })), "{full:?}");
    // Normal transactions are out of room: so is a report sent by someone who does not operate
    // the worker; its operator's report uses the share kept for it.
    assert!(matches!(
        builder.try_push(&by_stranger, SignatureCheck::AlreadyVerified),
        Err(TxError::BlockFull { .. })
    ));
    let receipt = builder
        .try_push(&by_operator, SignatureCheck::AlreadyVerified)
        .unwrap();
    assert!(receipt.is_success(), "{:?}", receipt.outcome);
    // The epoch is reported now: a copy sent again is normal, and waits with the rest.
    let mut again = by_operator.tx.clone();
    again.nonce += 1;
    let again = again.sign(chain.key("eve"), &chain.genesis_hash);
    assert_eq!(builder.class_of(&again), Class::Normal);
    assert!(builder.weight() <= wetee_runtime::transactions_budget(params.max_block_weight));
    builder.finish().unwrap();
}
