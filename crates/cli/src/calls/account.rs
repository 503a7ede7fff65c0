//! `wetee account ...`: balances, transfers, an account's sealing key.

use super::*;

/// `wetee account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Shows an account's balances and nonce.
    Balance {
        /// The account (address or 0x public key); or give --from.
        account: Option<AccountId>,
        /// Whose account, as a key.
        #[arg(long, conflicts_with = "account")]
        from: Option<String>,
    },
    /// Sends tokens.
    Transfer {
        #[command(flatten)]
        signer: Signer,
        /// The recipient.
        #[arg(long)]
        to: AccountId,
        /// How much, in WTE (for example 1.5).
        #[arg(long)]
        amount: Balance,
    },
    /// Publishes the account's sealing key (derived from the account key), to which workers
    /// seal a failed app's log lines. `wetee app deploy` does it before an account's first app.
    SetSealingKey {
        #[command(flatten)]
        signer: Signer,
    },
}

/// `wetee account ...`.
pub async fn account(command: AccountCommand, context: &Session<'_>) -> Result<()> {
    match command {
        AccountCommand::Balance { account, from } => {
            let account = match (account, from) {
                (Some(account), _) => account,
                (None, Some(from)) => context.signing_key(&from)?.account_id(),
                (None, None) => bail!("say whose balance: an ACCOUNT or --from KEY"),
            };
            let client = connect(context).await?;
            let state = client.account(&account).await?;
            let json = serde_json::json!({
                "account": account, "free": state.free, "reserved": state.reserved,
                "nonce": state.nonce,
            });
            print(context.format, &json, || {
                format!(
                    "{account}\n  free      {}\n  reserved  {}\n  nonce     {}",
                    state.free, state.reserved, state.nonce
                )
            });
            Ok(())
        }
        AccountCommand::Transfer { signer, to, amount } => {
            let call = Call::Balances(BalancesCall::Transfer { to, amount });
            send(context, &signer, call).await
        }
        AccountCommand::SetSealingKey { signer } => {
            let key = context.signing_key(&signer.from)?;
            let key = wetee_client::owner_key::sealing_key(&key);
            send(
                context,
                &signer,
                Call::Balances(BalancesCall::SetSealingKey { key }),
            )
            .await
        }
    }
}
