// Reference peer: a Socket.IO server, as a Node.js team would write it, with rooms for
// topics and acknowledgements for replies. With REDIS_URL set it joins the other nodes on
// the same Redis through @socket.io/redis-adapter (the two-node variant).
//
// Socket.IO frames its packets in its own way (Engine.IO), so a plain websocket client
// cannot drive it: client.mjs beside this file is the matching load client. The events
// mirror the generic protocol of ../README.md:
//   emit('subscribe', topic, ack)            ack({ seq })
//   emit('publish', { topic, event }, ack)   room gets 'event' { topic, seq, event }
//   emit('message.send', { id, topic, body }, ack)
//                                            ack({ id }); the rest of the room gets 'event'
//   emit('ping', id, ack)                    ack(id)
//
// Run: PORT=9102 node server.mjs
//      PORT=9112 REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX=plt-sio: node server.mjs

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const port = Number(process.env.PORT ?? 9102);
const redisUrl = process.env.REDIS_URL;
const prefix = process.env.REDIS_PREFIX ?? 'paranimo-compare-sio:';

/** Packets above this size are refused, as Paranimo refuses larger frames. */
const MAX_PACKET_BYTES = 64 * 1024;

const io = new Server({
  // Websocket only: the HTTP long-polling fallback would measure something else.
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: MAX_PACKET_BYTES,
});

/**
 * Per-topic sequence numbers. One node keeps them in memory; several nodes must agree on
 * them, so with Redis they are counters there, which costs one round trip per event (as
 * Paranimo's own numbering across nodes does).
 */
let sequences;
if (redisUrl) {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  const counters = pub.duplicate();
  for (const client of [pub, sub, counters]) client.on('error', (e) => console.error(e.message));
  await Promise.all([pub.connect(), sub.connect(), counters.connect()]);
  io.adapter(createAdapter(pub, sub, { key: `${prefix}socket.io` }));
  sequences = {
    current: async (topic) => Number((await counters.get(`${prefix}seq:${topic}`)) ?? 0),
    next: (topic) => counters.incr(`${prefix}seq:${topic}`),
  };
} else {
  const seqs = new Map();
  sequences = {
    current: async (topic) => seqs.get(topic) ?? 0,
    next: async (topic) => {
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      return seq;
    },
  };
}

const isText = (value) => typeof value === 'string' && value.length > 0;

io.on('connection', (socket) => {
  // A missing acknowledgement callback is the client's choice; replies are then dropped.
  const reply = (ack, value) => typeof ack === 'function' && ack(value);

  socket.on('subscribe', async (topic, ack) => {
    if (!isText(topic)) return reply(ack, { error: 'bad_frame' });
    socket.join(topic);
    reply(ack, { seq: await sequences.current(topic) });
  });

  socket.on('publish', async (frame, ack) => {
    const { topic, event } = frame ?? {};
    if (!isText(topic) || typeof event !== 'object' || event === null) {
      return reply(ack, { error: 'bad_frame' });
    }
    io.to(topic).emit('event', { topic, seq: await sequences.next(topic), event });
    reply(ack, {});
  });

  socket.on('message.send', async (frame, ack) => {
    const { id, topic, body } = frame ?? {};
    if (!isText(id) || !isText(topic) || typeof body !== 'string') {
      return reply(ack, { error: 'bad_frame' });
    }
    const event = { kind: 'message.created', message: { id, body } };
    // socket.to() reaches the room without the sender, who gets the acknowledgement.
    socket.to(topic).emit('event', { topic, seq: await sequences.next(topic), event });
    reply(ack, { id });
  });

  socket.on('ping', (id, ack) => reply(ack, id));
});

// Loopback only: io.listen() alone would bind every interface.
const http = createServer();
io.attach(http);
http.listen(port, '127.0.0.1', () => {
  console.log(`socket.io peer listening on 127.0.0.1:${port}${redisUrl ? ' (redis adapter)' : ''}`);
});
