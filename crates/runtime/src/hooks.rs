//! The work a block does besides its transactions, and what it may spend on it.
//!
//! - At a block's start ([`Runtime::begin_block`]): task runs due by height or by time are
//!   started and placed, and runs past their deadline release their capacity.
//! - At its end ([`Runtime::end_block`]): deadlines queued for ended epochs (leases, grace
//!   periods, runs); from an epoch's last block on, the liveness sweep over the workers holding
//!   workloads (silent ones suspended and their apps evicted, draining ones emptied), and once it
//!   has judged them all, the retry of the pending queue.
//!
//! ## Budgets
//! Every hook item weighs what it costs (the weight table's [`weights::due_run`],
//! [`weights::DEADLINE`], [`weights::liveness`], [`weights::placement`]), and a block's hooks
//! and transactions weigh at most `max_block_weight` together:
//! - each hook may use [`hook_budget`], an eighth of the limit; the start's three queues share
//!   it in equal parts, so that none can starve another;
//! - the transactions take what the start left, less the end's eighth, which is kept for it;
//! - the end gets what the transactions left (at least its eighth): the epoch deadlines up to
//!   half of it, the sweep and then the pending queue the rest;
//! - what does not fit waits in its queue for the next block; the sweep and the retries keep
//!   their place, so no block's cost grows with the number of workers, apps or tasks;
//! - a queue takes its first item of a block whatever it weighs, so that every queue moves, but
//!   only one queue of a hook a block does (when one item outweighs its queue's share: a
//!   placement among more than 2,048 started workers at the default limit); the block then
//!   exceeds its limit by that item, which never comes off what the transactions can use.

use crate::context::Ctx;
use crate::storage::{self, EpochItem, LivenessSweep, PendingRetry, keys};
use crate::{Env, Runtime, RuntimeError, State, apps, attestation, scheduling, settlement};
use crate::{state_error, tasks, weights, workers};
use wetee_types::codec::decode;
use wetee_types::records::Due;
use wetee_types::records::WorkerStatus;
use wetee_types::{Event, TaskId, Weight, WorkerId, Workload};

/// What one hook may spend of a block's `max_block_weight`.
pub const fn hook_budget(max_block_weight: Weight) -> Weight {
    Weight(max_block_weight.0 / 8)
}

/// A hook queue's share of a block: an item goes if it fits what is left, or if it is the
/// queue's first in this block.
#[derive(Debug)]
struct Meter {
    left: Weight,
    used: Weight,
    admitted: bool,
}

impl Meter {
    fn new(budget: Weight) -> Meter {
        Meter {
            left: budget,
            used: Weight::ZERO,
            admitted: false,
        }
    }

    /// A meter after `before` in the same hook: its first item goes whatever it weighs only if
    /// `before` used no such right, so that one hook overruns its share by one item at most.
    fn after(before: &Meter, budget: Weight) -> Meter {
        Meter {
            admitted: before.overran(budget),
            ..Meter::new(budget)
        }
    }

    /// Whether it took an item that did not fit `budget`.
    fn overran(&self, budget: Weight) -> bool {
        self.used > budget
    }

    /// Whether an item of `cost` goes in this block; it is counted if so.
    fn admit(&mut self, cost: Weight) -> bool {
        if self.admitted && cost > self.left {
            return false;
        }
        self.left = self.left.saturating_sub(cost);
        self.used = self.used.saturating_add(cost);
        self.admitted = true;
        true
    }
}

/// The tasks due in the queue under `prefix` (keyed by height or time, then task) at `now` or
/// before, as many as `meter` admits at `cost` each.
fn due_tasks(
    state: &dyn State,
    prefix: &[u8],
    now: u64,
    meter: &mut Meter,
    cost: Weight,
) -> Result<Vec<(u64, TaskId)>, RuntimeError> {
    let mut due = Vec::new();
    for (suffix, _) in storage::scan_prefix(state, prefix) {
        let at = storage::read_u64(&suffix, 0).map_err(state_error)?;
        if at > now || !meter.admit(cost) {
            break;
        }
        due.push((
            at,
            TaskId(storage::read_u64(&suffix, 8).map_err(state_error)?),
        ));
    }
    Ok(due)
}

impl Runtime {
    /// Runs the start-of-block hook.
    pub fn begin_block(
        &self,
        state: &mut dyn State,
        block: &crate::BlockInfo,
    ) -> Result<Vec<Event>, RuntimeError> {
        self.begin_block_weighed(state, block)
            .map(|(events, _)| events)
    }

