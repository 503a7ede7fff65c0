// The browser's keys against the Rust SDK's: every development account derives to the public
// key and SS58 address `wetee key inspect` prints (run on the binary cargo built).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { build } from 'vite';
import { weteeBinary } from './support.mjs';

/** `src/lib/keys.ts`, compiled for Node the way the page gets it. */
async function keysModule() {
  const output = await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      write: false,
      lib: { entry: new URL('../src/lib/keys.ts', import.meta.url).pathname, formats: ['es'] },
    },
  });
  const code = output[0].output[0].code;
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}

test('development accounts derive as the Rust SDK derives them', async () => {
  const keys = await keysModule();
  for (const name of keys.DEV_ACCOUNTS) {
    const inspected = execFileSync(weteeBinary, ['key', 'inspect', `//${name}`], {
      encoding: 'utf8',
    });
    const account = keys.devAccount(name);
    assert.match(inspected, new RegExp(`Account:\\s+${account.address}\\b`), name);
    assert.match(inspected, new RegExp(`Public key:\\s+${keys.toHex(account.publicKey)}\\b`), name);
  }
  assert.ok(keys.devAccount('Alice').address.startsWith('vx'));
});
