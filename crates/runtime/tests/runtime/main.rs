//! Behaviour of the runtime as users see it: one test binary, one module per area.

mod apps;
mod attestation;
mod bad_input;
mod balances;
mod properties;
mod queries;
mod root;
mod scheduling;
mod secrets;
mod settlement;
mod tasks;
mod transactions;
mod weights;
mod workers;
