//! Tasks: containers that run to completion, once or on a schedule, paid per run.
//!
//! ## Calls (all but `create` by the task's owner only, and only while the task is active)
//! - `create(spec, deposit)`: validates the spec, reserves the deposit (at least
//!   `min_task_deposit` and at least one run's worst case: the maximum price for the timeout,
//!   plus the run fee),
//!   and schedules the first run for the next block (`once`, `every N blocks`) or the next
//!   matching minute of block time (`cron`).
//! - `update(task, spec)`, `set_execution(task, execution)`: a new version; runs already
//!   assigned keep the version they started with; the schedule restarts from now.
//! - `recharge(task, amount)`: adds to the deposit.
//! - `stop(task)`: no more runs; refunds what no run in flight holds.
//!
//! ## Runs
//! - When a run is due (checked at the start of each block, by height or block time), the
//!   `run_fee` goes from the deposit to the treasury and the run is placed on the best worker
//!   like an app. The run's worst-case cost (its price on that worker
//!   for the full timeout, rounded up) is held from the deposit; if the deposit cannot cover the
//!   worst case at the owner's maximum price, the task stops with `DepositExhausted`.
//! - A run that fits no worker waits in the pending queue; while it waits, the schedule pauses
//!   (no runs pile up) and resumes from the moment the run is placed.
//! - The worker reports the result (exit code, output hash, log root, duration, usage) in its
//!   work report. The owner pays `price × min(duration, timeout, time since assignment) ÷ epoch
//!   duration`, rounded down, where an epoch lasts `epoch_length × target_block_time_ms` and the
//!   timeout is the one the run was assigned with; the rest of the hold returns to the deposit. The run's capacity is released at the result or at its deadline
//!   (assignment time + timeout), whichever comes first, and only once.
//! - A run without a result when its report window closes expires: nothing is paid.
//! - A task with a run limit completes when the last run has ended; its deposit is refunded.

use crate::balances::{self, Credit};
use crate::context::Ctx;
use crate::scheduling::{self, Demand};
use crate::settlement;
use crate::storage::{self, EpochItem, keys};
use wetee_types::cron::CronSchedule;
use wetee_types::manifest::{Schedule, TaskExecution, TaskSpec};
use wetee_types::params::{ChainConfig, Params};
use wetee_types::records::{
    Due, RunResult, RunStatus, StopReason, Task, TaskRun, TaskStatus, TaskVersion, VersionChange,
};
use wetee_types::report::RunReport;
use wetee_types::transaction::TasksCall;
use wetee_types::{AccountId, Balance, CallError, EpochNumber, Event, TaskId, WorkerId, Workload};

pub(crate) fn dispatch(
    ctx: &mut Ctx,
    signer: AccountId,
    call: &TasksCall,
) -> Result<(), CallError> {
    match call {
        TasksCall::Create { spec, deposit } => create(ctx, signer, spec, *deposit),
        TasksCall::Update { task, spec } => {
            let mut task = owned_active_task(ctx, signer, *task)?;
            new_version(ctx, &mut task, spec.clone(), VersionChange::Updated)
        }
        TasksCall::SetExecution { task, execution } => {
            let mut task = owned_active_task(ctx, signer, *task)?;
            let mut spec = task.spec.clone();
            spec.execution = execution.clone();
            new_version(ctx, &mut task, spec, VersionChange::Settings)
        }
        TasksCall::Recharge { task, amount } => {
            let mut task = owned_active_task(ctx, signer, *task)?;
            if amount.is_zero() {
                return Err(CallError::ZeroAmount);
            }
            balances::reserve(ctx.state, &signer, *amount)?;
            task.deposit = task
                .deposit
                .checked_add(*amount)
                .ok_or(CallError::Overflow)?;
            ctx.emit(Event::TaskRecharged {
                task: task.id,
                amount: *amount,
                deposit: task.deposit,
            });
            storage::put_task(ctx.state, &task);
            Ok(())
        }
        TasksCall::Stop { task } => {
            let mut task = owned_active_task(ctx, signer, *task)?;
            stop(ctx, &mut task, StopReason::Owner)?;
            storage::put_task(ctx.state, &task);
            Ok(())
        }
    }
}

