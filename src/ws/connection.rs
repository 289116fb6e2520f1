//! `ConnectionActor`: one per websocket. It owns the socket, parses and validates frames,
//! enforces limits, follows topics with gap-free sequence numbers, and forwards commands to
//! the actor that owns them.
//!
//! Invariants:
//! - Per topic, frames leave in strictly rising `seq` order with no gap: a gap triggers a
//!   replay from history, or a `resync` when history does not reach back.
//! - The outgoing queue is bounded ([`OUTBOX_CAPACITY`]); a client that cannot keep up is told
//!   why and closed, never allowed to grow memory.
//! - Frames go from this actor straight into the socket's sending half ([`Flush`]), inside the
//!   actor's own task: no extra task or channel per connection, and an event's frame is the
//!   same shared buffer for every subscriber on the node.
//! - All clean-up (topics, rooms, the session index) happens in `stopped`.

use crate::state::AppState;
use crate::store::users::UserRecord;
use actix::prelude::*;
use actix_web::web;
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Message, ProtocolError,
};
use bytestring::ByteString;
use futures_util::{Sink, SinkExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use paranimo_actors::ids::BookingId;
use paranimo_actors::mailbox::{MailboxError, Post};
use paranimo_actors::policy::{Action, Principal, may};
use paranimo_actors::ports::{EventBus, Replay, SubscriberId, TopicBatch, TopicEvent};
use paranimo_actors::protocol::{
    ClientFrame, ErrorCode, MAX_CLIENT_ID_BYTES, PROTOCOL_VERSION, ServerFrame, Topic,
};
use paranimo_actors::room::{Admit, Join, Leave, RoomError, Signal};
use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// How often the server pings the client.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// A client silent for this long (no frame, no pong) is considered gone.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Frames waiting to be written to one socket. A healthy browser drains this in
/// milliseconds; a full queue means the client stopped reading. It holds more than a whole
/// topic history, so a client catching up after a reconnect is never taken for a slow one.
/// The queue's memory grows only with what is actually waiting.
pub const OUTBOX_CAPACITY: usize = 2 * crate::bus::HISTORY_LEN as usize + 64;

/// Incoming events queued for this actor before the bus sees it as slow.
const MAILBOX_CAPACITY: usize = 1024;

/// One clock for every connection's rate limiter: making a clock probes the CPU each time.
static CLOCK: std::sync::LazyLock<governor::clock::DefaultClock> =
    std::sync::LazyLock::new(Default::default);

/// Most topics one connection may follow at once.
const MAX_TOPICS: usize = 64;

/// Sustained frames per second a client may send, and the burst above it.
const FRAMES_PER_SECOND: u32 = 20;
const FRAME_BURST: u32 = 40;

/// An idle queue keeps at most this many slots, so one burst does not pin its memory.
const OUTBOX_IDLE_SLOTS: usize = 8;

/// Asks the connection to close, with the reason told to the client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServerClose {
    pub reason: &'static str,
}

/// Where one followed topic stands.
struct TopicState {
    /// The last sequence number delivered to the client.
    last: u64,
    /// While catching up, live events wait here so they leave after the replay, in order.
    pending: Option<Vec<TopicEvent>>,
}

/// One websocket. See the module documentation for its invariants.
pub struct ConnectionActor {
    app: web::Data<AppState>,
    principal: Principal,
    subscriber: SubscriberId,
    token_hash: Vec<u8>,
    /// The socket's sending half.
    session: actix_ws::Session,
    /// Frames waiting for the socket; at most [`OUTBOX_CAPACITY`].
    outbox: VecDeque<Message>,
    /// Whether a [`Flush`] is running in this actor's context.
    flushing: bool,
    topics: HashMap<Topic, TopicState>,
    rooms: HashSet<BookingId>,
    limiter: DefaultDirectRateLimiter,
    last_heard: Instant,
    /// Set once the connection is closing: nothing more is queued or logged for it.
    closing: bool,
    span: tracing::Span,
}

