//! What consensus asks of the chain: build a block on a parent, and judge a peer's block.
//!
//! Both start from the parent's state. After a restart, or when a block arrives on a fork this
//! node never saw, that state is unknown: the ancestry is walked back to the newest block whose
//! state is known (the finalized head at the latest) and the blocks in between are executed
//! first. A block is refused only when it is wrong forever (bad root, bad transaction, wrong
//! chain); when this node merely cannot tell yet, it stays silent.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_cryptography::{Digested, Digestible as _};
use commonware_runtime::{Clock, Spawner};
use commonware_utils::SystemTimeExt as _;
use futures::StreamExt as _;
use tracing::{debug, error, warn};

use wetee_types::block::BUILD_BUDGET_MS;

use crate::chain::{ChainBlock, Context, Scheme, recorded_context};
use crate::executor::BlockError;
use crate::ledger::Ledger;

/// The most unknown ancestors one walk executes before giving up for now (the finalizer
/// catches up through marshal's ordered delivery instead).
const MAX_ANCESTRY_WALK: usize = 4_096;

/// A node further than this behind the network's finalized tip does not propose: its block
/// would be built on stale state and it is better to let the view pass quickly.
pub const MAX_PROPOSE_LAG: u64 = 16;

/// How the walk to a known state ended.
enum CatchUp {
    /// The parent's state is now known.
    Known,
    /// The chain does not extend our finalized block, or an ancestor is invalid.
    Invalid(String),
    /// Cannot tell yet.
    Unknown,
}

/// Deliberate misbehaviour, for the tests that check honest validators refuse it.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Proposes blocks whose header claims another state root.
    WrongStateRoot,
    /// Proposes blocks that replay their first transaction.
    ReplayedTransaction,
    /// Stamps its blocks as far ahead of its clock as verifiers tolerate.
    StampAhead,
    /// Gossips invalid and nonce-gapped transactions instead of its pool (the simulation sends
    /// them), and stamps its blocks ahead as [`Fault::StampAhead`] does.
    FloodGossip,
}

/// The chain as Commonware's marshal sees it.
pub struct Application<E: commonware_storage::Context + Spawner> {
    ledger: Ledger<E>,
    #[cfg(test)]
    pub(crate) fault: Option<Fault>,
}

impl<E: commonware_storage::Context + Spawner> Clone for Application<E> {
    fn clone(&self) -> Self {
        Application {
            ledger: self.ledger.clone(),
            #[cfg(test)]
            fault: self.fault,
        }
    }
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Application<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("ledger", &self.ledger)
            .finish()
    }
}

impl<E: commonware_storage::Context + Spawner> Application<E> {
    /// The application over `ledger`.
    pub fn new(ledger: Ledger<E>) -> Application<E> {
        Application {
            ledger,
            #[cfg(test)]
            fault: None,
        }
    }

    /// Makes the state after the first block of `ancestry` known, executing its unknown
    /// ancestors oldest first.
    async fn catch_up(&self, ancestry: impl Ancestry<ChainBlock>) -> CatchUp {
        // The finalizer may commit (and forget forks) while we walk: retry a few times.
        for _ in 0..3 {
            let mut unknown: Vec<Arc<wetee_types::Block>> = Vec::new();
            let mut walk = ancestry.clone();
            let mut retry = false;
            loop {
                let Some(block) = walk.next().await else {
                    return CatchUp::Unknown;
                };
                let block = Arc::clone(block.inner().block());
                let hash = block.hash();
                let executor = self.ledger.executor().lock().await;
                if executor.knows(&hash) {
                    break;
                }
                if block.header.height <= executor.head().header.height {
                    // At or below the finalized head: the head moved while we walked and one of
                    // the blocks we passed is now known, or the chain forks below the head.
                    if let Some(position) = unknown
                        .iter()
                        .position(|passed| executor.knows(&passed.hash()))
                    {
                        unknown.truncate(position);
                        break;
                    }
                    let height = block.header.height;
                    drop(executor);
                    let finalized = self
                        .ledger
                        .block(wetee_types::rpc::BlockId::Height(height))
                        .await;
                    match finalized {
                        Some(finalized) if finalized.hash() == hash => {
                            // On the finalized chain, behind the head: a finalized block above
                            // it was passed but is not the head yet; walk again.
                            retry = true;
                            break;
                        }
                        Some(_) => {
                            return CatchUp::Invalid(format!(
                                "forks from the finalized chain at height {height}"
                            ));
                        }
                        None => return CatchUp::Unknown,
                    }
                }
                drop(executor);
                unknown.push(block);
                if unknown.len() > MAX_ANCESTRY_WALK {
                    return CatchUp::Unknown;
                }
            }
            if retry {
                continue;
            }
            let mut executor = self.ledger.executor().lock().await;
            for block in unknown.into_iter().rev() {
                match executor.verify(block, None).await {
                    Ok(_) => {}
                    Err(BlockError::UnknownParent(_)) => {
                        retry = true;
                        break;
                    }
                    Err(e) if e.is_fatal() => {
                        error!(error = %e, "cannot execute an ancestor");
                        return CatchUp::Unknown;
                    }
                    Err(e) => return CatchUp::Invalid(format!("invalid ancestor: {e}")),
                }
            }
            if !retry {
                return CatchUp::Known;
            }
        }
        // Lost the race with the finalizer every time: cannot tell yet.
        CatchUp::Unknown
    }

