//! The worker's TEE-bound keys: an Ed25519 identity key that signs work reports, and an X25519
//! sealing key that owners seal secrets to. Both are generated inside the TEE, bound into its
//! evidence, and kept between restarts by a [`KeyStore`] that the operator cannot read (only the
//! simulated TEE's store is a plain file).

use std::path::Path;

use wetee_attest::provider::Provider;
use wetee_types::codec::BoundedBytes;
use wetee_types::records::{
    Attestation, Evidence, MAX_EVIDENCE_BYTES, WorkerKeys, key_proof_payload,
};
use wetee_types::{AccountId, Hash, KeyScheme, Keypair};
use zeroize::Zeroizing;

use crate::keys::file::KeyFile;
use crate::keys::{KeyMaterial, KeyStore, KeyStoreError};

/// What went wrong with the keys.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The keys could not be kept or found.
    #[error("the worker's keys: {0}")]
    Store(#[from] KeyStoreError),
    /// The TEE produced no usable evidence.
    #[error("attestation evidence: {0}")]
    Evidence(String),
}

/// A recent finalized block, whose hash fresh evidence is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    /// Its height.
    pub height: wetee_types::BlockNumber,
    /// Its hash.
    pub hash: Hash,
}

/// The worker's keys.
pub struct WorkerIdentity {
    identity: Keypair,
    sealing: x25519_dalek::StaticSecret,
    /// Why this machine's layout may not give secrets to containers ([`crate::topology`]).
    secrets_refusal: Option<String>,
}

impl std::fmt::Debug for WorkerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerIdentity")
            .field("identity", &self.identity.account_id())
            .finish_non_exhaustive()
    }
}

impl WorkerIdentity {
    /// The keys `store` kept, or new ones it keeps from now on.
    pub fn open(store: &dyn KeyStore) -> Result<WorkerIdentity, IdentityError> {
        let keys = match store.load()? {
            Some(keys) => keys,
            None => {
                let keys = KeyMaterial::generate()?;
                store.save(&keys)?;
                keys
            }
        };
        Ok(WorkerIdentity::from_secrets(
            &keys.identity_seed,
            &keys.sealing_secret,
        ))
    }

    /// The keys in the simulated TEE's plain file in `dir`, which protects nothing: for dev
    /// chains and tests only.
    pub fn open_unprotected(dir: &Path) -> Result<WorkerIdentity, IdentityError> {
        WorkerIdentity::open(&KeyFile::unprotected(dir))
    }

    fn from_secrets(identity: &[u8; 32], sealing: &[u8; 32]) -> WorkerIdentity {
        WorkerIdentity {
            identity: Keypair::from_seed(KeyScheme::Ed25519, *identity),
            sealing: x25519_dalek::StaticSecret::from(*sealing),
            secrets_refusal: None,
        }
    }

    /// From now on, opens no secret for a container, for `reason`.
    pub fn refuse_secrets(&mut self, reason: String) {
        self.secrets_refusal = Some(reason);
    }

    /// Why no secret is opened for a container, if none is.
    pub fn secrets_refusal(&self) -> Option<&str> {
        self.secrets_refusal.as_deref()
    }

    /// The public keys.
    pub fn keys(&self) -> WorkerKeys {
        WorkerKeys {
            identity: self.identity.account_id().0,
            sealing: x25519_dalek::PublicKey::from(&self.sealing).to_bytes(),
        }
    }

    /// The identity key, which signs work reports.
    pub fn identity(&self) -> &Keypair {
        &self.identity
    }

    /// The report data evidence must carry: SHA-512 over the domain tag, the genesis hash, the
    /// identity and sealing public keys, and a nonce.
    pub fn report_data(&self, genesis_hash: &Hash, nonce: &[u8; 32]) -> [u8; 64] {
        wetee_types::attestation::worker_report_data(genesis_hash, &self.keys(), nonce)
    }

