//! Each transaction's signature checked once per node, many at a time.
//!
//! Admission, gossip, proposal and block verification all need to know that a transaction's
//! signature is its signer's. The answer depends only on the transaction's bytes and the
//! chain, so it is remembered by transaction hash (the hash covers the signature): a
//! transaction admitted from RPC or gossip is not verified again when a block carries it, and
//! the signatures a block brings that this node has not seen are verified in parallel on a
//! pool of threads sized from the machine, outside every lock of the node.
//!
//! Only good signatures are remembered, in a bounded first-in-first-out set: forgetting one
//! costs a second verification, never a wrong answer. Admission remembers only what the pool
//! took; a block's signatures are remembered once checked.
//!
//! Sr25519 signatures are verified in batches (a prime-order group: a batch accepts exactly
//! what single verification does); ed25519 ones one by one, strictly, since batching would
//! accept signatures that strict verification refuses ([0018](../../../docs/decisions/0018-signatures-once.md)).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use rayon::prelude::*;
use wetee_types::{AccountId, Hash, KeyScheme, Signature, SignedTransaction};

/// Good signatures remembered (about 10 MiB), more than a full mempool holds.
pub const REMEMBERED: usize = 131_072;

/// Below this many unknown signatures, verifying on the calling thread beats handing them to
/// the pool.
const PARALLEL_FROM: usize = 8;

/// Signatures verified together: one task of the pool, one sr25519 batch.
const BATCH: usize = 64;

/// The node's signature checker.
pub struct Signatures {
    genesis_hash: Hash,
    pool: rayon::ThreadPool,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    // Lookup only, never iterated.
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl Known {
    fn remember(&mut self, hash: Hash) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.set.remove(&oldest);
            }
        }
    }
}

impl std::fmt::Debug for Signatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signatures")
            .field("threads", &self.pool.current_num_threads())
            .finish()
    }
}

/// The first transaction (by position) whose signature is not its signer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("transaction {index} is not signed by its signer for this chain")]
pub struct BadSignature {
    /// Its position in what was checked.
    pub index: usize,
}

