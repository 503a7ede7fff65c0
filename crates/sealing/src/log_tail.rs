//! An app's last log lines, sealed by the worker's TEE to the app's owner.
//!
//! When a worker reports that it cannot run an app, the output that explains why may hold
//! anything the app printed. It goes on chain sealed with HPKE to the owner's sealing key
//! (published with `set_sealing_key`), padded so that its size says nothing; what is public is
//! a hiding commitment, BLAKE3 over a fresh random nonce and the text, which tells an observer
//! nothing, not even whether a guessed line is in it.
//!
//! HPKE's base mode does not say who sealed: anyone can seal to the owner's public key. What
//! makes the text the TEE's is the runtime, which stores a failure report only with the
//! worker's identity-key signature over the commitment and the sealed text. An owner must
//! therefore open a failure record read with a proof from the chain's state (the light
//! client), never one a node merely says it holds.

use crate::{SealError, hpke_open, hpke_seal};
use wetee_types::codec::BoundedVec;
use wetee_types::records::{MAX_LOG_TAIL_BYTES, SealedLog};
use wetee_types::{AccountId, AppId, Hash, WorkerId};
use zeroize::Zeroizing;

/// HPKE `info` of every sealed log tail.
pub const INFO: &[u8] = b"wetee/failure-log/v1";
/// Domain of the public commitment.
const COMMITMENT_DOMAIN: &[u8] = b"wetee/failure-log-commitment/v1";
const NONCE_BYTES: usize = 32;

/// Whose log it is: bound into the seal, so a tail moved to another app, worker, owner or
/// chain does not open.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The chain.
    pub genesis_hash: &'a Hash,
    /// The app.
    pub app: AppId,
    /// The app's version that failed.
    pub version: u32,
    /// The worker that reports it.
    pub worker: WorkerId,
    /// The app's owner.
    pub owner: &'a AccountId,
}

impl Binding<'_> {
    fn aad(&self, recipient: &[u8; 32]) -> Vec<u8> {
        let mut aad = INFO.to_vec();
        aad.extend_from_slice(&self.genesis_hash.0);
        aad.extend_from_slice(&self.app.0.to_be_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad.extend_from_slice(&self.worker.0.to_be_bytes());
        aad.extend_from_slice(&self.owner.0);
        aad.extend_from_slice(recipient);
        aad
    }
}

/// A log tail ready for a failure report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The public commitment.
    pub digest: Hash,
    /// The tail sealed to the owner, when the owner has a sealing key.
    pub sealed: Option<SealedLog>,
}

fn commitment(nonce: &[u8], tail: &[u8]) -> Hash {
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        COMMITMENT_DOMAIN.len() + 32 + tail.len(),
    ));
    bytes.extend_from_slice(COMMITMENT_DOMAIN);
    bytes.extend_from_slice(nonce);
    bytes.extend_from_slice(tail);
    Hash::of(&bytes)
}

/// Commits to `tail` and seals it to `owner_key` (the owner's X25519 sealing key), if any.
/// Without a key the tail is lost: the commitment alone reveals nothing.
pub fn seal(
    binding: &Binding,
    owner_key: Option<&[u8; 32]>,
    tail: &str,
) -> Result<Sealed, SealError> {
    if tail.len() > MAX_LOG_TAIL_BYTES {
        return Err(SealError::TooLarge { len: tail.len() });
    }
    let mut plain = Zeroizing::new(vec![0u8; NONCE_BYTES]);
    getrandom::getrandom(&mut plain).map_err(|_| SealError::NoRandomness)?;
    let digest = commitment(&plain[..NONCE_BYTES], tail.as_bytes());
    // The length fits: at most MAX_LOG_TAIL_BYTES, checked above.
    plain.extend_from_slice(&(tail.len() as u16).to_be_bytes());
    plain.extend_from_slice(tail.as_bytes());
    plain.resize(NONCE_BYTES + 2 + MAX_LOG_TAIL_BYTES, 0);
    let sealed = match owner_key {
        None => None,
        Some(key) => {
            let (enc, ciphertext) = hpke_seal(None, key, INFO, &binding.aad(key), &plain)?;
            Some(SealedLog {
                enc,
                ciphertext: BoundedVec::try_new(ciphertext)
                    .map_err(|_| SealError::TooLarge { len: tail.len() })?,
            })
        }
    };
    Ok(Sealed { digest, sealed })
}

