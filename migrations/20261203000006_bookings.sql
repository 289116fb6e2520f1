-- Booked sessions. The two exclusion constraints are the last word on double booking: even
-- if two server nodes race, a therapist (or a client) never holds two confirmed sessions
-- that overlap. Cancelled rows stay for the record and stop holding time.
CREATE TABLE bookings (
    id              UUID PRIMARY KEY,
    therapist_id    UUID NOT NULL REFERENCES therapist_profiles (user_id),
    client_id       UUID NOT NULL REFERENCES users (id),
    during          TSTZRANGE NOT NULL CHECK (NOT isempty(during)),
    status          TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at    TIMESTAMPTZ,
    cancelled_by    UUID REFERENCES users (id),
    CONSTRAINT bookings_no_therapist_overlap
        EXCLUDE USING gist (therapist_id WITH =, during WITH &&) WHERE (status = 'confirmed'),
    CONSTRAINT bookings_no_client_overlap
        EXCLUDE USING gist (client_id WITH =, during WITH &&) WHERE (status = 'confirmed'),
    CONSTRAINT bookings_idempotency_key UNIQUE (client_id, idempotency_key)
);

CREATE INDEX bookings_client_idx ON bookings (client_id);
