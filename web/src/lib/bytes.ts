/** Byte strings as the chain's payloads are built: fixed-width big-endian numbers, joined parts. */

/** `value` as `bytes` bytes, big-endian. */
export function bigEndian(value: number | bigint, bytes: number): Uint8Array {
  let rest = BigInt(value);
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** The parts, one after another. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
