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

use std::num::NonZeroU64;
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

/// How the store lays its history out on disk. Pruning removes whole sections and blobs, so a
/// section is about the most history kept beyond what the live state needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLayout {
    /// Operations in one section of the operation log.
    pub operations_per_section: u64,
    /// Nodes in one blob of the Merkle journal.
    pub merkle_nodes_per_blob: u64,
}

impl Default for StoreLayout {
    /// 65,536 operations (a few MiB) a section and 2^20 nodes (32 MiB) a blob: few files, and
    /// an upkeep every few thousand blocks on a busy chain.
    fn default() -> StoreLayout {
        StoreLayout {
            operations_per_section: 1 << 16,
            merkle_nodes_per_blob: 1 << 20,
        }
    }
}

fn config(prefix: &str, layout: StoreLayout) -> VariableConfig<EightCap, OperationCfg, Sequential> {
    let page_cache = CacheRef::new(page_size(BLOB_PAGE_SIZE), NZUsize!(4096));
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: format!("{prefix}-state-mmr-journal"),
            metadata_partition: format!("{prefix}-state-mmr-metadata"),
            items_per_blob: NonZeroU64::new(layout.merkle_nodes_per_blob).unwrap_or(NZU64!(1)),
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
            strategy: Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: JournalConfig {
            partition: format!("{prefix}-state-log"),
            items_per_section: NonZeroU64::new(layout.operations_per_section).unwrap_or(NZU64!(1)),
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
    layout: StoreLayout,
    replayed_at_open: u64,
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
        StateStore::open_with_layout(context, prefix, StoreLayout::default()).await
    }

    /// [`StateStore::open`] with a layout of its own (small sections show pruning on a short
    /// history). A store must always be opened with the layout it was created with.
    pub async fn open_with_layout(
        context: E,
        prefix: &str,
        layout: StoreLayout,
    ) -> Result<StateStore<E>, StoreError> {
        let db = Db_::init(context, config(prefix, layout), None)
            .await
            .map_err(db_error)?;
        // Opening replays the retained operations to rebuild the index of live keys.
        let replayed_at_open = retained(&db);
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
            layout,
            replayed_at_open,
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

    /// The operations the store replayed when it was opened: the cost of a restart, bounded by
    /// the live state plus a section of history however long the chain has run.
    pub fn replayed_at_open(&self) -> u64 {
        self.replayed_at_open
    }

    /// The operations kept on disk now.
    pub fn retained_operations(&self) -> u64 {
        self.db.as_ref().map(retained).unwrap_or_default()
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
        // The block is durable and recorded as committed before the upkeep: an upkeep that
        // fails stops the node (the store is unusable), and a restart finds this block.
        self.committed = Some(committed);
        self.db = Some(upkeep(db, self.layout).await?);
        Ok(committed)
    }
}

fn retained<E: commonware_storage::Context + Spawner>(db: &Db_<E>) -> u64 {
    let bounds = db.bounds();
    (*bounds.end).saturating_sub(*bounds.start)
}

/// Once a whole section of history lies below the inactivity floor (operations no live key
/// needs), syncs the store, which records how far the activity bitmap is settled so that a
/// restart need not merkleize it again, and prunes that history, so disk and restart work stay
/// bounded by the live state. Most commits only compare two numbers; the rare upkeep costs
/// one metadata write and the removal of whole files.
async fn upkeep<E: commonware_storage::Context + Spawner>(
    db: Db_<E>,
    layout: StoreLayout,
) -> Result<Db_<E>, StoreError> {
    let boundary = db.sync_boundary();
    if (*boundary).saturating_sub(*db.bounds().start) < layout.operations_per_section {
        return Ok(db);
    }
    db.sync()
        .await
        .map_err(db_error)?
        .prune(boundary)
        .await
        .map_err(db_error)
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

    /// Runs `work` on a Tokio runtime whose storage is `dir`.
    fn on_disk<F, R>(
        dir: &std::path::Path,
        work: impl FnOnce(commonware_runtime::tokio::Context) -> F,
    ) -> R
    where
        F: std::future::Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        let config = commonware_runtime::tokio::Config::new().with_storage_directory(dir);
        commonware_runtime::tokio::Runner::new(config).start(work)
    }

    /// The bytes of every file under `dir`.
    fn disk_bytes(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    disk_bytes(&entry.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }

    #[test]
    fn restart_work_and_disk_stay_bounded_by_the_live_state() {
        // 64 live keys, each rewritten by every block: the history grows by 64 operations a
        // block while the live state stays the same. Small sections show on a short history
        // what the default layout does on a long one. On disk, as a node keeps it.
        const LIVE: u64 = 64;
        let layout = StoreLayout {
            operations_per_section: 256,
            merkle_nodes_per_blob: 1024,
        };
        let block = |height: u64| -> Changes {
            (0..LIVE)
                .map(|key| {
                    let value = format!("{height}:{key}").into_bytes();
                    (format!("acc/{key:04}").into_bytes(), Some(value))
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut height = 0;
        // (operations written so far, replayed at the restart, bytes on disk)
        let mut measured = Vec::new();
        for target in [50, 500, 1_500] {
            height = on_disk(dir.path(), move |ctx| async move {
                let mut store = StateStore::open_with_layout(ctx.child("store"), "h", layout)
                    .await
                    .unwrap();
                while height < target {
                    height += 1;
                    commit_block(&mut store, &block(height), height).await;
                }
                height
            });
            let (replayed, history) = on_disk(dir.path(), move |ctx| async move {
                let store = StateStore::open_with_layout(ctx.child("store"), "h", layout)
                    .await
                    .unwrap();
                // The live state comes back whole.
                let memory = store.memory();
                let memory = memory.read().unwrap();
                assert_eq!(memory.len(), LIVE as usize);
                assert_eq!(
                    memory.get(b"acc/0007").unwrap(),
                    format!("{target}:7").as_bytes()
                );
                (store.replayed_at_open(), *store.db().unwrap().bounds().end)
            });
            measured.push((history, replayed, disk_bytes(dir.path())));
        }
        let (short_history, short_replay, short_disk) = measured[0];
        let (long_history, long_replay, long_disk) = measured[2];
        assert!(long_history > 25 * short_history, "{measured:?}");
        // The work at start and the disk do not follow the history: they stay within the live
        // state plus a section or two of history, however long the chain ran. (Only the
        // Merkle tree's metadata grows, by about 40 bytes a pruning: Commonware keeps the
        // pinned nodes of every pruning boundary it passed.)
        let bound = 4 * LIVE + 3 * layout.operations_per_section;
        for (_, replayed, _) in &measured {
            assert!(*replayed <= bound, "{measured:?}");
        }
        assert!(long_replay <= short_replay.max(bound), "{measured:?}");
        assert!(long_disk < 2 * short_disk, "{measured:?}");
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
