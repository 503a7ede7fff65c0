//! Which headers are final: a finalization certificate from a quorum of the chain spec's
//! validators, over the header's hash, under the chain's consensus namespace.
//!
//! Everything here is derived from the chain spec alone ([`Anchor::new`]). A node's answer is
//! only bytes to check: the header is hashed here, the certificate is checked against the
//! spec's validators here, and a header without its own certificate is accepted only when a
//! certified descendant links back to it by parent hashes.

use bytes::Bytes;
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_consensus::types::Epoch;
use commonware_utils::ordered::Set;
use wetee_types::{ChainSpec, Hash, Header};

/// A validator's consensus public key.
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;
/// Block digests: the BLAKE3 block hash of [`Header::hash`].
pub type Digest = commonware_cryptography::blake3::Digest;
/// The signing scheme of votes and certificates: ed25519, one signature per validator.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
/// A finalization certificate.
pub type Finalization = commonware_consensus::simplex::types::Finalization<Scheme, Digest>;

/// Most headers a finality proof may link from the certified one back to the proven one.
pub const MAX_LINKED_HEADERS: usize = 64;

/// Why a header is not accepted as final.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    /// The chain spec's validator set is unusable.
    #[error("chain spec: {0}")]
    Spec(String),
    /// The certificate's bytes do not decode for this validator set.
    #[error("finalization certificate does not decode: {0}")]
    Malformed(String),
    /// The certificate is for another epoch than the chain's only one.
    #[error("finalization certificate is for epoch {0}; the chain has only epoch 0")]
    Epoch(u64),
    /// The signatures are not a quorum of the spec's validators for this proposal.
    #[error(
        "finalization certificate is not signed by a quorum of the chain's {validators} validators"
    )]
    Signatures {
        /// Size of the validator set.
        validators: usize,
    },
    /// The certificate certifies another block than the headers given.
    #[error("finalization certificate is for block {certified}, not for header {header}")]
    OtherBlock {
        /// The certified digest.
        certified: Hash,
        /// The header it was offered for.
        header: Hash,
    },
    /// The certificate's view does not match the header's recorded consensus context.
    #[error(
        "finalization certificate is for view {certified}, header {height} records view {recorded}"
    )]
    View {
        /// The certified view.
        certified: u64,
        /// The header's recorded view.
        recorded: u64,
        /// The header's height.
        height: u64,
    },
    /// The descendants do not link back to the header.
    #[error("header {height} does not link to its parent at height {parent_height}")]
    Broken {
        /// Height of the header whose parent link fails.
        height: u64,
        /// Height it should link to.
        parent_height: u64,
    },
    /// Too many descendants.
    #[error("finality proof links {0} headers; at most {MAX_LINKED_HEADERS} are accepted")]
    TooLong(usize),
}

/// Our hash as a consensus digest.
pub fn digest(hash: &Hash) -> Digest {
    commonware_cryptography::blake3::Digest(hash.0)
}

/// A consensus digest as our hash.
pub fn hash(digest: &Digest) -> Hash {
    Hash(digest.0)
}

/// The 32 bytes of a consensus public key.
pub fn key_bytes(key: &PublicKey) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let encoded = key.encode();
    bytes.copy_from_slice(&encoded[..32.min(encoded.len())]);
    bytes
}

/// A consensus public key from its 32 bytes; `None` if they are not a valid key.
pub fn public_key(bytes: &[u8; 32]) -> Option<PublicKey> {
    PublicKey::decode(Bytes::copy_from_slice(bytes)).ok()
}

/// The namespace of every consensus signature: votes of one chain never count on another.
pub fn namespace(spec: &ChainSpec) -> Vec<u8> {
    let mut namespace = b"wetee/consensus/v1/".to_vec();
    namespace.extend_from_slice(&spec.genesis_hash().0);
    namespace
}

