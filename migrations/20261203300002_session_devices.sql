-- Sessions become visible to their owner as "your devices": each gets a public id (the
-- token hash must never leave the server) and an absolute lifetime that use cannot extend.
ALTER TABLE sessions ADD COLUMN id UUID NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE sessions ADD COLUMN absolute_expires_at TIMESTAMPTZ NOT NULL
    DEFAULT now() + interval '30 days';
CREATE UNIQUE INDEX sessions_id_key ON sessions (id);
