//! The WeTEE worker: the agent a hardware operator runs on TEE machines.
//!
//! - [`agent`]: the main loop: register, then reconcile at every finalized block.
//! - [`backend`]: where workloads run, behind one interface; [`backend::docker`] speaks the
//!   Docker Engine API (Docker or Podman), [`backend::confinement`] decides how every container
//!   is kept from its neighbours, the worker and the operator's disk.
//! - [`chain`]: registering on chain and reading what is assigned to this worker, through the
//!   light client (certified headers, proven state).
//! - [`config`]: the `worker.toml` file.
//! - [`data_lock`]: one worker per data directory.
//! - [`hardening`]: no core dumps, not dumpable, before any key is loaded.
//! - [`identity`]: the TEE-bound identity and sealing keys, and the evidence binding them.
//! - [`keys`]: where those keys are kept between restarts, sealed to the TEE.
//! - [`mounts`]: what a path is stored on (memory, an encrypted disk).
//! - [`registration`]: the worker's id and container scope, kept across key rotations.
//! - [`topology`]: whether this machine's layout lets the worker give secrets at all.
//! - [`rtmr`]: the worker's configuration measured into TDX RTMR3 before any evidence.
//! - [`ingress`]: the HTTP entrance routing `<app-id>.<domain>` and `/<app-id>/` to apps, with
//!   every client bounded in connections, time and bytes.
//! - [`logbook`]: captured logs per workload and epoch, and their Merkle roots.
//! - [`owner_api`]: logs, status and metrics for the workload's owner only.
//! - [`serving_tls`]: the TLS certificate bound to the worker's attested identity key.
//! - [`reconcile`]: makes the backend match the chain, one idempotent pass at a time.
//! - [`revisions`]: the highest secrets revision given to each app, never gone back on.
//! - [`report`]: uptime, usage, log roots and task results, measured per epoch, for the signed
//!   work report.
//!
//! The worker derives what should run only from finalized chain state it verified, and must
//! never run a workload the chain did not assign to it, give secrets to what their owner did not
//! sign, or report work it cannot prove.

#![forbid(unsafe_code)]

pub mod agent;
pub mod backend;
pub mod chain;
pub mod config;
pub mod data_lock;
pub mod hardening;
pub mod identity;
pub mod ingress;
pub mod keys;
pub mod logbook;
pub mod mounts;
pub mod owner_api;
pub mod reconcile;
pub mod registration;
pub mod report;
pub mod revisions;
pub mod rtmr;
pub mod serving_tls;
pub mod topology;