    async fn build(
        &self,
        runtime: &E,
        context: &Context,
        ancestry: impl Ancestry<ChainBlock>,
    ) -> Option<Digested<ChainBlock>> {
        let parent = ancestry.clone().next().await?;
        let parent_hash = parent.inner().hash();
        if !matches!(self.catch_up(ancestry).await, CatchUp::Known) {
            return None;
        }
        let (earliest, (target, block_time)) = {
            let executor = self.ledger.executor().lock().await;
            (
                executor.earliest_child_timestamp(&parent_hash).ok()?,
                executor.target_child_timestamp(&parent_hash).ok()?,
            )
        };
        // Blocks follow each other at the target block time, but a leader never waits more than
        // one block time: a parent stamped ahead of our clock must not eat this view.
        let now = runtime.current().epoch_millis();
        let start_at = target.min(now.saturating_add(block_time));
        if now < start_at {
            runtime
                .sleep_until(UNIX_EPOCH + Duration::from_millis(start_at))
                .await;
        }
        #[allow(unused_mut)]
        let mut timestamp = runtime.current().epoch_millis().max(earliest);
        #[cfg(test)]
        if matches!(self.fault, Some(Fault::StampAhead | Fault::FloodGossip)) {
            timestamp = timestamp.saturating_add(crate::executor::MAX_CLOCK_DRIFT_MS - 1);
        }
        let mut executor = self.ledger.executor().lock().await;
        let max = self.ledger.max_block_transactions();
        let candidates = executor
            .read_at(&parent_hash, |state| {
                self.ledger.candidates(max, |account| {
                    wetee_runtime::query::account(state, account)
                        .map(|a| a.nonce)
                        .unwrap_or_default()
                })
            })
            .ok()?;
        // What does not fit in the build budget waits for the next block.
        let budget_end = runtime.current() + Duration::from_millis(BUILD_BUDGET_MS);
        let out_of_time = || runtime.current() >= budget_end;
        let (executed, skipped) = match executor
            .propose(
                &parent_hash,
                recorded_context(context),
                timestamp,
                candidates,
                max,
                &out_of_time,
            )
            .await
        {
            Ok(executed) => executed,
            Err(e) => {
                warn!(error = %e, "cannot build a block");
                return None;
            }
        };
        drop(executor);
        self.ledger.failed_inclusion(&skipped);
        self.ledger.included(&executed.block);
        #[allow(unused_mut)]
        let mut block = executed.block;
        #[cfg(test)]
        if let Some(fault) = self.fault {
            block = Arc::new(faulty(&block, fault));
        }
        debug!(
            height = block.header.height,
            transactions = block.transactions.len(),
            "proposed"
        );
        let block = ChainBlock::new(block).ok()?;
        let digest = block.digest();
        Some(Digested::precomputed(block, digest))
    }

