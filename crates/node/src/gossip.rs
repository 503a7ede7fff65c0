//! Transaction gossip: what one validator admits, every validator learns of, so whoever leads
//! next can include it.
//!
//! Transactions admitted locally are batched (everything queued since the last send goes in one
//! message) so a burst costs a few messages, not one per transaction. Received transactions go
//! through the same admission checks as local ones and are not forwarded again: every
//! validator is connected to every other.

use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Handle, Spawner};
use futures::StreamExt as _;
use futures::channel::mpsc;
use tracing::debug;
use wetee_types::SignedTransaction;
use wetee_types::codec::{BoundedVec, decode, encode};

use crate::chain::PublicKey;
use crate::ledger::Ledger;

/// Most transactions in one gossip message.
pub const MAX_BATCH: usize = 1_024;
/// Most encoded bytes in one gossip message (well under the network's message limit).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// One gossip message.
pub type Batch = BoundedVec<SignedTransaction, MAX_BATCH>;

/// Starts gossiping the ledger's admitted transactions over `channel`.
pub fn start<E, S, R>(context: E, ledger: Ledger<E>, channel: (S, R)) -> Handle<()>
where
    E: commonware_storage::Context + Spawner,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let (mut sender, mut receiver) = channel;
    let (local, mut outgoing) = mpsc::unbounded();
    ledger.set_gossip(local);
    let incoming = ledger.clone();
    context.spawn(move |context| async move {
        let _receiving = context.spawn(move |_| async move {
            while let Ok((peer, message)) = receiver.recv().await {
                let Ok(batch) = decode::<Batch>(message.as_ref()) else {
                    debug!(?peer, "undecodable transaction gossip");
                    continue;
                };
                for tx in batch.iter() {
                    // Most are already known (sent to several validators); the rest were checked
                    // against our own state, as any submission is.
                    let _ = incoming.submit(tx.clone(), false);
                }
            }
        });
        let mut next = None;
        loop {
            let first = match next.take() {
                Some(tx) => tx,
                None => match outgoing.next().await {
                    Some(tx) => tx,
                    None => break,
                },
            };
            let mut bytes = encode(&first).len();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                let Ok(tx) = outgoing.try_recv() else { break };
                let size = encode(&tx).len();
                if bytes.saturating_add(size) > MAX_BATCH_BYTES {
                    next = Some(tx);
                    break;
                }
                bytes = bytes.saturating_add(size);
                batch.push(tx);
            }
            let batch = Batch::try_new(batch).expect("at most MAX_BATCH transactions");
            sender.send(Recipients::All, encode(&batch), false);
        }
    })
}
