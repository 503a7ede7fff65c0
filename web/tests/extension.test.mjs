// Signing with a browser extension: a stand-in for a Polkadot extension (tests/stand-in) signs
// `<Bytes>`-wrapped payloads as real ones do, the chain takes its transfer, its refusal to
// sign is said in words, and a browser without an extension is told so.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bundleForPage, eventually, openBrowser, rpcCall, startDev } from './support.mjs';

const ALICE = 'vxszpwueo7jPZVqnQBZqSKLJZKkhzUMWHEWNQN6QureYjo2oC';
const BOB = 'vxrRffqUez1PfLqHtkdsVZzPbDuh71p6wjgE5JjHEnfdW1yKK';

let dev;
let standIn;
const browsers = [];

before(async () => {
  standIn = await bundleForPage('tests/stand-in/extension.js');
  dev = await startDev();
});

after(async () => {
  await Promise.all(browsers.map((browser) => browser.close()));
  await dev?.stop();
});

async function open({ extension }) {
  const opened = await openBrowser();
  browsers.push(opened.browser);
  if (extension) {
    await opened.page.addInitScript({ content: standIn });
  }
  await opened.page.goto(dev.console);
  return opened;
}

test("an extension's account signs a transfer the chain takes, and its refusal is said", async () => {
  const { page, errors } = await open({ extension: true });
  await page.getByTestId('connect-extension').click();
  const picker = page.getByTestId('account-picker');
  await picker.locator(`option[value="extension:${BOB}"]`).waitFor({ state: 'attached' });
  await picker.selectOption(`extension:${BOB}`);
  assert.equal(await page.getByTestId('signer-kind').getAttribute('data-kind'), 'extension');
  await page.getByTestId('free').waitFor();

  const before = BigInt((await rpcCall(dev, 'state_account', [ALICE])).free);
  await page.getByTestId('transfer-to').fill(ALICE);
  await page.getByTestId('transfer-amount').fill('1.5');
  await page.getByTestId('transfer').getByRole('button').click();
  const status = page.getByTestId('transfer-status');
  await eventually('the transfer to be final', 60, async () =>
    (await status.getAttribute('data-statuses'))?.endsWith('finalized') ? true : undefined,
  );
  const after = BigInt((await rpcCall(dev, 'state_account', [ALICE])).free);
  assert.equal(after - before, 1_500_000_000_000n);
  // While the extension asked, the page said in words what the hex was, and then no more.
  assert.match(
    await page.evaluate(() => window.standInSaw),
    new RegExp(`asks you to sign: transfer 1\\.5 WTE to ${ALICE}, for a fee of [\\d.]+ WTE\\.`),
  );
  assert.equal(await page.getByTestId('signing-notice').count(), 0);

  // The user presses Cancel in the extension: nothing is sent, and the page says why.
  await page.evaluate(() => {
    window.standInRefuses = true;
  });
  await page.getByTestId('transfer').getByRole('button').click();
  const refusal = page.getByTestId('transfer-refusal');
  await refusal.waitFor();
  assert.equal(await refusal.textContent(), 'stand-in did not sign: Cancelled');
  assert.deepEqual(errors, []);
});

test('a browser without an extension is told so', async () => {
  const { page, errors } = await open({ extension: false });
  await page.getByTestId('connect-extension').click();
  const problems = page.getByTestId('extension-problems');
  await problems.waitFor();
  assert.match(await problems.textContent(), /no Polkadot browser extension is installed/);
  assert.deepEqual(errors, []);
});
