// The console's codec against the vectors wetee-types writes
// (crates/types/tests/console_vectors.rs): the same bytes, payloads and hashes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileForNode } from './support.mjs';

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/transactions.json', import.meta.url), 'utf8'),
);

test('every transaction vector encodes, signs over and hashes as the Rust codec does', async () => {
  const codec = await compileForNode('src/lib/codec.ts');
  const keys = await compileForNode('src/lib/keys.ts');
  assert.ok(vectors.transactions.length >= 200);
  for (const [index, vector] of vectors.transactions.entries()) {
    const { tx, signature } = vector.signed;
    const transaction = {
      signer: tx.signer,
      nonce: BigInt(vector.exact.nonce),
      fee: BigInt(tx.fee),
      expiresAt: BigInt(vector.exact.expires_at),
      call: tx.call,
    };
    const encoded = codec.encodeTransaction(transaction);
    assert.equal(codec.toHex(encoded), vector.encoded, `vector ${index}: encoding`);
    assert.equal(
      codec.toHex(keys.ss58Decode(tx.signer)),
      vector.signer_public_key,
      `vector ${index}: signer`,
    );
    const payload = codec.signingPayload(codec.fromHex(vector.genesis_hash), encoded);
    assert.equal(codec.toHex(payload), vector.signing_payload, `vector ${index}: payload`);
    const signed = codec.encodeSigned(encoded, signature.scheme, codec.fromHex(signature.signature));
    assert.equal(codec.toHex(signed), vector.signed_encoded, `vector ${index}: signed`);
    assert.equal(codec.toHex(codec.transactionHash(signed)), vector.hash, `vector ${index}: hash`);
  }
});

test('addresses that are not WeTEE accounts are refused with the reason', async () => {
  const keys = await compileForNode('src/lib/keys.ts');
  const alice = 'vxszpwueo7jPZVqnQBZqSKLJZKkhzUMWHEWNQN6QureYjo2oC';
  assert.equal(keys.ss58Decode(alice).length, 32);
  // Polkadot's generic prefix (42): the same key, another network.
  assert.throws(
    () => keys.ss58Decode('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY'),
    /not a WeTEE address/,
  );
  const mistyped = `${alice.slice(0, -1)}${alice.endsWith('C') ? 'D' : 'C'}`;
  assert.throws(() => keys.ss58Decode(mistyped), /checksum/);
  assert.throws(() => keys.ss58Decode('not an address'), /not an SS58 address/);
});
