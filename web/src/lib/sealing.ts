/**
 * What `wetee_sealing` seals and opens, in the page: an owner's logs, sealed by the worker's
 * TEE to the owner (`log_batch`, framed as `wetee_client::owner_logs` serves them), and an
 * app's secrets, sealed here to the worker's attested key and to the owner (`SecretId`). The
 * byte layouts follow the Rust code field by field; `tests/sealing.test.mjs` checks them
 * against what Rust sealed (`web/tests/vectors/sealing.json`).
 */

import { bigEndian, concatBytes } from './bytes';
import { blake3 } from '@noble/hashes/blake3.js';
import { open, seal, type Sealed } from './hpke';
import { encodeWith } from './layout';
import { sealedSecret } from './calls';
import { fromHex, toHex } from './codec';

const text = new TextEncoder();

/** BLAKE3 `derive_key` context of the owner's sealing secret (`wetee_sealing::OWNER_KEY_CONTEXT`). */
const OWNER_KEY_CONTEXT = text.encode('wetee 2026 owner sealing key v1');

/**
 * The owner's sealing secret derived from an sr25519 account key (64 bytes as `@scure/sr25519`
 * holds it), as the CLI derives it: BLAKE3 `derive_key` over schnorrkel's `SecretKey::to_bytes`,
 * whose scalar is the one `@scure/sr25519` keeps multiplied by the cofactor (8).
 */
export function ownerSecretFromAccountKey(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 64) {
    throw new Error('an sr25519 secret key is 64 bytes');
  }
  let scalar = 0n;
  for (let i = 31; i >= 0; i--) {
    scalar = (scalar << 8n) | BigInt(secretKey[i]);
  }
  scalar >>= 3n;
  const schnorrkel = new Uint8Array(64);
  for (let i = 0; i < 32; i++) {
    schnorrkel[i] = Number(scalar & 0xffn);
    scalar >>= 8n;
  }
  schnorrkel.set(secretKey.subarray(32), 32);
  const secret = blake3(schnorrkel, { context: OWNER_KEY_CONTEXT });
  schnorrkel.fill(0);
  return secret;
}

function readBe(bytes: Uint8Array, at: number, length: number): bigint {
  let value = 0n;
  for (let i = 0; i < length; i++) {
    value = (value << 8n) | BigInt(bytes[at + i]);
  }
  return value;
}

/** A workload whose output is read: an app, or one run of a task. */
export type Workload = { app: number } | { task: number; run: number };

function encodeWorkload(workload: Workload): Uint8Array {
  return 'app' in workload
    ? concatBytes(Uint8Array.of(0), bigEndian(workload.app, 8))
    : concatBytes(Uint8Array.of(1), bigEndian(workload.task, 8), bigEndian(workload.run, 4));
}

// log_batch
const LOG_INFO = text.encode('wetee/log-batch/v2');
const LEAF_DOMAIN = text.encode('wetee/log-batch-leaf/v1');
const SALT_BYTES = 32;
const HEADER_BYTES = 4 + 32 + 32 + 32;
const FRAME_HEADER = 12;
const PAD_BYTES = 256;
const MAX_BATCH_BYTES = 1 << 20;
const AEAD_TAG_BYTES = 16;
const MIN_BODY = HEADER_BYTES - 4 + AEAD_TAG_BYTES + SALT_BYTES + 4 + PAD_BYTES;
const MAX_BODY = HEADER_BYTES - 4 + AEAD_TAG_BYTES + SALT_BYTES + 4 + MAX_BATCH_BYTES;

/** Why logs could not be opened, in the words `wetee app logs` uses. */
export class LogError extends Error {}

/** Where a stream of log records is from and for. */
export interface LogBinding {
  genesisHash: Uint8Array;
  worker: number;
  workload: Workload;
  /** The owner's account (32 bytes). */
  owner: Uint8Array;
  /** The owner's sealing secret. */
  secret: Uint8Array;
  /** The public key of `secret`, as the worker sealed to it. */
  ownerKey: Uint8Array;
  /** The worker's attested sealing key, proven through the light client. */
  workerKey: Uint8Array;
}

/** A record's place in the workload's output and its lines. */
export interface OpenedRecord {
  epoch: bigint;
  index: number;
  lines: Uint8Array;
}

