//! `wetee root ...`: the calls only the root key may make.

use super::*;

/// `wetee root ...`: calls only the root key may make.
#[derive(Debug, Subcommand)]
// The subcommands are named after the runtime's root calls, which all set something.
#[allow(clippy::enum_variant_names)]
pub enum RootCommand {
    /// Replaces the chain parameters (JSON or TOML).
    SetParams {
        #[command(flatten)]
        signer: Signer,
        /// The new parameters.
        #[arg(long)]
        params: PathBuf,
    },
    /// Hands the root key to another account.
    SetRootKey {
        #[command(flatten)]
        signer: Signer,
        /// The new root.
        root: AccountId,
    },
    /// Replaces the attestation policy (JSON or TOML): allowed TCB statuses, allowed worker
    /// measurements, whether the simulated TEE is accepted, the maximum evidence age.
    SetAttestationPolicy {
        #[command(flatten)]
        signer: Signer,
        /// The new policy.
        #[arg(long)]
        policy: PathBuf,
    },
}

/// `wetee root ...`.
pub async fn root(command: RootCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        RootCommand::SetParams { signer, params } => {
            let params: Params = read_document(&params)?;
            (signer, RootCall::SetParams { params })
        }
        RootCommand::SetRootKey { signer, root } => (signer, RootCall::SetRootKey { root }),
        RootCommand::SetAttestationPolicy { signer, policy } => {
            let policy: AttestationPolicy = read_document(&policy)?;
            (signer, RootCall::SetAttestationPolicy { policy })
        }
    };
    send(context, &signer, Call::Root(call)).await
}
