-- Off-the-shelf devices (issue 30): metering smart plugs (Shelly Gen2/Gen3, Tasmota) and
-- wM-Bus water meters (through wmbusmeters) speak their makers' formats; ingest's adapters turn
-- their messages into the samples below (ingest/adapters/), and the derive_uses job turns a
-- plug's power samples into uses, stored as run readings like a v1 device's
-- (ingest/uses.py; docs/devices/).

ALTER TABLE devices
    ADD COLUMN kind text NOT NULL DEFAULT 'wastepilot-v1'
        CHECK (kind IN ('wastepilot-v1', 'shelly-gen2', 'tasmota', 'wmbus'));

-- A plug's power as it reported it, at the device's time. The key makes a redelivered or
-- re-sent message change nothing.
CREATE TABLE power_samples (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    power_w     real NOT NULL CHECK (power_w >= 0),
    current_a   real CHECK (current_a >= 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT power_samples_key UNIQUE (device_id, ts)
);
SELECT create_hypertable('power_samples', 'ts', chunk_time_interval => interval '7 days');

-- A plug's cumulative energy counter (Wh) at the device's time: resets to 0 on a reboot.
CREATE TABLE energy_counters (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    total_wh    double precision NOT NULL CHECK (total_wh >= 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT energy_counters_key UNIQUE (device_id, ts)
);
SELECT create_hypertable('energy_counters', 'ts', chunk_time_interval => interval '7 days');

-- A water meter's register (litres, cumulative) from one wM-Bus telegram, at the meter's time.
CREATE TABLE meter_reads (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    meter_id    text NOT NULL,
    total_l     double precision NOT NULL CHECK (total_l >= 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meter_reads_key UNIQUE (device_id, meter_id, ts)
);
SELECT create_hypertable('meter_reads', 'ts', chunk_time_interval => interval '7 days');

-- A use derived from a plug's power: stored once, keyed by (device, start); the same use is
-- also a run reading (seq: the device's uses numbered in order) so rollups, KPIs and pages count it.
CREATE TABLE power_uses (
    device_id     text NOT NULL,
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL CHECK (end_at >= start_at),
    energy_wh     real,
    energy_source text NOT NULL CHECK (energy_source IN ('counter', 'samples')),
    water_l       real,
    peak_w        real NOT NULL,
    straddles_gap boolean NOT NULL DEFAULT false,
    derived_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, start_at)
);

-- What derivation found in a device's series: a counter reset (reboot, overflow), a gap with
-- no report for longer than the family's cadence allows. Keyed so a second pass adds nothing.
CREATE TABLE device_events (
    device_id  text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('counter_reset', 'gap')),
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL,
    detail     text NOT NULL,
    PRIMARY KEY (device_id, kind, start_at)
);

-- How far each plug's series has been turned into uses (exclusive): derivation resumes there.
CREATE TABLE derivation_marks (
    device_id    text PRIMARY KEY,
    derived_to   timestamptz NOT NULL
);

-- Retention of the raw samples, as of the readings (migrations/017): whole chunks older than
-- WASTEPILOT_RAW_RETENTION_DAYS, dropped by the owner on the service's behalf. Uses, events and
-- rollups stay.
CREATE FUNCTION drop_sample_chunks(older_than timestamptz) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
SELECT ((SELECT count(*) FROM drop_chunks('power_samples', older_than => older_than))
      + (SELECT count(*) FROM drop_chunks('energy_counters', older_than => older_than))
      + (SELECT count(*) FROM drop_chunks('meter_reads', older_than => older_than)))::integer
$$;
REVOKE ALL ON FUNCTION drop_sample_chunks(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_sample_chunks(timestamptz) TO wastepilot_app;
