//! Scheduling: which worker runs a workload, and the capacity it takes there.
//!
//! ## Rules
//! - A worker can take a workload when all of these hold, checked in this order (the order of
//!   the explanation given for a pending workload): it is started; it supports the workload's
//!   TEE kind (the simulated TEE only where the chain allows it) and its verified evidence is of
//!   that kind; its attestation has not expired; its attested measurements match the
//!   workload's version, when that pins any; it is in the required region;
//!   its level is at least the minimum; it has the required GPU model; its stake covers its
//!   level; its price for the workload's resources is at most the owner's maximum; and its free
//!   capacity covers every resource.
//! - Among those, the worker with the highest score wins, then the lowest price, then the
//!   lowest id: the same inputs always give the same placement on every validator.
//! - Capacity is reserved per workload in `plc/<worker>/<workload>`, and a worker's `used` is
//!   always the sum of those entries (checked by the property tests). Releasing removes the
//!   entry, so a release can only happen once; a second release finds nothing and does nothing.
//! - A worker holds at most [`MAX_WORKLOADS_PER_WORKER`] workloads: what one work report can
//!   prove.
//! - A workload that fits nowhere joins the pending queue. At every epoch end the queue is
//!   retried from the front, at most `max_placements_per_epoch` attempts; an entry that still
//!   fits nowhere goes to the back, so a crowd of unplaceable workloads delays the others but
//!   cannot block them.

use crate::context::Ctx;
use crate::state::State;
use crate::storage::{self, keys, scan_prefix};
use std::cmp::Reverse;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::codec::decode;
use wetee_types::error::error_text;
use wetee_types::manifest::{AppSpec, Constraints, TaskSpec};
use wetee_types::params::Params;
use wetee_types::records::{Worker, WorkerStatus};
use wetee_types::resources::GpuModel;
use wetee_types::{Balance, CallError, Event, Resources, TeeKind, WorkerId, Workload};

/// Workloads one worker may hold: one work report proves at most this many apps.
pub const MAX_WORKLOADS_PER_WORKER: u32 = wetee_types::report::MAX_REPORT_APPS as u32;

/// What placement decisions follow: the parameters, the attestation policy, and the time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub params: &'a Params,
    pub attestation: &'a AttestationPolicy,
    pub now_ms: wetee_types::TimestampMs,
}

/// What a workload needs from a worker.
#[derive(Debug, Clone)]
pub(crate) struct Demand<'a> {
    /// Resources of the whole workload (all replicas).
    pub resources: Resources,
    /// The GPU model required.
    pub gpu_model: Option<&'a GpuModel>,
    /// Placement constraints.
    pub constraints: &'a Constraints,
}

