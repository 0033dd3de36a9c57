-- Per device and local (Europe/London) day: distinct readings and the seq range, so the daily
-- rollup's completeness (expected from seq vs received) comes from this small table instead of
-- a lookup into the readings hypertable for every device and day.
CREATE TABLE device_daily (
    device_id   text NOT NULL,
    day         date NOT NULL,
    received    integer NOT NULL,
    min_seq     bigint NOT NULL,
    max_seq     bigint NOT NULL,
    PRIMARY KEY (device_id, day)
);

-- The time-of-day profile per local day, cohort and local hour (Europe/London): the KPIs'
-- sewer-load profile reads 24 rows per cohort and day instead of every household-hour.
CREATE TABLE usage_profile_daily (
    day         date NOT NULL,
    cohort      text NOT NULL,
    hour        smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    uses        integer NOT NULL,
    water_l     double precision NOT NULL,
    PRIMARY KEY (day, cohort, hour)
);
