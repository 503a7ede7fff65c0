/**
 * The building blocks of WeTEE's canonical codec (`wetee_types::codec`), each reading a value
 * in its JSON form (as the node shows it) and writing its canonical bytes:
 * - fixed-width integers big-endian; lengths unsigned LEB128;
 * - structs their fields in order; enums a one-byte tag then the variant's fields;
 * - `Option<T>` a `0`/`1` byte then `T`; fixed byte arrays raw.
 * `calls.ts` declares the calls' layouts with them, field by field as the Rust types do.
 * A value that does not fit names where it is (`spec.container.ports[2].container`).
 */

/** Collects the encoded parts. */
export class Writer {
  private parts: Uint8Array[] = [];

  push(bytes: Uint8Array): void {
    this.parts.push(bytes);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** Writes `value` (in its JSON form) at `path` (for messages). */
export type Layout = (out: Writer, value: unknown, path: string) => void;

/** A value the layout cannot encode, with where it is. */
export class EncodingError extends Error {}

function fail(path: string, problem: string): never {
  throw new EncodingError(`${path}: ${problem}`);
}

/** An integer from a JSON number (exact only up to 2^53), a decimal string, or a bigint. */
function integer(value: unknown, path: string): bigint {
  if (typeof value === 'bigint') {
    return value;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      fail(path, `${value} is not a whole number JavaScript holds exactly`);
    }
    return BigInt(value);
  }
  if (typeof value === 'string' && /^[0-9]+$/.test(value)) {
    return BigInt(value);
  }
  return fail(path, 'must be a whole number');
}

/** An unsigned integer of `bytes` bytes, big-endian. */
export function unsigned(bytes: number): Layout {
  const limit = 1n << BigInt(bytes * 8);
  return (out, value, path) => {
    let rest = integer(value, path);
    if (rest < 0n || rest >= limit) {
      fail(path, `must be between 0 and 2^${bytes * 8} - 1`);
    }
    const encoded = new Uint8Array(bytes);
    for (let i = bytes - 1; i >= 0; i--) {
      encoded[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
    out.push(encoded);
  };
}

export const u8 = unsigned(1);
export const u16 = unsigned(2);
export const u32 = unsigned(4);
export const u64 = unsigned(8);
/** Amounts (`Balance`): decimal strings in JSON. */
export const u128 = unsigned(16);

export const bool: Layout = (out, value, path) => {
  if (typeof value !== 'boolean') {
    fail(path, 'must be true or false');
  }
  out.push(Uint8Array.of(value ? 1 : 0));
};

/** A length or count: unsigned LEB128. */
function varint(out: Writer, length: number): void {
  const bytes: number[] = [];
  let rest = length;
  do {
    const low = rest & 0x7f;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  out.push(Uint8Array.from(bytes));
}

const utf8 = new TextEncoder();

/** UTF-8 text of at most `max` bytes. */
export function text(max: number): Layout {
  return (out, value, path) => {
    if (typeof value !== 'string') {
      fail(path, 'must be text');
    }
    const bytes = utf8.encode(value);
    if (bytes.length > max) {
      fail(path, `is ${bytes.length} bytes long; at most ${max} are allowed`);
    }
    varint(out, bytes.length);
    out.push(bytes);
  };
}

/** At most `max` items. */
export function list(item: Layout, max: number): Layout {
  return (out, value, path) => {
    if (!Array.isArray(value)) {
      fail(path, 'must be a list');
    }
    if (value.length > max) {
      fail(path, `has ${value.length} items; at most ${max} are allowed`);
    }
    varint(out, value.length);
    value.forEach((entry, index) => item(out, entry, `${path}[${index}]`));
  };
}

/** `null` or the value. */
export function option(item: Layout): Layout {
  return (out, value, path) => {
    if (value === null || value === undefined) {
      out.push(Uint8Array.of(0));
      return;
    }
    out.push(Uint8Array.of(1));
    item(out, value, path);
  };
}

/** Exactly `length` bytes, written raw: JSON as a list of numbers or as hex. */
export function fixedBytes(length: number): Layout {
  return (out, value, path) => {
    let bytes: Uint8Array;
    if (typeof value === 'string') {
      bytes = hexBytes(value, path);
    } else if (Array.isArray(value) && value.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) {
      bytes = Uint8Array.from(value as number[]);
    } else {
      return fail(path, `must be ${length} bytes`);
    }
    if (bytes.length !== length) {
      fail(path, `must be ${length} bytes, not ${bytes.length}`);
    }
    out.push(bytes);
  };
}

function hexBytes(value: string, path: string): Uint8Array {
  const digits = value.startsWith('0x') ? value.slice(2) : value;
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) {
    fail(path, 'must be hex');
  }
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

function record(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(path, 'must be an object');
  }
  return value as Record<string, unknown>;
}

/** Fields in declaration order. */
export type Fields = [name: string, layout: Layout][];

function writeFields(out: Writer, fields: Fields, value: Record<string, unknown>, path: string) {
  for (const [name, layout] of fields) {
    layout(out, value[name], `${path}.${name}`);
  }
}

/** A struct: its fields in order. */
export function struct(fields: Fields): Layout {
  return (out, value, path) => writeFields(out, fields, record(value, path), path);
}

/** An enum whose JSON is its variant's name (serde's unit variants), by tag. */
export function names(tags: Record<string, number>): Layout {
  return (out, value, path) => {
    const tag = typeof value === 'string' && Object.hasOwn(tags, value) ? tags[value] : undefined;
    if (tag === undefined) {
      fail(path, `must be one of ${Object.keys(tags).join(', ')}`);
    }
    out.push(Uint8Array.of(tag));
  };
}

/** A variant: its tag and fields (none for a unit variant, one unnamed for a newtype). */
export type Variant = [tag: number, fields: Fields | Layout | null];

/**
 * An enum in serde's default JSON: `"unit"`, `{"variant": {fields}}` or `{"variant": inner}`.
 */
export function variants(cases: Record<string, Variant>): Layout {
  return (out, value, path) => {
    const [name, inner] =
      typeof value === 'string'
        ? [value, null]
        : Object.entries(record(value, path)).length === 1
          ? Object.entries(record(value, path))[0]
          : fail(path, 'must name one variant');
    const variant = Object.hasOwn(cases, name) ? cases[name] : undefined;
    if (!variant) {
      fail(path, `${name} is not one of ${Object.keys(cases).join(', ')}`);
    }
    const [tag, fields] = variant;
    out.push(Uint8Array.of(tag));
    if (typeof fields === 'function') {
      fields(out, inner, `${path}.${name}`);
    } else if (fields) {
      writeFields(out, fields, record(inner, `${path}.${name}`), `${path}.${name}`);
    }
  };
}

/** An enum in serde's internally tagged JSON: `{"kind": "variant", ...fields}`. */
export function tagged(key: string, cases: Record<string, [tag: number, fields: Fields]>): Layout {
  return (out, value, path) => {
    const object = record(value, path);
    const name = object[key];
    const variant = typeof name === 'string' && Object.hasOwn(cases, name) ? cases[name] : undefined;
    if (!variant) {
      fail(`${path}.${key}`, `must be one of ${Object.keys(cases).join(', ')}`);
    }
    out.push(Uint8Array.of(variant[0]));
    writeFields(out, variant[1], object, path);
  };
}

/** Encodes `value` with `layout`. */
export function encodeWith(layout: Layout, value: unknown, path: string): Uint8Array {
  const out = new Writer();
  layout(out, value, path);
  return out.bytes();
}
