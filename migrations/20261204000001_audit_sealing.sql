-- Audit rows are chained in batches by a sealer instead of one at a time under a lock.
-- A writer now inserts its row unsealed (chain fields NULL) inside its own transaction; the
-- sealer later gives each committed row the next chain_seq, its prev_hash and its hash. The
-- chain's order is chain_seq, not id: a row whose transaction commits late is sealed late.
--
-- chain_version says which hash formula a row was sealed with. Rows written before this
-- migration keep the hashes their writers computed (formula 1, chained in id order, which was
-- the lock's order); re-hashing them here would vouch for content nobody had checked. New
-- rows are sealed with formula 2, which also covers id and chain_seq.
ALTER TABLE audit_events
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD COLUMN chain_seq BIGINT UNIQUE,
    ADD COLUMN chain_version SMALLINT;

UPDATE audit_events AS a
SET chain_seq = numbered.seq, chain_version = 1
FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_events) AS numbered
WHERE a.id = numbered.id;

ALTER TABLE audit_events
    ADD CONSTRAINT audit_events_sealed_whole
        CHECK (num_nulls(prev_hash, hash, chain_seq, chain_version) IN (0, 4)),
    ADD CONSTRAINT audit_events_known_chain_version
        CHECK (chain_version IN (1, 2));

-- The sealer's work list.
CREATE INDEX audit_events_unsealed_idx ON audit_events (id) WHERE chain_seq IS NULL;

-- Append-only: rows arrive unsealed, are sealed once, and are never changed or removed after.
-- This stops a bug or a non-owner role; the table's owner or a superuser can still get
-- round it (DISABLE TRIGGER, session_replication_role), which is what the hash chain is for.
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF num_nonnulls(NEW.prev_hash, NEW.hash, NEW.chain_seq, NEW.chain_version) > 0 THEN
            RAISE EXCEPTION 'audit_events rows are inserted unsealed; only the sealer seals'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    -- Sealing: an unsealed row gets its chain fields, and nothing else about it changes.
    IF TG_OP = 'UPDATE' THEN
        IF OLD.chain_seq IS NULL
           AND NEW.chain_seq IS NOT NULL
           AND (NEW.id, NEW.at, NEW.actor_id, NEW.action, NEW.object_type, NEW.object_id,
                NEW.detail)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.at, OLD.actor_id, OLD.action, OLD.object_type, OLD.object_id,
                OLD.detail)
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