    /// The sealing secret, for sealing a workload's output to its owner as this worker (see
    /// `wetee_sealing::log_batch`); zeroized when dropped.
    pub fn sealing_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.sealing.to_bytes())
    }

    /// Opens a secret an owner sealed to this worker's sealing key, with the associated data
    /// the chain's record implies. The value never leaves memory and is zeroized when dropped.
    pub fn open_secret(
        &self,
        aad: &[u8],
        sealed: &wetee_types::records::SealedBox,
    ) -> Result<Zeroizing<Vec<u8>>, wetee_sealing::SealError> {
        let secret = Zeroizing::new(self.sealing.to_bytes());
        wetee_sealing::open(&secret, aad, sealed)
    }

    /// Fresh evidence from `provider` binding these keys to this chain and to the recent block
    /// `nonce`.
    pub fn evidence(
        &self,
        provider: &dyn Provider,
        genesis_hash: &Hash,
        nonce: &Nonce,
    ) -> Result<Evidence, IdentityError> {
        let produced = provider
            .produce(&self.report_data(genesis_hash, &nonce.hash.0))
            .map_err(|e| IdentityError::Evidence(e.to_string()))?;
        let bytes = produced
            .for_chain()
            .map_err(|e| IdentityError::Evidence(e.to_string()))?;
        let data = BoundedBytes::try_new(bytes).map_err(|_| {
            IdentityError::Evidence(format!(
                "the evidence is larger than the {MAX_EVIDENCE_BYTES} bytes the chain accepts"
            ))
        })?;
        Ok(Evidence {
            kind: produced.kind,
            data,
            nonce_height: nonce.height,
        })
    }

    /// An attestation for registering as `operator`: fresh evidence (see [`Self::evidence`]),
    /// and the identity key's proof that it serves `operator`.
    pub fn attestation(
        &self,
        provider: &dyn Provider,
        genesis_hash: &Hash,
        operator: &AccountId,
        nonce: &Nonce,
    ) -> Result<Attestation, IdentityError> {
        let keys = self.keys();
        let evidence = self.evidence(provider, genesis_hash, nonce)?;
        let signature = self
            .identity
            .sign(&key_proof_payload(genesis_hash, operator, &keys));
        Ok(Attestation {
            keys,
            evidence,
            key_proof: *signature.as_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_restart_in_their_store_and_differ_between_workers() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkerIdentity::open_unprotected(dir.path()).unwrap();
        let again = WorkerIdentity::open_unprotected(dir.path()).unwrap();
        assert_eq!(first.keys(), again.keys());
        let other = WorkerIdentity::open_unprotected(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(first.keys(), other.keys());
        let memory = crate::keys::memory::MemoryOnly;
        let once = WorkerIdentity::open(&memory).unwrap();
        assert_ne!(once.keys(), WorkerIdentity::open(&memory).unwrap().keys());
    }

    #[test]
    fn the_evidence_binds_the_keys_and_the_key_proof_binds_the_operator() {
        let dir = tempfile::tempdir().unwrap();
        let worker = WorkerIdentity::open_unprotected(dir.path()).unwrap();
        let genesis = Hash::of(b"chain");
        let operator = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]).account_id();
        let nonce = Nonce {
            height: 4,
            hash: Hash([4; 32]),
        };
        let attestation = worker
            .attestation(
                &wetee_attest::provider::Simulated,
                &genesis,
                &operator,
                &nonce,
            )
            .unwrap();
        assert_eq!(attestation.evidence.kind, wetee_types::TeeKind::Simulated);
        let verdict = wetee_attest::verify(
            attestation.evidence.data.as_ref(),
            Some(attestation.evidence.kind),
            &wetee_attest::Collateral::Vcek(Vec::new()),
            1_800_000_000,
            &wetee_attest::Policy {
                allow_simulated: true,
                report_data: Some(worker.report_data(&genesis, &nonce.hash.0)),
                ..wetee_attest::Policy::default()
            },
        );
        assert!(verdict.valid, "{verdict:?}");
        let payload = key_proof_payload(&genesis, &operator, &attestation.keys);
        let signature = wetee_types::Signature::Ed25519(attestation.key_proof);
        assert!(signature.verify(&payload, &AccountId(attestation.keys.identity)));
        let someone_else = Keypair::from_seed(KeyScheme::Sr25519, [2; 32]).account_id();
        let payload = key_proof_payload(&genesis, &someone_else, &attestation.keys);
        assert!(!signature.verify(&payload, &AccountId(attestation.keys.identity)));
    }
}
