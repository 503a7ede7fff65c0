/**
 * HPKE (RFC 9180) as `wetee_sealing` uses it: X25519-HKDF-SHA256, HKDF-SHA256 and
 * ChaCha20-Poly1305, single-shot; base mode for what the page seals (secrets, to a worker and to
 * the owner), auth mode for what it opens from a worker (log batches: they open only if the
 * worker's attested key sealed them). Keys are raw 32-byte X25519 keys, as on chain.
 */

import { CipherSuite, HkdfSha256 } from '@hpke/core';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { x25519 } from '@noble/curves/ed25519.js';

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
});

/** A sealed value: the encapsulated key and the ciphertext with its tag. */
export interface Sealed {
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

/** The X25519 public key of `secret`. */
export function publicKey(secret: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secret);
}

/** A fresh X25519 secret from the browser's randomness. */
export function randomSecret(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** The bytes in an `ArrayBuffer` of their own, as WebCrypto-style APIs take them. */
function buffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function recipientKey(key: Uint8Array) {
  if (key.length !== 32) {
    throw new Error('an X25519 key is 32 bytes');
  }
  return suite.kem.importKey('raw', buffer(key), true);
}

/** Seals `plaintext` to `recipient` (base mode). */
export async function seal(
  recipient: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Sealed> {
  const sender = await suite.createSenderContext({
    recipientPublicKey: await recipientKey(recipient),
    info: buffer(info),
  });
  const ciphertext = new Uint8Array(await sender.seal(buffer(plaintext), buffer(aad)));
  return { enc: new Uint8Array(sender.enc), ciphertext };
}

/**
 * Opens `sealed` with `secret`; with `sender` (a public key), in auth mode: only what that
 * key's holder sealed opens. `null` if it does not open (wrong key, binding or an alteration:
 * HPKE does not say which).
 */
export async function open(
  secret: Uint8Array,
  sender: Uint8Array | null,
  info: Uint8Array,
  aad: Uint8Array,
  sealed: Sealed,
): Promise<Uint8Array | null> {
  try {
    const recipient = await suite.createRecipientContext({
      recipientKey: await suite.kem.importKey('raw', buffer(secret), false),
      enc: buffer(sealed.enc),
      info: buffer(info),
      ...(sender ? { senderPublicKey: await recipientKey(sender) } : {}),
    });
    return new Uint8Array(await recipient.open(buffer(sealed.ciphertext), buffer(aad)));
  } catch {
    return null;
  }
}
