-- One booking as src/store/bookings.rs (try_insert) and src/store/audit.rs (record) make it,
-- statement for statement, in one transaction:
--   1. look for an earlier booking with the same idempotency key (finds none);
--   2. lock the client's row and count their upcoming sessions; at the limit
--      (MAX_UPCOMING_PER_CLIENT, 8, passed as `cap`) the transaction rolls back;
--   3. insert the booking: the two exclusion constraints (btree_gist) refuse an overlap;
--   4. read it back through the same joined view;
--   5. append the audit row, unsealed: it takes no lock and reads nothing (the server's
--      sealer chains committed rows later, in batches, in transactions of its own);
--   6. commit.
-- Variables carry casts because prepared statements (-M prepared, as sqlx prepares) need
-- their parameter types. One difference: Paranimo's refused insert raises an error and rolls
-- back; pgbench would end the client on an error, so here the insert says ON CONFLICT DO
-- NOTHING (which arbitrates on exclusion constraints too) and the transaction rolls back when
-- nothing was inserted.
--
-- Variables (pgbench -D): therapists, clients, slots, cap; nclients = pgbench's -c.
-- spread=1: every transaction books a slot of its own for a client of its own (nothing
-- overlaps, no client reaches the cap): the insert rate. spread=0: each pgbench connection is
-- one client of a booking race, drawing slots at random from therapists × slots (contended).
\set therapist random(1, :therapists)
\set key random(1, 2000000000)
\if :spread
\set n :n + 1
\set slot :n * :nclients + :client_id
\set client :slot % :clients + 1
\else
\set slot random(0, :slots - 1)
\set client :client_id + 1
\endif
BEGIN;
SELECT b.id, b.therapist_id, b.client_id, lower(b.during) AS start_at,
       upper(b.during) AS end_at, b.status, p.full_name AS therapist_name,
       u.display_name AS client_name
FROM bookings b
JOIN therapist_profiles p ON p.user_id = b.therapist_id
JOIN users u ON u.id = b.client_id
WHERE b.client_id = md5(concat('client-', :client::int))::uuid
  AND b.idempotency_key = concat('k-', :key::bigint);
SELECT 1 FROM users WHERE id = md5(concat('client-', :client::int))::uuid FOR UPDATE;
SELECT count(*) AS upcoming FROM bookings
WHERE client_id = md5(concat('client-', :client::int))::uuid
  AND status = 'confirmed' AND upper(during) > now() \gset
\if :upcoming >= :cap
ROLLBACK;
\else
WITH inserted AS (
    INSERT INTO bookings (id, therapist_id, client_id, during, status, idempotency_key)
    VALUES (md5(concat('booking-', :client_id::int, '-', :key::bigint, '-', :slot::int))::uuid,
            md5(concat('therapist-', :therapist::int))::uuid,
            md5(concat('client-', :client::int))::uuid,
            tstzrange(timestamptz '2031-01-06 08:00Z' + :slot::int * interval '1 hour',
                      timestamptz '2031-01-06 08:50Z' + :slot::int * interval '1 hour', '[)'),
            'confirmed', concat('k-', :key::bigint))
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT count(*) AS booked FROM inserted \gset
\if :booked
SELECT b.id, b.therapist_id, b.client_id, lower(b.during) AS start_at,
       upper(b.during) AS end_at, b.status, p.full_name AS therapist_name,
       u.display_name AS client_name
FROM bookings b
JOIN therapist_profiles p ON p.user_id = b.therapist_id
JOIN users u ON u.id = b.client_id
WHERE b.id = md5(concat('booking-', :client_id::int, '-', :key::bigint, '-', :slot::int))::uuid;
INSERT INTO audit_events (at, actor_id, action, object_type, object_id, detail)
VALUES (now(), md5(concat('client-', :client::int))::uuid, 'booking.created', 'booking',
        md5(concat('booking-', :client_id::int, '-', :key::bigint, '-', :slot::int))::uuid::text,
        jsonb_build_object('therapist_id', md5(concat('therapist-', :therapist::int))::uuid,
                           'start', timestamptz '2031-01-06 08:00Z' + :slot::int * interval '1 hour'));
COMMIT;
\else
ROLLBACK;
\endif
\endif
