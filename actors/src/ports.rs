//! The ports through which actors persist and publish. `src/` implements them over PostgreSQL
//! and Redis; keeping them here lets the actors compile and be reasoned about without either.

use crate::domain::{Booking, Slot, WeeklyAvailability};
use crate::ids::{BookingId, TherapistId, UserId};
use crate::protocol::{ChatMessage, Event, Topic};
use actix::{Message, Recipient};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A failure behind a port. Only `Conflict` and `NotFound` are expected in normal operation.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A constraint refused the change (the slot was taken, possibly by another node).
    #[error("conflicting change")]
    Conflict,
    #[error("not found")]
    NotFound,
    /// A per-user limit was reached (e.g. upcoming bookings per client).
    #[error("limit reached")]
    LimitReached,
    /// The database or Redis failed; the cause is for the log, never for the user.
    #[error("backing service failed: {0}")]
    Unavailable(String),
}

/// An event delivered to a local subscriber, with its sequence number on the topic.
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct TopicEvent {
    pub topic: Topic,
    pub seq: u64,
    pub event: Arc<Event>,
    /// The `event` server frame already serialised, so fan-out serialises once per node and
    /// every subscriber's socket shares the one buffer.
    pub frame: bytestring::ByteString,
}

/// Events of one topic that reached this node together, in rising `seq` order. A burst of
/// events is one message per subscriber, not one per event, so a connection can hand the
/// whole burst to its socket at once (one write instead of one per event).
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct TopicBatch(pub Arc<[TopicEvent]>);

/// Identifies one local subscriber (a connection or an actor) in the event bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberId(pub u64);

/// What a subscriber missed since a sequence number.
#[derive(Debug)]
pub enum Replay {
    /// The missed events, oldest first (possibly none).
    Events(Vec<TopicEvent>),
    /// Too much was missed to replay; `seq` is where the topic is now.
    TooOld { seq: u64 },
}

/// Publishes committed events to every node and delivers them to local subscribers.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Numbers the event on its topic, keeps it in recent history and fans it out.
    async fn publish(&self, topic: Topic, event: Event) -> Result<u64, PortError>;

    /// Starts delivering the topic's events to `recipient`; returns the current sequence.
    async fn subscribe(
        &self,
        topic: Topic,
        id: SubscriberId,
        recipient: Recipient<TopicBatch>,
    ) -> Result<u64, PortError>;

    /// Stops delivering the topic to this subscriber.
    fn unsubscribe(&self, topic: Topic, id: SubscriberId);

    /// Events after `since`, from the bounded recent history.
    async fn replay(&self, topic: Topic, since: u64) -> Result<Replay, PortError>;

    /// A fresh id for a local subscriber.
    fn next_subscriber_id(&self) -> SubscriberId;
}

/// Everything a calendar actor needs to start: the therapist's pattern and bookings.
#[derive(Clone, Debug)]
pub struct CalendarSnapshot {
    pub availability: WeeklyAvailability,
    pub session_minutes: i32,
    /// Confirmed bookings that have not ended yet.
    pub bookings: Vec<Booking>,
}

/// A booking request that passed the actor's own checks.
#[derive(Clone, Debug)]
pub struct NewBooking {
    pub therapist_id: TherapistId,
    pub client_id: UserId,
    pub slot: Slot,
    /// The client's key for this attempt: a retry with the same key returns the same booking.
    pub idempotency_key: Option<String>,
}

/// The result of storing a booking.
#[derive(Clone, Debug)]
pub struct StoredBooking {
    pub booking: Booking,
    /// False when the idempotency key matched an earlier booking and nothing new was written.
    pub created: bool,
}

/// Reads a booking, for the actors that guard it.
#[async_trait]
pub trait BookingLookup: Send + Sync + 'static {
    async fn find_booking(&self, id: BookingId) -> Result<Option<Booking>, PortError>;
}

/// Durable state of one therapist's calendar.
#[async_trait]
pub trait CalendarStore: BookingLookup {
    /// `None` when the therapist does not exist or has no public profile yet.
    async fn load_calendar(
        &self,
        therapist: TherapistId,
    ) -> Result<Option<CalendarSnapshot>, PortError>;

    /// Writes the booking and its audit event in one transaction. `Conflict` when a database
    /// constraint refuses an overlap.
    async fn insert_booking(&self, booking: &NewBooking) -> Result<StoredBooking, PortError>;

    /// Marks the booking cancelled (with its audit event). `NotFound` when it is not
    /// confirmed any more.
    async fn cancel_booking(&self, id: BookingId, by: UserId) -> Result<Booking, PortError>;

    /// Replaces the weekly pattern (with its audit event).
    async fn save_availability(
        &self,
        therapist: TherapistId,
        availability: &WeeklyAvailability,
    ) -> Result<(), PortError>;
}

/// A message about to be stored.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub booking_id: BookingId,
    pub sender_id: UserId,
    pub client_msg_id: String,
    pub body: String,
}

/// Durable conversations.
#[async_trait]
pub trait MessageStore: BookingLookup {
    /// Stores the message once: a resend with the same sender and client id returns the
    /// stored one with `false`.
    async fn insert_message(&self, message: &NewMessage) -> Result<(ChatMessage, bool), PortError>;
}

/// Whether someone entered or left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attendance {
    Joined,
    Left,
}

/// Durable attendance records and the shared, expiring presence of rooms.
#[async_trait]
pub trait RoomStore: BookingLookup {
    /// Records a join or leave (with its audit event).
    async fn record_attendance(
        &self,
        booking: BookingId,
        user: UserId,
        what: Attendance,
    ) -> Result<(), PortError>;

    /// Marks `user` present (until refreshed or expired) and returns everyone present.
    async fn enter_presence(&self, room: BookingId, user: UserId)
    -> Result<Vec<UserId>, PortError>;

    /// Removes `user` and returns who is still present.
    async fn leave_presence(&self, room: BookingId, user: UserId)
    -> Result<Vec<UserId>, PortError>;
}

/// Shorthand for the time a caller is acting at.
pub type Now = DateTime<Utc>;