fn owned_active_task(ctx: &Ctx, signer: AccountId, id: TaskId) -> Result<Task, CallError> {
    let task = storage::task(ctx.state, id)?;
    if task.owner != signer {
        return Err(CallError::NotTaskOwner { task: id });
    }
    if task.status != TaskStatus::Active {
        return Err(CallError::TaskNotActive { task: id });
    }
    Ok(task)
}

/// Milliseconds in an epoch at the nominal block time.
fn epoch_ms(ctx: &Ctx) -> Result<u128, CallError> {
    epoch_ms_of(&ctx.chain, &ctx.params)
}

fn epoch_ms_of(chain: &ChainConfig, params: &Params) -> Result<u128, CallError> {
    u128::from(chain.epoch_length)
        .checked_mul(u128::from(params.target_block_time_ms))
        .filter(|ms| *ms > 0)
        .ok_or(CallError::Overflow)
}

fn timeout_ms(execution: &TaskExecution) -> u128 {
    u128::from(execution.timeout_secs).saturating_mul(1000)
}

/// What a full-timeout run costs at `price_per_epoch`, rounded up.
fn worst_case_cost(
    ctx: &Ctx,
    price_per_epoch: Balance,
    execution: &TaskExecution,
) -> Result<Balance, CallError> {
    price_per_epoch
        .mul_div_ceil(timeout_ms(execution), epoch_ms(ctx)?)
        .ok_or(CallError::Overflow)
}

/// The smallest deposit a task can be created with: the chain's minimum, and at least one
/// run's worst case (the maximum price for the whole timeout, plus the run fee).
pub(crate) fn min_deposit(
    chain: &ChainConfig,
    params: &Params,
    spec: &TaskSpec,
) -> Result<Balance, CallError> {
    let worst = spec
        .constraints
        .max_price_per_epoch
        .mul_div_ceil(timeout_ms(&spec.execution), epoch_ms_of(chain, params)?)
        .and_then(|cost| cost.checked_add(params.run_fee))
        .ok_or(CallError::Overflow)?;
    Ok(params.min_task_deposit.max(worst))
}

fn available(task: &Task) -> Balance {
    task.deposit.saturating_sub(task.held)
}

fn create(
    ctx: &mut Ctx,
    owner: AccountId,
    spec: &TaskSpec,
    deposit: Balance,
) -> Result<(), CallError> {
    spec.validate()?;
    crate::apps::check_tee_allowed(ctx, spec.constraints.tee)?;
    let minimum = min_deposit(&ctx.chain, &ctx.params, spec)?;
    if deposit < minimum {
        return Err(CallError::DepositTooLow { minimum });
    }
    balances::reserve(ctx.state, &owner, deposit)?;
    let id = TaskId(storage::next_id(ctx.state, "task")?);
    let mut task = Task {
        id,
        owner,
        version: 1,
        spec: spec.clone(),
        status: TaskStatus::Active,
        deposit,
        held: Balance::ZERO,
        runs: 0,
        runs_ended: 0,
        next_due: None,
        waiting_run: None,
        created_at: ctx.height,
    };
    storage::put_task_version(
        ctx.state,
        id,
        &TaskVersion {
            version: 1,
            spec: spec.clone(),
            change: VersionChange::Created,
            at: ctx.height,
        },
    );
    ctx.state.put(&keys::owned_task(&owner, id), &[]);
    ctx.emit(Event::TaskCreated { task: id, owner });
    let first = first_due(ctx, &task.spec.execution);
    set_next_due(ctx, &mut task, first);
    finish_if_done(ctx, &mut task)?;
    storage::put_task(ctx.state, &task);
    Ok(())
}

