-- Accounts for the pgbench booking race, in a scratch database that already has Paranimo's
-- migrations applied. Ids are derived from a number (md5 of 'therapist-7' and so on) so that
-- booking.sql can name them without a lookup. Run with psql -v therapists=N -v clients=M.
INSERT INTO users (id, email, password_hash, role, display_name, adult_confirmed_at)
SELECT md5('therapist-' || i)::uuid, 'therapist-' || i || '@load.test', 'x', 'therapist',
       'Therapist ' || i, now()
FROM generate_series(1, :therapists) AS i;

INSERT INTO therapist_profiles (user_id, full_name, professional_body, membership_number, bio,
                                fee_pence, session_minutes, timezone, verified)
SELECT md5('therapist-' || i)::uuid, 'Therapist ' || i, 'BACP', 'M' || i, '', 6000, 50,
       'Europe/London', true
FROM generate_series(1, :therapists) AS i;

INSERT INTO users (id, email, password_hash, role, display_name, adult_confirmed_at)
SELECT md5('client-' || i)::uuid, 'client-' || i || '@load.test', 'x', 'client',
       'Client ' || i, now()
FROM generate_series(1, :clients) AS i;

-- No audit rows are seeded: a booking's audit row is a plain insert, chained later by the
-- server's sealer (which pgbench does not run; see ../README.md).
