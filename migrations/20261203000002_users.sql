-- Every account. Email is compared case-insensitively through the unique index on lower().
-- adult_confirmed_at records when the person confirmed they are 18 or over (policy 3.2).
CREATE TABLE users (
    id                 UUID PRIMARY KEY,
    email              TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('client', 'therapist', 'staff', 'admin')),
    display_name       TEXT NOT NULL,
    adult_confirmed_at TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