fn new_version(
    ctx: &mut Ctx,
    task: &mut Task,
    spec: TaskSpec,
    change: VersionChange,
) -> Result<(), CallError> {
    spec.validate()?;
    crate::apps::check_tee_allowed(ctx, spec.constraints.tee)?;
    let schedule_changed = spec.execution != task.spec.execution;
    task.version = task.version.checked_add(1).ok_or(CallError::Overflow)?;
    task.spec = spec;
    storage::put_task_version(
        ctx.state,
        task.id,
        &TaskVersion {
            version: task.version,
            spec: task.spec.clone(),
            change,
            at: ctx.height,
        },
    );
    if schedule_changed {
        let next = if limit_reached(task) {
            None
        } else {
            first_due(ctx, &task.spec.execution)
        };
        set_next_due(ctx, task, next);
    }
    ctx.emit(Event::TaskUpdated {
        task: task.id,
        version: task.version,
    });
    finish_if_done(ctx, task)?;
    storage::put_task(ctx.state, task);
    Ok(())
}

fn limit_reached(task: &Task) -> bool {
    task.spec
        .execution
        .run_limit()
        .is_some_and(|limit| task.runs >= limit)
}

/// The first due time of a schedule starting now: the next block, or the next cron minute.
fn first_due(ctx: &Ctx, execution: &TaskExecution) -> Option<Due> {
    match &execution.schedule {
        Schedule::Once | Schedule::EveryBlocks { .. } => Some(Due::Height {
            height: ctx.height.saturating_add(1),
        }),
        Schedule::Cron { .. } => next_cron(ctx, execution),
    }
}

/// The due time after a run fired now.
fn following_due(ctx: &Ctx, execution: &TaskExecution) -> Option<Due> {
    match &execution.schedule {
        Schedule::Once => None,
        Schedule::EveryBlocks { blocks } => Some(Due::Height {
            height: ctx.height.saturating_add(*blocks),
        }),
        Schedule::Cron { .. } => next_cron(ctx, execution),
    }
}

fn next_cron(ctx: &Ctx, execution: &TaskExecution) -> Option<Due> {
    let Schedule::Cron { expression } = &execution.schedule else {
        return None;
    };
    // Validated on the way in; an expression that stopped parsing simply never fires again.
    let schedule = CronSchedule::parse(expression).ok()?;
    let secs = schedule.next_after(ctx.time_ms / 1000)?;
    Some(Due::Time {
        ms: secs.checked_mul(1000)?,
    })
}

fn due_key(id: TaskId, due: &Due) -> Vec<u8> {
    match due {
        Due::Height { height } => keys::due_height(*height, id),
        Due::Time { ms } => keys::due_time(*ms, id),
    }
}

fn set_next_due(ctx: &mut Ctx, task: &mut Task, due: Option<Due>) {
    if let Some(old) = &task.next_due {
        ctx.state.delete(&due_key(task.id, old));
    }
    if let Some(new) = &due {
        ctx.state.put(&due_key(task.id, new), &[]);
    }
    task.next_due = due;
}

