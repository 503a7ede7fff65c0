/** Signing a call in the browser and following it to finality. */

import type { Call } from './calls';
import { describeCall } from './callWords';
import { formatBalance } from './balance';
import {
  encodeSigned,
  encodeTransaction,
  fromHex,
  signingPayload,
  toHex,
  type Transaction,
} from './codec';
import type { ChainEvent } from './events';
import type { Account } from './signer';
import type { Rpc, RpcError } from './rpc';

/**
 * How long a transaction stays valid, in milliseconds, converted into blocks with the chain's
 * block time (as the Rust SDK's `DEFAULT_LIFETIME_MS`).
 */
const LIFETIME_MS = 150_000n;
/** `state_params`, as far as lifetimes go. */
interface BlockTime {
  params: { target_block_time_ms: number };
}

/**
 * `payment_queryFee`: the least fee of a transaction, part by part. The weight is what executing
 * it costs a validator, in nanoseconds on the chain's reference machine.
 */
export interface FeeQuote {
  weight: number;
  size: number;
  base: string;
  for_weight: string;
  for_bytes: string;
  minimum_fee: string;
}

/** A transaction ready to sign, with what its fee pays for. */
export type Prepared = Transaction & { quote: FeeQuote };

/** What a fee pays for, in words: `0.00105 WTE (0.001 WTE base, … for 55.0 µs of work, …)`. */
export function feeWords(quote: FeeQuote): string {
  return (
    `${formatBalance(quote.minimum_fee)} (${formatBalance(quote.base)} base, ` +
    `${formatBalance(quote.for_weight)} for ${workWords(quote.weight)} of work, ` +
    `${formatBalance(quote.for_bytes)} for ${quote.size} bytes)`
  );
}

/** A weight (nanoseconds) in the unit a person reads. */
export function workWords(nanos: number): string {
  if (nanos < 1_000) {
    return `${nanos} ns`;
  }
  if (nanos < 1_000_000) {
    return `${(nanos / 1_000).toFixed(1)} µs`;
  }
  return `${(nanos / 1_000_000).toFixed(2)} ms`;
}

/** Blocks in `LIFETIME_MS` at `blockTimeMs` a block, rounded up. */
export function lifetimeBlocks(blockTimeMs: number): bigint {
  const blockTime = BigInt(Math.max(1, Math.floor(blockTimeMs)));
  return (LIFETIME_MS + blockTime - 1n) / blockTime;
}

/** A signed transaction, ready to submit. */
export interface Signed {
  /** Its signed encoding, in hex. */
  hex: string;
  /** The fee it pays. */
  fee: bigint;
}

/**
 * The transaction that sends `call` from `from`: at the nonce the node gives, with the least
 * fee the chain takes for it (its size and weight, quoted by the node), valid for
 * `LIFETIME_MS` of blocks after `finalized`.
 */
export async function prepare(
  rpc: Rpc,
  from: Account,
  call: Call,
  finalized: number,
): Promise<Prepared> {
  const [nonce, chain] = await Promise.all([
    rpc.call<number>('system_accountNextIndex', [from.address]),
    rpc.call<BlockTime>('state_params'),
  ]);
  const tx: Transaction = {
    signer: from.address,
    nonce: BigInt(nonce),
    fee: 0n,
    expiresAt: BigInt(finalized) + lifetimeBlocks(chain.params.target_block_time_ms),
    call,
  };
  // The node weighs the call; neither the fee's value nor the signature changes the quote.
  const probe = encodeSigned(encodeTransaction(tx), 'sr25519', new Uint8Array(64));
  const quote = await rpc.call<FeeQuote>('payment_queryFee', [toHex(probe)]);
  return { ...tx, fee: BigInt(quote.minimum_fee), quote };
}

