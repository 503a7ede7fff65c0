//! TLS bound to a worker's attested identity key (in the spirit of RA-TLS).
//!
//! A worker makes a fresh TLS key at each start and a self-signed certificate for it, carrying
//! a [`binding::Binding`]: the chain, its identity key, the evidence hash and an expiry, signed
//! by the identity key ([`WorkerCertificate`]). An owner's client reads the worker's identity key
//! and evidence from the chain through the light client (where the evidence attested the key)
//! and accepts the connection only for a certificate that key bound to that evidence, presented
//! by a server holding the TLS key ([`WorkerVerifier`]). No certificate authority is trusted or needed.
//!
//! This crate must not trust a host name or a certificate authority for a worker, and holds no
//! key beyond the process's memory.

#![forbid(unsafe_code)]

pub mod binding;
mod certificate;
mod verifier;

pub use certificate::{CertificateError, CertificateSlot, WorkerCertificate};
pub use verifier::{
    ExpectedWorker, WorkerCertError, WorkerVerifier, check_certificate, evidence_hash,
};

/// The one crypto provider (ring), so that no process-wide default is needed.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
