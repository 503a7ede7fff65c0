//! Transactions waiting for a block.
//!
//! Admission checks everything that can be checked before execution against the latest
//! finalized state: size, signature, expiry (and that it is not too far ahead), fee, nonce and
//! the signer's ability to pay the fees of all its pending transactions. Every rejection carries
//! its reason.
//!
//! Per account, transactions are kept by nonce; a block takes them in arrival order while
//! keeping each account's nonces in sequence. A transaction whose nonce is ahead of the account
//! waits (up to [`MempoolLimits::max_nonce_gap`] ahead) until the gap is filled.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use wetee_runtime::BlockInfo;
use wetee_runtime::Runtime;
use wetee_runtime::state::State;
use wetee_types::{AccountId, Balance, Hash, SignedTransaction, TxError};

/// Size limits of the pool.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    /// Most transactions in the pool.
    pub max_transactions: usize,
    /// Most encoded bytes in the pool.
    pub max_bytes: usize,
    /// Most pending transactions of one account.
    pub max_per_account: usize,
    /// How far past the account's next nonce a transaction may be.
    pub max_nonce_gap: u64,
    /// How many blocks after the next one a transaction may expire: one that stays valid for
    /// days would hold its place in the pool (and in every peer's) for days.
    pub max_expiry_ahead: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_transactions: 50_000,
            max_bytes: 128 * 1024 * 1024,
            max_per_account: 256,
            max_nonce_gap: 256,
            // An hour of 250 ms blocks; the SDK and the console sign for 600.
            max_expiry_ahead: 14_400,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The runtime's own checks failed.
    #[error("{0}")]
    Invalid(#[from] TxError),
    /// The same transaction is already pending.
    #[error("already pending: {0}")]
    AlreadyKnown(Hash),
    /// Another transaction of the account with this nonce is pending.
    #[error("nonce {nonce} of {signer} is already taken by pending transaction {existing}")]
    NonceTaken {
        /// The signer.
        signer: AccountId,
        /// The nonce.
        nonce: u64,
        /// The pending transaction holding it.
        existing: Hash,
    },
    /// The nonce is too far ahead of the account's next one.
    #[error("nonce {got} is more than {max_gap} ahead of the account's next nonce {expected}")]
    NonceTooFarAhead {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
        /// The allowed gap.
        max_gap: u64,
    },
    /// The account cannot pay the fees of all its pending transactions and this one.
    #[error(
        "the signer's free balance {free} cannot pay {total} of fees for its pending transactions and this one"
    )]
    CannotPayPendingFees {
        /// The free balance.
        free: Balance,
        /// The sum of fees.
        total: Balance,
    },
    /// The transaction stays valid too long.
    #[error(
        "it expires at height {expires_at}, more than {max_ahead} blocks after the next block \
         {height}: sign it with an expiry within {max_ahead} blocks"
    )]
    ExpiresTooFarAhead {
        /// Its expiry height.
        expires_at: u64,
        /// The next block's height.
        height: u64,
        /// The most blocks ahead allowed.
        max_ahead: u64,
    },
    /// The account has too many pending transactions.
    #[error("the signer already has {0} pending transactions; wait for some to be included")]
    AccountFull(usize),
    /// The pool is full.
    #[error("the transaction pool is full; try again shortly")]
    PoolFull,
}

