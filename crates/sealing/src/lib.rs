//! Sealed secrets: how an app owner's secret reaches the worker's TEE and nobody else.
//!
//! Every secret is sealed twice with HPKE (RFC 9180, base mode, X25519-HKDF-SHA256 and
//! ChaCha20-Poly1305):
//! - to the worker's sealing key, which the worker's attestation binds to its TEE: only that
//!   TEE can open it, and only for the app, worker, key, name and revision in the associated
//!   data ([`for_worker`]);
//! - to the owner's own key, derived from the account key ([`owner_secret`]), so the owner can
//!   reseal it to the next worker without keeping the value anywhere ([`for_owner`]).
//!
//! An app's failure log goes the other way, from the worker's TEE to the owner only
//! ([`log_tail`]), as does every workload's output kept at rest ([`log_batch`]).
//!
//! A ciphertext moved to another app, name, worker, chain or revision fails to open, as does a
//! tampered one. This crate never logs, stores or prints a value; opened values are zeroized
//! when dropped. It must not decide who is trusted: the caller verifies the worker's
//! attestation before sealing to its key.

#![forbid(unsafe_code)]

pub mod log_batch;
pub mod log_tail;

use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use wetee_types::codec::BoundedVec;
use wetee_types::records::{MAX_SECRET_BYTES, SealedBox};
use wetee_types::{AccountId, AppId, Hash, Keypair, WorkerId};
use zeroize::Zeroizing;

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;

/// HPKE `info` of every sealed secret: the protocol and its version.
pub const INFO: &[u8] = b"wetee/sealed-secret/v1";
/// Key-derivation context of the owner's sealing key.
pub const OWNER_KEY_CONTEXT: &str = "wetee 2026 owner sealing key v1";

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value is larger than the chain stores.
    #[error("the value has {len} bytes; at most {MAX_SECRET_BYTES} are allowed")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The public key is not a usable X25519 key.
    #[error("the recipient's sealing key is not a valid X25519 public key")]
    BadPublicKey,
    /// Wrong key, wrong binding, or tampered ciphertext: HPKE does not say which.
    #[error(
        "the sealed value cannot be opened: it was sealed to another key, for another app, name, worker or revision, or it was altered"
    )]
    CannotOpen,
    /// An opened log tail is not the one the worker committed to in its signed report.
    #[error("the opened log does not match the digest the worker signed")]
    NotCommitted,
    /// The operating system gave no random bytes.
    #[error("no randomness available from the operating system")]
    NoRandomness,
}

/// Which secret a seal is for: bound into the associated data of both seals.
#[derive(Debug, Clone, Copy)]
pub struct SecretId<'a> {
    /// The chain.
    pub genesis_hash: &'a Hash,
    /// The app.
    pub app: AppId,
    /// The secret's name.
    pub name: &'a str,
    /// The app's secrets revision it is sealed in.
    pub revision: u32,
}

impl SecretId<'_> {
    fn aad(&self, recipient: &[u8], key: &[u8; 32]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96 + self.name.len());
        aad.extend_from_slice(INFO);
        aad.extend_from_slice(&self.genesis_hash.0);
        aad.extend_from_slice(&self.app.0.to_be_bytes());
        aad.extend_from_slice(&self.revision.to_be_bytes());
        aad.extend_from_slice(&(self.name.len() as u64).to_be_bytes());
        aad.extend_from_slice(self.name.as_bytes());
        aad.extend_from_slice(recipient);
        aad.extend_from_slice(key);
        aad
    }
}

/// The recipient part of the associated data of a seal to a worker.
pub fn for_worker(id: &SecretId, worker: WorkerId, sealing_key: &[u8; 32]) -> Vec<u8> {
    let mut recipient = b"worker".to_vec();
    recipient.extend_from_slice(&worker.0.to_be_bytes());
    id.aad(&recipient, sealing_key)
}

/// The associated data of a seal to the owner.
pub fn for_owner(id: &SecretId, owner: &AccountId) -> Vec<u8> {
    id.aad(b"owner", &owner.0)
}

/// The X25519 public key of `secret`.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    match <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret) {
        Ok(private) => X25519HkdfSha256::sk_to_pk(&private).to_bytes().into(),
        // Every 32-byte string is an X25519 private key (RFC 7748 clamps it).
        Err(_) => [0; 32],
    }
}

/// The owner's sealing secret, derived from the account key: whoever holds the account key can
/// always open the owner copies, and no extra key needs to be kept.
pub fn owner_secret(owner: &Keypair) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(owner.derive_secret(OWNER_KEY_CONTEXT))
}

/// Seals `value` to `recipient` (an X25519 public key) with associated data `aad`.
pub fn seal(recipient: &[u8; 32], aad: &[u8], value: &[u8]) -> Result<SealedBox, SealError> {
    if value.len() > MAX_SECRET_BYTES {
        return Err(SealError::TooLarge { len: value.len() });
    }
    let (enc, ciphertext) = hpke_seal(None, recipient, INFO, aad, value)?;
    Ok(SealedBox {
        enc,
        ciphertext: BoundedVec::try_new(ciphertext)
            .map_err(|_| SealError::TooLarge { len: value.len() })?,
    })
}

/// Opens `sealed` with the recipient's X25519 `secret` and the same associated data.
pub fn open(
    secret: &[u8; 32],
    aad: &[u8],
    sealed: &SealedBox,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    hpke_open(secret, None, INFO, aad, &sealed.enc, &sealed.ciphertext)
}

