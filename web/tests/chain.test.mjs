// The console against a fresh `wetee dev`: the page names the chain and its genesis, the
// finalized height rises as blocks are finalized, and the page logs no error.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, openBrowser, rpcCall, screenshot, startDev } from './support.mjs';

const ALICE = 'vxszpwueo7jPZVqnQBZqSKLJZKkhzUMWHEWNQN6QureYjo2oC';

let dev;
let browser;

before(async () => {
  dev = await startDev();
});

after(async () => {
  await browser?.browser.close();
  await dev?.stop();
});

test('the page names the dev chain and its finalized height rises', async () => {
  browser = await openBrowser();
  const { page, errors } = browser;
  await page.goto(dev.console);
  const health = await rpcCall(dev, 'system_health');

  const chain = page.getByTestId('chain');
  await eventually('the chain name', 30, async () =>
    (await chain.textContent()).includes(health.chain) ? true : undefined,
  );
  assert.match(await chain.textContent(), /development chain/);
  assert.equal(
    await chain.locator('.genesis').getAttribute('title'),
    health.genesis_hash,
    'the genesis the node reports',
  );

  const height = page.getByTestId('finalized-height');
  const first = await eventually('a finalized height', 30, async () => {
    const shown = Number(await height.textContent());
    return Number.isInteger(shown) && shown > 0 ? shown : undefined;
  });
  const later = await eventually('the height to rise', 30, async () => {
    const shown = Number(await height.textContent());
    return shown > first ? shown : undefined;
  });
  assert.ok(later > first);
  assert.equal(await page.getByTestId('connection').getAttribute('data-state'), 'open');
  await eventually('a few blocks listed', 30, async () =>
    (await page.getByTestId('blocks').locator('tbody tr').count()) >= 3 ? true : undefined,
  );

  await screenshot(page, 'chain');
  assert.deepEqual(errors, []);
});

test('a node that cannot be reached is named, and the page keeps trying', async () => {
  const unreachable = await openBrowser({
    // Chromium's own report of each failed WebSocket attempt is what this test provokes.
    expected: (text) => text.startsWith('WebSocket connection to'),
  });
  const { page, errors } = unreachable;
  // The console's server, pointing the page at a port where no node listens.
  await page.route('**/config.json', (route) =>
    route.fulfill({ json: { rpc: 'ws://127.0.0.1:9', dev: true } }),
  );
  await page.goto(dev.console);
  const connection = page.getByTestId('connection');
  // Read at once: between attempts the state is "down", during one "connecting".
  await eventually('the page to say the node is unreachable', 30, async () =>
    /node unreachable: .*ws:\/\/127\.0\.0\.1:9.*retrying in \d+ s/.test(
      await connection.textContent(),
    )
      ? true
      : undefined,
  );
  // It tries again, waiting longer each time, and the page never goes blank.
  await eventually('a later attempt', 30, async () =>
    /retrying in [2-5] s/.test(await connection.textContent()) ? true : undefined,
  );
  assert.equal(await page.locator('header').count(), 1);
  await unreachable.browser.close();
  assert.deepEqual(errors, []);
});

test('choosing //Alice shows the balance the chain holds for her', async () => {
  const opened = await openBrowser();
  const { page, errors } = opened;
  await page.goto(dev.console);
  await page.getByTestId('account-picker').selectOption('dev:Alice');
  const free = page.getByTestId('free');
  await free.waitFor();
  const alice = 'vxszpwueo7jPZVqnQBZqSKLJZKkhzUMWHEWNQN6QureYjo2oC';
  // The balance moves only with transactions; none are sent here.
  const onChain = await rpcCall(dev, 'state_account', [alice]);
  assert.equal(await free.getAttribute('data-amount'), onChain.free);
  assert.equal(await page.getByTestId('reserved').getAttribute('data-amount'), onChain.reserved);
  assert.match(await free.textContent(), /^free [\d,]+(\.\d+)? WTE$/);
  // Chosen once, kept on the next visit.
  await page.reload();
  await page.getByTestId('free').waitFor();
  await screenshot(page, 'account');
  await opened.browser.close();
  assert.deepEqual(errors, []);
});

test('a transfer from //Alice goes ready, included, finalized, and Bob receives it', async () => {
  const opened = await openBrowser();
  const { page, errors } = opened;
  await page.goto(dev.console);
  await page.getByTestId('account-picker').selectOption('dev:Alice');
  const bob = 'vxrRffqUez1PfLqHtkdsVZzPbDuh71p6wjgE5JjHEnfdW1yKK';
  const before = BigInt((await rpcCall(dev, 'state_account', [bob])).free);

  // Mistakes are named next to their field, and nothing is sent.
  await page.getByTestId('transfer-to').fill('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  await page.getByTestId('transfer-amount').fill('2,5');
  await page.getByTestId('transfer').getByRole('button').click();
  await page.getByText('is not a WeTEE address').waitFor();
  await page.getByText('an amount in WTE').waitFor();

  await page.getByTestId('transfer-to').fill(bob);
  await page.getByTestId('transfer-amount').fill('2.5');
  await page.getByTestId('transfer').getByRole('button').click();
  const status = page.getByTestId('transfer-status');
  await eventually('the transfer to be final', 60, async () =>
    (await status.getAttribute('data-statuses'))?.endsWith('finalized') ? true : undefined,
  );
  assert.match(await status.getAttribute('data-statuses'), /^ready,(included,)+finalized$/);
  const after = BigInt((await rpcCall(dev, 'state_account', [bob])).free);
  assert.equal(after - before, 2_500_000_000_000n);
  // The activity feed names the transfer, from the account's event history.
  await page
    .locator('[data-testid="activity-event"][data-event="transferred"]')
    .first()
    .waitFor({ timeout: 30_000 });
  await screenshot(page, 'transfer');

  // More than Alice has: the chain takes the fee and says why the call failed.
  await page.getByTestId('transfer-amount').fill('999999999');
  await page.getByTestId('transfer').getByRole('button').click();
  await page
    .getByTestId('transfer-refusal')
    .getByText(/^the chain refused the transfer: .*(balance|afford).* \(the fee was paid\)$/)
    .waitFor({ timeout: 60_000 });
  await opened.browser.close();
  assert.deepEqual(errors, []);
});

/**
 * A page whose traffic with the node is changed on the way by `alter` (each answer of the
 * node, parsed), to make the page sign what a confused or lying network would have it sign.
 */
async function pageWithAlteredNode(alter, configChange = (c) => c) {
  const opened = await openBrowser();
  await opened.page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: configChange(await response.json()) });
  });
  await opened.page.routeWebSocket(
    (url) => url.protocol === 'ws:',
    (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => server.send(message));
      server.onMessage((message) => {
        const answer = JSON.parse(message);
        ws.send(JSON.stringify(alter(answer) ?? answer));
      });
    },
  );
  await opened.page.goto(dev.console);
  await opened.page.getByTestId('account-picker').selectOption('dev:Alice');
  await opened.page.getByTestId('free').waitFor();
  return opened;
}