/// The validators of `spec` as consensus keys, in the order certificates index them (sorted,
/// without duplicates).
pub fn validators(spec: &ChainSpec) -> Result<Set<PublicKey>, FinalityError> {
    let keys = spec
        .validator_keys()
        .map_err(|e| FinalityError::Spec(e.to_string()))?;
    let keys = keys
        .iter()
        .map(|bytes| {
            public_key(bytes).ok_or_else(|| {
                FinalityError::Spec(format!("{} is not an ed25519 public key", Hash(*bytes)))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Set::from_iter_dedup(keys))
}

/// The trust anchor of a light client: the chain spec's genesis hash and validator set.
#[derive(Clone)]
pub struct Anchor {
    genesis_hash: Hash,
    validators: usize,
    verifier: Scheme,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor")
            .field("genesis_hash", &self.genesis_hash)
            .field("validators", &self.validators)
            .finish()
    }
}

impl Anchor {
    /// The anchor of the chain `spec` describes.
    pub fn new(spec: &ChainSpec) -> Result<Anchor, FinalityError> {
        let set = validators(spec)?;
        if set.is_empty() {
            return Err(FinalityError::Spec("the spec names no validator".into()));
        }
        Ok(Anchor {
            genesis_hash: spec.genesis_hash(),
            validators: set.len(),
            verifier: Scheme::verifier(&namespace(spec), set),
        })
    }

    /// The chain's genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// How many validators sign.
    pub fn validators(&self) -> usize {
        self.validators
    }

    /// Decodes a certificate for this validator set (bounded by its size).
    pub fn decode_finalization(&self, bytes: &[u8]) -> Result<Finalization, FinalityError> {
        Finalization::decode_cfg(Bytes::copy_from_slice(bytes), &self.validators)
            .map_err(|e| FinalityError::Malformed(e.to_string()))
    }

    /// Checks that `header` is final: `finalization` is the certificate of `header` itself
    /// (no descendants) or of the last of `descendants`, which must link back to `header` by
    /// parent hashes, one height at a time. Returns the header's hash.
    pub fn verify(
        &self,
        header: &Header,
        descendants: &[Header],
        finalization: &Finalization,
    ) -> Result<Hash, FinalityError> {
        if descendants.len() > MAX_LINKED_HEADERS {
            return Err(FinalityError::TooLong(descendants.len()));
        }
        let proven = header.hash();
        let mut parent = (header.height, proven);
        for child in descendants {
            if child.parent != parent.1 || Some(child.height) != parent.0.checked_add(1) {
                return Err(FinalityError::Broken {
                    height: child.height,
                    parent_height: parent.0,
                });
            }
            parent = (child.height, child.hash());
        }
        let certified_header = descendants.last().unwrap_or(header);
        let certified = hash(&finalization.proposal.payload);
        if certified != parent.1 {
            return Err(FinalityError::OtherBlock {
                certified,
                header: parent.1,
            });
        }
        let epoch = finalization.round().epoch();
        if epoch != Epoch::zero() {
            return Err(FinalityError::Epoch(epoch.get()));
        }
        let view = finalization.round().view().get();
        if view != certified_header.context.view {
            return Err(FinalityError::View {
                certified: view,
                recorded: certified_header.context.view,
                height: certified_header.height,
            });
        }
        // Batch verification is only sound with unpredictable coefficients.
        let mut rng = rand::rng();
        if !finalization.verify(&mut rng, &self.verifier, &commonware_parallel::Sequential) {
            return Err(FinalityError::Signatures {
                validators: self.validators,
            });
        }
        Ok(proven)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{finalize, header, seed, spec};
    use commonware_consensus::simplex::types::Finalize;
    use commonware_cryptography::Signer as _;
    use commonware_cryptography::ed25519::PrivateKey;
    use commonware_utils::iter::NonEmpty;
    use wetee_types::{KeyScheme, Keypair};

    #[test]
    fn a_quorum_of_the_specs_validators_makes_a_header_final() {
        let spec = spec("wetee-test", 4);
        let anchor = Anchor::new(&spec).unwrap();
        let one = header(1, Hash::of(b"genesis"), 3);
        let proof = finalize(&spec, &one, &[0, 1, 2]);
        // Through its bytes, as a light client receives it.
        let decoded = anchor.decode_finalization(&proof.encode()).unwrap();
        assert_eq!(anchor.verify(&one, &[], &decoded), Ok(one.hash()));
        // All four sign too.
        let all = finalize(&spec, &one, &[0, 1, 2, 3]);
        assert_eq!(anchor.verify(&one, &[], &all), Ok(one.hash()));
    }

    #[test]
    fn a_header_is_final_through_a_certified_descendant_linked_by_parents() {
        let spec = spec("wetee-test", 4);
        let anchor = Anchor::new(&spec).unwrap();
        let one = header(1, Hash::of(b"genesis"), 3);
        let two = header(2, one.hash(), 4);
        let three = header(3, two.hash(), 5);
        let certified = finalize(&spec, &three, &[1, 2, 3]);
        assert_eq!(
            anchor.verify(&one, &[two, three], &certified),
            Ok(one.hash())
        );
        // A gap or a foreign link breaks the chain.
        assert!(matches!(
            anchor.verify(&one, &[three], &certified),
            Err(FinalityError::Broken { .. })
        ));
        let stranger = header(2, Hash::of(b"elsewhere"), 4);
        assert!(matches!(
            anchor.verify(&one, &[stranger, three], &certified),
            Err(FinalityError::Broken { .. })
        ));
        let long = vec![three; MAX_LINKED_HEADERS + 1];
        assert!(matches!(
            anchor.verify(&one, &long, &certified),
            Err(FinalityError::TooLong(_))
        ));
    }

    #[test]
    fn too_few_signers_unknown_signers_another_chain_or_another_block_are_refused() {
        let chain = spec("wetee-test", 4);
        let anchor = Anchor::new(&chain).unwrap();
        let one = header(1, Hash::of(b"genesis"), 3);

        // Two of four is not a quorum (three).
        let quorum = finalize(&chain, &one, &[0, 1, 2]);
        // The library will not assemble it: keep two of a quorum's signatures by hand.
        let mut two = quorum.clone();
        let kept: Vec<_> = quorum.certificate.signers.iter().take(2).collect();
        two.certificate.signers =
            commonware_cryptography::certificate::Signers::new(4, kept).unwrap();
        two.certificate.signatures.truncate(2);
        let two = anchor.decode_finalization(&two.encode()).unwrap();
        assert_eq!(
            anchor.verify(&one, &[], &two),
            Err(FinalityError::Signatures { validators: 4 })
        );
        // A truncated certificate does not decode.
        let mut bytes = quorum.encode().to_vec();
        bytes.truncate(bytes.len() - 64);
        assert!(anchor.decode_finalization(&bytes).is_err());

        // Signed by the validators of another chain (same keys, other genesis).
        let other = spec("another-chain", 4);
        let foreign = finalize(&other, &one, &[0, 1, 2]);
        assert_eq!(
            anchor.verify(&one, &[], &foreign),
            Err(FinalityError::Signatures { validators: 4 })
        );

        // Signed by keys that are not the spec's validators (a set of 4 others).
        let mut strangers = chain.clone();
        for (i, v) in strangers.validators.iter_mut().enumerate() {
            v.public_key = hex::encode(
                Keypair::from_seed(KeyScheme::Ed25519, seed(i as u8 + 10))
                    .account_id()
                    .0,
            );
        }
        let set = validators(&strangers).unwrap();
        let proposal = quorum.proposal.clone();
        let votes: Vec<_> = (0..3u8)
            .map(|i| {
                let key = PrivateKey::decode(Bytes::copy_from_slice(&seed(i + 10))).unwrap();
                let scheme = Scheme::signer(&namespace(&chain), set.clone(), key).unwrap();
                Finalize::sign(&scheme, proposal.clone()).unwrap()
            })
            .collect();
        let forged = Finalization::from_finalizes(
            &Scheme::verifier(&namespace(&chain), set),
            NonEmpty::try_new(votes.iter()).unwrap(),
            &commonware_parallel::Sequential,
        )
        .unwrap();
        assert_eq!(
            anchor.verify(&one, &[], &forged),
            Err(FinalityError::Signatures { validators: 4 })
        );

        // A damaged signature.
        let mut bytes = quorum.encode().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let damaged = anchor.decode_finalization(&bytes).unwrap();
        assert_eq!(
            anchor.verify(&one, &[], &damaged),
            Err(FinalityError::Signatures { validators: 4 })
        );

        // The right certificate offered for another header, or a header at another view.
        let mut tampered = one;
        tampered.state_root = Hash::of(b"forged");
        assert!(matches!(
            anchor.verify(&tampered, &[], &quorum),
            Err(FinalityError::OtherBlock { .. })
        ));

        // Garbage and an empty input never panic.
        for junk in [&[][..], &[0u8; 3][..], &[0xff; 600][..]] {
            assert!(anchor.decode_finalization(junk).is_err());
        }
    }

    #[test]
    fn the_validator_set_is_the_specs_sorted_and_deduplicated() {
        let mut chain = spec("wetee-test", 4);
        let set = validators(&chain).unwrap();
        chain.validators.reverse();
        assert_eq!(validators(&chain).unwrap(), set);
        assert_eq!(Anchor::new(&chain).unwrap().validators(), 4);
        let own = PrivateKey::decode(Bytes::copy_from_slice(&seed(0)))
            .unwrap()
            .public_key();
        assert!(set.iter().any(|key| *key == own));
    }
}
