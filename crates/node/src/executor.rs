//! Executes blocks: speculatively when they are proposed or verified, for good when finalized.
//!
//! A block is executed on its parent's state: the finalized state with the changes of every
//! unfinalized ancestor layered on top. Its own changes are merkleized on the parent's batch
//! into the state root its header must carry. Finalizing a block commits its batch; blocks that
//! can no longer be finalized (other forks) are forgotten.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use commonware_runtime::Spawner;
use wetee_runtime::{
    BlockBuilder, BlockInfo, BlockOutcome, Changes, Genesis, Layer, MemoryState, Runtime,
    SignatureCheck, State,
};
use wetee_types::block::{ConsensusContext, MAX_BLOCK_BYTES, transactions_root};
use wetee_types::codec::{BoundedVec, encode};
use wetee_types::{Block, Hash, Header, SignedTransaction};

use crate::signatures::Signatures;
use wetee_runtime::weights::Class;

/// A block with less weight left than the lightest transaction is full: the proposer stops
/// trying candidates.
const LIGHTEST: wetee_types::Weight = wetee_runtime::weights::TRANSACTION_BASE;

use crate::store::{Speculative, StateStore, StoreError};

/// Why a block was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Its parent is neither finalized nor executed here.
    #[error("unknown parent {0}")]
    UnknownParent(Hash),
    /// Height is not the parent's plus one.
    #[error("height {got} does not follow the parent's {parent}")]
    BadHeight {
        /// The block's height.
        got: u64,
        /// The parent's height.
        parent: u64,
    },
    /// Too early after the parent, or too far in the future.
    #[error("timestamp {got} ms is outside [{min}, {max}]")]
    BadTimestamp {
        /// The block's timestamp.
        got: u64,
        /// The earliest allowed.
        min: u64,
        /// The latest allowed.
        max: u64,
    },
    /// Transaction count or root does not match the transactions.
    #[error("the header's transactions root or count does not match its transactions")]
    TransactionsMismatch,
    /// Larger than a block may be.
    #[error("the block is {0} bytes, more than {MAX_BLOCK_BYTES}")]
    TooLarge(usize),
    /// A transaction cannot be included (bad signature, nonce, fee, expiry).
    #[error("{0}")]
    InvalidTransaction(String),
    /// Executing it gives another state root.
    #[error("state root {claimed} in the header, {computed} after execution")]
    StateRootMismatch {
        /// The header's.
        claimed: Hash,
        /// Ours.
        computed: Hash,
    },
    /// The store failed: the node must stop.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime found damaged state: the node must stop.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The stored state belongs to another chain (another spec, or a release of the software
    /// that encodes genesis differently): the node must not mix them.
    #[error(
        "the stored state belongs to chain {stored}, not to {expected} (the chain spec or the \
         software's encoding changed): start from an empty data directory (`wetee dev --fresh` \
         for the dev chain)"
    )]
    OtherChain {
        /// The genesis hash in the stored state.
        stored: Hash,
        /// The genesis hash of the spec given.
        expected: Hash,
    },
}

impl BlockError {
    /// Whether the error is the node's own failure rather than the block's.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            BlockError::Store(_) | BlockError::Runtime(_) | BlockError::OtherChain { .. }
        )
    }
}

/// A block executed here, with what it changed and produced.
#[derive(Clone)]
pub struct Executed {
    /// The block.
    pub block: Arc<Block>,
    /// Its hash.
    pub hash: Hash,
    /// Its state changes.
    pub changes: Arc<Changes>,
    /// Its receipts and events.
    pub outcome: Arc<BlockOutcome>,
    speculative: Speculative,
}

impl std::fmt::Debug for Executed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed")
            .field("height", &self.block.header.height)
            .field("hash", &self.hash)
            .finish()
    }
}

pub use wetee_types::block::MAX_CLOCK_DRIFT_MS;

