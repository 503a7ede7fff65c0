//! What every finalized block did (receipts and events), kept so the RPC can answer for any
//! past block without executing it again.
//!
//! Outcomes are not part of consensus: they are derived from the blocks, stored by height and
//! block hash in an append-only archive, as JSON because only the RPC reads them.

use commonware_codec::RangeCfg;
use commonware_runtime::Spawner;
use commonware_storage::archive::{Archive as _, Identifier, immutable};
use futures::lock::Mutex;
use wetee_runtime::BlockOutcome;
use wetee_types::Hash;

use crate::chain::{Digest, digest};

/// Largest stored outcome: far above what a block's events can reach.
const MAX_OUTCOME_BYTES: usize = 64 << 20;

/// The store failed: the node cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("outcome store: {0}")]
pub struct OutcomeError(String);

type Store<E> = immutable::Archive<E, Digest, Vec<u8>>;

/// The codec configuration of stored outcomes.
pub type Codec = (RangeCfg<usize>, ());

/// Outcomes by block height and hash.
pub struct Outcomes<E: commonware_storage::Context + Spawner> {
    // The archive's writes consume it; `None` only after a failed write.
    archive: Mutex<Option<Store<E>>>,
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Outcomes<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes").finish_non_exhaustive()
    }
}

impl<E: commonware_storage::Context + Spawner> Outcomes<E> {
    /// How outcomes are bounded when read back.
    pub fn codec_config() -> Codec {
        (RangeCfg::from(..=MAX_OUTCOME_BYTES), ())
    }

    /// Opens the archive configured by `config` (see [`Outcomes::codec_config`]).
    pub async fn open(context: E, config: immutable::Config<Codec>) -> Result<Self, OutcomeError> {
        let archive = immutable::Archive::init(context, config)
            .await
            .map_err(|e| OutcomeError(e.to_string()))?;
        Ok(Outcomes {
            archive: Mutex::new(Some(archive)),
        })
    }

    /// Durably stores the outcome of the block `hash` at `height` (once; later puts at the same
    /// height are ignored).
    pub async fn put(
        &self,
        height: u64,
        hash: &Hash,
        outcome: &BlockOutcome,
    ) -> Result<(), OutcomeError> {
        let bytes = serde_json::to_vec(outcome).map_err(|e| OutcomeError(e.to_string()))?;
        let mut guard = self.archive.lock().await;
        let archive = guard
            .take()
            .ok_or_else(|| OutcomeError("closed after an earlier failure".into()))?;
        let archive = archive
            .put_sync(height, digest(hash), &bytes)
            .await
            .map_err(|e| OutcomeError(e.to_string()))?;
        *guard = Some(archive);
        Ok(())
    }

    /// The outcome of the block at `height`.
    pub async fn at_height(&self, height: u64) -> Result<Option<BlockOutcome>, OutcomeError> {
        self.get(Identifier::Index(height)).await
    }

    /// The outcome of the block `hash`.
    pub async fn of_block(&self, hash: &Hash) -> Result<Option<BlockOutcome>, OutcomeError> {
        let key = digest(hash);
        self.get(Identifier::Key(&key)).await
    }

    async fn get(
        &self,
        identifier: Identifier<'_, Digest>,
    ) -> Result<Option<BlockOutcome>, OutcomeError> {
        let guard = self.archive.lock().await;
        let archive = guard
            .as_ref()
            .ok_or_else(|| OutcomeError("closed after an earlier failure".into()))?;
        let Some(bytes) = archive
            .get(identifier)
            .await
            .map_err(|e| OutcomeError(e.to_string()))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OutcomeError(format!("stored outcome unreadable: {e}")))
    }
}
