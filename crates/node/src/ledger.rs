//! The node's view of the chain, shared by consensus, the finalizer, transaction gossip and
//! the RPC: the executor, the finalized head, the mempool, and the subscribers to finalized
//! blocks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use commonware_runtime::Spawner;
use commonware_utils::channel::watch;
use futures::channel::mpsc;
use futures::lock::Mutex as AsyncMutex;
use wetee_runtime::{BlockInfo, BlockOutcome, MemoryState, Runtime, State};
use wetee_types::event::Outcome;
use wetee_types::rpc::{BlockId, BlockRef, FinalityProof, Hex, TransactionStatus};
use wetee_types::{Block, Hash, SignedTransaction};

use crate::executor::Executor;
use crate::finalizer::Marshal;
use crate::history::History;
use crate::mempool::{DropReason, Mempool, MempoolError, MempoolLimits};
use crate::outcomes::{OutcomeError, Outcomes};
use crate::signatures::Signatures;
use crate::store::{ProvenValue, StoreError};

/// How many recently finalized block hashes are remembered (to answer "is this block already
/// finalized?" when consensus asks late about one).
const RECENT_FINALIZED: usize = 1_024;

/// Queued notifications per subscriber before it is considered stuck and dropped.
pub const SUBSCRIBER_BUFFER: usize = 256;

/// Most transactions followed at once for `author_submitAndWatch`.
pub const MAX_WATCHED: usize = 65_536;

/// Notifications queued for one watcher: `ready`, the first [`MAX_INCLUDED_NOTICES`] blocks it
/// was included in, and its last word (finalized or dropped), which must never find the queue
/// full: a transaction re-proposed in view after view under load would otherwise crowd it out
/// and leave its sender waiting for ever.
const WATCHER_BUFFER: usize = 8;
const MAX_INCLUDED_NOTICES: u8 = 5;

/// Someone following one transaction.
#[derive(Debug)]
struct Watcher {
    sender: mpsc::Sender<TransactionStatus>,
    /// `included` notices sent so far.
    included: u8,
}

impl Watcher {
    /// A watcher, told its transaction is ready.
    fn new(hash: Hash) -> (Watcher, mpsc::Receiver<TransactionStatus>) {
        let (mut sender, receiver) = mpsc::channel(WATCHER_BUFFER);
        let _ = sender.try_send(TransactionStatus::Ready { hash });
        let watcher = Watcher {
            sender,
            included: 0,
        };
        (watcher, receiver)
    }

    /// Tells the watcher its transaction is in the block at `at`, the first few times only, so
    /// that its last word always has room; whether it is still listening.
    fn included(&mut self, at: BlockRef) -> bool {
        if self.included >= MAX_INCLUDED_NOTICES {
            return !self.sender.is_closed();
        }
        self.included = self.included.saturating_add(1);
        match self
            .sender
            .try_send(TransactionStatus::Included { block: at })
        {
            Ok(()) => true,
            Err(error) => !error.is_disconnected(),
        }
    }

    /// The watcher's last word: its transaction is final or gone.
    fn last_word(mut self, status: TransactionStatus) {
        let _ = self.sender.try_send(status);
    }
}

/// Blocks refused, by reason (what `verify` said no to).
#[derive(Debug, Default)]
pub struct Refusals {
    /// The header's state root differs from the one computed.
    pub state_root: std::sync::atomic::AtomicU64,
    /// A transaction could not be included (signature, nonce, fee, expiry).
    pub transaction: std::sync::atomic::AtomicU64,
    /// Anything else (height, timestamp, size, wrong chain).
    pub other: std::sync::atomic::AtomicU64,
}

/// A block that was finalized and committed, with what it did.
#[derive(Debug, Clone)]
pub struct FinalizedBlock {
    /// The block.
    pub block: Arc<Block>,
    /// Its hash.
    pub hash: Hash,
    /// Its receipts and events.
    pub outcome: Arc<BlockOutcome>,
}

/// Where the node stands.
#[derive(Debug, Clone)]
pub struct Status {
    /// The latest finalized block committed here.
    pub head: Arc<Block>,
    /// Its hash.
    pub head_hash: Hash,
    /// The latest finalized height announced by consensus (ahead of `head` while catching up).
    pub tip: u64,
}

impl Status {
    /// Blocks finalized by the network but not yet committed here.
    pub fn behind(&self) -> u64 {
        self.tip.saturating_sub(self.head.header.height)
    }
}

struct Head {
    status: Status,
    recent: VecDeque<Hash>,
    recent_set: BTreeSet<Hash>,
}