/// The executor: the store, the finalized head, and the unfinalized blocks executed here.
pub struct Executor<E: commonware_storage::Context + Spawner> {
    runtime: Runtime,
    store: StateStore<E>,
    genesis: Arc<Block>,
    head: Arc<Block>,
    executed: BTreeMap<Hash, Executed>,
    signatures: Arc<Signatures>,
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Executor<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("head", &self.head.header.height)
            .field("executed", &self.executed.len())
            .finish()
    }
}

/// The genesis state's changes.
fn genesis_changes(
    runtime: &Runtime,
    genesis: &Genesis,
    genesis_hash: Hash,
) -> Result<Changes, BlockError> {
    let empty = MemoryState::new();
    let mut layer = Layer::new(&empty);
    runtime
        .genesis(&mut layer, genesis, genesis_hash)
        .map_err(|e| BlockError::Runtime(e.to_string()))?;
    Ok(layer.into_changes())
}

/// The earliest timestamp a child of `parent` may carry: half a block time after it. Pacing
/// blocks at the full block time is the leaders' policy ([`Executor::target_child_timestamp`]),
/// not a rule a verifier enforces: a full block time would let a proposer that stamps ahead
/// make the next leader wait out its lead, and half of one still keeps a Byzantine leader from
/// packing blocks closer than that (which would shorten block-counted epochs).
fn earliest_child_timestamp(parent: &Header, block_time_ms: u64) -> u64 {
    parent
        .timestamp_ms
        .saturating_add((block_time_ms / 2).max(1))
}

/// The target block time in the state `state`.
fn block_time(state: &dyn State) -> Result<u64, BlockError> {
    let params = wetee_runtime::query::params(state)
        .map_err(|e| BlockError::Runtime(e.to_string()))?
        .ok_or_else(|| BlockError::Runtime("no parameters in state".into()))?;
    Ok(params.target_block_time_ms.max(1))
}

impl<E: commonware_storage::Context + Spawner> Executor<E> {
    /// Opens the store in `prefix`; writes the genesis state if it is empty. `leader` is the
    /// genesis block's nominal proposer (the first validator).
    pub async fn open(
        context: E,
        prefix: &str,
        genesis: &Genesis,
        genesis_hash: Hash,
        genesis_time_ms: u64,
        leader: [u8; 32],
    ) -> Result<Executor<E>, BlockError> {
        let runtime = Runtime::new();
        let changes = genesis_changes(&runtime, genesis, genesis_hash)?;
        // The genesis root is computed in a scratch store, so that a restarted node (whose
        // store has moved on) rebuilds the same genesis block.
        let scratch =
            StateStore::open(context.child("genesis"), &format!("{prefix}-genesis")).await?;
        let (_, genesis_root) = scratch
            .speculate(None, &changes, 0, &Hash::default())
            .await?;
        scratch.destroy().await?;
        let genesis_block = Arc::new(Block {
            header: Header {
                parent: Hash::default(),
                height: 0,
                timestamp_ms: genesis_time_ms,
                context: ConsensusContext {
                    leader,
                    ..ConsensusContext::default()
                },
                transactions_root: transactions_root(&[]),
                transaction_count: 0,
                state_root: genesis_root,
            },
            transactions: BoundedVec::default(),
        });
        let mut store = StateStore::open(context, prefix).await?;
        if store.committed().is_some() {
            let stored = store
                .memory()
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(wetee_runtime::storage::keys::GENESIS)
                .and_then(|bytes| wetee_types::codec::decode::<Hash>(&bytes).ok());
            if stored != Some(genesis_hash) {
                return Err(BlockError::OtherChain {
                    stored: stored.unwrap_or_default(),
                    expected: genesis_hash,
                });
            }
        }
        if store.committed().is_none() {
            let (batch, root) = store.speculate(None, &changes, 0, &Hash::default()).await?;
            debug_assert_eq!(root, genesis_root);
            store.commit(batch, &changes, 0, &Hash::default()).await?;
        }
        Ok(Executor {
            runtime,
            store,
            head: Arc::clone(&genesis_block),
            genesis: genesis_block,
            executed: BTreeMap::new(),
            signatures: Arc::new(Signatures::new(genesis_hash)),
        })
    }

