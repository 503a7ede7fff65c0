/**
 * WeTEE's canonical codec (`wetee_types::codec`) for what the console signs: fixed-width
 * integers big-endian, structs as their fields in order, enums as a one-byte tag then the
 * variant's fields. Checked against the vectors `crates/types/tests/console_vectors.rs` writes.
 */

import { blake3 } from '@noble/hashes/blake3.js';
import { ss58Decode } from './keys';

/** `wetee_types::transaction::TRANSACTION_DOMAIN`. */
const TRANSACTION_DOMAIN = new TextEncoder().encode('wetee/tx/v1');

/** The calls the console sends, in their JSON form (as the node shows them). */
export type Call = { balances: { transfer: { to: string; amount: string } } };

/** An unsigned transaction: amounts and counters as bigint, accounts as SS58. */
export interface Transaction {
  signer: string;
  nonce: bigint;
  fee: bigint;
  expiresAt: bigint;
  call: Call;
}

/** The signature schemes, by their tag in the codec. */
export type Scheme = 'ed25519' | 'sr25519';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** `value` as `bytes` big-endian bytes; refuses what does not fit. */
function unsigned(value: bigint, bytes: number, what: string): Uint8Array {
  if (value < 0n || value >= 1n << BigInt(bytes * 8)) {
    throw new Error(`${what} must be between 0 and 2^${bytes * 8} - 1`);
  }
  const out = new Uint8Array(bytes);
  let rest = value;
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

function encodeCall(call: Call): Uint8Array {
  const transfer = call.balances?.transfer;
  if (!transfer) {
    throw new Error('the console sends only balances.transfer so far');
  }
  // Call::Balances = 0, BalancesCall::Transfer = 0.
  return concat(
    Uint8Array.of(0, 0),
    ss58Decode(transfer.to),
    unsigned(BigInt(transfer.amount), 16, 'the amount'),
  );
}

/** The canonical encoding of an unsigned transaction. */
export function encodeTransaction(tx: Transaction): Uint8Array {
  return concat(
    ss58Decode(tx.signer),
    unsigned(tx.nonce, 8, 'the nonce'),
    unsigned(tx.fee, 16, 'the fee'),
    unsigned(tx.expiresAt, 8, 'the expiry height'),
    encodeCall(tx.call),
  );
}

/** What the signer signs: the domain tag, the chain's genesis hash, the transaction. */
export function signingPayload(genesisHash: Uint8Array, encoded: Uint8Array): Uint8Array {
  if (genesisHash.length !== 32) {
    throw new Error('a genesis hash is 32 bytes');
  }
  return concat(TRANSACTION_DOMAIN, genesisHash, encoded);
}

/** The signed transaction's encoding: the transaction, the scheme's tag, the 64 bytes. */
export function encodeSigned(encoded: Uint8Array, scheme: Scheme, signature: Uint8Array): Uint8Array {
  if (signature.length !== 64) {
    throw new Error('a signature is 64 bytes');
  }
  return concat(encoded, Uint8Array.of(scheme === 'ed25519' ? 0 : 1), signature);
}

/** The transaction's id: BLAKE3 of its signed encoding. */
export function transactionHash(signedEncoded: Uint8Array): Uint8Array {
  return blake3(signedEncoded);
}

/** `0x…` of bytes. */
export function toHex(bytes: Uint8Array): string {
  return `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Bytes of `0x…` hex. */
export function fromHex(hex: string): Uint8Array {
  const digits = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) {
    throw new Error('not hex');
  }
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}