#[derive(Debug)]
struct Pending {
    tx: SignedTransaction,
    hash: Hash,
    size: usize,
    arrival: u64,
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    by_account: BTreeMap<AccountId, BTreeMap<u64, Pending>>,
    // Lookup only, never iterated, so its order cannot leak into blocks.
    by_hash: HashMap<Hash, (AccountId, u64)>,
    bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            limits,
            by_account: BTreeMap::new(),
            by_hash: HashMap::new(),
            bytes: 0,
            next_arrival: 0,
        }
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Checks `tx` against `state` (the latest finalized state; `block` is the next block) and
    /// admits it.
    pub fn admit(
        &mut self,
        runtime: &Runtime,
        state: &dyn State,
        block: &BlockInfo,
        tx: SignedTransaction,
    ) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::AlreadyKnown(hash));
        }
        if tx.tx.expires_at > block.height.saturating_add(self.limits.max_expiry_ahead) {
            return Err(MempoolError::ExpiresTooFarAhead {
                expires_at: tx.tx.expires_at,
                height: block.height,
                max_ahead: self.limits.max_expiry_ahead,
            });
        }
        let account = runtime.check_transaction(state, block, &tx, true)?;
        let signer = tx.tx.signer;
        let nonce = tx.tx.nonce;
        let gap = nonce.saturating_sub(account.nonce);
        if gap > self.limits.max_nonce_gap {
            return Err(MempoolError::NonceTooFarAhead {
                expected: account.nonce,
                got: nonce,
                max_gap: self.limits.max_nonce_gap,
            });
        }
        let size = wetee_types::codec::encode(&tx).len();
        if let Some(queue) = self.by_account.get(&signer) {
            if let Some(existing) = queue.get(&nonce) {
                return Err(MempoolError::NonceTaken {
                    signer,
                    nonce,
                    existing: existing.hash,
                });
            }
            if queue.len() >= self.limits.max_per_account {
                return Err(MempoolError::AccountFull(queue.len()));
            }
            // Only transactions the account has not yet executed will charge fees.
            let mut total = tx.tx.fee;
            for pending in queue.range(account.nonce..).map(|(_, p)| p) {
                total = total.checked_add(pending.tx.tx.fee).ok_or(
                    MempoolError::CannotPayPendingFees {
                        free: account.free,
                        total: Balance(u128::MAX),
                    },
                )?;
            }
            if total > account.free {
                return Err(MempoolError::CannotPayPendingFees {
                    free: account.free,
                    total,
                });
            }
        }
        if self.by_hash.len() >= self.limits.max_transactions
            || self.bytes.saturating_add(size) > self.limits.max_bytes
        {
            return Err(MempoolError::PoolFull);
        }
        let arrival = self.next_arrival;
        self.next_arrival = self.next_arrival.saturating_add(1);
        self.bytes = self.bytes.saturating_add(size);
        self.by_hash.insert(hash, (signer, nonce));
        self.by_account.entry(signer).or_default().insert(
            nonce,
            Pending {
                tx,
                hash,
                size,
                arrival,
            },
        );
        Ok(hash)
    }

    /// Up to `max` transactions for a block, in arrival order but each account's in nonce
    /// order, starting at the nonce `next_nonce` gives for the account (its nonce in the state
    /// the block builds on). Accounts whose next transaction is missing are skipped.
    pub fn select(
        &self,
        max: usize,
        max_bytes: usize,
        mut next_nonce: impl FnMut(&AccountId) -> u64,
    ) -> Vec<SignedTransaction> {
        // (arrival of the account's next transaction, account, its nonce)
        let mut heap = BinaryHeap::new();
        for (account, queue) in &self.by_account {
            let nonce = next_nonce(account);
            if let Some(pending) = queue.get(&nonce) {
                heap.push(Reverse((pending.arrival, *account, nonce)));
            }
        }
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        while let Some(Reverse((_, account, nonce))) = heap.pop() {
            if chosen.len() >= max {
                break;
            }
            let Some(queue) = self.by_account.get(&account) else {
                continue;
            };
            let Some(pending) = queue.get(&nonce) else {
                continue;
            };
            if bytes.saturating_add(pending.size) > max_bytes {
                continue;
            }
            bytes = bytes.saturating_add(pending.size);
            chosen.push(pending.tx.clone());
            let following = nonce.saturating_add(1);
            if let Some(next) = queue.get(&following) {
                heap.push(Reverse((next.arrival, account, following)));
            }
        }
        chosen
    }

    /// The nonce `account`'s next transaction should use: `state_nonce` (its next nonce in the
    /// finalized state), moved past each pending transaction that continues the run without a
    /// gap. A transaction waiting behind a gap does not count: the gap must be filled first.
    pub fn next_nonce(&self, account: &AccountId, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.by_account.get(account) {
            for &nonce in queue.range(state_nonce..).map(|(nonce, _)| nonce) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// Removes the transaction `hash`, if pending.
    pub fn remove(&mut self, hash: &Hash) -> Option<SignedTransaction> {
        let (account, nonce) = self.by_hash.remove(hash)?;
        let queue = self.by_account.get_mut(&account)?;
        let pending = queue.remove(&nonce)?;
        if queue.is_empty() {
            self.by_account.remove(&account);
        }
        self.bytes = self.bytes.saturating_sub(pending.size);
        Some(pending.tx)
    }

    /// After a block is finalized: drops every transaction whose nonce the account has used
    /// (`nonce_of` reads the finalized state) or that expired before `next_height`. Returns
    /// the hashes dropped.
    pub fn prune(
        &mut self,
        accounts: impl IntoIterator<Item = AccountId>,
        mut nonce_of: impl FnMut(&AccountId) -> u64,
        next_height: u64,
    ) -> Vec<Hash> {
        let mut dropped = Vec::new();
        for account in accounts {
            let next_nonce = nonce_of(&account);
            if let Some(queue) = self.by_account.get(&account) {
                dropped.extend(queue.range(..next_nonce).map(|(_, pending)| pending.hash));
            }
        }
        // Expiry is rare and needs a full pass; do it for every account.
        for queue in self.by_account.values() {
            dropped.extend(
                queue
                    .values()
                    .filter(|pending| pending.tx.tx.expires_at < next_height)
                    .map(|pending| pending.hash),
            );
        }
        dropped.sort();
        dropped.dedup();
        for hash in &dropped {
            self.remove(hash);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_runtime::Genesis;
    use wetee_runtime::state::MemoryState;
    use wetee_types::transaction::{BalancesCall, Transaction};
    use wetee_types::{Call, ChainConfig, KeyScheme, Keypair, Params};

    struct World {
        runtime: Runtime,
        state: MemoryState,
        genesis_hash: Hash,
        alice: Keypair,
        bob: Keypair,
    }

    fn world() -> World {
        let alice = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
        let bob = Keypair::from_seed(KeyScheme::Ed25519, [2; 32]);
        let genesis_hash = Hash::of(b"mempool test");
        let runtime = Runtime::new();
        let mut state = MemoryState::new();
        runtime
            .genesis(
                &mut state,
                &Genesis {
                    chain: ChainConfig { epoch_length: 10 },
                    params: Params::dev(),
                    attestation: wetee_types::attestation::AttestationPolicy::dev(),
                    root: alice.account_id(),
                    treasury: Keypair::from_seed(KeyScheme::Sr25519, [3; 32]).account_id(),
                    balances: vec![
                        (alice.account_id(), Balance(wetee_types::balance::UNIT)),
                        (bob.account_id(), Balance(wetee_types::balance::UNIT / 500)),
                    ],
                },
                genesis_hash,
            )
            .unwrap();
        World {
            runtime,
            state,
            genesis_hash,
            alice,
            bob,
        }
    }

    fn transfer(world: &World, from: &Keypair, nonce: u64, expires_at: u64) -> SignedTransaction {
        let tx = Transaction {
            signer: from.account_id(),
            nonce,
            fee: Balance(wetee_types::balance::UNIT / 100),
            expires_at,
            call: Call::Balances(BalancesCall::Transfer {
                to: world.alice.account_id(),
                amount: Balance(1),
            }),
        };
        tx.sign(from, &world.genesis_hash)
    }

    const NEXT: BlockInfo = BlockInfo {
        height: 1,
        timestamp_ms: 1_000,
        parent_hash: Hash([0; 32]),
    };

    fn admit(
        pool: &mut Mempool,
        world: &World,
        tx: SignedTransaction,
    ) -> Result<Hash, MempoolError> {
        pool.admit(&world.runtime, &world.state, &NEXT, tx)
    }

    #[test]
    fn admission_rejects_with_reasons_and_keeps_nonce_order() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let first = transfer(&world, &world.alice, 0, 100);
        let second = transfer(&world, &world.alice, 1, 100);
        // Out of order arrival is fine; the block still takes nonce 0 first.
        admit(&mut pool, &world, second.clone()).unwrap();
        admit(&mut pool, &world, first.clone()).unwrap();
        assert_eq!(
            admit(&mut pool, &world, first.clone()),
            Err(MempoolError::AlreadyKnown(first.hash()))
        );
        let chosen = pool.select(10, usize::MAX, |_| 0);
        assert_eq!(chosen, vec![first.clone(), second.clone()]);
        // Building on a state where nonce 0 is used starts at 1.
        assert_eq!(pool.select(10, usize::MAX, |_| 1), vec![second.clone()]);
        // A gap blocks the account.
        assert!(pool.select(10, usize::MAX, |_| 5).is_empty());

        let mut resigned = first.clone();
        resigned.tx.fee = Balance(resigned.tx.fee.0 + 1);
        let resigned = resigned.tx.sign(&world.alice, &world.genesis_hash);
        assert!(matches!(
            admit(&mut pool, &world, resigned),
            Err(MempoolError::NonceTaken { nonce: 0, .. })
        ));
        assert!(matches!(
            admit(&mut pool, &world, transfer(&world, &world.alice, 1000, 100)),
            Err(MempoolError::NonceTooFarAhead { .. })
        ));
        assert!(matches!(
            admit(&mut pool, &world, transfer(&world, &world.alice, 2, 0)),
            Err(MempoolError::Invalid(TxError::Expired { .. }))
        ));
        // Valid for longer than the horizon: refused, at the horizon: admitted.
        let horizon = NEXT.height + MempoolLimits::default().max_expiry_ahead;
        assert_eq!(
            admit(
                &mut pool,
                &world,
                transfer(&world, &world.alice, 2, horizon + 1)
            ),
            Err(MempoolError::ExpiresTooFarAhead {
                expires_at: horizon + 1,
                height: NEXT.height,
                max_ahead: 14_400,
            })
        );
        assert!(
            admit(
                &mut pool,
                &world,
                transfer(&world, &world.alice, 2, u64::MAX)
            )
            .is_err_and(|e| e
                .to_string()
                .contains("sign it with an expiry within 14400 blocks"))
        );
        let lasting = transfer(&world, &world.alice, 2, horizon);
        admit(&mut pool, &world, lasting.clone()).unwrap();
        pool.remove(&lasting.hash());
        let mut forged = transfer(&world, &world.alice, 2, 100);
        forged.tx.nonce = 3;
        assert_eq!(
            admit(&mut pool, &world, forged),
            Err(MempoolError::Invalid(TxError::BadSignature))
        );
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn the_next_nonce_counts_pending_transactions_up_to_the_first_gap() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let alice = world.alice.account_id();
        assert_eq!(pool.next_nonce(&alice, 0), 0);
        for nonce in [0, 1, 3] {
            admit(
                &mut pool,
                &world,
                transfer(&world, &world.alice, nonce, 100),
            )
            .unwrap();
        }
        // Nonce 2 is missing: 3 waits behind the gap and the next sender must fill it.
        assert_eq!(pool.next_nonce(&alice, 0), 2);
        // Once the finalized state has used 0 and 1, counting starts there.
        assert_eq!(pool.next_nonce(&alice, 2), 2);
        assert_eq!(pool.next_nonce(&alice, 5), 5);
        admit(&mut pool, &world, transfer(&world, &world.alice, 2, 100)).unwrap();
        assert_eq!(pool.next_nonce(&alice, 0), 4);
        assert_eq!(pool.next_nonce(&world.bob.account_id(), 7), 7);
    }

    #[test]
    fn an_account_cannot_queue_more_fees_than_it_holds() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        // Bob holds a fifth of one fee: he cannot pay even one.
        assert!(matches!(
            admit(&mut pool, &world, transfer(&world, &world.bob, 0, 100)),
            Err(MempoolError::Invalid(TxError::CannotPayFee { .. }))
        ));
        // Alice holds 100 fees: the 101st pending transaction is refused.
        let mut pool = Mempool::new(MempoolLimits {
            max_per_account: 1000,
            max_nonce_gap: 1000,
            ..MempoolLimits::default()
        });
        for nonce in 0..100 {
            admit(
                &mut pool,
                &world,
                transfer(&world, &world.alice, nonce, 100),
            )
            .unwrap();
        }
        assert!(matches!(
            admit(&mut pool, &world, transfer(&world, &world.alice, 100, 100)),
            Err(MempoolError::CannotPayPendingFees { .. })
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits {
            max_transactions: 2,
            max_per_account: 1,
            ..MempoolLimits::default()
        });
        admit(&mut pool, &world, transfer(&world, &world.alice, 0, 100)).unwrap();
        assert_eq!(
            admit(&mut pool, &world, transfer(&world, &world.alice, 1, 100)),
            Err(MempoolError::AccountFull(1))
        );
        let carol = Keypair::from_seed(KeyScheme::Sr25519, [4; 32]);
        let dave = Keypair::from_seed(KeyScheme::Sr25519, [5; 32]);
        let mut world = world;
        for key in [&carol, &dave] {
            let mut account =
                wetee_runtime::storage::account(&world.state, &key.account_id()).unwrap();
            account.free = Balance(wetee_types::balance::UNIT);
            wetee_runtime::storage::put_account(&mut world.state, &key.account_id(), &account);
        }
        admit(&mut pool, &world, transfer(&world, &carol, 0, 100)).unwrap();
        assert_eq!(
            admit(&mut pool, &world, transfer(&world, &dave, 0, 100)),
            Err(MempoolError::PoolFull)
        );
    }

    #[test]
    fn pruning_drops_used_nonces_and_expired_transactions() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let used = transfer(&world, &world.alice, 0, 100);
        let kept = transfer(&world, &world.alice, 1, 100);
        let expiring = transfer(&world, &world.alice, 2, 5);
        for tx in [&used, &kept, &expiring] {
            admit(&mut pool, &world, tx.clone()).unwrap();
        }
        let dropped = pool.prune([world.alice.account_id()], |_| 1, 6);
        let mut expected = vec![used.hash(), expiring.hash()];
        expected.sort();
        assert_eq!(dropped, expected);
        assert!(pool.contains(&kept.hash()));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), wetee_types::codec::encode(&kept).len());
    }
}
