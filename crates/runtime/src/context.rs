//! What a call or hook sees: the state, the block, the parameters, and where events go.

use crate::scheduling::Rules;
use crate::state::State;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::params::{ChainConfig, Params};
use wetee_types::{AccountId, BlockNumber, EpochNumber, Event, Hash, TimestampMs};

/// The block being executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Its height.
    pub height: BlockNumber,
    /// Its timestamp (from the proposer, checked by consensus to be monotonic and bounded).
    pub timestamp_ms: TimestampMs,
    /// The parent block's hash: a nonce workers bind their evidence to.
    pub parent_hash: Hash,
}

/// Execution context of one call or hook.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut dyn State,
    pub height: BlockNumber,
    pub time_ms: TimestampMs,
    pub chain: ChainConfig,
    pub params: Params,
    pub attestation: AttestationPolicy,
    pub genesis_hash: Hash,
    pub treasury: AccountId,
    pub events: Vec<Event>,
}

impl Ctx<'_> {
    /// The current epoch.
    pub fn epoch(&self) -> EpochNumber {
        self.chain.epoch_of(self.height)
    }

    /// What placement decisions follow.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            params: &self.params,
            attestation: &self.attestation,
            now_ms: self.time_ms,
        }
    }

    /// Records an event.
    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }
}