/// HPKE single-shot seal: the encapsulated key and the ciphertext. With a `sender` secret it
/// is auth mode, and the recipient learns that the holder of that key sealed it; without, base
/// mode, which anyone holding the recipient's public key can produce.
fn hpke_seal(
    sender: Option<&[u8; 32]>,
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    value: &[u8],
) -> Result<([u8; 32], Vec<u8>), SealError> {
    let public = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| SealError::BadPublicKey)?;
    let mode = match sender {
        None => OpModeS::Base,
        Some(sender) => {
            let private = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(sender)
                .map_err(|_| SealError::BadPublicKey)?;
            let public = X25519HkdfSha256::sk_to_pk(&private);
            OpModeS::Auth((private, public))
        }
    };
    let (enc, ciphertext) =
        hpke::single_shot_seal::<Aead, Kdf, X25519HkdfSha256>(&mode, &public, info, value, aad)
            .map_err(|_| SealError::BadPublicKey)?;
    Ok((enc.to_bytes().into(), ciphertext))
}

/// HPKE single-shot open; with a `sender` public key, auth mode: it fails unless that key's
/// holder sealed it.
fn hpke_open(
    secret: &[u8; 32],
    sender: Option<&[u8; 32]>,
    info: &[u8],
    aad: &[u8],
    enc: &[u8; 32],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let private = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| SealError::CannotOpen)?;
    let mode = match sender {
        None => OpModeR::Base,
        Some(sender) => OpModeR::Auth(
            <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(sender)
                .map_err(|_| SealError::CannotOpen)?,
        ),
    };
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| SealError::CannotOpen)?;
    hpke::single_shot_open::<Aead, Kdf, X25519HkdfSha256>(
        &mode, &private, &enc, info, ciphertext, aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| SealError::CannotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::KeyScheme;

    fn id(genesis: &Hash) -> SecretId<'_> {
        SecretId {
            genesis_hash: genesis,
            app: AppId(7),
            name: "API_TOKEN",
            revision: 3,
        }
    }

    #[test]
    fn only_the_bound_recipient_opens_a_secret() {
        let genesis = Hash::of(b"chain");
        let worker_secret = [0x11; 32];
        let worker_key = public_key(&worker_secret);
        let aad = for_worker(&id(&genesis), WorkerId(1), &worker_key);
        let sealed = seal(&worker_key, &aad, b"hunter2").unwrap();
        assert_eq!(&*open(&worker_secret, &aad, &sealed).unwrap(), b"hunter2");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));

        // Another worker's key, or the right key with any other binding, opens nothing.
        assert_eq!(open(&[0x22; 32], &aad, &sealed), Err(SealError::CannotOpen));
        let other_genesis = Hash::of(b"other chain");
        let mut bindings = vec![
            for_worker(&id(&other_genesis), WorkerId(1), &worker_key),
            for_worker(&id(&genesis), WorkerId(2), &worker_key),
        ];
        for change in 0..3 {
            let mut moved = id(&genesis);
            match change {
                0 => moved.app = AppId(8),
                1 => moved.name = "DB_PASSWORD",
                _ => moved.revision = 2,
            }
            bindings.push(for_worker(&moved, WorkerId(1), &worker_key));
        }
        for aad in bindings {
            assert_eq!(
                open(&worker_secret, &aad, &sealed),
                Err(SealError::CannotOpen)
            );
        }
    }

    #[test]
    fn a_tampered_seal_does_not_open() {
        let genesis = Hash::of(b"chain");
        let secret = [0x33; 32];
        let key = public_key(&secret);
        let aad = for_worker(&id(&genesis), WorkerId(1), &key);
        let sealed = seal(&key, &aad, b"value").unwrap();
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            let mut bytes = bad.ciphertext.to_vec();
            bytes[i] ^= 1;
            bad.ciphertext = BoundedVec::try_new(bytes).unwrap();
            assert_eq!(open(&secret, &aad, &bad), Err(SealError::CannotOpen));
        }
        let mut bad = sealed.clone();
        bad.enc[0] ^= 1;
        assert_eq!(open(&secret, &aad, &bad), Err(SealError::CannotOpen));
    }

    #[test]
    fn the_owner_reopens_its_copy_from_its_account_key() {
        let genesis = Hash::of(b"chain");
        for scheme in [KeyScheme::Ed25519, KeyScheme::Sr25519] {
            let owner = Keypair::from_seed(scheme, [5; 32]);
            let public = public_key(&owner_secret(&owner));
            let aad = for_owner(&id(&genesis), &owner.account_id());
            let sealed = seal(&public, &aad, b"s3cret").unwrap();
            let again = Keypair::from_seed(scheme, [5; 32]);
            assert_eq!(
                &*open(&owner_secret(&again), &aad, &sealed).unwrap(),
                b"s3cret"
            );
            let stranger = Keypair::from_seed(scheme, [6; 32]);
            assert!(open(&owner_secret(&stranger), &aad, &sealed).is_err());
        }
    }

    #[test]
    fn values_are_bounded() {
        let key = public_key(&[1; 32]);
        assert_eq!(
            seal(&key, b"", &vec![0; MAX_SECRET_BYTES + 1]),
            Err(SealError::TooLarge {
                len: MAX_SECRET_BYTES + 1
            })
        );
        assert!(seal(&key, b"", &vec![0; MAX_SECRET_BYTES]).is_ok());
    }
}
