-- The pilot's first schema: registry, readings hypertable, device status, dead letters.
-- Works on the Apache-2 edition of timescaledb (hypertables, time_bucket, drop_chunks).
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE households (
    ref              text PRIMARY KEY CHECK (ref ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    postcode_district text CHECK (postcode_district ~ '^[A-Z]{1,2}[0-9][0-9A-Z]?$'),
    cohort           text NOT NULL DEFAULT 'default',
    occupants        smallint CHECK (occupants BETWEEN 1 AND 20),
    joined_on        date NOT NULL DEFAULT current_date,
    left_on          date CHECK (left_on IS NULL OR left_on >= joined_on),
    consent          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    household_ref    text NOT NULL REFERENCES households (ref),
    model            text NOT NULL DEFAULT 'unknown',
    installed_on     date NOT NULL DEFAULT current_date,
    decommissioned_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_household_idx ON devices (household_ref);

CREATE TABLE readings (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 0),
    kind        text NOT NULL CHECK (kind IN ('run', 'fault')),
    run_s       real,
    energy_wh   real,
    water_l     real,
    peak_a      real,
    fault       text CHECK (fault IN ('jam', 'overload', 'leak', 'power')),
    received_at timestamptz NOT NULL DEFAULT now(),
    -- The idempotency key of DESIGN.md: a re-sent or redelivered reading is a duplicate.
    CONSTRAINT readings_key UNIQUE (device_id, seq, ts)
);
-- 7-day chunks: the pilot writes a few MB a week; smaller chunks cost planning time on
-- year-long queries (DESIGN.md, Storage).
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days');
CREATE INDEX readings_device_ts_idx ON readings (device_id, ts DESC);

CREATE TABLE device_status (
    device_id   text PRIMARY KEY REFERENCES devices (id),
    online      boolean,
    status_at   timestamptz,
    last_seen   timestamptz,
    last_seq    bigint,
    firmware    text,
    uptime_s    bigint,
    rssi_dbm    smallint,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL,
    item_index  integer,
    payload     bytea NOT NULL,
    truncated   boolean NOT NULL DEFAULT false,
    replayed_at timestamptz
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason);