impl<'a> Demand<'a> {
    pub fn of_app(spec: &'a AppSpec) -> Result<Demand<'a>, CallError> {
        Ok(Demand {
            resources: spec.total_resources().ok_or(CallError::Overflow)?,
            gpu_model: spec.container.gpu_model.as_ref(),
            constraints: &spec.constraints,
        })
    }

    pub fn of_task(spec: &'a TaskSpec) -> Demand<'a> {
        Demand {
            resources: spec.container.resources,
            gpu_model: spec.container.gpu_model.as_ref(),
            constraints: &spec.constraints,
        }
    }
}

/// Why a worker cannot take a workload, in the order the rules are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unfit {
    NotStarted,
    Tee,
    AttestationExpired,
    Measurements,
    Region,
    Level,
    GpuModel,
    Stake,
    Price(Balance),
    Capacity(String),
}

/// Whether `worker` can take `demand`, and at what price per epoch. `credit` is capacity the
/// workload already holds on this worker (when resizing in place).
pub(crate) fn assess(
    worker: &Worker,
    demand: &Demand,
    rules: &Rules,
    credit: &Resources,
) -> Result<Balance, Unfit> {
    let profile = &worker.profile;
    let c = demand.constraints;
    if worker.status != WorkerStatus::Started {
        return Err(Unfit::NotStarted);
    }
    meets_constraints(worker, demand, rules)?;
    let required = rules
        .params
        .required_stake(profile.level)
        .unwrap_or(Balance(u128::MAX));
    if worker.stake < required {
        return Err(Unfit::Stake);
    }
    let price = profile
        .prices
        .cost_per_epoch(&demand.resources)
        .ok_or(Unfit::Price(Balance(u128::MAX)))?;
    if price > c.max_price_per_epoch {
        return Err(Unfit::Price(price));
    }
    if *credit == Resources::ZERO && worker.workloads >= MAX_WORKLOADS_PER_WORKER {
        return Err(Unfit::Capacity("a free workload slot".into()));
    }
    let free = worker
        .free_capacity()
        .checked_add(credit)
        .unwrap_or(profile.capacity);
    if let Some(shortfall) = demand.resources.first_shortfall(&free) {
        return Err(Unfit::Capacity(format!("{shortfall} free")));
    }
    Ok(price)
}

/// Whether the worker is the kind of machine the workload asks for: a proven TEE of its kind,
/// still attested, with allowed measurements, in its region, level and GPU model. Status,
/// stake, price and capacity are separate questions.
pub(crate) fn meets_constraints(
    worker: &Worker,
    demand: &Demand,
    rules: &Rules,
) -> Result<(), Unfit> {
    let profile = &worker.profile;
    let c = demand.constraints;
    if !profile.tee_kinds.contains(c.tee)
        || worker.evidence.kind != c.tee
        || (c.tee == TeeKind::Simulated && !rules.attestation.allow_simulated_tee)
    {
        return Err(Unfit::Tee);
    }
    if !worker.attestation_valid(rules.now_ms)
        || !crate::attestation::still_allowed(rules.attestation, worker)
    {
        return Err(Unfit::AttestationExpired);
    }
    if !c.allows_measurements(worker.attested.measurements.as_ref()) {
        return Err(Unfit::Measurements);
    }
    if c.region.as_ref().is_some_and(|r| *r != profile.region) {
        return Err(Unfit::Region);
    }
    if profile.level < c.min_level {
        return Err(Unfit::Level);
    }
    if demand.resources.gpus > 0
        && demand
            .gpu_model
            .is_some_and(|model| profile.gpu_model.as_ref() != Some(model))
    {
        return Err(Unfit::GpuModel);
    }
    Ok(())
}

/// Every worker, in id order.
pub(crate) fn all_workers(state: &dyn State) -> Result<Vec<Worker>, CallError> {
    scan_prefix(state, keys::WORKERS)
        .map(|(_, bytes)| decode(&bytes).map_err(CallError::from))
        .collect()
}

/// The best worker for `demand`, other than `exclude`, with its price.
pub(crate) fn best_worker(
    state: &dyn State,
    demand: &Demand,
    rules: &Rules,
    exclude: Option<WorkerId>,
) -> Result<Option<(WorkerId, Balance)>, CallError> {
    // Rank: highest score, then lowest price, then lowest id. Only started workers are read:
    // registering costs a fee but no stake, so unstarted workers must not slow placement.
    let mut best: Option<(Reverse<u32>, Balance, WorkerId)> = None;
    for id in storage::indexed_workers(state, keys::READY_WORKERS)? {
        if Some(id) == exclude {
            continue;
        }
        let worker = storage::worker(state, id)?;
        if let Ok(price) = assess(&worker, demand, rules, &Resources::ZERO) {
            let rank = (Reverse(worker.score), price, worker.id);
            if best.is_none_or(|b| rank < b) {
                best = Some(rank);
            }
        }
    }
    Ok(best.map(|(_, price, id)| (id, price)))
}

/// Why `demand` fits no worker, in words: the first rule that leaves no candidate.
pub(crate) fn explain(
    state: &dyn State,
    demand: &Demand,
    rules: &Rules,
) -> Result<String, CallError> {
    let c = demand.constraints;
    let workers = all_workers(state)?;
    if workers.is_empty() {
        return Ok("no worker is registered".into());
    }
    let zero = Resources::ZERO;
    // Filter step by step, describing the survivors as we go.
    let mut candidates: Vec<&Worker> = workers
        .iter()
        .filter(|w| w.status == WorkerStatus::Started)
        .collect();
    if candidates.is_empty() {
        return Ok("no worker is started".into());
    }
    if c.tee == TeeKind::Simulated && !rules.attestation.allow_simulated_tee {
        return Ok("this chain does not accept the simulated TEE".into());
    }
    let mut who = format!("no worker with {}", c.tee);
    candidates.retain(|w| w.profile.tee_kinds.contains(c.tee) && w.evidence.kind == c.tee);
    if candidates.is_empty() {
        return Ok(format!("no started worker has attested {}", c.tee));
    }
    candidates.retain(|w| {
        w.attestation_valid(rules.now_ms) && crate::attestation::still_allowed(rules.attestation, w)
    });
    if candidates.is_empty() {
        return Ok(format!(
            "{who} has a current attestation the policy allows (their evidence expired or the \
             policy changed: they must send fresh evidence)"
        ));
    }
    candidates.retain(|w| c.allows_measurements(w.attested.measurements.as_ref()));
    if candidates.is_empty() {
        return Ok(format!(
            "{who} runs a TEE whose measurements this version allows"
        ));
    }
    if let Some(region) = &c.region {
        who.push_str(&format!(" in region {region}"));
        candidates.retain(|w| w.profile.region == *region);
        if candidates.is_empty() {
            return Ok(format!("{who} is started"));
        }
    }
    candidates.retain(|w| w.profile.level >= c.min_level);
    if candidates.is_empty() {
        return Ok(format!("{who} has level {} or higher", c.min_level));
    }
    if c.min_level > 0 {
        who.push_str(&format!(" at level >= {}", c.min_level));
    }
    if let (true, Some(model)) = (demand.resources.gpus > 0, demand.gpu_model) {
        candidates.retain(|w| w.profile.gpu_model.as_ref() == Some(model));
        if candidates.is_empty() {
            return Ok(format!("{who} has {model} GPUs"));
        }
    }
    candidates.retain(|w| {
        rules
            .params
            .required_stake(w.profile.level)
            .is_some_and(|required| w.stake >= required)
    });
    if candidates.is_empty() {
        return Ok(format!("{who} has enough stake for its level"));
    }
    let priced: Vec<(&Worker, Option<Balance>)> = candidates
        .iter()
        .map(|w| (*w, w.profile.prices.cost_per_epoch(&demand.resources)))
        .collect();
    let cheapest = priced.iter().filter_map(|(_, p)| *p).min();
    candidates.retain(|w| {
        w.profile
            .prices
            .cost_per_epoch(&demand.resources)
            .is_some_and(|p| p <= c.max_price_per_epoch)
    });
    if candidates.is_empty() {
        let cheapest = cheapest.map_or_else(|| "overflow".to_string(), |p| p.to_string());
        return Ok(format!(
            "{who} offers these resources for at most {} per epoch (the cheapest asks {cheapest})",
            c.max_price_per_epoch
        ));
    }
    if demand.resources.disk_gib > 0 && candidates.iter().all(|w| w.profile.capacity.disk_gib == 0)
    {
        return Ok(format!(
            "{who} sells disk (a worker whose container engine cannot cap a container's disk \
             offers 0 GiB): ask for resources.disk_gib = 0"
        ));
    }
    // Every survivor lacks capacity; name what the first of them lacks.
    let lacking = candidates
        .iter()
        .map(|w| assess(w, demand, rules, &zero))
        .collect::<Vec<_>>();
    match lacking.iter().find_map(|r| match r {
        Err(Unfit::Capacity(what)) => Some(what.clone()),
        _ => None,
    }) {
        Some(what) if lacking.iter().all(Result::is_err) => Ok(format!("{who} has {what}")),
        _ => Ok("a worker fits now: placement is retried at the end of the epoch".into()),
    }
}

/// Reserves `resources` on a worker for `workload`.
pub(crate) fn reserve_capacity(
    ctx: &mut Ctx,
    worker_id: WorkerId,
    workload: &Workload,
    resources: &Resources,
) -> Result<(), CallError> {
    let key = keys::placement(worker_id, workload);
    if ctx.state.get(&key).is_some() {
        return Err(state_error("a workload was placed twice on one worker"));
    }
    let mut worker = storage::worker(ctx.state, worker_id)?;
    let used = worker
        .used
        .checked_add(resources)
        .ok_or(CallError::Overflow)?;
    if !used.fits_within(&worker.profile.capacity) {
        return Err(state_error("placement beyond a worker's capacity"));
    }
    worker.used = used;
    if worker.workloads == 0 {
        // An idle worker owes no reports; it owes them from the epoch it gets work.
        worker.liable_since = ctx.epoch();
    }
    worker.workloads = worker.workloads.checked_add(1).ok_or(CallError::Overflow)?;
    let mut assigned = storage::assignments(ctx.state, worker_id)?.into_inner();
    let at = assigned
        .binary_search_by(|a| a.workload.cmp(workload))
        .err()
        .ok_or_else(|| state_error("a workload was assigned twice to one worker"))?;
    let stamp = match workload {
        Workload::App { app } => storage::app_stamp(ctx.state, *app)?.unwrap_or_default(),
        Workload::TaskRun { .. } => wetee_types::Hash::default(),
    };
    assigned.insert(
        at,
        wetee_types::records::Assignment {
            workload: *workload,
            stamp,
        },
    );
    let assigned = wetee_types::records::Assignments::try_new(assigned)
        .map_err(|_| state_error("more workloads on a worker than one report can prove"))?;
    storage::put_assignments(ctx.state, worker_id, &assigned);
    storage::put_worker(ctx.state, &worker);
    storage::put(ctx.state, &key, resources);
    Ok(())
}

/// Changes the capacity `workload` holds on a worker, checking the new total fits.
pub(crate) fn resize_capacity(
    ctx: &mut Ctx,
    worker_id: WorkerId,
    workload: &Workload,
    resources: &Resources,
) -> Result<(), CallError> {
    let key = keys::placement(worker_id, workload);
    let held: Resources = storage::get(ctx.state, &key)?
        .ok_or_else(|| state_error("resizing a workload that holds no capacity"))?;
    let mut worker = storage::worker(ctx.state, worker_id)?;
    let used = worker
        .used
        .checked_sub(&held)
        .and_then(|u| u.checked_add(resources))
        .ok_or(CallError::Overflow)?;
    if !used.fits_within(&worker.profile.capacity) {
        return Err(state_error("resize beyond a worker's capacity"));
    }
    worker.used = used;
    storage::put_worker(ctx.state, &worker);
    storage::put(ctx.state, &key, resources);
    Ok(())
}

/// The capacity `workload` holds on a worker.
pub(crate) fn held_capacity(
    state: &dyn State,
    worker_id: WorkerId,
    workload: &Workload,
) -> Result<Option<Resources>, CallError> {
    storage::get(state, &keys::placement(worker_id, workload))
}

/// Releases the capacity `workload` holds on a worker. Returns whether anything was held: a
/// second release of the same placement finds nothing and changes nothing.
pub(crate) fn release_capacity(
    ctx: &mut Ctx,
    worker_id: WorkerId,
    workload: &Workload,
) -> Result<bool, CallError> {
    let key = keys::placement(worker_id, workload);
    let Some(held) = storage::get::<Resources>(ctx.state, &key)? else {
        return Ok(false);
    };
    ctx.state.delete(&key);
    let mut assigned = storage::assignments(ctx.state, worker_id)?;
    assigned.retain(|held| held.workload != *workload);
    storage::put_assignments(ctx.state, worker_id, &assigned);
    let mut worker = storage::worker(ctx.state, worker_id)?;
    worker.used = worker
        .used
        .checked_sub(&held)
        .ok_or_else(|| state_error("releasing more capacity than a worker uses"))?;
    worker.workloads = worker
        .workloads
        .checked_sub(1)
        .ok_or_else(|| state_error("releasing a workload from an empty worker"))?;
    ctx.emit(Event::WorkloadReleased {
        workload: *workload,
        worker: worker_id,
    });
    if worker.status == WorkerStatus::Draining && worker.workloads == 0 {
        worker.status = WorkerStatus::Stopped;
        ctx.emit(Event::WorkerStopped { worker: worker_id });
    }
    storage::put_worker(ctx.state, &worker);
    Ok(true)
}

/// The workloads placed on a worker, in key order.
pub(crate) fn workloads_on(
    state: &dyn State,
    worker_id: WorkerId,
) -> Result<Vec<Workload>, CallError> {
    Ok(storage::assignments(state, worker_id)?
        .iter()
        .map(|a| a.workload)
        .collect())
}

/// Puts `workload` at the back of the pending queue (once).
pub(crate) fn enqueue(ctx: &mut Ctx, workload: &Workload) -> Result<(), CallError> {
    let by = keys::pending_ticket(workload);
    if ctx.state.get(&by).is_some() {
        return Ok(());
    }
    let ticket = storage::next_id(ctx.state, PENDING_COUNTER)?;
    storage::put(ctx.state, &keys::pending(ticket), workload);
    storage::put(ctx.state, &by, &ticket);
    ctx.emit(Event::WorkloadPending {
        workload: *workload,
    });
    Ok(())
}

/// Moves `workload` to the back of the pending queue (after a retry that found no worker).
pub(crate) fn requeue(state: &mut dyn State, workload: &Workload) -> Result<(), CallError> {
    let by = keys::pending_ticket(workload);
    let Some(old) = storage::get::<u64>(state, &by)? else {
        return Ok(());
    };
    state.delete(&keys::pending(old));
    let ticket = storage::next_id(state, PENDING_COUNTER)?;
    storage::put(state, &keys::pending(ticket), workload);
    storage::put(state, &by, &ticket);
    Ok(())
}

/// Takes `workload` out of the pending queue, if it is there.
pub(crate) fn dequeue(state: &mut dyn State, workload: &Workload) -> Result<(), CallError> {
    let by = keys::pending_ticket(workload);
    if let Some(ticket) = storage::get::<u64>(state, &by)? {
        state.delete(&keys::pending(ticket));
        state.delete(&by);
    }
    Ok(())
}

/// The pending queue, front first, at most `limit` entries, with their tickets.
/// The counter of pending queue tickets: a workload queued later has a higher ticket.
pub(crate) const PENDING_COUNTER: &str = "pending";

/// The first pending workload whose ticket is `from` or later.
pub(crate) fn pending_from(
    state: &dyn State,
    from: u64,
) -> Result<Option<(u64, Workload)>, CallError> {
    match state.scan_from(&keys::pending(from)).next() {
        Some((key, bytes)) => match key.strip_prefix(keys::PENDING) {
            Some(suffix) => Ok(Some((storage::read_u64(suffix, 0)?, decode(&bytes)?))),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

pub(crate) fn pending(state: &dyn State, limit: usize) -> Result<Vec<(u64, Workload)>, CallError> {
    scan_prefix(state, keys::PENDING)
        .take(limit)
        .map(|(suffix, bytes)| Ok((storage::read_u64(&suffix, 0)?, decode(&bytes)?)))
        .collect()
}

pub(crate) fn state_error(what: &str) -> CallError {
    CallError::State {
        detail: error_text(what),
    }
}
