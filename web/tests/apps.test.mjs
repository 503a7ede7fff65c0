// Apps from the browser against a `wetee dev` with its worker on Podman: deploy
// examples/hello by uploading its wetee.toml (the dry run names the worker, the app goes
// pending → running and its URL answers; the workers page shows the worker), a manifest no
// worker fits (the dry run and the app page give the runtime's reason word for word), and on
// the app's page the billing tab agreeing with the chain's payments, its events and versions,
// recharge and stop.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, openBrowser, repository, rpcCall, screenshot, startDev } from './support.mjs';

const ALICE = 'vxszpwueo7jPZVqnQBZqSKLJZKkhzUMWHEWNQN6QureYjo2oC';

let dev;
let manifest;
/** The app with a secret the secrets test deploys, and the value it sets. */
let secretManifest;
let secretApp;
let secretToken;
/** Every browser opened, closed at the end even when a test fails. */
const browsers = [];

before(async () => {
  // The image is built locally, as the README's path does: no registry.
  execFileSync('sh', [join(repository, 'examples', 'hello', 'build.sh')], { stdio: 'pipe' });
  manifest = join(repository, 'examples', 'hello', 'wetee.toml');
  dev = await startDev({ worker: true });
  // Deploying before the worker is started is the pending case; here it must be placed.
  await eventually('the dev worker to start', 180, async () => {
    const workers = (await rpcCall(dev, 'state_workers')).items;
    return workers.some((w) => w.status === 'started') ? true : undefined;
  });
});

after(async () => {
  await Promise.all(browsers.map((browser) => browser.close()));
  await dev?.stop();
});

/** A page signed in as //Alice; `expected`: the console errors a test provokes on purpose. */
async function signedInPage(expected = () => false) {
  const opened = await openBrowser({ expected });
  browsers.push(opened.browser);
  await opened.page.goto(dev.console);
  await opened.page.getByTestId('account-picker').selectOption('dev:Alice');
  await opened.page.getByTestId('free').waitFor();
  return opened;
}

