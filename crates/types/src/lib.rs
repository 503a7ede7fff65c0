//! WeTEE's on-chain vocabulary.
//!
//! Everything the chain stores or exchanges is defined here, once, with one canonical binary
//! encoding ([`codec`]): accounts and signatures ([`crypto`]), amounts ([`balance`]), ids,
//! resources and TEE kinds, app and task manifests and their TOML form ([`manifest`]),
//! transactions and calls ([`transaction`]), work reports ([`report`]), stored records
//! ([`records`]), events and receipts ([`event`]), errors ([`error`]), and the chain spec ([`spec`]).
//!
//! This crate must not depend on any other WeTEE crate, perform I/O, or read a clock: the
//! runtime, the node, the worker and the CLI all build on it, and the runtime must stay
//! deterministic.

#![forbid(unsafe_code)]

pub mod app_address;
pub mod attestation;
pub mod balance;
pub mod block;
pub mod codec;
pub mod cron;
pub mod crypto;
pub mod error;
pub mod event;
pub mod ids;
pub mod manifest;
pub mod owner;
pub mod params;
pub mod records;
pub mod report;
pub mod resources;
pub mod rpc;
pub mod spec;
pub mod state_keys;
pub mod transaction;
pub mod weight;

pub use balance::Balance;
pub use block::{Block, Header};
pub use crypto::{AccountId, Hash, KeyScheme, Keypair, Signature};
pub use error::{CallError, TxError};
pub use event::{Event, Outcome, Receipt};
pub use ids::{
    AppId, BlockNumber, ComplaintId, EpochNumber, TaskId, TimestampMs, WorkerId, Workload,
};
pub use params::{ChainConfig, Params};
pub use resources::{Prices, Resources, TeeKind, TeeKinds};
pub use spec::ChainSpec;
pub use transaction::{Call, SignedTransaction, Transaction};
pub use weight::{FeeQuote, Weight};
