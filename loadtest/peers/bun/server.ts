// Reference peer: Bun's built-in websocket server, using its native pub/sub
// (`ws.subscribe`, `server.publish`), as a team choosing Bun would write it. It speaks the
// small generic protocol described in ../README.md so that the same load generator can
// drive it and Paranimo.
//
// Run: PORT=9103 node_modules/.bin/bun server.ts   (listens on ws://127.0.0.1:$PORT/ws)

const port = Number(process.env.PORT ?? 9103);

/** Frames above this size are refused, as Paranimo refuses them. */
const MAX_FRAME_BYTES = 64 * 1024;

/** The last sequence number given out on each topic. */
const seqs = new Map<string, number>();

function nextSeq(topic: string): number {
  const seq = (seqs.get(topic) ?? 0) + 1;
  seqs.set(topic, seq);
  return seq;
}

const isText = (value: unknown): value is string => typeof value === "string" && value.length > 0;

type Reply = Record<string, unknown>;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (new URL(req.url).pathname === "/ws" && server.upgrade(req)) return;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    maxPayloadLength: MAX_FRAME_BYTES,
    message(ws, data) {
      let frame: any = null;
      if (typeof data === "string") {
        try {
          frame = JSON.parse(data);
        } catch {
          // Malformed JSON falls through to the error reply.
        }
      }
      ws.send(JSON.stringify(handle(ws, frame)));
    },
    // Bun unsubscribes a closed socket from its topics by itself: no close handler needed.
  },
});

function handle(ws: Bun.ServerWebSocket<unknown>, frame: any): Reply {
  switch (frame?.type) {
    case "subscribe":
      if (!isText(frame.topic)) break;
      ws.subscribe(frame.topic);
      return { type: "subscribed", topic: frame.topic, seq: seqs.get(frame.topic) ?? 0 };
    case "publish": {
      if (!isText(frame.topic) || typeof frame.event !== "object" || frame.event === null) break;
      const { topic, event } = frame;
      // server.publish reaches every subscriber, the publisher included if it subscribed.
      server.publish(topic, JSON.stringify({ type: "event", topic, seq: nextSeq(topic), event }));
      return frame.id === undefined ? { type: "ack" } : { type: "ack", id: frame.id };
    }
    case "message.send": {
      if (!isText(frame.id) || !isText(frame.topic) || typeof frame.body !== "string") break;
      const { id, topic, body } = frame;
      const event = { kind: "message.created", message: { id, body } };
      // ws.publish skips the sender, who gets the ack instead.
      ws.publish(topic, JSON.stringify({ type: "event", topic, seq: nextSeq(topic), event }));
      return { type: "ack", id };
    }
    case "ping":
      return { type: "pong", id: frame.id };
  }
  return { type: "error", code: "bad_frame" };
}

console.log(`bun peer listening on ws://127.0.0.1:${server.port}/ws`);
