//! Transactions waiting for a block, ranked so that an attacker who fills the pool cannot
//! keep honest users out.
//!
//! Admission checks everything that can be checked before execution against the latest
//! finalized state: size, signature, expiry (and that it is not too far ahead), fee, nonce and
//! the signer's ability to pay the fees of all its pending transactions. Every rejection carries
//! its reason and what to do about it.
//!
//! Each account's transactions are kept by nonce. Those that continue the account's nonce
//! without a gap are *ready*: a block can take them. Those behind a gap are *waiting*: they
//! never execute (and so never pay) until the gap is filled, so they live in a small budget of
//! their own, per account and in total, and are the first to go when the pool is full.
//!
//! Transactions rank by their [`Priority`]: operational work reports first (a block keeps a
//! share for them, and a flood must not push them out of the pool either), then the fee they
//! offer above the minimum per millisecond of their weight (block time is what a block runs out
//! of, and a transaction's bytes are part of its weight). A
//! full pool evicts the lowest-ranked waiting transaction, then the lowest-ranked last ready
//! transaction of another account, but only for a transaction that ranks higher: filling the
//! pool with minimum-fee transactions does not lock out a user who pays a little more, and
//! paying more costs the attacker for every transaction that executes. A pending transaction
//! is replaced only by one of the same nonce that ranks at least [`MempoolLimits::replacement_bump_percent`]
//! higher, so two clients of one account paying the usual fee never evict each other. A
//! transaction a proposer could not include [`MempoolLimits::max_inclusion_failures`] times is
//! dropped.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use wetee_runtime::BlockInfo;
use wetee_runtime::Runtime;
use wetee_runtime::SignatureCheck;
use wetee_runtime::state::State;
use wetee_runtime::weights::Class;
use wetee_types::{AccountId, Balance, Hash, SignedTransaction, TxError, Weight};

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
    /// How long after the next block a transaction may stay valid, in milliseconds (converted
    /// into blocks with the chain's block time): one that stays valid for days would hold its
    /// place in the pool (and in every peer's) for days.
    pub max_expiry_ahead_ms: u64,
    /// Most transactions waiting behind a nonce gap, over all accounts.
    pub max_waiting: usize,
    /// Most transactions of one account waiting behind a nonce gap.
    pub max_waiting_per_account: usize,
    /// How much higher (in percent of its priority) a transaction must rank to replace the
    /// pending one with its nonce.
    pub replacement_bump_percent: u128,
    /// How many times proposers may fail to include a transaction before it is dropped.
    pub max_inclusion_failures: u32,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_transactions: 50_000,
            max_bytes: 128 * 1024 * 1024,
            max_per_account: 256,
            max_nonce_gap: 256,
            // An hour; the SDK and the console sign for 150 s.
            max_expiry_ahead_ms: 3_600_000,
            max_waiting: 5_000,
            max_waiting_per_account: 16,
            replacement_bump_percent: 10,
            max_inclusion_failures: 3,
        }
    }
}

/// What the pool ranks by: a transaction's class first (operational work reports above
/// everything else, [`Class`]), then how much it pays above its minimum fee per millisecond of
/// its weight. A transaction that pays exactly the minimum tips 0; of two that tip the same,
/// the lighter ranks higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority {
    /// The share of a block it may use.
    pub class: Class,
    /// Its fee above the minimum, per millisecond of weight.
    pub tip_per_ms: u128,
}

/// The weight a tip is counted per.
const TIP_PER: u128 = Weight::from_millis(1).0 as u128;

impl Priority {
    /// The priority of a transaction of `class` and `weight` offering `fee` where `minimum` is
    /// due.
    pub fn of(class: Class, fee: Balance, minimum: Balance, weight: Weight) -> Priority {
        let weight = u128::from(weight.0.max(1));
        let tip = fee.0.saturating_sub(minimum.0);
        Priority {
            class,
            tip_per_ms: tip.saturating_mul(TIP_PER) / weight,
        }
    }

    /// The least priority of its class that outranks this one by `percent` (and by at least
    /// one).
    fn bumped(self, percent: u128) -> Priority {
        let raised = self
            .tip_per_ms
            .saturating_mul(percent.saturating_add(100))
            .div_ceil(100);
        Priority {
            tip_per_ms: raised.max(self.tip_per_ms.saturating_add(1)),
            ..self
        }
    }

    /// The least fee a transaction of `weight` owing `minimum` must offer to tip as much as
    /// `self`.
    fn fee(self, minimum: Balance, weight: Weight) -> Balance {
        let weight = u128::from(weight.0);
        let tip = self.tip_per_ms.saturating_mul(weight).div_ceil(TIP_PER);
        Balance(minimum.0.saturating_add(tip))
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
    /// Another transaction of the account with this nonce is pending and this one does not
    /// outrank it enough to replace it.
    #[error(
        "nonce {nonce} of {signer} is already taken by pending transaction {existing}: sign \
         the next nonce, or offer a fee of at least {replace_with} to replace it"
    )]
    NonceTaken {
        /// The signer.
        signer: AccountId,
        /// The nonce.
        nonce: u64,
        /// The pending transaction holding it.
        existing: Hash,
        /// The least fee that would replace it.
        replace_with: Balance,
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
    /// The account has too many transactions waiting behind its missing nonce.
    #[error(
        "the signer already has {waiting} transactions waiting behind its missing nonce \
         {missing}: send nonce {missing} first"
    )]
    TooManyWaiting {
        /// How many wait.
        waiting: usize,
        /// The first nonce missing.
        missing: u64,
    },
    /// The pool's budget for transactions behind a nonce gap is full of ones ranking at
    /// least as high.
    #[error(
        "the pool holds as many transactions waiting behind a missing nonce as it keeps: send \
         nonce {missing} first, or offer a fee of at least {outbid_with}"
    )]
    WaitingFull {
        /// The signer's first missing nonce.
        missing: u64,
        /// The least fee that would displace a waiting transaction.
        outbid_with: Balance,
    },
    /// The pool is full of transactions ranking at least as high.
    #[error(
        "the transaction pool is full: offer a fee of at least {outbid_with} to displace the \
         lowest-paying pending transactions, or try again shortly"
    )]
    PoolFull {
        /// The least fee that would displace a pending transaction.
        outbid_with: Balance,
    },
}

