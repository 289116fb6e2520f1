-- Weekly availability windows in the therapist's local time (ISO weekday, 1 = Monday).
-- Concrete slots are computed from these, so a clock change never moves a local 09:00.
CREATE TABLE availability_rules (
    therapist_id UUID NOT NULL REFERENCES therapist_profiles (user_id) ON DELETE CASCADE,
    weekday      SMALLINT NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time   TIME NOT NULL,
    end_time     TIME NOT NULL,
    CHECK (end_time > start_time),
    PRIMARY KEY (therapist_id, weekday, start_time)
);
