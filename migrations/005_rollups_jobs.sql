-- Analysts' rollups, scheduled-job history, device anomalies and kept weekly reports.
-- Plain tables refreshed by the scheduler (works on the Apache-2 timescaledb edition).

-- Per household and UTC hour. Every whole-hour time zone (Europe/London included) maps each
-- UTC hour into exactly one local hour, so hourly rollups serve any such zone.
CREATE TABLE usage_hourly (
    household_ref   text NOT NULL REFERENCES households (ref),
    hour            timestamptz NOT NULL,
    uses            integer NOT NULL,
    run_s           double precision NOT NULL,
    energy_wh       double precision NOT NULL,
    water_l         double precision NOT NULL,
    faults          integer NOT NULL,
    jams            integer NOT NULL,
    leaks           integer NOT NULL,
    refreshed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_ref, hour)
);
CREATE INDEX usage_hourly_hour_idx ON usage_hourly (hour);

-- Per household and local (Europe/London) day: 23 hours on the spring change, 25 in autumn.
CREATE TABLE usage_daily (
    household_ref       text NOT NULL REFERENCES households (ref),
    day                 date NOT NULL,
    uses                integer NOT NULL,
    run_s               double precision NOT NULL,
    energy_wh           double precision NOT NULL,
    water_l             double precision NOT NULL,
    faults              integer NOT NULL,
    jams                integer NOT NULL,
    leaks               integer NOT NULL,
    readings_received   integer NOT NULL,
    readings_missing    integer NOT NULL,
    refreshed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_ref, day)
);
CREATE INDEX usage_daily_day_idx ON usage_daily (day);

-- How far (in readings.received_at) the rollups have caught up.
CREATE TABLE rollup_watermarks (
    name            text PRIMARY KEY,
    received_until  timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Readings arrive roughly in received_at order, so a BRIN index finds the newly received ones
-- for a few bytes per block and almost no cost to ingest.
CREATE INDEX readings_received_brin ON readings USING brin (received_at);

CREATE TABLE job_runs (
    id              bigserial PRIMARY KEY,
    job             text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    outcome         text NOT NULL CHECK (outcome IN ('running', 'ok', 'failed', 'skipped')),
    rows_touched    bigint,
    detail          text NOT NULL DEFAULT '',
    host            text NOT NULL,
    pid             integer NOT NULL
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at DESC);

CREATE TABLE anomalies (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('offline', 'jam_rate', 'leak', 'water_per_use')),
    household_ref   text NOT NULL REFERENCES households (ref),
    device_id       text NOT NULL,
    value           double precision,
    detail          text NOT NULL,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX anomalies_open_idx ON anomalies (kind, device_id) WHERE resolved_at IS NULL;

CREATE TABLE weekly_reports (
    id              bigserial PRIMARY KEY,
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    html            text NOT NULL,
    csv             text NOT NULL,
    UNIQUE (period_start, period_end)
);
