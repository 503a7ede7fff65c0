//! The root origin: one key, set in genesis, that may change parameters, slash and resolve
//! complaints.
//!
//! This is a stopgap until on-chain governance replaces it: whoever holds the root key can
//! change fees and economic parameters and slash any worker. It cannot move anyone's free
//! balance, touch deposits, or act as another account. Every root call is authorized by
//! comparing the signer with the stored key; there is no "first caller" path to become root,
//! and only the root key can hand the role to another key.
//!
//! ## Calls (root only)
//! - `set_params(params)`: replaces [`Params`] after validating them.
//! - `set_root_key(root)`: hands the root origin to another key.
//! - `set_attestation_policy(policy)`: replaces the attestation policy after validating it.
//!   Workers already attested keep their attestation until it expires; new evidence (and
//!   refreshes) must meet the new policy.
//! - `workers::slash`, `workers::dismiss_complaint`: see [`crate::workers`].

use crate::context::Ctx;
use crate::storage::{self, keys};
use wetee_types::error::error_text;
use wetee_types::params::Params;
use wetee_types::transaction::RootCall;
use wetee_types::{AccountId, CallError, Event};

/// Fails unless `signer` holds the root key.
pub(crate) fn ensure_root(ctx: &Ctx, signer: &AccountId) -> Result<(), CallError> {
    match storage::get::<AccountId>(ctx.state, keys::ROOT)? {
        Some(root) if root == *signer => Ok(()),
        _ => Err(CallError::NotRoot),
    }
}

pub(crate) fn dispatch(ctx: &mut Ctx, signer: AccountId, call: &RootCall) -> Result<(), CallError> {
    ensure_root(ctx, &signer)?;
    match call {
        RootCall::SetParams { params } => {
            params
                .validate()
                .map_err(|problem| CallError::InvalidParams {
                    problem: error_text(&problem),
                })?;
            if params.target_block_time_ms != ctx.params.target_block_time_ms {
                // Epochs, billing and every validator's consensus timeouts are counted against
                // the block time: changing it in a block would change what they mean, and one
                // longer than the validators' leader timeout would halt the chain for good.
                return Err(CallError::InvalidParams {
                    problem: error_text(&format!(
                        "target_block_time_ms is fixed at genesis ({} ms)",
                        ctx.params.target_block_time_ms
                    )),
                });
            }
            storage::put::<Params>(ctx.state, keys::PARAMS, params);
            ctx.params = params.clone();
            ctx.emit(Event::ParamsChanged);
        }
        RootCall::SetAttestationPolicy { policy } => {
            policy
                .validate()
                .map_err(|problem| CallError::InvalidParams {
                    problem: error_text(&format!("attestation policy: {problem}")),
                })?;
            if policy.allow_simulated_tee && !ctx.attestation.allow_simulated_tee {
                // Only a development chain's genesis may accept the simulated TEE: its keys are
                // public, so turning it on later would hand every secret to anyone.
                return Err(CallError::InvalidParams {
                    problem: error_text(
                        "attestation policy: the simulated TEE can only be allowed at genesis",
                    ),
                });
            }
            storage::put(ctx.state, keys::ATTESTATION_POLICY, policy);
            ctx.attestation = policy.clone();
            ctx.emit(Event::AttestationPolicyChanged);
        }
        RootCall::SetRootKey { root } => {
            storage::put(ctx.state, keys::ROOT, root);
            ctx.emit(Event::RootKeyChanged { root: *root });
        }
    }
    Ok(())
}