impl ConnectionActor {
    /// Sets up the actor around an upgraded socket: the incoming stream feeds the actor, and
    /// the actor writes to the session itself (see [`Flush`]).
    pub fn new(
        ctx: &mut Context<Self>,
        app: web::Data<AppState>,
        user: &UserRecord,
        token_hash: Vec<u8>,
        session: actix_ws::Session,
        stream: AggregatedMessageStream,
    ) -> Self {
        ctx.add_stream(stream);

        let subscriber = app.bus.next_subscriber_id();
        let span = tracing::info_span!("ws", user_id = %user.id, conn = subscriber.0);
        let per_second = NonZeroU32::new(FRAMES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(FRAME_BURST).unwrap_or(NonZeroU32::MIN);
        Self {
            app,
            principal: Principal {
                user_id: user.id,
                role: user.role,
            },
            subscriber,
            token_hash,
            session,
            outbox: VecDeque::new(),
            flushing: false,
            topics: HashMap::new(),
            rooms: HashSet::new(),
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(per_second).allow_burst(burst),
                CLOCK.clone(),
            ),
            last_heard: Instant::now(),
            closing: false,
            span,
        }
    }

    /// Queues text for the client (see [`Self::queue`]).
    fn push(&mut self, ctx: &mut Context<Self>, text: ByteString) {
        self.queue(ctx, Message::Text(text));
    }

    /// Puts a frame (text, ping or pong alike) in the queue and makes sure a [`Flush`] is
    /// moving it, or closes the connection when the queue is (nearly) full. Two places stay
    /// free for the `closing` frame and the close itself.
    fn queue(&mut self, ctx: &mut Context<Self>, message: Message) {
        if self.closing {
            return;
        }
        if self.outbox.len() + 2 >= OUTBOX_CAPACITY {
            tracing::warn!(parent: &self.span, "client is not reading; closing its connection");
            // What waits would reach the client only after everything already in flight; it
            // resumes with `since` instead, so let the memory go now.
            self.outbox.clear();
            self.close(
                ctx,
                "too slow: the connection could not keep up",
                CloseCode::Policy,
            );
            return;
        }
        self.outbox.push_back(message);
        if !std::mem::replace(&mut self.flushing, true) {
            ctx.spawn(Flush);
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: &ServerFrame) {
        match serde_json::to_string(frame) {
            Ok(text) => self.push(ctx, text.into()),
            Err(e) => {
                tracing::error!(parent: &self.span, error = %e, "could not serialise a frame")
            }
        }
    }

    fn error(&mut self, ctx: &mut Context<Self>, id: Option<String>, code: ErrorCode, msg: &str) {
        self.send(ctx, &ServerFrame::error(id, code, msg));
    }

    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, code: CloseCode) {
        if std::mem::replace(&mut self.closing, true) {
            return;
        }
        let closing = ServerFrame::Closing {
            reason: reason.to_owned(),
        };
        if let Ok(text) = serde_json::to_string(&closing) {
            self.outbox.push_back(Message::Text(text.into()));
        }
        let reason = CloseReason {
            code,
            description: None,
        };
        self.outbox.push_back(Message::Close(Some(reason)));
        ctx.stop();
    }