/// A due time arrived (start of block).
pub(crate) fn fire(ctx: &mut Ctx, id: TaskId, due: Due) -> Result<(), CallError> {
    ctx.state.delete(&due_key(id, &due));
    let mut task = storage::task(ctx.state, id)?;
    if task.status != TaskStatus::Active || task.next_due != Some(due) {
        return Ok(()); // rescheduled or stopped since
    }
    task.next_due = None;
    if task.waiting_run.is_none() && !limit_reached(&task) {
        let worst = worst_case_cost(
            ctx,
            task.spec.constraints.max_price_per_epoch,
            &task.spec.execution,
        )?
        .checked_add(ctx.params.run_fee)
        .ok_or(CallError::Overflow)?;
        if available(&task) < worst {
            stop(ctx, &mut task, StopReason::DepositExhausted)?;
            storage::put_task(ctx.state, &task);
            return Ok(());
        }
        // Every run pays the run fee to the treasury, placed or not: runs are never free.
        let treasury = ctx.treasury;
        balances::pay_from_reserved(
            ctx.state,
            &task.owner,
            &treasury,
            ctx.params.run_fee,
            Credit::Free,
        )?;
        task.deposit = task
            .deposit
            .checked_sub(ctx.params.run_fee)
            .ok_or(CallError::Overflow)?;
        task.runs = task.runs.checked_add(1).ok_or(CallError::Overflow)?;
        let mut run = TaskRun {
            task: id,
            run: task.runs,
            version: task.version,
            status: RunStatus::Waiting,
            due_at: ctx.height,
            worker: None,
            assigned_at: None,
            assigned_ms: None,
            timeout_secs: task.spec.execution.timeout_secs,
            deadline_ms: None,
            price_per_epoch: Balance::ZERO,
            escrow: Balance::ZERO,
            holds_capacity: false,
            result: None,
        };
        ctx.emit(Event::TaskRunDue {
            task: id,
            run: run.run,
        });
        if !place_run(ctx, &mut task, &mut run)? {
            task.waiting_run = Some(run.run);
            scheduling::enqueue(
                ctx,
                &Workload::TaskRun {
                    task: id,
                    run: run.run,
                },
            )?;
        }
        storage::put_task_run(ctx.state, &run);
    }
    // While a run waits for a worker the schedule pauses: no new runs pile up behind it, and
    // an unplaceable task costs nothing per block. It resumes when the run is placed.
    if task.waiting_run.is_none() && !limit_reached(&task) {
        let next = following_due(ctx, &task.spec.execution);
        set_next_due(ctx, &mut task, next);
    }
    storage::put_task(ctx.state, &task);
    Ok(())
}

/// Assigns a run to the best worker, holding its worst-case cost. Returns whether it was placed.
fn place_run(ctx: &mut Ctx, task: &mut Task, run: &mut TaskRun) -> Result<bool, CallError> {
    let demand = Demand::of_task(&task.spec);
    let Some((worker, price)) = scheduling::best_worker(ctx.state, &demand, &ctx.rules(), None)?
    else {
        return Ok(false);
    };
    let escrow = worst_case_cost(ctx, price, &task.spec.execution)?;
    if available(task) < escrow {
        return Ok(false);
    }
    let workload = Workload::TaskRun {
        task: task.id,
        run: run.run,
    };
    scheduling::reserve_capacity(ctx, worker, &workload, &demand.resources)?;
    task.held = task.held.checked_add(escrow).ok_or(CallError::Overflow)?;
    let timeout_secs = task.spec.execution.timeout_secs;
    let deadline = ctx
        .time_ms
        .saturating_add(u64::from(timeout_secs).saturating_mul(1000));
    ctx.state
        .put(&keys::deadline(deadline, task.id, run.run), &[]);
    run.status = RunStatus::Assigned;
    run.version = task.version;
    run.worker = Some(worker);
    run.assigned_at = Some(ctx.height);
    run.assigned_ms = Some(ctx.time_ms);
    run.timeout_secs = timeout_secs;
    run.deadline_ms = Some(deadline);
    run.price_per_epoch = price;
    run.escrow = escrow;
    run.holds_capacity = true;
    ctx.emit(Event::WorkloadPlaced {
        workload,
        worker,
        price_per_epoch: price,
    });
    Ok(true)
}

