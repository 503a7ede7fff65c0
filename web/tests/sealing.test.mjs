// The console's sealing and owner-API code against what Rust derives and seals
// (crates/client/tests/console_sealing_vectors.rs): the same owner keys, the same signed
// payloads, and what Rust sealed opens here, only as sealed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileForNode } from './support.mjs';

const vectors = JSON.parse(readFileSync(new URL('./vectors/sealing.json', import.meta.url), 'utf8'));
const { derived } = vectors;

const codec = await compileForNode('src/lib/codec.ts');
const keys = await compileForNode('src/lib/keys.ts');
const sealing = await compileForNode('src/lib/sealing.ts');
const owner = await compileForNode('src/lib/owner.ts');
const hpke = await compileForNode('src/lib/hpke.ts');
const { fromHex, toHex } = codec;

function ownerSecret(name) {
  return sealing.ownerSecretFromAccountKey(keys.devAccount(name).secretKey);
}

test("a dev account's owner key is the one the CLI derives from it", () => {
  for (const vector of derived.owner_keys) {
    const account = keys.devAccount(vector.name);
    assert.equal(toHex(account.publicKey), vector.account, vector.name);
    const secret = ownerSecret(vector.name);
    assert.equal(toHex(secret), vector.owner_secret, vector.name);
    assert.equal(toHex(hpke.publicKey(secret)), vector.owner_public, vector.name);
  }
});

test('owner-API requests and sessions are signed over the payloads the worker checks', () => {
  const genesis = fromHex(derived.genesis_hash);
  for (const vector of derived.owner_requests) {
    const payload = owner.requestPayload(
      genesis,
      vector.worker,
      { method: vector.method, target: vector.target, host: vector.host },
      vector.timestamp_ms,
      fromHex(vector.nonce),
    );
    assert.equal(toHex(payload), vector.payload, vector.target);
  }
  const { session } = derived;
  assert.equal(
    toHex(owner.sessionPayload(genesis, fromHex(session.key), session.expires_ms)),
    session.payload,
  );
});

test("the secrets record the owner signs is the chain's", () => {
  const record = derived.secrets_record;
  const payload = sealing.secretsSigningPayload(
    fromHex(derived.genesis_hash),
    record.app,
    record.worker,
    fromHex(record.sealing_key),
    record.revision,
    record.secrets,
    record.allowed_images.map(fromHex),
  );
  assert.equal(toHex(payload), record.payload);
  // Merging keeps every name once, in the chain's order, the new value winning.
  const merged = sealing.mergeSecrets(record.secrets, [{ ...record.secrets[1], revision: 9 }], ['API_TOKEN']);
  assert.deepEqual(
    merged.map((s) => [s.name, s.revision]),
    [['DB', 9]],
  );
});

function binding() {
  const logs = vectors.logs;
  const secret = ownerSecret(logs.owner);
  return {
    genesisHash: fromHex(derived.genesis_hash),
    worker: logs.worker,
    workload: { app: logs.app },
    owner: keys.devAccount(logs.owner).publicKey,
    secret,
    ownerKey: hpke.publicKey(secret),
    workerKey: fromHex(logs.worker_key),
  };
}

test('a log stream the worker sealed opens in any chunking, and only as sealed', async () => {
  const stream = fromHex(vectors.logs.stream);
  for (const size of [1, 13, 300, stream.length]) {
    const opener = new sealing.LogOpener(binding());
    let text = '';
    for (let at = 0; at < stream.length; at += size) {
      for (const record of await opener.feed(stream.subarray(at, at + size))) {
        text += new TextDecoder().decode(record.lines);
      }
    }
    assert.ok(opener.complete);
    assert.equal(text, vectors.logs.text, `chunks of ${size}`);
  }
  // Planted by someone other than the worker, for another worker, or another owner's key.
  await assert.rejects(new sealing.LogOpener(binding()).feed(fromHex(vectors.logs.planted)), /does not open/);
  await assert.rejects(new sealing.LogOpener({ ...binding(), worker: 4 }).feed(stream), /does not open/);
  const bob = ownerSecret('Bob');
  await assert.rejects(
    new sealing.LogOpener({ ...binding(), secret: bob, ownerKey: hpke.publicKey(bob) }).feed(stream),
    /does not open/,
  );
  // The second record first: out of order. Garbage: not records.
  const first = stream.length / 3;
  await assert.rejects(new sealing.LogOpener(binding()).feed(stream.subarray(first)), /out of order/);
  await assert.rejects(new sealing.LogOpener(binding()).feed(new Uint8Array(64).fill(0xff)), /not a stream/);
  const cut = new sealing.LogOpener(binding());
  await cut.feed(stream.subarray(0, stream.length - 3));
  assert.equal(cut.complete, false);
});

test("the owner's copy of a secret opens with the owner key, and what the page seals opens back", async () => {
  const copy = vectors.owner_copy;
  const account = keys.devAccount(copy.owner);
  const secret = ownerSecret(copy.owner);
  const id = { genesisHash: fromHex(derived.genesis_hash), app: copy.app, name: copy.name, revision: copy.revision };
  const stored = { name: copy.name, revision: copy.revision, for_worker: copy.sealed, for_owner: copy.sealed };
  const opened = await sealing.openOwnerCopy(id, stored, { account: account.publicKey, secret });
  assert.equal(new TextDecoder().decode(opened), copy.value);
  assert.equal(await sealing.openOwnerCopy({ ...id, revision: 3 }, stored, { account: account.publicKey, secret }), null);

  const workerSecret = new Uint8Array(32).fill(7);
  const worker = { id: 3, sealingKey: hpke.publicKey(workerSecret) };
  const sealed = await sealing.sealSecret(
    id,
    new TextEncoder().encode('s3cret'),
    worker,
    { account: account.publicKey, key: hpke.publicKey(secret) },
  );
  const back = await sealing.openOwnerCopy(id, sealed, { account: account.publicKey, secret });
  assert.equal(new TextDecoder().decode(back), 's3cret');
  assert.equal(sealed.for_worker.ciphertext.length, 6 + 16);
  await assert.rejects(
    sealing.sealSecret(id, new Uint8Array(2049), worker, { account: account.publicKey, key: worker.sealingKey }),
    /at most 2048/,
  );
});

test('an account from a secret phrase and path is the one the CLI derives', () => {
  for (const vector of derived.phrase_accounts) {
    assert.equal(toHex(keys.accountFromUri(vector.uri).publicKey), vector.account, vector.uri);
  }
  assert.throws(() => keys.accountFromUri('legal winner thank year wave sausage worth useful legal winner thank thank'), /not a BIP39 phrase/);
  assert.throws(() => keys.accountFromUri('legal winner thank year wave sausage worth useful legal winner thank yellow//a//'), /empty derivation step/);
});
