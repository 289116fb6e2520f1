//! The event bus over Redis. Every event, even on a single node, goes through Redis so a
//! second node works from the start:
//!
//! 1. `publish` runs one Lua script that numbers the event on its topic (`INCR`), appends it
//!    to the topic's bounded history and `PUBLISH`es it. Being one script, numbering and
//!    publishing happen in one order for every node.
//! 2. Each node holds one pub/sub connection subscribed to the pattern of all event channels
//!    and hands events to its local subscribers. Events that arrive together are handed over
//!    together ([`TopicBatch`]), one message per subscriber and topic, so a burst costs each
//!    socket one write rather than one per event.
//! 3. A subscriber that missed events asks `replay`; if the history no longer reaches back,
//!    it is told to resync from a snapshot.
//!
//! Known limit: every node receives every event, even for topics it has no subscriber for.
//! That is cheap for a few nodes; per-topic subscriptions are the step after that.

use actix::Recipient;
use async_trait::async_trait;
use futures_util::StreamExt;
use paranimo_actors::ids::{BookingId, UserId};
use paranimo_actors::ports::{EventBus, PortError, Replay, SubscriberId, TopicBatch, TopicEvent};
use paranimo_actors::protocol::{Event, ServerFrame, Topic};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Events kept per topic for replay after a reconnect.
pub const HISTORY_LEN: i64 = 1000;

/// Events kept for replay on `topic`. Room signalling is never replayed (a rejoin starts a
/// fresh negotiation) and carries network addresses, so it is not kept at all.
fn history_len(topic: Topic) -> i64 {
    match topic {
        Topic::Room(_) => 0,
        _ => HISTORY_LEN,
    }
}

/// How long a topic's history is kept after its last event.
pub const HISTORY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// How long a room participant stays "present" without a refresh.
pub const PRESENCE_TTL_SECONDS: i64 = 60;

const PUBLISH_SCRIPT: &str = r#"
local seq = redis.call('INCR', KEYS[1])
local frame = '{"type":"event","topic":' .. ARGV[1] .. ',"seq":' .. seq .. ',"event":' .. ARGV[2] .. '}'
if tonumber(ARGV[3]) > 0 then
  redis.call('RPUSH', KEYS[2], frame)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', KEYS[3], frame)
return seq
"#;

/// The topic's current sequence number and the frames after `since` (ARGV[1]), read in one
/// step so no event can slip in between; nothing is read when more were missed than history
/// keeps (ARGV[2]).
const REPLAY_SCRIPT: &str = r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local missed = current - tonumber(ARGV[1])
if missed <= 0 or missed > tonumber(ARGV[2]) then
  return {current, {}}
end
return {current, redis.call('LRANGE', KEYS[2], -missed, -1)}
"#;

/// Local subscribers per topic on this node.
type Subscribers = HashMap<Topic, HashMap<SubscriberId, Recipient<TopicBatch>>>;

/// Most pub/sub messages taken from Redis in one go (all of them already received), so one
/// burst is one batch per subscriber.
const MAX_BATCH: usize = 256;

/// Called on every node with the token hash of each session revoked anywhere.
pub type RevocationHandler = Box<dyn Fn(Vec<u8>) + Send + Sync>;

/// The Redis-backed event bus. Cheap to clone behind an `Arc`.
pub struct RedisBus {
    redis: ConnectionManager,
    prefix: String,
    script: redis::Script,
    replay_script: redis::Script,
    local: RwLock<Subscribers>,
    next_id: AtomicU64,
    on_revoked: RwLock<Option<RevocationHandler>>,
}

impl RedisBus {
    /// Connects and starts the node's pub/sub listener on the current runtime.
    pub async fn start(client: redis::Client, prefix: String) -> anyhow::Result<Arc<Self>> {
        let redis = ConnectionManager::new(client.clone()).await?;
        let bus = Arc::new(Self {
            redis,
            prefix,
            script: redis::Script::new(PUBLISH_SCRIPT),
            replay_script: redis::Script::new(REPLAY_SCRIPT),
            local: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            on_revoked: RwLock::new(None),
        });

        // Subscribe before serving, so nothing published after start-up is missed.
        let pubsub = subscribe_all(&client, &bus.prefix).await?;
        let listener = Arc::downgrade(&bus);
        actix_web::rt::spawn(listen(client, pubsub, listener));
        Ok(bus)
    }

    fn key(&self, kind: &str, topic: Topic) -> String {
        format!("{}{kind}:{topic}", self.prefix)
    }

