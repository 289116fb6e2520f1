// The websocket wire protocol, version 1, as TypeScript types.
//
// These mirror `actors/src/protocol.rs` and the domain types in `actors/src/domain.rs`, which
// are the source of truth (docs/protocol.md is the prose reference). `test/protocol.test.mjs`
// reads the Rust files and fails when a frame, event or field here drifts from them.

/** Bumped by the server whenever a frame changes shape; sent in `hello`. */
export const PROTOCOL_VERSION = 1;

/** Longest message body the server accepts, in characters. */
export const MAX_MESSAGE_CHARS = 4000;

// Ids are UUID strings on the wire. The aliases say which kind of id a field holds.
export type UserId = string;
/** A therapist's account id: the same value as their `UserId`. */
export type TherapistId = string;
/** One booked session; also names its room and conversation. */
export type BookingId = string;
export type MessageId = string;
/** An RFC 3339 instant in UTC, e.g. "2026-12-07T09:00:00Z". */
export type Instant = string;

/** A named stream of events; each topic numbers its events 1, 2, 3… */
export type Topic =
  | `availability:${TherapistId}`
  | `calendar:${TherapistId}`
  | `user:${UserId}`
  | `room:${BookingId}`;

export const topics = {
  availability: (id: TherapistId): Topic => `availability:${id}`,
  calendar: (id: TherapistId): Topic => `calendar:${id}`,
  user: (id: UserId): Topic => `user:${id}`,
  room: (id: BookingId): Topic => `room:${id}`,
};

// --- domain values (actors/src/domain.rs) ------------------------------------------------

export type Role = 'client' | 'therapist' | 'staff' | 'admin';

/** One weekly window in the therapist's own zone; weekday 1 is Monday, 7 is Sunday. */
export interface AvailabilityRule {
  weekday: number;
  /** Local "HH:MM". */
  start: string;
  /** Local "HH:MM"; use "23:59" for the end of the day. */
  end: string;
}

export interface WeeklyAvailability {
  /** IANA zone name, e.g. "Europe/London". */
  timezone: string;
  rules: AvailabilityRule[];
}

/** A bookable interval in UTC. */
export interface Slot {
  start: Instant;
  end: Instant;
}

export type BookingStatus = 'confirmed' | 'cancelled';

export interface Booking {
  id: BookingId;
  therapist_id: TherapistId;
  client_id: UserId;
  start: Instant;
  end: Instant;
  status: BookingStatus;
  therapist_name: string;
  client_name: string;
}

// --- protocol values (actors/src/protocol.rs) ----------------------------------------------

export interface ChatMessage {
  id: MessageId;
  booking_id: BookingId;
  sender_id: UserId;
  /** The sender's own frame id, echoed so a resend is recognised. */
  client_msg_id: string;
  body: string;
  created_at: Instant;
}

export interface RoomState {
  booking_id: BookingId;
  /** Participants connected now. */
  present: UserId[];
  /** Who adds media and offers first (the therapist); the other side is polite. */
  offerer: UserId;
}

/** A WebRTC signal relayed between the two participants of a room. */
export type SignalPayload =
  { description: RTCSessionDescriptionInit } | { candidate: RTCIceCandidateInit };

// --- events --------------------------------------------------------------------------------

export interface SlotTakenEvent {
  kind: 'slot.taken';
  therapist_id: TherapistId;
  slot: Slot;
}
export interface SlotFreedEvent {
  kind: 'slot.freed';
  therapist_id: TherapistId;
  slot: Slot;
}
export interface AvailabilityChangedEvent {
  kind: 'availability.changed';
  therapist_id: TherapistId;
}
export interface BookingCreatedEvent {
  kind: 'booking.created';
  booking: Booking;
}
export interface BookingCancelledEvent {
  kind: 'booking.cancelled';
  booking: Booking;
}
export interface MessageCreatedEvent {
  kind: 'message.created';
  message: ChatMessage;
}
export interface RoomPresenceEvent {
  kind: 'room.presence';
  room: RoomState;
}
export interface RoomSignalEvent {
  kind: 'room.signal';
  booking_id: BookingId;
  from: UserId;
  /** Arbitrary JSON on the wire; our own pages only send `SignalPayload`. */
  payload: unknown;
}

