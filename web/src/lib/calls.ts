/**
 * The calls the console sends, laid out field by field as `wetee_types::transaction` and
 * `wetee_types::manifest` declare them (`codec_struct!`, `codec_enum!`), with the same tags
 * and bounds. Checked against the vectors `crates/types/tests/console_vectors.rs` writes: a
 * field out of order or a wrong tag fails `npm test`.
 */

import { ss58Decode } from './keys';
import {
  bool,
  fixedBytes,
  list,
  names,
  option,
  struct,
  tagged,
  text,
  u16,
  u32,
  u64,
  u8,
  u128,
  variants,
  type Layout,
} from './layout';

/** An account: SS58 text in JSON, 32 bytes on chain. */
const account: Layout = (out, value, path) => {
  if (typeof value !== 'string') {
    throw new Error(`${path}: must be an address`);
  }
  out.push(ss58Decode(value));
};

const id = u64;
const balance = u128;
const envName = text(128);
/** `wetee_types::manifest::MAX_SECRETS`. */
const MAX_SECRETS = 32;
/** `wetee_types::records::MAX_SEALED_BYTES`. */
const MAX_SEALED_BYTES = 2048 + 16;
/** `wetee_types::records::MAX_ALLOWED_IMAGES`. */
const MAX_ALLOWED_IMAGES = 8;

/** `SealedBox`: an HPKE encapsulated key and ciphertext. */
const sealedBox = struct([
  ['enc', fixedBytes(32)],
  ['ciphertext', list(u8, MAX_SEALED_BYTES)],
]);

/** `SealedSecret`: a secret sealed to the worker and to its owner. */
export const sealedSecret = struct([
  ['name', envName],
  ['revision', u32],
  ['for_worker', sealedBox],
  ['for_owner', sealedBox],
]);

/** `Signature`: `{"scheme": "sr25519", "signature": "0x…"}`, its scheme's tag and 64 bytes. */
const signature: Layout = (out, value, path) => {
  const { scheme } = (value ?? {}) as { scheme?: unknown };
  names({ ed25519: 0, sr25519: 1 })(out, scheme, `${path}.scheme`);
  fixedBytes(64)(out, (value as { signature?: unknown }).signature, `${path}.signature`);
};

/** `SecretsGrant`: the owner's consent that an update's image receives the app's secrets. */
const secretsGrant = struct([
  ['allowed_images', list(fixedBytes(32), MAX_ALLOWED_IMAGES)],
  ['signature', signature],
]);

const imageRef = struct([
  ['repository', text(255)],
  ['digest', fixedBytes(32)],
]);

const envVar = struct([
  ['name', envName],
  ['value', text(4096)],
]);

const port = struct([
  ['container', u16],
  ['protocol', names({ tcp: 0, udp: 1 })],
]);

const resources = struct([
  ['cpu_millicores', u64],
  ['memory_mib', u64],
  ['disk_gib', u64],
  ['gpus', u64],
]);

const security = struct([
  [
    'capabilities',
    list(
      names({
        CHOWN: 0,
        DAC_OVERRIDE: 1,
        FOWNER: 2,
        FSETID: 3,
        KILL: 4,
        SETGID: 5,
        SETUID: 6,
        NET_BIND_SERVICE: 7,
      }),
      8,
    ),
  ],
  ['read_only_root', bool],
  ['egress', names({ all: 0, none: 1 })],
]);

const containerSpec = struct([
  ['image', imageRef],
  ['command', list(text(1024), 64)],
  ['args', list(text(1024), 64)],
  ['env', list(envVar, 64)],
  ['secrets', list(envName, 32)],
  ['ports', list(port, 16)],
  ['resources', resources],
  ['gpu_model', option(text(64))],
  ['security', security],
]);

const teeKind = names({ sgx: 0, tdx: 1, 'sev-snp': 2, simulated: 3 });

const measurement32 = option(fixedBytes(32));
const measurement48 = option(fixedBytes(48));

const measurementRule = tagged('kind', {
  sgx: [
    0,
    [
      ['mr_enclave', measurement32],
      ['mr_signer', measurement32],
      ['isv_prod_id', option(u16)],
      ['min_isv_svn', option(u16)],
    ],
  ],
  tdx: [
    1,
    [
      ['mr_td', measurement48],
      ['rtmr0', measurement48],
      ['rtmr1', measurement48],
      ['rtmr2', measurement48],
      ['rtmr3', measurement48],
    ],
  ],
  'sev-snp': [
    2,
    [
      ['measurement', measurement48],
      ['host_data', measurement32],
    ],
  ],
});

const constraints = struct([
  ['tee', teeKind],
  ['region', option(text(32))],
  ['min_level', u8],
  ['max_price_per_epoch', balance],
  ['measurements', list(measurementRule, 32)],
]);

const healthCheck = struct([
  [
    'probe',
    tagged('kind', {
      http: [
        0,
        [
          ['port', u16],
          ['path', text(256)],
        ],
      ],
      tcp: [1, [['port', u16]]],
    }),
  ],
  ['interval_secs', u32],
]);

/** `AppSpec`: what `apps.create` deploys. */
export const appSpec = struct([
  ['name', text(63)],
  ['container', containerSpec],
  ['replicas', u32],
  ['constraints', constraints],
  ['health', option(healthCheck)],
]);

const balancesCall = variants({
  transfer: [
    0,
    [
      ['to', account],
      ['amount', balance],
    ],
  ],
  set_sealing_key: [1, [['key', fixedBytes(32)]]],
});

const appsCall = variants({
  create: [
    0,
    [
      ['spec', appSpec],
      ['deposit', balance],
    ],
  ],
  update: [
    1,
    [
      ['app', id],
      ['spec', appSpec],
      ['secrets_grant', option(secretsGrant)],
    ],
  ],
  recharge: [
    3,
    [
      ['app', id],
      ['amount', balance],
    ],
  ],
  restart: [4, [['app', id]]],
  stop: [5, [['app', id]]],
  set_secrets: [
    6,
    [
      ['app', id],
      ['worker', id],
      ['sealing_key', fixedBytes(32)],
      ['set', list(sealedSecret, MAX_SECRETS)],
      ['remove', list(envName, MAX_SECRETS)],
      ['allowed_images', list(fixedBytes(32), MAX_ALLOWED_IMAGES)],
      ['signature', signature],
    ],
  ],
});

/** `Call`: only the pallets and calls the console sends. */
export const call = variants({
  balances: [0, balancesCall],
  apps: [2, appsCall],
});

/** A call in its JSON form, as the node shows it: `{"apps": {"stop": {"app": 3}}}`. */
export type Call = Record<string, unknown>;