/// Opens a sealed tail with the owner's sealing secret and checks it against the public
/// commitment (which says the text is the one the report committed to; that the report is the
/// worker's, only a proven failure record says). Invalid UTF-8 (a tail clipped by a foreign worker) is shown with replacement
/// characters rather than refused.
pub fn open(
    owner_secret: &[u8; 32],
    binding: &Binding,
    digest: &Hash,
    sealed: &SealedLog,
) -> Result<Zeroizing<String>, SealError> {
    let key = crate::public_key(owner_secret);
    let plain = hpke_open(
        owner_secret,
        None,
        INFO,
        &binding.aad(&key),
        &sealed.enc,
        &sealed.ciphertext,
    )?;
    let (nonce, rest) = plain
        .split_at_checked(NONCE_BYTES)
        .ok_or(SealError::NotCommitted)?;
    let (length, padded) = rest.split_at_checked(2).ok_or(SealError::NotCommitted)?;
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let tail = padded.get(..length).ok_or(SealError::NotCommitted)?;
    if commitment(nonce, tail) != *digest {
        return Err(SealError::NotCommitted);
    }
    Ok(Zeroizing::new(String::from_utf8_lossy(tail).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::records::MAX_SEALED_LOG_BYTES;
    use wetee_types::{KeyScheme, Keypair};

    fn owner() -> Keypair {
        Keypair::from_seed(KeyScheme::Sr25519, [9; 32])
    }

    /// Version 2 of app 3 failing on worker 1.
    fn binding<'a>(genesis: &'a Hash, owner: &'a AccountId) -> Binding<'a> {
        Binding {
            genesis_hash: genesis,
            app: AppId(3),
            version: 2,
            worker: WorkerId(1),
            owner,
        }
    }

    #[test]
    fn only_the_owner_opens_the_tail_and_it_matches_the_commitment() {
        let genesis = Hash::of(b"chain");
        let owner = owner();
        let account = owner.account_id();
        let binding = binding(&genesis, &account);
        let secret = crate::owner_secret(&owner);
        let key = crate::public_key(&secret);
        let tail = "config: missing DATABASE_URL\n";
        let report = seal(&binding, Some(&key), tail).unwrap();
        let sealed = report.sealed.as_ref().unwrap();
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"DATABAS"));
        // Every tail seals to the same size.
        let short = seal(&binding, Some(&key), "x").unwrap().sealed.unwrap();
        assert_eq!(sealed.ciphertext.len(), short.ciphertext.len());
        assert_eq!(sealed.ciphertext.len(), MAX_SEALED_LOG_BYTES);
        assert_eq!(
            open(&secret, &binding, &report.digest, sealed)
                .unwrap()
                .as_str(),
            tail
        );

        let stranger = crate::owner_secret(&Keypair::from_seed(KeyScheme::Sr25519, [8; 32]));
        assert_eq!(
            open(&stranger, &binding, &report.digest, sealed),
            Err(SealError::CannotOpen)
        );
        for moved in [
            Binding {
                app: AppId(4),
                ..binding
            },
            Binding {
                version: 3,
                ..binding
            },
        ] {
            assert_eq!(
                open(&secret, &moved, &report.digest, sealed),
                Err(SealError::CannotOpen)
            );
        }
        // A tail the worker did not commit to (a replayed one from another failure) is refused.
        let other = seal(&binding, Some(&key), tail).unwrap();
        assert_eq!(
            open(&secret, &binding, &other.digest, sealed),
            Err(SealError::NotCommitted)
        );
    }

    #[test]
    fn the_commitment_hides_the_text() {
        let genesis = Hash::of(b"chain");
        let account = owner().account_id();
        let binding = binding(&genesis, &account);
        // Same text twice: unrelated digests, so a guess cannot be confirmed by hashing it.
        let one = seal(&binding, None, "exit 1").unwrap();
        let two = seal(&binding, None, "exit 1").unwrap();
        assert_ne!(one.digest, two.digest);
        assert!(one.sealed.is_none());
        assert_ne!(one.digest, Hash::of(b"exit 1"));
    }

    #[test]
    fn tails_are_bounded() {
        let genesis = Hash::of(b"chain");
        let account = owner().account_id();
        let binding = binding(&genesis, &account);
        let key = crate::public_key(&[1; 32]);
        let full = "x".repeat(MAX_LOG_TAIL_BYTES);
        assert!(seal(&binding, Some(&key), &full).is_ok());
        assert_eq!(
            seal(&binding, Some(&key), &format!("{full}y")),
            Err(SealError::TooLarge {
                len: MAX_LOG_TAIL_BYTES + 1
            })
        );
    }
}
