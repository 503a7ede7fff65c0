//! Transaction gossip: what one validator admits, every validator learns of, so whoever leads
//! next can include it.
//!
//! Transactions admitted locally are batched (everything queued since the last send goes in one
//! message) so a burst costs a few messages, not one per transaction. Received transactions go
//! through the same admission checks as local ones, their signatures verified in parallel, and
//! are not forwarded again: every validator is connected to every other.
//!
//! An honest peer forwards only what it admitted, so it never sends an undecodable message or
//! a transaction with a bad signature. Each peer may send [`INVALID_PER_WINDOW`] such
//! transactions per [`WINDOW`]; past that, its messages are dropped unread for the rest of the
//! window (a strike), and after [`STRIKES_TO_BLOCK`] strikes it is blocked at the network
//! layer. Verifying a message stops as soon as its sender runs out of budget, so a flood costs
//! this node a bounded number of signature checks per peer and window.
//!
//! Validly signed transactions this pool refuses (a nonce gap too wide, a full pool) are what
//! an honest peer sends too when pools differ, so they earn no strike; but past
//! [`REFUSED_PER_WINDOW`] of them a peer's messages are dropped unread for the rest of the
//! window as well, which bounds the signatures a peer can make us check for nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner};
use commonware_utils::SystemTimeExt as _;
use futures::StreamExt as _;
use futures::channel::mpsc;
use tracing::{debug, warn};
use wetee_types::codec::{BoundedVec, decode, encode};
use wetee_types::{SignedTransaction, TxError};

use crate::chain::PublicKey;
use crate::ledger::Ledger;
use crate::mempool::MempoolError;

/// Most transactions in one gossip message.
pub const MAX_BATCH: usize = 1_024;
/// Most encoded bytes in one gossip message (well under the network's message limit).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Invalid transactions a peer may send per [`WINDOW`].
pub const INVALID_PER_WINDOW: u32 = 64;
/// How long a peer's invalid-transaction budget lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Validly signed but refused transactions a peer may send per [`WINDOW`].
pub const REFUSED_PER_WINDOW: u32 = 20_000;
/// Windows in which a peer overspent its budget before it is blocked.
pub const STRIKES_TO_BLOCK: u32 = 3;
/// How long a strike counts: a peer that misbehaved once in a while (a version skew during an
/// upgrade) is not blocked for it forever.
pub const STRIKE_MEMORY: Duration = Duration::from_secs(3_600);
/// Received transactions verified at a time (and the most verified past a peer's budget).
const CHUNK: usize = 128;

/// One gossip message.
pub type Batch = BoundedVec<SignedTransaction, MAX_BATCH>;

/// What to do with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Read its messages.
    Listen,
    /// Drop its messages unread for the rest of the window.
    Ignore,
    /// Block it.
    Block,
}

#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    window_start_ms: u64,
    invalid: u32,
    refused: u32,
    strikes: u32,
    last_strike_ms: u64,
    muted: bool,
}

/// What a peer's message cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// Transactions an honest peer never sends.
    pub invalid: u32,
    /// Validly signed transactions refused here.
    pub refused: u32,
}

/// Each peer's budget of invalid transactions.
#[derive(Debug, Default)]
pub struct Budgets {
    peers: BTreeMap<PublicKey, Budget>,
}

impl Budgets {
    fn budget(&mut self, peer: &PublicKey, now_ms: u64) -> &mut Budget {
        let budget = self.peers.entry(peer.clone()).or_insert(Budget {
            window_start_ms: now_ms,
            ..Budget::default()
        });
        let window = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        if now_ms >= budget.window_start_ms.saturating_add(window) {
            budget.window_start_ms = now_ms;
            budget.invalid = 0;
            budget.refused = 0;
            budget.muted = false;
        }
        let memory = u64::try_from(STRIKE_MEMORY.as_millis()).unwrap_or(u64::MAX);
        if budget.strikes < STRIKES_TO_BLOCK
            && now_ms >= budget.last_strike_ms.saturating_add(memory)
        {
            budget.strikes = 0;
        }
        budget
    }

