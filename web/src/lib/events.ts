/** Events as the node shows them (`events_history`, `events_subscribe`), and in words. */

import { formatBalance } from './balance';

/** An event in its JSON form: `{"event": "app_paid", "app": 3, ...}`. */
export interface ChainEvent {
  event: string;
  [field: string]: unknown;
}

/** `EventRecord`: an event with where it happened. */
export interface EventRecord {
  block: { height: number; hash: string };
  phase: 'begin_block' | 'end_block' | { transaction: { index: number; hash: string } };
  event: ChainEvent;
}

/** `events_history`'s answer. */
export interface EventHistory {
  records: EventRecord[];
  next_before: number | null;
  covered_from: number | null;
}

function amount(value: unknown): string {
  return formatBalance(String(value));
}

/** `vxszpwue…`: enough of an address to tell it apart. */
function short(address: unknown): string {
  const text = String(address);
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}

function workload(value: unknown): string {
  const w = value as { app?: { app: number }; task_run?: { task: number; run: number } };
  if (w?.app) {
    return `app ${w.app.app}`;
  }
  if (w?.task_run) {
    return `task ${w.task_run.task} run ${w.task_run.run}`;
  }
  return 'a workload';
}

/** What happened, in a sentence. */
export function eventWords(event: ChainEvent): string {
  const e = event as Record<string, unknown>;
  switch (event.event) {
    case 'app_created':
      return `app ${e.app} created`;
    case 'app_updated':
      return `app ${e.app} updated to version ${e.version}`;
    case 'app_restarted':
      return `app ${e.app} restart asked (restart ${e.restarts})`;
    case 'app_recharged':
      return `recharged with ${amount(e.amount)}: deposit ${amount(e.deposit)}`;
    case 'app_deposit_low':
      return `deposit low: the app stops after epoch ${e.grace_until} unless recharged`;
    case 'app_stopped':
      return `stopped (${String(e.reason).replace(/_/g, ' ')}): ${amount(e.refund)} refunded`;
    case 'app_paid':
      return `paid worker ${e.worker} ${amount(e.amount)} for epoch ${e.epoch} (protocol fee ${amount(e.protocol_fee)})`;
    case 'app_failed':
      return `worker ${e.worker} could not run it: ${e.reason}`;
    case 'app_secrets_set':
      return `secrets sealed to worker ${e.worker}`;
    case 'app_awaiting_secrets':
      return `waiting for its secrets sealed to worker ${e.worker}`;
    case 'workload_placed':
      return `${workload(e.workload)} placed on worker ${e.worker} at ${amount(e.price_per_epoch)} per epoch`;
    case 'workload_pending':
      return `${workload(e.workload)} waits for a worker`;
    case 'workload_released':
      return `${workload(e.workload)} released by worker ${e.worker}`;
    case 'transferred':
      return `${amount(e.amount)} from ${short(e.from)} to ${short(e.to)}`;
    default:
      return `${event.event.replace(/_/g, ' ')}`;
  }
}
