//! The smallest websocket pub/sub server we could write on tokio-tungstenite: the machine's
//! practical limit for connections, broadcast and relay in the load comparison. It speaks
//! the generic protocol of `../README.md` (subscribe, publish, ping, chat messages).
//!
//! Each connection is one task that reads frames and drains its own bounded outbox. A topic
//! is a map of outboxes behind one mutex; an event is serialised once and shared between
//! its subscribers (`Utf8Bytes` is reference-counted). No authentication, no persistence,
//! no history: everything Paranimo does beyond this is what the comparison prices.
//!
//! Run: `PORT=9104 target/release/paranimo-peer-tokio-minimal` (ws://127.0.0.1:$PORT/ws).

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Read buffer of each connection, allocated up front. tungstenite's default (128 KiB)
/// would be most of the memory of an idle connection; our frames are a few hundred bytes
/// (a larger frame grows the buffer as it arrives).
const READ_BUFFER_BYTES: usize = 1024;

/// Outgoing bytes gathered before a write to the socket; `flush` sends the rest at once.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Frames above this size are refused, as Paranimo refuses them.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Events waiting for one connection. A subscriber that falls this far behind is
/// disconnected rather than buffered without bound (Paranimo's outbox is the same size).
const OUTBOX_CAPACITY: usize = 256;

type ConnId = u64;

/// One connection's place in a topic: where its events go, and how to tell it that it
/// fell behind.
struct Subscriber {
    outbox: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Notify>,
}

#[derive(Default)]
struct Topic {
    seq: u64,
    subscribers: HashMap<ConnId, Subscriber>,
}

/// Every topic, by name. Invariant: a connection appears in a topic only while its task
/// runs; the task removes itself from each topic it joined when it ends.
#[derive(Clone, Default)]
struct Hub(Arc<Mutex<HashMap<String, Topic>>>);

impl Hub {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a subscriber and returns the topic's last sequence number.
    fn subscribe(&self, name: &str, id: ConnId, subscriber: Subscriber) -> u64 {
        let mut topics = self.topics();
        let topic = topics.entry(name.to_owned()).or_default();
        topic.subscribers.insert(id, subscriber);
        topic.seq
    }

