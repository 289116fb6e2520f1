-- Append-only audit trail. Each row carries the SHA-256 of the previous row's hash and its
-- own content, so editing or deleting a row breaks the chain from that point on.
-- detail never holds personal data or message text: only ids and codes.
CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id    UUID,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}',
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL UNIQUE
);