    async fn judge(&self, runtime: &E, mut ancestry: impl Ancestry<ChainBlock>) -> Option<bool> {
        let block = ancestry.next().await?;
        let block = Arc::clone(block.inner().block());
        let hash = block.hash();
        if self.ledger.recently_finalized(&hash) || self.ledger.executor().lock().await.knows(&hash)
        {
            return Some(true);
        }
        if block.header.height <= self.ledger.status().head.header.height {
            // Consensus asks late about a block at a finalized height: it is valid exactly if it
            // is the finalized one.
            let finalized = self
                .ledger
                .block(wetee_types::rpc::BlockId::Height(block.header.height))
                .await?;
            return Some(finalized.hash() == hash);
        }
        match self.catch_up(ancestry).await {
            CatchUp::Known => {}
            CatchUp::Invalid(reason) => {
                warn!(height = block.header.height, %hash, reason, "refused a block");
                self.ledger
                    .refusals()
                    .other
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Some(false);
            }
            CatchUp::Unknown => return None,
        }
        // A block from a proposer whose clock runs ahead is judged once ours catches up,
        // rather than refused: its timestamp will become acceptable.
        let earliest_judgement = block
            .header
            .timestamp_ms
            .saturating_sub(crate::executor::MAX_CLOCK_DRIFT_MS);
        if runtime.current().epoch_millis() < earliest_judgement {
            runtime
                .sleep_until(UNIX_EPOCH + Duration::from_millis(earliest_judgement))
                .await;
        }
        let now = runtime.current().epoch_millis();
        let verdict = self
            .ledger
            .executor()
            .lock()
            .await
            .verify(Arc::clone(&block), Some(now))
            .await;
        match verdict {
            Ok(executed) => {
                self.ledger.included(&executed.block);
                Some(true)
            }
            Err(e) if e.is_fatal() => {
                error!(error = %e, "cannot verify a block");
                None
            }
            // Its parent was on a fork that lost: it can never be finalized, and waiting
            // costs nothing.
            Err(BlockError::UnknownParent(_)) => None,
            Err(e) => {
                warn!(height = block.header.height, %hash, reason = %e, "refused a block");
                let refusals = self.ledger.refusals();
                let counter = match e {
                    BlockError::StateRootMismatch { .. } => &refusals.state_root,
                    BlockError::InvalidTransaction(_) => &refusals.transaction,
                    _ => &refusals.other,
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(false)
            }
        }
    }
}

/// `block` broken in the way `fault` says, with its hash still consistent.
#[cfg(test)]
fn faulty(block: &wetee_types::Block, fault: Fault) -> wetee_types::Block {
    let mut block = block.clone();
    match fault {
        Fault::WrongStateRoot => block.header.state_root = wetee_types::Hash::of(b"a lie"),
        Fault::StampAhead | Fault::FloodGossip => {}
        Fault::ReplayedTransaction => {
            let mut transactions: Vec<_> = block.transactions.iter().cloned().collect();
            if let Some(first) = transactions.first().cloned() {
                transactions.push(first);
            }
            let hashes: Vec<_> = transactions.iter().map(|tx| tx.hash()).collect();
            block.header.transactions_root = wetee_types::block::transactions_root(&hashes);
            block.header.transaction_count = hashes.len() as u32;
            block.transactions =
                wetee_types::codec::BoundedVec::try_new(transactions).expect("within bounds");
        }
    }
    block
}

impl<E: commonware_storage::Context + Spawner + Clock> commonware_consensus::Application<E>
    for Application<E>
{
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = ChainBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Context),
        ancestry: impl Ancestry<ChainBlock>,
        _input: (),
    ) -> Option<Digested<ChainBlock>> {
        self.ledger.ready().await;
        let behind = self.ledger.status().behind();
        if behind > MAX_PROPOSE_LAG {
            debug!(behind, "catching up: not proposing");
            return None;
        }
        self.build(&runtime, &context, ancestry).await
    }

    async fn verify(
        &mut self,
        (runtime, _context): (E, Context),
        ancestry: impl Ancestry<ChainBlock>,
    ) -> bool {
        self.ledger.ready().await;
        match self.judge(&runtime, ancestry).await {
            Some(verdict) => verdict,
            // Never vote against a block we cannot judge: it may well be valid.
            None => futures::future::pending().await,
        }
    }
}