    /// Numbers `event` and queues it for every subscriber of `name` except `except`.
    fn publish(&self, name: &str, event: Value, except: Option<ConnId>) {
        let mut topics = self.topics();
        let topic = topics.entry(name.to_owned()).or_default();
        topic.seq += 1;
        let frame = json!({ "type": "event", "topic": name, "seq": topic.seq, "event": event });
        let frame = Utf8Bytes::from(frame.to_string());
        topic.subscribers.retain(|id, sub| {
            if Some(*id) == except {
                return true;
            }
            match sub.outbox.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sub.kick.notify_one();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn leave(&self, id: ConnId, joined: &[String]) {
        let mut topics = self.topics();
        for name in joined {
            if let Some(topic) = topics.get_mut(name) {
                topic.subscribers.remove(&id);
            }
        }
    }
}

/// The client frames of the generic protocol.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Frame {
    #[serde(rename = "subscribe")]
    Subscribe { topic: String },
    #[serde(rename = "publish")]
    Publish {
        topic: String,
        event: Map<String, Value>,
        id: Option<Value>,
    },
    #[serde(rename = "message.send")]
    MessageSend {
        id: String,
        topic: String,
        body: String,
    },
    #[serde(rename = "ping")]
    Ping { id: Option<Value> },
}

/// One connection's state beside its socket.
struct Conn {
    id: ConnId,
    hub: Hub,
    /// Made at the first subscribe: an idle connection that follows nothing needs no queue.
    outbox: Option<mpsc::Sender<Utf8Bytes>>,
    queued: Option<mpsc::Receiver<Utf8Bytes>>,
    kick: Arc<Notify>,
    joined: Vec<String>,
}

impl Conn {
    /// Carries out one text frame and returns the reply to send.
    fn handle(&mut self, text: &str) -> Value {
        let frame = match serde_json::from_str::<Frame>(text) {
            Ok(frame) => frame,
            Err(_) => return json!({ "type": "error", "code": "bad_frame" }),
        };
        match frame {
            Frame::Subscribe { topic } => {
                let outbox = self.outbox.get_or_insert_with(|| {
                    let (outbox, queued) = mpsc::channel(OUTBOX_CAPACITY);
                    self.queued = Some(queued);
                    outbox
                });
                let subscriber = Subscriber {
                    outbox: outbox.clone(),
                    kick: self.kick.clone(),
                };
                let seq = self.hub.subscribe(&topic, self.id, subscriber);
                if !self.joined.contains(&topic) {
                    self.joined.push(topic.clone());
                }
                json!({ "type": "subscribed", "topic": topic, "seq": seq })
            }
            Frame::Publish { topic, event, id } => {
                self.hub.publish(&topic, Value::Object(event), None);
                match id {
                    Some(id) => json!({ "type": "ack", "id": id }),
                    None => json!({ "type": "ack" }),
                }
            }
            Frame::MessageSend { id, topic, body } => {
                let message = json!({ "id": id, "body": body });
                let event = json!({ "kind": "message.created", "message": message });
                self.hub.publish(&topic, event, Some(self.id));
                json!({ "type": "ack", "id": id })
            }
            Frame::Ping { id } => json!({ "type": "pong", "id": id }),
        }
    }
}

/// The next queued event, or never when the connection has not subscribed yet.
async fn next_queued(queued: &mut Option<mpsc::Receiver<Utf8Bytes>>) -> Option<Utf8Bytes> {
    match queued {
        Some(queued) => queued.recv().await,
        None => std::future::pending().await,
    }
}

/// Accepts the upgrade on `/ws` only.
// The signature is tungstenite's handshake callback; its large error type is not ours.
#[allow(clippy::result_large_err)]
fn only_ws_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == "/ws" {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(None);
    *refusal.status_mut() = StatusCode::NOT_FOUND;
    Err(refusal)
}

async fn serve(stream: TcpStream, id: ConnId, hub: Hub) {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let accepted =
        tokio_tungstenite::accept_hdr_async_with_config(stream, only_ws_path, Some(config)).await;
    let Ok(mut ws) = accepted else { return };

    let kick = Arc::new(Notify::new());
    let mut conn = Conn {
        id,
        hub,
        outbox: None,
        queued: None,
        kick: kick.clone(),
        joined: Vec::new(),
    };

    loop {
        tokio::select! {
            incoming = ws.next() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => conn.handle(text.as_str()),
                    Some(Ok(Message::Binary(_))) => json!({ "type": "error", "code": "bad_frame" }),
                    // Pings are answered by tungstenite itself on the next read.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if ws.send(Message::text(reply.to_string())).await.is_err() {
                    break;
                }
            }
            Some(frame) = next_queued(&mut conn.queued) => {
                // Write everything already queued, then flush once: a burst of events
                // costs one system call rather than one each.
                let mut batch = vec![frame];
                while let Some(Ok(more)) = conn.queued.as_mut().map(|q| q.try_recv()) {
                    batch.push(more);
                }
                let mut written = Ok(());
                for frame in batch {
                    written = ws.feed(Message::Text(frame)).await;
                    if written.is_err() {
                        break;
                    }
                }
                if written.is_err() || ws.flush().await.is_err() {
                    break;
                }
            }
            () = kick.notified() => {
                let closing = json!({ "type": "closing", "reason": "too slow" });
                let _ = ws.send(Message::text(closing.to_string())).await;
                let _ = ws.close(None).await;
                break;
            }
        }
    }
    conn.hub.leave(conn.id, &conn.joined);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(std::io::Error::other)?,
        Err(_) => 9104,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("tokio-minimal peer listening on ws://127.0.0.1:{port}/ws");

    let hub = Hub::default();
    let next_id = AtomicU64::new(1);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, id, hub.clone()));
            }
            // Out of file descriptors, typically: wait for some to close instead of spinning.
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
