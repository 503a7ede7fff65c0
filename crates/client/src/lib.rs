//! The Rust SDK for WeTEE.
//!
//! - [`app_overview`]: an app as its owner wants to see it (where it runs, why it waits or
//!   failed, how long its deposit lasts), read from the chain.
//! - [`keys`]: account keys from BIP39 mnemonics and Substrate-style secret URIs (`//Alice`),
//!   ed25519 or sr25519.
//! - [`keystore`]: named keys on disk, encrypted under a passphrase.
//! - [`rpc`]: a typed client for a node's JSON-RPC, with transaction signing (fees, nonces)
//!   and waiting for finality.
//! - [`owner_api`]: a worker's owner API (logs, status, metrics), signed, over TLS bound to the
//!   worker's attested identity key.
//! - [`owner_logs`]: opening a workload's logs, which workers keep only sealed to the owner.
//! - [`owner_key`]: the owner's sealing key, published on chain, and opening what workers
//!   sealed to it (an app's failure log).
//! - [`secrets`]: sealing an app's secrets to its worker's attested TEE, after verifying the
//!   worker's evidence locally with the chain's verifier and policy.
//! - [`worker_trust`]: whether a worker's TEE is trusted now, judged through the light client.
//!
//! This crate talks to a node only through its public JSON-RPC; it must never depend on the
//! node or the runtime, so that applications can use it without building a chain.

#![forbid(unsafe_code)]

pub mod app_overview;
pub mod keys;
pub mod keystore;
pub mod light;
pub mod owner_api;
pub mod owner_key;
pub mod owner_logs;
pub mod rpc;
pub mod secrets;
pub mod worker_trust;

/// This machine's clock, in Unix milliseconds: the owner's own, for what the owner signs or
/// judges on their side (never for what a chain decides).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
