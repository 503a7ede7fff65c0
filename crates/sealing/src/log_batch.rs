//! A workload's output at rest: batches of log lines sealed by the worker to the owner.
//!
//! The worker appends one record per batch of lines it collects to the workload's file for the
//! epoch. A record is sealed on its own with HPKE in auth mode, from the worker's attested
//! sealing key to the owner's sealing key, so the worker keeps no key between batches and a
//! restart simply goes on with the next record; what the operator's disk holds opens only with
//! the owner's account key, and only if the worker's TEE sealed it (a record the operator
//! planted, sealed with the owner's public key alone, does not open).
//!
//! Each record carries a public leaf, BLAKE3 over a fresh random salt (sealed inside) and the
//! batch's lines: the epoch's log root in the work report is the Merkle root of its leaves, so
//! the owner, after opening the records, can check that the lines are those the worker signed
//! for. A leaf tells an observer nothing, not even whether a guessed line is in the batch.
//!
//! ```text
//! record    = len: u32 BE (of what follows) ‖ leaf: 32 ‖ enc: 32 ‖ ciphertext
//! plaintext = salt: 32 ‖ lines
//! aad       = INFO ‖ genesis ‖ workload ‖ epoch ‖ index ‖ worker ‖ owner ‖ leaf
//! ```

use crate::{SealError, hpke_open, hpke_seal};
use wetee_types::{AccountId, Hash, WorkerId, Workload};
use zeroize::Zeroizing;

/// HPKE `info` of every sealed log batch.
pub const INFO: &[u8] = b"wetee/log-batch/v1";
const LEAF_DOMAIN: &[u8] = b"wetee/log-batch-leaf/v1";
const SALT_BYTES: usize = 32;
/// Bytes of a record before its ciphertext: the length, the leaf and the encapsulated key.
pub const HEADER_BYTES: usize = 4 + 32 + 32;
/// The most lines one record holds, in bytes: a reader never buffers more for one record.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// ChaCha20-Poly1305's tag.
const TAG_BYTES: usize = 16;

/// Whose output a record is: bound into each seal, so a record moved to another workload,
/// epoch, position, worker, owner or chain does not open.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The chain.
    pub genesis_hash: &'a Hash,
    /// The app or task run.
    pub workload: Workload,
    /// The epoch the lines were collected in.
    pub epoch: u64,
    /// The worker.
    pub worker: WorkerId,
    /// The workload's owner.
    pub owner: &'a AccountId,
}

impl Binding<'_> {
    fn aad(&self, index: u32, leaf: &Hash, recipient: &[u8; 32]) -> Vec<u8> {
        let mut aad = INFO.to_vec();
        aad.extend_from_slice(&self.genesis_hash.0);
        aad.extend_from_slice(&wetee_types::codec::encode(&self.workload));
        aad.extend_from_slice(&self.epoch.to_be_bytes());
        aad.extend_from_slice(&index.to_be_bytes());
        aad.extend_from_slice(&self.worker.0.to_be_bytes());
        aad.extend_from_slice(&self.owner.0);
        aad.extend_from_slice(&leaf.0);
        aad.extend_from_slice(recipient);
        aad
    }
}

fn leaf(salt: &[u8], lines: &[u8]) -> Hash {
    Hash::of_parts(&[LEAF_DOMAIN, salt, lines])
}

/// Seals `lines` as the record at `index` of the binding's file, from the worker's sealing
/// secret `worker_secret` to `owner_key`.
pub fn seal(
    binding: &Binding,
    index: u32,
    worker_secret: &[u8; 32],
    owner_key: &[u8; 32],
    lines: &[u8],
) -> Result<Vec<u8>, SealError> {
    if lines.len() > MAX_BATCH_BYTES {
        return Err(SealError::TooLarge { len: lines.len() });
    }
    let mut plain = Zeroizing::new(vec![0u8; SALT_BYTES]);
    getrandom::getrandom(&mut plain).map_err(|_| SealError::NoRandomness)?;
    let leaf = leaf(&plain[..SALT_BYTES], lines);
    plain.extend_from_slice(lines);
    let (enc, ciphertext) = hpke_seal(
        Some(worker_secret),
        owner_key,
        INFO,
        &binding.aad(index, &leaf, owner_key),
        &plain,
    )?;
    let body = 32 + 32 + ciphertext.len();
    let mut record = Vec::with_capacity(4 + body);
    // At most MAX_BATCH_BYTES plus a few dozen: fits.
    record.extend_from_slice(&u32::try_from(body).unwrap_or(u32::MAX).to_be_bytes());
    record.extend_from_slice(&leaf.0);
    record.extend_from_slice(&enc);
    record.extend_from_slice(&ciphertext);
    Ok(record)
}

/// A record's public leaf.
pub fn leaf_of(record: &[u8]) -> Option<Hash> {
    let bytes: [u8; 32] = record.get(4..36)?.try_into().ok()?;
    Some(Hash(bytes))
}

