//! Balances: free and reserved funds, transfers, fees; and the account's sealing key.
//!
//! ## Rules
//! - Every account has `free` (spendable) and `reserved` (locked) funds. Reserved funds back
//!   exactly the sum of the account's worker stakes, unbonding amounts and unwithdrawn earnings,
//!   app and task deposits, and complaint bonds; the property tests check this after every call.
//! - Tokens are never minted or burned after genesis: fees, protocol shares and slashes move to
//!   the treasury account, so total issuance is constant.
//! - Accounts are never deleted, so a used nonce can never be reused.
//!
//! ## Calls
//! - `transfer(to, amount)`: any signer; moves `amount > 0` of its free balance.
//! - `set_sealing_key(key)`: any signer; publishes the X25519 key workers seal what only the
//!   account may read to (its apps' failure logs), replacing the previous one.

use crate::context::Ctx;
use crate::state::State;
use crate::storage::{account, put_account};
use wetee_types::error::error_text;
use wetee_types::transaction::BalancesCall;
use wetee_types::{AccountId, Balance, CallError, Event};

pub(crate) fn dispatch(
    ctx: &mut Ctx,
    signer: AccountId,
    call: &BalancesCall,
) -> Result<(), CallError> {
    match call {
        BalancesCall::Transfer { to, amount } => {
            if amount.is_zero() {
                return Err(CallError::ZeroAmount);
            }
            transfer(ctx.state, &signer, to, *amount)?;
            ctx.emit(Event::Transferred {
                from: signer,
                to: *to,
                amount: *amount,
            });
            Ok(())
        }
        BalancesCall::SetSealingKey { key } => {
            crate::storage::put_sealing_key(ctx.state, &signer, key);
            ctx.emit(Event::SealingKeySet { account: signer });
            Ok(())
        }
    }
}

fn accounting(what: &str) -> CallError {
    CallError::State {
        detail: error_text(&format!("reserved balance accounting: {what}")),
    }
}

/// Moves `amount` from `from`'s free balance to `to`'s free balance.
pub(crate) fn transfer(
    state: &mut dyn State,
    from: &AccountId,
    to: &AccountId,
    amount: Balance,
) -> Result<(), CallError> {
    let mut sender = account(state, from)?;
    sender.free = sender
        .free
        .checked_sub(amount)
        .ok_or(CallError::InsufficientBalance {
            needed: amount,
            available: sender.free,
        })?;
    put_account(state, from, &sender);
    let mut recipient = account(state, to)?;
    recipient.free = recipient
        .free
        .checked_add(amount)
        .ok_or(CallError::Overflow)?;
    put_account(state, to, &recipient);
    Ok(())
}

/// Locks `amount` of `who`'s free balance.
pub(crate) fn reserve(
    state: &mut dyn State,
    who: &AccountId,
    amount: Balance,
) -> Result<(), CallError> {
    let mut acct = account(state, who)?;
    acct.free = acct
        .free
        .checked_sub(amount)
        .ok_or(CallError::InsufficientBalance {
            needed: amount,
            available: acct.free,
        })?;
    acct.reserved = acct
        .reserved
        .checked_add(amount)
        .ok_or(CallError::Overflow)?;
    put_account(state, who, &acct);
    Ok(())
}

/// Unlocks `amount` of `who`'s reserved balance.
pub(crate) fn unreserve(
    state: &mut dyn State,
    who: &AccountId,
    amount: Balance,
) -> Result<(), CallError> {
    if amount.is_zero() {
        return Ok(());
    }
    let mut acct = account(state, who)?;
    acct.reserved = acct
        .reserved
        .checked_sub(amount)
        .ok_or_else(|| accounting("unreserving more than is reserved"))?;
    acct.free = acct.free.checked_add(amount).ok_or(CallError::Overflow)?;
    put_account(state, who, &acct);
    Ok(())
}

/// Where a payment out of a reserve lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credit {
    /// The recipient's free balance.
    Free,
    /// The recipient's reserved balance (earnings waiting for withdrawal).
    Reserved,
}

/// Pays `amount` out of `from`'s reserved balance to `to`.
pub(crate) fn pay_from_reserved(
    state: &mut dyn State,
    from: &AccountId,
    to: &AccountId,
    amount: Balance,
    into: Credit,
) -> Result<(), CallError> {
    if amount.is_zero() {
        return Ok(());
    }
    let mut payer = account(state, from)?;
    payer.reserved = payer
        .reserved
        .checked_sub(amount)
        .ok_or_else(|| accounting("paying more than is reserved"))?;
    put_account(state, from, &payer);
    let mut payee = account(state, to)?;
    match into {
        Credit::Free => payee.free = payee.free.checked_add(amount).ok_or(CallError::Overflow)?,
        Credit::Reserved => {
            payee.reserved = payee
                .reserved
                .checked_add(amount)
                .ok_or(CallError::Overflow)?
        }
    }
    put_account(state, to, &payee);
    Ok(())
}
