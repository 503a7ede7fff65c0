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
//! The lines are padded to a multiple of [`PAD_BYTES`] inside the seal, so a record's size does
//! not tell how long a line was (a token's length, say). A tag, keyed by a key only the
//! worker's TEE derives, lets the worker tell its own records from planted or altered ones
//! when it reads its files again after a restart: the roots it signs count its records only.
//!
//! ```text
//! record    = len: u32 BE (of what follows) ‖ leaf: 32 ‖ tag: 32 ‖ enc: 32 ‖ ciphertext
//! plaintext = salt: 32 ‖ lines length: u32 BE ‖ lines ‖ zeros to a multiple of PAD_BYTES
//! aad       = INFO ‖ genesis ‖ workload ‖ epoch ‖ index ‖ worker ‖ owner ‖ leaf ‖ recipient
//! tag       = BLAKE3 keyed by the worker's tag key, over workload ‖ epoch ‖ index ‖ leaf ‖
//!             enc ‖ ciphertext
//! ```

use crate::{SealError, hpke_open, hpke_seal};
use wetee_types::{AccountId, Hash, WorkerId, Workload};
use zeroize::Zeroizing;

/// HPKE `info` of every sealed log batch.
pub const INFO: &[u8] = b"wetee/log-batch/v2";
const LEAF_DOMAIN: &[u8] = b"wetee/log-batch-leaf/v1";
/// BLAKE3 `derive_key` context of the worker's tag key.
const TAG_KEY_CONTEXT: &str = "wetee/log-batch-tag/v1";
const SALT_BYTES: usize = 32;
/// Bytes of a record before its ciphertext: the length, the leaf, the tag and the encapsulated
/// key.
pub const HEADER_BYTES: usize = 4 + 32 + 32 + 32;
/// The most lines one record holds, in bytes: a reader never buffers more for one record.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Sealed lines are padded to a multiple of this.
pub const PAD_BYTES: usize = 256;
/// ChaCha20-Poly1305's tag.
const AEAD_TAG_BYTES: usize = 16;
/// The smallest and largest plaintext: salt, length, and the padded lines.
const MIN_PLAIN: usize = SALT_BYTES + 4 + PAD_BYTES;
const MAX_PLAIN: usize = SALT_BYTES + 4 + MAX_BATCH_BYTES;

/// The worker's key for tagging its records, derived from its sealing secret: only the TEE
/// holding that secret can tag a record.
pub fn tag_key(worker_secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(TAG_KEY_CONTEXT, worker_secret))
}

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

/// The tag of the record at `index` of `workload`'s `epoch` whose leaf, encapsulated key and
/// ciphertext are `sealed`.
fn tag(tag_key: &[u8; 32], workload: Workload, epoch: u64, index: u32, sealed: Sealed) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(tag_key);
    hasher.update(&wetee_types::codec::encode(&workload));
    hasher.update(&epoch.to_be_bytes());
    hasher.update(&index.to_be_bytes());
    hasher.update(sealed.leaf);
    hasher.update(sealed.enc);
    hasher.update(sealed.ciphertext);
    *hasher.finalize().as_bytes()
}

/// The parts of a record the tag covers.
#[derive(Clone, Copy)]
struct Sealed<'a> {
    leaf: &'a [u8],
    enc: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// The parts of a complete record.
    fn of(record: &'a [u8]) -> Option<(Sealed<'a>, &'a [u8])> {
        Some((
            Sealed {
                leaf: record.get(4..36)?,
                enc: record.get(68..HEADER_BYTES)?,
                ciphertext: record.get(HEADER_BYTES..)?,
            },
            record.get(36..68)?,
        ))
    }
}

