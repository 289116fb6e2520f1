#!/usr/bin/env node
// The browser test: the real server, a fresh database, headless Chromium, and three people
// (a therapist and two clients) using the app the way a person would.
//
// Environment:
//   PARANIMO_BIN   the built server binary (required)
//   DATABASE_URL   an admin URL to PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/postgres
//   REDIS_URL      default redis://127.0.0.1:6379
//   CHROMIUM_PATH  default /usr/bin/chromium
//   WEB_DIR        the built app (default <repo>/web/dist; run `npm run build` first)
//   E2E_SCREENSHOTS=1  also save a screenshot of each page visited to <repo>/artifacts/
//
// It proves that: a booking reaches the therapist's open calendar within a second; other
// viewers see a slot vanish when booked and come back when cancelled; messages arrive live
// both ways and survive a reload; and a video call connects with frames decoding on both
// sides, survives one person leaving and rejoining. Screenshots of the call go to
// <repo>/artifacts/. Exits non-zero with a reason on any failure.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** The longest any one step may take. */
const STEP_TIMEOUT_MS = 30_000;
/** How soon a new booking must show on the therapist's open calendar. */
const CALENDAR_DEADLINE_MS = 1_000;
/** Chromium flags that work headless on these machines (shared/BROWSER-TESTING.md). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
  // Without this, a machine whose only interface is loopback gathers no ICE candidates.
  '--allow-loopback-in-peer-connection',
];

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const webDir = process.env.WEB_DIR || join(repo, 'web', 'dist');
const artifacts = join(repo, 'artifacts');
const suffix = randomBytes(4).toString('hex');
const password = `correct horse ${suffix} battery`;
const redisPrefix = `e2e-${suffix}:`;

const timings = [];
const started = Date.now();

function log(text) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[e2e ${seconds}s] ${text}`);
}

class Failure extends Error {}

function fail(text) {
  throw new Failure(text);
}

/** Runs one named step with a time limit and records how long it took. */
async function step(name, body) {
  const t0 = Date.now();
  log(`▶ ${name}`);
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Failure(`step "${name}" took longer than ${STEP_TIMEOUT_MS / 1000} s`)),
      STEP_TIMEOUT_MS,
    );
  });
  try {
    const result = await Promise.race([body(), limit]);
    timings.push([name, Date.now() - t0]);
    return result;
  } catch (error) {
    throw new Failure(
      `step "${name}" failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

// --- environment -----------------------------------------------------------------------------

function settings() {
  const bin = process.env.PARANIMO_BIN;
  if (!bin)
    fail('PARANIMO_BIN is not set: point it at the built server (cargo build --bin paranimo).');
  if (!existsSync(bin)) fail(`PARANIMO_BIN=${bin} does not exist.`);
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl)
    fail(
      'DATABASE_URL is not set: give an admin URL, ' +
        'e.g. postgres://postgres@127.0.0.1:5432/postgres',
    );
  const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(chromiumPath))
    fail(
      `No Chromium at ${chromiumPath}: ` +
        'install it (apt-get install -y chromium) or set CHROMIUM_PATH.',
    );
  if (!existsSync(join(webDir, 'index.html')))
    fail(`No built web app in ${webDir}: run \`npm run build\` in web/ first.`);
  return {
    bin,
    databaseUrl,
    chromiumPath,
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

function psql(adminUrl, sql) {
  try {
    execFileSync('psql', [adminUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = error.stderr ? String(error.stderr).trim() : error.message;
    fail(`psql failed (${sql}): ${stderr}`);
  }
}

function databaseUrlFor(adminUrl, name) {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

// --- Redis clean-up ----------------------------------------------------------------------------

/**
 * Deletes every Redis key under `prefix`. The server keeps per-topic sequence numbers without
 * expiry, so each run would otherwise leave its keys behind. A few lines of RESP spare the
 * test a Redis client dependency.
 */
async function deleteRedisKeys(redisUrl, prefix) {
  const url = new URL(redisUrl);
  const socket = connect({ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) });
  await new Promise((resolveConnect, reject) => {
    socket.once('connect', resolveConnect);
    socket.once('error', reject);
  });
  let buffer = Buffer.alloc(0);
  const waiters = [];
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const parsed = parseReply(buffer, 0);
      if (!parsed || waiters.length === 0) break;
      buffer = buffer.subarray(parsed.end);
      waiters.shift()(parsed.value);
    }
  });
  const command = (...args) =>
    new Promise((resolveReply, reject) => {
      waiters.push((value) => (value instanceof Error ? reject(value) : resolveReply(value)));
      const parts = args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join('')}`);
    });

  try {
    if (url.password) {
      const user = decodeURIComponent(url.username);
      const secret = decodeURIComponent(url.password);
      await (user ? command('AUTH', user, secret) : command('AUTH', secret));
    }
    const db = url.pathname.replace('/', '');
    if (db) await command('SELECT', db);
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000');
      cursor = next;
      if (keys.length > 0) deleted += await command('DEL', ...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    socket.destroy();
  }
}

/** Parses one RESP reply at `at`; null when the buffer does not hold all of it yet. */
function parseReply(buffer, at) {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd < 0) return null;
  const kind = String.fromCharCode(buffer[at]);
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (kind) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return null;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      const items = [];
      let end = next;
      for (let i = 0; i < count; i += 1) {
        const item = parseReply(buffer, end);
        if (!item) return null;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      return { value: new Error(`unexpected Redis reply: ${line}`), end: next };
  }
}

// --- the server --------------------------------------------------------------------------------

function startServer({ bin, redisUrl }, databaseUrl, port) {
  const origin = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: redisPrefix,
      BIND: `127.0.0.1:${port}`,
      PUBLIC_ORIGIN: origin,
      WEB_DIR: webDir,
      // Lets a booking days away be joined now.
      ROOM_OPENS_MINUTES_BEFORE: '100000',
      RUST_LOG: process.env.RUST_LOG || 'warn',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (!line) continue;
      output.push(line);
      if (output.length > 200) output.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  return { child, origin, output, exited };
}

async function waitUntilReady(server) {
  let exit = null;
  void server.exited.then((e) => (exit = e));
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exit) fail(`the server exited during start-up (code ${exit.code}, signal ${exit.signal})`);
    try {
      const response = await fetch(`${server.origin}/readyz`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`the server did not become ready at ${server.origin}/readyz`);
}

async function stopServer(server) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const stopped = await Promise.race([
    server.exited.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 5000)),
  ]);
  if (!stopped) {
    log('the server did not stop within 5 s of SIGTERM; killing it');
    server.child.kill('SIGKILL');
    await server.exited;
  }
}

// --- people ------------------------------------------------------------------------------------

async function person(browser, origin, name, { routed = false } = {}) {
  const context = await browser.newContext({
    baseURL: origin,
    locale: 'en-GB',
    timezoneId: 'Europe/London',
    viewport: { width: 1100, height: 800 },
    permissions: ['camera', 'microphone'],
  });
  const link = routed ? await routeSocket(context) : null;
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (error) => log(`${name} page error: ${error.message}`));
  page.on('console', (message) => {
    // The browser logs every non-2xx response; expected ones (401 before sign-in, 404 for a
    // new therapist's profile) would only be noise here, and the server log has them all.
    if (message.text().startsWith('Failed to load resource')) return;
    if (message.type() === 'error' || message.type() === 'warning') {
      log(`${name} console ${message.type()}: ${message.text()}`);
    }
  });
  return { name, context, page, link };
}

/**
 * Puts the test between a context's websocket and the server, to cut the connection, keep
 * it down, or lose the next message acknowledgement (as a flaky network would).
 */
async function routeSocket(context) {
  const link = {
    open: true,
    loseNextAck: false,
    /** How many times each message.send id went out (2 after a resend). */
    sends: new Map(),
    live: new Set(),
    drop() {
      for (const ws of link.live) ws.close({ code: 1001, reason: 'test: connection dropped' });
      link.live.clear();
    },
  };
  const parse = (message) => {
    try {
      return JSON.parse(String(message));
    } catch {
      return null;
    }
  };
  await context.routeWebSocket(
    (url) => url.pathname === '/ws',
    (ws) => {
      if (!link.open) {
        ws.close({ code: 1001, reason: 'test: offline' });
        return;
      }
      const server = ws.connectToServer();
      link.live.add(ws);
      ws.onMessage((message) => {
        const frame = parse(message);
        if (frame?.type === 'message.send')
          link.sends.set(frame.id, (link.sends.get(frame.id) ?? 0) + 1);
        server.send(message);
      });
      server.onMessage((message) => {
        const frame = parse(message);
        if (link.loseNextAck && frame?.type === 'ack' && frame.message) {
          // The message is stored; the browser never hears so and must resend it.
          link.loseNextAck = false;
          link.live.delete(ws);
          ws.close({ code: 1001, reason: 'test: ack lost' });
          return;
        }
        ws.send(message);
      });
    },
  );
  return link;
}

async function signIn(page, email) {
  await page.goto('/#/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await expectSession(page, 'signing in');
}

async function register(page, { email, role, displayName }) {
  await page.goto('/#/register');
  await page
    .getByLabel(role === 'therapist' ? 'A therapist' : 'A client looking for support')
    .check();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Display name (optional)').fill(displayName);
  await page.getByLabel('I am 18 or over').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText(`Signed in as ${displayName}`).waitFor();
  await expectSession(page, 'registering');
}

/** Fails clearly when the browser holds no working session cookie (Max-Age=0, Secure on http…). */
async function expectSession(page, after) {
  const cookies = await page.context().cookies();
  if (!cookies.some((c) => c.name === 'paranimo_session')) {
    fail(
      `after ${after} the browser kept no paranimo_session cookie ` +
        '(check its Set-Cookie attributes)',
    );
  }
  const me = await page.request.get('/api/me');
  if (me.status() !== 200)
    fail(`after ${after}, GET /api/me answered ${me.status()}: ${await me.text()}`);
}

/** Saves a full-page screenshot when E2E_SCREENSHOTS=1, for looking at the pages by eye. */
async function snap(page, name) {
  if (process.env.E2E_SCREENSHOTS !== '1') return;
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `page-${name}.png`), fullPage: true });
}

function bookingIdFrom(page) {
  const match = /#\/bookings\/([0-9a-f-]{36})$/.exec(page.url());
  if (!match) fail(`expected a booking page, got ${page.url()}`);
  return match[1];
}

/** Polls the room page's call probe until remote video decodes and keeps decoding. */
async function waitForVideo(page, who) {
  const read = () =>
    page.evaluate(() => (window.__paranimoCall ? window.__paranimoCall.stats() : null));
  let first = null;
  let last = null;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    last = await read();
    const decoding =
      last && last.framesDecoded > 0 && last.remoteReadyState >= 2 && !last.remotePaused;
    if (decoding && !first) first = last;
    if (decoding && first && last.framesDecoded > first.framesDecoded) return last;
    await page.waitForTimeout(100);
  }
  fail(`${who}'s remote video is not decoding: ${JSON.stringify(last)}`);
}

// --- the walk-through ---------------------------------------------------------------------------

async function walkThrough(browser, origin) {
  const therapist = await person(browser, origin, 'therapist');
  const client = await person(browser, origin, 'client');
  const watcher = await person(browser, origin, 'second client');
  const t = therapist.page;
  const c = client.page;
  const w = watcher.page;
  const therapistName = 'Theodora Hart';
  const clientName = `Casey ${suffix}`;
  const results = {};

  await step('therapist registers and publishes a profile with availability', async () => {
    await register(t, {
      email: `therapist-${suffix}@example.test`,
      role: 'therapist',
      displayName: 'Theo',
    });
    await t.waitForURL(/#\/me\/profile$/);
    await t.getByLabel('Full name').fill(therapistName);
    await t.getByLabel('Professional body').fill('BACP');
    await t.getByLabel('Membership number').fill('BACP 0123456');
    await t
      .getByLabel('Bio')
      .fill('Integrative counsellor. I work with anxiety, grief and work stress.');
    await t.getByLabel('Fee per session (£)').fill('60');
    await t.getByLabel('Session length (minutes)').fill('50');
    await t.getByLabel('Time zone').selectOption('Europe/London');

    await t.getByRole('button', { name: 'Mon–Fri 09:00–17:00' }).click();
    const windows = t.getByRole('group', { name: /^Time window \d+$/ });
    if ((await windows.count()) !== 5)
      fail(`the preset made ${await windows.count()} windows, expected 5`);
    // The test may run at a weekend or late at night: offer every day, all day, so slots exist.
    await t.getByRole('button', { name: 'Add a time window' }).click();
    await t.getByRole('button', { name: 'Add a time window' }).click();
    const days = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
    for (const [index, day] of days.entries()) {
      const row = t.getByRole('group', { name: `Time window ${index + 1}`, exact: true });
      await row.getByLabel('Day').selectOption(day);
      await row.getByLabel('From').fill('00:00');
      await row.getByLabel('Until').fill('23:59');
    }
    await t.getByRole('button', { name: 'Save profile and availability' }).click();
    await t.getByText(/^Saved\./).waitFor();
    await snap(t, 'profile');

    await t.getByRole('link', { name: 'My calendar' }).click();
    await t.getByRole('heading', { name: 'Your calendar' }).waitFor();
  });

  let slotName = '';
  await step('two clients register and open the therapist', async () => {
    await register(c, {
      email: `client-${suffix}@example.test`,
      role: 'client',
      displayName: clientName,
    });
    await register(w, {
      email: `watcher-${suffix}@example.test`,
      role: 'client',
      displayName: `Wren ${suffix}`,
    });
    for (const page of [c, w]) {
      await page.getByRole('link', { name: 'Find a therapist' }).click();
      await page.getByRole('link', { name: therapistName }).waitFor();
      await snap(page, 'directory');
      await page.getByRole('link', { name: therapistName }).click();
      await page.getByRole('heading', { name: therapistName }).waitFor();
    }
    const firstSlot = c.getByRole('button', { name: /^Book / }).first();
    slotName = (await firstSlot.getAttribute('aria-label')) ?? fail('the slot button has no name');
    await w.getByRole('button', { name: slotName, exact: true }).waitFor();
    log(`first free slot: "${slotName}"`);
    await snap(c, 'therapist');
  });

  const upcoming = (page) =>
    page.getByRole('list', { name: 'Upcoming sessions' }).getByRole('listitem');
  const slotFor = (page) => page.getByRole('button', { name: slotName, exact: true });

  let bookingId = '';
  await step('client books; the calendar and the other client update live', async () => {
    const clicked = Date.now();
    const onCalendar = upcoming(t)
      .filter({ hasText: clientName })
      .filter({ hasText: 'Confirmed' })
      .first()
      .waitFor({ timeout: 5_000 })
      .then(() => Date.now());
    const goneForWatcher = slotFor(w)
      .waitFor({ state: 'detached', timeout: 5_000 })
      .then(() => Date.now());
    await slotFor(c).click();
    await c.waitForURL(/#\/bookings\/[0-9a-f-]{36}$/);
    const booked = Date.now();
    bookingId = bookingIdFrom(c);
    const [calendarAt, goneAt] = await Promise.all([onCalendar, goneForWatcher]);
    results.booking = booked - clicked;
    results.calendar = calendarAt - clicked;
    results.slotGone = goneAt - clicked;
    log(
      `booked in ${results.booking} ms; on the therapist's calendar after ` +
        `${results.calendar} ms; gone for the other client after ${results.slotGone} ms ` +
        '(all from the click)',
    );
    if (results.calendar > CALENDAR_DEADLINE_MS) {
      fail(
        `the booking took ${results.calendar} ms to reach the open calendar ` +
          `(limit ${CALENDAR_DEADLINE_MS} ms)`,
      );
    }
  });

  await step('client cancels; the slot comes back for the other client', async () => {
    await c.getByRole('button', { name: 'Cancel this session' }).click();
    const clicked = Date.now();
    const back = slotFor(w)
      .waitFor({ timeout: 5_000 })
      .then(() => Date.now());
    await c.getByRole('button', { name: 'Yes, cancel it' }).click();
    await c.getByText('Cancelled', { exact: true }).waitFor();
    await upcoming(t).filter({ hasText: 'Cancelled' }).first().waitFor({ timeout: 5_000 });
    results.slotBack = (await back) - clicked;
    log(`the slot was back for the other client ${results.slotBack} ms after the cancel click`);
  });

  await step('client books the same slot again', async () => {
    await c.getByRole('link', { name: `Book another session with ${therapistName}` }).click();
    await slotFor(c).click();
    await c.waitForURL(/#\/bookings\/[0-9a-f-]{36}$/);
    const again = bookingIdFrom(c);
    if (again === bookingId) fail('the second booking has the id of the cancelled one');
    bookingId = again;
    await slotFor(w).waitFor({ state: 'detached', timeout: 5_000 });
    await upcoming(t).filter({ hasText: 'Confirmed' }).first().waitFor({ timeout: 5_000 });
    await snap(t, 'calendar');
  });

  const fromClient = `Hello, looking forward to our session (${suffix}).`;
  const fromTherapist = `Thank you, see you then (${suffix}).`;
  await step('client and therapist exchange messages live', async () => {
    await upcoming(t)
      .filter({ hasText: 'Confirmed' })
      .getByRole('link', { name: /^View booking/ })
      .click();
    await t.waitForURL(new RegExp(`#/bookings/${bookingId}$`));
    await t.getByRole('heading', { name: `Session with ${clientName}` }).waitFor();
    await t.getByRole('list', { name: 'Messages' }).waitFor();

    let sent = Date.now();
    await c.getByLabel('Message', { exact: true }).fill(fromClient);
    await c.getByRole('button', { name: 'Send' }).click();
    await t.getByText(fromClient).waitFor({ timeout: 5_000 });
    results.messageToTherapist = Date.now() - sent;
    await c.getByText('Sending…').waitFor({ state: 'detached' });

    sent = Date.now();
    await t.getByLabel('Message', { exact: true }).fill(fromTherapist);
    await t.getByRole('button', { name: 'Send' }).click();
    await c.getByText(fromTherapist).waitFor({ timeout: 5_000 });
    results.messageToClient = Date.now() - sent;
    await snap(c, 'booking');
    log(`messages arrived in ${results.messageToTherapist} ms and ${results.messageToClient} ms`);
  });

  await step('both reload and still see the conversation', async () => {
    for (const page of [c, t]) {
      await page.reload();
      await page.getByText(fromClient).waitFor();
      await page.getByText(fromTherapist).waitFor();
    }
  });

  await step('both join the video room and see each other', async () => {
    const joined = Date.now();
    await c.getByRole('link', { name: 'Join session' }).click();
    await t.getByRole('link', { name: 'Join session' }).click();
    await Promise.all([c.waitForURL(/#\/room\//), t.waitForURL(/#\/room\//)]);
    const [cs, ts] = await Promise.all([
      waitForVideo(c, 'the client'),
      waitForVideo(t, 'the therapist'),
    ]);
    results.call = Date.now() - joined;
    log(
      `video decoding on both sides ${results.call} ms after joining ` +
        `(client ${cs.framesDecoded} frames, therapist ${ts.framesDecoded} frames)`,
    );
    mkdirSync(artifacts, { recursive: true });
    await c.screenshot({ path: join(artifacts, 'call-client.png') });
    await t.screenshot({ path: join(artifacts, 'call-therapist.png') });
  });

  await step('the client leaves and rejoins; the call reconnects', async () => {
    await c.getByRole('button', { name: 'Leave session' }).click();
    await c.waitForURL(new RegExp(`#/bookings/${bookingId}$`));
    await t.getByText('The other person left').waitFor({ timeout: 5_000 });

    const rejoined = Date.now();
    await c.getByRole('link', { name: 'Join session' }).click();
    await Promise.all([waitForVideo(c, 'the client'), waitForVideo(t, 'the therapist')]);
    results.rejoin = Date.now() - rejoined;
    log(`video decoding again ${results.rejoin} ms after rejoining`);
  });

  await step('the therapist leaves; the client is told', async () => {
    await t.getByRole('button', { name: 'Leave session' }).click();
    await t.waitForURL(new RegExp(`#/bookings/${bookingId}$`));
    await c.getByText('The other person left').waitFor({ timeout: 5_000 });
  });

  // Second devices whose websockets the test controls.
  const therapist2 = await person(browser, origin, 'therapist (second device)', { routed: true });
  const client2 = await person(browser, origin, 'client (second device)', { routed: true });
  const t2 = therapist2.page;
  const c2 = client2.page;

  let secondBooking = '';
  await step('a booking made while a calendar is offline arrives when it reconnects', async () => {
    await signIn(t2, `therapist-${suffix}@example.test`);
    await t2.waitForURL(/#\/calendar$/);
    await upcoming(t2).filter({ hasText: 'Confirmed' }).first().waitFor();

    therapist2.link.open = false;
    therapist2.link.drop();
    await t2.getByText('Reconnecting…').waitFor();

    await c.getByRole('button', { name: 'Leave session' }).click();
    await c.getByRole('link', { name: `Book another session with ${therapistName}` }).click();
    await c
      .getByRole('button', { name: /^Book / })
      .first()
      .click();
    await c.waitForURL(/#\/bookings\/[0-9a-f-]{36}$/);
    secondBooking = bookingIdFrom(c);

    const reopened = Date.now();
    therapist2.link.open = true;
    await upcoming(t2).filter({ hasText: 'Confirmed' }).nth(1).waitFor({ timeout: 15_000 });
    results.replay = Date.now() - reopened;
    log(`the offline calendar caught up ${results.replay} ms after its network came back`);
  });

  await step('a message whose acknowledgement is lost is resent once, not doubled', async () => {
    await signIn(c2, `client-${suffix}@example.test`);
    await c2.goto(`/#/bookings/${secondBooking}`);
    await c2.getByRole('list', { name: 'Messages' }).waitFor();
    await c2.getByText('Live', { exact: true }).waitFor();

    const text = `Sent on a bad line (${suffix}).`;
    client2.link.loseNextAck = true;
    await c2.getByLabel('Message', { exact: true }).fill(text);
    await c2.getByRole('button', { name: 'Send' }).click();
    await c2.getByText('Sending…').waitFor({ state: 'detached', timeout: 15_000 });
    await c.getByText(text).waitFor({ timeout: 5_000 });

    // The echo on the user topic can settle the page before the resend goes out: wait for it.
    const resent = () => [...client2.link.sends.values()];
    const deadline = Date.now() + 15_000;
    while (resent()[0] !== 2 && Date.now() < deadline) await c2.waitForTimeout(50);
    if (resent().length !== 1 || resent()[0] !== 2) {
      fail(
        `expected the message frame to go out twice with one id, saw ${JSON.stringify(resent())}`,
      );
    }
    await c2.getByText('Live', { exact: true }).waitFor();
    for (const [who, page] of [
      ['client (second device)', c2],
      ['client', c],
    ]) {
      const copies = await page.getByText(text).count();
      if (copies !== 1) fail(`the ${who} shows the message ${copies} times`);
    }
    await c2.reload();
    await c2.getByText(text).waitFor();
    if ((await c2.getByText(text).count()) !== 1)
      fail('after a reload the message shows more than once');
  });

  return results;
}

// --- main --------------------------------------------------------------------------------------

async function main() {
  const config = settings();
  const database = `paranimo_e2e_${suffix}`;
  let server = null;
  let browser = null;
  let createdDatabase = false;
  let ok = false;

  try {
    await step('create a fresh database and start the server', async () => {
      psql(config.databaseUrl, `CREATE DATABASE ${database}`);
      createdDatabase = true;
      const port = await freePort();
      server = startServer(config, databaseUrlFor(config.databaseUrl, database), port);
      await waitUntilReady(server);
      log(`server ready at ${server.origin} (database ${database})`);
    });

    browser = await step('launch Chromium', () =>
      chromium.launch({ executablePath: config.chromiumPath, headless: true, args: CHROMIUM_ARGS }),
    );
    const results = await walkThrough(browser, server.origin);

    console.log('\nBrowser test passed. Timings:');
    const line = (ms, what) => console.log(`  ${String(ms).padStart(6)} ms  ${what}`);
    for (const [name, ms] of timings) line(ms, name);
    console.log('  ---');
    line(
      results.calendar,
      `booking click → therapist's open calendar (limit ${CALENDAR_DEADLINE_MS})`,
    );
    line(results.slotGone, 'booking click → slot gone for another client');
    line(results.slotBack, 'cancel click → slot back for another client');
    line(results.messageToTherapist, 'client message → therapist');
    line(results.messageToClient, 'therapist message → client');
    line(results.call, 'join → video decoding on both sides');
    line(results.rejoin, 'rejoin → video decoding again');
    line(results.replay, 'network back → offline calendar caught up');
    const total = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`  total ${total} s; call screenshots in ${artifacts}`);
    ok = true;
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (server) {
      await stopServer(server);
      if (!ok && server.output.length > 0) {
        console.error(`\nLast server output:\n${server.output.slice(-60).join('\n')}`);
      }
    }
    if (server) {
      try {
        await deleteRedisKeys(config.redisUrl, redisPrefix);
      } catch (error) {
        console.error(`could not delete the Redis keys under ${redisPrefix}: ${error.message}`);
      }
    }
    if (createdDatabase) {
      try {
        psql(config.databaseUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      } catch (error) {
        console.error(`could not drop database ${database}: ${error.message}`);
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(
      `\nBrowser test FAILED: ${error instanceof Failure ? error.message : error.stack || error}`,
    );
    process.exit(1);
  },
);
