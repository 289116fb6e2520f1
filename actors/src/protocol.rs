//! The websocket wire protocol, version [`PROTOCOL_VERSION`]. Every frame is a JSON object
//! with a `type` tag. `docs/protocol.md` is the reference and a test checks it names every
//! frame and event defined here.

use crate::domain::{Booking, Slot};
use crate::ids::{BookingId, MessageId, TherapistId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Bumped whenever a frame changes shape; sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame a client may send, in bytes. SDP offers are the largest legitimate
/// frames (a few KiB); anything much bigger is a mistake or an attack.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Longest message body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Longest client-made frame id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// A named stream of events a connection can follow. Each topic numbers its events from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// A therapist's free slots, for anyone signed in.
    Availability(TherapistId),
    /// A therapist's own bookings, for that therapist only.
    Calendar(TherapistId),
    /// One user's bookings and messages, for that user only (all their devices).
    User(UserId),
    /// A session room's presence and signalling, for its two participants only.
    Room(BookingId),
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Availability(id) => write!(f, "availability:{id}"),
            Topic::Calendar(id) => write!(f, "calendar:{id}"),
            Topic::User(id) => write!(f, "user:{id}"),
            Topic::Room(id) => write!(f, "room:{id}"),
        }
    }
}

/// Why a topic name was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown topic")]
pub struct UnknownTopic;

impl FromStr for Topic {
    type Err = UnknownTopic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or(UnknownTopic)?;
        let id = uuid::Uuid::parse_str(id).map_err(|_| UnknownTopic)?;
        match kind {
            "availability" => Ok(Topic::Availability(TherapistId(id))),
            "calendar" => Ok(Topic::Calendar(TherapistId(id))),
            "user" => Ok(Topic::User(UserId(id))),
            "room" => Ok(Topic::Room(BookingId(id))),
            _ => Err(UnknownTopic),
        }
    }
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A stored message in a booking's conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub id: MessageId,
    pub booking_id: BookingId,
    pub sender_id: UserId,
    /// The sender's own id for the frame, echoed so a resend is recognised.
    pub client_msg_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Who is in a room and who starts the negotiation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomState {
    pub booking_id: BookingId,
    /// Participants connected now.
    pub present: Vec<UserId>,
    /// The participant who adds media and offers first (the therapist); the other side is
    /// "polite" in perfect negotiation and adds its media after answering.
    pub offerer: UserId,
}

/// Something that happened on a topic, after it was committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A slot stopped being free (booked).
    #[serde(rename = "slot.taken")]
    SlotTaken {
        therapist_id: TherapistId,
        slot: Slot,
    },
    /// A slot became free again (cancelled).
    #[serde(rename = "slot.freed")]
    SlotFreed {
        therapist_id: TherapistId,
        slot: Slot,
    },
    /// The weekly pattern changed: refetch the free slots.
    #[serde(rename = "availability.changed")]
    AvailabilityChanged { therapist_id: TherapistId },
    #[serde(rename = "booking.created")]
    BookingCreated { booking: Booking },
    #[serde(rename = "booking.cancelled")]
    BookingCancelled { booking: Booking },
    #[serde(rename = "message.created")]
    MessageCreated { message: ChatMessage },
    /// Someone joined or left the room.
    #[serde(rename = "room.presence")]
    RoomPresence { room: RoomState },
    /// WebRTC signalling from one participant, to be handled by the other.
    #[serde(rename = "room.signal")]
    RoomSignal {
        booking_id: BookingId,
        from: UserId,
        payload: serde_json::Value,
    },
    /// A client let this therapist read their private profile.
    #[serde(rename = "consent.granted")]
    ConsentGranted {
        client_id: UserId,
        therapist_id: TherapistId,
    },
    /// A client withdrew that permission: drop their profile from the screen now.
    #[serde(rename = "consent.revoked")]
    ConsentRevoked {
        client_id: UserId,
        therapist_id: TherapistId,
    },
}

