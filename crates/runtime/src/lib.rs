//! The WeTEE runtime: a pure, deterministic state machine.
//!
//! Given a state, a block's height and timestamp, and its transactions, every validator computes
//! the same new state. The runtime reads no clock, does no I/O, uses no randomness, iterates
//! only ordered maps, and does all arithmetic on amounts with checked operations.
//!
//! ## A block
//! 1. [`Runtime::begin_block`]: task runs that are due (by height or by block time) are created
//!    and placed; runs past their deadline release their capacity ([`hooks`] has what a block
//!    spends on its hooks).
//! 2. [`Runtime::apply_transaction`] for each transaction: validity checks (size, expiry,
//!    nonce, weight, fee, signature; a failure here means the transaction cannot be in a block),
//!    then the fee is paid to the treasury and the nonce advances, then the call runs in an
//!    overlay: if it fails, its writes are discarded and the receipt carries the error. The fee
//!    is at least `base_fee + weight × fee_per_weight + size × fee_per_byte`, the weight from
//!    [`weights`]; a block's hooks and transactions weigh at most `max_block_weight` together.
//! 3. [`Runtime::end_block`]: from the last block of an epoch, expired leases and runs are
//!    released, grace periods end, workers that stopped proving their work are suspended and
//!    their apps moved, draining workers are emptied, and the pending queue is retried, as many
//!    blocks as the work takes.
//!
//! ## Modules
//! [`balances`], [`workers`], [`apps`], [`tasks`], [`scheduling`], [`settlement`],
//! [`attestation`], [`root`], [`weights`]: each opens with its rules. [`BlockBuilder`] is the
//! one recipe for a block, followed by [`Runtime::execute_block`] and by a node's proposer. [`query`] answers the RPC's typed state
//! queries.
//!
//! This crate must not depend on the node, the network, or any clock or file system.

#![forbid(unsafe_code)]
// Consensus code: amounts use checked arithmetic and nothing may panic (tests may).
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod apps;
pub mod attestation;
pub mod balances;
mod context;
pub mod hooks;
pub mod query;
pub mod root;
pub mod scheduling;
pub mod settlement;
pub mod state;
pub mod storage;
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
pub mod weights;
pub mod workers;

pub use context::BlockInfo;
pub use state::{Changes, Layer, MemoryState, Overlay, State};

use context::Ctx;
use storage::keys;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::codec::decode;
use wetee_types::event::MAX_RECEIPT_EVENTS;
use wetee_types::params::{ChainConfig, Params};
use wetee_types::records::Account;
use wetee_types::transaction::MAX_TRANSACTION_BYTES;
use wetee_types::{
    AccountId, Balance, Call, CallError, Event, Hash, Outcome, Receipt, SignedTransaction, TxError,
    Weight,
};

/// What the runtime can fail with outside a call: a broken genesis or damaged state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The genesis configuration is unusable.
    Genesis(String),
    /// The state is damaged (a bug); the node must stop rather than diverge.
    State(String),
    /// A block contains a transaction that cannot be included.
    InvalidTransaction {
        /// Its position in the block.
        index: usize,
        /// Why.
        error: TxError,
    },
}

impl std::error::Error for RuntimeError {}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::Genesis(e) => write!(f, "invalid genesis: {e}"),
            RuntimeError::State(e) => write!(f, "state error: {e}"),
            RuntimeError::InvalidTransaction { index, error } => {
                write!(f, "transaction {index} of the block is invalid: {error}")
            }
        }
    }
}

/// The initial state of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Fixed configuration.
    pub chain: ChainConfig,
    /// Initial parameters.
    pub params: Params,
    /// Which TEEs workers may run in (see [`attestation`]).
    pub attestation: AttestationPolicy,
    /// The root key (see [`root`]).
    pub root: AccountId,
    /// Where fees, protocol shares and slashes go.
    pub treasury: AccountId,
    /// Initial free balances.
    pub balances: Vec<(AccountId, Balance)>,
}

/// Everything a block's execution produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BlockOutcome {
    /// Events of the start of the block.
    pub begin_events: Vec<Event>,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Events of the end of the block (and epoch).
    pub end_events: Vec<Event>,
}