    /// Whether to read `peer`'s next message, at `now_ms`.
    pub fn verdict(&mut self, peer: &PublicKey, now_ms: u64) -> Verdict {
        let budget = self.budget(peer, now_ms);
        if budget.strikes >= STRIKES_TO_BLOCK {
            Verdict::Block
        } else if budget.muted {
            Verdict::Ignore
        } else {
            Verdict::Listen
        }
    }

    /// Charges `peer` for what it sent; says what to do with it from now on.
    pub fn charge(&mut self, peer: &PublicKey, now_ms: u64, sent: Charge) -> Verdict {
        let budget = self.budget(peer, now_ms);
        budget.invalid = budget.invalid.saturating_add(sent.invalid);
        budget.refused = budget.refused.saturating_add(sent.refused);
        if budget.invalid > INVALID_PER_WINDOW && !budget.muted {
            budget.muted = true;
            budget.strikes = budget.strikes.saturating_add(1);
            budget.last_strike_ms = now_ms;
        }
        if budget.refused > REFUSED_PER_WINDOW {
            budget.muted = true;
        }
        self.verdict(peer, now_ms)
    }

    /// Invalid transactions `peer` may still send in this window.
    pub fn remaining(&mut self, peer: &PublicKey, now_ms: u64) -> u32 {
        INVALID_PER_WINDOW.saturating_sub(self.budget(peer, now_ms).invalid)
    }
}

/// Whether an honest peer could have sent a transaction refused with `error`: one it
/// admitted may be refused here for reasons of timing (our head differs, the pool is full),
/// never for its signature or its size.
fn peer_at_fault(error: &MempoolError) -> bool {
    matches!(
        error,
        MempoolError::Invalid(
            TxError::BadSignature | TxError::TooLarge { .. } | TxError::Undecodable { .. }
        )
    )
}

