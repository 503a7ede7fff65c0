//! The client's side: a TLS connection to a worker is accepted only when the certificate carries
//! a [`Binding`] signed by the identity key the caller expects (the one the chain attested, as
//! read through the light client) for this chain and for the evidence the chain holds for that
//! worker, unexpired, for the very key the server proves it holds in the handshake. No
//! certificate authority and no host name are involved.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use wetee_types::codec::encode;
use wetee_types::records::Evidence;
use wetee_types::{AccountId, Hash};
use x509_cert::Certificate;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::{Decode as _, Encode as _};

use crate::binding::{BINDING_OID_TEXT, Binding};

/// Why a worker's certificate is refused, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerCertError {
    /// Not a certificate at all.
    #[error("the worker's certificate cannot be read")]
    Unreadable,
    /// No WeTEE binding: a certificate not made by a worker's identity key.
    #[error("the certificate is not bound to a worker's identity key")]
    NotBound,
    /// The binding itself is refused.
    #[error("{0}")]
    Binding(#[from] crate::binding::BindingError),
    /// Bound to another worker.
    #[error("the certificate is bound to identity key {found}, not to worker's key {expected}")]
    OtherWorker {
        /// The key the chain attested.
        expected: AccountId,
        /// The key the certificate names.
        found: AccountId,
    },
    /// Bound on another chain.
    #[error("the certificate is bound to another chain")]
    OtherChain,
    /// Issued under other evidence than the chain holds for the worker.
    #[error(
        "the certificate names evidence {found}, not the evidence the chain holds for this worker \
         ({expected}): a worker renews it within a block of being attested again, so retry; \
         if this persists, the server is not running as the attested worker"
    )]
    OtherEvidence {
        /// The hash of the evidence on chain.
        expected: Hash,
        /// The hash the certificate names.
        found: Hash,
    },
    /// Past its expiry.
    #[error("the worker's certificate expired")]
    Expired,
}

/// The hash a worker's certificate names its evidence by.
pub fn evidence_hash(evidence: &Evidence) -> Hash {
    Hash::of(&encode(evidence))
}

/// The worker a client expects, as the chain records it (read through the light client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedWorker {
    /// The chain.
    pub genesis_hash: Hash,
    /// The worker's attested identity key.
    pub identity: AccountId,
    /// [`evidence_hash`] of the evidence the chain holds for it.
    pub evidence_hash: Hash,
}

/// Checks an end-entity certificate against the expected worker; the binding it carries.
pub fn check_certificate(
    der: &[u8],
    expected: &ExpectedWorker,
    now_ms: u64,
) -> Result<Binding, WorkerCertError> {
    let certificate = Certificate::from_der(der).map_err(|_| WorkerCertError::Unreadable)?;
    let tbs = &certificate.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| WorkerCertError::Unreadable)?;
    let extension = tbs
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id.to_string() == BINDING_OID_TEXT)
        .ok_or(WorkerCertError::NotBound)?;
    let value = OctetString::from_der(extension.extn_value.as_bytes())
        .map_err(|_| WorkerCertError::NotBound)?;
    let binding = Binding::verify(value.as_bytes(), &spki)?;
    if binding.identity != expected.identity {
        return Err(WorkerCertError::OtherWorker {
            expected: expected.identity,
            found: binding.identity,
        });
    }
    if binding.genesis_hash != expected.genesis_hash {
        return Err(WorkerCertError::OtherChain);
    }
    if binding.evidence_hash != expected.evidence_hash {
        return Err(WorkerCertError::OtherEvidence {
            expected: expected.evidence_hash,
            found: binding.evidence_hash,
        });
    }
    if binding.not_after_ms < now_ms {
        return Err(WorkerCertError::Expired);
    }
    Ok(binding)
}

/// Accepts only the certificate of one worker.
#[derive(Debug)]
pub struct WorkerVerifier {
    expected: ExpectedWorker,
    algorithms: WebPkiSupportedAlgorithms,
}

impl WorkerVerifier {
    /// A verifier for the `expected` worker.
    pub fn new(expected: ExpectedWorker) -> WorkerVerifier {
        WorkerVerifier {
            expected,
            algorithms: crate::provider().signature_verification_algorithms,
        }
    }