/** A client let this therapist read their private profile. */
export interface ConsentGrantedEvent {
  kind: 'consent.granted';
  client_id: UserId;
  therapist_id: TherapistId;
}
/** A client withdrew that permission: drop their profile from the screen now. */
export interface ConsentRevokedEvent {
  kind: 'consent.revoked';
  client_id: UserId;
  therapist_id: TherapistId;
}

export type Event =
  | SlotTakenEvent
  | SlotFreedEvent
  | AvailabilityChangedEvent
  | BookingCreatedEvent
  | BookingCancelledEvent
  | MessageCreatedEvent
  | RoomPresenceEvent
  | RoomSignalEvent
  | ConsentGrantedEvent
  | ConsentRevokedEvent;

// --- client → server -----------------------------------------------------------------------

export interface SubscribeFrame {
  type: 'subscribe';
  topic: Topic;
  since?: number | null;
}
export interface UnsubscribeFrame {
  type: 'unsubscribe';
  topic: Topic;
}
export interface PingFrame {
  type: 'ping';
  id?: string | null;
}
export interface MessageSendFrame {
  type: 'message.send';
  id: string;
  booking_id: BookingId;
  body: string;
}
export interface RoomJoinFrame {
  type: 'room.join';
  id: string;
  booking_id: BookingId;
}
export interface RoomLeaveFrame {
  type: 'room.leave';
  id: string;
  booking_id: BookingId;
}
export interface RoomSignalFrame {
  type: 'room.signal';
  id: string;
  booking_id: BookingId;
  payload: SignalPayload;
}

/** Frames that carry an id and are answered by `ack` or `error` with the same id. */
export type CommandFrame = MessageSendFrame | RoomJoinFrame | RoomLeaveFrame | RoomSignalFrame;

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | CommandFrame;

// --- server → client -----------------------------------------------------------------------

export type ErrorCode =
  | 'bad_frame'
  | 'frame_too_large'
  | 'invalid'
  | 'not_found'
  | 'room_closed'
  | 'rate_limited'
  | 'internal';

export interface HelloFrame {
  type: 'hello';
  protocol: number;
  user_id: UserId;
  heartbeat_seconds: number;
}
export interface SubscribedFrame {
  type: 'subscribed';
  topic: Topic;
  /** The last sequence number on the topic. */
  seq: number;
}
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  topic: Topic;
}
export interface EventFrame {
  type: 'event';
  topic: Topic;
  seq: number;
  event: Event;
}
export interface ResyncFrame {
  type: 'resync';
  topic: Topic;
  seq: number;
}
export interface AckFrame {
  type: 'ack';
  id: string;
  message?: ChatMessage;
  room?: RoomState;
}
export interface PongFrame {
  type: 'pong';
  id: string | null;
}
export interface ErrorFrame {
  type: 'error';
  id: string | null;
  code: ErrorCode;
  message: string;
}
export interface ClosingFrame {
  type: 'closing';
  reason: string;
}

export type ServerFrame =
  | HelloFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | EventFrame
  | ResyncFrame
  | AckFrame
  | PongFrame
  | ErrorFrame
  | ClosingFrame;

const SERVER_FRAME_TYPES: ReadonlySet<string> = new Set<ServerFrame['type']>([
  'hello',
  'subscribed',
  'unsubscribed',
  'event',
  'resync',
  'ack',
  'pong',
  'error',
  'closing',
]);

/** Parses a text frame from the server; `null` for anything that is not a known frame. */
export function parseServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !SERVER_FRAME_TYPES.has(type)) return null;
  return value as ServerFrame;
}

/** True when `payload` has the shape our pages send in `room.signal`. */
export function isSignalPayload(payload: unknown): payload is SignalPayload {
  if (typeof payload !== 'object' || payload === null) return false;
  const p = payload as Record<string, unknown>;
  return (
    (typeof p.description === 'object' && p.description !== null) ||
    (typeof p.candidate === 'object' && p.candidate !== null)
  );
}
