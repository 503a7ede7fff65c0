//! The WeTEE worker: the agent a hardware operator runs on TEE machines.
//!
//! - [`backend`]: where workloads run, behind one interface; [`backend::docker`] speaks the
//!   Docker Engine API (Docker or Podman).
//! - [`config`]: the `worker.toml` file.
//! - [`identity`]: the TEE-bound identity and sealing keys, and the evidence binding them.
//!
//! The worker derives what should run only from finalized chain state, and must never run a
//! workload the chain did not assign to it, or report work it cannot prove.

pub mod backend;
pub mod config;
pub mod identity;
