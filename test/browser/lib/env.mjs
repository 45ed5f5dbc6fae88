// What the browser tests share: the server under test (from the Go test that
// started it), headless Chromium launched the way this machine allows, pages
// whose traffic to anything but the server is refused and recorded, and an
// ivs-realtime client of the AWS SDK for JavaScript pointed at the server.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { IVSRealTimeClient } from '@aws-sdk/client-ivs-realtime';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: these tests are started by test/e2e/browser_test.go (go test ./test/e2e -run Browser)`);
  return v;
}

/** The Rostrum server under test, e.g. http://127.0.0.1:41234. */
export const BASE = need('ROSTRUM_URL').replace(/\/+$/, '');
/** Where screenshots go (test/artifacts/ by default, gitignored). */
export const ARTIFACTS = process.env.ROSTRUM_ARTIFACTS || path.resolve(import.meta.dirname, '../../artifacts');
const CHROMIUM = process.env.ROSTRUM_CHROMIUM || '/usr/bin/chromium';

/** An ivs-realtime client of the AWS SDK v3 with the server's credentials. */
export function ivs() {
  return new IVSRealTimeClient({
    endpoint: BASE,
    region: process.env.ROSTRUM_REGION || 'us-east-1',
    credentials: { accessKeyId: need('ROSTRUM_ACCESS_KEY_ID'), secretAccessKey: need('ROSTRUM_SECRET_ACCESS_KEY') },
    maxAttempts: 1,
  });
}

/**
 * Headless Chromium with fake camera and microphone. The network flags keep
 * Chromium from calling Google's hosts (this machine's network is closed);
 * loopback candidates are allowed so WebRTC reaches the server on 127.0.0.1.
 */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      // More flags when diagnosing, e.g. Chromium's WebRTC logging:
      // ROSTRUM_CHROMIUM_ARGS='--enable-logging --log-file=/tmp/chromium.log --vmodule=*probe*=1'
      ...(process.env.ROSTRUM_CHROMIUM_ARGS || '').split(/\s+/).filter(Boolean),
    ],
  });
}

/**
 * A page in its own browser context (its own camera, cookies and storage).
 * Requests to hosts other than the server and allowedOrigins are aborted,
 * as this machine's network would refuse them, and listed in page.external.
 */
export async function newPage(browser, name, { allowedOrigins = [], viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  const allowed = [BASE, ...allowedOrigins];
  const external = [];
  await context.route(
    (u) => !allowed.some((o) => u.href.startsWith(o)),
    (route) => {
      external.push(`${route.request().method()} ${route.request().url()}`);
      route.abort('internetdisconnected');
    },
  );
  const page = await context.newPage();
  page.name = name;
  page.external = external;
  page.logs = [];
  // The server's refusals (status >= 400), to find out what a client tried that failed.
  page.refusals = [];
  page.on('response', (r) => {
    if (r.url().startsWith(BASE) && r.status() >= 400) page.refusals.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => page.logs.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.logs.push(`[${name}] pageerror: ${e.message}`));
  return page;
}

/** Prints what the pages logged, for a failing test. */
export function dumpLogs(...pages) {
  for (const p of pages) for (const l of p.logs ?? []) if (!l.includes('Failed to load resource')) console.log(l);
}

/** Saves a screenshot under ARTIFACTS. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  return file;
}

/** Creates a stage and a token per user through the AWS SDK. */
export async function stageWithTokens(client, name, users, { CreateStageCommand, CreateParticipantTokenCommand }) {
  const { stage } = await client.send(new CreateStageCommand({ name }));
  const tokens = {};
  for (const u of users) {
    const { participantToken } = await client.send(
      new CreateParticipantTokenCommand({ stageArn: stage.arn, userId: u, attributes: { name: u }, capabilities: ['PUBLISH', 'SUBSCRIBE'] }),
    );
    tokens[u] = participantToken;
  }
  return { stage, tokens };
}

/**
 * Polls fn until it returns a truthy value. The patience bounds a hang, it
 * is not a measure of speed: nothing here asserts how fast anything is.
 */
export async function until(what, fn, { patienceMs = 60_000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + patienceMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Serves the test pages (pages/) and, when given, the official IVS SDK from
 * a second origin on 127.0.0.1, so that the apps under test are cross-origin
 * to the server, as real apps are.
 */
export async function servePages({ officialSdk } = {}) {
  const http = await import('node:http');
  const dir = path.resolve(import.meta.dirname, '../pages');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file;
    if (url.pathname === '/ivs-web-broadcast.js' && officialSdk) file = officialSdk;
    else if (/^\/[a-z-]+\.(html|js)$/.test(url.pathname)) file = path.join(dir, url.pathname);
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    const type = file.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
    let body = fs.readFileSync(file, 'utf8');
    if (file.endsWith('.html') && url.searchParams.get('server')) {
      // Apps import the library by its package name through an import map,
      // with no build step: '@rostrum/stages' is the server's /sdk/ module.
      const map = { imports: { '@rostrum/stages': `${url.searchParams.get('server')}/sdk/rostrum-stages.js` } };
      body = body.replace('<!-- importmap -->', `<script type="importmap">${JSON.stringify(map)}</script>`);
    }
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((r) => server.close(r)) };
}
