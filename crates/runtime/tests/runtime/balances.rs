//! Balances and genesis.

use wetee_runtime::testing::*;
use wetee_runtime::{Genesis, MemoryState, Runtime, RuntimeError};
use wetee_types::params::{ChainConfig, Params};
use wetee_types::{AccountId, Balance, CallError, Event, Hash};

#[test]
fn a_transfer_moves_free_funds_and_emits_an_event() {
    let mut chain = TestChain::new();
    let bob_before = chain.free("bob");
    let events = chain.ok("alice", TestChain::transfer(chain.who("bob"), tokens(5)));
    assert_eq!(
        chain.free("bob"),
        bob_before.checked_add(tokens(5)).unwrap()
    );
    assert_eq!(
        events,
        vec![Event::Transferred {
            from: chain.who("alice"),
            to: chain.who("bob"),
            amount: tokens(5)
        }]
    );
    chain.check_invariants();
}

#[test]
fn a_transfer_to_a_new_account_creates_it() {
    let mut chain = TestChain::new();
    let stranger = AccountId([7; 32]);
    chain.ok("alice", TestChain::transfer(stranger, tokens(3)));
    assert_eq!(chain.account(&stranger).free, tokens(3));
    chain.check_invariants();
}

#[test]
fn a_zero_transfer_fails() {
    let mut chain = TestChain::new();
    chain.fails(
        "alice",
        TestChain::transfer(chain.who("bob"), Balance::ZERO),
        CallError::ZeroAmount,
    );
}

#[test]
fn a_transfer_beyond_the_free_balance_fails_without_touching_reserved_funds() {
    let mut chain = TestChain::new();
    let free = chain.free("alice");
    let call = TestChain::transfer(chain.who("bob"), Balance(free.0 + 1));
    // The fee is paid before the call runs.
    let available = free
        .checked_sub(chain.fee_for("alice", call.clone()))
        .unwrap();
    chain.fails(
        "alice",
        call,
        CallError::InsufficientBalance {
            needed: Balance(free.0 + 1),
            available,
        },
    );
}

#[test]
fn a_transfer_to_oneself_changes_only_the_fee() {
    let mut chain = TestChain::new();
    let before = chain.free("alice");
    let tx = chain.transaction(
        chain.key("alice"),
        TestChain::transfer(chain.who("alice"), tokens(1)),
    );
    chain.apply(&tx).unwrap();
    assert_eq!(chain.free("alice"), before.checked_sub(tx.tx.fee).unwrap());
    chain.check_invariants();
}

fn genesis() -> Genesis {
    Genesis {
        chain: ChainConfig { epoch_length: 10 },
        params: Params::dev(),
        attestation: wetee_types::attestation::AttestationPolicy::dev(),
        root: AccountId([1; 32]),
        treasury: AccountId([2; 32]),
        balances: vec![(AccountId([3; 32]), tokens(5))],
    }
}

#[test]
fn genesis_refuses_duplicates_zero_epochs_bad_params_and_a_second_genesis() {
    let runtime = Runtime::new();
    let mut g = genesis();
    g.balances.push((AccountId([3; 32]), tokens(1)));
    assert!(matches!(
        runtime.genesis(&mut MemoryState::new(), &g, Hash::ZERO),
        Err(RuntimeError::Genesis(_))
    ));
    let mut g = genesis();
    g.chain.epoch_length = 0;
    assert!(matches!(
        runtime.genesis(&mut MemoryState::new(), &g, Hash::ZERO),
        Err(RuntimeError::Genesis(_))
    ));
    let mut g = genesis();
    g.params.protocol_fee_bps = 10_001;
    assert!(matches!(
        runtime.genesis(&mut MemoryState::new(), &g, Hash::ZERO),
        Err(RuntimeError::Genesis(_))
    ));
    let mut g = genesis();
    g.balances = vec![
        (AccountId([3; 32]), Balance(u128::MAX)),
        (AccountId([4; 32]), Balance(1)),
    ];
    assert!(matches!(
        runtime.genesis(&mut MemoryState::new(), &g, Hash::ZERO),
        Err(RuntimeError::Genesis(_))
    ));
    let mut state = MemoryState::new();
    runtime.genesis(&mut state, &genesis(), Hash::ZERO).unwrap();
    assert!(matches!(
        runtime.genesis(&mut state, &genesis(), Hash::ZERO),
        Err(RuntimeError::Genesis(_))
    ));
}

#[test]
fn blocks_cannot_run_before_genesis() {
    let runtime = Runtime::new();
    let mut state = MemoryState::new();
    let block = wetee_runtime::BlockInfo {
        height: 1,
        timestamp_ms: 0,
        parent_hash: wetee_types::Hash::of(b"parent"),
    };
    assert!(matches!(
        runtime.begin_block(&mut state, &block),
        Err(RuntimeError::State(_))
    ));
}
