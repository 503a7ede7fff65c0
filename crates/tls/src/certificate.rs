//! A worker's TLS certificate: a fresh P-256 key made at each start (never written anywhere),
//! self-signed, carrying the [`Binding`] its identity key signed. No certificate authority is
//! involved: clients trust the identity key the chain attested.

use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, CustomExtension, KeyPair, PublicKeyData as _};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use wetee_types::{Hash, Keypair};
use x509_cert::der::Encode as _;
use x509_cert::der::asn1::OctetString;

use crate::binding::{BINDING_OID, Binding};

/// A certificate and its private key, for a TLS server.
pub struct WorkerCertificate {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for WorkerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerCertificate")
            .field("certificate", &self.certificate.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why no certificate could be made.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The key or the certificate could not be generated.
    #[error("cannot make the worker's TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused them.
    #[error("cannot serve TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl WorkerCertificate {
    /// A certificate for a fresh TLS key, bound by `identity` to the chain `genesis_hash` and to
    /// the evidence `evidence_hash`, valid until `not_after_ms`.
    pub fn issue(
        identity: &Keypair,
        genesis_hash: Hash,
        evidence_hash: Hash,
        not_after_ms: u64,
    ) -> Result<WorkerCertificate, CertificateError> {
        let key = KeyPair::generate()?;
        let binding = Binding {
            genesis_hash,
            identity: identity.account_id(),
            evidence_hash,
            not_after_ms,
        };
        let signed = binding.sign(identity, &key.subject_public_key_info());
        // An extension's value holds a DER value: ours is an OCTET STRING.
        let value = OctetString::new(signed)
            .and_then(|octets| octets.to_der())
            .map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        let mut params = CertificateParams::new(vec!["wetee-worker".to_string()])?;
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(BINDING_OID, value));
        let certificate = params.self_signed(&key)?;
        Ok(WorkerCertificate {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The certificate and its key as rustls serves them.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, CertificateError> {
        let key = crate::provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        Ok(Arc::new(CertifiedKey::new(
            vec![self.certificate.clone()],
            key,
        )))
    }

    /// A TLS server configuration presenting only this certificate (HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, CertificateError> {
        let slot = Arc::new(CertificateSlot::new(self.certified_key()?));
        slot.server_config()
    }
}

/// The certificate a server presents now: replaced (renewed) while connections go on.
#[derive(Debug)]
pub struct CertificateSlot {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateSlot {
    /// A slot presenting `certificate`.
    pub fn new(certificate: Arc<CertifiedKey>) -> CertificateSlot {
        CertificateSlot {
            current: RwLock::new(certificate),
        }
    }

    /// Presents `certificate` to new connections from now on.
    pub fn replace(&self, certificate: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = certificate;
    }

    /// A TLS server configuration presenting what this slot holds (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, CertificateError> {
        let mut config = ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}