struct Inner<E: commonware_storage::Context + Spawner> {
    executor: AsyncMutex<Executor<E>>,
    runtime: Runtime,
    memory: Arc<RwLock<MemoryState>>,
    genesis: Arc<Block>,
    mempool: Mutex<Mempool>,
    signatures: Arc<Signatures>,
    head: Mutex<Head>,
    ready: watch::Sender<bool>,
    subscribers: Mutex<Vec<mpsc::Sender<FinalizedBlock>>>,
    gossip: Mutex<Option<mpsc::UnboundedSender<SignedTransaction>>>,
    watchers: Mutex<BTreeMap<Hash, Vec<Watcher>>>,
    refusals: Refusals,
    outcomes: Outcomes<E>,
    history: History,
    blocks: Mutex<Option<Marshal>>,
    max_block_transactions: usize,
}

/// Why state could not be proven.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The state moved past the height asked for.
    #[error("the state is at height {height} now; proofs exist only for the latest state")]
    Moved {
        /// The committed height.
        height: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// A cheap, cloneable handle on the node's chain.
pub struct Ledger<E: commonware_storage::Context + Spawner> {
    inner: Arc<Inner<E>>,
}

impl<E: commonware_storage::Context + Spawner> Clone for Ledger<E> {
    fn clone(&self) -> Self {
        Ledger {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Ledger<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status();
        f.debug_struct("Ledger")
            .field("head", &status.head.header.height)
            .field("tip", &status.tip)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, never a broken
    // invariant across two structures, so the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<E: commonware_storage::Context + Spawner> Ledger<E> {
    /// Wraps an opened executor. The ledger is not ready (consensus waits) until
    /// [`Ledger::restore`] sets the committed head.
    pub fn new(
        executor: Executor<E>,
        outcomes: Outcomes<E>,
        mempool: MempoolLimits,
        max_block_transactions: usize,
    ) -> Ledger<E> {
        let genesis = Arc::clone(executor.genesis());
        let memory = executor.store().memory();
        let signatures = Arc::clone(executor.signatures());
        let (ready, _) = watch::channel(false);
        Ledger {
            inner: Arc::new(Inner {
                executor: AsyncMutex::new(executor),
                runtime: Runtime::new(),
                memory,
                mempool: Mutex::new(Mempool::new(mempool)),
                signatures,
                head: Mutex::new(Head {
                    status: Status {
                        head_hash: genesis.hash(),
                        head: Arc::clone(&genesis),
                        tip: 0,
                    },
                    recent: VecDeque::new(),
                    recent_set: BTreeSet::new(),
                }),
                genesis,
                ready,
                subscribers: Mutex::new(Vec::new()),
                gossip: Mutex::new(None),
                watchers: Mutex::new(BTreeMap::new()),
                refusals: Refusals::default(),
                outcomes,
                history: History::default(),
                blocks: Mutex::new(None),
                max_block_transactions,
            }),
        }
    }

    /// The executor (consensus and the finalizer take turns on it).
    pub(crate) fn executor(&self) -> &AsyncMutex<Executor<E>> {
        &self.inner.executor
    }

    /// The genesis block.
    pub fn genesis(&self) -> &Arc<Block> {
        &self.inner.genesis
    }

    /// Most transactions a proposed block carries.
    pub fn max_block_transactions(&self) -> usize {
        self.inner.max_block_transactions
    }

    /// Where the node stands.
    pub fn status(&self) -> Status {
        lock(&self.inner.head).status.clone()
    }

    /// Reads the latest finalized state.
    pub fn read<R>(&self, f: impl FnOnce(&dyn State) -> R) -> R {
        let memory = self
            .inner
            .memory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&*memory)
    }

    /// Waits until the committed head is restored after start.
    pub async fn ready(&self) {
        let mut ready = self.inner.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Sets the committed head once at start and opens the ledger to consensus.
    pub(crate) async fn restore(&self, head: Arc<Block>) {
        self.inner
            .executor
            .lock()
            .await
            .restore_head(Arc::clone(&head));
        self.set_head(head);
        self.inner.ready.send_replace(true);
    }

    fn set_head(&self, head: Arc<Block>) {
        let mut guard = lock(&self.inner.head);
        let hash = head.hash();
        guard.status.tip = guard.status.tip.max(head.header.height);
        guard.status.head = head;
        guard.status.head_hash = hash;
        if guard.recent_set.insert(hash) {
            guard.recent.push_back(hash);
        }
        while guard.recent.len() > RECENT_FINALIZED {
            if let Some(old) = guard.recent.pop_front() {
                guard.recent_set.remove(&old);
            }
        }
    }

    /// Records the latest finalized height consensus knows of.
    pub(crate) fn set_tip(&self, tip: u64) {
        let mut guard = lock(&self.inner.head);
        guard.status.tip = guard.status.tip.max(tip);
    }

    /// Whether `hash` is one of the recently finalized blocks.
    pub fn recently_finalized(&self, hash: &Hash) -> bool {
        lock(&self.inner.head).recent_set.contains(hash)
    }

    /// The outcomes of finalized blocks.
    pub fn outcomes(&self) -> &Outcomes<E> {
        &self.inner.outcomes
    }

    /// Which recent blocks hold events about an account, app, worker or task.
    pub fn history(&self) -> &History {
        &self.inner.history
    }

    /// Fills the event history backwards from the committed head, as far as
    /// [`HISTORY_BLOCKS`](crate::history::HISTORY_BLOCKS) go or stored outcomes reach, while
    /// new blocks extend it forwards: after a restart, the node answers `events_history` for
    /// the same window again.
    pub async fn backfill_history(&self) {
        self.ready().await;
        // Live blocks may already have been indexed: go on below what they cover.
        let mut height = match self.inner.history.covered_from() {
            Some(from) => from.saturating_sub(1),
            None => self.status().head.header.height,
        };
        while height > 0 {
            let Ok(Some(outcome)) = self.inner.outcomes.at_height(height).await else {
                return;
            };
            if !self.inner.history.backfilled(height, &outcome) {
                return;
            }
            height -= 1;
        }
    }

    /// Where finalized blocks are looked up.
    pub(crate) fn set_blocks(&self, marshal: Marshal) {
        *lock(&self.inner.blocks) = Some(marshal);
    }

    /// A finalized block, if this node has it.
    pub async fn block(&self, id: BlockId) -> Option<Arc<Block>> {
        use commonware_consensus::marshal::Identifier;
        use commonware_consensus::types::Height;
        let genesis = self.genesis();
        let identifier = match id {
            BlockId::Height(0) => return Some(Arc::clone(genesis)),
            BlockId::Hash(hash) if hash == genesis.hash() => return Some(Arc::clone(genesis)),
            BlockId::Height(height) => Identifier::Height(Height::new(height)),
            BlockId::Hash(hash) => Identifier::Digest(crate::chain::digest(&hash)),
        };
        let marshal = lock(&self.inner.blocks).clone()?;
        let block = marshal.get_block(identifier).await?;
        let block = Arc::clone(block.inner().block());
        // Marshal also holds blocks that are not finalized (notarized, or on a losing fork):
        // only the committed block at its height is reported.
        if block.header.height > self.status().head.header.height {
            return None;
        }
        if let BlockId::Hash(hash) = id {
            let finalized = marshal
                .get_block(Identifier::Height(Height::new(block.header.height)))
                .await?;
            if finalized.inner().hash() != hash {
                return None;
            }
        }
        Some(block)
    }

    /// Each of `keys` with its value (or none) and proof, from the committed state, and the
    /// height that state belongs to. With `at`, refuses unless the committed height is `at`
    /// (proofs exist only for the latest state).
    pub async fn prove(
        &self,
        keys: &[Vec<u8>],
        at: Option<u64>,
    ) -> Result<(u64, Vec<ProvenValue>), ProveError> {
        // Held while proving: a commit in between would change the root under the proofs.
        let executor = self.inner.executor.lock().await;
        let height = executor.committed_height();
        if at.is_some_and(|at| at != height) {
            return Err(ProveError::Moved { height });
        }
        let proven = executor
            .store()
            .prove(keys)
            .await
            .map_err(ProveError::Store)?;
        Ok((height, proven))
    }

    /// Why the finalized block at `height` is final: its own finalization certificate, or the
    /// nearest later one with the headers linking back to it. `None` when this node holds no
    /// such block or no certificate within reach yet.
    pub async fn finality(&self, height: u64) -> Option<FinalityProof> {
        use commonware_codec::Encode as _;
        use commonware_consensus::marshal::Identifier;
        use commonware_consensus::types::Height;
        if height > self.status().head.header.height {
            return None;
        }
        let header = self.block(BlockId::Height(height)).await?.header;
        let marshal = lock(&self.inner.blocks).clone()?;
        let mut descendants = Vec::new();
        let mut at = height;
        loop {
            if let Some(finalization) = marshal.get_finalization(Height::new(at)).await {
                return Some(FinalityProof {
                    header,
                    descendants,
                    finalization: Hex(finalization.encode().to_vec()),
                });
            }
            if descendants.len() >= wetee_light::finality::MAX_LINKED_HEADERS {
                return None;
            }
            at = at.checked_add(1)?;
            // Marshal indexes blocks by height only once they are finalized.
            let next = marshal
                .get_block(Identifier::Height(Height::new(at)))
                .await?;
            descendants.push(next.inner().block().header);
        }
    }

    /// Counts of blocks this node refused to vote for, by reason.    /// Counts of blocks this node refused to vote for, by reason.
    pub fn refusals(&self) -> &Refusals {
        &self.inner.refusals
    }

    /// The outcome of a finalized block.
    pub async fn outcome(&self, block: &Block) -> Result<Option<BlockOutcome>, OutcomeError> {
        if block.header.height == 0 {
            return Ok(Some(BlockOutcome::default()));
        }
        self.inner.outcomes.at_height(block.header.height).await
    }

    /// Follows `hash` until it is finalized or dropped; `None` when too many transactions
    /// are followed already. Call [`Ledger::unwatch`] if the transaction is not admitted.
    pub fn watch(&self, hash: Hash) -> Option<mpsc::Receiver<TransactionStatus>> {
        let mut watchers = lock(&self.inner.watchers);
        if watchers.len() >= MAX_WATCHED {
            // Forget watchers whose subscribers left before giving up.
            watchers.retain(|_, senders| {
                senders.retain(|s| !s.sender.is_closed());
                !senders.is_empty()
            });
            if watchers.len() >= MAX_WATCHED {
                return None;
            }
        }
        let (watcher, receiver) = Watcher::new(hash);
        watchers.entry(hash).or_default().push(watcher);
        Some(receiver)
    }

    /// Stops following `hash` for watchers that have gone away.
    pub fn unwatch(&self, hash: &Hash) {
        let mut watchers = lock(&self.inner.watchers);
        if let Some(senders) = watchers.get_mut(hash) {
            senders.retain(|s| !s.sender.is_closed());
            if senders.is_empty() {
                watchers.remove(hash);
            }
        }
    }

    /// Tells watchers their transaction is in `block`, executed here but not final yet.
    pub(crate) fn included(&self, block: &Block) {
        let mut watchers = lock(&self.inner.watchers);
        if watchers.is_empty() {
            return;
        }
        let at = BlockRef {
            height: block.header.height,
            hash: block.hash(),
        };
        for tx in block.transactions.iter() {
            if let Some(senders) = watchers.get_mut(&tx.hash()) {
                senders.retain_mut(|watcher| watcher.included(at));
            }
        }
    }

    /// Records a block that was just committed: watchers of its transactions and every
    /// subscriber hear of it, and the mempool forgets what it made stale.
    pub(crate) fn finalized(&self, finalized: FinalizedBlock) {
        self.set_head(Arc::clone(&finalized.block));
        self.inner
            .history
            .finalized(finalized.block.header.height, &finalized.outcome);
        {
            let mut watchers = lock(&self.inner.watchers);
            if !watchers.is_empty() {
                let at = BlockRef {
                    height: finalized.block.header.height,
                    hash: finalized.hash,
                };
                for receipt in &finalized.outcome.receipts {
                    for watcher in watchers.remove(&receipt.tx_hash).unwrap_or_default() {
                        watcher.last_word(TransactionStatus::Finalized {
                            block: at,
                            receipt: receipt.clone(),
                            failure: match &receipt.outcome {
                                Outcome::Success => None,
                                Outcome::Failed { error } => Some(error.to_string()),
                            },
                        });
                    }
                }
            }
        }
        let next_height = finalized.block.header.height.saturating_add(1);
        let signers: BTreeSet<_> = finalized
            .block
            .transactions
            .iter()
            .map(|tx| tx.tx.signer)
            .collect();
        {
            let memory = self
                .inner
                .memory
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let dropped = lock(&self.inner.mempool).prune(
                signers,
                |account| {
                    wetee_runtime::query::account(&*memory, account)
                        .map(|a| (a.nonce, a.free))
                        .unwrap_or_default()
                },
                next_height,
            );
            self.dropped(dropped);
        }
        lock(&self.inner.subscribers).retain_mut(|subscriber| {
            // A subscriber that cannot keep up is dropped rather than letting it hold memory.
            subscriber.try_send(finalized.clone()).is_ok()
        });
    }

    /// Every block finalized from now on, in order. The stream ends if the subscriber falls
    /// [`SUBSCRIBER_BUFFER`] blocks behind.
    pub fn subscribe(&self) -> mpsc::Receiver<FinalizedBlock> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        lock(&self.inner.subscribers).push(sender);
        receiver
    }

    /// Where admitted transactions go to be gossiped to the other validators.
    pub(crate) fn set_gossip(&self, gossip: mpsc::UnboundedSender<SignedTransaction>) {
        *lock(&self.inner.gossip) = Some(gossip);
    }

    /// Tells the watchers of transactions that left the mempool why.
    fn dropped(&self, dropped: Vec<(Hash, DropReason)>) {
        if dropped.is_empty() {
            return;
        }
        let mut watchers = lock(&self.inner.watchers);
        for (hash, reason) in dropped {
            for watcher in watchers.remove(&hash).unwrap_or_default() {
                watcher.last_word(TransactionStatus::Dropped {
                    reason: reason.to_string(),
                });
            }
        }
    }

    /// Checks `tx` against the latest finalized state and admits it into the mempool; `gossip`
    /// forwards it to the other validators. The signature is verified last, after the checks
    /// that need none (the runtime's, size first), and outside every lock.
    pub fn submit(&self, tx: SignedTransaction, gossip: bool) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        if let Some(refusal) = lock(&self.inner.mempool).quick_refusal(&hash, &tx) {
            return Err(refusal);
        }
        self.dry_check(std::slice::from_ref(&tx))
            .pop()
            .unwrap_or(Ok(()))?;
        if !self.inner.signatures.check(&tx, hash) {
            return Err(MempoolError::Invalid(wetee_types::TxError::BadSignature));
        }
        self.admit_verified(tx, gossip)
    }

    /// The least fee `tx` needs in the next block, part by part (its signature is not
    /// checked: a wallet asks before signing for good).
    pub fn fee_quote(
        &self,
        tx: &SignedTransaction,
    ) -> Result<wetee_types::FeeQuote, wetee_types::TxError> {
        let next = self.next_block();
        self.read(|state| self.inner.runtime.fee_quote(state, &next, tx))
    }

    /// The chain's checks that need no signature (nonce, fee, balance, expiry), against the
    /// latest finalized state: a transaction they refuse costs no signature check.
    fn dry_check(&self, txs: &[SignedTransaction]) -> Vec<Result<(), MempoolError>> {
        let next = self.next_block();
        let memory = self
            .inner
            .memory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        txs.iter()
            .map(|tx| {
                self.inner
                    .runtime
                    .check_transaction(
                        &*memory,
                        &next,
                        tx,
                        true,
                        wetee_runtime::SignatureCheck::AlreadyVerified,
                    )
                    .map(|_| ())
                    .map_err(MempoolError::Invalid)
            })
            .collect()
    }

    /// The block a transaction admitted now would be checked for.
    fn next_block(&self) -> BlockInfo {
        let status = self.status();
        BlockInfo {
            height: status.head.header.height.saturating_add(1),
            timestamp_ms: status.head.header.timestamp_ms,
            parent_hash: status.head.header.hash(),
        }
    }

    /// [`Ledger::submit`] for many transactions (a gossip message): the signatures not known
    /// yet are verified in parallel. Returns each verdict, in order.
    pub fn submit_all(
        &self,
        txs: Vec<SignedTransaction>,
        gossip: bool,
    ) -> Vec<Result<Hash, MempoolError>> {
        let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        let mut verdicts: Vec<Option<Result<Hash, MempoolError>>> = {
            let mempool = lock(&self.inner.mempool);
            txs.iter()
                .zip(&hashes)
                .map(|(tx, hash)| mempool.quick_refusal(hash, tx).map(Err))
                .collect()
        };
        let unchecked: Vec<usize> = (0..txs.len()).filter(|&i| verdicts[i].is_none()).collect();
        let to_check: Vec<SignedTransaction> = unchecked.iter().map(|&i| txs[i].clone()).collect();
        // Only what passes the checks that need no signature is worth verifying.
        let dry = self.dry_check(&to_check);
        let (unchecked, to_check): (Vec<usize>, Vec<SignedTransaction>) = unchecked
            .into_iter()
            .zip(to_check)
            .zip(dry)
            .filter_map(|((index, tx), dry)| match dry {
                Ok(()) => Some((index, tx)),
                Err(refusal) => {
                    verdicts[index] = Some(Err(refusal));
                    None
                }
            })
            .unzip();
        let their_hashes: Vec<Hash> = unchecked.iter().map(|&i| hashes[i]).collect();
        let good = self
            .inner
            .signatures
            .check_all_unremembered(&to_check, &their_hashes);
        for ((index, tx), good) in unchecked.into_iter().zip(to_check).zip(good) {
            verdicts[index] = Some(if good {
                self.admit_verified(tx, gossip)
            } else {
                Err(MempoolError::Invalid(wetee_types::TxError::BadSignature))
            });
        }
        verdicts
            .into_iter()
            .zip(hashes)
            .map(|(verdict, hash)| verdict.unwrap_or(Err(MempoolError::AlreadyKnown(hash))))
            .collect()
    }

    /// Admits `tx`, whose signature was verified, and remembers that signature.
    fn admit_verified(&self, tx: SignedTransaction, gossip: bool) -> Result<Hash, MempoolError> {
        let next = self.next_block();
        let admitted = {
            let memory = self
                .inner
                .memory
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            lock(&self.inner.mempool).admit(
                &self.inner.runtime,
                &*memory,
                &next,
                tx.clone(),
                wetee_runtime::SignatureCheck::AlreadyVerified,
            )?
        };
        self.inner.signatures.remember(admitted.hash);
        self.dropped(admitted.dropped);
        if gossip && let Some(sender) = lock(&self.inner.gossip).as_ref() {
            let _ = sender.unbounded_send(tx);
        }
        Ok(admitted.hash)
    }

    /// Records that a proposer could not include the transactions `skipped`; those that
    /// failed too often leave the mempool.
    pub(crate) fn failed_inclusion(&self, skipped: &[Hash]) {
        if skipped.is_empty() {
            return;
        }
        let dropped = lock(&self.inner.mempool).failed_inclusion(skipped);
        self.dropped(dropped);
    }

    /// The nonce `account`'s next transaction should use: its nonce in the latest finalized
    /// state, past its pending transactions (`system_accountNextIndex`).
    pub fn next_nonce(
        &self,
        account: &wetee_types::AccountId,
    ) -> Result<u64, wetee_types::CallError> {
        let memory = self
            .inner
            .memory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state_nonce = wetee_runtime::query::account(&*memory, account)?.nonce;
        Ok(lock(&self.inner.mempool).next_nonce(account, state_nonce))
    }

    /// Whether `hash` waits in the mempool.
    pub fn pending(&self, hash: &Hash) -> bool {
        lock(&self.inner.mempool).contains(hash)
    }

    /// Transactions waiting in the mempool.
    pub fn pending_count(&self) -> usize {
        lock(&self.inner.mempool).len()
    }

    /// Picks the transactions for a child of a block, `next_nonce` reading that block's state.
    pub(crate) fn candidates(
        &self,
        max: usize,
        next_nonce: impl FnMut(&wetee_types::AccountId) -> u64,
    ) -> Vec<SignedTransaction> {
        lock(&self.inner.mempool).select(max, wetee_types::block::MAX_BLOCK_BYTES, next_nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    #[test]
    fn a_transaction_proposed_in_view_after_view_still_tells_its_watcher_it_is_final() {
        let hash = Hash::of(b"tx");
        let (mut watcher, mut statuses) = Watcher::new(hash);
        // Nobody reads meanwhile (a slow client, a loaded machine): the block holding the
        // transaction is proposed again and again before one is finalized.
        for height in 0..50 {
            let at = BlockRef {
                height,
                hash: Hash::of(&height.to_be_bytes()),
            };
            assert!(
                watcher.included(at),
                "the watcher was forgotten at {height}"
            );
        }
        watcher.last_word(TransactionStatus::Dropped {
            reason: "test".into(),
        });
        let heard: Vec<TransactionStatus> =
            futures::executor::block_on(async { statuses.by_ref().collect().await });
        assert_eq!(heard.first(), Some(&TransactionStatus::Ready { hash }));
        assert!(
            matches!(heard.last(), Some(TransactionStatus::Dropped { .. })),
            "{heard:?}"
        );
        assert_eq!(heard.len(), 2 + usize::from(MAX_INCLUDED_NOTICES));
    }

    #[test]
    fn a_watcher_that_left_is_forgotten() {
        let (mut watcher, statuses) = Watcher::new(Hash::of(b"tx"));
        drop(statuses);
        assert!(!watcher.included(BlockRef {
            height: 1,
            hash: Hash::of(b"block"),
        }));
    }
}
