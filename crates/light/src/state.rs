//! Proofs of state values against a header's state root.
//!
//! The node's state is Commonware's QMDB (`current::ordered::variable`): its root, recorded in
//! every header, commits to each key's current value. A proof shows either that a key holds
//! exactly some bytes, or that it holds nothing (the key falls strictly between two adjacent
//! live keys). Keys are stored as [`db_key`], so both sides must build stored keys here.

use bytes::Bytes;
use commonware_codec::{Decode as _, Encode as _, RangeCfg};
use commonware_cryptography::Sha256;
use commonware_storage::mmr;
use commonware_storage::qmdb::any::value::VariableEncoding;
use commonware_storage::qmdb::current::ordered::proof::constant;
use wetee_types::Hash;

/// The Merkle structure under the state.
pub type Family = mmr::Family;
/// Bits of the activity bitmap per chunk, in bytes.
pub const CHUNK: usize = 32;
/// Longest key the runtime writes, with room to spare.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value the runtime writes (records are bounded well below this).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most digests one proof may carry: a Merkle path for 2^64 operations and its peaks.
pub const MAX_PROOF_DIGESTS: usize = 192;

/// The state root's digest.
pub type RootDigest = commonware_cryptography::sha256::Digest;
/// How values are encoded in the state's operations.
pub type Value = VariableEncoding<Vec<u8>>;
/// Proof that a key holds a value.
pub type ValueProof = constant::KeyValueProof<Family, Vec<u8>, RootDigest, CHUNK>;
/// Proof that a key holds nothing.
pub type AbsenceProof = constant::ExclusionProof<Family, Vec<u8>, Value, RootDigest, CHUNK>;

/// The key QMDB stores for a state key: 8 bytes of its hash, then the key. QMDB's index buckets
/// keys by their first 8 bytes, and runtime keys share long prefixes ("app/" and a small id),
/// which would pile into one bucket and make reads linear.
pub fn db_key(key: &[u8]) -> Vec<u8> {
    let mut stored = Hash::of(key).0[..8].to_vec();
    stored.extend_from_slice(key);
    stored
}

/// Our hash as the state root's digest.
pub fn root_digest(root: &Hash) -> RootDigest {
    commonware_cryptography::sha256::Digest(root.0)
}

/// Why a state entry is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The key or value is longer than the state ever holds.
    #[error("{what} of {len} bytes exceeds the state's limit of {max}")]
    TooLong {
        /// Key or value.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The proof's bytes do not decode.
    #[error("proof does not decode: {0}")]
    Malformed(String),
    /// The proof does not show this key with this value (or absent) under this root.
    #[error(
        "proof does not show the key {} under state root {root}",
        printable(key)
    )]
    Invalid {
        /// The runtime key.
        key: Vec<u8>,
        /// The root it was checked against.
        root: Hash,
    },
}

/// A key for messages: its text where it is text, hex otherwise.
fn printable(key: &[u8]) -> String {
    let text: String = key
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    text
}

/// A proof of one key: of its value, or of its absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProof {
    /// The key holds a value.
    Value(ValueProof),
    /// The key holds nothing.
    Absent(AbsenceProof),
}

const VALUE_TAG: u8 = 0;
const ABSENT_TAG: u8 = 1;

fn key_cfg() -> (RangeCfg<usize>, ()) {
    ((0..=MAX_KEY_BYTES + 8).into(), ())
}

fn value_cfg() -> (RangeCfg<usize>, ()) {
    ((0..=MAX_VALUE_BYTES).into(), ())
}

impl EntryProof {
    /// The proof's bytes: a tag, then the QMDB proof in Commonware's codec.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, body) = match self {
            EntryProof::Value(proof) => (VALUE_TAG, proof.encode()),
            EntryProof::Absent(proof) => (ABSENT_TAG, proof.encode()),
        };
        let mut bytes = Vec::with_capacity(body.len() + 1);
        bytes.push(tag);
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Decodes a proof, within the state's bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<EntryProof, ProofError> {
        let malformed = |e: commonware_codec::Error| ProofError::Malformed(e.to_string());
        let (&tag, body) = bytes
            .split_first()
            .ok_or_else(|| ProofError::Malformed("empty".into()))?;
        let body = Bytes::copy_from_slice(body);
        match tag {
            VALUE_TAG => ValueProof::decode_cfg(body, &(MAX_PROOF_DIGESTS, key_cfg()))
                .map(EntryProof::Value)
                .map_err(malformed),
            ABSENT_TAG => AbsenceProof::decode_cfg(
                body,
                &(MAX_PROOF_DIGESTS, (key_cfg(), value_cfg()), value_cfg()),
            )
            .map(EntryProof::Absent)
            .map_err(malformed),
            other => Err(ProofError::Malformed(format!("unknown proof kind {other}"))),
        }
    }
}

/// Checks that under state root `root`, the runtime key `key` holds `value` (`None`: nothing).
pub fn verify_entry(
    root: &Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &EntryProof,
) -> Result<(), ProofError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(ProofError::TooLong {
            what: "key",
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    if let Some(value) = value.filter(|v| v.len() > MAX_VALUE_BYTES) {
        return Err(ProofError::TooLong {
            what: "value",
            len: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    let digest = root_digest(root);
    let stored = db_key(key);
    let valid = match (proof, value) {
        (EntryProof::Value(proof), Some(value)) => {
            proof.verify::<Sha256, Value>(stored, value.to_vec(), &digest)
        }
        (EntryProof::Absent(proof), None) => proof.verify::<Sha256>(&stored, &digest),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ProofError::Invalid {
            key: key.to_vec(),
            root: *root,
        })
    }
}