/// Why a pending transaction left the pool without being finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Another transaction used its nonce.
    NonceUsed,
    /// It expired.
    Expired,
    /// A transaction of the same nonce offering more replaced it.
    Replaced,
    /// The pool was full and transactions offering more took its place.
    Evicted,
    /// Proposers could not include it, time after time.
    NotIncludable,
    /// Its signer can no longer pay the fees of its pending transactions up to this one.
    CannotPay,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::NonceUsed => "another transaction used its nonce",
            DropReason::Expired => "it expired before a block included it",
            DropReason::Replaced => "a transaction of the same nonce offering more replaced it",
            DropReason::Evicted => {
                "the pool was full and transactions offering higher fees took its place"
            }
            DropReason::NotIncludable => {
                "block proposers could not include it (it no longer passes the chain's checks)"
            }
            DropReason::CannotPay => {
                "its signer can no longer pay the fees of its pending transactions up to it"
            }
        })
    }
}

/// An admitted transaction, and what it pushed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its hash.
    pub hash: Hash,
    /// The transactions it replaced or evicted.
    pub dropped: Vec<(Hash, DropReason)>,
}

#[derive(Debug)]
struct Pending {
    tx: SignedTransaction,
    hash: Hash,
    size: usize,
    arrival: u64,
    priority: Priority,
    failures: u32,
}

/// An account's pending transactions.
#[derive(Debug)]
struct Queue {
    /// The account's next nonce in the latest state the pool has seen.
    base: u64,
    txs: BTreeMap<u64, Pending>,
    /// One past the last ready nonce: `base..ready_end` are all pending.
    ready_end: u64,
}

impl Queue {
    fn waiting(&self) -> usize {
        self.txs.range(self.ready_end..).count()
    }
}

/// Where a transaction stands in eviction order: lowest priority first, and the newest first
/// among equals, so that the oldest minimum-fee transactions keep their place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    priority: Priority,
    newest_first: Reverse<u64>,
    account: AccountId,
    nonce: u64,
}

impl Rank {
    fn of(account: AccountId, nonce: u64, pending: &Pending) -> Rank {
        Rank {
            priority: pending.priority,
            newest_first: Reverse(pending.arrival),
            account,
            nonce,
        }
    }
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    accounts: BTreeMap<AccountId, Queue>,
    // Lookup only, never iterated, so its order cannot leak into blocks.
    by_hash: HashMap<Hash, (AccountId, u64)>,
    /// Each account's last ready transaction: what a full pool may evict without leaving a gap.
    tails: BTreeSet<Rank>,
    /// Every transaction waiting behind a nonce gap.
    waiting: BTreeSet<Rank>,
    by_expiry: BTreeSet<(u64, Hash)>,
    bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            limits,
            accounts: BTreeMap::new(),
            by_hash: HashMap::new(),
            tails: BTreeSet::new(),
            waiting: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
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

    /// Pending transactions waiting behind a nonce gap.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// What can be refused from the pool alone, before the signature is verified or state is
    /// read: a transaction already pending, or one more behind the gap of an account that has
    /// as many waiting as it may. A flood of nonce-gapped transactions then costs a lookup each,
    /// not a signature check.
    pub fn quick_refusal(&self, hash: &Hash, tx: &SignedTransaction) -> Option<MempoolError> {
        if self.by_hash.contains_key(hash) {
            return Some(MempoolError::AlreadyKnown(*hash));
        }
        let queue = self.accounts.get(&tx.tx.signer)?;
        let nonce = tx.tx.nonce;
        let waiting = queue.waiting();
        (nonce > queue.ready_end
            && !queue.txs.contains_key(&nonce)
            && waiting >= self.limits.max_waiting_per_account)
            .then_some(MempoolError::TooManyWaiting {
                waiting,
                missing: queue.ready_end,
            })
    }

