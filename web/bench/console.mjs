// The console's speed on this machine (`npm --prefix web run bench`, against `$WETEE_BIN`,
// best a release build): the time from navigation to a usable page (the finalized height
// shown) over fresh loads, the time from a finalized head reaching a subscriber on this
// machine to its height on the page over 50 blocks, and the bundle's size. Medians, in ms.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { openBrowser, startDev } from '../tests/support.mjs';

const LOADS = 20;
const BLOCKS = 50;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function size(dir) {
  return readdirSync(dir).reduce((total, name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return total + (stat.isDirectory() ? size(path) : stat.size);
  }, 0);
}

const dev = await startDev();
const { browser, page, errors } = await openBrowser();
try {
  // A usable page: the finalized height on screen, from the start of navigation.
  const loads = [];
  for (let i = 0; i < LOADS; i++) {
    await page.goto(`${dev.console}/?load=${i}`);
    await page.waitForFunction(() =>
      /^\d+$/.test(document.querySelector('[data-testid=finalized-height]')?.textContent ?? ''),
    );
    loads.push(await page.evaluate(() => performance.now()));
  }

  // Finality to screen: a second page subscribes to finalized heads on its own socket and
  // notes when each arrives; the console notes when it shows each height. One clock.
  const observer = await browser.newPage();
  await observer.goto(dev.console);
  const rpc = (await (await fetch(`${dev.console}/config.json`)).json()).rpc;
  await page.evaluate(() => {
    window.shown = {};
    const height = document.querySelector('[data-testid=finalized-height]');
    new MutationObserver(() => {
      window.shown[height.textContent] ??= Date.now();
    }).observe(height, { childList: true, characterData: true, subtree: true });
  });
  await observer.evaluate((url) => {
    window.arrived = {};
    const socket = new WebSocket(url);
    socket.onopen = () =>
      socket.send(
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribeFinalizedHeads', params: [] }),
      );
    socket.onmessage = (event) => {
      const height = JSON.parse(event.data).params?.result?.height;
      if (height !== undefined) {
        window.arrived[height] ??= Date.now();
      }
    };
  }, rpc);
  await page.waitForTimeout(500);
  const start = Number(await page.getByTestId('finalized-height').textContent());
  await page.waitForFunction(
    (until) => Number(document.querySelector('[data-testid=finalized-height]').textContent) >= until,
    start + BLOCKS + 2,
    { timeout: 120_000 },
  );
  const shown = await page.evaluate(() => window.shown);
  const arrived = await observer.evaluate(() => window.arrived);
  const delays = Object.keys(arrived)
    .filter((height) => shown[height] !== undefined)
    .slice(0, BLOCKS)
    .map((height) => shown[height] - arrived[height]);
  const dist = fileURLToPath(new URL('../dist', import.meta.url));
  const report = {
    machine: `${cpus().length} cores, ${cpus()[0]?.model.trim()}`,
    usable_page_ms_p50: Math.round(median(loads)),
    usable_page_loads: loads.length,
    finality_to_screen_ms_p50: median(delays),
    finality_to_screen_ms_max: Math.max(...delays),
    finality_to_screen_blocks: delays.length,
    bundle_bytes: size(dist),
    page_errors: errors,
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await browser.close();
  await dev.stop();
}