    fn handle_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let over_limit = self.limiter.check().is_err();
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(_) if over_limit => {
                self.error(
                    ctx,
                    None,
                    ErrorCode::RateLimited,
                    "too many frames; slow down",
                );
                return;
            }
            Err(e) => {
                let message = format!("not a valid frame: {e}");
                self.error(ctx, None, ErrorCode::BadFrame, &message);
                return;
            }
        };
        // Refused frames name their id, so the client knows which command to send again.
        if over_limit {
            let id = command_id(&frame).map(str::to_owned);
            self.error(
                ctx,
                id,
                ErrorCode::RateLimited,
                "too many frames; slow down",
            );
            return;
        }
        if let Some(id) = command_id(&frame)
            && (id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES)
        {
            self.error(
                ctx,
                None,
                ErrorCode::Invalid,
                "the frame id must be 1 to 64 bytes",
            );
            return;
        }

        match frame {
            ClientFrame::Subscribe { topic, since } => self.subscribe(ctx, topic, since),
            ClientFrame::Unsubscribe { topic } => {
                if !matches!(topic, Topic::Room(_)) {
                    self.unfollow(topic);
                }
                self.send(ctx, &ServerFrame::Unsubscribed { topic });
            }
            ClientFrame::Ping { id } => self.send(ctx, &ServerFrame::Pong { id }),
            ClientFrame::MessageSend {
                id,
                booking_id,
                body,
            } => self.post_message(ctx, id, booking_id, body),
            ClientFrame::RoomJoin { id, booking_id } => self.join_room(ctx, id, booking_id),
            ClientFrame::RoomLeave { id, booking_id } => {
                self.leave_room(booking_id);
                self.send(ctx, &ServerFrame::ack(id));
            }
            ClientFrame::RoomSignal {
                id,
                booking_id,
                payload,
            } => self.relay_signal(ctx, id, booking_id, payload),
        }
    }

    /// Follows a topic the policy allows, replaying from `since` when given.
    fn subscribe(&mut self, ctx: &mut Context<Self>, topic: Topic, since: Option<u64>) {
        if !may(Some(&self.principal), Action::Subscribe(topic)) {
            self.error(ctx, None, ErrorCode::NotFound, "no such topic");
            return;
        }
        if self.topics.len() >= MAX_TOPICS && !self.topics.contains_key(&topic) {
            self.error(
                ctx,
                None,
                ErrorCode::Invalid,
                "too many topics on one connection",
            );
            return;
        }
        self.follow(ctx, topic, since, |act, ctx, topic, seq| {
            act.send(ctx, &ServerFrame::Subscribed { topic, seq });
        });
    }

    /// Registers with the bus (events wait in `pending` meanwhile), then catches up from
    /// `since` or starts at the topic's current sequence, then calls `done`.
    fn follow(
        &mut self,
        ctx: &mut Context<Self>,
        topic: Topic,
        since: Option<u64>,
        done: impl FnOnce(&mut Self, &mut Context<Self>, Topic, u64) + 'static,
    ) {
        self.topics.insert(
            topic,
            TopicState {
                last: 0,
                pending: Some(Vec::new()),
            },
        );
        let bus = self.app.bus.clone();
        let id = self.subscriber;
        let recipient = ctx.address().recipient();
        let subscribe = async move { bus.subscribe(topic, id, recipient).await };

        ctx.spawn(subscribe.into_actor(self).map(move |current, act, ctx| {
            // Unsubscribed (or gone) before the bus registered us: undo the registration,
            // which `unfollow` could not, and say nothing more about this topic.
            if !act.topics.contains_key(&topic) {
                act.app.bus.unsubscribe(topic, id);
                return;
            }
            let current = match current {
                Ok(seq) => seq,
                Err(e) => {
                    tracing::error!(parent: &act.span, %topic, error = %e, "subscribe failed");
                    act.unfollow(topic);
                    if let Topic::Room(booking) = topic {
                        act.rooms.remove(&booking);
                    }
                    act.error(
                        ctx,
                        None,
                        ErrorCode::Internal,
                        "could not subscribe; try again",
                    );
                    return;
                }
            };
            match since {
                Some(since) if since < current => act.catch_up(ctx, topic, since, done),
                // The client has seen more than the topic holds: its numbering restarted
                // (Redis lost its data). Nothing can be replayed, so the client refetches.
                Some(since) if since > current => {
                    act.set_last(topic, current);
                    act.send(
                        ctx,
                        &ServerFrame::Resync {
                            topic,
                            seq: current,
                        },
                    );
                    act.drain_pending(ctx, topic);
                    done(act, ctx, topic, current);
                }
                _ => {
                    if let Some(state) = act.topics.get_mut(&topic) {
                        state.last = current;
                    }
                    act.drain_pending(ctx, topic);
                    done(act, ctx, topic, current);
                }
            }
        }));
    }

    /// Replays what was missed after `since`, then releases the events that waited.
    fn catch_up(
        &mut self,
        ctx: &mut Context<Self>,
        topic: Topic,
        since: u64,
        done: impl FnOnce(&mut Self, &mut Context<Self>, Topic, u64) + 'static,
    ) {
        let bus = self.app.bus.clone();
        let replay = async move { bus.replay(topic, since).await };
        ctx.spawn(replay.into_actor(self).map(move |replayed, act, ctx| {
            if !act.topics.contains_key(&topic) {
                return;
            }
            match replayed {
                Ok(Replay::Events(events)) => {
                    act.set_last(topic, since);
                    for event in events {
                        act.deliver(ctx, event);
                    }
                }
                Ok(Replay::TooOld { seq }) => {
                    act.set_last(topic, seq);
                    act.send(ctx, &ServerFrame::Resync { topic, seq });
                }
                Err(e) => {
                    tracing::error!(parent: &act.span, %topic, error = %e, "replay failed");
                    act.set_last(topic, 0);
                    act.send(ctx, &ServerFrame::Resync { topic, seq: 0 });
                }
            }
            act.drain_pending(ctx, topic);
            let last = act.topics.get(&topic).map(|s| s.last).unwrap_or(0);
            done(act, ctx, topic, last);
        }));
    }

    fn set_last(&mut self, topic: Topic, seq: u64) {
        if let Some(state) = self.topics.get_mut(&topic) {
            state.last = seq;
        }
    }

    /// Delivers waiting events in order. A gap that remains (history trimmed meanwhile)
    /// becomes a `resync` rather than a silent loss.
    fn drain_pending(&mut self, ctx: &mut Context<Self>, topic: Topic) {
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        let mut waiting = state.pending.take().unwrap_or_default();
        waiting.sort_by_key(|e| e.seq);
        for event in waiting {
            let last = self.topics.get(&topic).map(|s| s.last).unwrap_or(0);
            if event.seq > last + 1 {
                self.set_last(topic, event.seq);
                self.send(
                    ctx,
                    &ServerFrame::Resync {
                        topic,
                        seq: event.seq,
                    },
                );
                continue;
            }
            self.deliver(ctx, event);
        }
    }

    /// Sends one event if it is the next in its topic's sequence; older ones are dropped.
    fn deliver(&mut self, ctx: &mut Context<Self>, event: TopicEvent) {
        let Some(state) = self.topics.get_mut(&event.topic) else {
            return;
        };
        if event.seq <= state.last {
            return;
        }
        state.last = event.seq;
        self.push(ctx, event.frame.clone());
    }

    fn unfollow(&mut self, topic: Topic) {
        if self.topics.remove(&topic).is_some() {
            self.app.bus.unsubscribe(topic, self.subscriber);
        }
    }

    fn post_message(
        &mut self,
        ctx: &mut Context<Self>,
        id: String,
        booking: BookingId,
        body: String,
    ) {
        let post = Post {
            sender: self.principal,
            booking_id: booking,
            client_msg_id: id.clone(),
            body,
        };
        let mailbox = self.app.mailbox(self.principal.user_id);
        ctx.spawn(
            mailbox
                .send(post)
                .into_actor(self)
                .map(move |result, act, ctx| {
                    let frame = match result {
                        Ok(Ok(message)) => ServerFrame::Ack {
                            id,
                            message: Some(message),
                            room: None,
                        },
                        Ok(Err(MailboxError::NotFound)) => ServerFrame::error(
                            Some(id),
                            ErrorCode::NotFound,
                            "conversation not found",
                        ),
                        Ok(Err(MailboxError::Invalid(reason))) => {
                            ServerFrame::error(Some(id), ErrorCode::Invalid, reason)
                        }
                        Ok(Err(MailboxError::Port(
                            paranimo_actors::ports::PortError::Conflict,
                        ))) => ServerFrame::error(
                            Some(id),
                            ErrorCode::Invalid,
                            "that id was used for another message",
                        ),
                        Ok(Err(e)) => act.internal(id, &e),
                        Err(e) => act.internal(id, &e),
                    };
                    act.send(ctx, &frame);
                }),
        );
    }

    fn internal(&self, id: String, cause: &dyn std::fmt::Display) -> ServerFrame {
        tracing::error!(parent: &self.span, error = %cause, "command failed");
        ServerFrame::error(
            Some(id),
            ErrorCode::Internal,
            "something went wrong; nothing changed",
        )
    }

    /// Enters a room in three steps: the room first says whether we may enter at all, so a
    /// stranger never follows its topic even for a moment; then we follow the topic, so no
    /// signal sent right after our arrival is missed; then we enter, which announces us. We
    /// count as inside from the start, so signalling in answer to the presence event (which
    /// can arrive before our ack) is accepted; everything is undone if refused.
    fn join_room(&mut self, ctx: &mut Context<Self>, id: String, booking: BookingId) {
        if !self.rooms.insert(booking) {
            self.error(ctx, Some(id), ErrorCode::Invalid, "already in this room");
            return;
        }
        let who = self.principal;
        let room = self.app.room(booking);
        ctx.spawn(
            room.send(Admit { who })
                .into_actor(self)
                .map(move |admitted, act, ctx| {
                    let refusal = match admitted {
                        Ok(Ok(())) => {
                            act.enter_room(ctx, id, booking);
                            return;
                        }
                        Ok(Err(e)) => room_error(id, e, act),
                        Err(e) => act.internal(id, &e),
                    };
                    act.rooms.remove(&booking);
                    act.send(ctx, &refusal);
                }),
        );
    }

    fn enter_room(&mut self, ctx: &mut Context<Self>, id: String, booking: BookingId) {
        let topic = Topic::Room(booking);
        let who = self.principal;
        self.follow(ctx, topic, None, move |act, ctx, topic, _seq| {
            let room = act.app.room(booking);
            ctx.spawn(
                room.send(Join { who })
                    .into_actor(act)
                    .map(move |joined, act, ctx| {
                        let refused = |act: &mut Self| {
                            act.rooms.remove(&booking);
                            act.unfollow(topic);
                        };
                        let frame = match joined {
                            Ok(Ok(state)) => {
                                tracing::info!(parent: &act.span, room = %booking, "entered room");
                                ServerFrame::Ack {
                                    id,
                                    message: None,
                                    room: Some(state),
                                }
                            }
                            Ok(Err(e)) => {
                                refused(act);
                                room_error(id, e, act)
                            }
                            Err(e) => {
                                refused(act);
                                act.internal(id, &e)
                            }
                        };
                        act.send(ctx, &frame);
                    }),
            );
        });
    }

    fn leave_room(&mut self, booking: BookingId) {
        if self.rooms.remove(&booking) {
            self.app.room(booking).do_send(Leave {
                who: self.principal.user_id,
            });
            self.unfollow(Topic::Room(booking));
        }
    }

    fn relay_signal(
        &mut self,
        ctx: &mut Context<Self>,
        id: String,
        booking: BookingId,
        payload: serde_json::Value,
    ) {
        if !self.rooms.contains(&booking) {
            self.error(ctx, Some(id), ErrorCode::NotFound, "join the room first");
            return;
        }
        let signal = Signal {
            from: self.principal.user_id,
            payload,
        };
        let room = self.app.room(booking);
        ctx.spawn(
            room.send(signal)
                .into_actor(self)
                .map(move |sent, act, ctx| {
                    let frame = match sent {
                        Ok(Ok(())) => ServerFrame::ack(id),
                        Ok(Err(e)) => room_error(id, e, act),
                        Err(e) => act.internal(id, &e),
                    };
                    act.send(ctx, &frame);
                }),
        );
    }
}

