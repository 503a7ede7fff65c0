//! The owner's sealing key: publishing it on chain, and opening what workers sealed to it.
//!
//! The key is derived from the account key (`wetee_sealing::owner_secret`), so there is
//! nothing more to keep. Workers read it from the chain through the light client and seal to
//! it what only the owner may read: an app's last log lines when the worker reports that it
//! cannot run the app.

use crate::rpc::{Client, ClientError};
use wetee_sealing::SealError;
use wetee_types::records::AppFailure;
use wetee_types::transaction::BalancesCall;
use wetee_types::{AppId, Call, Hash, Keypair};
use zeroize::Zeroizing;

/// The X25519 public key workers seal to for `owner`.
pub fn sealing_key(owner: &Keypair) -> [u8; 32] {
    wetee_sealing::public_key(&wetee_sealing::owner_secret(owner))
}

/// Publishes `owner`'s sealing key unless the node says the chain already has it. The
/// transaction is only submitted, not awaited: the client's next call from the same key takes
/// the following nonce and lands after it. Returns whether it was submitted.
///
/// The node's answer is not verified: a lying node can only make the owner publish the key
/// again (one fee) or skip it (failure logs then cannot be sealed to the owner).
pub async fn publish(client: &Client, owner: &Keypair) -> Result<bool, ClientError> {
    let key = sealing_key(owner);
    if client.sealing_key(&owner.account_id()).await? == Some(key) {
        return Ok(false);
    }
    let tx = client
        .sign(owner, Call::Balances(BalancesCall::SetSealingKey { key }))
        .await?;
    if let Err(e) = client.submit(&tx).await {
        client.reset_nonce(&owner.account_id());
        return Err(e);
    }
    Ok(true)
}

/// What `owner` reads in a failure report of `app` on the chain `genesis_hash`.
#[derive(Debug)]
pub enum FailureLog {
    /// The last log lines, matching the report's commitment. They are the worker's only if the
    /// record was read with a proof (`Snapshot::app_failure`): anyone can seal text to the
    /// owner's public key, and only the runtime checked the worker's signature over it.
    Opened(Zeroizing<String>),
    /// The owner had published no sealing key when the worker reported: the lines are lost.
    NotSealed,
    /// The sealed lines do not open with this key or do not match the commitment.
    Unreadable(SealError),
}

/// Opens the log lines of `failure` with `owner`'s key. Pass a record read through the light
/// client: a node could otherwise serve one with text of its own sealed to the owner.
pub fn open_failure_log(
    owner: &Keypair,
    genesis_hash: &Hash,
    app: AppId,
    failure: &AppFailure,
) -> FailureLog {
    let Some(sealed) = &failure.log_tail else {
        return FailureLog::NotSealed;
    };
    let account = owner.account_id();
    let binding = wetee_sealing::log_tail::Binding {
        genesis_hash,
        app,
        version: failure.version,
        worker: failure.worker,
        owner: &account,
    };
    let secret = wetee_sealing::owner_secret(owner);
    match wetee_sealing::log_tail::open(&secret, &binding, &failure.log_digest, sealed) {
        Ok(text) => FailureLog::Opened(text),
        Err(e) => FailureLog::Unreadable(e),
    }
}
