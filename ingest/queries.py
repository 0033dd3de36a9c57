"""The SQL of ingest, in one place."""

from typing import LiteralString

from psycopg import sql

from ingest.columns import COLUMNS, NAMES, TYPES

# The staging table and its binary COPY, built from the columns' one declaration
# (ingest/columns.py). Binary COPY: psycopg's C dumpers write a row in ~0.4 us, text format took
# ~4 us (measured); the rows' types are declared once per COPY with STAGING_TYPES.
_COLS = sql.SQL(", ").join(map(sql.Identifier, NAMES))
CREATE_STAGING = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS readings_staging ({}) ON COMMIT DELETE ROWS"
).format(
    sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(name), sql.SQL(pg), sql.SQL("" if nullable else " NOT NULL")
        )
        for name, pg, nullable in COLUMNS
    )
)
COPY_STAGING = sql.SQL("COPY readings_staging ({}) FROM STDIN (FORMAT BINARY)").format(_COLS)
STAGING_TYPES = TYPES

# Idempotent: the unique key (device_id, seq, ts) turns a re-sent or redelivered reading into a
# conflict that is skipped, never an overwrite. One statement (one round trip) also moves each
# device's last seen/last seq and sets its rate window (computed by ingest/edge.py under the
# row lock BATCH_STATE took, passed as arrays). Returns the number of readings newly stored.
INSERT_FROM_STAGING = sql.SQL("""
WITH stored AS (
    INSERT INTO readings ({cols})
    SELECT {cols}
    FROM readings_staging
    ON CONFLICT (device_id, seq, ts) DO NOTHING
    RETURNING 1
), seen AS (
    INSERT INTO device_status (device_id, last_seen, last_seq, updated_at, rate_minute, rate_count)
    SELECT g.device_id, g.last_seen, g.last_seq, now(), w.minute, coalesce(w.n, 0)
    FROM (SELECT device_id, max(ts) AS last_seen, max(seq) AS last_seq
          FROM readings_staging GROUP BY device_id) AS g
    LEFT JOIN unnest(%(ids)s::text[], %(minutes)s::timestamptz[], %(counts)s::int[])
        AS w (device_id, minute, n) ON w.device_id = g.device_id
    ORDER BY g.device_id
    ON CONFLICT (device_id) DO UPDATE SET
        last_seen = GREATEST(device_status.last_seen, EXCLUDED.last_seen),
        last_seq = GREATEST(device_status.last_seq, EXCLUDED.last_seq),
        rate_minute = EXCLUDED.rate_minute,
        rate_count = EXCLUDED.rate_count,
        updated_at = now()
)
SELECT count(*) FROM stored
""").format(cols=_COLS)

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

# Everything a batch needs to know of the devices it names, in one round trip, read fresh for
# every batch (a decommissioning or an erasure counts from the next batch): registered and when
# decommissioned, erased (migrations/015), and from device_status the last stored seq and the
# rate window, those rows locked until the batch commits (in device order, as the insert locks
# them: two workers never deadlock), so two batches of one device count against one window.
BATCH_STATE: LiteralString = """
WITH locked AS MATERIALIZED (
    SELECT device_id, last_seq, rate_minute, rate_count FROM device_status
    WHERE device_id = ANY(%(ids)s) ORDER BY device_id FOR UPDATE
)
SELECT n.id, d.id IS NOT NULL, d.decommissioned_at, e.device_id IS NOT NULL,
       l.last_seq, l.rate_minute, coalesce(l.rate_count, 0)
FROM unnest(%(ids)s::text[]) AS n (id)
LEFT JOIN devices AS d ON d.id = n.id
LEFT JOIN erased_devices AS e ON e.device_id = n.id
LEFT JOIN locked AS l ON l.device_id = n.id
"""

# Of the suspects (a seq at or below the device's last stored one), the rows stored already with
# the same key: one probe of the unique index each.
STORED_AMONG: LiteralString = """
SELECT x.i FROM unnest(%s::int[], %s::text[], %s::int8[], %s::timestamptz[]) AS x (i, d, s, t)
WHERE EXISTS (SELECT 1 FROM readings AS r WHERE r.device_id = x.d AND r.ts = x.t AND r.seq = x.s)
"""

# Of admitted new suspects, those whose seq is stored with another ts, and that ts. The unique
# index is (device_id, ts, seq), so this scans the device's entries in each chunk: asked only for
# out-of-order rows within the rate limit (bench/ingest.py measures it).
SEQ_STORED_ELSEWHERE: LiteralString = """
SELECT x.i, min(r.ts)
FROM unnest(%s::int[], %s::text[], %s::int8[], %s::timestamptz[]) AS x (i, d, s, t)
JOIN readings AS r ON r.device_id = x.d AND r.seq = x.s AND r.ts <> x.t
GROUP BY x.i
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


# --- a household's erasure (ingest/keeper.py) -----------------------------------------------
ERASE_READINGS: LiteralString = "DELETE FROM readings WHERE device_id = ANY(%s)"
# also those on a malformed topic naming the device (their device_id is unknown)
ERASE_DEAD_LETTERS: LiteralString = (
    "DELETE FROM dead_letters WHERE device_id = ANY(%(ids)s) OR EXISTS "
    "(SELECT 1 FROM unnest(%(ids)s::text[]) d WHERE strpos(topic, '/' || d || '/') > 0)"
)
ERASE_DEVICE_STATUS: LiteralString = "DELETE FROM device_status WHERE device_id = ANY(%s)"
ERASE_DEVICE_STATUS_HISTORY: LiteralString = (
    "DELETE FROM device_status_history WHERE device_id = ANY(%s)"
)