/// The length of the complete record at the start of `bytes`, if one is there (`Err` if what
/// is there cannot be a record).
pub fn record_len(bytes: &[u8]) -> Result<Option<usize>, SealError> {
    let Some(length) = bytes.get(..4) else {
        return Ok(None);
    };
    let body = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    let smallest = 64 + SALT_BYTES + TAG_BYTES;
    if !(smallest..=64 + SALT_BYTES + MAX_BATCH_BYTES + TAG_BYTES).contains(&body) {
        return Err(SealError::CannotOpen);
    }
    Ok((bytes.len() >= 4 + body).then_some(4 + body))
}

/// The records of `bytes`, in order, as far as they are complete.
pub fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while let Ok(Some(len)) = record_len(rest) {
        found.push(&rest[..len]);
        rest = &rest[len..];
    }
    found
}

/// Opens the record at `index` of the binding's file with the owner's sealing secret, checks
/// that the worker whose sealing key is `worker_key` sealed it, and checks its lines against
/// its leaf.
pub fn open(
    owner_secret: &[u8; 32],
    worker_key: &[u8; 32],
    binding: &Binding,
    index: u32,
    record: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if record_len(record)? != Some(record.len()) {
        return Err(SealError::CannotOpen);
    }
    let leaf = leaf_of(record).ok_or(SealError::CannotOpen)?;
    let enc: [u8; 32] = record[36..68]
        .try_into()
        .map_err(|_| SealError::CannotOpen)?;
    let key = crate::public_key(owner_secret);
    let plain = hpke_open(
        owner_secret,
        Some(worker_key),
        INFO,
        &binding.aad(index, &leaf, &key),
        &enc,
        &record[HEADER_BYTES..],
    )?;
    let (salt, lines) = plain
        .split_at_checked(SALT_BYTES)
        .ok_or(SealError::CannotOpen)?;
    if self::leaf(salt, lines) != leaf {
        return Err(SealError::NotCommitted);
    }
    Ok(Zeroizing::new(lines.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::{AppId, KeyScheme, Keypair};

    #[test]
    fn only_the_owner_opens_a_batch_and_only_where_it_was_sealed() {
        let genesis = Hash::of(b"chain");
        let owner = Keypair::from_seed(KeyScheme::Ed25519, [7; 32]);
        let account = owner.account_id();
        let secret = crate::owner_secret(&owner);
        let key = crate::public_key(&secret);
        let binding = Binding {
            genesis_hash: &genesis,
            workload: Workload::App { app: AppId(3) },
            epoch: 12,
            worker: WorkerId(1),
            owner: &account,
        };
        let worker_secret = [5u8; 32];
        let worker_key = crate::public_key(&worker_secret);
        let lines = b"2026-12-06T20:00:00Z out API_TOKEN=hunter2\n";
        let record = seal(&binding, 0, &worker_secret, &key, lines).unwrap();
        assert!(
            !record.windows(7).any(|w| w == b"hunter2"),
            "the line is in the clear"
        );
        assert_eq!(record_len(&record).unwrap(), Some(record.len()));
        assert_eq!(records(&[record.clone(), record.clone()].concat()).len(), 2);
        assert_eq!(records(&record[..record.len() - 1]).len(), 0);
        assert_eq!(
            &open(&secret, &worker_key, &binding, 0, &record).unwrap()[..],
            lines
        );

        // Another position, epoch, workload or owner: refused.
        assert!(open(&secret, &worker_key, &binding, 1, &record).is_err());
        let later = Binding {
            epoch: 13,
            ..binding
        };
        assert!(open(&secret, &worker_key, &later, 0, &record).is_err());
        let other_app = Binding {
            workload: Workload::App { app: AppId(4) },
            ..binding
        };
        assert!(open(&secret, &worker_key, &other_app, 0, &record).is_err());
        let stranger = crate::owner_secret(&Keypair::from_seed(KeyScheme::Ed25519, [8; 32]));
        assert!(open(&stranger, &worker_key, &binding, 0, &record).is_err());

        // A swapped leaf does not open; equal lines give different leaves.
        let mut swapped = record.clone();
        swapped[4] ^= 1;
        assert!(open(&secret, &worker_key, &binding, 0, &swapped).is_err());
        let again = seal(&binding, 0, &worker_secret, &key, lines).unwrap();
        assert_ne!(leaf_of(&again), leaf_of(&record));
        // Sealed by anyone but the worker (the owner's key is public): refused.
        let planted = seal(&binding, 0, &[6u8; 32], &key, b"forged\n").unwrap();
        assert!(open(&secret, &worker_key, &binding, 0, &planted).is_err());
    }

    #[test]
    fn damaged_lengths_are_refused_not_trusted() {
        assert!(record_len(&[0, 0, 0, 1]).is_err());
        assert!(record_len(&[0xff, 0xff, 0xff, 0xff, 0]).is_err());
        assert_eq!(record_len(&[0, 0]).unwrap(), None);
        assert!(records(&[0xff; 100]).is_empty());
    }
}