    /// The genesis block.
    pub fn genesis(&self) -> &Arc<Block> {
        &self.genesis
    }

    /// The node's signature checker, shared with admission.
    pub fn signatures(&self) -> &Arc<Signatures> {
        &self.signatures
    }

    /// The height the store's state belongs to.
    pub fn committed_height(&self) -> u64 {
        self.store.committed().map(|c| c.height).unwrap_or_default()
    }

    /// Sets the finalized head after a restart (the block at [`Executor::committed_height`]).
    pub fn restore_head(&mut self, block: Arc<Block>) {
        self.head = block;
    }

    /// The latest finalized block.
    pub fn head(&self) -> &Arc<Block> {
        &self.head
    }

    /// The store (for its in-memory state).
    pub fn store(&self) -> &StateStore<E> {
        &self.store
    }

    /// A block executed here and not yet finalized.
    pub fn executed(&self, hash: &Hash) -> Option<&Executed> {
        self.executed.get(hash)
    }

    /// Whether the state after `hash` is known (finalized head or executed here).
    pub fn knows(&self, hash: &Hash) -> bool {
        *hash == self.head.hash() || self.executed.contains_key(hash)
    }

    /// The header of the known block `hash`.
    fn header_of(&self, hash: &Hash) -> Option<Header> {
        if *hash == self.head.hash() {
            return Some(self.head.header);
        }
        self.executed.get(hash).map(|e| e.block.header)
    }