/// Starts gossiping the ledger's admitted transactions over `channel`; `blocker` blocks peers
/// that keep sending invalid ones.
pub fn start<E, S, R, B>(
    context: E,
    ledger: Ledger<E>,
    channel: (S, R),
    mut blocker: B,
) -> Handle<()>
where
    E: commonware_storage::Context + Spawner + Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let (mut sender, mut receiver) = channel;
    let (local, mut outgoing) = mpsc::unbounded();
    ledger.set_gossip(local);
    let incoming = ledger.clone();
    context.spawn(move |context| async move {
        let _receiving = context.spawn(move |clock| async move {
            let mut budgets = Budgets::default();
            while let Ok((peer, message)) = receiver.recv().await {
                let now = clock.current().epoch_millis();
                match budgets.verdict(&peer, now) {
                    Verdict::Listen => {}
                    Verdict::Ignore => continue,
                    Verdict::Block => {
                        let _ = blocker.block(peer);
                        continue;
                    }
                }
                let charge = match decode::<Batch>(message.as_ref()) {
                    Ok(batch) => receive(&incoming, batch, budgets.remaining(&peer, now)),
                    Err(_) => {
                        debug!(?peer, "undecodable transaction gossip");
                        Charge {
                            invalid: INVALID_PER_WINDOW.saturating_add(1),
                            refused: 0,
                        }
                    }
                };
                if charge != Charge::default() {
                    let verdict = budgets.charge(&peer, now, charge);
                    if verdict != Verdict::Listen {
                        warn!(
                            ?peer,
                            invalid = charge.invalid,
                            refused = charge.refused,
                            ?verdict,
                            "a peer gossips transactions we cannot use"
                        );
                    }
                    if verdict == Verdict::Block {
                        let _ = blocker.block(peer);
                    }
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

/// Submits a received batch a chunk at a time, stopping once the sender has sent more invalid
/// transactions than `allowance`. Returns what the batch cost.
fn receive<E: commonware_storage::Context + Spawner>(
    ledger: &Ledger<E>,
    batch: Batch,
    allowance: u32,
) -> Charge {
    let mut charge = Charge::default();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    for chunk in batch.chunks(CHUNK) {
        // Most are already known (sent to several validators); the rest are checked against
        // our own state, as any submission is.
        let verdicts = ledger.submit_all(chunk.to_vec(), false);
        let errors = || verdicts.iter().filter_map(|verdict| verdict.as_ref().err());
        let invalid = errors().filter(|e| peer_at_fault(e)).count();
        let refused = errors()
            .filter(|e| !peer_at_fault(e) && !matches!(e, MempoolError::AlreadyKnown(_)))
            .count();
        charge.invalid = charge.invalid.saturating_add(count(invalid));
        charge.refused = charge.refused.saturating_add(count(refused));
        if charge.invalid > allowance {
            break;
        }
    }
    charge
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer as _, ed25519};

    fn invalid(invalid: u32) -> Charge {
        Charge {
            invalid,
            refused: 0,
        }
    }

    fn peer(seed: u64) -> PublicKey {
        ed25519::PrivateKey::from_seed(seed).public_key()
    }

    #[test]
    fn a_peer_sending_invalid_transactions_is_muted_then_blocked() {
        let mut budgets = Budgets::default();
        let (bad, good) = (peer(1), peer(2));
        let window = WINDOW.as_millis() as u64;
        let mut now = 1_000;
        assert_eq!(
            budgets.charge(&bad, now, invalid(INVALID_PER_WINDOW)),
            Verdict::Listen
        );
        assert_eq!(budgets.remaining(&bad, now), 0);
        for strike in 1..=STRIKES_TO_BLOCK {
            assert_eq!(
                budgets.charge(&bad, now, invalid(INVALID_PER_WINDOW + 1)),
                if strike < STRIKES_TO_BLOCK {
                    Verdict::Ignore
                } else {
                    Verdict::Block
                }
            );
            // Muted for the rest of the window, whatever it sends.
            if strike < STRIKES_TO_BLOCK {
                assert_eq!(budgets.verdict(&bad, now + window - 1), Verdict::Ignore);
            }
            now += window;
        }
        // Blocked for good; another peer is unaffected.
        assert_eq!(budgets.verdict(&bad, now + 10 * window), Verdict::Block);
        assert_eq!(budgets.verdict(&good, now), Verdict::Listen);
        // Strikes an hour apart never add up to a block.
        let mut budgets = Budgets::default();
        let hour = STRIKE_MEMORY.as_millis() as u64;
        for strike in 0..5 {
            let at = strike * hour;
            assert_eq!(
                budgets.charge(&bad, at, invalid(INVALID_PER_WINDOW + 1)),
                Verdict::Ignore
            );
        }
        // A new window gives a muted peer its budget back.
        let mut budgets = Budgets::default();
        assert_eq!(budgets.charge(&good, 0, invalid(1_000)), Verdict::Ignore);
        assert_eq!(budgets.verdict(&good, window), Verdict::Listen);
        assert_eq!(budgets.remaining(&good, window), INVALID_PER_WINDOW);
    }

    #[test]
    fn validly_signed_refusals_mute_a_peer_for_the_window_without_a_strike() {
        let mut budgets = Budgets::default();
        let busy = peer(3);
        let window = WINDOW.as_millis() as u64;
        let refused = |refused| Charge {
            invalid: 0,
            refused,
        };
        for start in [0, window, 2 * window, 3 * window] {
            assert_eq!(
                budgets.charge(&busy, start, refused(REFUSED_PER_WINDOW)),
                Verdict::Listen
            );
            assert_eq!(budgets.charge(&busy, start, refused(1)), Verdict::Ignore);
        }
        assert_eq!(budgets.verdict(&busy, 4 * window), Verdict::Listen);
    }

    #[test]
    fn only_what_an_honest_peer_never_sends_counts_against_it() {
        assert!(peer_at_fault(&MempoolError::Invalid(TxError::BadSignature)));
        assert!(peer_at_fault(&MempoolError::Invalid(TxError::TooLarge {
            size: 1,
            max: 0
        })));
        assert!(!peer_at_fault(&MempoolError::PoolFull {
            outbid_with: wetee_types::Balance(1)
        }));
        assert!(!peer_at_fault(&MempoolError::Invalid(
            TxError::StaleNonce {
                expected: 1,
                got: 0
            }
        )));
        assert!(!peer_at_fault(&MempoolError::AlreadyKnown(
            wetee_types::Hash::default()
        )));
    }
}
