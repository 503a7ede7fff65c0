/**
 * Transactions as the console signs them: their canonical encoding (`wetee_types::codec`,
 * laid out in `layout.ts` and `calls.ts`), what the signer signs, the signed encoding and its
 * hash. Checked against the vectors `crates/types/tests/console_vectors.rs` writes.
 */

import { blake3 } from '@noble/hashes/blake3.js';
import { ss58Decode } from './keys';
import { call, type Call } from './calls';
import { Writer, encodeWith, u128, u64 } from './layout';

/** `wetee_types::transaction::TRANSACTION_DOMAIN`. */
const TRANSACTION_DOMAIN = new TextEncoder().encode('wetee/tx/v1');

export type { Call };

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
  const out = new Writer();
  parts.forEach((part) => out.push(part));
  return out.bytes();
}

/** The canonical encoding of an unsigned transaction. */
export function encodeTransaction(tx: Transaction): Uint8Array {
  return concat(
    ss58Decode(tx.signer),
    encodeWith(u64, tx.nonce, 'the nonce'),
    encodeWith(u128, tx.fee, 'the fee'),
    encodeWith(u64, tx.expiresAt, 'the expiry height'),
    encodeWith(call, tx.call, 'call'),
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
