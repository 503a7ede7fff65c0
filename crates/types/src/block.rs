//! Blocks: a header that commits to everything, and the transactions.
//!
//! The header carries the state root *after* executing the block, so every validator that
//! votes for a block has executed it and agrees on the resulting state. It also carries the
//! consensus context the block was proposed in (epoch, view, leader, parent's view): a
//! validator that missed the proposal can still check that the block belongs to the view it
//! was certified in.

use serde::{Deserialize, Serialize};

use crate::codec::{BoundedVec, encode};
use crate::codec_struct;
use crate::crypto::Hash;
use crate::ids::{BlockNumber, TimestampMs};
use crate::transaction::SignedTransaction;

/// Most transactions in one block.
pub const MAX_BLOCK_TRANSACTIONS: usize = 20_000;
/// Most encoded bytes in one block (transactions are at most 256 KiB each).
pub const MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;
/// Most milliseconds a block's timestamp may be ahead of the clock of the validator judging it.
/// A block must also be stamped at least half a block time after its parent, so a proposer that
/// stamps ahead moves the chain's clock by at most this much, and never makes the next leader
/// wait more than a block time.
pub const MAX_CLOCK_DRIFT_MS: u64 = 250;
/// Most milliseconds a leader spends executing transactions for its block; it proposes what fits.
pub const BUILD_BUDGET_MS: u64 = 150;

const BLOCK_DOMAIN: &[u8] = b"wetee/block/v1";
const LEAF_DOMAIN: &[u8] = &[0];
const NODE_DOMAIN: &[u8] = &[1];

/// Where in consensus a block was proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConsensusContext {
    /// The consensus epoch (validator set).
    pub epoch: u64,
    /// The view (round) within the epoch.
    pub view: u64,
    /// The leader of that view, who proposed the block (ed25519 consensus key).
    #[serde(with = "hex_key")]
    pub leader: [u8; 32],
    /// The view in which the parent was proposed.
    pub parent_view: u64,
}
codec_struct!(ConsensusContext {
    epoch,
    view,
    leader,
    parent_view
});

/// Consensus keys read as hex in JSON, like everywhere else keys of validators appear.
mod hex_key {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(key))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text.strip_prefix("0x").unwrap_or(&text))
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 32 bytes of hex"))
    }
}

/// A block header. Its hash is the block's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Header {
    /// The parent block's hash (zero for genesis).
    pub parent: Hash,
    /// Height: the parent's plus one (zero for genesis).
    pub height: BlockNumber,
    /// The proposer's clock, in milliseconds since the Unix epoch; at least half a target block
    /// time after the parent's, and at most [`MAX_CLOCK_DRIFT_MS`] ahead of a verifier's clock.
    pub timestamp_ms: TimestampMs,
    /// Where in consensus the block was proposed.
    pub context: ConsensusContext,
    /// Merkle root of the transactions' hashes ([`transactions_root`]).
    pub transactions_root: Hash,
    /// Number of transactions.
    pub transaction_count: u32,
    /// The state root after executing this block.
    pub state_root: Hash,
}
codec_struct!(Header {
    parent,
    height,
    timestamp_ms,
    context,
    transactions_root,
    transaction_count,
    state_root
});

impl Header {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        Hash::of_parts(&[BLOCK_DOMAIN, &encode(self)])
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub transactions: BoundedVec<SignedTransaction, MAX_BLOCK_TRANSACTIONS>,
}
codec_struct!(Block {
    header,
    transactions
});

impl Block {
    /// The block hash (the header's).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Whether the header's transaction count and root match the transactions.
    pub fn transactions_match(&self) -> bool {
        let hashes: Vec<Hash> = self.transactions.iter().map(|tx| tx.hash()).collect();
        u32::try_from(hashes.len()).ok() == Some(self.header.transaction_count)
            && transactions_root(&hashes) == self.header.transactions_root
    }
}

/// A binary BLAKE3 Merkle root over `leaves`, with domain-separated leaves and nodes so a
/// node can never pass for a leaf. An odd node is carried up unchanged; no leaves give zero.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::default();
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| Hash::of_parts(&[LEAF_DOMAIN, &leaf.0]))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::of_parts(&[NODE_DOMAIN, &left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level[0]
}

/// The transactions root of a block with these transaction hashes.
pub fn transactions_root(hashes: &[Hash]) -> Hash {
    merkle_root(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    #[test]
    fn merkle_roots_commit_to_order_and_content() {
        let leaves: Vec<Hash> = (0u8..5).map(|i| Hash::of(&[i])).collect();
        let root = merkle_root(&leaves);
        let mut swapped = leaves.clone();
        swapped.swap(0, 1);
        assert_ne!(merkle_root(&swapped), root);
        assert_ne!(merkle_root(&leaves[..4]), root);
        assert_eq!(merkle_root(&[]), Hash::default());
        // A leaf is never equal to the node above it.
        assert_ne!(merkle_root(&leaves[..1]), leaves[0]);
    }

    #[test]
    fn the_hash_covers_every_header_field() {
        let header = Header {
            height: 3,
            ..Header::default()
        };
        let block = Block {
            header,
            transactions: BoundedVec::default(),
        };
        let bytes = encode(&block);
        assert_eq!(decode::<Block>(&bytes).unwrap(), block);
        let mut other = header;
        other.context.view = 1;
        assert_ne!(other.hash(), header.hash());
        other = header;
        other.state_root = Hash::of(b"x");
        assert_ne!(other.hash(), header.hash());
        assert!(block.transactions_match());
        let mut lying = block.clone();
        lying.header.transaction_count = 1;
        assert!(!lying.transactions_match());
    }
}