/// Per-block values read once from state.
struct Env {
    height: u64,
    time_ms: u64,
    chain: ChainConfig,
    params: Params,
    attestation: AttestationPolicy,
    genesis_hash: Hash,
    treasury: AccountId,
}

impl Env {
    fn load(state: &dyn State, block: &BlockInfo) -> Result<Env, RuntimeError> {
        let read = |key: &[u8], what: &str| -> Result<Vec<u8>, RuntimeError> {
            state
                .get(key)
                .ok_or_else(|| RuntimeError::State(format!("{what} missing: was genesis applied?")))
        };
        let bad = |e: wetee_types::codec::CodecError| RuntimeError::State(e.to_string());
        Ok(Env {
            height: block.height,
            time_ms: block.timestamp_ms,
            chain: decode(&read(keys::CHAIN, "chain config")?).map_err(bad)?,
            params: decode(&read(keys::PARAMS, "parameters")?).map_err(bad)?,
            attestation: decode(&read(keys::ATTESTATION_POLICY, "attestation policy")?)
                .map_err(bad)?,
            genesis_hash: decode(&read(keys::GENESIS, "genesis hash")?).map_err(bad)?,
            treasury: decode(&read(keys::TREASURY, "treasury")?).map_err(bad)?,
        })
    }

    /// The class of `tx` in this block.
    fn class(&self, state: &dyn State, tx: &SignedTransaction) -> weights::Class {
        let epoch = self.chain.epoch_of(self.height);
        weights::class(
            state,
            tx,
            epoch,
            self.params.proof_window_epochs,
            &self.genesis_hash,
        )
    }

    fn ctx<'a>(&self, state: &'a mut dyn State) -> Ctx<'a> {
        Ctx {
            state,
            height: self.height,
            time_ms: self.time_ms,
            chain: self.chain,
            params: self.params.clone(),
            attestation: self.attestation.clone(),
            genesis_hash: self.genesis_hash,
            treasury: self.treasury,
            events: Vec::new(),
        }
    }
}

/// Who checks a transaction's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The runtime verifies it.
    Verify,
    /// The caller verified it for this chain already; the runtime does not do it again.
    AlreadyVerified,
}

/// A transaction that passed [`Runtime::check_transaction`], with what a mempool needs to
/// rank it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admissible {
    /// The signer's account as it stands.
    pub account: Account,
    /// The least fee the transaction could have offered.
    pub minimum_fee: Balance,
    /// Its encoded size in bytes.
    pub size: usize,
    /// What executing it costs.
    pub weight: Weight,
    /// The share of a block it may use.
    pub class: weights::Class,
    /// The chain's block time, which turns a pool's time limits into blocks.
    pub target_block_time_ms: u64,
}

/// What the checks of one transaction found, for applying it.
struct Checked {
    account: Account,
    weight: Weight,
    class: weights::Class,
    minimum_fee: Balance,
    size: usize,
}

/// The state machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Runtime;

impl Runtime {
    /// The runtime.
    pub fn new() -> Self {
        Runtime
    }

    /// Writes the initial state. `genesis_hash` identifies the chain in every signature.
    pub fn genesis(
        &self,
        state: &mut dyn State,
        genesis: &Genesis,
        genesis_hash: Hash,
    ) -> Result<(), RuntimeError> {
        if genesis.chain.epoch_length == 0 {
            return Err(RuntimeError::Genesis(
                "epoch_length must be at least 1".into(),
            ));
        }
        genesis.params.validate().map_err(RuntimeError::Genesis)?;
        genesis
            .attestation
            .validate()
            .map_err(|e| RuntimeError::Genesis(format!("attestation policy: {e}")))?;
        if state.get(keys::GENESIS).is_some() {
            return Err(RuntimeError::Genesis(
                "the state already has a genesis".into(),
            ));
        }
        storage::put(state, keys::GENESIS, &genesis_hash);
        storage::put(state, keys::CHAIN, &genesis.chain);
        storage::put(state, keys::PARAMS, &genesis.params);
        storage::put(state, keys::ATTESTATION_POLICY, &genesis.attestation);
        storage::put(state, keys::ROOT, &genesis.root);
        storage::put(state, keys::TREASURY, &genesis.treasury);
        let mut seen = std::collections::BTreeSet::new();
        for (account, amount) in &genesis.balances {
            if !seen.insert(*account) {
                return Err(RuntimeError::Genesis(format!("{account} is listed twice")));
            }
            storage::put_account(
                state,
                account,
                &Account {
                    nonce: 0,
                    free: *amount,
                    reserved: Balance::ZERO,
                },
            );
        }
        total_issuance(state).map_err(|e| RuntimeError::Genesis(format!("total issuance: {e}")))?;
        Ok(())
    }

