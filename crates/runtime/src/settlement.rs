//! Settlement: paying workers from deposits, only for work they proved.
//!
//! ## Rules
//! - An app placed on a worker opens a **lease** at the worker's price for the app's resources.
//!   The lease closes when the app stops, moves, or is repriced by an update; a new lease opens
//!   where it goes next. Prices never change under a running lease.
//! - A worker's report for epoch `e` pays, for every lease of every app it proves,
//!   `price × (leased blocks of e ÷ epoch length) × (uptime ÷ 100 %)`, rounded down, and never
//!   more than the deposit holds. The treasury keeps `protocol_fee_bps` of it; the rest becomes
//!   the worker's earnings. Blocks of epochs the worker never proves are never paid (the owner
//!   keeps that deposit), and each block is paid at most once (`settled_to` only moves forward).
//! - Settlement is lazy: it happens when a report arrives or the app is touched, so a block's
//!   cost grows with the transactions in it, not with the number of apps.
//! - When an app's lease closes, the part of the deposit a still-open report window could claim
//!   stays **held** (rounded up); the rest is free again (refunded if the app stopped). The hold
//!   is released as soon as the lease is settled, or when its last epoch can no longer be
//!   reported.
//! - After each settlement, if what is left cannot pay one more epoch at the current price,
//!   the app enters a grace period of `grace_epochs` epochs (event `AppDepositLow`). A recharge
//!   ends it; otherwise the app stops with reason `DepositExhausted` at the end of the grace
//!   period and the rest of its deposit is refunded. Moving, or going pending and back, does not
//!   restart a grace period.

use crate::balances::{self, Credit};
use crate::context::Ctx;
use crate::storage::{self, EpochItem, keys, scan_prefix};
use wetee_types::codec::decode;
use wetee_types::records::{App, AppStatus, Lease, Placement, Worker};
use wetee_types::report::AppProof;
use wetee_types::{AccountId, Balance, BlockNumber, CallError, EpochNumber, Event, WorkerId};

/// The first height a worker can still be paid for: older epochs' report windows have closed,
/// and epochs up to its last report are settled.
fn first_reportable_height(ctx: &Ctx, worker: &Worker) -> BlockNumber {
    let window_start = ctx
        .epoch()
        .saturating_sub(u64::from(ctx.params.proof_window_epochs));
    let after_last_report = worker.last_report_epoch.map_or(0, |e| e.saturating_add(1));
    ctx.chain.epoch_start(window_start.max(after_last_report))
}

/// The most a lease can still be claimed for, for blocks before `until`.
fn liability(
    ctx: &Ctx,
    lease: &Lease,
    worker: &Worker,
    until: BlockNumber,
) -> Result<Balance, CallError> {
    let from = lease
        .settled_to
        .max(lease.start)
        .max(first_reportable_height(ctx, worker));
    let blocks = until.saturating_sub(from);
    lease
        .price_per_epoch
        .mul_div_ceil(u128::from(blocks), u128::from(ctx.chain.epoch_length))
        .ok_or(CallError::Overflow)
}

/// The part of an app's deposit not held for closed leases and not yet earned on its open one.
pub(crate) fn available(ctx: &Ctx, app: &App) -> Result<Balance, CallError> {
    let free = app.deposit.saturating_sub(app.held);
    let Some(placement) = &app.placement else {
        return Ok(free);
    };
    let Some(lease) = storage::lease(ctx.state, placement.worker, app.id, placement.lease)? else {
        return Err(crate::scheduling::state_error(
            "a running app's lease is missing",
        ));
    };
    let worker = storage::worker(ctx.state, placement.worker)?;
    let owed = liability(ctx, &lease, &worker, ctx.height)?;
    Ok(free.saturating_sub(owed))
}

/// Opens a lease for `app` on `worker` at `price`, starting now.
pub(crate) fn open_lease(
    ctx: &mut Ctx,
    app: &mut App,
    worker: WorkerId,
    price: Balance,
) -> Result<(), CallError> {
    app.leases = app.leases.checked_add(1).ok_or(CallError::Overflow)?;
    let lease = Lease {
        app: app.id,
        worker,
        seq: app.leases,
        price_per_epoch: price,
        start: ctx.height,
        end: None,
        settled_to: ctx.height,
        hold: Balance::ZERO,
    };
    storage::put_lease(ctx.state, &lease);
    app.placement = Some(Placement {
        worker,
        lease: lease.seq,
        price_per_epoch: price,
        since: ctx.height,
    });
    Ok(())
}

