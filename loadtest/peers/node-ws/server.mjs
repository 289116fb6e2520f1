// Reference peer: the websocket server a Node.js team would write on the `ws` package.
// It speaks the small generic protocol described in ../README.md (subscribe, publish,
// ping, chat messages) so that the same load generator can drive it and Paranimo.
//
// Run: PORT=9101 node server.mjs   (listens on ws://127.0.0.1:$PORT/ws)

import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 9101);

/** Frames above this size are refused, as Paranimo refuses them. */
const MAX_FRAME_BYTES = 64 * 1024;

/** @type {Map<string, {seq: number, subscribers: Set<WebSocket>}>} */
const topics = new Map();

function topicNamed(name) {
  let topic = topics.get(name);
  if (!topic) {
    topic = { seq: 0, subscribers: new Set() };
    topics.set(name, topic);
  }
  return topic;
}

/** Numbers the event and sends it, serialised once, to every subscriber but `except`. */
function deliver(name, event, except) {
  const topic = topicNamed(name);
  topic.seq += 1;
  const frame = JSON.stringify({ type: 'event', topic: name, seq: topic.seq, event });
  for (const socket of topic.subscribers) {
    if (socket !== except && socket.readyState === WebSocket.OPEN) socket.send(frame);
  }
}

const isText = (value) => typeof value === 'string' && value.length > 0;

/** Answers one frame; returns the reply object, or an error when the frame is not understood. */
function handle(socket, joined, frame) {
  switch (frame?.type) {
    case 'subscribe':
      if (!isText(frame.topic)) break;
      topicNamed(frame.topic).subscribers.add(socket);
      joined.add(frame.topic);
      return { type: 'subscribed', topic: frame.topic, seq: topicNamed(frame.topic).seq };
    case 'publish':
      if (!isText(frame.topic) || typeof frame.event !== 'object' || frame.event === null) break;
      deliver(frame.topic, frame.event, null);
      return frame.id === undefined ? { type: 'ack' } : { type: 'ack', id: frame.id };
    case 'message.send':
      if (!isText(frame.id) || !isText(frame.topic) || typeof frame.body !== 'string') break;
      deliver(
        frame.topic,
        { kind: 'message.created', message: { id: frame.id, body: frame.body } },
        socket,
      );
      return { type: 'ack', id: frame.id };
    case 'ping':
      return { type: 'pong', id: frame.id };
  }
  return { type: 'error', code: 'bad_frame' };
}

const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws', maxPayload: MAX_FRAME_BYTES });

server.on('connection', (socket) => {
  const joined = new Set();

  socket.on('message', (data, isBinary) => {
    let frame = null;
    if (!isBinary) {
      try {
        frame = JSON.parse(data.toString());
      } catch {
        // Malformed JSON falls through to the error reply.
      }
    }
    socket.send(JSON.stringify(handle(socket, joined, frame)));
  });

  // One place for clean-up: a socket leaves every topic it joined when it closes.
  socket.on('close', () => {
    for (const name of joined) topics.get(name)?.subscribers.delete(socket);
  });
  // Without a listener an 'error' event would end the process; the 'close' that follows
  // it does the clean-up.
  socket.on('error', () => {});
});

server.on('listening', () => console.log(`node-ws peer listening on ws://127.0.0.1:${port}/ws`));