/**
 * Opens framed log records as they arrive (`frame = epoch u64 ‖ index u32 ‖ record`): each
 * only if the worker's attested key sealed it, for this workload, epoch, position, worker,
 * owner and chain, and only in order (positions from 0 in each epoch, epochs only up).
 */
export class LogOpener {
  private buffer: Uint8Array = new Uint8Array(0);
  private next: [bigint, number] | null = null;

  constructor(private readonly binding: LogBinding) {}

  /** Takes the next bytes of the answer; every record they complete, opened. */
  async feed(bytes: Uint8Array): Promise<OpenedRecord[]> {
    this.buffer = concatBytes(this.buffer, bytes);
    const opened: OpenedRecord[] = [];
    let consumed = 0;
    for (;;) {
      const rest = this.buffer.subarray(consumed);
      if (rest.length < FRAME_HEADER + 4) {
        break;
      }
      const epoch = readBe(rest, 0, 8);
      const index = Number(readBe(rest, 8, 4));
      const body = Number(readBe(rest, FRAME_HEADER, 4));
      if (body < MIN_BODY || body > MAX_BODY) {
        throw new LogError("the worker's answer is not a stream of sealed log records");
      }
      if (rest.length < FRAME_HEADER + 4 + body) {
        break;
      }
      const record = rest.subarray(FRAME_HEADER, FRAME_HEADER + 4 + body);
      const inOrder =
        this.next === null
          ? index === 0
          : (epoch === this.next[0] && index === this.next[1]) || (epoch > this.next[0] && index === 0);
      if (!inOrder) {
        throw new LogError(
          `record ${index} of epoch ${epoch} is out of order: records were skipped, repeated or reordered`,
        );
      }
      const lines = await this.open(epoch, index, record);
      if (!lines) {
        throw new LogError(
          `record ${index} of epoch ${epoch} does not open with this key: it was sealed to another owner or for another workload, worker or position, or it was altered`,
        );
      }
      this.next = [epoch, index + 1];
      opened.push({ epoch, index, lines });
      consumed += FRAME_HEADER + record.length;
    }
    this.buffer = this.buffer.slice(consumed);
    return opened;
  }

  /** Whether the answer ended between records (else it was cut inside one). */
  get complete(): boolean {
    return this.buffer.length === 0;
  }

  private async open(epoch: bigint, index: number, record: Uint8Array): Promise<Uint8Array | null> {
    const b = this.binding;
    const leaf = record.subarray(4, 36);
    const aad = concatBytes(
      LOG_INFO,
      b.genesisHash,
      encodeWorkload(b.workload),
      bigEndian(epoch, 8),
      bigEndian(index, 4),
      bigEndian(b.worker, 8),
      b.owner,
      leaf,
      b.ownerKey,
    );
    const plain = await open(b.secret, b.workerKey, LOG_INFO, aad, {
      enc: record.subarray(68, HEADER_BYTES),
      ciphertext: record.subarray(HEADER_BYTES),
    });
    if (!plain || plain.length < SALT_BYTES + 4) {
      return null;
    }
    const salt = plain.subarray(0, SALT_BYTES);
    const length = Number(readBe(plain, SALT_BYTES, 4));
    if (SALT_BYTES + 4 + length > plain.length) {
      return null;
    }
    const lines = plain.slice(SALT_BYTES + 4, SALT_BYTES + 4 + length);
    // The lines must be those the worker's signed log root commits to.
    const expected = blake3(concatBytes(LEAF_DOMAIN, salt, lines));
    return toHex(expected) === toHex(leaf) ? lines : null;
  }
}

// Sealed secrets
const SECRET_INFO = text.encode('wetee/sealed-secret/v1');
const SECRETS_SIGNATURE_DOMAIN = text.encode('wetee/app-secrets/v1');

/** Which secret a seal is for (`wetee_sealing::SecretId`). */
export interface SecretId {
  genesisHash: Uint8Array;
  app: number;
  name: string;
  revision: number;
}

function secretAad(id: SecretId, recipient: Uint8Array, key: Uint8Array): Uint8Array {
  const name = text.encode(id.name);
  return concatBytes(
    SECRET_INFO,
    id.genesisHash,
    bigEndian(id.app, 8),
    bigEndian(id.revision, 4),
    bigEndian(name.length, 8),
    name,
    recipient,
    key,
  );
}

