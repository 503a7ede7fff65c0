//! The root origin.

use wetee_runtime::testing::*;
use wetee_types::params::Params;
use wetee_types::transaction::RootCall;
use wetee_types::{Balance, Call, CallError, Event, TxError};

#[test]
fn only_the_root_key_sets_parameters() {
    let mut chain = TestChain::new();
    let mut params = Params::dev();
    params.base_fee = Balance(params.base_fee.0 * 2);
    chain.fails(
        "alice",
        Call::Root(RootCall::SetParams {
            params: params.clone(),
        }),
        CallError::NotRoot,
    );
    let root = chain.root.clone();
    let events = chain.ok_as(
        &root,
        Call::Root(RootCall::SetParams {
            params: params.clone(),
        }),
    );
    assert_eq!(events, vec![Event::ParamsChanged]);
    assert_eq!(chain.params(), params);
}

#[test]
fn new_parameters_apply_to_the_next_transaction() {
    let mut chain = TestChain::new();
    let old = chain.transaction(
        chain.key("alice"),
        TestChain::transfer(chain.who("bob"), tokens(1)),
    );
    let mut params = Params::dev();
    params.base_fee = Balance(params.base_fee.0 * 10);
    let root = chain.root.clone();
    chain.ok_as(&root, Call::Root(RootCall::SetParams { params }));
    assert!(matches!(chain.apply(&old), Err(TxError::FeeTooLow { .. })));
}

#[test]
fn parameters_that_make_no_sense_are_refused() {
    let mut chain = TestChain::new();
    let mut params = Params::dev();
    params.proof_window_epochs = 0;
    let root = chain.root.clone();
    chain.fails_as(
        &root,
        Call::Root(RootCall::SetParams { params }),
        CallError::InvalidParams {
            problem: wetee_types::error::error_text(
                "proof_window_epochs is 0; it must be from 1 to 16",
            ),
        },
    );
}

#[test]
fn the_block_time_is_fixed_at_genesis() {
    let mut chain = TestChain::new();
    let before = chain.params();
    let root = chain.root.clone();
    for block_time in [before.target_block_time_ms + 1, 20] {
        let mut params = before.clone();
        params.target_block_time_ms = block_time;
        chain.fails_as(
            &root,
            Call::Root(RootCall::SetParams { params }),
            CallError::InvalidParams {
                problem: wetee_types::error::error_text(&format!(
                    "target_block_time_ms is fixed at genesis ({} ms)",
                    before.target_block_time_ms
                )),
            },
        );
    }
    assert_eq!(chain.params(), before);
}

#[test]
fn the_root_key_can_be_handed_over_and_the_old_key_loses_it() {
    let mut chain = TestChain::new();
    let root = chain.root.clone();
    let alice = chain.who("alice");
    chain.fails(
        "bob",
        Call::Root(RootCall::SetRootKey {
            root: chain.who("bob"),
        }),
        CallError::NotRoot,
    );
    chain.ok_as(&root, Call::Root(RootCall::SetRootKey { root: alice }));
    chain.fails_as(
        &root,
        Call::Root(RootCall::SetParams {
            params: Params::dev(),
        }),
        CallError::NotRoot,
    );
    chain.ok(
        "alice",
        Call::Root(RootCall::SetParams {
            params: Params::dev(),
        }),
    );
}
