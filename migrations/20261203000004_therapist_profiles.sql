-- A therapist's public profile and the zone their weekly availability is written in.
-- verified is set by staff after checking the professional body's register.
CREATE TABLE therapist_profiles (
    user_id           UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    full_name         TEXT NOT NULL,
    professional_body TEXT NOT NULL,
    membership_number TEXT NOT NULL,
    bio               TEXT NOT NULL,
    fee_pence         INTEGER NOT NULL CHECK (fee_pence >= 0),
    session_minutes   INTEGER NOT NULL CHECK (session_minutes BETWEEN 15 AND 180),
    timezone          TEXT NOT NULL,
    verified          BOOLEAN NOT NULL DEFAULT false,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
