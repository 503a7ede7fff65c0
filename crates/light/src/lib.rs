//! What a WeTEE node and a light client must agree on: which headers are final
//! ([`finality`]) and what a header's state root says about each state key ([`state`]).
//!
//! The node builds certificates and proofs with these definitions and the SDK's light client
//! verifies them, so the two cannot drift. Nothing here does I/O or trusts a node: trust
//! starts from a chain spec.

#![forbid(unsafe_code)]

pub mod finality;
pub mod state;
pub mod testing;

pub use finality::{Anchor, FinalityError};
pub use state::{EntryProof, ProofError, db_key, verify_entry};