    /// Checks whether `tx` could be included in the block at `block`, without applying it.
    /// With `allow_future_nonce`, a nonce ahead of the account's is accepted (a mempool queues
    /// such transactions until the gap closes).
    pub fn check_transaction(
        &self,
        state: &dyn State,
        block: &BlockInfo,
        tx: &SignedTransaction,
        allow_future_nonce: bool,
        signature: SignatureCheck,
    ) -> Result<Admissible, TxError> {
        let env = Env::load(state, block).map_err(|e| TxError::State(e.to_string()))?;
        let checked = self.check(state, &env, tx, allow_future_nonce, signature)?;
        Ok(Admissible {
            account: checked.account,
            minimum_fee: checked.minimum_fee,
            size: checked.size,
            weight: checked.weight,
            class: checked.class,
            target_block_time_ms: env.params.target_block_time_ms,
        })
    }

    /// The least fee of `tx` and what it is made of, against `state` at `block` (its weight
    /// may depend on the state). Fails for a transaction too heavy for any block.
    pub fn fee_quote(
        &self,
        state: &dyn State,
        block: &BlockInfo,
        tx: &SignedTransaction,
    ) -> Result<wetee_types::FeeQuote, TxError> {
        let env = Env::load(state, block).map_err(|e| TxError::State(e.to_string()))?;
        let size = wetee_types::codec::encode(tx).len();
        if size > MAX_TRANSACTION_BYTES {
            return Err(TxError::TooLarge {
                size,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let weight = weigh(state, &env, tx, size, env.class(state, tx))?;
        env.params
            .fee_quote(size, weight)
            .ok_or_else(|| TxError::State("the chain's fee parameters overflow".into()))
    }

    fn check(
        &self,
        state: &dyn State,
        env: &Env,
        signed: &SignedTransaction,
        allow_future_nonce: bool,
        signature: SignatureCheck,
    ) -> Result<Checked, TxError> {
        let size = wetee_types::codec::encode(signed).len();
        if size > MAX_TRANSACTION_BYTES {
            return Err(TxError::TooLarge {
                size,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let tx = &signed.tx;
        if env.height > tx.expires_at {
            return Err(TxError::Expired {
                expires_at: tx.expires_at,
                height: env.height,
            });
        }
        let account =
            storage::account(state, &tx.signer).map_err(|e| TxError::State(e.to_string()))?;
        if tx.nonce < account.nonce {
            return Err(TxError::StaleNonce {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > account.nonce && !allow_future_nonce {
            return Err(TxError::FutureNonce {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        // Before the weight, which may read more of the state: an account that cannot pay
        // what it offers costs nothing more.
        if account.free < tx.fee {
            return Err(TxError::CannotPayFee {
                fee: tx.fee,
                free: account.free,
            });
        }
        let class = env.class(state, signed);
        let weight = weigh(state, env, signed, size, class)?;
        let minimum = env
            .params
            .minimum_fee(size, weight)
            .unwrap_or(Balance(u128::MAX));
        if tx.fee < minimum {
            return Err(TxError::FeeTooLow {
                minimum,
                offered: tx.fee,
            });
        }
        if signature == SignatureCheck::Verify && !signed.verify_signature(&env.genesis_hash) {
            return Err(TxError::BadSignature);
        }
        Ok(Checked {
            account,
            weight,
            class,
            minimum_fee: minimum,
            size,
        })
    }

    /// Applies one transaction. `Err` means it cannot be included (the state is unchanged);
    /// `Ok` gives its receipt, whose outcome may be a failed call (only the fee was taken).
    pub fn apply_transaction(
        &self,
        state: &mut dyn State,
        block: &BlockInfo,
        signed: &SignedTransaction,
    ) -> Result<Receipt, TxError> {
        self.apply_checked_transaction(state, block, signed, SignatureCheck::Verify)
    }

    /// [`Runtime::apply_transaction`], trusting the caller with the signature when `signature`
    /// says it was verified already (a node verifies each signature once, at admission or in a
    /// parallel pass over a block).
    pub fn apply_checked_transaction(
        &self,
        state: &mut dyn State,
        block: &BlockInfo,
        signed: &SignedTransaction,
        signature: SignatureCheck,
    ) -> Result<Receipt, TxError> {
        let env = Env::load(state, block).map_err(|e| TxError::State(e.to_string()))?;
        let checked = self.check(state, &env, signed, false, signature)?;
        self.apply_checked(state, &env, signed, checked)
    }

    /// Takes the fee, advances the nonce and runs the call of a transaction that passed
    /// [`Runtime::check`].
    fn apply_checked(
        &self,
        state: &mut dyn State,
        env: &Env,
        signed: &SignedTransaction,
        checked: Checked,
    ) -> Result<Receipt, TxError> {
        let mut account = checked.account;
        let tx = &signed.tx;
        account.nonce = account.nonce.saturating_add(1);
        storage::put_account(state, &tx.signer, &account);
        balances::transfer(state, &tx.signer, &env.treasury, tx.fee)
            .map_err(|e| TxError::State(e.to_string()))?;

        let mut overlay = Overlay::new(state);
        let mut ctx = env.ctx(&mut overlay);
        let result = dispatch(&mut ctx, tx.signer, &tx.call).and_then(|()| {
            wetee_types::codec::BoundedVec::try_new(std::mem::take(&mut ctx.events))
                .map_err(|_| CallError::Overflow)
        });
        let (outcome, events) = match result {
            Ok(events) => {
                drop(ctx);
                overlay.commit();
                (Outcome::Success, events)
            }
            Err(error) => (Outcome::Failed { error }, Default::default()),
        };
        debug_assert!(events.len() <= MAX_RECEIPT_EVENTS);
        Ok(Receipt {
            tx_hash: signed.hash(),
            signer: tx.signer,
            nonce: tx.nonce,
            fee: tx.fee,
            outcome,
            events,
        })
    }

    /// Executes a whole block: `begin_block`, every transaction, `end_block`. Fails if a
    /// transaction cannot be included, leaving `state` partly updated: run it on an overlay
    /// when the block is untrusted.
    pub fn execute_block(
        &self,
        state: &mut dyn State,
        block: &BlockInfo,
        transactions: &[SignedTransaction],
    ) -> Result<BlockOutcome, RuntimeError> {
        self.execute_checked_block(state, block, transactions, SignatureCheck::Verify)
    }

    /// [`Runtime::execute_block`], trusting the caller with every signature when `signatures`
    /// says they were all verified already.
    pub fn execute_checked_block(
        &self,
        state: &mut dyn State,
        block: &BlockInfo,
        transactions: &[SignedTransaction],
        signatures: SignatureCheck,
    ) -> Result<BlockOutcome, RuntimeError> {
        let mut builder = BlockBuilder::begin(*self, state, *block)?;
        for (index, tx) in transactions.iter().enumerate() {
            builder
                .try_push(tx, signatures)
                .map_err(|error| RuntimeError::InvalidTransaction { index, error })?;
        }
        builder.finish()
    }

    /// Runs one hook item in its own overlay. A damaged state stops the block; any other error
    /// drops the item's changes and the item itself (its `cleanup` keys), so one bad entry cannot block
    /// the queue. Every validator takes the same decision.
    fn isolated(
        &self,
        state: &mut dyn State,
        env: &Env,
        events: &mut Vec<Event>,
        cleanup: &[&[u8]],
        item: impl FnOnce(&mut Ctx) -> Result<(), CallError>,
    ) -> Result<(), RuntimeError> {
        let mut overlay = Overlay::new(state);
        let mut ctx = env.ctx(&mut overlay);
        match item(&mut ctx) {
            Ok(()) => {
                let produced = std::mem::take(&mut ctx.events);
                drop(ctx);
                overlay.commit();
                events.extend(produced);
                Ok(())
            }
            Err(CallError::State { detail }) => Err(RuntimeError::State(detail.to_string())),
            Err(_) => {
                drop(ctx);
                drop(overlay);
                for key in cleanup {
                    state.delete(key);
                }
                Ok(())
            }
        }
    }
}

/// The weight of `tx` (`size` bytes, of `class`), refused when no block could hold it.
fn weigh(
    state: &dyn State,
    env: &Env,
    tx: &SignedTransaction,
    size: usize,
    class: weights::Class,
) -> Result<Weight, TxError> {
    let weight = weights::of(state, tx, size).map_err(|e| TxError::State(e.to_string()))?;
    let max = class_budget(env.params.max_block_weight, class);
    if weight > max {
        return Err(TxError::TooHeavy { weight, max });
    }
    Ok(weight)
}

/// The most a block's transactions can weigh: the limit less the end-of-block hook's share
/// (the start-of-block hook's use comes off it too).
pub const fn transactions_budget(max_block_weight: Weight) -> Weight {
    max_block_weight.saturating_sub(hooks::hook_budget(max_block_weight))
}

/// What normal transactions can use of a block: nine tenths of [`transactions_budget`], the
/// rest kept for operational ones ([`weights::Class`]).
pub const fn normal_budget(max_block_weight: Weight) -> Weight {
    let transactions = transactions_budget(max_block_weight);
    transactions.saturating_sub(Weight(transactions.0 / 10))
}

/// What transactions of `class` can use of a block, with the start-of-block hook's use.
pub const fn class_budget(max_block_weight: Weight, class: weights::Class) -> Weight {
    match class {
        weights::Class::Normal => normal_budget(max_block_weight),
        weights::Class::Operational => transactions_budget(max_block_weight),
    }
}

/// One block, transaction by transaction: the recipe both a proposer and every verifier follow.
/// [`BlockBuilder::begin`] runs the start-of-block hook, [`BlockBuilder::try_push`] includes a
/// transaction or says why it cannot be (the state is then as before), and
/// [`BlockBuilder::finish`] runs the end-of-block hook. The hooks and the transactions together
/// weigh at most the chain's `max_block_weight` ([`hooks`] has the shares): a proposer skips
/// what no longer fits, and a verifier refuses a block whose transactions weigh more.
pub struct BlockBuilder<'s> {
    runtime: Runtime,
    state: &'s mut dyn State,
    block: BlockInfo,
    max_weight: Weight,
    weight: Weight,
    begin_events: Vec<Event>,
    receipts: Vec<Receipt>,
}

impl std::fmt::Debug for BlockBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockBuilder")
            .field("block", &self.block)
            .field("weight", &self.weight)
            .field("max_weight", &self.max_weight)
            .field("transactions", &self.receipts.len())
            .finish_non_exhaustive()
    }
}

impl<'s> BlockBuilder<'s> {
    /// Starts the block at `block` on `state` (its parent's state): runs the start-of-block
    /// hook.
    pub fn begin(
        runtime: Runtime,
        state: &'s mut dyn State,
        block: BlockInfo,
    ) -> Result<BlockBuilder<'s>, RuntimeError> {
        let (begin_events, begun) = runtime.begin_block_weighed(state, &block)?;
        let max_weight = Env::load(state, &block)?.params.max_block_weight;
        // A hook item heavier than its share goes alone, over the limit, and takes nothing
        // from the transactions (work reports above all) beyond the hook's own share.
        let begun = begun.min(hooks::hook_budget(max_weight));
        Ok(BlockBuilder {
            runtime,
            state,
            block,
            max_weight,
            weight: begun,
            begin_events,
            receipts: Vec::new(),
        })
    }

    /// Includes `tx` and returns its receipt (whose call may have failed: the fee is taken
    /// anyway), or says why it cannot be included, leaving the state as it was. `signature`
    /// says whether the caller verified its signature for this chain already.
    pub fn try_push(
        &mut self,
        tx: &SignedTransaction,
        signature: SignatureCheck,
    ) -> Result<&Receipt, TxError> {
        let env =
            Env::load(&*self.state, &self.block).map_err(|e| TxError::State(e.to_string()))?;
        let checked = self
            .runtime
            .check(&*self.state, &env, tx, false, signature)?;
        // The limit in force now: a `set_params` earlier in the block may have changed it.
        self.max_weight = env.params.max_block_weight;
        let remaining = self.remaining_for(checked.class);
        if checked.weight > remaining {
            return Err(TxError::BlockFull {
                weight: checked.weight,
                remaining,
            });
        }
        let weight = checked.weight;
        let receipt = self
            .runtime
            .apply_checked(&mut *self.state, &env, tx, checked)?;
        self.weight = self.weight.saturating_add(weight);
        self.receipts.push(receipt);
        self.receipts
            .last()
            .ok_or_else(|| TxError::State("a receipt just pushed is missing".into()))
    }

    /// What the start-of-block hook and the transactions included so far weigh.
    pub fn weight(&self) -> Weight {
        self.weight
    }

    /// What the block can still take in transactions (operational ones: normal ones have
    /// less, [`BlockBuilder::remaining_for`]).
    pub fn remaining(&self) -> Weight {
        self.remaining_for(weights::Class::Operational)
    }

    /// What the block can still take in transactions of `class`.
    pub fn remaining_for(&self, class: weights::Class) -> Weight {
        class_budget(self.max_weight, class).saturating_sub(self.weight)
    }

    /// The class `tx` would have in this block now.
    pub fn class_of(&self, tx: &SignedTransaction) -> weights::Class {
        // Asked for every candidate a full block skips: most are settled by their call alone.
        if weights::reported_worker(tx).is_none() {
            return weights::Class::Normal;
        }
        Env::load(&*self.state, &self.block)
            .map_or(weights::Class::Normal, |env| env.class(&*self.state, tx))
    }

    /// How many transactions are included.
    pub fn len(&self) -> usize {
        self.receipts.len()
    }

    /// Whether no transaction is included.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
    }

    /// Runs the end-of-block hook on what the transactions left and returns everything the
    /// block produced.
    pub fn finish(self) -> Result<BlockOutcome, RuntimeError> {
        let left = self.max_weight.saturating_sub(self.weight);
        let (end_events, _) = self
            .runtime
            .end_block_within(self.state, &self.block, left)?;
        Ok(BlockOutcome {
            begin_events: self.begin_events,
            receipts: self.receipts,
            end_events,
        })
    }
}

fn state_error(e: CallError) -> RuntimeError {
    RuntimeError::State(e.to_string())
}

fn dispatch(ctx: &mut Ctx, signer: AccountId, call: &Call) -> Result<(), CallError> {
    match call {
        Call::Balances(call) => balances::dispatch(ctx, signer, call),
        Call::Workers(call) => workers::dispatch(ctx, signer, call),
        Call::Apps(call) => apps::dispatch(ctx, signer, call),
        Call::Tasks(call) => tasks::dispatch(ctx, signer, call),
        Call::Root(call) => root::dispatch(ctx, signer, call),
        Call::Attestation(call) => attestation::dispatch(ctx, signer, call),
    }
}

/// The sum of every account's free and reserved balance: constant after genesis.
pub fn total_issuance(state: &dyn State) -> Result<Balance, CallError> {
    storage::scan_prefix(state, keys::ACCOUNTS).try_fold(Balance::ZERO, |sum, (_, bytes)| {
        let account: Account = decode(&bytes)?;
        sum.checked_add(account.free)
            .and_then(|s| s.checked_add(account.reserved))
            .ok_or(CallError::Overflow)
    })
}