/// A frame sent by the browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientFrame {
    /// Follow a topic. With `since`, replay what came after that sequence number.
    #[serde(rename = "subscribe")]
    Subscribe { topic: Topic, since: Option<u64> },
    #[serde(rename = "unsubscribe")]
    Unsubscribe { topic: Topic },
    /// Keep-alive at the application level; answered with `pong`.
    #[serde(rename = "ping")]
    Ping { id: Option<String> },
    /// Post a message in a booking's conversation. `id` is the client's, for idempotent resend.
    #[serde(rename = "message.send")]
    MessageSend {
        id: String,
        booking_id: BookingId,
        body: String,
    },
    /// Enter a booking's room: subscribes to it and announces presence.
    #[serde(rename = "room.join")]
    RoomJoin { id: String, booking_id: BookingId },
    #[serde(rename = "room.leave")]
    RoomLeave { id: String, booking_id: BookingId },
    /// Relay a WebRTC description or ICE candidate to the other participant.
    #[serde(rename = "room.signal")]
    RoomSignal {
        id: String,
        booking_id: BookingId,
        payload: serde_json::Value,
    },
}

/// A stable, machine-readable reason carried by `error` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON, or not a known frame, or had a wrong field.
    BadFrame,
    /// The frame was larger than [`MAX_FRAME_BYTES`].
    FrameTooLarge,
    /// A field was well-formed but not acceptable (empty message, id too long...).
    Invalid,
    /// The thing does not exist or this user may not see it (never told apart).
    NotFound,
    /// The room is not open at this time.
    RoomClosed,
    /// Too many frames; slow down.
    RateLimited,
    /// Something failed on our side; the command had no effect.
    Internal,
}

/// A frame sent by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// First frame on every connection.
    #[serde(rename = "hello")]
    Hello {
        protocol: u32,
        user_id: UserId,
        heartbeat_seconds: u64,
    },
    /// The subscription is live; `seq` is the last sequence number on the topic.
    #[serde(rename = "subscribed")]
    Subscribed { topic: Topic, seq: u64 },
    #[serde(rename = "unsubscribed")]
    Unsubscribed { topic: Topic },
    /// One event on a topic; sequence numbers per topic rise by one.
    #[serde(rename = "event")]
    Event {
        topic: Topic,
        seq: u64,
        event: Event,
    },
    /// Events were missed and cannot be replayed: fetch a fresh snapshot over HTTP.
    #[serde(rename = "resync")]
    Resync { topic: Topic, seq: u64 },
    /// A command was carried out (and committed, where it changes state).
    #[serde(rename = "ack")]
    Ack {
        id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<ChatMessage>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomState>,
    },
    #[serde(rename = "pong")]
    Pong { id: Option<String> },
    /// A frame was refused; nothing changed.
    #[serde(rename = "error")]
    Error {
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    /// The server is about to close the connection, and why.
    #[serde(rename = "closing")]
    Closing { reason: String },
}

impl ServerFrame {
    /// Shorthand for an error frame.
    pub fn error(id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            id,
            code,
            message: message.into(),
        }
    }

    /// Shorthand for a bare acknowledgement.
    pub fn ack(id: String) -> Self {
        ServerFrame::Ack {
            id,
            message: None,
            room: None,
        }
    }
}

/// Every frame and event name, for the documentation test.
pub const ALL_NAMES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "ping",
    "message.send",
    "room.join",
    "room.leave",
    "room.signal",
    "hello",
    "subscribed",
    "unsubscribed",
    "event",
    "resync",
    "ack",
    "pong",
    "error",
    "closing",
    "slot.taken",
    "slot.freed",
    "availability.changed",
    "booking.created",
    "booking.cancelled",
    "message.created",
    "room.presence",
    "consent.granted",
    "consent.revoked",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Topics survive a round trip through their wire names, and junk is refused.
    #[test]
    fn topics_round_trip_and_junk_is_refused() {
        let topic = Topic::Room(BookingId::new_random());
        assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        assert_eq!("room:nope".parse::<Topic>(), Err(UnknownTopic));
        assert_eq!(
            "lobby:00000000-0000-0000-0000-000000000000".parse::<Topic>(),
            Err(UnknownTopic)
        );
    }

    /// Unknown frame types and unknown fields are errors, not silently ignored.
    #[test]
    fn unknown_frames_and_fields_are_rejected() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"teleport"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","id":"1","x":1}"#).is_err());
        let ok = serde_json::from_str::<ClientFrame>(r#"{"type":"ping","id":"1"}"#).unwrap();
        assert_eq!(
            ok,
            ClientFrame::Ping {
                id: Some("1".into())
            }
        );
    }

    /// The reference in docs/protocol.md names every frame and event.
    #[test]
    fn the_protocol_reference_names_every_frame() {
        let doc = include_str!("../../docs/protocol.md");
        for name in ALL_NAMES {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/protocol.md does not describe `{name}`"
            );
        }
    }
}