/// Whether the record at `index` of `workload`'s `epoch` was written by the worker whose tag
/// key is `tag_key`, unaltered and at that place.
pub fn is_tagged_by(
    tag_key: &[u8; 32],
    workload: Workload,
    epoch: u64,
    index: u32,
    record: &[u8],
) -> bool {
    let Some((sealed, found)) = Sealed::of(record) else {
        return false;
    };
    let expected = tag(tag_key, workload, epoch, index, sealed);
    // Not secret-dependent in a way an observer could use: the key never leaves the TEE and
    // the tag is on disk for all to read; still compared without an early exit.
    found.len() == 32
        && found
            .iter()
            .zip(expected)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
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
    let padded = lines.len().div_ceil(PAD_BYTES).max(1) * PAD_BYTES;
    let mut plain = Zeroizing::new(vec![0u8; SALT_BYTES + 4 + padded]);
    getrandom::getrandom(&mut plain[..SALT_BYTES]).map_err(|_| SealError::NoRandomness)?;
    let leaf = leaf(&plain[..SALT_BYTES], lines);
    // At most MAX_BATCH_BYTES: fits.
    let length = u32::try_from(lines.len()).unwrap_or(u32::MAX).to_be_bytes();
    plain[SALT_BYTES..SALT_BYTES + 4].copy_from_slice(&length);
    plain[SALT_BYTES + 4..SALT_BYTES + 4 + lines.len()].copy_from_slice(lines);
    let (enc, ciphertext) = hpke_seal(
        Some(worker_secret),
        owner_key,
        INFO,
        &binding.aad(index, &leaf, owner_key),
        &plain,
    )?;
    let sealed = Sealed {
        leaf: &leaf.0,
        enc: &enc,
        ciphertext: &ciphertext,
    };
    let tag = tag(
        &tag_key(worker_secret),
        binding.workload,
        binding.epoch,
        index,
        sealed,
    );
    let body = HEADER_BYTES - 4 + ciphertext.len();
    let mut record = Vec::with_capacity(4 + body);
    record.extend_from_slice(&u32::try_from(body).unwrap_or(u32::MAX).to_be_bytes());
    record.extend_from_slice(&leaf.0);
    record.extend_from_slice(&tag);
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
    let header = HEADER_BYTES - 4 + AEAD_TAG_BYTES;
    if !(header + MIN_PLAIN..=header + MAX_PLAIN).contains(&body) {
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
    let enc: [u8; 32] = record[68..HEADER_BYTES]
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
    let (salt, rest) = plain
        .split_at_checked(SALT_BYTES)
        .ok_or(SealError::CannotOpen)?;
    let (length, padded) = rest.split_at_checked(4).ok_or(SealError::CannotOpen)?;
    let length = u32::from_be_bytes(length.try_into().map_err(|_| SealError::CannotOpen)?);
    let lines = padded.get(..length as usize).ok_or(SealError::CannotOpen)?;
    if self::leaf(salt, lines) != leaf {
        return Err(SealError::NotCommitted);
    }
    Ok(Zeroizing::new(lines.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::{AppId, KeyScheme, Keypair};

    const WORKER_SECRET: [u8; 32] = [5; 32];

    /// An owner's account, its sealing secret and key, and the chain.
    struct Owner {
        genesis: Hash,
        account: AccountId,
        secret: [u8; 32],
        key: [u8; 32],
    }

    impl Owner {
        fn new() -> Owner {
            let owner = Keypair::from_seed(KeyScheme::Ed25519, [7; 32]);
            let secret = *crate::owner_secret(&owner);
            Owner {
                genesis: Hash::of(b"chain"),
                account: owner.account_id(),
                key: crate::public_key(&secret),
                secret,
            }
        }

        /// Where app 3's records of epoch 12 on worker 1 go.
        fn binding(&self) -> Binding<'_> {
            Binding {
                genesis_hash: &self.genesis,
                workload: Workload::App { app: AppId(3) },
                epoch: 12,
                worker: WorkerId(1),
                owner: &self.account,
            }
        }
    }

    #[test]
    fn only_the_owner_opens_a_batch_and_only_where_it_was_sealed() {
        let owner = Owner::new();
        let (secret, key, binding) = (owner.secret, owner.key, owner.binding());
        let worker_secret = WORKER_SECRET;
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
    fn a_records_size_does_not_tell_a_lines_length() {
        let owner = Owner::new();
        let (secret, key, binding) = (owner.secret, owner.key, owner.binding());
        let worker_secret = WORKER_SECRET;
        let worker_key = crate::public_key(&worker_secret);
        let sealed = |lines: &[u8]| seal(&binding, 0, &worker_secret, &key, lines).unwrap();
        let short = sealed(b"TOKEN=ab\n");
        let long = sealed(&[b'x'; PAD_BYTES - 1]);
        assert_eq!(short.len(), long.len());
        assert!(sealed(&[b'x'; PAD_BYTES + 1]).len() > long.len());
        // The padding is not part of what the owner reads.
        assert_eq!(
            &open(&secret, &worker_key, &binding, 0, &short).unwrap()[..],
            b"TOKEN=ab\n"
        );
        assert_eq!(
            &open(&secret, &worker_key, &binding, 0, &sealed(b"")).unwrap()[..],
            b""
        );
    }

    #[test]
    fn only_the_worker_that_sealed_a_record_finds_its_tag_and_only_at_its_place() {
        let owner = Owner::new();
        let (key, binding) = (owner.key, owner.binding());
        let app = binding.workload;
        let worker_secret = WORKER_SECRET;
        let tag_key = tag_key(&worker_secret);
        let record = seal(&binding, 4, &worker_secret, &key, b"line\n").unwrap();
        assert!(is_tagged_by(&tag_key, app, 12, 4, &record));
        // Elsewhere in the file, in another epoch or workload: not this place's record.
        assert!(!is_tagged_by(&tag_key, app, 12, 5, &record));
        assert!(!is_tagged_by(&tag_key, app, 13, 4, &record));
        assert!(!is_tagged_by(
            &tag_key,
            Workload::App { app: AppId(4) },
            12,
            4,
            &record
        ));
        // Planted with the owner's public key by anyone else, or altered: no tag.
        let planted = seal(&binding, 4, &[6u8; 32], &key, b"line\n").unwrap();
        assert!(!is_tagged_by(&tag_key, app, 12, 4, &planted));
        for at in [4, 40, 80, record.len() - 1] {
            let mut altered = record.clone();
            altered[at] ^= 1;
            assert!(!is_tagged_by(&tag_key, app, 12, 4, &altered), "byte {at}");
        }
        assert!(!is_tagged_by(&tag_key, app, 12, 4, &record[..50]));
    }

    #[test]
    fn damaged_lengths_are_refused_not_trusted() {
        assert!(record_len(&[0, 0, 0, 1]).is_err());
        assert!(record_len(&[0xff, 0xff, 0xff, 0xff, 0]).is_err());
        assert_eq!(record_len(&[0, 0]).unwrap(), None);
        assert!(records(&[0xff; 100]).is_empty());
    }
}