/// Closes `app`'s open lease now, holding what its worker may still claim.
pub(crate) fn close_lease(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    let Some(placement) = app.placement.take() else {
        return Ok(());
    };
    let Some(mut lease) = storage::lease(ctx.state, placement.worker, app.id, placement.lease)?
    else {
        return Err(crate::scheduling::state_error(
            "a running app's lease is missing",
        ));
    };
    let worker = storage::worker(ctx.state, placement.worker)?;
    lease.end = Some(ctx.height);
    if lease.start == ctx.height {
        // Opened and closed in the same block: no block to claim.
        storage::delete_lease(ctx.state, &lease);
        return Ok(());
    }
    let claimable = liability(ctx, &lease, &worker, ctx.height)?;
    // Kept even when nothing is held, so that the worker's report for these blocks is still
    // accepted (and pays what the hold allows) until the window closes.
    let hold = claimable.min(app.deposit.saturating_sub(app.held));
    lease.hold = hold;
    app.held = app.held.checked_add(hold).ok_or(CallError::Overflow)?;
    storage::put_lease(ctx.state, &lease);
    // The lease's last block is `end - 1`; its epoch's report is accepted until the window
    // closes at the end of epoch `last + proof_window_epochs`.
    let last_epoch = ctx.chain.epoch_of(ctx.height.saturating_sub(1));
    let expiry = last_epoch.saturating_add(u64::from(ctx.params.proof_window_epochs));
    storage::schedule_at_epoch_end(
        ctx.state,
        expiry,
        &EpochItem::LeaseExpiry {
            worker: lease.worker,
            app: lease.app,
            seq: lease.seq,
        },
    );
    Ok(())
}

/// Pays `amount` from `payer`'s reserved funds to a worker: the protocol fee to the treasury,
/// the rest to the worker's earnings. Returns the protocol fee.
pub(crate) fn pay_worker(
    ctx: &mut Ctx,
    payer: &AccountId,
    worker_id: WorkerId,
    amount: Balance,
) -> Result<Balance, CallError> {
    let fee = amount
        .basis_points(ctx.params.protocol_fee_bps)
        .ok_or(CallError::Overflow)?;
    let net = amount.checked_sub(fee).ok_or(CallError::Overflow)?;
    let mut worker = storage::worker(ctx.state, worker_id)?;
    let treasury = ctx.treasury;
    balances::pay_from_reserved(ctx.state, payer, &treasury, fee, Credit::Free)?;
    balances::pay_from_reserved(ctx.state, payer, &worker.operator, net, Credit::Reserved)?;
    worker.earnings = worker
        .earnings
        .checked_add(net)
        .ok_or(CallError::Overflow)?;
    storage::put_worker(ctx.state, &worker);
    Ok(fee)
}

/// Gives back what a closed lease still holds: to the app's free deposit, or to the owner if
/// the app has stopped.
fn release_hold(ctx: &mut Ctx, app: &mut App, lease: &Lease) -> Result<(), CallError> {
    let hold = lease.hold.min(app.held);
    app.held = app.held.checked_sub(hold).ok_or(CallError::Overflow)?;
    if matches!(app.status, AppStatus::Stopped { .. }) {
        app.deposit = app.deposit.checked_sub(hold).ok_or(CallError::Overflow)?;
        balances::unreserve(ctx.state, &app.owner, hold)?;
    }
    Ok(())
}