/** The associated data of a seal to worker `worker` whose sealing key is `key`. */
function forWorker(id: SecretId, worker: number, key: Uint8Array): Uint8Array {
  return secretAad(id, concatBytes(text.encode('worker'), bigEndian(worker, 8)), key);
}

/** The associated data of a seal to the owner `owner` (its account). */
function forOwner(id: SecretId, owner: Uint8Array): Uint8Array {
  return secretAad(id, text.encode('owner'), owner);
}

/** A `SealedBox` in its JSON form. */
export interface SealedBoxJson {
  enc: string;
  ciphertext: number[];
}

/** A `SealedSecret` in its JSON form, as the node shows it and the codec encodes it. */
export interface SealedSecretJson {
  name: string;
  revision: number;
  for_worker: SealedBoxJson;
  for_owner: SealedBoxJson;
}

function boxJson(sealed: Sealed): SealedBoxJson {
  return { enc: toHex(sealed.enc), ciphertext: Array.from(sealed.ciphertext) };
}

/** `wetee_types::records::MAX_SECRET_BYTES`. */
export const MAX_SECRET_BYTES = 2048;

/** Seals `value` as secret `id`, to worker `worker`'s key and to the owner's `ownerKey`. */
export async function sealSecret(
  id: SecretId,
  value: Uint8Array,
  worker: { id: number; sealingKey: Uint8Array },
  owner: { account: Uint8Array; key: Uint8Array },
): Promise<SealedSecretJson> {
  if (value.length > MAX_SECRET_BYTES) {
    throw new Error(`secret \`${id.name}\`: the value has ${value.length} bytes; at most ${MAX_SECRET_BYTES} are allowed`);
  }
  const toWorker = await seal(worker.sealingKey, SECRET_INFO, forWorker(id, worker.id, worker.sealingKey), value);
  const toOwner = await seal(owner.key, SECRET_INFO, forOwner(id, owner.account), value);
  return { name: id.name, revision: id.revision, for_worker: boxJson(toWorker), for_owner: boxJson(toOwner) };
}

/** Opens the owner's copy of a stored secret with the owner's sealing secret; `null` if it does not open. */
export async function openOwnerCopy(
  id: SecretId,
  stored: SealedSecretJson,
  owner: { account: Uint8Array; secret: Uint8Array },
): Promise<Uint8Array | null> {
  return open(owner.secret, null, SECRET_INFO, forOwner(id, owner.account), {
    enc: fromHex(stored.for_owner.enc),
    ciphertext: Uint8Array.from(stored.for_owner.ciphertext),
  });
}

function compareBytes(a: string, b: string): number {
  const x = text.encode(a);
  const y = text.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) {
      return x[i] - y[i];
    }
  }
  return x.length - y.length;
}

/**
 * The secrets a change leaves (`wetee_types::records::merge_secrets`): those `set` now, and
 * those stored that it neither sets nor removes, by name.
 */
export function mergeSecrets(
  stored: SealedSecretJson[],
  set: SealedSecretJson[],
  remove: string[],
): SealedSecretJson[] {
  const merged = new Map<string, SealedSecretJson>();
  for (const secret of set) {
    merged.set(secret.name, secret);
  }
  for (const kept of stored) {
    if (!remove.includes(kept.name) && !merged.has(kept.name)) {
      merged.set(kept.name, kept);
    }
  }
  return [...merged.values()].sort((a, b) => compareBytes(a.name, b.name));
}

/** What the owner signs (`wetee_types::records::secrets_signing_payload`). */
export function secretsSigningPayload(
  genesisHash: Uint8Array,
  app: number,
  worker: number,
  sealingKey: Uint8Array,
  revision: number,
  secrets: SealedSecretJson[],
  allowedImages: Uint8Array[],
): Uint8Array {
  return concatBytes(
    SECRETS_SIGNATURE_DOMAIN,
    genesisHash,
    bigEndian(app, 8),
    bigEndian(worker, 8),
    sealingKey,
    bigEndian(revision, 4),
    bigEndian(secrets.length, 8),
    ...secrets.map((secret) => encodeWith(sealedSecret, secret, 'secret')),
    bigEndian(allowedImages.length, 8),
    ...allowedImages,
  );
}
