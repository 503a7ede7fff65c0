// The browser's keys against the Rust SDK's: every development account derives to the public
// key and SS58 address `wetee key inspect` prints (run on the binary cargo built).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { compileForNode, weteeBinary } from './support.mjs';

test('development accounts derive as the Rust SDK derives them', async () => {
  const keys = await compileForNode('src/lib/keys.ts');
  const { toHex } = await compileForNode('src/lib/codec.ts');
  for (const name of keys.DEV_ACCOUNTS) {
    const inspected = execFileSync(weteeBinary, ['key', 'inspect', `//${name}`], {
      encoding: 'utf8',
    });
    const account = keys.devAccount(name);
    assert.match(inspected, new RegExp(`Account:\\s+${account.address}\\b`), name);
    assert.match(inspected, new RegExp(`Public key:\\s+${toHex(account.publicKey)}\\b`), name);
  }
  assert.ok(keys.devAccount('Alice').address.startsWith('vx'));
});
