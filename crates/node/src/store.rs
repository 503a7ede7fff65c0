//! Persistent, authenticated state: Commonware's QMDB (`current::ordered::variable`) behind a
//! small interface of ours, so an upgrade of Commonware touches this file only.
//!
//! QMDB provides the state root of every block header, proofs of any current value against
//! it, speculative batches (a block executed on top of an unfinalized parent, and competing
//! siblings), and crash-safe commits. Its reads are asynchronous, while the runtime reads state
//! synchronously in the middle of a call; so the finalized state is also held in memory, in
//! key order, for execution and RPC queries, and rebuilt from QMDB at start
//! (docs/decisions/0006-state-store.md).
//!
//! Every commit records the height and parent hash of the block it finalized, inside the same
//! atomic commit, so a restarted node knows exactly which block its state belongs to.

use std::sync::{Arc, RwLock};

use commonware_codec::RangeCfg;
use commonware_cryptography::Sha256;
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::{CacheRef, page_size};
use commonware_runtime::{BLOB_PAGE_SIZE, Spawner};
use commonware_storage::journal::contiguous::variable::Config as JournalConfig;
use commonware_storage::merkle::full::Config as MerkleConfig;
use commonware_storage::qmdb::current::VariableConfig;
use commonware_storage::qmdb::current::ordered::variable::Db;
use commonware_storage::qmdb::floor::Proportional;
use commonware_storage::translator::EightCap;
use commonware_utils::{NZU64, NZUsize};
use futures::StreamExt as _;
use wetee_runtime::{Changes, MemoryState, State as _};
use wetee_types::Hash;

use wetee_light::EntryProof;
use wetee_light::state::{CHUNK, Family};
pub use wetee_light::state::{MAX_KEY_BYTES, MAX_VALUE_BYTES, db_key};

type Db_<E> = Db<Family, E, Vec<u8>, Vec<u8>, Sha256, EightCap, CHUNK, Sequential>;
type Update = commonware_storage::qmdb::any::ordered::variable::Update<Vec<u8>, Vec<u8>>;

/// A block's state changes merkleized on top of its parent's: its root is the block's state
/// root. Kept until the block is finalized (then committed) or abandoned (then dropped).
pub type Speculative = Arc<
    commonware_storage::qmdb::current::batch::MerkleizedBatch<
        Family,
        commonware_cryptography::sha256::Digest,
        Update,
        CHUNK,
        Sequential,
    >,
>;

/// What went wrong in the store. Any of these means the node cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// QMDB failed (I/O, corruption, or a batch built on a state that is gone).
    #[error("state database: {0}")]
    Database(String),
    /// The commit record is unreadable.
    #[error("state database: bad commit record: {0}")]
    Record(String),
}

fn db_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

/// Decoding bounds of one stored operation: (key length, value length).
type OperationCfg = ((RangeCfg<usize>, ()), (RangeCfg<usize>, ()));

/// A state key's value (or none) and the proof of it against the committed root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenValue {
    /// The runtime's key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// The proof.
    pub proof: EntryProof,
}

/// Which block the committed state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The block's height.
    pub height: u64,
    /// The block's parent hash.
    pub parent: Hash,
    /// The state root after it.
    pub root: Hash,
}

fn encode_record(height: u64, parent: &Hash) -> Vec<u8> {
    let mut record = height.to_be_bytes().to_vec();
    record.extend_from_slice(&parent.0);
    record
}

fn decode_record(record: &[u8]) -> Result<(u64, Hash), StoreError> {
    let height = record
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Record(format!("{} bytes", record.len())))?;
    let parent = record
        .get(8..40)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Hash)
        .ok_or_else(|| StoreError::Record(format!("{} bytes", record.len())))?;
    Ok((height, parent))
}

