"""The SQL of ingest, in one place."""

from typing import LiteralString

CREATE_STAGING: LiteralString = """
CREATE TEMP TABLE IF NOT EXISTS readings_staging (
    ts timestamptz NOT NULL, device_id text NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
    run_s float8, energy_wh float8, water_l float8, peak_a float8, fault text,
    received_at timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""

# Binary COPY: psycopg's C dumpers write a row in ~0.4 us, text format took ~4 us (measured);
# the rows' types are declared once per COPY with STAGING_TYPES.
COPY_STAGING: LiteralString = """
COPY readings_staging (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault,
                       received_at) FROM STDIN (FORMAT BINARY)
"""
STAGING_TYPES = [
    "timestamptz",
    "text",
    "int8",
    "text",
    "float8",
    "float8",
    "float8",
    "float8",
    "text",
    "timestamptz",
]

# Idempotent: the unique key (device_id, seq, ts) turns a re-sent or redelivered reading into a
# conflict that is skipped, never an overwrite. One statement (one round trip) also moves each
# device's last seen/last seq, locking device_status rows in device order so that two workers
# never deadlock. Returns the number of readings newly stored.
INSERT_FROM_STAGING: LiteralString = """
WITH stored AS (
    INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault,
                          received_at)
    SELECT ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault, received_at
    FROM readings_staging
    ON CONFLICT (device_id, seq, ts) DO NOTHING
    RETURNING 1
), seen AS (
    INSERT INTO device_status (device_id, last_seen, last_seq, updated_at)
    SELECT device_id, max(ts), max(seq), now() FROM readings_staging
    GROUP BY device_id ORDER BY device_id
    ON CONFLICT (device_id) DO UPDATE SET
        last_seen = GREATEST(device_status.last_seen, EXCLUDED.last_seen),
        last_seq = GREATEST(device_status.last_seq, EXCLUDED.last_seq),
        updated_at = now()
)
SELECT count(*) FROM stored
"""

UPSERT_STATUS: LiteralString = """
INSERT INTO device_status (device_id, online, status_at, firmware, uptime_s, rssi_dbm, updated_at)
VALUES (%(device_id)s, %(online)s, %(status_at)s, %(firmware)s, %(uptime_s)s, %(rssi_dbm)s, now())
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online,
    status_at = EXCLUDED.status_at,
    firmware = COALESCE(EXCLUDED.firmware, device_status.firmware),
    uptime_s = COALESCE(EXCLUDED.uptime_s, device_status.uptime_s),
    rssi_dbm = COALESCE(EXCLUDED.rssi_dbm, device_status.rssi_dbm),
    updated_at = now()
WHERE device_status.status_at IS NULL OR EXCLUDED.status_at >= device_status.status_at
"""

DEVICES_BY_ID: LiteralString = """
SELECT id, decommissioned_at FROM devices WHERE id = ANY(%s)
"""

COPY_DEAD_LETTERS: LiteralString = """
COPY dead_letters (received_at, topic, device_id, reason, detail, item_index, payload, truncated)
FROM STDIN (FORMAT BINARY)
"""
DEAD_LETTER_TYPES = ["timestamptz", "text", "text", "text", "text", "int4", "bytea", "bool"]

DEAD_LETTERS_TO_REPLAY: LiteralString = """
SELECT id, topic, payload FROM dead_letters
WHERE replayed_at IS NULL AND NOT truncated
  AND reason <> 'too_many_dead_letters'  -- a count of letters not kept: nothing to replay
  AND (%(reason)s::text IS NULL OR reason = %(reason)s)
ORDER BY id
LIMIT %(limit)s
"""

# Only rows not replayed yet: of two replays at once, the second one's UPDATE waits for the
# first, then finds fewer rows than it read, and rolls back (ReplayConflict).
MARK_REPLAYED: LiteralString = """
UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(%s) AND replayed_at IS NULL
"""

PING: LiteralString = "SELECT 1"

# migrations/015_erased_devices.sql: SHARE lets batches run side by side, and makes an
# erasure's insert wait for the batches under way (and the batches after it wait for it)
LOCK_TOMBSTONES: LiteralString = "LOCK TABLE erased_devices IN SHARE MODE"
ERASED_AMONG: LiteralString = "SELECT device_id FROM erased_devices WHERE device_id = ANY(%s)"