/// Settles one app's proof in `worker`'s report for `epoch`. Returns what the app paid.
pub(crate) fn settle_app_proof(
    ctx: &mut Ctx,
    worker_id: WorkerId,
    epoch: EpochNumber,
    proof: &AppProof,
    unpaid: bool,
) -> Result<Balance, CallError> {
    let mut app = storage::app(ctx.state, proof.app)?;
    // An app waiting for its secrets cannot have run; nor is anything paid to a worker whose
    // attestation lapsed: the blocks are settled at zero uptime.
    let uptime_bps = if unpaid || app.status == wetee_types::records::AppStatus::AwaitingSecrets {
        0
    } else {
        proof.uptime_bps
    };
    let epoch_start = ctx.chain.epoch_start(epoch);
    let epoch_end = ctx.chain.epoch_start(epoch.saturating_add(1));
    let prefix = keys::leases_of(worker_id, proof.app);
    let leases: Vec<Lease> = scan_prefix(ctx.state, &prefix)
        .map(|(_, bytes)| decode(&bytes).map_err(CallError::from))
        .collect::<Result<_, _>>()?;
    let overlapping: Vec<Lease> = leases
        .into_iter()
        .filter(|l| l.start < epoch_end && l.end.is_none_or(|end| end > epoch_start))
        .collect();
    if overlapping.is_empty() {
        return Err(CallError::AppNotLeased {
            app: proof.app,
            worker: worker_id,
            epoch,
        });
    }
    let mut total = Balance::ZERO;
    let mut fees = Balance::ZERO;
    for mut lease in overlapping {
        let from = lease.start.max(epoch_start).max(lease.settled_to);
        let to = lease.end.map_or(epoch_end, |end| end.min(epoch_end));
        if to <= from {
            continue;
        }
        let blocks = to.saturating_sub(from);
        let earned = lease
            .price_per_epoch
            .mul_div_floor(
                u128::from(blocks)
                    .checked_mul(u128::from(uptime_bps))
                    .ok_or(CallError::Overflow)?,
                u128::from(ctx.chain.epoch_length)
                    .checked_mul(10_000)
                    .ok_or(CallError::Overflow)?,
            )
            .ok_or(CallError::Overflow)?;
        let funds = if lease.end.is_some() {
            lease.hold
        } else {
            app.deposit.saturating_sub(app.held)
        };
        let amount = earned.min(funds);
        let fee = pay_worker(ctx, &app.owner, worker_id, amount)?;
        app.deposit = app.deposit.checked_sub(amount).ok_or(CallError::Overflow)?;
        if lease.end.is_some() {
            lease.hold = lease.hold.checked_sub(amount).ok_or(CallError::Overflow)?;
            app.held = app.held.checked_sub(amount).ok_or(CallError::Overflow)?;
        }
        lease.settled_to = to;
        total = total.checked_add(amount).ok_or(CallError::Overflow)?;
        fees = fees.checked_add(fee).ok_or(CallError::Overflow)?;
        match lease.end {
            Some(end) if lease.settled_to >= end => {
                release_hold(ctx, &mut app, &lease)?;
                storage::delete_lease(ctx.state, &lease);
            }
            _ => storage::put_lease(ctx.state, &lease),
        }
    }
    // One event per app and report, however many leases (moves, repricing) the epoch had.
    ctx.emit(Event::AppPaid {
        app: app.id,
        worker: worker_id,
        epoch,
        amount: total,
        protocol_fee: fees,
    });
    check_funding(ctx, &mut app)?;
    storage::put_app(ctx.state, &app)?;
    Ok(total)
}

/// A closed lease's last epoch can no longer be reported: release what it holds.
pub(crate) fn expire_lease(
    ctx: &mut Ctx,
    worker: WorkerId,
    app_id: wetee_types::AppId,
    seq: u32,
) -> Result<(), CallError> {
    let Some(lease) = storage::lease(ctx.state, worker, app_id, seq)? else {
        return Ok(()); // settled in full already
    };
    if lease.end.is_none() {
        // Lease numbers are never reused, so an expiry always names a closed lease; an open one
        // is left alone rather than trusted.
        return Ok(());
    }
    let mut app = storage::app(ctx.state, app_id)?;
    release_hold(ctx, &mut app, &lease)?;
    storage::delete_lease(ctx.state, &lease);
    check_funding(ctx, &mut app)?;
    storage::put_app(ctx.state, &app)?;
    Ok(())
}

/// Starts or ends the grace period according to what is left of the deposit.
pub(crate) fn check_funding(ctx: &mut Ctx, app: &mut App) -> Result<(), CallError> {
    // A pending app costs nothing, but a grace period already running keeps running: going
    // pending and coming back must not restart it.
    let Some(placement) = app.placement else {
        return Ok(());
    };
    if available(ctx, app)? >= placement.price_per_epoch {
        app.grace_until = None;
    } else if app.grace_until.is_none() {
        let until = ctx
            .epoch()
            .saturating_add(u64::from(ctx.params.grace_epochs));
        app.grace_until = Some(until);
        storage::schedule_at_epoch_end(ctx.state, until, &EpochItem::GraceEnd { app: app.id });
        ctx.emit(Event::AppDepositLow {
            app: app.id,
            grace_until: until,
        });
    }
    Ok(())
}
