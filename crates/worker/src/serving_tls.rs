//! The certificate the worker's ingress and owner API present over TLS: for a fresh key made in
//! memory at start, bound by the identity key to the chain and to the evidence the chain holds
//! for this worker (`wetee-tls`). It is issued again when the evidence on chain changes and when
//! half its lifetime has passed, judged by the time of the latest block the worker verified, not
//! by the operator's clock.

use std::sync::Arc;

use rustls::ServerConfig;
use wetee_tls::{CertificateError, CertificateSlot, WorkerCertificate, evidence_hash};
use wetee_types::records::Evidence;
use wetee_types::{Hash, Keypair};

/// How long a certificate is valid.
pub const LIFETIME_MS: u64 = 30 * 24 * 3_600 * 1_000;

/// The certificate being served, and when to issue the next.
#[derive(Debug)]
pub struct ServingCertificate {
    slot: Arc<CertificateSlot>,
    genesis_hash: Hash,
    evidence: Hash,
    issued_ms: u64,
}

impl ServingCertificate {
    /// Issues the first certificate, at the chain time `now_ms`.
    pub fn issue(
        identity: &Keypair,
        genesis_hash: Hash,
        evidence: &Evidence,
        now_ms: u64,
    ) -> Result<ServingCertificate, CertificateError> {
        let evidence = evidence_hash(evidence);
        let certificate = WorkerCertificate::issue(
            identity,
            genesis_hash,
            evidence,
            now_ms.saturating_add(LIFETIME_MS),
        )?;
        Ok(ServingCertificate {
            slot: Arc::new(CertificateSlot::new(certificate.certified_key()?)),
            genesis_hash,
            evidence,
            issued_ms: now_ms,
        })
    }

    /// The server configuration presenting the current certificate, renewals included.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, CertificateError> {
        self.slot.server_config()
    }

    /// Issues a new certificate if the evidence on chain is no longer the one named, or half
    /// the lifetime has passed at the chain time `now_ms`. Whether it did.
    pub fn keep_current(
        &mut self,
        identity: &Keypair,
        evidence: &Evidence,
        now_ms: u64,
    ) -> Result<bool, CertificateError> {
        let evidence = evidence_hash(evidence);
        let due = now_ms.saturating_sub(self.issued_ms) >= LIFETIME_MS / 2;
        if evidence == self.evidence && !due {
            return Ok(false);
        }
        let certificate = WorkerCertificate::issue(
            identity,
            self.genesis_hash,
            evidence,
            now_ms.saturating_add(LIFETIME_MS),
        )?;
        self.slot.replace(certificate.certified_key()?);
        self.evidence = evidence;
        self.issued_ms = now_ms;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::{KeyScheme, TeeKind};

    fn evidence(byte: u8) -> Evidence {
        Evidence {
            kind: TeeKind::Simulated,
            data: wetee_types::codec::BoundedVec::try_new(vec![byte; 8]).unwrap(),
            nonce_height: 1,
        }
    }

    #[test]
    fn a_certificate_is_renewed_for_new_evidence_and_at_half_its_life_only() {
        let identity = Keypair::from_seed(KeyScheme::Ed25519, [5; 32]);
        let mut serving =
            ServingCertificate::issue(&identity, Hash([1; 32]), &evidence(1), 1_000).unwrap();
        assert!(
            !serving
                .keep_current(&identity, &evidence(1), 2_000)
                .unwrap()
        );
        assert!(
            serving
                .keep_current(&identity, &evidence(2), 2_000)
                .unwrap()
        );
        let half = 2_000 + LIFETIME_MS / 2;
        assert!(
            !serving
                .keep_current(&identity, &evidence(2), half - 1)
                .unwrap()
        );
        assert!(serving.keep_current(&identity, &evidence(2), half).unwrap());
    }
}
