//! The certificate extension that binds a TLS key to a worker: the chain, the worker's identity
//! key (attested on that chain), the hash of the evidence it was attested with, an expiry, and
//! the identity key's signature over all of it and the TLS key's SubjectPublicKeyInfo.
//!
//! Encoding (the extension's value, fixed size): version `1` ‖ genesis hash (32) ‖ identity
//! key (32) ‖ evidence hash (32) ‖ not after, Unix ms (8, big endian) ‖ Ed25519 signature (64).
//! Signed: [`BINDING_DOMAIN`] ‖ genesis ‖ identity ‖ evidence ‖ not after ‖ SHA-256(SPKI).

use sha2::{Digest as _, Sha256};
use wetee_types::{AccountId, Hash, Keypair, Signature};

/// Domain tag of the identity key's signature.
pub const BINDING_DOMAIN: &[u8] = b"wetee/worker-tls/v1";
/// The extension's OID: WeTEE's arc for the worker TLS binding.
pub const BINDING_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 61_734, 1, 1];
/// The extension's OID in dotted form.
pub const BINDING_OID_TEXT: &str = "1.3.6.1.4.1.61734.1.1";

const VERSION: u8 = 1;
const ENCODED_LEN: usize = 1 + 32 + 32 + 32 + 8 + 64;

/// What a worker's certificate claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The chain.
    pub genesis_hash: Hash,
    /// The worker's identity key, as registered and attested on chain.
    pub identity: AccountId,
    /// The evidence the identity key was attested with when the certificate was issued.
    pub evidence_hash: Hash,
    /// The certificate is refused after this (Unix milliseconds).
    pub not_after_ms: u64,
}

/// Why a binding is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// Not the encoding above.
    #[error("the worker binding is malformed")]
    Malformed,
    /// The signature does not verify with the identity key, for this TLS key.
    #[error("the worker binding is not signed by its identity key for this TLS key")]
    BadSignature,
}

impl Binding {
    fn payload(&self, spki_der: &[u8]) -> Vec<u8> {
        let mut payload = BINDING_DOMAIN.to_vec();
        payload.extend_from_slice(&self.genesis_hash.0);
        payload.extend_from_slice(&self.identity.0);
        payload.extend_from_slice(&self.evidence_hash.0);
        payload.extend_from_slice(&self.not_after_ms.to_be_bytes());
        payload.extend_from_slice(&Sha256::digest(spki_der));
        payload
    }

    /// The extension's value, signed by `identity` (the key [`Binding::identity`] names) for the
    /// TLS key whose SubjectPublicKeyInfo is `spki_der`.
    pub fn sign(&self, identity: &Keypair, spki_der: &[u8]) -> Vec<u8> {
        let (Signature::Ed25519(signature) | Signature::Sr25519(signature)) =
            identity.sign(&self.payload(spki_der));
        let mut encoded = Vec::with_capacity(ENCODED_LEN);
        encoded.push(VERSION);
        encoded.extend_from_slice(&self.genesis_hash.0);
        encoded.extend_from_slice(&self.identity.0);
        encoded.extend_from_slice(&self.evidence_hash.0);
        encoded.extend_from_slice(&self.not_after_ms.to_be_bytes());
        encoded.extend_from_slice(&signature);
        encoded
    }

    /// Reads an extension's value and checks its signature for the TLS key `spki_der`.
    pub fn verify(encoded: &[u8], spki_der: &[u8]) -> Result<Binding, BindingError> {
        if encoded.len() != ENCODED_LEN || encoded[0] != VERSION {
            return Err(BindingError::Malformed);
        }
        let field = |at: usize| -> [u8; 32] {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&encoded[at..at + 32]);
            bytes
        };
        let mut not_after = [0u8; 8];
        not_after.copy_from_slice(&encoded[97..105]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&encoded[105..]);
        let binding = Binding {
            genesis_hash: Hash(field(1)),
            identity: AccountId(field(33)),
            evidence_hash: Hash(field(65)),
            not_after_ms: u64::from_be_bytes(not_after),
        };
        // Worker identity keys are Ed25519.
        if !Signature::Ed25519(signature).verify(&binding.payload(spki_der), &binding.identity) {
            return Err(BindingError::BadSignature);
        }
        Ok(binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::KeyScheme;

    fn identity(seed: u8) -> Keypair {
        Keypair::from_seed(KeyScheme::Ed25519, [seed; 32])
    }

    fn binding(key: &Keypair) -> Binding {
        Binding {
            genesis_hash: Hash([1; 32]),
            identity: key.account_id(),
            evidence_hash: Hash([2; 32]),
            not_after_ms: 1_000,
        }
    }

    #[test]
    fn a_binding_verifies_for_its_tls_key_only() {
        let key = identity(7);
        let encoded = binding(&key).sign(&key, b"spki");
        assert_eq!(Binding::verify(&encoded, b"spki"), Ok(binding(&key)));
        assert_eq!(
            Binding::verify(&encoded, b"another key"),
            Err(BindingError::BadSignature)
        );
        // Claiming another identity than the signer's.
        let impostor = identity(8);
        let claimed = binding(&key).sign(&impostor, b"spki");
        assert_eq!(
            Binding::verify(&claimed, b"spki"),
            Err(BindingError::BadSignature)
        );
        let mut tampered = encoded.clone();
        tampered[100] ^= 1;
        assert_eq!(
            Binding::verify(&tampered, b"spki"),
            Err(BindingError::BadSignature)
        );
        for malformed in [&encoded[..10], &[], &[2u8; ENCODED_LEN][..]] {
            assert_eq!(
                Binding::verify(malformed, b"spki"),
                Err(BindingError::Malformed)
            );
        }
    }
}