/** Signs `tx` as `from` for the chain `genesisHash` (in the page, or in an extension). */
export async function signTransaction(
  from: Account,
  tx: Transaction,
  genesisHash: string,
): Promise<Signed> {
  const encoded = encodeTransaction(tx);
  const words = `${describeCall(tx.call)}, for a fee of ${formatBalance(tx.fee.toString())}`;
  const { scheme, signature } = await from.sign(signingPayload(fromHex(genesisHash), encoded), words);
  return { hex: toHex(encodeSigned(encoded, scheme, signature)), fee: tx.fee };
}

/** `author_transactionStatus`. */
export interface Status {
  status: 'ready' | 'included' | 'finalized' | 'dropped';
  hash?: string;
  block?: { height: number; hash: string };
  reason?: string;
  receipt?: { outcome?: { outcome: string }; events?: ChainEvent[] };
  /** Why a finalized call failed, in the chain's words. */
  failure?: string;
}

/** How a submission ended. */
export type Ending =
  | { kind: 'finalized'; status: Status }
  | { kind: 'failed'; reason: string }
  | { kind: 'refused'; reason: string; code?: number | null; data?: unknown }
  | { kind: 'dropped'; reason: string }
  | { kind: 'lost'; reason: string };

/**
 * Submits `signed` once and reports each status; resolves with how it ended. After a lost
 * connection it is not sent again, since it may have been finalized meanwhile.
 */
export function submit(rpc: Rpc, signed: Signed, onStatus: (status: Status) => void): Promise<Ending> {
  return new Promise((resolve) => {
    const stop = rpc.subscribe(
      'author_submitAndWatch',
      [signed.hex],
      'author_unwatch',
      (item) => {
        const status = item as Status;
        onStatus(status);
        if (status.status === 'finalized') {
          stop();
          resolve(
            status.receipt?.outcome?.outcome === 'failed'
              ? { kind: 'failed', reason: status.failure ?? 'the call failed' }
              : { kind: 'finalized', status },
          );
        } else if (status.status === 'dropped') {
          stop();
          resolve({ kind: 'dropped', reason: status.reason ?? 'dropped' });
        }
      },
      {
        onRefused: (error: RpcError) =>
          resolve({ kind: 'refused', reason: error.message, code: error.code, data: error.data }),
        onLost: (reason) => resolve({ kind: 'lost', reason }),
      },
    );
  });
}

/** The node's refusals for a nonce another transaction of the signer took (docs/rpc.md). */
const NONCE_TAKEN = 1005;
const NONCE_USED = 1006;
/** How many times a call is signed again at the next free nonce. */
const NONCE_RETRIES = 3;

/**
 * Signs `call` as `from` and submits it, reporting each status. Another tab, wallet or script
 * of the same account may take the nonce first: the node then refuses this one at its first
 * submission (so it never executed) and names the next free nonce, at which it is signed
 * again, a few times.
 */
export async function sendCall(
  rpc: Rpc,
  from: Account,
  call: Call,
  genesisHash: string,
  finalized: number,
  onStatus: (status: Status) => void,
): Promise<Ending> {
  const tx = await prepare(rpc, from, call, finalized);
  for (let attempt = 0; ; attempt++) {
    const ending = await submit(rpc, await signTransaction(from, tx, genesisHash), onStatus);
    const next = (ending.kind === 'refused' ? (ending.data as { next?: unknown } | undefined)?.next : undefined) ?? null;
    const taken = ending.kind === 'refused' && (ending.code === NONCE_TAKEN || ending.code === NONCE_USED);
    if (!taken || typeof next !== 'number' || attempt >= NONCE_RETRIES) {
      return ending;
    }
    tx.nonce = BigInt(next);
  }
}

/** What an ending means to the person who sent `what`, in words; `null` when it went through. */
export function endingWords(what: string, ending: Ending): string | null {
  switch (ending.kind) {
    case 'finalized':
      return null;
    case 'failed':
      return `the chain refused ${what}: ${ending.reason} (the fee was paid)`;
    case 'refused':
      return `the chain refused ${what}: ${ending.reason}`;
    case 'dropped':
      return `${what} was dropped: ${ending.reason}`;
    case 'lost':
      return `the connection to the node was lost (${ending.reason}) before ${what} was final: whether it went through shows once the node is back`;
  }
}
