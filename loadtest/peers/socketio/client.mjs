// The load client for the Socket.IO peer. Socket.IO wraps every message in its own packet
// format (Engine.IO), so the Rust load generator, which speaks plain websocket frames,
// cannot drive it; this client runs the same four scenarios over socket.io-client and
// prints the same kind of report: a readable table, then a one-line JSON summary.
//
//   node client.mjs idle   --url http://127.0.0.1:9102 --server-pid PID --connections 2000
//   node client.mjs fanout --url … --subscribers 1000 --events 20 --interval-ms 100
//   node client.mjs chat   --url … --pairs 50 --messages 20 --rate 5
//   node client.mjs relay  --url … --pairs 50 --messages 20 --rate 5
//
// The scenarios, their options and their JSON keys follow the Rust generator's (see
// loadtest/src/scenarios/): fixed-pace publishing, latency from the moment of sending.
// --url and --server-pid may be repeated (the two-node variant): connections are spread
// over the URLs in turn, and memory is the sum over the processes.
//
// A limit to keep in mind when reading its figures: this is one Node.js thread, so above a
// few thousand messages per second it measures itself as much as the server. The same
// figures for the plain `ws` peer from this client (`--transport ws`) show how much.

import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string', multiple: true, default: ['http://127.0.0.1:9102'] },
    transport: { type: 'string', default: 'socketio' },
    'server-pid': { type: 'string', multiple: true, default: [] },
    connections: { type: 'string', default: '1000' },
    'connect-concurrency': { type: 'string', default: '100' },
    'hold-seconds': { type: 'string', default: '20' },
    subscribers: { type: 'string', default: '1000' },
    events: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '100' },
    'drain-seconds': { type: 'string', default: '10' },
    pairs: { type: 'string', default: '50' },
    messages: { type: 'string', default: '20' },
    rate: { type: 'string', default: '5' },
  },
});
const scenario = positionals[0];
const number = (name) => {
  const value = Number(opts[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number`);
  return value;
};

// Loopback only, as for the Rust load generator: never load someone else's server.
for (const url of opts.url) {
  const host = new URL(url).hostname;
  if (!(host === 'localhost' || /^127(\.\d{1,3}){3}$/.test(host) || host === '[::1]')) {
    throw new Error(`${url} is not a loopback address`);
  }
}

/** Topic names unique to this run: sequence counters kept in Redis outlive a server. */
const run = `${process.pid}-${Date.now().toString(36)}`;

// --- connections ------------------------------------------------------------------------

/**
 * One client connection with the same small interface over either transport:
 * subscribe(topic) -> seq, publish(topic, event), send(id, topic, body), onEvent(fn),
 * onClose(fn), close().
 */
function connectSocketIo(url) {
  // forceNew: without it socket.io-client multiplexes every "connection" to one URL over a
  // single websocket, and we would be measuring one connection.
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  const ready = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const call = (name, ...args) => socket.timeout(10_000).emitWithAck(name, ...args);
  return ready.then(() => ({
    subscribe: async (topic) => (await call('subscribe', topic)).seq,
    publish: (topic, event) => call('publish', { topic, event }),
    send: (id, topic, body) => call('message.send', { id, topic, body }),
    onEvent: (fn) => socket.on('event', fn),
    onClose: (fn) => socket.on('disconnect', fn),
    close: () => socket.close(),
  }));
}

/** The plain websocket peers, for calibrating this client against the Rust one. */
function connectWs(url) {
  const wsUrl = new URL(url);
  wsUrl.protocol = wsUrl.protocol.replace('http', 'ws');
  if (wsUrl.pathname === '/') wsUrl.pathname = '/ws';
  const socket = new WebSocket(wsUrl, { perMessageDeflate: false });
  const pending = []; // replies arrive in request order on one connection
  let onEvent = () => {};
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    if (frame.type === 'event') onEvent(frame);
    else pending.shift()?.(frame);
  });
  const call = (frame) =>
    new Promise((resolve) => {
      pending.push(resolve);
      socket.send(JSON.stringify(frame));
    });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        subscribe: async (topic) => (await call({ type: 'subscribe', topic })).seq,
        publish: (topic, event) => call({ type: 'publish', topic, event }),
        send: async (id, topic, body) => {
          const answer = await call({ type: 'message.send', id, topic, body });
          return answer.type === 'error' ? { error: answer.code ?? 'error' } : answer;
        },
        onEvent: (fn) => (onEvent = fn),
        onClose: (fn) => socket.on('close', fn),
        close: () => socket.close(),
      }),
    );
  });
}

const connectOne = opts.transport === 'ws' ? connectWs : connectSocketIo;

/** Opens `count` connections, at most `concurrency` handshakes at a time, spread over URLs. */
async function connectMany(count, concurrency) {
  const connections = new Array(count);
  const handshakes = [];
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const begun = performance.now();
      try {
        connections[i] = await connectOne(opts.url[i % opts.url.length]);
        handshakes.push(performance.now() - begun);
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { connections: connections.filter(Boolean), failed, handshakes };
}

// --- measurement helpers ----------------------------------------------------------------

const rssKib = () =>
  opts['server-pid'].reduce((sum, pid) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return sum + Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }, 0);

const round3 = (x) => Math.round(x * 1000) / 1000;

/** Nearest-rank percentiles, as the Rust load generator computes them. */
function latency(samples, prefix, summary) {
  samples.sort((a, b) => a - b);
  const at = (q) => (samples.length ? samples[Math.round((samples.length - 1) * q)] : 0);
  summary[`${prefix}_p50_ms`] = round3(at(0.5));
  summary[`${prefix}_p99_ms`] = round3(at(0.99));
  summary[`${prefix}_max_ms`] = round3(samples.length ? samples[samples.length - 1] : 0);
}

/** Missing, repeated and reordered numbers of one receiver's stream against first..last. */
function seqCheck(received, first, last) {
  const check = { missing: 0, duplicates: 0, out_of_order: 0 };
  const seen = new Set();
  let highest = 0;
  for (const seq of received) {
    if (seen.has(seq)) check.duplicates += 1;
    if (seq < highest) check.out_of_order += 1;
    seen.add(seq);
    highest = Math.max(highest, seq);
  }
  for (let seq = first; seq <= last; seq++) if (!seen.has(seq)) check.missing += 1;
  return check;
}

function addCheck(totals, check) {
  for (const key of Object.keys(check)) totals[key] += check[key];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pause after the last connect before memory is read, so the server has settled. */
const SETTLE_MS = 2000;

/** Resolves when `done()` holds, or after `seconds` (the checks then count what is missing). */
async function until(done, seconds) {
  const deadline = performance.now() + seconds * 1000;
  while (!done() && performance.now() < deadline) await sleep(5);
}

// --- scenarios --------------------------------------------------------------------------

async function idle() {
  const count = number('connections');
  await sleep(500);
  const before = rssKib();
  const started = performance.now();
  const { connections, failed, handshakes } = await connectMany(
    count,
    number('connect-concurrency'),
  );
  const connectSeconds = (performance.now() - started) / 1000;
  let dropped = 0;
  for (const c of connections) c.onClose(() => (dropped += 1));

  // Let the server settle before reading its memory, then hold the rest of the time.
  // Socket.IO's own heartbeat (the server pings every 25 s) keeps the connections alive.
  const hold = number('hold-seconds') * 1000;
  await sleep(Math.min(SETTLE_MS, hold));
  const after = rssKib();
  await sleep(Math.max(hold - SETTLE_MS, 0));
  const end = rssKib();
  const droppedDuringHold = dropped;
  for (const c of connections) c.close();

  const summary = {
    connections: connections.length,
    failed,
    connect_seconds: round3(connectSeconds),
    connects_per_second: round3(connections.length / connectSeconds),
  };
  latency(handshakes, 'handshake', summary);
  if (opts['server-pid'].length > 0) {
    Object.assign(summary, {
      server_rss_before_kib: before,
      server_rss_after_kib: after,
      server_rss_end_kib: end,
      server_kib_per_connection:
        Math.round(((after - before) / Math.max(connections.length, 1)) * 100) / 100,
    });
  }
  summary.dropped_during_hold = droppedDuringHold;
  summary.ok = failed === 0 && droppedDuringHold === 0;
  return summary;
}

async function fanout() {
  const topic = `fanout:${run}`;
  const events = number('events');
  const interval = number('interval-ms');
  const subscribeStarted = performance.now();
  const { connections: subscribers, failed } = await connectMany(
    number('subscribers'),
    number('connect-concurrency'),
  );
  const received = subscribers.map(() => []);
  let closedEarly = 0;
  let base = 0;
  await Promise.all(
    subscribers.map(async (c, i) => {
      c.onEvent((frame) => received[i].push([frame.seq, performance.now()]));
      c.onClose(() => (closedEarly += 1));
      base = Math.max(base, await c.subscribe(topic));
    }),
  );
  const subscribeSeconds = (performance.now() - subscribeStarted) / 1000;
  const last = base + events;
  const arrived = () => received.every((r) => r.length > 0 && r[r.length - 1][0] >= last);

  // Publish at a fixed pace: event i starts at i * interval, or when the previous ends.
  const [publisher] = (await connectMany(1, 1)).connections;
  const sent = [];
  const answers = [];
  const started = performance.now();
  for (let i = 0; i < events; i++) {
    const wait = started + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    const at = performance.now();
    sent.push(at);
    await publisher.publish(topic, { kind: 'availability.changed', n: i + 1 });
    answers.push(performance.now() - at);
  }
  await until(arrived, number('drain-seconds'));

  const latencies = [];
  const check = { missing: 0, duplicates: 0, out_of_order: 0 };
  let deliveries = 0;
  let lastArrival = started;
  for (const record of received) {
    addCheck(check, seqCheck(record.map(([seq]) => seq), base + 1, last));
    for (const [seq, at] of record) {
      if (seq <= base || seq > last) continue;
      latencies.push(at - sent[seq - base - 1]);
      deliveries += 1;
      lastArrival = Math.max(lastArrival, at);
    }
  }
  const summary = {
    subscribers: subscribers.length,
    failed,
    events,
    interval_ms: interval,
    subscribe_seconds: round3(subscribeSeconds),
    deliveries,
    deliveries_per_second: round3(deliveries / Math.max((lastArrival - started) / 1000, 1e-9)),
    missed: check.missing,
    duplicated: check.duplicates,
    out_of_order: check.out_of_order,
    closed_early: closedEarly,
  };
  latency(latencies, 'latency', summary);
  latency(answers, 'publish', summary);
  summary.ok = failed === 0 && check.missing === 0 && check.duplicates === 0;
  for (const c of [...subscribers, publisher]) c.close();
  return summary;
}

async function chat() {
  const perSide = number('messages');
  const interval = 1000 / Math.max(number('rate'), 0.001);
  const { connections, failed } = await connectMany(
    number('pairs') * 2,
    number('connect-concurrency'),
  );

  // Pairs are consecutive connections, talking on their own topic. Each side counts the
  // peer's message ids it received, to find losses and duplicates.
  const sides = [];
  for (let k = 0; k + 1 < connections.length; k += 2) {
    const topic = `chat:${run}:${k / 2}`;
    for (const s of [0, 1]) {
      sides.push({ conn: connections[k + s], topic, me: `${run}-${k / 2}-${s}`, got: new Map() });
    }
  }
  const latencies = [];
  let lastArrival = 0;
  for (const side of sides) {
    side.conn.onEvent((frame) => {
      const now = performance.now();
      const { id, body } = frame.event.message;
      side.got.set(id, (side.got.get(id) ?? 0) + 1);
      latencies.push(now - Number(body.split(' ').pop()));
      lastArrival = Math.max(lastArrival, now);
    });
  }
  await Promise.all(sides.map((side) => side.conn.subscribe(side.topic)));

  // Every side sends at a steady rate without waiting for acknowledgements, as the Rust
  // client does, the sides' starts spread over one interval rather than all at once; the
  // acknowledgement latency is measured on the side.
  const acks = [];
  let sent = 0;
  let errors = 0;
  const started = performance.now();
  lastArrival = started;
  const speak = async (side, i) => {
    const offset = (interval * i) / sides.length;
    for (let m = 0; m < perSide; m++) {
      const wait = started + offset + m * interval - performance.now();
      if (wait > 0) await sleep(wait);
      const at = performance.now();
      sent += 1;
      side.conn
        .send(`${side.me}-${m}`, side.topic, `load test message, sent at ${at}`)
        .then((answer) => (answer?.error ? (errors += 1) : acks.push(performance.now() - at)))
        .catch(() => (errors += 1));
    }
  };
  await Promise.all(sides.map(speak));
  const expected = sides.length * perSide;
  await until(() => latencies.length >= expected, number('drain-seconds'));

  let delivered = 0;
  let duplicated = 0;
  for (const side of sides) {
    delivered += side.got.size;
    for (const count of side.got.values()) duplicated += count - 1;
  }
  const missing = expected - delivered;
  const summary = {
    pairs: sides.length / 2,
    messages_per_side: perSide,
    rate_per_side: number('rate'),
    connect_failures: failed,
    sent,
    delivered,
    delivered_per_second: round3(delivered / Math.max((lastArrival - started) / 1000, 1e-9)),
    missing,
    duplicated,
    error_frames: errors,
  };
  latency(latencies, 'latency', summary);
  latency(acks, 'ack', summary);
  summary.ok = failed === 0 && sent === expected && missing === 0 && duplicated === 0 && errors === 0;
  for (const c of connections) c.close();
  return summary;
}

/**
 * Pairs pinging each other through the server, each ping echoed by the other side the
 * moment it arrives: the relay's round trip, as the Rust generator's `relay` scenario
 * measures it (same keys; bodies "ping <key>" and "echo <key>" in `message.send`).
 */
async function relay() {
  const perSide = number('messages');
  const interval = 1000 / Math.max(number('rate'), 0.001);
  const { connections, failed } = await connectMany(
    number('pairs') * 2,
    number('connect-concurrency'),
  );
  const sides = [];
  for (let k = 0; k + 1 < connections.length; k += 2) {
    const topic = `chat:${run}:relay:${k / 2}`;
    for (const s of [0, 1]) {
      const me = `${run}-${k / 2}-${s}-`;
      sides.push({ conn: connections[k + s], topic, me, pending: new Map() });
    }
  }
  const roundTrips = [];
  let sent = 0;
  let echoed = 0;
  let errors = 0;
  const sendAndCount = (side, id, body) =>
    side.conn
      .send(id, side.topic, body)
      .then((answer) => answer?.error && (errors += 1))
      .catch(() => (errors += 1));
  for (const side of sides) {
    side.conn.onEvent((frame) => {
      const now = performance.now();
      const [kind, key] = String(frame.event?.message?.body ?? '').split(' ');
      if (kind === 'echo' && side.pending.has(key)) {
        roundTrips.push(now - side.pending.get(key));
        side.pending.delete(key);
      } else if (kind === 'ping' && !key.startsWith(side.me)) {
        echoed += 1;
        sendAndCount(side, `e-${key}`, `echo ${key}`);
      }
    });
  }
  await Promise.all(sides.map((side) => side.conn.subscribe(side.topic)));

  const started = performance.now();
  const speak = async (side, i) => {
    const offset = (interval * i) / sides.length;
    for (let m = 0; m < perSide; m++) {
      const wait = started + offset + m * interval - performance.now();
      if (wait > 0) await sleep(wait);
      const key = `${side.me}${m}`;
      side.pending.set(key, performance.now());
      sent += 1;
      sendAndCount(side, `p-${key}`, `ping ${key}`);
    }
  };
  await Promise.all(sides.map(speak));
  const expected = sides.length * perSide;
  await until(() => roundTrips.length >= expected, number('drain-seconds'));

  const summary = {
    pairs: sides.length / 2,
    messages_per_side: perSide,
    rate_per_side: number('rate'),
    connect_failures: failed,
    sent,
    echoed,
    round_trips: roundTrips.length,
    seconds: round3((performance.now() - started) / 1000),
    missing: sent - roundTrips.length,
    error_frames: errors,
  };
  latency(roundTrips, 'round_trip', summary);
  summary.ok = failed === 0 && sent === expected && summary.missing === 0 && errors === 0;
  for (const c of connections) c.close();
  return summary;
}

// --- report -----------------------------------------------------------------------------

const scenarios = { idle, fanout, chat, relay };
if (!scenarios[scenario]) {
  console.error('usage: node client.mjs idle|fanout|chat|relay [options] (see the file\'s top)');
  process.exit(2);
}
const target = opts.transport === 'ws' ? 'node-client-ws' : opts.url.length > 1 ? 'socketio-2' : 'socketio';
const summary = { scenario, target, ...(await scenarios[scenario]()) };
const width = Math.max(...Object.keys(summary).map((k) => k.length));
for (const [key, value] of Object.entries(summary)) console.log(`${key.padEnd(width)}  ${value}`);
console.log(JSON.stringify(summary));
// A failure found (lost messages, failed connections) fails the run, as in the Rust generator.
process.exit(summary.ok ? 0 : 1);