/// Tries to place a waiting run (epoch end); if no worker takes it, it goes to the back of the
/// queue. Once placed, the task's schedule resumes.
pub(crate) fn retry_waiting_run(ctx: &mut Ctx, id: TaskId, run_no: u32) -> Result<(), CallError> {
    let workload = Workload::TaskRun {
        task: id,
        run: run_no,
    };
    let mut task = storage::task(ctx.state, id)?;
    let mut run = storage::task_run(ctx.state, id, run_no)?;
    if run.status != RunStatus::Waiting || task.status != TaskStatus::Active {
        return scheduling::dequeue(ctx.state, &workload);
    }
    if !place_run(ctx, &mut task, &mut run)? {
        return scheduling::requeue(ctx.state, &workload);
    }
    scheduling::dequeue(ctx.state, &workload)?;
    task.waiting_run = None;
    if !limit_reached(&task) {
        let next = following_due(ctx, &task.spec.execution);
        set_next_due(ctx, &mut task, next);
    }
    storage::put_task_run(ctx.state, &run);
    storage::put_task(ctx.state, &task);
    Ok(())
}

/// A run's deadline passed (start of block): free its capacity, and give its result until the
/// current epoch's report window closes.
pub(crate) fn deadline_passed(
    ctx: &mut Ctx,
    id: TaskId,
    run_no: u32,
    deadline_ms: u64,
) -> Result<(), CallError> {
    ctx.state.delete(&keys::deadline(deadline_ms, id, run_no));
    let mut run = storage::task_run(ctx.state, id, run_no)?;
    release_run_capacity(ctx, &mut run)?;
    if run.status == RunStatus::Assigned {
        let expiry = ctx
            .epoch()
            .saturating_add(u64::from(ctx.params.proof_window_epochs));
        storage::schedule_at_epoch_end(
            ctx.state,
            expiry,
            &EpochItem::RunExpiry {
                task: id,
                run: run_no,
            },
        );
    }
    storage::put_task_run(ctx.state, &run);
    Ok(())
}

fn release_run_capacity(ctx: &mut Ctx, run: &mut TaskRun) -> Result<(), CallError> {
    if let (true, Some(worker)) = (run.holds_capacity, run.worker) {
        let workload = Workload::TaskRun {
            task: run.task,
            run: run.run,
        };
        scheduling::release_capacity(ctx, worker, &workload)?;
        run.holds_capacity = false;
    }
    Ok(())
}

/// Ends a run's hold on the deposit: `paid` went to the worker, the rest returns to the deposit
/// (or to the owner if the task is no longer active).
fn end_run(ctx: &mut Ctx, task: &mut Task, run: &TaskRun, paid: Balance) -> Result<(), CallError> {
    task.held = task
        .held
        .checked_sub(run.escrow)
        .ok_or(CallError::Overflow)?;
    task.deposit = task.deposit.checked_sub(paid).ok_or(CallError::Overflow)?;
    if task.status != TaskStatus::Active {
        let rest = run.escrow.saturating_sub(paid);
        task.deposit = task.deposit.checked_sub(rest).ok_or(CallError::Overflow)?;
        balances::unreserve(ctx.state, &task.owner, rest)?;
    }
    task.runs_ended = task.runs_ended.checked_add(1).ok_or(CallError::Overflow)?;
    finish_if_done(ctx, task)
}

