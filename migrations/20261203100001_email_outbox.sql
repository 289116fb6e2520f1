-- Transactional mail waits here until the sender delivers it. A row is written in the same
-- transaction as the change that causes the mail (a registration, a reset request), so a
-- rolled-back change sends nothing and a committed one cannot lose its mail. Senders on every
-- node claim due rows with FOR UPDATE SKIP LOCKED, so no two send the same row.
-- last_error holds an error kind (such as smtp_451 or connection), never an address.
-- next_attempt_at = 'infinity' marks a mail the sender gave up on, left for an operator.
CREATE TABLE email_outbox (
    id              BIGSERIAL PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    last_error      TEXT
);

CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;
