// Checks that a reference peer speaks the generic protocol of ../peers/README.md before the
// comparison measures it: a peer that answered wrongly would be measured doing something
// else. Exits non-zero, naming the first step that failed.
//
// Usage: node check-peer.mjs ws://127.0.0.1:9101/ws

import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';

const url = process.argv[2];
if (!url) {
  console.error('usage: node check-peer.mjs ws://127.0.0.1:PORT/ws');
  process.exit(2);
}

/** How long to wait for any one expected frame. */
const STEP_TIMEOUT_MS = 3000;

/** A socket whose incoming frames can be awaited one by one, in order. */
async function open() {
  const socket = new WebSocket(url);
  const inbox = [];
  const waiting = [];
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const waiter = waiting.shift();
    if (waiter) waiter(frame);
    else inbox.push(frame);
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const next = (what) =>
    inbox.length > 0
      ? Promise.resolve(inbox.shift())
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no frame: ${what}`)), STEP_TIMEOUT_MS);
          waiting.push((frame) => {
            clearTimeout(timer);
            resolve(frame);
          });
        });
  const send = (frame) => socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  return { socket, inbox, next, send };
}

function expect(step, frame, wanted) {
  for (const [key, value] of Object.entries(wanted)) {
    if (!isDeepStrictEqual(frame?.[key], value)) {
      const got = JSON.stringify(frame?.[key]);
      throw new Error(`${step}: ${key} is ${got}, expected ${JSON.stringify(value)}`);
    }
  }
}

const a = await open();
const b = await open();
const topic = `check:${process.pid}`;

a.send({ type: 'subscribe', topic });
expect('subscribe', await a.next('subscribed'), { type: 'subscribed', topic, seq: 0 });

b.send({ type: 'publish', topic, event: { kind: 'check', n: 1 } });
expect('publish ack', await b.next('ack'), { type: 'ack' });
expect('event', await a.next('event'), { type: 'event', topic, seq: 1, event: { kind: 'check', n: 1 } });

a.send({ type: 'ping', id: 'p-1' });
expect('ping', await a.next('pong'), { type: 'pong', id: 'p-1' });

const chat = `chat:${process.pid}`;
a.send({ type: 'subscribe', topic: chat });
b.send({ type: 'subscribe', topic: chat });
expect('chat subscribe', await a.next('subscribed'), { type: 'subscribed', topic: chat });
expect('chat subscribe', await b.next('subscribed'), { type: 'subscribed', topic: chat });
a.send({ type: 'message.send', id: 'm-1', topic: chat, body: 'hello' });
expect('message ack', await a.next('ack'), { type: 'ack', id: 'm-1' });
expect('message event', await b.next('message event'), {
  type: 'event',
  topic: chat,
  seq: 1,
  event: { kind: 'message.created', message: { id: 'm-1', body: 'hello' } },
});

a.send('not json');
expect('malformed', await a.next('error'), { type: 'error' });
a.send({ type: 'no.such.frame' });
expect('unknown', await a.next('error'), { type: 'error' });

// A websocket-level ping must be answered too: the load generator may rely on it.
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no websocket pong')), STEP_TIMEOUT_MS);
  a.socket.once('pong', () => {
    clearTimeout(timer);
    resolve();
  });
  a.socket.ping();
});

// The sender of a chat message gets the ack, not its own event.
await new Promise((resolve) => setTimeout(resolve, 200));
if (a.inbox.length > 0) throw new Error(`unexpected frames: ${JSON.stringify(a.inbox)}`);

a.socket.close();
b.socket.close();
console.log(`protocol check passed: ${url}`);