    /// A TLS client configuration that talks to this worker only (HTTP/1.1).
    pub fn client_config(self) -> Result<ClientConfig, rustls::Error> {
        let mut config = ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ServerCertVerifier for WorkerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "a worker presents its certificate alone".into(),
            ));
        }
        let now_ms = now.as_secs().saturating_mul(1_000);
        check_certificate(end_entity, &self.expected, now_ms)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkerCertificate;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use wetee_types::{KeyScheme, Keypair};

    const GENESIS: Hash = Hash([3; 32]);

    fn identity(seed: u8) -> Keypair {
        Keypair::from_seed(KeyScheme::Ed25519, [seed; 32])
    }

    const EVIDENCE: Hash = Hash([9; 32]);

    fn expected(identity: AccountId) -> ExpectedWorker {
        ExpectedWorker {
            genesis_hash: GENESIS,
            identity,
            evidence_hash: EVIDENCE,
        }
    }

    /// A handshake between a server presenting `certificate` and a client expecting `expected`;
    /// what the client read, or why it refused.
    async fn handshake(
        certificate: &WorkerCertificate,
        expected: ExpectedWorker,
    ) -> Result<String, String> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(certificate.server_config().unwrap());
        let server = tokio::spawn(async move {
            let mut stream = acceptor
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            stream
                .write_all(b"hello")
                .await
                .map_err(|e| e.to_string())?;
            stream.shutdown().await.map_err(|e| e.to_string())
        });
        let config = WorkerVerifier::new(expected).client_config().unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("worker.invalid").unwrap();
        let result = async {
            let mut stream = connector
                .connect(name, client_io)
                .await
                .map_err(|e| e.to_string())?;
            let mut read = String::new();
            stream
                .read_to_string(&mut read)
                .await
                .map_err(|e| e.to_string())?;
            Ok(read)
        }
        .await;
        let _ = server.await;
        result
    }

    #[tokio::test]
    async fn a_client_talks_only_to_the_worker_whose_identity_it_expects() {
        let worker = identity(1);
        let far_future = 4_000_000_000_000;
        let certificate = WorkerCertificate::issue(&worker, GENESIS, EVIDENCE, far_future).unwrap();
        assert_eq!(
            handshake(&certificate, expected(worker.account_id())).await,
            Ok("hello".into())
        );
        // The same certificate, when another worker was expected.
        let refused = handshake(&certificate, expected(identity(2).account_id()))
            .await
            .unwrap_err();
        assert!(refused.contains("not to worker's key"), "{refused}");
        // The same worker, when the chain holds other evidence for it.
        let attested_again = ExpectedWorker {
            evidence_hash: Hash([8; 32]),
            ..expected(worker.account_id())
        };
        let refused = handshake(&certificate, attested_again).await.unwrap_err();
        assert!(
            refused.contains("not the evidence the chain holds"),
            "{refused}"
        );
    }

    #[test]
    fn certificates_of_another_chain_expired_or_unbound_are_refused() {
        let worker = identity(1);
        let id = expected(worker.account_id());
        let certificate = WorkerCertificate::issue(&worker, GENESIS, EVIDENCE, 5_000).unwrap();
        let der = certificate.der();
        assert!(check_certificate(der, &id, 4_999).is_ok());
        let other_chain = ExpectedWorker {
            genesis_hash: Hash([4; 32]),
            ..id
        };
        assert_eq!(
            check_certificate(der, &other_chain, 0),
            Err(WorkerCertError::OtherChain)
        );
        let other_evidence = ExpectedWorker {
            evidence_hash: Hash([4; 32]),
            ..id
        };
        assert_eq!(
            check_certificate(der, &other_evidence, 0),
            Err(WorkerCertError::OtherEvidence {
                expected: Hash([4; 32]),
                found: EVIDENCE
            })
        );
        assert_eq!(
            check_certificate(der, &id, 5_001),
            Err(WorkerCertError::Expired)
        );
        // An ordinary self-signed certificate, as anyone could make.
        let key = rcgen::KeyPair::generate().unwrap();
        let plain = rcgen::CertificateParams::new(vec!["worker".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            check_certificate(plain.der(), &id, 0),
            Err(WorkerCertError::NotBound)
        );
        assert_eq!(
            check_certificate(b"not a certificate", &id, 0),
            Err(WorkerCertError::Unreadable)
        );
    }
}