    /// Sets what to do, on this node, when a session is revoked on any node.
    pub fn on_revoked(&self, handler: RevocationHandler) {
        *self.on_revoked.write().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    /// Tells every node (this one included) that these sessions are revoked, so their open
    /// websockets close at once wherever they are.
    pub async fn publish_revoked(&self, token_hashes: &[Vec<u8>]) -> Result<(), PortError> {
        let mut conn = self.redis.clone();
        for hash in token_hashes {
            redis::cmd("PUBLISH")
                .arg(revocation_channel(&self.prefix))
                .arg(hash.as_slice())
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_error)?;
        }
        Ok(())
    }

    fn revoked(&self, token_hash: Vec<u8>) {
        if let Some(handler) = self
            .on_revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            handler(token_hash);
        }
    }

    /// A connection for other Redis work (presence, readiness).
    pub fn connection(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Hands events of one topic, in `seq` order, to every local subscriber of it.
    fn deliver(&self, topic: Topic, events: Vec<TopicEvent>) {
        let local = self.local.read().unwrap_or_else(|e| e.into_inner());
        let Some(subscribers) = local.get(&topic) else {
            return;
        };
        let batch = TopicBatch(events.into());
        for recipient in subscribers.values() {
            // A full mailbox means a slow subscriber: the connection notices the gap in
            // sequence numbers and catches up from history, or is closed as too slow.
            if let Err(e) = recipient.try_send(batch.clone()) {
                tracing::debug!(%topic, error = %e, "subscriber mailbox refused events");
            }
        }
    }

    /// Delivers what one read from the pub/sub connection brought: revocations at once, and
    /// events grouped by topic, keeping each topic's order.
    fn dispatch(&self, messages: Vec<redis::Msg>) {
        let revocations = revocation_channel(&self.prefix);
        let mut by_topic: HashMap<Topic, Vec<TopicEvent>> = HashMap::new();
        for msg in messages {
            if msg.get_channel_name() == revocations {
                if let Ok(hash) = msg.get_payload::<Vec<u8>>() {
                    self.revoked(hash);
                }
                continue;
            }
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            match parse_frame(text) {
                Some(event) => by_topic.entry(event.topic).or_default().push(event),
                None => tracing::warn!("ignored an unreadable frame on the event channel"),
            }
        }
        for (topic, events) in by_topic {
            self.deliver(topic, events);
        }
    }

    /// How many subscribers on this node follow `topic` (for tests and diagnostics).
    pub fn local_subscribers(&self, topic: Topic) -> usize {
        let local = self.local.read().unwrap_or_else(|e| e.into_inner());
        local.get(&topic).map_or(0, HashMap::len)
    }

    fn local_topics(&self) -> Vec<Topic> {
        let local = self.local.read().unwrap_or_else(|e| e.into_inner());
        local.keys().copied().collect()
    }

    /// Marks `user` present in a room for [`PRESENCE_TTL_SECONDS`] and returns who is.
    pub async fn enter_presence(
        &self,
        room: BookingId,
        user: UserId,
    ) -> Result<Vec<UserId>, PortError> {
        let key = format!("{}presence:{room}", self.prefix);
        let now = chrono::Utc::now().timestamp();
        let mut conn = self.redis.clone();
        let (_, _, _, members): ((), (), (), Vec<String>) = redis::pipe()
            .atomic()
            .zrembyscore(&key, "-inf", now)
            .zadd(&key, user.to_string(), now + PRESENCE_TTL_SECONDS)
            .expire(&key, PRESENCE_TTL_SECONDS * 10)
            .zrange(&key, 0, -1)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(parse_users(members))
    }

    /// Removes `user` from a room's presence and returns who remains.
    pub async fn leave_presence(
        &self,
        room: BookingId,
        user: UserId,
    ) -> Result<Vec<UserId>, PortError> {
        let key = format!("{}presence:{room}", self.prefix);
        let now = chrono::Utc::now().timestamp();
        let mut conn = self.redis.clone();
        let (_, _, members): ((), (), Vec<String>) = redis::pipe()
            .atomic()
            .zrem(&key, user.to_string())
            .zrembyscore(&key, "-inf", now)
            .zrange(&key, 0, -1)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(parse_users(members))
    }
}

fn parse_users(members: Vec<String>) -> Vec<UserId> {
    members.iter().filter_map(|m| m.parse().ok()).collect()
}

fn redis_error(e: redis::RedisError) -> PortError {
    PortError::Unavailable(e.to_string())
}

/// Parses a frame as stored in history and published: an `event` server frame. The text
/// itself becomes the frame every local subscriber sends, without a copy.
fn parse_frame(text: String) -> Option<TopicEvent> {
    match serde_json::from_str::<ServerFrame>(&text) {
        Ok(ServerFrame::Event { topic, seq, event }) => Some(TopicEvent {
            topic,
            seq,
            event: Arc::new(event),
            frame: text.into(),
        }),
        _ => None,
    }
}