test('uploading examples/hello and deploying: the dry run names the worker, the app runs and its URL answers', async () => {
  const { browser, page, errors } = await signedInPage();
  await page.getByTestId('nav-deploy').click();
  await page.getByTestId('manifest-file').setInputFiles(manifest);
  const placement = page.getByTestId('dry-run-placement');
  await placement.waitFor({ timeout: 30_000 });
  assert.match(await placement.textContent(), /Would land on worker 1 at [\d.,]+ WTE per epoch/);
  // The fee shows before signing, with what it pays for: a placement search is work.
  const summary = page.getByTestId('deploy-summary');
  await summary.filter({ hasText: 'for a fee of' }).waitFor({ timeout: 30_000 });
  assert.match(
    await summary.textContent(),
    /for a fee of [\d.]+ WTE \([\d.]+ WTE base, [\d.]+ WTE for [\d.]+ (µs|ms) of work, [\d.]+ WTE for \d+ bytes\)\.$/,
  );
  await screenshot(page, 'deploy');
  await page.getByTestId('deploy-submit').click();

  // The page moves to the new app once its creation is final.
  await page.waitForURL(/\/apps\/\d+$/, { timeout: 60_000 });
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  const overview = page.getByTestId('app-overview');
  await eventually('the app to run', 120, async () =>
    (await overview.getAttribute('data-state')) === 'running' ? true : undefined,
  );
  const url = await page.getByTestId('app-url').getAttribute('href');
  const answer = await eventually(`${url} to answer`, 120, async () => {
    const response = await fetch(url).catch(() => null);
    return response?.status === 200 ? response : undefined;
  });
  assert.match(await answer.text(), /hello from WeTEE/);
  const app = await rpcCall(dev, 'state_app', [id]);
  assert.equal(app.owner, ALICE);
  assert.equal(app.spec.name, 'hello');
  await screenshot(page, 'app');

  // The list names it with its worker and runway.
  await page.getByTestId('nav-apps').click();
  const row = page.locator(`[data-testid="app-row"][data-app="${id}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-state'), 'running');
  assert.match(await row.getByTestId('runway').textContent(), /\d+ epochs/);
  await screenshot(page, 'apps');

  // The workers page shows the dev worker, started, with a simulated TEE said to be one.
  await page.getByTestId('nav-workers').click();
  const worker = page.locator('[data-testid="worker-row"][data-worker="1"]');
  await worker.waitFor();
  assert.equal(await worker.getAttribute('data-status'), 'started');
  assert.match(await worker.textContent(), /development only/);
  await screenshot(page, 'workers');
  await browser.close();
  assert.deepEqual(errors, []);
});

test("the app's logs open in the page and follow new lines; another account gets the owner-only refusal", async (t) => {
  // Bob's request is refused by the worker, the first follow is cut on purpose, and a worker
  // may ask for a request to be signed again (503, Retry-After): Chromium logs each itself.
  const { browser, page, errors } = await signedInPage((text) =>
    /status of (403|503)|net::ERR_FAILED/.test(text),
  );
  const apps = (await rpcCall(dev, 'state_apps', [ALICE])).items;
  const app = apps.find((a) => a.status.state === 'running' && a.spec.name === 'hello');
  assert.ok(app, 'the first test left a running app');
  // The first request to the worker is lost on the way: the page says so and follows again.
  let cut = false;
  await page.route('**/api/owner/**', (route) => {
    if (cut) {
      return route.continue();
    }
    cut = true;
    return route.abort('failed');
  });
  await page.goto(`${dev.console}/apps/${app.id}`);
  await page.getByTestId('tab-logs').click();
  const text = page.getByTestId('logs-text');
  // What the container printed, sealed by the worker to Alice, opened here.
  await eventually("the container's output in the logs tab", 120, async () =>
    /serving v1 on :8080/.test(await text.textContent()) ? true : undefined,
  );
  const state = page.getByTestId('logs-state');
  t.diagnostic(`logs state: ${(await state.textContent()).trim()}`);
  assert.match(
    await state.textContent(),
    /^\s*following · reconnected \d+ times? \(last: .+\)/,
  );
  // Each request to the app is a new line httpd logs (`response:200`): the followed log,
  // already open, shows the new ones as the worker seals them.
  const served = async () => ((await text.textContent()).match(/response:\d+/g) ?? []).length;
  const before = await served();
  const overview = await (await fetch(`${dev.console}/api/apps/${app.id}`, { headers: { 'x-wetee-console': '1' } })).json();
  await fetch(overview.url).catch(() => null);
  await eventually('new request lines in the followed log', 120, async () =>
    (await served()) > before ? true : undefined,
  );
  await screenshot(page, 'logs');

  // Bob is not the owner: the worker refuses him, and the page says so in its words.
  await page.getByTestId('account-picker').selectOption('dev:Bob');
  const problem = page.getByTestId('logs-problem');
  await problem.waitFor({ timeout: 60_000 });
  assert.match(await problem.textContent(), /the worker refused \(403\)/);
  assert.equal(await text.textContent(), '');
  await browser.close();
  assert.deepEqual(errors, []);
});

test("a secret set in the page is sealed there to the worker's attested key and reaches the container's /run/secrets", async () => {
  // The server's refusal to seal to a simulated TEE unasked is a 409 Chromium logs itself.
  const { browser, page, errors } = await signedInPage((text) => /status of 409/.test(text));
  await page.goto(`${dev.console}/deploy`);
  await page.getByTestId('manifest-file').setInputFiles(manifest);
  secretManifest = readFileSync(manifest, 'utf8')
    .replace('name = "hello"', 'name = "secret-hello"')
    .replace(
      'args = ["sh", "/app/serve.sh"]',
      'args = ["sh", "-c", "mkdir -p /www && cat /run/secrets/API_TOKEN > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]\nsecrets = ["API_TOKEN"]',
    );
  await page.getByTestId('manifest-text').fill(secretManifest);
  await page.getByTestId('dry-run-placement').waitFor({ timeout: 30_000 });
  await page.getByTestId('deploy-submit').click();
  await page.waitForURL(/\/apps\/\d+$/, { timeout: 60_000 });
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  const overview = page.getByTestId('app-overview');
  await eventually('the app to wait for its secrets', 120, async () =>
    (await overview.getAttribute('data-state')) === 'awaiting_secrets' ? true : undefined,
  );

  // The worker's attestation, proven through the light client: a simulated TEE, said loudly.
  await page.getByTestId('tab-trust').click();
  await page.getByTestId('simulated-warning').waitFor();
  const verdict = page.getByTestId('trust-verdict');
  await eventually('the proven verdict', 60, async () =>
    (await verdict.getAttribute('data-valid')) === 'true' ? true : undefined,
  );
  assert.match(await verdict.textContent(), /proven at block \d+/);

  const token = `token-${Date.now()}`;
  secretApp = id;
  secretToken = token;
  await page.getByTestId('tab-secrets').click();
  await page.getByTestId('secret-name').fill('API_TOKEN');
  await page.getByTestId('secret-value').fill(token);
  // Without the owner's consent to a simulated TEE, the server's judgement refuses it.
  await page.getByTestId('set-secret').click();
  const refusal = page.getByTestId('secret-submission-refusal');
  await refusal.waitFor({ timeout: 30_000 });
  assert.match(await refusal.textContent(), /simulated TEE, which protects nothing/);
  await page.getByTestId('allow-simulated').check();
  await page.getByTestId('set-secret').click();
  await page.getByTestId('secret-sealed').waitFor({ timeout: 60_000 });
  await screenshot(page, 'secrets');
  const stored = await rpcCall(dev, 'state_appSecrets', [id]);
  assert.deepEqual(stored.secrets.map((s) => s.name), ['API_TOKEN']);
  // The value is on chain only sealed: neither its text nor its bytes are there.
  const tokenBytes = [...new TextEncoder().encode(token)];
  const holds = (bytes) => bytes.some((_, at) => tokenBytes.every((b, i) => bytes[at + i] === b));
  assert.ok(!JSON.stringify(stored).includes(token));
  for (const secret of stored.secrets) {
    assert.ok(!holds(secret.for_worker.ciphertext) && !holds(secret.for_owner.ciphertext));
  }

  await page.getByTestId('tab-overview').click();
  await eventually('the app to run', 120, async () =>
    (await overview.getAttribute('data-state')) === 'running' ? true : undefined,
  );
  const url = await page.getByTestId('app-url').getAttribute('href');
  const body = await eventually(`${url} to serve the secret`, 120, async () => {
    const response = await fetch(url).catch(() => null);
    return response?.status === 200 ? response.text() : undefined;
  });
  assert.equal(body.trim(), token);
  await browser.close();
  assert.deepEqual(errors, []);
});

test("an update to a new image from the app page carries the owner's consent for its secrets, and the new version gets them", async () => {
  assert.ok(secretApp, 'the secrets test left an app with a secret');
  // Another image: the hello image with one more label, so another digest.
  const context = mkdtempSync(join(tmpdir(), 'wetee-update-'));
  writeFileSync(join(context, 'Containerfile'), 'FROM localhost/wetee-hello:latest\nLABEL org.wetee.test=update\n');
  const id = execFileSync('podman', ['build', '-q', '-t', 'localhost/wetee-hello:update', context])
    .toString()
    .trim();
  const image = `localhost/wetee-hello@sha256:${id.replace(/^sha256:/, '')}`;
  const updated = secretManifest.replace(/image = "[^"]+"/, `image = "${image}"`);
  assert.notEqual(updated, secretManifest);

  const { browser, page, errors } = await signedInPage();
  await page.goto(`${dev.console}/apps/${secretApp}`);
  await page.getByTestId('update-text').fill(updated);
  await page.getByTestId('update-submit').click();
  const status = page.getByTestId('update-submission-status');
  await eventually('the update to be final', 60, async () =>
    (await status.getAttribute('data-statuses'))?.endsWith('finalized') ? true : undefined,
  );
  assert.match(await page.getByTestId('update-grant').textContent(), /given to the new image 0x[0-9a-f]{64} only/);
  const record = await rpcCall(dev, 'state_app', [secretApp]);
  assert.equal(record.version, 2);
  const secrets = await rpcCall(dev, 'state_appSecrets', [secretApp]);
  assert.deepEqual(secrets.allowed_images, [`0x${id.replace(/^sha256:/, '')}`]);
  // The new version runs the new image, and its /run/secrets holds the value set before.
  const url = await page.getByTestId('app-url').getAttribute('href');
  await eventually(`${url} to serve the secret from the new version`, 180, async () => {
    const app = await rpcCall(dev, 'state_app', [secretApp]);
    if (app.status.state !== 'running') {
      return undefined;
    }
    const response = await fetch(url).catch(() => null);
    return response?.status === 200 && (await response.text()).trim() === secretToken ? true : undefined;
  });
  await screenshot(page, 'update');
  await browser.close();
  assert.deepEqual(errors, []);
});

test('a manifest no worker fits: the dry run and the app page give the runtime reason word for word', async () => {
  const { browser, page, errors } = await signedInPage();
  await page.goto(`${dev.console}/deploy`);
  await page.getByTestId('manifest-file').setInputFiles(manifest);
  const text = page.getByTestId('manifest-text');
  const original = readFileSync(manifest, 'utf8');
  await text.fill(original.replace('tee = "simulated"', 'tee = "simulated", region = "mars"'));
  const reason = page.getByTestId('dry-run-reason');
  await reason.waitFor({ timeout: 30_000 });
  const said = await reason.textContent();
  assert.match(said, /region mars/);

  await page.getByTestId('deploy-submit').click();
  await page.waitForURL(/\/apps\/\d+$/, { timeout: 60_000 });
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  const pending = page.getByTestId('app-pending-reason');
  await pending.waitFor({ timeout: 30_000 });
  assert.equal(await pending.textContent(), said);
  assert.equal(await rpcCall(dev, 'state_pendingReason', [{ app: { app: id } }]), said);

  // A field the chain refuses is named, with the CLI's words, next to the form's input.
  await page.goto(`${dev.console}/deploy`);
  await page.getByTestId('form-cpu').fill('0');
  const problem = page.locator('[data-field="resources.cpu_millicores"]');
  await problem.waitFor({ timeout: 30_000 });
  assert.equal(await problem.textContent(), 'must be greater than zero');
  await screenshot(page, 'deploy-form');
  await browser.close();
  assert.deepEqual(errors, []);
});

test('recharge raises the deposit, and stopping returns what is left to the free balance', async () => {
  const { browser, page, errors } = await signedInPage();
  const apps = (await rpcCall(dev, 'state_apps', [ALICE])).items;
  const app = apps.find((a) => a.status.state === 'running' && a.spec.name === 'hello');
  assert.ok(app, 'the first test left a running app');
  await page.goto(`${dev.console}/apps/${app.id}`);
  // Metrics: once two epochs are proven, the charts have their points and the latest full
  // epoch's uptime reads 100 %, as the worker's report on chain says.
  await page.getByTestId('tab-metrics').click();
  const metrics = page.getByTestId('metrics');
  await eventually('two proven epochs on the chart, the latest fully up', 150, async () => {
    const points = Number(await metrics.getAttribute('data-points'));
    const uptime = page.getByTestId('uptime');
    if (points < 2 || (await uptime.count()) === 0) {
      return undefined;
    }
    return (await uptime.getAttribute('data-bps')) === '10000' ? true : undefined;
  });
  assert.match(await page.getByTestId('uptime').textContent(), /100 %/);
  const proven = await rpcCall(dev, 'apps_epochs', [app.id]);
  assert.ok(proven.epochs.length >= 2);
  assert.equal(await page.locator('[data-testid="uptime-chart"] canvas').count(), 1);
  await screenshot(page, 'metrics');

  // Billing: once the worker proves an epoch, the tab's total is what the chain's AppPaid
  // events say was paid.
  await page.getByTestId('tab-billing').click();
  const total = page.getByTestId('billing-total');
  await eventually('a paid epoch, and the billing tab agreeing with the chain', 120, async () => {
    const history = await rpcCall(dev, 'events_history', [{ app: app.id }, { limit: 500 }]);
    const paid = history.records
      .filter((r) => r.event.event === 'app_paid')
      .reduce((sum, r) => sum + BigInt(r.event.amount), 0n);
    if (paid === 0n || (await total.count()) === 0) {
      return undefined;
    }
    return BigInt(await total.getAttribute('data-amount')) === paid ? true : undefined;
  });
  await screenshot(page, 'billing');
  // Trust: the worker's TEE as the chain verified it, and a loud warning that it is simulated.
  await page.getByTestId('tab-trust').click();
  await page.getByTestId('simulated-warning').waitFor();
  assert.equal(await page.getByTestId('tee-kind').textContent(), 'simulated');
  await screenshot(page, 'trust');
  await page.getByTestId('tab-events').click();
  await page.locator('[data-testid="event"][data-event="app_created"]').waitFor();
  await page.getByTestId('tab-versions').click();
  await page.getByTestId('version').first().waitFor();
  assert.equal(await page.getByTestId('version').count(), 1);
  await page.getByTestId('tab-overview').click();

  const deposit = page.getByTestId('app-deposit');
  await deposit.waitFor();
  const before = BigInt(await deposit.getAttribute('data-amount'));

  await page.getByTestId('recharge-amount').fill('5');
  await page.getByTestId('recharge').click();
  await eventually('the recharge to be final', 60, async () =>
    (await page.getByTestId('app-action-status').getAttribute('data-statuses'))?.endsWith('finalized')
      ? true
      : undefined,
  );
  // Epochs may pay the worker meanwhile: the deposit rose by 5 WTE less what was paid.
  const recharged = await rpcCall(dev, 'state_app', [app.id]);
  assert.ok(BigInt(recharged.deposit) > before, 'the deposit rose');
  await eventually('the page to show the new deposit', 10, async () =>
    BigInt(await deposit.getAttribute('data-amount')) > before ? true : undefined,
  );

  const freeBefore = BigInt((await rpcCall(dev, 'state_account', [ALICE])).free);
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByTestId('stop').click();
  const state = page.getByTestId('app-state');
  await eventually('the app to stop', 60, async () =>
    (await state.textContent()) === 'stopped: its owner stopped it' ? true : undefined,
  );
  const freeAfter = BigInt((await rpcCall(dev, 'state_account', [ALICE])).free);
  assert.ok(freeAfter > freeBefore, 'the refund is back in the free balance');
  await eventually('the top bar to show the refund', 10, async () =>
    BigInt(await page.getByTestId('free').getAttribute('data-amount')) === freeAfter ? true : undefined,
  );
  await browser.close();
  assert.deepEqual(errors, []);
});
