//! The worker's TEE-bound keys: an Ed25519 identity key that signs work reports, and an X25519
//! sealing key that owners seal secrets to. In production both are generated inside the TEE and
//! bound into its evidence; here they are generated in process and kept in the worker's data
//! directory (owner-only), which is what the simulated TEE allows on dev chains.

use std::path::{Path, PathBuf};

use wetee_attest::provider::Provider;
use wetee_types::codec::BoundedBytes;
use wetee_types::records::{
    Attestation, Evidence, MAX_EVIDENCE_BYTES, WorkerKeys, key_proof_payload,
};
use wetee_types::{AccountId, Hash, KeyScheme, Keypair};
use zeroize::Zeroizing;

/// What went wrong with the keys.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TEE produced no usable evidence.
    #[error("attestation evidence: {0}")]
    Evidence(String),
    /// No randomness.
    #[error("no randomness from the operating system: {0}")]
    Randomness(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKeys {
    identity_seed: String,
    sealing_secret: String,
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
}

impl std::fmt::Debug for WorkerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerIdentity")
            .field("identity", &self.identity.account_id())
            .finish_non_exhaustive()
    }
}

fn random32() -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(bytes.as_mut()).map_err(|e| IdentityError::Randomness(e.to_string()))?;
    Ok(bytes)
}

fn decode32(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(hex::decode(text).ok()?);
    let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Zeroizing::new(array))
}

impl WorkerIdentity {
    /// Loads the keys from `dir/worker-keys.json`, creating them (owner-only) on first start.
    pub fn load_or_create(dir: &Path) -> Result<WorkerIdentity, IdentityError> {
        let path = dir.join("worker-keys.json");
        let file_error = |reason: String| IdentityError::File {
            path: path.clone(),
            reason,
        };
        if path.exists() {
            let text = Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?,
            );
            let stored: StoredKeys =
                serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?;
            let identity = decode32(&stored.identity_seed)
                .ok_or_else(|| file_error("identity_seed is not 32 bytes of hex".into()))?;
            let sealing = decode32(&stored.sealing_secret)
                .ok_or_else(|| file_error("sealing_secret is not 32 bytes of hex".into()))?;
            return Ok(WorkerIdentity::from_secrets(&identity, &sealing));
        }
        std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
        let identity = random32()?;
        let sealing = random32()?;
        let stored = StoredKeys {
            identity_seed: hex::encode(identity.as_ref()),
            sealing_secret: hex::encode(sealing.as_ref()),
        };
        let text = Zeroizing::new(serde_json::to_string(&stored).unwrap_or_default());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|e| file_error(e.to_string()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| file_error(e.to_string()))?;
        Ok(WorkerIdentity::from_secrets(&identity, &sealing))
    }

    fn from_secrets(identity: &[u8; 32], sealing: &[u8; 32]) -> WorkerIdentity {
        WorkerIdentity {
            identity: Keypair::from_seed(KeyScheme::Ed25519, *identity),
            sealing: x25519_dalek::StaticSecret::from(*sealing),
        }
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
    fn keys_survive_a_restart_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkerIdentity::load_or_create(dir.path()).unwrap();
        let again = WorkerIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.keys(), again.keys());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("worker-keys.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = WorkerIdentity::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(first.keys(), other.keys());
    }

    #[test]
    fn the_evidence_binds_the_keys_and_the_key_proof_binds_the_operator() {
        let dir = tempfile::tempdir().unwrap();
        let worker = WorkerIdentity::load_or_create(dir.path()).unwrap();
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
