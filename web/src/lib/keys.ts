/**
 * Accounts in the browser: SS58 addresses with WeTEE's prefix, and the development accounts
 * (`//Alice`…), derived as Substrate derives them (sr25519, hard junctions from the public
 * development phrase). They are offered only on a development chain: their keys are public.
 */

import { blake2b } from '@noble/hashes/blake2.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { base58 } from '@scure/base';
import { mnemonicToEntropy } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { HDKD, getPublicKey, secretFromSeed } from '@scure/sr25519';

/** WeTEE's SS58 address prefix (`wetee_types::crypto::SS58_PREFIX`): addresses start `vx`. */
export const SS58_PREFIX = 2026;

/** The public phrase every development key derives from (Substrate's). */
const DEV_PHRASE = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';

/** The funded development accounts of `wetee dev` (`wetee_client::keys::DEV_ACCOUNTS`). */
export const DEV_ACCOUNTS = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'] as const;

const encoder = new TextEncoder();

/** The two checksum bytes SS58 appends to its prefix and key. */
function ss58Checksum(body: Uint8Array): Uint8Array {
  return blake2b(new Uint8Array([...encoder.encode('SS58PRE'), ...body]), { dkLen: 64 }).subarray(
    0,
    2,
  );
}

/** The SS58 form of a 32-byte public key under `prefix` (one or two prefix bytes). */
export function ss58Encode(publicKey: Uint8Array, prefix = SS58_PREFIX): string {
  if (publicKey.length !== 32) {
    throw new Error(`an account is 32 bytes, not ${publicKey.length}`);
  }
  const head =
    prefix < 64
      ? Uint8Array.of(prefix)
      : Uint8Array.of(((prefix & 0b1111_1100) >> 2) | 0b0100_0000, (prefix >> 8) | ((prefix & 0b11) << 6));
  const body = new Uint8Array([...head, ...publicKey]);
  return base58.encode(new Uint8Array([...body, ...ss58Checksum(body)]));
}

/** An SS58 address's prefix and 32-byte public key (checksum checked), whatever its network. */
function ss58Parts(address: string): { prefix: number; publicKey: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(address.trim());
  } catch {
    throw new Error(`${address} is not an SS58 address`);
  }
  // One prefix byte (below 64) or two, then 32 bytes of key and 2 of checksum.
  const long = bytes.length > 0 && (bytes[0] & 0b0100_0000) !== 0;
  const head = long ? 2 : 1;
  if (bytes.length !== head + 34 || (bytes[0] & 0b1000_0000) !== 0) {
    throw new Error(`${address} is not an SS58 account address`);
  }
  const prefix = long
    ? ((bytes[0] & 0b0011_1111) << 2) | (bytes[1] >> 6) | ((bytes[1] & 0b0011_1111) << 8)
    : bytes[0];
  const checksum = ss58Checksum(bytes.subarray(0, head + 32));
  if (checksum[0] !== bytes[head + 32] || checksum[1] !== bytes[head + 33]) {
    throw new Error(`${address} has a wrong checksum: a character is mistyped`);
  }
  return { prefix, publicKey: bytes.slice(head, head + 32) };
}

/** The 32-byte public key of an SS58 address with WeTEE's prefix (checksum checked). */
export function ss58Decode(address: string): Uint8Array {
  const { prefix, publicKey } = ss58Parts(address);
  if (prefix !== SS58_PREFIX) {
    throw new Error(`${address} is not a WeTEE address: its SS58 prefix is not ${SS58_PREFIX}`);
  }
  return publicKey;
}

/**
 * The public key of an address of any network: an extension lists its accounts under the
 * prefix it was told, and the same key is a WeTEE account.
 */
export function ss58DecodeAny(address: string): Uint8Array {
  return ss58Parts(address).publicKey;
}

/** Substrate's seed of a BIP39 phrase: PBKDF2-SHA512 over the entropy, not the words. */
function miniSecret(phrase: string, password = ''): Uint8Array {
  const entropy = mnemonicToEntropy(phrase, wordlist);
  return pbkdf2(sha512, entropy, `mnemonic${password}`, { c: 2048, dkLen: 64 }).subarray(0, 32);
}

/** SCALE's compact encoding of a length. */
function compactLength(length: number): Uint8Array {
  if (length < 1 << 6) {
    return Uint8Array.of(length << 2);
  }
  if (length < 1 << 14) {
    const value = (length << 2) | 1;
    return Uint8Array.of(value & 0xff, value >> 8);
  }
  throw new Error('junction names are short');
}

/**
 * A junction's chain code: the SCALE encoding of the name (a number if it is one that fits
 * 64 bits, a string otherwise), zero-padded, or hashed when longer than 32 bytes.
 */
function chainCode(name: string): Uint8Array {
  let encoded: Uint8Array;
  if (/^[0-9]+$/.test(name) && BigInt(name) < 1n << 64n) {
    encoded = new Uint8Array(8);
    new DataView(encoded.buffer).setBigUint64(0, BigInt(name), true);
  } else {
    const bytes = encoder.encode(name);
    encoded = new Uint8Array([...compactLength(bytes.length), ...bytes]);
  }
  if (encoded.length > 32) {
    return blake2b(encoded, { dkLen: 32 });
  }
  const code = new Uint8Array(32);
  code.set(encoded);
  return code;
}

/** An account whose sr25519 key the page holds: a development key, or one from a phrase. */
export interface KeyAccount {
  name: string;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  address: string;
}

/**
 * The sr25519 account of a secret URI as the CLI reads one (`wetee_client::keys::SecretUri`):
 * a BIP39 phrase, then hard (`//name`) and soft (`/name`) junctions, then `///password`.
 * Throws, without repeating the phrase, if it is not one.
 */
export function accountFromUri(uri: string): KeyAccount {
  const text = uri.trim();
  const passwordAt = text.indexOf('///');
  const rest = passwordAt >= 0 ? text.slice(0, passwordAt) : text;
  const password = passwordAt >= 0 ? text.slice(passwordAt + 3) : '';
  const pathAt = rest.indexOf('/');
  const phrase = (pathAt >= 0 ? rest.slice(0, pathAt) : rest).trim().split(/\s+/).join(' ');
  let path = pathAt >= 0 ? rest.slice(pathAt) : '';
  let secretKey: Uint8Array;
  try {
    secretKey = secretFromSeed(miniSecret(phrase, password));
  } catch {
    throw new Error('this is not a BIP39 phrase of the English word list (check every word and their order)');
  }
  while (path.length > 0) {
    const hard = path.startsWith('//');
    const tail = path.slice(hard ? 2 : 1);
    const end = tail.indexOf('/') >= 0 ? tail.indexOf('/') : tail.length;
    const name = tail.slice(0, end);
    if (name === '') {
      throw new Error("empty derivation step (too many '/')");
    }
    secretKey = hard ? HDKD.secretHard(secretKey, chainCode(name)) : HDKD.secretSoft(secretKey, chainCode(name));
    path = tail.slice(end);
  }
  const publicKey = getPublicKey(secretKey);
  return { name: 'secret phrase', secretKey, publicKey, address: ss58Encode(publicKey) };
}

/** A development account: its name, its sr25519 secret (public knowledge) and public key. */
export type DevAccount = KeyAccount;

/** `//name`, derived from the development phrase. */
export function devAccount(name: string): DevAccount {
  const root = secretFromSeed(miniSecret(DEV_PHRASE));
  const secretKey = HDKD.secretHard(root, chainCode(name));
  const publicKey = getPublicKey(secretKey);
  return { name: `//${name}`, secretKey, publicKey, address: ss58Encode(publicKey) };
}