fn room_error(id: String, error: RoomError, act: &ConnectionActor) -> ServerFrame {
    match error {
        RoomError::NotFound => ServerFrame::error(Some(id), ErrorCode::NotFound, "room not found"),
        RoomError::Closed => {
            ServerFrame::error(Some(id), ErrorCode::RoomClosed, "the room is not open now")
        }
        RoomError::NotJoined => {
            ServerFrame::error(Some(id), ErrorCode::NotFound, "join the room first")
        }
        RoomError::Invalid(reason) => ServerFrame::error(Some(id), ErrorCode::Invalid, reason),
        RoomError::Port(e) => act.internal(id, &e),
    }
}

fn command_id(frame: &ClientFrame) -> Option<&str> {
    match frame {
        ClientFrame::MessageSend { id, .. }
        | ClientFrame::RoomJoin { id, .. }
        | ClientFrame::RoomLeave { id, .. }
        | ClientFrame::RoomSignal { id, .. } => Some(id),
        ClientFrame::Ping { id } => id.as_deref(),
        ClientFrame::Subscribe { .. } | ClientFrame::Unsubscribe { .. } => None,
    }
}

/// Moves queued frames into the socket's sending half as fast as it accepts them. It runs
/// inside the actor's own task, so nothing else is woken between an event and the socket.
struct Flush;

