/**
 * Requests to a worker's owner API (logs, status), signed in the page and passed on by the
 * console's server, which sends them only to the endpoint and TLS identity the chain attested
 * (`wetee_types::owner` says how they are signed). The account signs once, delegating to a
 * short-lived Ed25519 session key that then signs each request: an extension asks once per
 * sign-in, not for every reconnection of a followed log.
 */

import { bigEndian, concatBytes } from './bytes';
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromHex, toHex } from './codec';
import { ss58DecodeAny } from './keys';
import type { Account, AccountSignature } from './signer';

const text = new TextEncoder();
const OWNER_REQUEST_DOMAIN = text.encode('wetee/owner-api/v2');
const OWNER_SESSION_DOMAIN = text.encode('wetee/owner-session/v1');
/** How long a session lasts: a sign-in's worth. */
const SESSION_MS = 3_600_000;

/** A request: its method, target (path and query) and the worker's `host:port`. */
export interface RequestTarget {
  method: string;
  target: string;
  host: string;
}

/** The bytes signed for a request (`wetee_types::owner::request_payload`). */
export function requestPayload(
  genesisHash: Uint8Array,
  worker: number,
  request: RequestTarget,
  timestampMs: number,
  nonce: Uint8Array,
): Uint8Array {
  const parts = [request.method, request.target, request.host].flatMap((part) => {
    const bytes = text.encode(part);
    return [bigEndian(bytes.length, 8), bytes];
  });
  return concatBytes(OWNER_REQUEST_DOMAIN, genesisHash, bigEndian(worker, 8), bigEndian(timestampMs, 8), nonce, ...parts);
}

/** What the account signs to delegate (`wetee_types::owner::Session::payload`). */
export function sessionPayload(genesisHash: Uint8Array, key: Uint8Array, expiresMs: number): Uint8Array {
  return concatBytes(OWNER_SESSION_DOMAIN, genesisHash, key, bigEndian(expiresMs, 8));
}

function signatureText(signature: AccountSignature): string {
  return `${signature.scheme}:${toHex(signature.signature).slice(2)}`;
}

/** A session key an account delegated its owner-API requests to. */
export interface OwnerSession {
  /** The account, as 0x hex. */
  account: string;
  genesisHash: Uint8Array;
  expiresMs: number;
  /** The `x-wetee-session` header. */
  header: string;
  secret: Uint8Array;
}

/** `account` delegates to a fresh key for `lifetimeMs` on the chain `genesisHash`. */
async function delegate(
  account: Account,
  genesisHash: Uint8Array,
  lifetimeMs = SESSION_MS,
  nowMs = Date.now(),
): Promise<OwnerSession> {
  const secret = ed25519.utils.randomSecretKey();
  const key = ed25519.getPublicKey(secret);
  const expiresMs = nowMs + lifetimeMs;
  const until = new Date(expiresMs).toLocaleTimeString();
  const delegation = await account.sign(
    sessionPayload(genesisHash, key, expiresMs),
    `let this page read your apps' logs and status from their workers until ${until}`,
  );
  return {
    account: toHex(ss58DecodeAny(account.address)),
    genesisHash,
    expiresMs,
    header: `${toHex(key).slice(2)}.${expiresMs}.${signatureText(delegation)}`,
    secret,
  };
}

/** The headers of `request` to `worker`, signed with `session`. */
function signedHeaders(
  session: OwnerSession,
  worker: number,
  request: RequestTarget,
  nowMs = Date.now(),
  nonce = crypto.getRandomValues(new Uint8Array(16)),
): Record<string, string> {
  const payload = requestPayload(session.genesisHash, worker, request, nowMs, nonce);
  const signature = ed25519.sign(payload, session.secret);
  return {
    'x-wetee-account': session.account,
    'x-wetee-timestamp': String(nowMs),
    'x-wetee-nonce': toHex(nonce).slice(2),
    'x-wetee-signature': `ed25519:${toHex(signature).slice(2)}`,
    'x-wetee-session': session.header,
  };
}

/** A worker as the page reaches its owner API: its id and the `host:port` requests are signed for. */
export interface OwnerApi {
  worker: number;
  host: string;
}

/**
 * `GET target` (`/_wetee/…`) on the worker's owner API, signed with `session`, through the
 * console's relay. The answer is the worker's own (its status and body), or the relay's 502
 * saying why the worker could not be reached.
 */
export function ownerGet(
  session: OwnerSession,
  api: OwnerApi,
  target: string,
  signal?: AbortSignal,
): Promise<Response> {
  if (!target.startsWith('/_wetee/')) {
    throw new Error(`an owner-API target starts with /_wetee/, not ${target}`);
  }
  const headers = signedHeaders(session, api.worker, { method: 'GET', target, host: api.host });
  return fetch(`/api/owner/${api.worker}/${target.slice('/_wetee/'.length)}`, {
    headers: { ...headers, 'x-wetee-console': '1' },
    signal,
    cache: 'no-store',
  });
}

const sessions = new Map<string, OwnerSession>();

/**
 * The session `account` signs owner-API requests with on the chain `genesisHash` (hex): one
 * per sign-in, delegated anew a minute before it ends.
 */
export async function sessionFor(account: Account, genesisHash: string): Promise<OwnerSession> {
  const name = `${genesisHash}:${account.address}`;
  const kept = sessions.get(name);
  if (kept && kept.expiresMs - Date.now() > 60_000) {
    return kept;
  }
  const made = await delegate(account, fromHex(genesisHash));
  sessions.set(name, made);
  return made;
}
