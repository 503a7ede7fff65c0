//! The WeTEE node.
//!
//! - [`chain`]: our blocks and keys as Commonware's consensus sees them.
//! - [`executor`]: executes blocks speculatively (proposal, verification) and for good
//!   (finalization) on top of the store.
//! - [`mempool`]: transactions waiting for a block, admitted only after the runtime's checks.
//! - [`store`]: the persistent, authenticated state (QMDB) and its in-memory copy.
//!
//! The node executes the runtime; it must never change what a block means. Everything that
//! decides state lives in `wetee-runtime`, and everything here must be reproducible from the
//! finalized blocks.

pub mod application;
pub mod chain;
pub mod engine;
pub mod executor;
pub mod finalizer;
pub mod gossip;
pub mod ledger;
pub mod mempool;
pub mod outcomes;
pub mod rpc;
pub mod service;
pub mod store;

#[cfg(test)]
mod simulation;
