-- Multi-factor authentication: one TOTP secret per user (RFC 6238) and one-time recovery codes.

-- The secret is stored unencrypted (base32) until the master-key module exists to encrypt it.
-- confirmed_at stays NULL until the user proves their app produces codes; an unconfirmed
-- secret does not protect the account and may be replaced by a new enrolment.
-- last_used_step is the highest time step ever accepted: a code is accepted only for a later
-- step, so a code seen by someone else cannot be used again (RFC 6238 §5.2).
CREATE TABLE user_totp (
    user_id        UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret         TEXT NOT NULL,
    confirmed_at   TIMESTAMPTZ,
    last_used_step BIGINT NOT NULL DEFAULT -1,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Recovery codes are kept only as SHA-256 of the user id and the code. A fast hash is enough
-- because each code is 60 random bits, not something a person chose: there is no dictionary to
-- try, and the user id in the hash means each account's codes must be searched separately.
CREATE TABLE recovery_codes (
    id        BIGSERIAL PRIMARY KEY,
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL UNIQUE,
    used_at   TIMESTAMPTZ
);

CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);

-- Accounts that must use multi-factor authentication whatever their role, such as staff and
-- admin accounts made by an operator; staff and admin require it by role as well.
ALTER TABLE users ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT false;
