//! Commits finalized blocks in order, then acknowledges them to marshal.
//!
//! Marshal delivers every finalized block exactly in height order, after archiving it, and
//! delivers again from the last acknowledged height after a restart. A block is acknowledged
//! only once its state is committed, so the store is never behind what marshal believes was
//! processed, and a block delivered again after a crash is recognised by its height and skipped.

use std::sync::Arc;

use commonware_actor::Feedback;
use commonware_consensus::Reporter;
use commonware_consensus::marshal::Update;
use commonware_consensus::marshal::core::Mailbox;
use commonware_consensus::marshal::standard::Standard;
use commonware_consensus::types::Height;
use commonware_runtime::{Handle, Spawner};
use commonware_utils::Acknowledgement as _;
use commonware_utils::channel::mpsc;
use tracing::{debug, error, info};

use crate::chain::{ChainBlock, Scheme};
use crate::ledger::{FinalizedBlock, Ledger};

/// Marshal's mailbox for our blocks.
pub type Marshal = Mailbox<Scheme, Standard<ChainBlock>>;

/// Hands marshal's updates to the finalizer without blocking marshal.
#[derive(Clone, Debug)]
pub struct Updates {
    sender: mpsc::UnboundedSender<Update<ChainBlock>>,
}

impl Reporter for Updates {
    type Activity = Update<ChainBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match self.sender.send(activity) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

/// The finalizer task.
pub struct Finalizer<E: commonware_storage::Context + Spawner> {
    ledger: Ledger<E>,
    marshal: Marshal,
    receiver: mpsc::UnboundedReceiver<Update<ChainBlock>>,
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Finalizer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finalizer")
            .field("ledger", &self.ledger)
            .finish()
    }
}

impl<E: commonware_storage::Context + Spawner> Finalizer<E> {
    /// The finalizer and the reporter to give marshal.
    pub fn new(ledger: Ledger<E>, marshal: Marshal) -> (Finalizer<E>, Updates) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Finalizer {
                ledger,
                marshal,
                receiver,
            },
            Updates { sender },
        )
    }

    /// Runs until marshal stops or the state can no longer be trusted.
    pub fn start(self, context: impl Spawner) -> Handle<()> {
        context.spawn(move |_| async move {
            if let Err(e) = self.run().await {
                error!(error = %e, "the finalizer stopped");
            }
        })
    }

    async fn run(mut self) -> Result<(), String> {
        let committed_state = self.ledger.executor().lock().await.store().committed();
        let committed = committed_state.map(|c| c.height).unwrap_or_default();
        let head = if committed == 0 {
            Arc::clone(self.ledger.genesis())
        } else {
            let block = self
                .marshal
                .get_block(Height::new(committed))
                .await
                .ok_or_else(|| {
                    format!(
                        "the state is at height {committed} but the block store does not hold \
                         that block: the data directory is damaged"
                    )
                })?;
            let block = Arc::clone(block.inner().block());
            if let Some(state) = committed_state
                && (state.root != block.header.state_root || state.parent != block.header.parent)
            {
                return Err(format!(
                    "the state at height {committed} (root {}) does not belong to the finalized                      block there (root {}): the data directory is damaged",
                    state.root, block.header.state_root
                ));
            }
            block
        };
        info!(height = committed, hash = %head.hash(), "resuming from the committed state");
        self.ledger.restore(head).await;
        while let Some(update) = self.receiver.recv().await {
            match update {
                Update::Tip(_, height, _) => self.ledger.set_tip(height.get()),
                Update::Block(block, ack) => {
                    let block = Arc::clone(block.inner().block());
                    let height = block.header.height;
                    if height > self.ledger.status().head.header.height {
                        let failed = |e: &dyn std::fmt::Display| {
                            format!(
                                "finalized block {height} ({}) cannot be applied: {e}",
                                block.hash()
                            )
                        };
                        let executed = self
                            .ledger
                            .executor()
                            .lock()
                            .await
                            .verify(Arc::clone(&block), None)
                            .await
                            .map_err(|e| failed(&e))?;
                        // The outcome is stored before the state moves on, so a crash between
                        // the two leaves the block to be delivered and stored again. Consensus
                        // keeps the executor meanwhile.
                        self.ledger
                            .outcomes()
                            .put(height, &executed.hash, &executed.outcome)
                            .await
                            .map_err(|e| failed(&e))?;
                        // The head moves while the executor is still held: a state proof
                        // (which holds it too) must never be of a state whose block the ledger
                        // does not yet report as final.
                        let mut executor = self.ledger.executor().lock().await;
                        let executed = executor
                            .finalize(Arc::clone(&block))
                            .await
                            .map_err(|e| failed(&e))?;
                        debug!(
                            height,
                            transactions = block.transactions.len(),
                            hash = %executed.hash,
                            "finalized"
                        );
                        self.ledger.finalized(FinalizedBlock {
                            hash: executed.hash,
                            block,
                            outcome: executed.outcome,
                        });
                        drop(executor);
                    }
                    ack.acknowledge();
                }
            }
        }
        Ok(())
    }
}