fn config(prefix: &str) -> VariableConfig<EightCap, OperationCfg, Sequential> {
    let page_cache = CacheRef::new(page_size(BLOB_PAGE_SIZE), NZUsize!(4096));
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: format!("{prefix}-state-mmr-journal"),
            metadata_partition: format!("{prefix}-state-mmr-metadata"),
            items_per_blob: NZU64!(1 << 20),
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
            strategy: Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: JournalConfig {
            partition: format!("{prefix}-state-log"),
            items_per_section: NZU64!(1 << 16),
            compression: None,
            codec_config: (
                ((0..=MAX_KEY_BYTES).into(), ()),
                ((0..=MAX_VALUE_BYTES).into(), ()),
            ),
            page_cache,
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
        },
        grafted_metadata_partition: format!("{prefix}-state-grafted-metadata"),
        translator: EightCap,
        init_cache: Some(NZUsize!(1 << 16)),
        init_buffer: NZUsize!(1 << 21),
        init_concurrency: (),
    }
}

/// The state store.
pub struct StateStore<E: commonware_storage::Context + Spawner> {
    db: Option<Db_<E>>,
    memory: Arc<RwLock<MemoryState>>,
    committed: Option<Committed>,
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for StateStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("committed", &self.committed)
            .finish()
    }
}

fn to_hash(digest: commonware_cryptography::sha256::Digest) -> Hash {
    Hash(digest.0)
}

impl<E: commonware_storage::Context + Spawner> StateStore<E> {
    /// Opens (or creates) the store in the partitions named after `prefix`, and loads the
    /// committed state into memory.
    pub async fn open(context: E, prefix: &str) -> Result<StateStore<E>, StoreError> {
        let db = Db_::init(context, config(prefix), None)
            .await
            .map_err(db_error)?;
        let committed = match db.get_metadata().await.map_err(db_error)? {
            Some(record) => {
                let (height, parent) = decode_record(&record)?;
                Some(Committed {
                    height,
                    parent,
                    root: to_hash(db.root()),
                })
            }
            None => None,
        };
        let mut memory = MemoryState::new();
        {
            let mut entries = Box::pin(db.stream_range(..));
            while let Some(entry) = entries.next().await {
                let (key, value) = entry.map_err(db_error)?;
                memory.put(key.get(8..).unwrap_or_default(), &value);
            }
        }
        Ok(StateStore {
            db: Some(db),
            memory: Arc::new(RwLock::new(memory)),
            committed,
        })
    }

