//! The WeTEE node: a validator of the chain.
//!
//! - [`chain`]: our blocks and keys as Commonware's consensus sees them (the one place that
//!   names Commonware's consensus types).
//! - [`engine`]: one validator wired from Commonware's parts: simplex consensus, marshal
//!   (block archives, ordered delivery, backfill from peers), block broadcast, and ours below.
//! - [`application`]: builds blocks on a parent and judges peers' blocks.
//! - [`executor`]: executes blocks speculatively (proposal, verification) and for good
//!   (finalization) on top of the store.
//! - [`finalizer`]: commits finalized blocks in order, crash-safely, then acknowledges them.
//! - [`ledger`]: the node's shared view: finalized head, mempool, watchers and subscribers.
//! - [`mempool`]: transactions waiting for a block, admitted only after the runtime's checks.
//! - [`gossip`]: transactions passed between validators.
//! - [`signatures`]: each transaction's signature verified once, many in parallel.
//! - [`store`]: the persistent, authenticated state (QMDB) and its in-memory copy.
//! - [`outcomes`]: receipts and events of finalized blocks, for the RPC.
//! - [`rpc`]: JSON-RPC over HTTP and WebSocket, and `/metrics` on a listener of its own (see
//!   `docs/rpc.md`).
//! - [`service`]: a validator process on Tokio with authenticated TCP to the other validators.
//!
//! The node executes the runtime; it must never change what a block means. Everything that
//! decides state lives in `wetee-runtime`, and everything here must be reproducible from the
//! finalized blocks. Nothing a peer or an RPC client sends may panic the node or change stored
//! state except through a valid transaction in a finalized block.

#![forbid(unsafe_code)]

pub mod application;
pub mod chain;
pub mod engine;
pub mod executor;
pub mod finalizer;
pub mod gossip;
pub mod history;
pub mod ledger;
pub mod mempool;
pub mod outcomes;
pub mod rpc;
pub mod service;
pub mod signatures;
pub mod store;

/// The version of what a node keeps on disk beyond the wire formats (pinned by the types'
/// conformance hashes): the state store's and the archives' layouts, and the runtime's own
/// bookkeeping records. A data directory written under another version cannot be read; raise
/// it with any such change. (2: archived blocks and outcomes compressed, the liveness sweep
/// carries the pending queue's retry. 3: each owner's apps and tasks are indexed.)
pub const DATA_FORMAT: u32 = 3;

#[cfg(test)]
mod simulation;