    /// Checks `tx` against `state` (the latest finalized state; `block` is the next block) and
    /// admits it, replacing or evicting lower-ranked transactions if it must. `signature` says
    /// whether the caller verified its signature already (outside the pool's lock).
    pub fn admit(
        &mut self,
        runtime: &Runtime,
        state: &dyn State,
        block: &BlockInfo,
        tx: SignedTransaction,
        signature: SignatureCheck,
    ) -> Result<Admitted, MempoolError> {
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::AlreadyKnown(hash));
        }
        let checked = runtime.check_transaction(state, block, &tx, true, signature)?;
        let max_ahead = self
            .limits
            .max_expiry_ahead_ms
            .div_ceil(checked.target_block_time_ms.max(1));
        if tx.tx.expires_at > block.height.saturating_add(max_ahead) {
            return Err(MempoolError::ExpiresTooFarAhead {
                expires_at: tx.tx.expires_at,
                height: block.height,
                max_ahead,
            });
        }
        let account = checked.account;
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
        let size = checked.size;
        let weight = checked.weight;
        // One operational report a worker ranks as such: a worker needs one report an epoch,
        // and copies must not hold the top of the pool (an operator of several workers sends
        // one for each).
        let reported = wetee_runtime::weights::reported_worker(&tx);
        let class = match self.accounts.get(&signer) {
            Some(queue)
                if queue.txs.iter().any(|(n, p)| {
                    *n != nonce
                        && p.priority.class == Class::Operational
                        && wetee_runtime::weights::reported_worker(&p.tx) == reported
                }) =>
            {
                Class::Normal
            }
            _ => checked.class,
        };
        let priority = Priority::of(class, tx.tx.fee, checked.minimum_fee, weight);
        let mut dropped = self.rebase(&signer, account.nonce);
        if let Some(queue) = self.accounts.get(&signer)
            && nonce < queue.base
        {
            return Err(MempoolError::Invalid(TxError::StaleNonce {
                expected: queue.base,
                got: nonce,
            }));
        }

        // What the account holds, without the transaction this one would replace.
        let (replaced, ready, missing) = match self.accounts.get(&signer) {
            Some(queue) => {
                let replaced = queue.txs.get(&nonce);
                if let Some(existing) = replaced {
                    let needed = existing
                        .priority
                        .bumped(self.limits.replacement_bump_percent);
                    if priority < needed {
                        return Err(MempoolError::NonceTaken {
                            signer,
                            nonce,
                            existing: existing.hash,
                            replace_with: needed.fee(checked.minimum_fee, weight),
                        });
                    }
                }
                let others = queue.txs.len() - usize::from(replaced.is_some());
                if others >= self.limits.max_per_account {
                    return Err(MempoolError::AccountFull(others));
                }
                // Only transactions the account has not yet executed will charge fees.
                let mut total = tx.tx.fee;
                for (_, pending) in queue
                    .txs
                    .range(account.nonce..)
                    .filter(|(n, _)| **n != nonce)
                {
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
                let ready = nonce <= queue.ready_end;
                if !ready {
                    let waiting = queue.waiting() - usize::from(replaced.is_some());
                    if waiting >= self.limits.max_waiting_per_account {
                        return Err(MempoolError::TooManyWaiting {
                            waiting,
                            missing: queue.ready_end,
                        });
                    }
                }
                (replaced.map(|p| (p.size, !ready)), ready, queue.ready_end)
            }
            None => (None, nonce == account.nonce, account.nonce),
        };

        // Room: plan the evictions first, so a refusal changes nothing.
        let (replaced_size, replaced_waits) = replaced.unwrap_or((0, false));
        let mut count = self.len() - usize::from(replaced.is_some());
        let mut bytes = self.bytes - replaced_size;
        let waiting = self.waiting.len() - usize::from(replaced_waits);
        let mut victims: Vec<Rank> = Vec::new();
        let evictable =
            |rank: &&Rank, victims: &[Rank]| rank.account != signer && !victims.contains(rank);
        if !ready && waiting >= self.limits.max_waiting {
            let lowest = self.waiting.iter().find(|r| evictable(r, &victims));
            match lowest {
                Some(lowest) if lowest.priority < priority => {
                    victims.push(*lowest);
                    count -= 1;
                    bytes -= self.size_of(lowest);
                }
                _ => {
                    return Err(MempoolError::WaitingFull {
                        missing,
                        outbid_with: lowest
                            .map_or(priority, |r| r.priority.bumped(0))
                            .fee(checked.minimum_fee, weight),
                    });
                }
            }
        }
        while count >= self.limits.max_transactions
            || bytes.saturating_add(size) > self.limits.max_bytes
        {
            let lowest_waiting = self.waiting.iter().find(|r| evictable(r, &victims));
            let lowest_tail = self.tails.iter().find(|r| evictable(r, &victims));
            let victim = match (lowest_waiting, lowest_tail) {
                // Transactions that cannot execute give way to any that can.
                (Some(w), _) if ready || w.priority < priority => Some(*w),
                (_, Some(t)) if ready && t.priority < priority => Some(*t),
                _ => None,
            };
            let Some(victim) = victim else {
                let lowest = match (lowest_waiting, lowest_tail) {
                    (Some(w), _) if !ready => w.priority,
                    (_, Some(t)) => t.priority,
                    (Some(w), None) => w.priority,
                    (None, None) => priority,
                };
                return Err(MempoolError::PoolFull {
                    outbid_with: lowest.bumped(0).fee(checked.minimum_fee, weight),
                });
            };
            count -= 1;
            bytes -= self.size_of(&victim);
            victims.push(victim);
        }

        // The replaced transaction may be the account's only one: keep what the pool knows of
        // its nonce when its queue is rebuilt.
        let base = self
            .accounts
            .get(&signer)
            .map_or(account.nonce, |queue| queue.base);
        for victim in victims {
            if let Some(pending) = self.take(&victim.account, victim.nonce) {
                dropped.push((pending.hash, DropReason::Evicted));
            }
        }
        if replaced.is_some()
            && let Some(pending) = self.take(&signer, nonce)
        {
            dropped.push((pending.hash, DropReason::Replaced));
        }
        let arrival = self.next_arrival;
        self.next_arrival = self.next_arrival.saturating_add(1);
        self.unindex(&signer);
        self.bytes = self.bytes.saturating_add(size);
        self.by_hash.insert(hash, (signer, nonce));
        self.by_expiry.insert((tx.tx.expires_at, hash));
        self.accounts
            .entry(signer)
            .or_insert_with(|| Queue {
                base,
                txs: BTreeMap::new(),
                ready_end: base,
            })
            .txs
            .insert(
                nonce,
                Pending {
                    tx,
                    hash,
                    size,
                    arrival,
                    priority,
                    failures: 0,
                },
            );
        self.index(&signer);
        Ok(Admitted { hash, dropped })
    }

    fn size_of(&self, rank: &Rank) -> usize {
        self.accounts
            .get(&rank.account)
            .and_then(|queue| queue.txs.get(&rank.nonce))
            .map_or(0, |pending| pending.size)
    }

    /// Takes `account`'s ranks out of the eviction indexes before its queue changes.
    fn unindex(&mut self, account: &AccountId) {
        let Some(queue) = self.accounts.get(account) else {
            return;
        };
        for (nonce, pending) in queue.txs.range(queue.ready_end..) {
            self.waiting.remove(&Rank::of(*account, *nonce, pending));
        }
        let last = queue.ready_end.saturating_sub(1);
        if queue.ready_end > queue.base
            && let Some(pending) = queue.txs.get(&last)
        {
            self.tails.remove(&Rank::of(*account, last, pending));
        }
    }

    /// Puts `account`'s ranks back after its queue changed, and forgets an empty queue.
    fn index(&mut self, account: &AccountId) {
        let Some(queue) = self.accounts.get_mut(account) else {
            return;
        };
        if queue.txs.is_empty() {
            self.accounts.remove(account);
            return;
        }
        let mut end = queue.base;
        while queue.txs.contains_key(&end) {
            end = end.saturating_add(1);
        }
        queue.ready_end = end;
        for (nonce, pending) in queue.txs.range(end..) {
            self.waiting.insert(Rank::of(*account, *nonce, pending));
        }
        let last = end.saturating_sub(1);
        if end > queue.base
            && let Some(pending) = queue.txs.get(&last)
        {
            self.tails.insert(Rank::of(*account, last, pending));
        }
    }

    /// Removes one transaction, keeping the indexes right.
    fn take(&mut self, account: &AccountId, nonce: u64) -> Option<Pending> {
        self.unindex(account);
        let pending = self
            .accounts
            .get_mut(account)
            .and_then(|queue| queue.txs.remove(&nonce));
        if let Some(pending) = &pending {
            self.by_hash.remove(&pending.hash);
            self.by_expiry
                .remove(&(pending.tx.tx.expires_at, pending.hash));
            self.bytes = self.bytes.saturating_sub(pending.size);
        }
        self.index(account);
        pending
    }

    /// Learns that `account`'s next nonce is `base`, dropping what it made stale.
    fn rebase(&mut self, account: &AccountId, base: u64) -> Vec<(Hash, DropReason)> {
        let Some(queue) = self.accounts.get(account) else {
            return Vec::new();
        };
        if base <= queue.base {
            return Vec::new();
        }
        let stale: Vec<u64> = queue.txs.range(..base).map(|(nonce, _)| *nonce).collect();
        let mut dropped = Vec::with_capacity(stale.len());
        for nonce in stale {
            if let Some(pending) = self.take(account, nonce) {
                dropped.push((pending.hash, DropReason::NonceUsed));
            }
        }
        self.unindex(account);
        if let Some(queue) = self.accounts.get_mut(account) {
            queue.base = base;
        }
        self.index(account);
        dropped
    }

    /// Removing a ready transaction leaves those after it waiting: drops an account's highest
    /// waiting nonces past its budget.
    fn trim_account(&mut self, account: &AccountId) -> Vec<(Hash, DropReason)> {
        let excess: Vec<u64> = match self.accounts.get(account) {
            Some(queue) => {
                let waiting: Vec<u64> = queue
                    .txs
                    .range(queue.ready_end..)
                    .map(|(n, _)| *n)
                    .collect();
                let keep = self.limits.max_waiting_per_account;
                waiting.into_iter().skip(keep).collect()
            }
            None => return Vec::new(),
        };
        excess
            .into_iter()
            .filter_map(|nonce| self.take(account, nonce))
            .map(|pending| (pending.hash, DropReason::Evicted))
            .collect()
    }

    /// After the account's finalized state changed: drops its pending transactions from the
    /// first whose fee (with those before it) its free balance `free` no longer covers.
    fn drop_unpayable(&mut self, account: &AccountId, free: Balance) -> Vec<(Hash, DropReason)> {
        let Some(queue) = self.accounts.get(account) else {
            return Vec::new();
        };
        let mut total = Balance::ZERO;
        let mut from = None;
        for (nonce, pending) in queue.txs.range(queue.base..) {
            match total.checked_add(pending.tx.tx.fee) {
                Some(sum) if sum <= free => total = sum,
                _ => {
                    from = Some(*nonce);
                    break;
                }
            }
        }
        let Some(from) = from else {
            return Vec::new();
        };
        let unpayable: Vec<u64> = queue.txs.range(from..).map(|(n, _)| *n).collect();
        unpayable
            .into_iter()
            .filter_map(|nonce| self.take(account, nonce))
            .map(|pending| (pending.hash, DropReason::CannotPay))
            .collect()
    }

    /// Up to `max` transactions for a block, highest priority first (oldest first among
    /// equals) but each account's in nonce order, starting at the nonce `next_nonce` gives for
    /// the account (its nonce in the state the block builds on). Accounts whose next
    /// transaction is missing are skipped.
    pub fn select(
        &self,
        max: usize,
        max_bytes: usize,
        mut next_nonce: impl FnMut(&AccountId) -> u64,
    ) -> Vec<SignedTransaction> {
        let mut heap = BinaryHeap::new();
        for (account, queue) in &self.accounts {
            if queue.ready_end == queue.base {
                // Nothing it holds can execute on any state the pool has seen.
                continue;
            }
            let nonce = next_nonce(account);
            if let Some(pending) = queue.txs.get(&nonce) {
                heap.push((pending.priority, Reverse(pending.arrival), *account, nonce));
            }
        }
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        while let Some((_, _, account, nonce)) = heap.pop() {
            if chosen.len() >= max {
                break;
            }
            let Some(queue) = self.accounts.get(&account) else {
                continue;
            };
            let Some(pending) = queue.txs.get(&nonce) else {
                continue;
            };
            if bytes.saturating_add(pending.size) > max_bytes {
                continue;
            }
            bytes = bytes.saturating_add(pending.size);
            chosen.push(pending.tx.clone());
            let following = nonce.saturating_add(1);
            if let Some(next) = queue.txs.get(&following) {
                heap.push((next.priority, Reverse(next.arrival), account, following));
            }
        }
        chosen
    }

    /// The nonce `account`'s next transaction should use: `state_nonce` (its next nonce in the
    /// finalized state), moved past each pending transaction that continues the run without a
    /// gap. A transaction waiting behind a gap does not count: the gap must be filled first.
    pub fn next_nonce(&self, account: &AccountId, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.accounts.get(account) {
            for &nonce in queue.txs.range(state_nonce..).map(|(nonce, _)| nonce) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// Removes the transaction `hash`, if pending.
    fn remove(&mut self, hash: &Hash) -> Option<SignedTransaction> {
        let (account, nonce) = *self.by_hash.get(hash)?;
        self.take(&account, nonce).map(|pending| pending.tx)
    }

    /// Removing a ready transaction leaves those after it waiting: evicts the lowest-ranked
    /// waiting transactions while there are more than the pool keeps.
    fn trim_waiting(&mut self) -> Vec<(Hash, DropReason)> {
        let mut dropped = Vec::new();
        while self.waiting.len() > self.limits.max_waiting {
            let Some(lowest) = self.waiting.first().copied() else {
                break;
            };
            match self.take(&lowest.account, lowest.nonce) {
                Some(pending) => dropped.push((pending.hash, DropReason::Evicted)),
                None => {
                    self.waiting.remove(&lowest);
                }
            }
        }
        dropped
    }

    /// Counts a proposer's failure to include each of `hashes` (it no longer passed the chain's
    /// checks on the state the block built on); drops those that failed
    /// [`MempoolLimits::max_inclusion_failures`] times.
    pub fn failed_inclusion(&mut self, hashes: &[Hash]) -> Vec<(Hash, DropReason)> {
        let mut dropped = Vec::new();
        for hash in hashes {
            let Some((account, nonce)) = self.by_hash.get(hash).copied() else {
                continue;
            };
            let Some(pending) = self
                .accounts
                .get_mut(&account)
                .and_then(|queue| queue.txs.get_mut(&nonce))
            else {
                continue;
            };
            pending.failures = pending.failures.saturating_add(1);
            if pending.failures >= self.limits.max_inclusion_failures
                && self.take(&account, nonce).is_some()
            {
                dropped.push((*hash, DropReason::NotIncludable));
                dropped.extend(self.trim_account(&account));
            }
        }
        dropped.extend(self.trim_waiting());
        dropped
    }

    /// After a block is finalized: for each account it touched (`state_of` reads its next
    /// nonce and free balance in the finalized state), drops the transactions whose nonce it
    /// used and those it can no longer pay for; then drops what expired before `next_height`.
    /// Returns what was dropped and why.
    pub fn prune(
        &mut self,
        accounts: impl IntoIterator<Item = AccountId>,
        mut state_of: impl FnMut(&AccountId) -> (u64, Balance),
        next_height: u64,
    ) -> Vec<(Hash, DropReason)> {
        let mut dropped = Vec::new();
        for account in accounts {
            let (base, free) = state_of(&account);
            dropped.extend(self.rebase(&account, base));
            dropped.extend(self.drop_unpayable(&account, free));
        }
        while let Some(&(expires_at, hash)) = self.by_expiry.first() {
            if expires_at >= next_height {
                break;
            }
            let account = self.by_hash.get(&hash).map(|(account, _)| *account);
            if self.remove(&hash).is_some() {
                dropped.push((hash, DropReason::Expired));
                if let Some(account) = account {
                    dropped.extend(self.trim_account(&account));
                }
            } else {
                self.by_expiry.remove(&(expires_at, hash));
            }
        }
        dropped.extend(self.trim_waiting());
        dropped
    }
}

#[cfg(test)]
impl Mempool {
    /// Panics unless every index agrees with the queues and every limit holds.
    pub(crate) fn assert_consistent(&self) {
        let mut tails = BTreeSet::new();
        let mut waiting = BTreeSet::new();
        let mut bytes = 0;
        let mut count = 0;
        for (account, queue) in &self.accounts {
            assert!(!queue.txs.is_empty(), "empty queue kept");
            assert!(queue.txs.keys().all(|nonce| *nonce >= queue.base));
            let mut end = queue.base;
            while queue.txs.contains_key(&end) {
                end += 1;
            }
            assert_eq!(queue.ready_end, end);
            assert!(queue.waiting() <= self.limits.max_waiting_per_account);
            for (nonce, pending) in &queue.txs {
                count += 1;
                bytes += pending.size;
                assert_eq!(self.by_hash.get(&pending.hash), Some(&(*account, *nonce)));
                assert!(
                    self.by_expiry
                        .contains(&(pending.tx.tx.expires_at, pending.hash))
                );
                if *nonce >= end {
                    waiting.insert(Rank::of(*account, *nonce, pending));
                } else if *nonce + 1 == end {
                    tails.insert(Rank::of(*account, *nonce, pending));
                }
            }
        }
        assert_eq!(self.tails, tails);
        assert_eq!(self.waiting, waiting);
        assert_eq!(self.bytes, bytes);
        assert_eq!(self.by_hash.len(), count);
        assert_eq!(self.by_expiry.len(), count);
        assert!(count <= self.limits.max_transactions);
        assert!(self.waiting.len() <= self.limits.max_waiting);
        assert!(bytes <= self.limits.max_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_runtime::Genesis;
    use wetee_runtime::state::MemoryState;
    use wetee_types::balance::UNIT;
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
        pool.admit(
            &world.runtime,
            &world.state,
            &NEXT,
            tx,
            SignatureCheck::Verify,
        )
        .map(|admitted| admitted.hash)
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
        // An hour of the test chain's blocks.
        let max_ahead = 3_600_000 / Params::dev().target_block_time_ms;
        let horizon = NEXT.height + max_ahead;
        assert_eq!(
            admit(
                &mut pool,
                &world,
                transfer(&world, &world.alice, 2, horizon + 1)
            ),
            Err(MempoolError::ExpiresTooFarAhead {
                expires_at: horizon + 1,
                height: NEXT.height,
                max_ahead,
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
                .contains(&format!("sign it with an expiry within {max_ahead} blocks")))
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

    fn fund(world: &mut World, seed: u8) -> Keypair {
        let key = Keypair::from_seed(KeyScheme::Sr25519, [seed; 32]);
        let mut account = wetee_runtime::storage::account(&world.state, &key.account_id()).unwrap();
        account.free = Balance(wetee_types::balance::UNIT);
        wetee_runtime::storage::put_account(&mut world.state, &key.account_id(), &account);
        key
    }

    /// A transfer paying `tip` above its minimum fee.
    fn tipped(world: &World, from: &Keypair, nonce: u64, tip: u128) -> SignedTransaction {
        let tx = transfer(world, from, nonce, 100).tx;
        paying(world, from, tx, tip)
    }

    /// `tx` signed by `from`, paying `tip` above its minimum fee.
    fn paying(world: &World, from: &Keypair, mut tx: Transaction, tip: u128) -> SignedTransaction {
        tx.fee = Balance::ZERO;
        let minimum = world
            .runtime
            .fee_quote(
                &world.state,
                &NEXT,
                &tx.clone().sign(from, &world.genesis_hash),
            )
            .unwrap()
            .minimum_fee;
        tx.fee = Balance(minimum.0 + tip);
        tx.sign(from, &world.genesis_hash)
    }

    fn admit_all(
        pool: &mut Mempool,
        world: &World,
        tx: SignedTransaction,
    ) -> Result<Admitted, MempoolError> {
        let admitted = pool.admit(
            &world.runtime,
            &world.state,
            &NEXT,
            tx,
            SignatureCheck::Verify,
        );
        pool.assert_consistent();
        admitted
    }

    #[test]
    fn gapped_transactions_keep_to_their_budget_and_give_way_to_executable_ones() {
        let mut world = world();
        let limits = MempoolLimits {
            max_transactions: 10,
            max_waiting: 8,
            max_waiting_per_account: 4,
            ..MempoolLimits::default()
        };
        let mut pool = Mempool::new(limits);
        let attackers: Vec<Keypair> = (10..13).map(|seed| fund(&mut world, seed)).collect();
        // Each attacker skips nonce 0: nothing it sends can execute.
        for attacker in &attackers[..2] {
            for nonce in 1..=4 {
                admit_all(&mut pool, &world, tipped(&world, attacker, nonce, 0)).unwrap();
            }
            assert_eq!(
                admit_all(&mut pool, &world, tipped(&world, attacker, 5, 0)),
                Err(MempoolError::TooManyWaiting {
                    waiting: 4,
                    missing: 0
                })
            );
        }
        assert_eq!(pool.waiting(), 8);
        let more = tipped(&world, &attackers[0], 7, 0);
        assert_eq!(
            pool.quick_refusal(&more.hash(), &more),
            Some(MempoolError::TooManyWaiting {
                waiting: 4,
                missing: 0
            })
        );
        let gap_filler = tipped(&world, &attackers[0], 0, 0);
        assert_eq!(pool.quick_refusal(&gap_filler.hash(), &gap_filler), None);
        // The waiting budget is full of equals: a third gapped sender must outbid them.
        let refused = admit_all(&mut pool, &world, tipped(&world, &attackers[2], 1, 0));
        let Err(MempoolError::WaitingFull {
            missing: 0,
            outbid_with,
        }) = refused
        else {
            panic!("{refused:?}")
        };
        let outbidding = tipped(&world, &attackers[2], 1, 0);
        let mut outbidding = outbidding.tx;
        outbidding.fee = outbid_with;
        let admitted = admit_all(
            &mut pool,
            &world,
            outbidding.sign(&attackers[2], &world.genesis_hash),
        )
        .unwrap();
        assert_eq!(admitted.dropped.len(), 1);
        assert_eq!(admitted.dropped[0].1, DropReason::Evicted);
        assert_eq!(pool.waiting(), 8);

        // Honest transactions that can execute fill the pool, then push gapped ones out.
        for nonce in 0..4 {
            let admitted =
                admit_all(&mut pool, &world, tipped(&world, &world.alice, nonce, 0)).unwrap();
            assert_eq!(admitted.dropped.len(), usize::from(nonce >= 2), "{nonce}");
        }
        assert_eq!(pool.len(), 10);
        assert_eq!(pool.waiting(), 6);
        // Filling an attacker's gap makes its transactions ready: they pay like anyone's.
        admit_all(&mut pool, &world, tipped(&world, &attackers[0], 0, 0)).unwrap();
        assert!(pool.select(100, usize::MAX, |_| 0).len() >= 6);
    }

    #[test]
    fn a_pool_full_of_cheap_transactions_is_outbid_not_locked() {
        let mut world = world();
        let mut pool = Mempool::new(MempoolLimits {
            max_transactions: 3,
            ..MempoolLimits::default()
        });
        let flooders: Vec<Keypair> = (20..23).map(|seed| fund(&mut world, seed)).collect();
        let mut flood = Vec::new();
        for flooder in &flooders {
            let tx = tipped(&world, flooder, 0, 0);
            flood.push(tx.hash());
            admit_all(&mut pool, &world, tx).unwrap();
        }
        let honest = fund(&mut world, 30);
        let refused = admit_all(&mut pool, &world, tipped(&world, &honest, 0, 0));
        let Err(MempoolError::PoolFull { outbid_with }) = refused else {
            panic!("{refused:?}")
        };
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("offer a fee of at least")
        );
        let mut short = tipped(&world, &honest, 0, 0).tx;
        short.fee = Balance(outbid_with.0 - 1);
        assert!(matches!(
            admit_all(&mut pool, &world, short.sign(&honest, &world.genesis_hash)),
            Err(MempoolError::PoolFull { .. })
        ));
        let mut enough = tipped(&world, &honest, 0, 0).tx;
        enough.fee = outbid_with;
        let admitted =
            admit_all(&mut pool, &world, enough.sign(&honest, &world.genesis_hash)).unwrap();
        // The newest of the cheapest goes; the oldest keep their place.
        assert_eq!(admitted.dropped, vec![(flood[2], DropReason::Evicted)]);
        assert_eq!(pool.len(), 3);
        // And the higher fee goes first into a block.
        let block = pool.select(10, usize::MAX, |_| 0);
        assert_eq!(block[0].hash(), admitted.hash);
    }

    #[test]
    fn a_pool_full_of_tipped_transfers_still_takes_a_workers_report_and_offers_it_first() {
        let mut world = world();
        let operator = fund(&mut world, 40);
        let mut worker: wetee_types::records::Worker = arbitrary::Unstructured::new(&[7; 4096])
            .arbitrary()
            .unwrap();
        worker.id = wetee_types::WorkerId(1);
        worker.operator = operator.account_id();
        worker.workloads = 0;
        worker.last_report_epoch = None;
        // The key the worker's TEE holds, which signs its reports.
        let identity = Keypair::from_seed(KeyScheme::Ed25519, [9; 32]);
        worker.keys.identity = identity.account_id().0;
        wetee_runtime::storage::put_worker(&mut world.state, &worker);
        // One block an epoch: the next block is in epoch 1, when epoch 0 can be reported.
        wetee_runtime::storage::put(
            &mut world.state,
            wetee_runtime::storage::keys::CHAIN,
            &ChainConfig { epoch_length: 1 },
        );
        let report = |world: &World, signer: &Keypair, nonce: u64| {
            let mut tx = tipped(world, signer, nonce, 0).tx;
            let report = wetee_types::report::WorkReport {
                worker: worker.id,
                epoch: 0,
                apps: Default::default(),
                runs: Default::default(),
                evidence: None,
            };
            let wetee_types::Signature::Ed25519(signature) =
                identity.sign(&report.signing_payload(&world.genesis_hash))
            else {
                unreachable!("an ed25519 key")
            };
            tx.call = Call::Workers(wetee_types::transaction::WorkersCall::SubmitWorkReport {
                report: wetee_types::report::SignedWorkReport { report, signature },
            });
            paying(world, signer, tx, 0)
        };
        let stranger = fund(&mut world, 41);
        let rich = fund(&mut world, 42);
        let flooders: Vec<Keypair> = (20..23).map(|seed| fund(&mut world, seed)).collect();
        let mut pool = Mempool::new(MempoolLimits {
            max_transactions: 3,
            ..MempoolLimits::default()
        });
        for flooder in &flooders {
            admit_all(&mut pool, &world, tipped(&world, flooder, 0, 1_000_000)).unwrap();
        }
        // Anyone else's report is a normal transaction paying the minimum: the flood outranks it.
        assert!(matches!(
            admit_all(&mut pool, &world, report(&world, &stranger, 0)),
            Err(MempoolError::PoolFull { .. })
        ));
        // The operator's, at the minimum fee, displaces a tipped transfer and goes first.
        let by_operator = report(&world, &operator, 0);
        let admitted = admit_all(&mut pool, &world, by_operator.clone()).unwrap();
        assert_eq!(admitted.dropped.len(), 1);
        assert_eq!(pool.select(10, usize::MAX, |_| 0)[0], by_operator);
        // And no tip displaces it.
        assert!(matches!(
            admit_all(&mut pool, &world, tipped(&world, &rich, 0, 1_000_000_000)),
            Ok(Admitted { dropped, .. }) if !dropped.iter().any(|(hash, _)| *hash == by_operator.hash())
        ));
        assert!(pool.contains(&by_operator.hash()));
        // A second report from the same account ranks as a normal transaction.
        assert!(matches!(
            admit_all(&mut pool, &world, report(&world, &operator, 1)),
            Err(MempoolError::PoolFull { .. })
        ));
    }

    #[test]
    fn replacement_takes_a_higher_fee_and_clients_paying_the_usual_fee_never_evict_each_other() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let first = tipped(&world, &world.alice, 0, 0);
        admit_all(&mut pool, &world, first.clone()).unwrap();
        // A second client of the same account, paying the minimum for another call.
        let mut other = first.tx.clone();
        other.call = Call::Balances(BalancesCall::Transfer {
            to: world.bob.account_id(),
            amount: Balance(12_345_678_901),
        });
        let refused = admit_all(
            &mut pool,
            &world,
            other.clone().sign(&world.alice, &world.genesis_hash),
        );
        let Err(MempoolError::NonceTaken {
            nonce: 0,
            existing,
            replace_with,
            ..
        }) = refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!(existing, first.hash());
        let mut short = first.tx.clone();
        short.fee = Balance(replace_with.0 - 1);
        assert!(matches!(
            admit_all(
                &mut pool,
                &world,
                short.sign(&world.alice, &world.genesis_hash)
            ),
            Err(MempoolError::NonceTaken { .. })
        ));
        let mut bumped = first.tx.clone();
        bumped.fee = replace_with;
        let bumped = bumped.sign(&world.alice, &world.genesis_hash);
        let admitted = admit_all(&mut pool, &world, bumped.clone()).unwrap();
        assert_eq!(admitted.dropped, vec![(first.hash(), DropReason::Replaced)]);
        assert_eq!(pool.len(), 1);
        // Replacing it again needs more than the new one offers.
        let mut same = other.clone();
        same.fee = bumped.tx.fee;
        let refused = admit_all(
            &mut pool,
            &world,
            same.sign(&world.alice, &world.genesis_hash),
        );
        assert!(
            matches!(refused, Err(MempoolError::NonceTaken { existing, .. }) if existing == bumped.hash()),
            "{refused:?}"
        );
    }

    #[test]
    fn blocks_take_higher_fees_first_but_each_account_in_nonce_order() {
        let mut world = world();
        let carol = fund(&mut world, 40);
        let mut pool = Mempool::new(MempoolLimits::default());
        let alice_0 = tipped(&world, &world.alice, 0, 0);
        let alice_1 = tipped(&world, &world.alice, 1, 1_000_000_000);
        let carol_0 = tipped(&world, &carol, 0, 1_000_000);
        for tx in [&alice_1, &alice_0, &carol_0] {
            admit_all(&mut pool, &world, tx.clone()).unwrap();
        }
        assert_eq!(
            pool.select(10, usize::MAX, |_| 0),
            vec![carol_0, alice_0, alice_1]
        );
    }

    #[test]
    fn a_transaction_proposers_cannot_include_is_dropped_after_three_tries() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let tx = tipped(&world, &world.alice, 0, 0);
        let next = tipped(&world, &world.alice, 1, 0);
        admit_all(&mut pool, &world, tx.clone()).unwrap();
        admit_all(&mut pool, &world, next.clone()).unwrap();
        assert!(pool.failed_inclusion(&[tx.hash()]).is_empty());
        assert!(
            pool.failed_inclusion(&[tx.hash(), Hash::of(b"unknown")])
                .is_empty()
        );
        assert_eq!(
            pool.failed_inclusion(&[tx.hash()]),
            vec![(tx.hash(), DropReason::NotIncludable)]
        );
        pool.assert_consistent();
        // Its successor now waits behind the gap it left.
        assert_eq!(pool.waiting(), 1);
        assert!(pool.contains(&next.hash()));
    }

    #[test]
    fn transactions_their_signer_can_no_longer_pay_for_are_dropped_when_a_block_is_final() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        // Each pays UNIT / 100; after a block, alice has just enough for two.
        let txs: Vec<_> = (0..4)
            .map(|n| transfer(&world, &world.alice, n, 100))
            .collect();
        for tx in &txs {
            admit(&mut pool, &world, tx.clone()).unwrap();
        }
        let dropped = pool.prune([world.alice.account_id()], |_| (1, Balance(UNIT / 50)), 2);
        pool.assert_consistent();
        assert_eq!(
            dropped,
            vec![
                (txs[0].hash(), DropReason::NonceUsed),
                (txs[3].hash(), DropReason::CannotPay)
            ]
        );
        assert_eq!(pool.select(10, usize::MAX, |_| 1), txs[1..3].to_vec());
    }

    #[test]
    fn a_dropped_ready_transaction_leaves_at_most_the_waiting_budget_behind_it() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits {
            max_waiting_per_account: 2,
            ..MempoolLimits::default()
        });
        let txs: Vec<_> = (0..6).map(|n| tipped(&world, &world.alice, n, 0)).collect();
        for tx in &txs {
            admit_all(&mut pool, &world, tx.clone()).unwrap();
        }
        for _ in 0..3 {
            pool.failed_inclusion(&[txs[1].hash()]);
        }
        pool.assert_consistent();
        // 0 stays ready; 2 and 3 wait behind the gap; 4 and 5 are over the budget.
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.waiting(), 2);
    }

    #[test]
    fn filling_a_gap_makes_waiting_transactions_ready() {
        let world = world();
        let mut pool = Mempool::new(MempoolLimits::default());
        let txs: Vec<_> = (0..3).map(|n| tipped(&world, &world.alice, n, 0)).collect();
        admit_all(&mut pool, &world, txs[2].clone()).unwrap();
        admit_all(&mut pool, &world, txs[1].clone()).unwrap();
        assert_eq!(pool.waiting(), 2);
        assert!(pool.select(10, usize::MAX, |_| 0).is_empty());
        admit_all(&mut pool, &world, txs[0].clone()).unwrap();
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.select(10, usize::MAX, |_| 0), txs);
        // Once nonce 0 is final, the rest stay ready.
        pool.prune([world.alice.account_id()], |_| (1, Balance(UNIT)), 2);
        pool.assert_consistent();
        assert_eq!(pool.select(10, usize::MAX, |_| 1), txs[1..].to_vec());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any sequence of admissions, removals, failures and pruning leaves the pool within
        /// its limits and its indexes in agreement, and never panics.
        #[test]
        fn any_sequence_of_operations_keeps_the_pool_consistent(
            ops in proptest::collection::vec(
                (0u8..5, 0u8..4, 0u64..12, 0u128..4, 0u64..3),
                1..120,
            )
        ) {
            let mut world = world();
            let keys: Vec<Keypair> = (50..54).map(|seed| fund(&mut world, seed)).collect();
            let mut pool = Mempool::new(MempoolLimits {
                max_transactions: 12,
                max_bytes: 12 * 400,
                max_per_account: 6,
                max_nonce_gap: 8,
                max_waiting: 4,
                max_waiting_per_account: 2,
                ..MempoolLimits::default()
            });
            let mut seen = Vec::new();
            for (op, who, nonce, tip, extra) in ops {
                let key = &keys[usize::from(who)];
                match op {
                    0..=2 => {
                        let tx = tipped(&world, key, nonce, tip * 1_000_000 * u128::from(op));
                        seen.push(tx.hash());
                        let _ = admit_all(&mut pool, &world, tx);
                    }
                    3 => {
                        if let Some(hash) = seen.get(nonce as usize) {
                            pool.failed_inclusion(&[*hash]);
                        }
                    }
                    _ => {
                        let free = Balance(u128::from(extra) * UNIT / 100);
                        pool.prune([key.account_id()], |_| (extra, free), 1 + extra * 40);
                    }
                }
                pool.assert_consistent();
            }
        }
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
        assert!(matches!(
            admit(&mut pool, &world, transfer(&world, &dave, 0, 100)),
            Err(MempoolError::PoolFull { .. })
        ));
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
        let dropped = pool.prune([world.alice.account_id()], |_| (1, Balance(UNIT)), 6);
        assert_eq!(
            dropped,
            vec![
                (used.hash(), DropReason::NonceUsed),
                (expiring.hash(), DropReason::Expired)
            ]
        );
        assert!(pool.contains(&kept.hash()));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), wetee_types::codec::encode(&kept).len());
    }
}