fn revocation_channel(prefix: &str) -> String {
    format!("{prefix}revoked")
}

async fn subscribe_all(client: &redis::Client, prefix: &str) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(format!("{prefix}ev:*")).await?;
    pubsub.subscribe(revocation_channel(prefix)).await?;
    Ok(pubsub)
}

/// Reads the node's pub/sub connection until the bus is dropped. When Redis goes away it
/// reconnects with backoff and replays each followed topic from history, so local
/// subscribers see a gap-free sequence.
async fn listen(
    client: redis::Client,
    mut pubsub: redis::aio::PubSub,
    bus: std::sync::Weak<RedisBus>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        {
            let mut messages = pubsub.on_message().ready_chunks(MAX_BATCH);
            while let Some(batch) = messages.next().await {
                let Some(bus) = bus.upgrade() else { return };
                bus.dispatch(batch);
            }
        }
        let Some(strong) = bus.upgrade() else { return };
        tracing::error!("lost the Redis event subscription; reconnecting");
        drop(strong);

        loop {
            tokio::time::sleep(backoff).await;
            let Some(strong) = bus.upgrade() else { return };
            match subscribe_all(&client, &strong.prefix).await {
                Ok(fresh) => {
                    pubsub = fresh;
                    backoff = Duration::from_millis(100);
                    catch_up(&strong).await;
                    break;
                }
                Err(e) => {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    tracing::error!(error = %e, "Redis still unreachable");
                }
            }
        }
    }
}

/// After a reconnect, replays each followed topic's recent history to local subscribers;
/// they drop what they already have by sequence number.
async fn catch_up(bus: &RedisBus) {
    for topic in bus.local_topics() {
        match bus.replay(topic, 0).await {
            Ok(Replay::Events(events)) if !events.is_empty() => bus.deliver(topic, events),
            Ok(Replay::Events(_)) => {}
            Ok(Replay::TooOld { .. }) => {}
            Err(e) => tracing::error!(%topic, error = %e, "catch-up after reconnect failed"),
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, topic: Topic, event: Event) -> Result<u64, PortError> {
        let topic_json =
            serde_json::to_string(&topic).map_err(|e| PortError::Unavailable(e.to_string()))?;
        let event_json =
            serde_json::to_string(&event).map_err(|e| PortError::Unavailable(e.to_string()))?;
        let mut conn = self.redis.clone();
        let seq: u64 = self
            .script
            .key(self.key("seq", topic))
            .key(self.key("hist", topic))
            .key(self.key("ev", topic))
            .arg(topic_json)
            .arg(event_json)
            .arg(history_len(topic))
            .arg(HISTORY_TTL_SECONDS)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(seq)
    }

    async fn subscribe(
        &self,
        topic: Topic,
        id: SubscriberId,
        recipient: Recipient<TopicBatch>,
    ) -> Result<u64, PortError> {
        {
            let mut local = self.local.write().unwrap_or_else(|e| e.into_inner());
            local.entry(topic).or_default().insert(id, recipient);
        }
        self.current_seq(topic).await
    }

    fn unsubscribe(&self, topic: Topic, id: SubscriberId) {
        let mut local = self.local.write().unwrap_or_else(|e| e.into_inner());
        if let Some(subscribers) = local.get_mut(&topic) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                local.remove(&topic);
            }
        }
    }

    async fn replay(&self, topic: Topic, since: u64) -> Result<Replay, PortError> {
        // Only the missed tail is read and parsed: thousands of clients resuming at once
        // must not each parse the whole history.
        let mut conn = self.redis.clone();
        let (current, missed): (u64, Vec<String>) = self
            .replay_script
            .key(self.key("seq", topic))
            .key(self.key("hist", topic))
            .arg(since)
            .arg(history_len(topic))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if since >= current {
            return Ok(Replay::Events(Vec::new()));
        }

        let events: Vec<TopicEvent> = missed.into_iter().filter_map(parse_frame).collect();
        let complete = events.len() as u64 == current - since
            && events.first().is_some_and(|e| e.seq == since + 1);
        if !complete {
            return Ok(Replay::TooOld { seq: current });
        }
        Ok(Replay::Events(events))
    }

    fn next_subscriber_id(&self) -> SubscriberId {
        SubscriberId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

impl RedisBus {
    /// The last sequence number used on a topic (0 before its first event).
    pub async fn current_seq(&self, topic: Topic) -> Result<u64, PortError> {
        let mut conn = self.redis.clone();
        let seq: Option<u64> = redis::cmd("GET")
            .arg(self.key("seq", topic))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(seq.unwrap_or(0))
    }
}