    /// The changes of the unfinalized ancestors up to `parent`, merged oldest first, and the
    /// parent's batch (`None` when the parent is the finalized head).
    fn ancestry(&self, parent: &Hash) -> Result<(Changes, Option<Speculative>), BlockError> {
        let mut chain = Vec::new();
        let mut cursor = *parent;
        while cursor != self.head.hash() {
            let executed = self
                .executed
                .get(&cursor)
                .ok_or(BlockError::UnknownParent(*parent))?;
            chain.push(executed);
            cursor = executed.block.header.parent;
        }
        let batch = chain.first().map(|e| e.speculative.clone());
        let mut merged = Changes::new();
        for executed in chain.iter().rev() {
            merged.extend(executed.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok((merged, batch))
    }

    /// The earliest timestamp a child of `parent` may carry.
    pub fn earliest_child_timestamp(&self, parent: &Hash) -> Result<u64, BlockError> {
        let header = self
            .header_of(parent)
            .ok_or(BlockError::UnknownParent(*parent))?;
        let (ancestry, _) = self.ancestry(parent)?;
        let memory = self.store.memory();
        let memory = memory.read().unwrap_or_else(|p| p.into_inner());
        let block_time = block_time(&Layer::with_changes(&*memory, ancestry))?;
        Ok(earliest_child_timestamp(&header, block_time))
    }

    /// When a leader should stamp a child of `parent` to keep the target block time, and that
    /// block time.
    pub fn target_child_timestamp(&self, parent: &Hash) -> Result<(u64, u64), BlockError> {
        let header = self
            .header_of(parent)
            .ok_or(BlockError::UnknownParent(*parent))?;
        let (ancestry, _) = self.ancestry(parent)?;
        let memory = self.store.memory();
        let memory = memory.read().unwrap_or_else(|p| p.into_inner());
        let block_time = block_time(&Layer::with_changes(&*memory, ancestry))?;
        Ok((header.timestamp_ms.saturating_add(block_time), block_time))
    }

    /// Reads the state after the known block `block`.
    pub fn read_at<R>(
        &self,
        block: &Hash,
        f: impl FnOnce(&dyn State) -> R,
    ) -> Result<R, BlockError> {
        let (ancestry, _) = self.ancestry(block)?;
        let memory = self.store.memory();
        let memory = memory.read().unwrap_or_else(|p| p.into_inner());
        Ok(f(&Layer::with_changes(&*memory, ancestry)))
    }

    /// Builds and executes a child of `parent` from `candidates` (in order), skipping those
    /// that cannot be included, up to `max_transactions` and until `out_of_time` says so. Returns the block and the hashes of
    /// the candidates that failed the chain's checks.
    pub async fn propose(
        &mut self,
        parent: &Hash,
        context: ConsensusContext,
        timestamp_ms: u64,
        candidates: Vec<SignedTransaction>,
        max_transactions: usize,
        out_of_time: &(dyn Fn() -> bool + Sync),
    ) -> Result<(Executed, Vec<Hash>), BlockError> {
        let parent_header = self
            .header_of(parent)
            .ok_or(BlockError::UnknownParent(*parent))?;
        let (ancestry, base) = self.ancestry(parent)?;
        let height = parent_header.height.saturating_add(1);
        let info = BlockInfo {
            height,
            timestamp_ms,
            parent_hash: *parent,
        };
        // Candidates come from the mempool, which checked them (usually remembered).
        let hashes: Vec<Hash> = candidates.iter().map(SignedTransaction::hash).collect();
        let verdicts = self.signatures.check_all(&candidates, &hashes);
        let (transactions, skipped, outcome, changes) = {
            let memory = self.store.memory();
            let memory = memory.read().unwrap_or_else(|p| p.into_inner());
            let parent_view = Layer::with_changes(&*memory, ancestry);
            let mut view = Layer::new(&parent_view);
            let runtime_error = |e: wetee_runtime::RuntimeError| BlockError::Runtime(e.to_string());
            let mut builder =
                BlockBuilder::begin(self.runtime, &mut view, info).map_err(runtime_error)?;
            let mut included = Vec::new();
            let mut skipped = Vec::new();
            // Leave room for the header and length prefixes.
            let mut bytes = 1024usize;
            // Accounts one of whose candidates was left out: the rest of theirs would only fail
            // for its nonce, and must not count as failures of their own.
            let mut stopped: BTreeSet<wetee_types::AccountId> = BTreeSet::new();
            for (index, (tx, good)) in candidates.into_iter().zip(verdicts).enumerate() {
                if included.len() >= max_transactions || builder.remaining() < LIGHTEST {
                    break;
                }
                if index % 64 == 63 && out_of_time() {
                    break;
                }
                if stopped.contains(&tx.tx.signer) {
                    continue;
                }
                // The pool offers operational transactions first; once normal ones are out of
                // room, only an operational one behind an account's normal ones can still go.
                if builder.remaining_for(Class::Normal) < LIGHTEST
                    && builder.class_of(&tx) == Class::Normal
                {
                    stopped.insert(tx.tx.signer);
                    continue;
                }
                let size = encode(&tx).len();
                if bytes.saturating_add(size) > MAX_BLOCK_BYTES {
                    stopped.insert(tx.tx.signer);
                    continue;
                }
                if !good {
                    stopped.insert(tx.tx.signer);
                    skipped.push(tx.hash());
                    continue;
                }
                match builder.try_push(&tx, SignatureCheck::AlreadyVerified) {
                    Ok(_) => {
                        bytes = bytes.saturating_add(size);
                        included.push(tx);
                    }
                    Err(wetee_types::TxError::State(e)) => return Err(BlockError::Runtime(e)),
                    // Its nonce is used already: the account's next one may still go in.
                    Err(wetee_types::TxError::StaleNonce { .. }) => skipped.push(tx.hash()),
                    // Not its fault: it waits for the next block, and so do the account's
                    // later ones.
                    Err(wetee_types::TxError::BlockFull { .. }) => {
                        stopped.insert(tx.tx.signer);
                    }
                    Err(_) => {
                        stopped.insert(tx.tx.signer);
                        skipped.push(tx.hash());
                    }
                }
            }
            let outcome = builder.finish().map_err(runtime_error)?;
            (included, skipped, outcome, view.into_changes())
        };
        let hashes: Vec<Hash> = transactions.iter().map(SignedTransaction::hash).collect();
        let (speculative, state_root) = self
            .store
            .speculate(base.as_ref(), &changes, height, parent)
            .await?;
        let block = Block {
            header: Header {
                parent: *parent,
                height,
                timestamp_ms,
                context,
                transactions_root: transactions_root(&hashes),
                transaction_count: u32::try_from(hashes.len()).unwrap_or(u32::MAX),
                state_root,
            },
            transactions: BoundedVec::try_new(transactions)
                .map_err(|_| BlockError::TooLarge(usize::MAX))?,
        };
        let executed = Executed {
            hash: block.hash(),
            block: Arc::new(block),
            changes: Arc::new(changes),
            outcome: Arc::new(outcome),
            speculative,
        };
        self.executed.insert(executed.hash, executed.clone());
        Ok((executed, skipped))
    }

    /// Checks and executes `block`, whose parent must be known. `now_ms` bounds how far in the
    /// future its timestamp may be (`None` for finalized blocks, already agreed on).
    pub async fn verify(
        &mut self,
        block: Arc<Block>,
        now_ms: Option<u64>,
    ) -> Result<Executed, BlockError> {
        let hash = block.hash();
        if let Some(executed) = self.executed.get(&hash) {
            return Ok(executed.clone());
        }
        let header = block.header;
        let parent_header = self
            .header_of(&header.parent)
            .ok_or(BlockError::UnknownParent(header.parent))?;
        if header.height != parent_header.height.saturating_add(1) {
            return Err(BlockError::BadHeight {
                got: header.height,
                parent: parent_header.height,
            });
        }
        let size = encode(&*block).len();
        if size > MAX_BLOCK_BYTES {
            return Err(BlockError::TooLarge(size));
        }
        if !block.transactions_match() {
            return Err(BlockError::TransactionsMismatch);
        }
        self.signatures
            .check_block(&block.transactions)
            .map_err(|e| BlockError::InvalidTransaction(e.to_string()))?;
        let (ancestry, base) = self.ancestry(&header.parent)?;
        let info = BlockInfo {
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            parent_hash: header.parent,
        };
        let (outcome, changes) = {
            let memory = self.store.memory();
            let memory = memory.read().unwrap_or_else(|p| p.into_inner());
            let parent_view = Layer::with_changes(&*memory, ancestry);
            let min = earliest_child_timestamp(&parent_header, block_time(&parent_view)?);
            let max = now_ms.map_or(u64::MAX, |now| now.saturating_add(MAX_CLOCK_DRIFT_MS));
            if header.timestamp_ms < min || header.timestamp_ms > max {
                return Err(BlockError::BadTimestamp {
                    got: header.timestamp_ms,
                    min,
                    max,
                });
            }
            let mut view = Layer::new(&parent_view);
            let outcome = self
                .runtime
                .execute_checked_block(
                    &mut view,
                    &info,
                    &block.transactions,
                    SignatureCheck::AlreadyVerified,
                )
                .map_err(|e| match e {
                    wetee_runtime::RuntimeError::InvalidTransaction { .. } => {
                        BlockError::InvalidTransaction(e.to_string())
                    }
                    other => BlockError::Runtime(other.to_string()),
                })?;
            (outcome, view.into_changes())
        };
        let (speculative, computed) = self
            .store
            .speculate(base.as_ref(), &changes, header.height, &header.parent)
            .await?;
        if computed != header.state_root {
            return Err(BlockError::StateRootMismatch {
                claimed: header.state_root,
                computed,
            });
        }
        let executed = Executed {
            block,
            hash,
            changes: Arc::new(changes),
            outcome: Arc::new(outcome),
            speculative,
        };
        self.executed.insert(hash, executed.clone());
        Ok(executed)
    }

    /// Commits the finalized `block` (a child of the head), executing it first if needed, and
    /// forgets every executed block that is not its descendant.
    pub async fn finalize(&mut self, block: Arc<Block>) -> Result<Executed, BlockError> {
        let executed = self.verify(block, None).await?;
        if executed.block.header.parent != self.head.hash() {
            return Err(BlockError::UnknownParent(executed.block.header.parent));
        }
        let header = executed.block.header;
        self.store
            .commit(
                executed.speculative.clone(),
                &executed.changes,
                header.height,
                &header.parent,
            )
            .await?;
        self.head = Arc::clone(&executed.block);
        self.executed.remove(&executed.hash);
        // Keep only descendants of the new head.
        let head = executed.hash;
        let mut keep: std::collections::BTreeSet<Hash> = [head].into();
        let mut by_height: Vec<(u64, Hash, Hash)> = self
            .executed
            .values()
            .map(|e| (e.block.header.height, e.hash, e.block.header.parent))
            .collect();
        by_height.sort();
        for (_, hash, parent) in by_height {
            if keep.contains(&parent) {
                keep.insert(hash);
            }
        }
        self.executed.retain(|hash, _| keep.contains(hash));
        Ok(executed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    use wetee_types::balance::UNIT;
    use wetee_types::transaction::{BalancesCall, Transaction};
    use wetee_types::{Balance, Call, ChainConfig, KeyScheme, Keypair, Params};

    const GENESIS_TIME: u64 = 1_000_000;

    fn alice() -> Keypair {
        Keypair::from_seed(KeyScheme::Sr25519, [1; 32])
    }

    fn bob() -> Keypair {
        Keypair::from_seed(KeyScheme::Ed25519, [2; 32])
    }

    fn genesis() -> Genesis {
        Genesis {
            chain: ChainConfig { epoch_length: 10 },
            params: Params::dev(),
            attestation: wetee_types::attestation::AttestationPolicy::dev(),
            root: alice().account_id(),
            treasury: Keypair::from_seed(KeyScheme::Sr25519, [3; 32]).account_id(),
            balances: vec![(alice().account_id(), Balance(1_000 * UNIT))],
        }
    }

    fn genesis_hash() -> Hash {
        Hash::of(b"executor test")
    }

    fn transfer(nonce: u64, amount: u128) -> SignedTransaction {
        Transaction {
            signer: alice().account_id(),
            nonce,
            fee: Balance(UNIT / 100),
            expires_at: 1_000,
            call: Call::Balances(BalancesCall::Transfer {
                to: bob().account_id(),
                amount: Balance(amount),
            }),
        }
        .sign(&alice(), &genesis_hash())
    }

    async fn open<E: commonware_storage::Context + Spawner>(
        context: E,
        prefix: &str,
    ) -> Executor<E> {
        Executor::open(
            context,
            prefix,
            &genesis(),
            genesis_hash(),
            GENESIS_TIME,
            [9; 32],
        )
        .await
        .unwrap()
    }

    fn balance<E: commonware_storage::Context + Spawner>(
        executor: &Executor<E>,
        who: &Keypair,
    ) -> Balance {
        let memory = executor.store().memory();
        let memory = memory.read().unwrap();
        wetee_runtime::query::account(&*memory, &who.account_id())
            .unwrap()
            .free
    }

    #[test]
    fn a_verifier_reaches_the_proposers_root_and_refuses_tampered_blocks() {
        deterministic::Runner::default().start(|ctx| async move {
            let mut proposer = open(ctx.child("p"), "p").await;
            let mut verifier = open(ctx.child("v"), "v").await;
            assert_eq!(proposer.genesis().hash(), verifier.genesis().hash());
            let genesis = proposer.genesis().hash();
            let time = proposer.earliest_child_timestamp(&genesis).unwrap();
            // The second transfer reuses nonce 0: the proposer leaves it out.
            let candidates = vec![
                transfer(0, 5 * UNIT),
                transfer(0, 6 * UNIT),
                transfer(1, 7 * UNIT),
            ];
            let (one, skipped) = proposer
                .propose(
                    &genesis,
                    ConsensusContext::default(),
                    time,
                    candidates.clone(),
                    100,
                    &|| false,
                )
                .await
                .unwrap();
            assert_eq!(one.block.transactions.len(), 2);
            assert_eq!(skipped, vec![candidates[1].hash()]);
            // An account that spends everything at nonce 0: nonce 1 cannot pay its fee and is
            // counted once; nonce 2 behind it is not tried, nor counted against it.
            let draining = vec![
                transfer(0, 1_000 * UNIT - UNIT / 100),
                transfer(1, UNIT),
                transfer(2, UNIT),
            ];
            let (drained, skipped) = proposer
                .propose(
                    &genesis,
                    ConsensusContext {
                        view: 9,
                        ..ConsensusContext::default()
                    },
                    time,
                    draining.clone(),
                    100,
                    &|| false,
                )
                .await
                .unwrap();
            assert_eq!(drained.block.transactions.len(), 1);
            assert_eq!(skipped, vec![draining[1].hash()]);
            let verified = verifier
                .verify(Arc::clone(&one.block), Some(time))
                .await
                .unwrap();
            assert_eq!(verified.changes, one.changes);

            let mut lying = (*one.block).clone();
            lying.header.state_root = Hash::of(b"lie");
            assert!(matches!(
                verifier.verify(Arc::new(lying), Some(time)).await,
                Err(BlockError::StateRootMismatch { .. })
            ));
            let mut replayed = (*one.block).clone();
            replayed.header.context.view = 7;
            let mut txs = replayed.transactions.iter().cloned().collect::<Vec<_>>();
            txs.push(transfer(0, 5 * UNIT));
            let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
            replayed.header.transactions_root = transactions_root(&hashes);
            replayed.header.transaction_count = 3;
            replayed.transactions = BoundedVec::try_new(txs).unwrap();
            assert!(matches!(
                verifier.verify(Arc::new(replayed), Some(time)).await,
                Err(BlockError::InvalidTransaction(_))
            ));
            let mut early = (*one.block).clone();
            early.header.timestamp_ms = GENESIS_TIME;
            assert!(matches!(
                verifier.verify(Arc::new(early), Some(time)).await,
                Err(BlockError::BadTimestamp { .. })
            ));
            let mut future = (*one.block).clone();
            future.header.timestamp_ms = time + 10_000;
            assert!(matches!(
                verifier.verify(Arc::new(future), Some(time)).await,
                Err(BlockError::BadTimestamp { .. })
            ));

            // Nothing is visible before finality; finalizing applies it.
            assert_eq!(balance(&verifier, &bob()), Balance::ZERO);
            verifier.finalize(Arc::clone(&one.block)).await.unwrap();
            proposer.finalize(Arc::clone(&one.block)).await.unwrap();
            assert_eq!(balance(&verifier, &bob()), Balance(12 * UNIT));
            assert_eq!(
                verifier.store().committed().unwrap().root,
                one.block.header.state_root
            );
        });
    }

    #[test]
    fn chains_of_unfinalized_blocks_and_forks() {
        deterministic::Runner::default().start(|ctx| async move {
            let mut node = open(ctx.child("n"), "n").await;
            let genesis = node.genesis().hash();
            let t1 = node.earliest_child_timestamp(&genesis).unwrap();
            let (one, _) = node
                .propose(
                    &genesis,
                    ConsensusContext::default(),
                    t1,
                    vec![transfer(0, UNIT)],
                    10,
                    &|| false,
                )
                .await
                .unwrap();
            let (fork, _) = node
                .propose(
                    &genesis,
                    ConsensusContext {
                        view: 2,
                        ..ConsensusContext::default()
                    },
                    t1,
                    vec![transfer(0, 2 * UNIT)],
                    10,
                    &|| false,
                )
                .await
                .unwrap();
            let t2 = node.earliest_child_timestamp(&one.hash).unwrap();
            // Block two sees block one's nonce: nonce 0 again is left out, nonce 1 goes in.
            let (two, _) = node
                .propose(
                    &one.hash,
                    ConsensusContext {
                        view: 3,
                        ..ConsensusContext::default()
                    },
                    t2,
                    vec![transfer(0, UNIT), transfer(1, UNIT)],
                    10,
                    &|| false,
                )
                .await
                .unwrap();
            assert_eq!(two.block.transactions.len(), 1);
            // A second node that missed everything catches up from the finalized blocks alone.
            let mut late = open(ctx.child("late"), "late").await;
            late.finalize(Arc::clone(&one.block)).await.unwrap();
            late.finalize(Arc::clone(&two.block)).await.unwrap();
            node.finalize(Arc::clone(&one.block)).await.unwrap();
            assert!(!node.knows(&fork.hash), "the losing fork is forgotten");
            assert!(node.knows(&two.hash));
            node.finalize(Arc::clone(&two.block)).await.unwrap();
            assert_eq!(balance(&node, &bob()), Balance(2 * UNIT));
            assert_eq!(node.store().committed(), late.store().committed());
            // A block whose parent is unknown is refused, not guessed at.
            let mut orphan = (*two.block).clone();
            orphan.header.parent = Hash::of(b"nowhere");
            assert!(matches!(
                node.verify(Arc::new(orphan), None).await,
                Err(BlockError::UnknownParent(_))
            ));
        });
    }

    #[test]
    fn a_restarted_node_rebuilds_the_same_genesis_and_keeps_its_state() {
        let (expected, checkpoint) =
            deterministic::Runner::default().start_and_recover(|ctx| async move {
                let mut node = open(ctx.child("n"), "n").await;
                let genesis = node.genesis().hash();
                let time = node.earliest_child_timestamp(&genesis).unwrap();
                let (one, _) = node
                    .propose(
                        &genesis,
                        ConsensusContext::default(),
                        time,
                        vec![transfer(0, UNIT)],
                        10,
                        &|| false,
                    )
                    .await
                    .unwrap();
                node.finalize(Arc::clone(&one.block)).await.unwrap();
                (genesis, one.block, node.store().committed().unwrap())
            });
        deterministic::Runner::from(checkpoint).start(|ctx| async move {
            let (genesis, one, committed) = expected;
            let mut node = open(ctx.child("n"), "n").await;
            assert_eq!(node.genesis().hash(), genesis);
            assert_eq!(node.committed_height(), 1);
            assert_eq!(node.store().committed(), Some(committed));
            node.restore_head(Arc::clone(&one));
            assert_eq!(balance(&node, &bob()), Balance(UNIT));
            let time = node.earliest_child_timestamp(&one.hash()).unwrap();
            let (two, _) = node
                .propose(
                    &one.hash(),
                    ConsensusContext::default(),
                    time,
                    vec![transfer(1, UNIT)],
                    10,
                    &|| false,
                )
                .await
                .unwrap();
            node.finalize(two.block).await.unwrap();
            assert_eq!(balance(&node, &bob()), Balance(2 * UNIT));
        });
    }

    #[test]
    fn state_of_another_chain_is_refused_rather_than_mixed_in() {
        let ((), checkpoint) =
            deterministic::Runner::default().start_and_recover(|ctx| async move {
                open(ctx.child("n"), "n").await;
            });
        deterministic::Runner::from(checkpoint).start(|ctx| async move {
            let other = Hash::of(b"another genesis");
            let opened = Executor::open(
                ctx.child("n"),
                "n",
                &genesis(),
                other,
                GENESIS_TIME,
                [9; 32],
            )
            .await;
            let Err(refused) = opened else {
                panic!("the stored state is another chain's")
            };
            assert!(refused.is_fatal());
            assert!(refused.to_string().contains("--fresh"), "{refused}");
        });
    }
}