impl ActorFuture<ConnectionActor> for Flush {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ConnectionActor,
        ctx: &mut Context<ConnectionActor>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        while !act.outbox.is_empty() {
            let mut session = Pin::new(&mut act.session);
            match session.as_mut().poll_ready(task) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                // The socket is gone: nothing queued can be delivered any more.
                Poll::Ready(Err(_)) => {
                    act.outbox.clear();
                    ctx.stop();
                    break;
                }
            }
            let Some(message) = act.outbox.pop_front() else {
                break;
            };
            if session.start_send(message).is_err() {
                act.outbox.clear();
                ctx.stop();
                break;
            }
        }
        if act.outbox.capacity() > OUTBOX_IDLE_SLOTS {
            act.outbox.shrink_to(OUTBOX_IDLE_SLOTS);
        }
        act.flushing = false;
        Poll::Ready(())
    }
}

/// How long a stopped connection may take to accept its last frames and the close.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Sends what was still queued when the actor stopped (the `closing` frame and the close, say),
/// then closes the socket unless a close was already on its way. A client that reads nothing
/// is given [`CLOSE_GRACE`], then its frames are dropped.
async fn drain_and_close(
    mut session: actix_ws::Session,
    rest: VecDeque<Message>,
    close_queued: bool,
) {
    let drain = async move {
        for message in rest {
            if session.send(message).await.is_err() {
                return;
            }
        }
        if !close_queued {
            let _ = session.close(None).await;
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        tracing::info!(parent: &self.span, "websocket opened");

        let hello = ServerFrame::Hello {
            protocol: PROTOCOL_VERSION,
            user_id: self.principal.user_id,
            heartbeat_seconds: HEARTBEAT_INTERVAL.as_secs(),
        };
        self.send(ctx, &hello);

        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_heard.elapsed() > CLIENT_TIMEOUT {
                tracing::info!(parent: &act.span, "client silent too long; closing");
                act.close(ctx, "no heartbeat", CloseCode::Away);
                return;
            }
            act.queue(ctx, Message::Ping(bytes::Bytes::new()));
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        let rest = std::mem::take(&mut self.outbox);
        // `closing` is set exactly when a close frame was queued by `close`.
        let close_queued = self.closing;
        actix_web::rt::spawn(drain_and_close(self.session.clone(), rest, close_queued));
        for booking in self.rooms.clone() {
            self.leave_room(booking);
        }
        for topic in self.topics.keys() {
            self.app.bus.unsubscribe(*topic, self.subscriber);
        }
        let mut open = self
            .app
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = open.get_mut(&self.token_hash) {
            list.retain(|addr| addr.connected());
            if list.is_empty() {
                open.remove(&self.token_hash);
            }
        }
        tracing::info!(parent: &self.span, "websocket closed");
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for ConnectionActor {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => self.handle_text(ctx, &text),
            // Binary frames and pings count against the same frame budget as text, and past
            // it are dropped unanswered: answering a flood would queue memory for a client
            // that may not even read.
            Ok(AggregatedMessage::Binary(_)) => {
                if self.limiter.check().is_ok() {
                    self.error(
                        ctx,
                        None,
                        ErrorCode::BadFrame,
                        "binary frames are not supported",
                    );
                }
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                if self.limiter.check().is_ok() {
                    self.queue(ctx, Message::Pong(bytes));
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            Err(ProtocolError::Overflow) => {
                self.error(
                    ctx,
                    None,
                    ErrorCode::FrameTooLarge,
                    "frames are limited to 64 KiB",
                );
                self.close(ctx, "frame too large", CloseCode::Size);
            }
            Err(e) => {
                tracing::info!(parent: &self.span, error = %e, "websocket protocol error");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<TopicBatch> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, batch: TopicBatch, ctx: &mut Self::Context) {
        for event in batch.0.iter() {
            self.on_event(ctx, event.clone());
        }
    }
}

impl ConnectionActor {
    /// One live event: sent if it is next, held while catching up, or the start of a
    /// catch-up when it shows a gap.
    fn on_event(&mut self, ctx: &mut Context<Self>, event: TopicEvent) {
        let topic = event.topic;
        let Some(state) = self.topics.get_mut(&topic) else {
            return;
        };
        if let Some(pending) = state.pending.as_mut() {
            pending.push(event);
            return;
        }
        if event.seq <= state.last {
            return;
        }
        if event.seq > state.last + 1 {
            // Missed something (a full mailbox, a Redis reconnect): hold this one and replay.
            let since = state.last;
            state.pending = Some(vec![event]);
            self.catch_up(ctx, topic, since, |_, _, _, _| {});
            return;
        }
        self.deliver(ctx, event);
    }
}

impl Handler<ServerClose> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, msg: ServerClose, ctx: &mut Self::Context) {
        self.close(ctx, msg.reason, CloseCode::Normal);
    }
}
