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
       l.last_seq, l.rate_minute, coalesce(l.rate_count, 0), d.kind
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

# --- maker devices' samples (ingest/adapters/, migrations/018) ---------------------------------
# Each table's staged columns; staged by binary COPY, then inserted once by their keys.
SAMPLE_TABLES: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "power_samples": (
        ("device_id", "ts", "power_w", "current_a", "received_at"),
        ["text", "timestamptz", "float4", "float4", "timestamptz"],
    ),
    "energy_counters": (
        ("device_id", "ts", "total_wh", "received_at"),
        ["text", "timestamptz", "float8", "timestamptz"],
    ),
    "meter_reads": (
        ("device_id", "ts", "meter_id", "total_l", "received_at"),
        ["text", "timestamptz", "text", "float8", "timestamptz"],
    ),
}


def _staging(table: str) -> sql.Identifier:
    return sql.Identifier(f"{table}_staging")


CREATE_SAMPLE_STAGING = [
    sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
    ).format(_staging(t), sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(t))
    for t, (cols, _) in SAMPLE_TABLES.items()
]
COPY_SAMPLES = {
    t: sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        _staging(t), sql.SQL(", ").join(map(sql.Identifier, cols))
    )
    for t, (cols, _) in SAMPLE_TABLES.items()
}
# the key of each table: a redelivered or re-sent message's sample is skipped, never doubled
INSERT_SAMPLES = {
    t: sql.SQL(
        "WITH stored AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} "
        "ON CONFLICT DO NOTHING RETURNING device_id, ts) "
        "SELECT count(*) FROM stored"
    ).format(
        table=sql.Identifier(t),
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        staging=_staging(t),
    )
    for t, (cols, _) in SAMPLE_TABLES.items()
}
# a maker device is seen when it reports: its latest sample's device time (health, pages)
SAMPLES_SEEN: LiteralString = """
INSERT INTO device_status (device_id, last_seen, updated_at)
SELECT device_id, max(ts), now()
FROM unnest(%s::text[], %s::timestamptz[]) AS s (device_id, ts)
GROUP BY device_id
ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = GREATEST(device_status.last_seen, EXCLUDED.last_seen),
    updated_at = now()
"""

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

# --- deriving uses from plugs' samples (ingest/derive.py) ---------------------------------------
# Maker devices with reports since their mark (device_status.last_seen is their latest sample).
DEVICES_TO_DERIVE: LiteralString = """
SELECT d.id, d.kind, d.household_ref, m.derived_to, s.last_seen
FROM devices AS d
JOIN device_status AS s ON s.device_id = d.id
LEFT JOIN derivation_marks AS m ON m.device_id = d.id
WHERE d.kind <> 'wastepilot-v1'
  AND s.last_seen IS NOT NULL
  AND (m.derived_to IS NULL OR s.last_seen > m.derived_to)
ORDER BY d.id
"""
FIRST_REPORT: LiteralString = """
SELECT least(
    (SELECT min(ts) FROM power_samples WHERE device_id = %(d)s),
    (SELECT min(ts) FROM energy_counters WHERE device_id = %(d)s),
    (SELECT min(ts) FROM meter_reads WHERE device_id = %(d)s))
"""
NEXT_REPORT: LiteralString = """
SELECT least(
    (SELECT min(ts) FROM power_samples WHERE device_id = %(d)s AND ts > %(t)s),
    (SELECT min(ts) FROM energy_counters WHERE device_id = %(d)s AND ts > %(t)s),
    (SELECT min(ts) FROM meter_reads WHERE device_id = %(d)s AND ts > %(t)s))
"""
POWER_BETWEEN: LiteralString = """
SELECT ts, power_w, current_a FROM power_samples
WHERE device_id = %(d)s AND ts >= %(a)s AND ts <= %(b)s ORDER BY ts
"""
COUNTERS_BETWEEN: LiteralString = """
SELECT ts, total_wh FROM energy_counters
WHERE device_id = %(d)s AND ts >= %(a)s AND ts <= %(b)s ORDER BY ts
"""
# one meter of the household's (the one with the most recent read, if it has several)
HOUSEHOLD_METER_BETWEEN: LiteralString = """
WITH meter AS (
    SELECT r.device_id, r.meter_id FROM meter_reads AS r
    JOIN devices AS d ON d.id = r.device_id
    WHERE d.household_ref = %(h)s AND r.ts <= %(b)s
    ORDER BY r.ts DESC LIMIT 1
)
SELECT r.ts, r.total_l FROM meter_reads AS r JOIN meter USING (device_id, meter_id)
WHERE r.ts >= %(a)s AND r.ts <= %(b)s ORDER BY r.ts
"""
METER_BETWEEN: LiteralString = """
SELECT ts, total_l FROM meter_reads
WHERE device_id = %(d)s AND ts >= %(a)s AND ts <= %(b)s ORDER BY meter_id, ts
"""
# A use once, keyed by (device, start), and the same use as a run reading. Its seq numbers the
# device's uses in order (passes derive them in time order, under the job's lock), so the
# readings' completeness measures see no gaps where a plug numbers nothing.
STORE_USE: LiteralString = """
WITH use AS (
    INSERT INTO power_uses (device_id, start_at, end_at, energy_wh, energy_source, water_l,
                            peak_w, straddles_gap)
    VALUES (%(d)s, %(start)s, %(end)s, %(wh)s, %(source)s, %(litres)s, %(peak_w)s, %(gap)s)
    ON CONFLICT (device_id, start_at) DO NOTHING
    RETURNING device_id, start_at
)
INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, received_at)
SELECT start_at, device_id,
       (SELECT coalesce(max(seq), 0) + 1 FROM readings WHERE device_id = %(d)s),
       'run', %(run_s)s, %(wh)s, %(litres)s, %(peak_a)s, now()
FROM use
ON CONFLICT (device_id, seq, ts) DO NOTHING
RETURNING 1
"""
STORE_EVENT: LiteralString = """
INSERT INTO device_events (device_id, kind, start_at, end_at, detail)
VALUES (%(d)s, %(kind)s, %(start)s, %(end)s, %(detail)s)
ON CONFLICT DO NOTHING
"""
SET_MARK: LiteralString = """
INSERT INTO derivation_marks (device_id, derived_to) VALUES (%(d)s, %(to)s)
ON CONFLICT (device_id) DO UPDATE SET derived_to = GREATEST(derivation_marks.derived_to,
                                                           EXCLUDED.derived_to)
"""
# retention of the raw samples (migrations/018: the owner drops the chunks)
DROP_SAMPLE_CHUNKS: LiteralString = "SELECT drop_sample_chunks(%s)"

# a household's erasure (ingest/keeper.py): the maker devices' tables, by device
MAKER_TABLES: tuple[str, ...] = (
    "power_samples",
    "energy_counters",
    "meter_reads",
    "power_uses",
    "device_events",
    "derivation_marks",
)
ERASE_MAKER_DATA: dict[str, sql.Composed] = {
    t: sql.SQL("DELETE FROM {} WHERE device_id = ANY(%s)").format(sql.Identifier(t))
    for t in MAKER_TABLES
}
