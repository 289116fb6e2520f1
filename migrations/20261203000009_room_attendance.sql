-- When each party entered and left a session room: the record for no-show and refund
-- questions. Media is never recorded.
CREATE TABLE room_attendance (
    id         BIGSERIAL PRIMARY KEY,
    booking_id UUID NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id),
    event      TEXT NOT NULL CHECK (event IN ('joined', 'left')),
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX room_attendance_booking_idx ON room_attendance (booking_id, at);
