/** The node's answers the console reads (docs/rpc.md), as they arrive in JSON. */

/** `system_health`. */
export interface Health {
  chain: string;
  genesis_hash: string;
  finalized: { height: number; hash: string };
  finalized_timestamp_ms: number;
  network_finalized: number;
  validators: number;
  is_validator: boolean;
  pending_transactions: number;
}

/** `chain_getHeader`, and each `chain_finalizedHead` notification. */
export interface HeaderInfo {
  hash: string;
  parent: string;
  height: number;
  timestamp_ms: number;
  transaction_count: number;
  state_root: string;
}

/** Whether `value` looks like `system_health`'s answer: a node of another chain does not. */
export function isHealth(value: unknown): value is Health {
  const health = value as Partial<Health> | null;
  return (
    typeof health?.chain === 'string' &&
    typeof health.genesis_hash === 'string' &&
    typeof health.finalized?.height === 'number'
  );
}

/** Whether `value` looks like a finalized head notification. */
export function isHeader(value: unknown): value is HeaderInfo {
  const header = value as Partial<HeaderInfo> | null;
  return typeof header?.height === 'number' && typeof header.hash === 'string';
}

/** `0x1234…abcd`: enough of a hash to tell it apart on screen; the whole in a tooltip. */
export function shortHash(hash: string): string {
  return hash.length > 14 ? `${hash.slice(0, 6)}…${hash.slice(-4)}` : hash;
}
