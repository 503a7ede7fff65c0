//! Transaction validity: what can and cannot enter a block.

use wetee_runtime::SignatureCheck;
use wetee_runtime::testing::*;
use wetee_types::transaction::BalancesCall;
use wetee_types::{Balance, Call, CallError, Hash, KeyScheme, Keypair, Outcome, TxError};

fn transfer_tx(
    chain: &TestChain,
    from: &str,
    to: &str,
    amount: Balance,
) -> wetee_types::SignedTransaction {
    chain.transaction(chain.key(from), TestChain::transfer(chain.who(to), amount))
}

#[test]
fn a_valid_transaction_pays_its_fee_to_the_treasury_and_advances_the_nonce() {
    let mut chain = TestChain::new();
    let before = chain.account(&chain.who("alice"));
    let tx = transfer_tx(&chain, "alice", "bob", tokens(1));
    let receipt = chain.apply(&tx).unwrap();
    assert!(receipt.is_success());
    assert_eq!(receipt.tx_hash, tx.hash());
    let after = chain.account(&chain.who("alice"));
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(
        after.free,
        before
            .free
            .checked_sub(tokens(1))
            .unwrap()
            .checked_sub(tx.tx.fee)
            .unwrap()
    );
    assert_eq!(chain.treasury_free(), tx.tx.fee);
    chain.check_invariants();
}

#[test]
fn a_bad_signature_is_refused_and_changes_nothing() {
    let mut chain = TestChain::new();
    let mut tx = transfer_tx(&chain, "alice", "bob", tokens(1));
    tx.tx.call = TestChain::transfer(chain.who("charlie"), tokens(1));
    let before = chain.state.clone();
    assert_eq!(chain.apply(&tx), Err(TxError::BadSignature));
    assert!(chain.state == before);
}

#[test]
fn a_signature_for_another_chain_is_refused() {
    let mut chain = TestChain::new();
    let key = chain.key("alice").clone();
    let mut tx = transfer_tx(&chain, "alice", "bob", tokens(1)).tx;
    tx.nonce = 0;
    let signed = tx.sign(&key, &Hash::of(b"another chain"));
    assert_eq!(chain.apply(&signed), Err(TxError::BadSignature));
}

