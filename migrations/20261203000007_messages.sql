-- Conversation messages, one conversation per booking. (sender_id, client_msg_id) is unique
-- so a resent frame is stored once.
CREATE TABLE messages (
    id            UUID PRIMARY KEY,
    booking_id    UUID NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    sender_id     UUID NOT NULL REFERENCES users (id),
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT messages_client_msg_id UNIQUE (sender_id, client_msg_id)
);

CREATE INDEX messages_booking_idx ON messages (booking_id, created_at);
