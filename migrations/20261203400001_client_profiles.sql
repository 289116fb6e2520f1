-- A client's private profile (privacy policy 3.8.4 and 5.4.2; DESIGN §7): what a client chooses
-- to tell their therapists, encrypted field by field, readable by a therapist only while the
-- client consents. The server encrypts; PostgreSQL, its replicas and its backups hold only
-- ciphertext. See src/crypto.rs for the format.

-- Each user's data key, sealed ("wrapped") by the master key from configuration, bound to the
-- user's id so a row copied to another user does not open. Deleting this row is how erasure
-- reaches every copy of the ciphertext, backups included: without the key it is noise.
-- wrapped_key starts with the master key's version byte; key_version is the data key's own
-- version, which every field sealed with it carries in its first byte, so a rotation can tell
-- old ciphertext from new.
CREATE TABLE user_data_keys (
    user_id     UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    wrapped_key BYTEA NOT NULL,
    key_version SMALLINT NOT NULL CHECK (key_version BETWEEN 1 AND 255),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every field is optional (policy 3.8.4) and may be special category data under the GDPR, so
-- each is its own nullable ciphertext: NULL means "not given", and no plaintext column exists
-- to leak through a query, a log of slow statements or a dump. Each ciphertext is bound to its
-- user and its column, so moving one elsewhere makes it fail to decrypt.
CREATE TABLE client_profiles (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bio          BYTEA,
    goals        BYTEA,
    frustrations BYTEA,
    health_notes BYTEA,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which therapists a client lets read their profile (policy 5.4.2: "only viewable when Clients
-- give permission to specific Therapists"). A revoked row stays, with revoked_at, as the record
-- of when access began and ended; a new grant adds a new row. At most one active row per pair,
-- enforced by the partial unique index, so grants racing each other make one consent.
CREATE TABLE client_consents (
    id           BIGSERIAL PRIMARY KEY,
    client_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    therapist_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ,
    CHECK (client_id <> therapist_id),
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);

CREATE UNIQUE INDEX client_consents_active_key
    ON client_consents (client_id, therapist_id)
    WHERE revoked_at IS NULL;