#[test]
fn a_replayed_transaction_is_refused_with_a_stale_nonce() {
    let mut chain = TestChain::new();
    let tx = transfer_tx(&chain, "alice", "bob", tokens(1));
    chain.apply(&tx).unwrap();
    assert_eq!(
        chain.apply(&tx),
        Err(TxError::StaleNonce {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn a_future_nonce_cannot_be_included_but_a_mempool_may_hold_it() {
    let mut chain = TestChain::new();
    let key = chain.key("alice").clone();
    let mut tx = transfer_tx(&chain, "alice", "bob", tokens(1)).tx;
    tx.nonce = 5;
    let signed = tx.sign(&key, &chain.genesis_hash);
    let block = chain.block();
    assert!(
        chain
            .runtime
            .check_transaction(&chain.state, &block, &signed, true, SignatureCheck::Verify)
            .is_ok()
    );
    assert_eq!(
        chain
            .runtime
            .check_transaction(&chain.state, &block, &signed, false, SignatureCheck::Verify)
            .map(|admissible| admissible.account),
        Err(TxError::FutureNonce {
            expected: 0,
            got: 5
        })
    );
    assert_eq!(
        chain.apply(&signed),
        Err(TxError::FutureNonce {
            expected: 0,
            got: 5
        })
    );
}

#[test]
fn an_expired_transaction_is_refused() {
    let mut chain = TestChain::new();
    let key = chain.key("alice").clone();
    let mut tx = transfer_tx(&chain, "alice", "bob", tokens(1)).tx;
    tx.expires_at = chain.height - 1;
    let signed = tx.sign(&key, &chain.genesis_hash);
    assert_eq!(
        chain.apply(&signed),
        Err(TxError::Expired {
            expires_at: chain.height - 1,
            height: chain.height
        })
    );
}

#[test]
fn a_fee_below_the_minimum_for_the_size_is_refused() {
    let mut chain = TestChain::new();
    let key = chain.key("alice").clone();
    let mut tx = transfer_tx(&chain, "alice", "bob", tokens(1)).tx;
    let minimum = tx.fee;
    tx.fee = Balance(minimum.0 - 1);
    let signed = tx.sign(&key, &chain.genesis_hash);
    assert_eq!(
        chain.apply(&signed),
        Err(TxError::FeeTooLow {
            minimum,
            offered: Balance(minimum.0 - 1)
        })
    );
}

#[test]
fn an_account_without_funds_cannot_pay_the_fee() {
    let mut chain = TestChain::new();
    let pauper = Keypair::from_seed(KeyScheme::Ed25519, [42; 32]);
    let tx = chain.transaction(&pauper, TestChain::transfer(chain.who("bob"), Balance(1)));
    assert_eq!(
        chain.apply(&tx),
        Err(TxError::CannotPayFee {
            fee: tx.tx.fee,
            free: Balance::ZERO
        })
    );
}

#[test]
fn a_failed_call_takes_only_the_fee_and_the_nonce() {
    let mut chain = TestChain::new();
    let everything = tokens(10_000_000);
    let call = TestChain::transfer(chain.who("bob"), everything);
    let available = chain
        .free("alice")
        .checked_sub(chain.fee_for("alice", call.clone()))
        .unwrap();
    chain.fails(
        "alice",
        call,
        CallError::InsufficientBalance {
            needed: everything,
            available,
        },
    );
    chain.check_invariants();
}

#[test]
fn ed25519_and_sr25519_signers_both_work() {
    let mut chain = TestChain::new();
    // alice signs with sr25519, bob with ed25519 (see the harness).
    assert!(matches!(chain.key("alice"), Keypair::Sr25519(_)));
    assert!(matches!(chain.key("bob"), Keypair::Ed25519(_)));
    chain.ok("alice", TestChain::transfer(chain.who("bob"), tokens(2)));
    chain.ok("bob", TestChain::transfer(chain.who("alice"), tokens(1)));
    assert_eq!(chain.account(&chain.who("bob")).nonce, 1);
}

#[test]
fn a_block_with_an_invalid_transaction_is_rejected_as_a_whole() {
    let chain = TestChain::new();
    let good = transfer_tx(&chain, "alice", "bob", tokens(1));
    let mut bad = transfer_tx(&chain, "bob", "alice", tokens(1));
    bad.tx.fee = Balance::ZERO;
    let block = chain.block();
    let mut scratch = chain.state.clone();
    let error = chain
        .runtime
        .execute_block(&mut scratch, &block, &[good, bad])
        .unwrap_err();
    assert!(matches!(
        error,
        wetee_runtime::RuntimeError::InvalidTransaction { index: 1, .. }
    ));
}

#[test]
fn receipts_of_failed_calls_carry_the_error_and_no_events() {
    let mut chain = TestChain::new();
    let tx = chain.transaction(
        chain.key("alice"),
        Call::Balances(BalancesCall::Transfer {
            to: chain.who("bob"),
            amount: Balance::ZERO,
        }),
    );
    let receipt = chain.apply(&tx).unwrap();
    assert_eq!(
        receipt.outcome,
        Outcome::Failed {
            error: CallError::ZeroAmount
        }
    );
    assert!(receipt.events.is_empty());
    assert_eq!(chain.account(&chain.who("alice")).nonce, 1);
}

#[test]
fn the_same_transactions_give_the_same_state_on_every_node() {
    let run = || {
        let mut chain = TestChain::new();
        let w = chain.started_worker(
            "eve",
            chain.profile("eu", &[wetee_types::TeeKind::Simulated], 8000, 16384),
        );
        let app = chain.create_app(
            "alice",
            TestChain::app_spec(1000, 512, wetee_types::TeeKind::Simulated, Some("eu")),
            tokens(20),
        );
        chain.advance_to_epoch(1);
        chain.report("eve", w, 0, vec![TestChain::proof(app, 10_000)]);
        chain.advance(3);
        chain.state.digest()
    };
    assert_eq!(run(), run());
}