/// Records a run's result from `worker`'s report for `epoch`, paying for it. Returns the payment.
pub(crate) fn settle_run_report(
    ctx: &mut Ctx,
    worker: WorkerId,
    epoch: EpochNumber,
    report: &RunReport,
) -> Result<Balance, CallError> {
    let not_assigned = CallError::RunNotAssigned {
        task: report.task,
        run: report.run,
        worker,
    };
    let mut task = storage::task(ctx.state, report.task).map_err(|_| not_assigned.clone())?;
    let mut run = storage::get::<TaskRun>(ctx.state, &keys::task_run(report.task, report.run))?
        .ok_or_else(|| not_assigned.clone())?;
    let epoch_end = ctx.chain.epoch_start(epoch.saturating_add(1));
    if run.status != RunStatus::Assigned
        || run.worker != Some(worker)
        || run.assigned_at.is_none_or(|at| at >= epoch_end)
    {
        return Err(not_assigned);
    }
    // Paid for at most its own timeout, and never for more time than has passed since it was
    // assigned: a worker cannot claim an hour for a run it reports a minute later.
    let elapsed_ms = ctx
        .time_ms
        .saturating_sub(run.assigned_ms.unwrap_or(ctx.time_ms));
    let duration = u128::from(report.duration_ms)
        .min(u128::from(run.timeout_secs).saturating_mul(1000))
        .min(u128::from(elapsed_ms));
    let cost = run
        .price_per_epoch
        .mul_div_floor(duration, epoch_ms(ctx)?)
        .ok_or(CallError::Overflow)?
        .min(run.escrow);
    settlement::pay_worker(ctx, &task.owner, worker, cost)?;
    release_run_capacity(ctx, &mut run)?;
    run.status = RunStatus::Finished;
    run.result = Some(RunResult {
        exit_code: report.exit_code,
        output_hash: report.output_hash,
        log_root: report.log_root,
        duration_ms: report.duration_ms,
        usage: report.usage,
        paid: cost,
        epoch,
    });
    ctx.emit(Event::TaskRunFinished {
        task: task.id,
        run: run.run,
        worker,
        exit_code: report.exit_code,
        paid: cost,
    });
    end_run(ctx, &mut task, &run, cost)?;
    storage::put_task_run(ctx.state, &run);
    storage::put_task(ctx.state, &task);
    Ok(cost)
}

/// A run's report window closed without a result (epoch end).
pub(crate) fn expire_run(ctx: &mut Ctx, id: TaskId, run_no: u32) -> Result<(), CallError> {
    let mut run = storage::task_run(ctx.state, id, run_no)?;
    if run.status != RunStatus::Assigned {
        return Ok(());
    }
    let mut task = storage::task(ctx.state, id)?;
    release_run_capacity(ctx, &mut run)?;
    run.status = RunStatus::Expired;
    ctx.emit(Event::TaskRunExpired {
        task: id,
        run: run_no,
    });
    end_run(ctx, &mut task, &run, Balance::ZERO)?;
    storage::put_task_run(ctx.state, &run);
    storage::put_task(ctx.state, &task);
    Ok(())
}

/// Completes a task whose run limit is reached and whose runs have all ended.
fn finish_if_done(ctx: &mut Ctx, task: &mut Task) -> Result<(), CallError> {
    if task.status != TaskStatus::Active
        || task.waiting_run.is_some()
        || task.runs_ended < task.runs
        || (!limit_reached(task) && task.next_due.is_some())
    {
        return Ok(());
    }
    set_next_due(ctx, task, None);
    task.status = TaskStatus::Completed;
    let refund = task.deposit.saturating_sub(task.held);
    balances::unreserve(ctx.state, &task.owner, refund)?;
    task.deposit = task.held;
    ctx.emit(Event::TaskCompleted {
        task: task.id,
        refund,
    });
    Ok(())
}

/// Stops a task: no more runs; a waiting run is cancelled; runs in flight finish or expire.
pub(crate) fn stop(ctx: &mut Ctx, task: &mut Task, reason: StopReason) -> Result<(), CallError> {
    set_next_due(ctx, task, None);
    if let Some(run_no) = task.waiting_run.take() {
        let mut run = storage::task_run(ctx.state, task.id, run_no)?;
        run.status = RunStatus::Cancelled;
        storage::put_task_run(ctx.state, &run);
        scheduling::dequeue(
            ctx.state,
            &Workload::TaskRun {
                task: task.id,
                run: run_no,
            },
        )?;
        task.runs_ended = task.runs_ended.checked_add(1).ok_or(CallError::Overflow)?;
    }
    task.status = TaskStatus::Stopped { reason };
    let refund = task.deposit.saturating_sub(task.held);
    balances::unreserve(ctx.state, &task.owner, refund)?;
    task.deposit = task.held;
    ctx.emit(Event::TaskStopped {
        task: task.id,
        reason,
        refund,
    });
    Ok(())
}