    fn db(&self) -> Result<&Db_<E>, StoreError> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::Database("a previous commit failed".into()))
    }

    /// Deletes the store's data (used for scratch stores).
    pub async fn destroy(mut self) -> Result<(), StoreError> {
        match self.db.take() {
            Some(db) => db.destroy().await.map_err(db_error),
            None => Ok(()),
        }
    }

    /// The block the committed state belongs to; `None` before genesis.
    pub fn committed(&self) -> Option<Committed> {
        self.committed
    }

    /// The committed state, in memory. Readers must not hold the lock across an await.
    pub fn memory(&self) -> Arc<RwLock<MemoryState>> {
        Arc::clone(&self.memory)
    }

    /// Each key's current value (or none) with its proof against the committed root. The
    /// caller must keep commits out meanwhile (the node holds the executor's lock), so that
    /// every proof is against [`StateStore::committed`]'s root.
    pub async fn prove(&self, keys: &[Vec<u8>]) -> Result<Vec<ProvenValue>, StoreError> {
        let db = self.db()?;
        let mut proven = Vec::with_capacity(keys.len());
        for key in keys {
            let stored = db_key(key);
            let entry = match db.key_value_proof(stored.clone()).await {
                Ok(proof) => {
                    let value =
                        db.get(&stored).await.map_err(db_error)?.ok_or_else(|| {
                            StoreError::Database("a proven key has no value".into())
                        })?;
                    ProvenValue {
                        key: key.clone(),
                        value: Some(value),
                        proof: EntryProof::Value(proof),
                    }
                }
                Err(commonware_storage::qmdb::Error::KeyNotFound) => ProvenValue {
                    key: key.clone(),
                    value: None,
                    proof: EntryProof::Absent(db.exclusion_proof(&stored).await.map_err(db_error)?),
                },
                Err(error) => return Err(db_error(error)),
            };
            proven.push(entry);
        }
        Ok(proven)
    }

    /// Merkleizes `changes` (the block at `height` with parent `parent`) on top of `base`
    /// (the parent's speculative batch, or the committed state when `None`).
    pub async fn speculate(
        &self,
        base: Option<&Speculative>,
        changes: &Changes,
        height: u64,
        parent: &Hash,
    ) -> Result<(Speculative, Hash), StoreError> {
        let db = self.db()?;
        let mut batch = match base {
            Some(base) => base.new_batch::<Sha256>(),
            None => db.new_batch(),
        };
        for (key, value) in changes {
            batch = batch.write(db_key(key), value.clone());
        }
        let merkleized = batch
            .merkleize(db, Some(encode_record(height, parent)), &mut Proportional)
            .await
            .map_err(db_error)?;
        let root = to_hash(merkleized.root());
        Ok((merkleized, root))
    }

    /// Makes `speculative` (the block at `height` with parent `parent`, whose writes are
    /// `changes`) the committed state, durably, and applies `changes` to memory.
    pub async fn commit(
        &mut self,
        speculative: Speculative,
        changes: &Changes,
        height: u64,
        parent: &Hash,
    ) -> Result<Committed, StoreError> {
        let db = self
            .db
            .take()
            .ok_or_else(|| StoreError::Database("a previous commit failed".into()))?;
        if let Err(error) = db.validate_batch(&speculative) {
            self.db = Some(db);
            return Err(db_error(error));
        }
        let db = db
            .apply_batch(speculative)
            .await
            .map_err(db_error)?
            .commit()
            .await
            .map_err(db_error)?;
        let committed = Committed {
            height,
            parent: *parent,
            root: to_hash(db.root()),
        };
        self.db = Some(db);
        {
            let mut memory = self
                .memory
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (key, value) in changes {
                match value {
                    Some(value) => memory.put(key, value),
                    None => memory.delete(key),
                }
            }
        }
        self.committed = Some(committed);
        Ok(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    use wetee_light::verify_entry;

    fn changes(entries: &[(&str, Option<&str>)]) -> Changes {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn speculative_chains_commit_to_their_roots_and_survive_a_restart() {
        let (expected, checkpoint) =
            deterministic::Runner::default().start_and_recover(|ctx| async move {
                let mut store = StateStore::open(ctx.child("store"), "t").await.unwrap();
                assert_eq!(store.committed(), None);
                let genesis = changes(&[("acc/a", Some("100")), ("acc/b", Some("5"))]);
                let (batch, root0) = store
                    .speculate(None, &genesis, 0, &Hash::default())
                    .await
                    .unwrap();
                store
                    .commit(batch, &genesis, 0, &Hash::default())
                    .await
                    .unwrap();
                assert_eq!(store.committed().unwrap().root, root0);

                // Block 1 and a competing 1', then block 2 on the unfinalized 1.
                let one = changes(&[("acc/a", Some("90")), ("acc/c", Some("10"))]);
                let sibling = changes(&[("acc/a", Some("1"))]);
                let two = changes(&[("acc/b", None)]);
                let parent = Hash::of(b"genesis");
                let (b1, r1) = store.speculate(None, &one, 1, &parent).await.unwrap();
                let (b1x, r1x) = store.speculate(None, &sibling, 1, &parent).await.unwrap();
                assert_ne!(r1, r1x);
                let (b2, r2) = store
                    .speculate(Some(&b1), &two, 2, &Hash::of(b"one"))
                    .await
                    .unwrap();
                // Nothing is visible before commit.
                assert_eq!(store.memory().read().unwrap().get(b"acc/c"), None);
                store.commit(b1, &one, 1, &parent).await.unwrap();
                assert_eq!(store.committed().unwrap().root, r1);
                // The abandoned sibling cannot be committed any more, and the store survives trying.
                assert!(store.commit(b1x, &sibling, 1, &parent).await.is_err());
                store.commit(b2, &two, 2, &Hash::of(b"one")).await.unwrap();
                let committed = store.committed().unwrap();
                assert_eq!(committed.root, r2);
                assert_eq!(committed.height, 2);
                let memory = store.memory().read().unwrap().clone();
                assert_eq!(memory.get(b"acc/a").unwrap(), b"90");
                assert_eq!(memory.get(b"acc/b"), None);
                (committed, memory)
            });
        deterministic::Runner::from(checkpoint).start(|ctx| async move {
            let store = StateStore::open(ctx.child("store"), "t").await.unwrap();
            let (committed, memory) = expected;
            assert_eq!(store.committed(), Some(committed));
            assert_eq!(*store.memory().read().unwrap(), memory);
        });
    }

    #[test]
    fn roots_do_not_depend_on_write_order_or_the_node() {
        deterministic::Runner::default().start(|ctx| async move {
            let one = StateStore::open(ctx.child("one"), "one").await.unwrap();
            let two = StateStore::open(ctx.child("two"), "two").await.unwrap();
            let writes = changes(&[("x", Some("1")), ("y", Some("2")), ("z", None)]);
            let (_, a) = one
                .speculate(None, &writes, 1, &Hash::default())
                .await
                .unwrap();
            let (_, b) = two
                .speculate(None, &writes, 1, &Hash::default())
                .await
                .unwrap();
            assert_eq!(a, b);
            let (_, c) = two
                .speculate(None, &writes, 2, &Hash::default())
                .await
                .unwrap();
            assert_ne!(
                a, c,
                "the commit record (height, parent) is part of the root"
            );
            // Pinned: a Commonware upgrade that changes how roots are computed forks the chain,
            // and must fail here first.
            assert_eq!(
                a.to_string(),
                "0xd850999f1cbf006bfd4f1559e92f2e168a4170c5031143b275ca029241cc5667"
            );
        });
    }

    /// Speculates and commits `changes` as the block at `height` (on a zero parent).
    async fn commit_block<E: commonware_storage::Context + Spawner>(
        store: &mut StateStore<E>,
        changes: &Changes,
        height: u64,
    ) {
        let (batch, _) = store
            .speculate(None, changes, height, &Hash::default())
            .await
            .unwrap();
        store
            .commit(batch, changes, height, &Hash::default())
            .await
            .unwrap();
    }

    #[test]
    fn proofs_verify_against_the_committed_root_and_nothing_else() {
        deterministic::Runner::default().start(|ctx| async move {
            let mut store = StateStore::open(ctx.child("store"), "p").await.unwrap();
            let keys: Vec<Vec<u8>> = [b"acc/a".as_slice(), b"acc/b", b"nothing/here"]
                .iter()
                .map(|k| k.to_vec())
                .collect();
            // An empty state proves every key absent.
            let genesis = changes(&[]);
            commit_block(&mut store, &genesis, 0).await;
            let root = store.committed().unwrap().root;
            for entry in store.prove(&keys).await.unwrap() {
                assert_eq!(entry.value, None);
                verify_entry(&root, &entry.key, None, &entry.proof).unwrap();
            }

            let one = changes(&[("acc/a", Some("100")), ("acc/b", Some("5"))]);
            commit_block(&mut store, &one, 1).await;
            let root = store.committed().unwrap().root;
            let proven = store.prove(&keys).await.unwrap();
            assert_eq!(proven[0].value.as_deref(), Some(b"100".as_slice()));
            assert_eq!(proven[2].value, None);
            for entry in &proven {
                // Through the wire encoding, as a light client receives it.
                let proof = EntryProof::from_bytes(&entry.proof.to_bytes()).unwrap();
                verify_entry(&root, &entry.key, entry.value.as_deref(), &proof).unwrap();
            }
            // Another value, another key, another root, or a claimed absence all fail.
            let a = &proven[0];
            assert!(verify_entry(&root, &a.key, Some(b"101"), &a.proof).is_err());
            assert!(verify_entry(&root, b"acc/b", Some(b"100"), &a.proof).is_err());
            assert!(verify_entry(&Hash::of(b"other"), &a.key, Some(b"100"), &a.proof).is_err());
            assert!(verify_entry(&root, &a.key, None, &a.proof).is_err());
            // An absence proof does not prove another key absent, nor a present one.
            let none = &proven[2];
            assert!(verify_entry(&root, &none.key, Some(b""), &none.proof).is_err());
            assert!(verify_entry(&root, b"acc/a", None, &none.proof).is_err());

            // A proof from before a change does not hold after it.
            let two = changes(&[("acc/a", Some("7"))]);
            commit_block(&mut store, &two, 2).await;
            let new_root = store.committed().unwrap().root;
            assert!(verify_entry(&new_root, &a.key, Some(b"100"), &a.proof).is_err());
        });
    }
}
