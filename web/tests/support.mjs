// What the console's browser tests share: a `wetee dev` of their own (fresh chain, free ports,
// a temporary directory), and Debian's Chromium driven by playwright-core, failing on any
// error the page logs or throws.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repository = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** The `wetee` binary: `$WETEE_BIN`, else the debug build `cargo test` leaves. */
export const weteeBinary = process.env.WETEE_BIN ?? join(repository, 'target', 'debug', 'wetee');

/** Chromium: `$CHROMIUM`, else Debian's (`apt-get install chromium`). */
export const chromiumBinary = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go: `web/test-results/`, or `$WETEE_SCREENSHOTS`. */
export const screenshots = process.env.WETEE_SCREENSHOTS ?? join(repository, 'web', 'test-results');

async function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Polls `check` every 200 ms until it returns a value other than undefined, or `seconds` pass. */
export async function eventually(what, seconds, check) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${seconds} s waiting for ${what}${last ? `: ${last}` : ''}`);
    }
    await new Promise((wake) => setTimeout(wake, 200));
  }
}

/**
 * Starts `wetee dev --fresh` (without a worker unless `worker` is set) on free ports in a
 * temporary directory, and waits until its console answers. `stop()` ends it.
 */
export async function startDev({ worker = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wetee-console-test-'));
  const [rpcPort, p2pPort, consolePort, ingressPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const args = [
    'dev',
    '--fresh',
    '--data-dir',
    join(dir, 'dev'),
    '--rpc-port',
    String(rpcPort),
    '--p2p-port',
    String(p2pPort),
    '--console-port',
    String(consolePort),
    '--ingress-port',
    String(ingressPort),
    '--output',
    'json',
  ];
  if (!worker) {
    args.push('--no-worker');
  }
  const child = spawn(weteeBinary, args, {
    env: { ...process.env, WETEE_HOME: join(dir, 'home') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((done) => child.once('exit', done));
  const dev = {
    console: `http://127.0.0.1:${consolePort}`,
    rpc: `http://127.0.0.1:${rpcPort}`,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        // It stops its node within seconds; one that hangs must not hang the tests.
        const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await eventually('the console of wetee dev', 120, async () => {
      if (child.exitCode !== null) {
        throw new Error(`wetee dev exited with ${child.exitCode}:\n${output}`);
      }
      const response = await fetch(`${dev.console}/config.json`);
      return response.ok ? true : undefined;
    });
  } catch (error) {
    await dev.stop();
    throw new Error(`${error.message}\nwetee dev printed:\n${output}`);
  }
  return dev;
}

/** Calls the node's JSON-RPC over HTTP. */
export async function rpcCall(dev, method, params = []) {
  const response = await fetch(dev.rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const answer = await response.json();
  if (answer.error) {
    throw new Error(`${method}: ${answer.error.message}`);
  }
  return answer.result;
}

/**
 * Chromium with a page that records every error it logs or throws: `errors` must stay empty.
 * `expected` lets through the console errors a test provokes on purpose (Chromium's own).
 */
export async function openBrowser({ expected = () => false } = {}) {
  const browser = await chromium.launch({
    executablePath: chromiumBinary,
    // Containers and CI machines often cannot give Chromium its sandbox.
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected(message.text())) {
      errors.push(`console: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return { browser, page, errors };
}

/** The file `path` of `web/` bundled by Vite alone, as one `format` (`es` or `iife`) script. */
async function bundle(path, format) {
  const { build } = await import('vite');
  const output = await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      write: false,
      // The injected script stays readable in the page's sources.
      ...(format === 'iife' ? { minify: false } : {}),
      lib: { entry: join(repository, 'web', path), formats: [format], name: 'bundled' },
    },
  });
  return output[0].output[0].code;
}

/** A module of `src/`, compiled for Node by Vite the way the page gets it. */
export async function compileForNode(path) {
  const code = await bundle(path, 'es');
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}

/** A script of `web/tests` bundled for a page (an IIFE), to inject with `addInitScript`. */
export function bundleForPage(path) {
  return bundle(path, 'iife');
}

/** Saves what `page` shows as `<name>.png` under `screenshots`. */
export async function screenshot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`) });
}