async function transferRefusal(page) {
  await page.getByTestId('transfer-to').fill('vxrRffqUez1PfLqHtkdsVZzPbDuh71p6wjgE5JjHEnfdW1yKK');
  await page.getByTestId('transfer-amount').fill('1');
  await page.getByTestId('transfer').getByRole('button').click();
  const refusal = page.getByTestId('transfer-refusal');
  await refusal.waitFor({ timeout: 30_000 });
  return refusal.textContent();
}

test("a fee below the chain's minimum and a signature for another chain get the node's own reasons", async () => {
  // The fee quote the page reads says nothing is charged: the node names the minimum.
  const cheap = await pageWithAlteredNode((answer) => {
    if (answer.result?.minimum_fee !== undefined) {
      answer.result.minimum_fee = '0';
    }
  });
  assert.match(
    await transferRefusal(cheap.page),
    /^the chain refused the transfer: transaction rejected: the fee 0 WTE is below the minimum [\d.]+ WTE for this transaction$/,
  );
  await screenshot(cheap.page, 'refused-fee');
  await cheap.browser.close();
  assert.deepEqual(cheap.errors, []);

  // The page is told of another chain's genesis (and trusts it): what it signs is refused.
  const other = `0x${'ab'.repeat(32)}`;
  const confused = await pageWithAlteredNode(
    (answer) => {
      if (typeof answer.result?.genesis_hash === 'string') {
        answer.result.genesis_hash = other;
      }
    },
    (config) => ({ ...config, genesis: other.slice(2) }),
  );
  assert.match(
    await transferRefusal(confused.page),
    /^the chain refused the transfer: transaction rejected: bad signature: not signed by the signer's key for this chain \(genesis hash\)$/,
  );
  await confused.browser.close();
  assert.deepEqual(confused.errors, []);

  // A node of another chain than the console trusts: said, and nothing is signed for it.
  const lied = await openBrowser();
  await lied.page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: { ...(await response.json()), genesis: 'cd'.repeat(32) } });
  });
  await lied.page.goto(dev.console);
  await lied.page.getByText(/serves another chain .* than the one this console trusts/).waitFor();
  await lied.browser.close();
  assert.deepEqual(lied.errors, []);
});

test('a nonce another tab of the account took is refused by the node, and the page signs again at the next one', async () => {
  const used = BigInt((await rpcCall(dev, 'state_account', [ALICE])).nonce);
  assert.ok(used > 0n, 'Alice has sent before');
  const opened = await openBrowser();
  const { page, errors } = opened;
  // The page is told a nonce Alice has used already, as a tab would be whose other tab has just
  // sent: only the answers to `system_accountNextIndex` are changed (their ids are tracked).
  const asked = new Set();
  await page.routeWebSocket(
    (url) => url.protocol === 'ws:',
    (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const request = JSON.parse(message);
        if (request.method === 'system_accountNextIndex') {
          asked.add(request.id);
        }
        server.send(message);
      });
      server.onMessage((message) => {
        const answer = JSON.parse(message);
        if (asked.has(answer.id) && typeof answer.result === 'number') {
          answer.result = Math.max(0, answer.result - 1);
        }
        ws.send(JSON.stringify(answer));
      });
    },
  );
  await page.goto(dev.console);
  await page.getByTestId('account-picker').selectOption('dev:Alice');
  await page.getByTestId('free').waitFor();
  await page.getByTestId('transfer-to').fill('vxrRffqUez1PfLqHtkdsVZzPbDuh71p6wjgE5JjHEnfdW1yKK');
  await page.getByTestId('transfer-amount').fill('0.5');
  await page.getByTestId('transfer').getByRole('button').click();
  const status = page.getByTestId('transfer-status');
  await eventually('the transfer to be final at the next free nonce', 60, async () =>
    (await status.getAttribute('data-statuses'))?.endsWith('finalized') ? true : undefined,
  );
  assert.equal(await page.getByTestId('transfer-refusal').count(), 0);
  assert.equal(BigInt((await rpcCall(dev, 'state_account', [ALICE])).nonce), used + 1n);
  await opened.browser.close();
  assert.deepEqual(errors, []);
});