impl Signatures {
    /// A checker for the chain `genesis_hash`, with one verifying thread per core.
    pub fn new(genesis_hash: Hash) -> Signatures {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("wetee-verify-{i}"))
            .build()
            .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
            .expect("a thread pool of one thread can always be built");
        Signatures {
            genesis_hash,
            pool,
            known: Mutex::new(Known::default()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `tx`'s signature is already known good.
    pub fn is_known(&self, hash: &Hash) -> bool {
        self.known().set.contains(hash)
    }

    /// Checks one transaction (`hash` is its hash), without remembering it: admission
    /// remembers only what the pool took ([`Signatures::remember`]), so that well-signed
    /// transactions it refuses cannot push the ones it holds out of memory.
    pub fn check(&self, tx: &SignedTransaction, hash: Hash) -> bool {
        self.is_known(&hash) || tx.verify_signature(&self.genesis_hash)
    }

    /// Remembers that `hash`'s signature is good (it was checked, and its transaction admitted).
    pub fn remember(&self, hash: Hash) {
        self.known().remember(hash);
    }

    /// Checks every transaction of `txs` (`hashes` are theirs, in order), verifying the ones
    /// not known yet in parallel, and remembers the good ones. Returns each verdict.
    pub fn check_all(&self, txs: &[SignedTransaction], hashes: &[Hash]) -> Vec<bool> {
        self.check_many(txs, hashes, true)
    }

    /// [`Signatures::check_all`] without remembering (for admission).
    pub fn check_all_unremembered(&self, txs: &[SignedTransaction], hashes: &[Hash]) -> Vec<bool> {
        self.check_many(txs, hashes, false)
    }

    fn check_many(&self, txs: &[SignedTransaction], hashes: &[Hash], remember: bool) -> Vec<bool> {
        let mut verdicts = vec![true; txs.len()];
        let unknown: Vec<usize> = {
            let known = self.known();
            (0..txs.len())
                .filter(|&i| !hashes.get(i).is_some_and(|h| known.set.contains(h)))
                .collect()
        };
        if unknown.is_empty() {
            return verdicts;
        }
        let verify = |chunk: &[usize]| self.verify_chunk(txs, chunk);
        let checked: Vec<(usize, bool)> = if unknown.len() < PARALLEL_FROM {
            verify(&unknown)
        } else {
            self.pool
                .install(|| unknown.par_chunks(BATCH).flat_map_iter(verify).collect())
        };
        let mut known = self.known();
        for (i, good) in checked {
            verdicts[i] = good;
            if remember
                && good
                && let Some(hash) = hashes.get(i)
            {
                known.remember(*hash);
            }
        }
        verdicts
    }

    /// Verifies `txs[i]` for each `i` of `chunk`: the sr25519 ones in one batch, falling back to
    /// one by one when the batch fails (a bad signature, or one over the `<Bytes>` form).
    fn verify_chunk(&self, txs: &[SignedTransaction], chunk: &[usize]) -> Vec<(usize, bool)> {
        let is_sr25519 = |i: usize| txs[i].signature.scheme() == KeyScheme::Sr25519;
        let sr25519: Vec<usize> = chunk.iter().copied().filter(|&i| is_sr25519(i)).collect();
        let batch_passed = sr25519.len() > 1 && {
            let payloads: Vec<Vec<u8>> = sr25519
                .iter()
                .map(|&i| txs[i].tx.signing_payload(&self.genesis_hash))
                .collect();
            let items: Vec<(&[u8], &Signature, &AccountId)> = sr25519
                .iter()
                .zip(&payloads)
                .map(|(&i, payload)| (payload.as_slice(), &txs[i].signature, &txs[i].tx.signer))
                .collect();
            Signature::verify_sr25519_batch(&items)
        };
        chunk
            .iter()
            .map(|&i| {
                let good =
                    (batch_passed && is_sr25519(i)) || txs[i].verify_signature(&self.genesis_hash);
                (i, good)
            })
            .collect()
    }

    /// Checks a block's transactions; the first bad one is the error.
    pub fn check_block(&self, txs: &[SignedTransaction]) -> Result<(), BadSignature> {
        let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        match self.check_all(txs, &hashes).iter().position(|good| !good) {
            Some(index) => Err(BadSignature { index }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::transaction::{BalancesCall, Transaction};
    use wetee_types::{AccountId, Balance, Call, KeyScheme, Keypair};

    fn transfers(chain: &Hash, n: u64) -> Vec<SignedTransaction> {
        (0..n)
            .map(|nonce| {
                let scheme = if nonce % 2 == 0 {
                    KeyScheme::Ed25519
                } else {
                    KeyScheme::Sr25519
                };
                let key = Keypair::from_seed(scheme, [nonce as u8; 32]);
                Transaction {
                    signer: key.account_id(),
                    nonce,
                    fee: Balance(1),
                    expires_at: 10,
                    call: Call::Balances(BalancesCall::Transfer {
                        to: AccountId([9; 32]),
                        amount: Balance(1),
                    }),
                }
                .sign(&key, chain)
            })
            .collect()
    }

    #[test]
    fn a_block_is_refused_at_its_first_bad_signature_in_parallel_or_not() {
        let chain = Hash::of(b"chain");
        for n in [3, 40] {
            let signatures = Signatures::new(chain);
            let mut txs = transfers(&chain, n);
            assert_eq!(signatures.check_block(&txs), Ok(()));
            // Known now: a forged copy (another hash) is still checked.
            let last = txs.len() - 1;
            txs[last].tx.nonce += 1;
            txs[1].tx.nonce += 1;
            assert_eq!(signatures.check_block(&txs), Err(BadSignature { index: 1 }));
            // Signed as a browser extension signs (the `<Bytes>` form): no batch passes, each
            // is still accepted on its own.
            let mut wrapped = transfers(&chain, n);
            let key = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
            let mut payload = wetee_types::crypto::EXTENSION_PREFIX.to_vec();
            payload.extend(wrapped[1].tx.signing_payload(&chain));
            payload.extend(wetee_types::crypto::EXTENSION_SUFFIX);
            wrapped[1].signature = key.sign(&payload);
            assert_eq!(Signatures::new(chain).check_block(&wrapped), Ok(()));
            // Signed for another chain.
            let other = transfers(&Hash::of(b"other"), n);
            assert_eq!(
                Signatures::new(chain).check_block(&other),
                Err(BadSignature { index: 0 })
            );
        }
    }

    #[test]
    fn only_good_signatures_are_remembered_and_the_memory_is_bounded() {
        let chain = Hash::of(b"chain");
        let signatures = Signatures::new(chain);
        let txs = transfers(&chain, 2);
        let mut forged = txs[0].clone();
        forged.tx.fee = Balance(2);
        assert!(!signatures.check(&forged, forged.hash()));
        assert!(!signatures.is_known(&forged.hash()));
        // Checked for admission: remembered only once the pool takes it.
        assert!(signatures.check(&txs[0], txs[0].hash()));
        assert!(!signatures.is_known(&txs[0].hash()));
        signatures.remember(txs[0].hash());
        assert!(signatures.is_known(&txs[0].hash()));
        assert_eq!(
            signatures.check_all_unremembered(&txs[1..], &[txs[1].hash()]),
            vec![true]
        );
        assert!(!signatures.is_known(&txs[1].hash()));

        let mut known = Known::default();
        for i in 0..(REMEMBERED as u64 + 10) {
            known.remember(Hash::of(&i.to_le_bytes()));
        }
        assert_eq!(known.set.len(), REMEMBERED);
        assert_eq!(known.order.len(), REMEMBERED);
        assert!(!known.set.contains(&Hash::of(&0u64.to_le_bytes())));
        assert!(
            known
                .set
                .contains(&Hash::of(&(REMEMBERED as u64).to_le_bytes()))
        );
    }
}