    /// [`Runtime::begin_block`], and what it weighed.
    pub(crate) fn begin_block_weighed(
        &self,
        state: &mut dyn State,
        block: &crate::BlockInfo,
    ) -> Result<(Vec<Event>, Weight), RuntimeError> {
        let env = Env::load(state, block)?;
        attestation::record_parent(
            state,
            block.height,
            block.parent_hash,
            block.timestamp_ms,
            env.params.target_block_time_ms,
        )
        .map_err(state_error)?;
        let share = Weight(hook_budget(env.params.max_block_weight).0 / 3);
        // Firing does not start or stop workers: every due run in this block weighs the same.
        let run_cost = weights::due_run(state).map_err(state_error)?;
        let mut events = Vec::new();
        let mut used = Weight::ZERO;

        // The two queues take turns at going first, and so at the right to one item heavier
        // than their share: neither can keep it from the other.
        let queues = [
            (keys::DUE_HEIGHT, env.height),
            (keys::DUE_TIME, env.time_ms),
        ];
        let (first, second) = if env.height % 2 == 0 {
            (queues[0], queues[1])
        } else {
            (queues[1], queues[0])
        };
        let mut leading = Meter::new(share);
        let leading_due = due_tasks(state, first.0, first.1, &mut leading, run_cost)?;
        let mut trailing = Meter::after(&leading, share);
        let trailing_due = due_tasks(state, second.0, second.1, &mut trailing, run_cost)?;
        let entry = |prefix: &[u8], (at, task): (u64, TaskId)| {
            if prefix == keys::DUE_HEIGHT {
                (keys::due_height(at, task), task, Due::Height { height: at })
            } else {
                (keys::due_time(at, task), task, Due::Time { ms: at })
            }
        };
        let due: Vec<(Vec<u8>, TaskId, Due)> = leading_due
            .into_iter()
            .map(|due| entry(first.0, due))
            .chain(trailing_due.into_iter().map(|due| entry(second.0, due)))
            .collect();
        used = used
            .saturating_add(leading.used)
            .saturating_add(trailing.used);
        for (key, task, when) in due {
            self.isolated(state, &env, &mut events, &[&key], |ctx| {
                tasks::fire(ctx, task, when)
            })?;
        }

        let mut deadlines = Vec::new();
        let mut meter = if leading.overran(share) {
            Meter::after(&leading, share)
        } else {
            Meter::after(&trailing, share)
        };
        for (suffix, _) in storage::scan_prefix(state, keys::DEADLINES) {
            let ms = storage::read_u64(&suffix, 0).map_err(state_error)?;
            if ms > env.time_ms || !meter.admit(weights::DEADLINE) {
                break;
            }
            let task = TaskId(storage::read_u64(&suffix, 8).map_err(state_error)?);
            let run = suffix
                .get(16..20)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| RuntimeError::State("malformed deadline key".into()))?;
            deadlines.push((keys::deadline(ms, task, run), task, run, ms));
        }
        used = used.saturating_add(meter.used);
        for (key, task, run, ms) in deadlines {
            self.isolated(state, &env, &mut events, &[&key], |ctx| {
                tasks::deadline_passed(ctx, task, run, ms)
            })?;
        }
        Ok((events, used))
    }

    /// Runs the end-of-block hook with its own share of the block ([`hook_budget`]), as after
    /// a block whose transactions used all theirs.
    pub fn end_block(
        &self,
        state: &mut dyn State,
        block: &crate::BlockInfo,
    ) -> Result<Vec<Event>, RuntimeError> {
        let budget = hook_budget(Env::load(state, block)?.params.max_block_weight);
        self.end_block_within(state, block, budget)
            .map(|(events, _)| events)
    }

    /// Runs the end-of-block hook on at most `budget` (and the first item of each queue), and
    /// says what it weighed.
    pub(crate) fn end_block_within(
        &self,
        state: &mut dyn State,
        block: &crate::BlockInfo,
        budget: Weight,
    ) -> Result<(Vec<Event>, Weight), RuntimeError> {
        let env = Env::load(state, block)?;
        let mut events = Vec::new();
        let epoch_end = env.chain.is_epoch_end(env.height);
        let epoch = env.chain.epoch_of(env.height);

        // 1. Deadlines queued for the end of an epoch: this one on its last block, and any left
        //    from earlier ones.
        let mut deadlines = Meter::new(Weight(budget.0 / 2));
        let mut items = Vec::new();
        for (suffix, _) in storage::scan_prefix(state, b"epq/") {
            let at = storage::read_u64(&suffix, 0).map_err(state_error)?;
            if at > epoch || (at == epoch && !epoch_end) || !deadlines.admit(weights::DEADLINE) {
                break;
            }
            let item: EpochItem = decode(suffix.get(8..).unwrap_or_default())
                .map_err(|e| RuntimeError::State(e.to_string()))?;
            items.push((keys::epoch_item(at, &item), at, item));
        }
        for (key, at, item) in items {
            self.isolated(state, &env, &mut events, &[&key], |ctx| {
                ctx.state.delete(&key);
                match item {
                    EpochItem::LeaseExpiry { worker, app, seq } => {
                        settlement::expire_lease(ctx, worker, app, seq)
                    }
                    EpochItem::GraceEnd { app } => apps::grace_end(ctx, app, at),
                    EpochItem::RunExpiry { task, run } => tasks::expire_run(ctx, task, run),
                }
            })?;
        }

        // 2. An epoch's end opens a sweep, or renews the one still open: the workers it has not
        //    reached are judged by this epoch, those it passed at the next. One that was
        //    retrying the pending queue starts judging again from the first worker.
        if epoch_end {
            let next = match storage::get::<LivenessSweep>(state, keys::LIVENESS_SWEEP)
                .map_err(state_error)?
            {
                Some(open) if open.retry.is_none() => open.next,
                _ => 0,
            };
            let sweep = LivenessSweep {
                epoch,
                next,
                drain_budget: env.params.max_placements_per_epoch,
                retry: None,
            };
            storage::put(state, keys::LIVENESS_SWEEP, &sweep);
        }
        // 3. The sweep, then the pending queue once every worker is judged (its evictions join
        //    the queue, and a worker not judged yet must not take new workloads first).
        let mut meter = Meter::new(budget.saturating_sub(deadlines.used));
        self.go_on_with_sweep(state, &env, &mut events, &mut meter)?;
        Ok((events, deadlines.used.saturating_add(meter.used)))
    }

    /// Goes on with the open sweep as far as `meter` allows, and keeps its place.
    fn go_on_with_sweep(
        &self,
        state: &mut dyn State,
        env: &Env,
        events: &mut Vec<Event>,
        meter: &mut Meter,
    ) -> Result<(), RuntimeError> {
        let Some(mut sweep) =
            storage::get::<LivenessSweep>(state, keys::LIVENESS_SWEEP).map_err(state_error)?
        else {
            return Ok(());
        };
        if sweep.retry.is_none() && self.judge_workers(state, env, events, meter, &mut sweep)? {
            sweep.retry = Some(PendingRetry {
                next: 0,
                // Workloads queued from now on, among them those retried in vain (they go to
                // the back), wait for the next epoch.
                until: storage::peek_next_id(state, scheduling::PENDING_COUNTER)
                    .map_err(state_error)?,
                budget: env.params.max_placements_per_epoch,
            });
        }
        let finished = match &mut sweep.retry {
            Some(retry) => self.retry_pending(state, env, events, meter, retry)?,
            None => false,
        };
        if finished {
            state.delete(keys::LIVENESS_SWEEP);
        } else {
            storage::put(state, keys::LIVENESS_SWEEP, &sweep);
        }
        Ok(())
    }

    /// Judges workers from `sweep.next` on while `meter` allows; whether every worker is
    /// judged.
    fn judge_workers(
        &self,
        state: &mut dyn State,
        env: &Env,
        events: &mut Vec<Event>,
        meter: &mut Meter,
        sweep: &mut LivenessSweep,
    ) -> Result<bool, RuntimeError> {
        let placement = weights::placement(state).map_err(state_error)?;
        loop {
            let Some((key, _)) = state
                .scan_from(&keys::busy_worker(WorkerId(sweep.next)))
                .next()
            else {
                return Ok(true);
            };
            let Some(suffix) = key.strip_prefix(keys::BUSY_WORKERS) else {
                return Ok(true);
            };
            let worker = WorkerId(storage::read_u64(suffix, 0).map_err(state_error)?);
            let record = storage::worker(state, worker).map_err(state_error)?;
            let moves = match record.status {
                WorkerStatus::Draining => u64::from(record.workloads)
                    .min(workers::DRAIN_ATTEMPTS_PER_WORKER as u64)
                    .min(u64::from(sweep.drain_budget)),
                _ => 0,
            };
            let cost = weights::liveness(u64::from(record.workloads))
                .saturating_add(placement.saturating_mul(moves));
            if !meter.admit(cost) {
                return Ok(false);
            }
            let epoch = sweep.epoch;
            let budget = &mut sweep.drain_budget;
            self.isolated(state, env, events, &[], |ctx: &mut Ctx| {
                workers::enforce_liveness(ctx, worker, epoch, budget)
            })?;
            sweep.next = worker.0.saturating_add(1);
        }
    }

    /// Retries the pending queue, front first, from `retry.next` while `meter` and the
    /// epoch's placement budget allow; whether the retries are over.
    fn retry_pending(
        &self,
        state: &mut dyn State,
        env: &Env,
        events: &mut Vec<Event>,
        meter: &mut Meter,
        retry: &mut PendingRetry,
    ) -> Result<bool, RuntimeError> {
        let placement = weights::placement(state).map_err(state_error)?;
        loop {
            if retry.budget == 0 {
                return Ok(true);
            }
            let Some((ticket, workload)) =
                scheduling::pending_from(state, retry.next).map_err(state_error)?
            else {
                return Ok(true);
            };
            if ticket >= retry.until {
                return Ok(true);
            }
            if !meter.admit(placement) {
                return Ok(false);
            }
            retry.budget = retry.budget.saturating_sub(1);
            retry.next = ticket.saturating_add(1);
            let slot = keys::pending(ticket);
            let by = keys::pending_ticket(&workload);
            self.isolated(state, env, events, &[&slot, &by], |ctx| match workload {
                Workload::App { app } => apps::retry_pending(ctx, app),
                Workload::TaskRun { task, run } => tasks::retry_waiting_run(ctx, task, run),
            })?;
        }
    }
}
