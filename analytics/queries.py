"""SQL of the analytics package: plain, parameterised text."""

from __future__ import annotations

from typing import LiteralString

# --- rollups -----------------------------------------------------------------------------------
AFFECTED_SINCE: LiteralString = """
CREATE TEMP TABLE affected_hours ON COMMIT DROP AS
SELECT DISTINCT d.household_ref, time_bucket('1 hour', r.ts) AS hour
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE r.received_at > %(after)s AND r.received_at <= %(until)s AND r.ts >= %(since)s
"""

AFFECTED_RANGE: LiteralString = """
CREATE TEMP TABLE affected_hours ON COMMIT DROP AS
SELECT DISTINCT d.household_ref, time_bucket('1 hour', r.ts) AS hour
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE r.ts >= %(start)s AND r.ts < %(end)s
  -- an archived month's rollups hold its readings, which are in its file, not here: a late
  -- reading left here must not re-aggregate its hour from itself alone (analytics/archive.py)
  AND NOT EXISTS (
      SELECT 1 FROM archived_months a
      WHERE a.state IN ('archived', 'restoring')
        AND r.ts >= a.month::timestamp AT TIME ZONE 'UTC'
        AND r.ts < (a.month + interval '1 month')::timestamp AT TIME ZONE 'UTC')
"""

REFRESH_HOURLY: LiteralString = """
INSERT INTO usage_hourly AS u (household_ref, hour, uses, run_s, energy_wh, water_l, faults,
                               jams, leaks, refreshed_at)
SELECT d.household_ref, time_bucket('1 hour', r.ts),
       count(*) FILTER (WHERE r.kind = 'run'),
       coalesce(sum(r.run_s::float8), 0), coalesce(sum(r.energy_wh::float8), 0),
       coalesce(sum(r.water_l::float8), 0),
       count(*) FILTER (WHERE r.kind = 'fault'),
       count(*) FILTER (WHERE r.fault = 'jam'),
       count(*) FILTER (WHERE r.fault = 'leak'),
       now()
FROM readings r
JOIN devices d ON d.id = r.device_id
JOIN affected_hours a ON a.household_ref = d.household_ref AND a.hour = time_bucket('1 hour', r.ts)
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s AND r.received_at <= %(until)s
GROUP BY 1, 2
ON CONFLICT (household_ref, hour) DO UPDATE SET
    uses = excluded.uses, run_s = excluded.run_s, energy_wh = excluded.energy_wh,
    water_l = excluded.water_l, faults = excluded.faults, jams = excluded.jams,
    leaks = excluded.leaks, refreshed_at = excluded.refreshed_at
"""

# The local days to re-aggregate: those of the affected hours, and each household's next day
# with data (its expected count starts from the seq before it, which a late reading may change).
AFFECTED_DAYS: LiteralString = """
CREATE TEMP TABLE affected_days ON COMMIT DROP AS
WITH d AS (
    SELECT DISTINCT household_ref, (hour AT TIME ZONE 'Europe/London')::date AS day
    FROM affected_hours
)
SELECT household_ref, day FROM d
UNION
SELECT d.household_ref, n.day FROM d
CROSS JOIN LATERAL (
    SELECT u.day FROM usage_daily u
    WHERE u.household_ref = d.household_ref AND u.day > d.day ORDER BY u.day LIMIT 1
) n
"""

REFRESH_DEVICE_DAILY: LiteralString = """
INSERT INTO device_daily AS x (device_id, day, received, min_seq, max_seq)
SELECT r.device_id, (r.ts AT TIME ZONE 'Europe/London')::date,
       count(DISTINCT r.seq), min(r.seq), max(r.seq)
FROM readings r
JOIN devices dv ON dv.id = r.device_id
JOIN affected_days a ON a.household_ref = dv.household_ref
     AND a.day = (r.ts AT TIME ZONE 'Europe/London')::date
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s
GROUP BY 1, 2
ON CONFLICT (device_id, day) DO UPDATE SET
    received = excluded.received, min_seq = excluded.min_seq, max_seq = excluded.max_seq
"""

# Completeness per household and day from seq: for each device, the readings expected since its
# last seq of an earlier day, against the distinct ones received.
REFRESH_DAILY: LiteralString = """
WITH bounds AS (
    SELECT household_ref, day,
           (day::timestamp AT TIME ZONE 'Europe/London') AS t0,
           ((day + 1)::timestamp AT TIME ZONE 'Europe/London') AS t1
    FROM affected_days
), sums AS (
    SELECT b.household_ref, b.day, sum(h.uses)::int AS uses, sum(h.run_s) AS run_s,
           sum(h.energy_wh) AS energy_wh, sum(h.water_l) AS water_l,
           sum(h.faults)::int AS faults, sum(h.jams)::int AS jams, sum(h.leaks)::int AS leaks
    FROM bounds b
    JOIN usage_hourly h ON h.household_ref = b.household_ref AND h.hour >= b.t0 AND h.hour < b.t1
    GROUP BY 1, 2
), completeness AS (
    SELECT a.household_ref, a.day, sum(x.received)::int AS received,
           sum(greatest(x.max_seq - coalesce(p.max_seq, x.min_seq - 1) - x.received, 0))::int
               AS missing
    FROM affected_days a
    JOIN devices dv ON dv.household_ref = a.household_ref
    JOIN device_daily x ON x.device_id = dv.id AND x.day = a.day
    LEFT JOIN LATERAL (
        SELECT y.max_seq FROM device_daily y
        WHERE y.device_id = x.device_id AND y.day < x.day ORDER BY y.day DESC LIMIT 1
    ) p ON true
    GROUP BY 1, 2
)
INSERT INTO usage_daily AS u (household_ref, day, uses, run_s, energy_wh, water_l, faults, jams,
                              leaks, readings_received, readings_missing, refreshed_at)
SELECT s.household_ref, s.day, s.uses, s.run_s, s.energy_wh, s.water_l, s.faults, s.jams,
       s.leaks, coalesce(c.received, 0), coalesce(c.missing, 0), now()
FROM sums s LEFT JOIN completeness c USING (household_ref, day)
ON CONFLICT (household_ref, day) DO UPDATE SET
    uses = excluded.uses, run_s = excluded.run_s, energy_wh = excluded.energy_wh,
    water_l = excluded.water_l, faults = excluded.faults, jams = excluded.jams,
    leaks = excluded.leaks, readings_received = excluded.readings_received,
    readings_missing = excluded.readings_missing, refreshed_at = excluded.refreshed_at
"""

# the running totals (migrations/023) of every household with an affected day, from its first
# affected day on: the total before it plus the days since (a separate statement, so it sees
# REFRESH_DAILY's rows). A refresh touches a day or two a household; a rebuild of an old month
# the days after it too.
REFRESH_TO_DATE: LiteralString = """
WITH a AS (
    SELECT household_ref, min(day) AS d0 FROM affected_days GROUP BY 1
), base AS (
    SELECT a.household_ref, a.d0, coalesce(b.uses_to_date, 0) AS uses,
           coalesce(b.run_s_to_date, 0) AS run_s, coalesce(b.energy_wh_to_date, 0) AS energy_wh,
           coalesce(b.water_l_to_date, 0) AS water_l, coalesce(b.faults_to_date, 0) AS faults,
           coalesce(b.received_to_date, 0) AS received, coalesce(b.missing_to_date, 0) AS missing
    FROM a LEFT JOIN LATERAL (
        SELECT * FROM usage_daily y
        WHERE y.household_ref = a.household_ref AND y.day < a.d0
        ORDER BY y.day DESC LIMIT 1
    ) b ON true
), c AS (
    SELECT x.household_ref, x.day,
           b.uses + sum(x.uses) OVER w AS uses, b.run_s + sum(x.run_s) OVER w AS run_s,
           b.energy_wh + sum(x.energy_wh) OVER w AS energy_wh,
           b.water_l + sum(x.water_l) OVER w AS water_l, b.faults + sum(x.faults) OVER w AS faults,
           b.received + sum(x.readings_received) OVER w AS received,
           b.missing + sum(x.readings_missing) OVER w AS missing
    FROM base b JOIN usage_daily x ON x.household_ref = b.household_ref AND x.day >= b.d0
    WINDOW w AS (PARTITION BY x.household_ref ORDER BY x.day)
)
UPDATE usage_daily u
SET uses_to_date = c.uses, run_s_to_date = c.run_s, energy_wh_to_date = c.energy_wh,
    water_l_to_date = c.water_l, faults_to_date = c.faults, received_to_date = c.received,
    missing_to_date = c.missing
FROM c
WHERE u.household_ref = c.household_ref AND u.day = c.day
  AND (u.uses_to_date, u.run_s_to_date, u.energy_wh_to_date, u.water_l_to_date, u.faults_to_date,
       u.received_to_date, u.missing_to_date)
      IS DISTINCT FROM (c.uses, c.run_s, c.energy_wh, c.water_l, c.faults, c.received, c.missing)
"""

REFRESH_PROFILE: LiteralString = """
WITH days AS (SELECT DISTINCT day FROM affected_days)
INSERT INTO usage_profile_daily (day, cohort, hour, uses, water_l, run_s, energy_wh, faults)
SELECT (u.hour AT TIME ZONE 'Europe/London')::date, h.cohort,
       extract(hour FROM u.hour AT TIME ZONE 'Europe/London')::smallint,
       sum(u.uses)::int, sum(u.water_l), sum(u.run_s), sum(u.energy_wh), sum(u.faults)::int
FROM days
JOIN usage_hourly u ON u.hour >= (days.day::timestamp AT TIME ZONE 'Europe/London')
                   AND u.hour < ((days.day + 1)::timestamp AT TIME ZONE 'Europe/London')
JOIN households h ON h.ref = u.household_ref
GROUP BY 1, 2, 3
"""

# --- kpis --------------------------------------------------------------------------------------
KPI_ENROLLED: LiteralString = """
SELECT h.ref AS household, h.cohort,
       greatest(0, least(%(end)s::date, coalesce(h.left_on + 1, %(end)s::date))
                   - greatest(%(start)s::date, h.joined_on)) AS days_enrolled
FROM households h
WHERE h.joined_on < %(end)s AND (h.left_on IS NULL OR h.left_on >= %(start)s)
  AND (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
"""

KPI_HOUSEHOLDS_ROLLUP: LiteralString = """
SELECT household_ref AS household, sum(uses)::bigint AS uses, sum(run_s) AS run_s,
       sum(energy_wh) AS energy_wh, sum(water_l) AS water_l, sum(faults)::bigint AS faults,
       sum(readings_received)::bigint AS received, sum(readings_missing)::bigint AS missing
FROM usage_daily
WHERE day >= %(start)s AND day < %(end)s
GROUP BY 1
"""

# the same figures straight from the readings (the benchmark's comparison, and a check)
KPI_HOUSEHOLDS_RAW: LiteralString = """
WITH r AS (
    SELECT d.household_ref AS household,
           count(*) FILTER (WHERE r.kind = 'run') AS uses,
           coalesce(sum(r.run_s::float8), 0) AS run_s,
           coalesce(sum(r.energy_wh::float8), 0) AS energy_wh,
           coalesce(sum(r.water_l::float8), 0) AS water_l,
           count(*) FILTER (WHERE r.kind = 'fault') AS faults
    FROM readings r JOIN devices d ON d.id = r.device_id
    WHERE r.ts >= (%(start)s::date::timestamp AT TIME ZONE 'Europe/London')
      AND r.ts < (%(end)s::date::timestamp AT TIME ZONE 'Europe/London')
    GROUP BY 1
), c AS (
    SELECT d.household_ref AS household, sum(c.received)::bigint AS received,
           sum(c.missing)::bigint AS missing
    FROM device_completeness_daily c JOIN devices d ON d.id = c.device_id
    WHERE c.day >= %(start)s AND c.day < %(end)s
    GROUP BY 1
)
SELECT r.*, coalesce(c.received, 0) AS received, coalesce(c.missing, 0) AS missing
FROM r LEFT JOIN c USING (household)
"""

# "current" KPIs: the rollups (exactly the readings received up to their watermark) plus the
# readings received since, within the late window (the rule the usage series follows), so a fresh
# pilot's figures are true before the first rollup. The bounds are parameters (so TimescaleDB
# leaves out the chunks outside them); each statement also returns the watermark it saw, and
# the caller runs it again if a refresh moved it since it read it (else a reading could count
# in both parts). With no watermark the rollups are not used (a rebuild alone leaves none).
# Completeness of the days from `fresh_day` (the oldest reading received since the watermark)
# comes from the readings themselves (their rollup rows may be partial).
# (OFFSET 0 keeps PostgreSQL from answering min(ts) by walking the ts index of the late window
# backwards, reading every reading of the week: 120 ms at 10,000 households, 17 ms this way)
KPI_OLDEST_FRESH: LiteralString = """
SELECT min(ts) FROM (
    SELECT ts FROM readings
    WHERE received_at > %(wm)s AND ts >= %(fresh_from)s AND ts < %(t1)s
    OFFSET 0
) fresh
"""


# A household's running totals (migration 023) at its last day before `bound` (a date
# parameter). Totals never decrease (every summed figure is >= 0: core/wire.py), so that day's
# are the largest of the three days before `bound` - an index-only range of the (day,
# household_ref) covering index (migration 024), grouped by hashing, no sort - where most
# households have a row; a household silent longer takes its last row by the primary key.
_TOTALS: LiteralString = """household_ref, uses_to_date AS uses, run_s_to_date AS run_s,
               energy_wh_to_date AS energy_wh, water_l_to_date AS water_l,
               faults_to_date AS faults, received_to_date AS received,
               missing_to_date AS missing"""


def _totals_before(
    name: LiteralString, bound: LiteralString, gate: LiteralString = "true"
) -> LiteralString:
    return (
        name
        + """_near AS (
    SELECT household_ref, max(uses_to_date) AS uses, max(run_s_to_date) AS run_s,
           max(energy_wh_to_date) AS energy_wh, max(water_l_to_date) AS water_l,
           max(faults_to_date) AS faults, max(received_to_date) AS received,
           max(missing_to_date) AS missing
    FROM usage_daily WHERE day >= """
        + bound
        + "::date - 3 AND day < "
        + bound
        + """ AND %(use_rollups)s AND """
        + gate
        + """
    GROUP BY household_ref
), """
        + name
        + """ AS (
    SELECT * FROM """
        + name
        + """_near
    UNION ALL
    SELECT p.* FROM hh CROSS JOIN LATERAL (
        SELECT """
        + _TOTALS
        + """
        FROM usage_daily u WHERE u.household_ref = hh.ref AND u.day < """
        + bound
        + """::date - 3
        ORDER BY u.day DESC LIMIT 1
    ) p
    WHERE NOT EXISTS (SELECT 1 FROM """
        + name
        + """_near n WHERE n.household_ref = hh.ref)
      AND """
        + gate
        + """
)"""
    )


KPI_HOUSEHOLDS_CURRENT: LiteralString = (
    """
WITH seen AS (
    SELECT max(received_until) AS wm FROM rollup_watermarks WHERE name = 'usage'
), hh AS (  -- the households KPI_ENROLLED counts (no other row is used)
    SELECT h.ref FROM households h
    WHERE h.joined_on < %(end)s AND (h.left_on IS NULL OR h.left_on >= %(start)s)
      AND (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s) AND %(use_rollups)s
), """
    + _totals_before("s", "%(start)s")
    + ", "
    + _totals_before("e", "%(end)s")
    + ", "
    # (a third bound only when the first day with fresh readings lies inside the period)
    + _totals_before("f", "%(fresh_bound)s", "%(fresh_inside)s")
    + """, rolled AS (
    -- each household's days [start, end) from its running totals: the total to its last day
    -- before `end` less the total to its last day before `start`; completeness to the first
    -- day with fresh readings (summed per household below)
    -- (that day is `end` or `start` when it is not inside: f's totals are e's or s's)
    SELECT household_ref AS household, uses, run_s, energy_wh, water_l, faults,
           CASE WHEN %(fresh_bound)s = %(end)s THEN received ELSE 0 END AS received,
           CASE WHEN %(fresh_bound)s = %(end)s THEN missing ELSE 0 END AS missing
    FROM e
    UNION ALL
    SELECT household_ref, -uses, -run_s, -energy_wh, -water_l, -faults,
           CASE WHEN %(fresh_bound)s = %(start)s THEN 0 ELSE -received END,
           CASE WHEN %(fresh_bound)s = %(start)s THEN 0 ELSE -missing END
    FROM s
    UNION ALL
    SELECT household_ref, 0, 0, 0, 0, 0, received, missing FROM f
), fresh AS (
    SELECT d.household_ref AS household,
           count(*) FILTER (WHERE r.kind = 'run') AS uses,
           coalesce(sum(r.run_s::float8), 0) AS run_s,
           coalesce(sum(r.energy_wh::float8), 0) AS energy_wh,
           coalesce(sum(r.water_l::float8), 0) AS water_l,
           count(*) FILTER (WHERE r.kind = 'fault') AS faults,
           0::bigint AS received, 0::bigint AS missing
    FROM readings r JOIN devices d ON d.id = r.device_id
    WHERE r.ts >= %(fresh_from)s AND r.ts < %(t1)s AND r.received_at > %(wm)s
    GROUP BY 1
), per_day AS (
    SELECT r.device_id, (r.ts AT TIME ZONE 'Europe/London')::date AS day,
           count(DISTINCT r.seq) AS received, min(r.seq) AS min_seq, max(r.seq) AS max_seq
    FROM readings r
    WHERE r.ts >= %(fresh_day_from)s AND r.ts < %(t1)s
    GROUP BY 1, 2
), per_day_before AS (  -- each device-day with the device's max seq of its day before
    SELECT x.*, lag(x.max_seq) OVER (PARTITION BY x.device_id ORDER BY x.day) AS before_max
    FROM per_day x
), completeness AS (
    SELECT dv.household_ref AS household, 0::bigint AS uses, 0::float8 AS run_s,
           0::float8 AS energy_wh, 0::float8 AS water_l, 0::bigint AS faults,
           sum(x.received)::bigint AS received,
           sum(greatest(x.max_seq - coalesce(x.before_max, p.max_seq, x.min_seq - 1)
                        - x.received, 0))::bigint AS missing
    FROM per_day_before x
    JOIN devices dv ON dv.id = x.device_id
    LEFT JOIN LATERAL (  -- a device's first fresh day: its last seq before, as the rollup takes it
        SELECT coalesce(
            (SELECT z.max_seq FROM device_daily z
             WHERE z.device_id = x.device_id AND z.day < x.day ORDER BY z.day DESC LIMIT 1),
            (SELECT r.seq FROM readings r
             WHERE r.device_id = x.device_id AND r.ts < %(fresh_day_from)s
             ORDER BY r.ts DESC LIMIT 1)
        ) AS max_seq
        WHERE x.before_max IS NULL
    ) p ON true
    GROUP BY 1
)
-- (measures to a millionth: a difference of running totals carries float noise, 12.5 L as
-- 12.500000000000002, which must not tip a rounded figure)
SELECT household, sum(uses)::bigint AS uses, round(sum(run_s)::numeric, 6)::float8 AS run_s,
       round(sum(energy_wh)::numeric, 6)::float8 AS energy_wh,
       round(sum(water_l)::numeric, 6)::float8 AS water_l, sum(faults)::bigint AS faults,
       sum(received)::bigint AS received,
       sum(missing)::bigint AS missing, (SELECT wm FROM seen) AS watermark_seen
FROM (SELECT * FROM rolled UNION ALL SELECT * FROM fresh UNION ALL SELECT * FROM completeness) u
GROUP BY 1
"""
)

_PROFILE_FRESH: LiteralString = """
SELECT extract(hour FROM r.ts AT TIME ZONE %(tz)s)::int AS hour_of_day,
       count(*) FILTER (WHERE r.kind = 'run') AS uses,
       coalesce(sum(r.water_l::float8), 0) AS water_l
FROM readings r JOIN devices d ON d.id = r.device_id JOIN households h ON h.ref = d.household_ref
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND r.ts >= %(fresh_from)s AND r.ts < %(t1)s AND r.received_at > %(wm)s
GROUP BY 1
"""

# the time-of-day profile: the per-day profile rollup (UK days) or the hourly one (another zone)
# while there is a watermark, plus the readings received since
KPI_PROFILE_CURRENT_DAILY: LiteralString = (
    """
SELECT hour_of_day, sum(uses)::bigint AS uses, sum(water_l) AS water_l,
       (SELECT max(received_until) FROM rollup_watermarks WHERE name = 'usage') AS watermark_seen
FROM (
    SELECT p.hour::int AS hour_of_day, p.uses::bigint AS uses, p.water_l::float8 AS water_l
    FROM usage_profile_daily p
    WHERE p.day >= %(start)s AND p.day < %(end)s AND %(use_rollups)s
      AND (%(cohort)s::text IS NULL OR p.cohort = %(cohort)s)
    UNION ALL"""
    + _PROFILE_FRESH
    + """) x GROUP BY 1 ORDER BY 1
"""
)

KPI_PROFILE_CURRENT_HOURLY: LiteralString = (
    """
SELECT hour_of_day, sum(uses)::bigint AS uses, sum(water_l) AS water_l,
       (SELECT max(received_until) FROM rollup_watermarks WHERE name = 'usage') AS watermark_seen
FROM (
    SELECT extract(hour FROM u.hour AT TIME ZONE %(tz)s)::int AS hour_of_day,
           u.uses::bigint AS uses, u.water_l::float8 AS water_l
    FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
    WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s) AND %(use_rollups)s
      AND u.hour >= %(t0)s AND u.hour < %(t1)s
    UNION ALL"""
    + _PROFILE_FRESH
    + """) x GROUP BY 1 ORDER BY 1
"""
)

KPI_PROFILE_HOURLY: LiteralString = """
SELECT extract(hour FROM u.hour AT TIME ZONE %(tz)s)::int AS hour_of_day,
       sum(u.uses)::bigint AS uses, sum(u.water_l) AS water_l
FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND u.hour >= (%(start)s::date::timestamp AT TIME ZONE %(tz)s)
  AND u.hour < (%(end)s::date::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1 ORDER BY 1
"""

# the same from the per-day profile rollup, when the zone is the rollups' own
KPI_PROFILE_DAILY: LiteralString = """
SELECT hour AS hour_of_day, sum(uses)::bigint AS uses, sum(water_l) AS water_l
FROM usage_profile_daily
WHERE day >= %(start)s AND day < %(end)s
  AND (%(cohort)s::text IS NULL OR cohort = %(cohort)s)
GROUP BY 1 ORDER BY 1
"""

KPI_PROFILE_RAW: LiteralString = """
SELECT extract(hour FROM r.ts AT TIME ZONE %(tz)s)::int AS hour_of_day,
       count(*) FILTER (WHERE r.kind = 'run') AS uses,
       coalesce(sum(r.water_l::float8), 0) AS water_l
FROM readings r JOIN devices d ON d.id = r.device_id JOIN households h ON h.ref = d.household_ref
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND r.ts >= (%(start)s::date::timestamp AT TIME ZONE %(tz)s)
  AND r.ts < (%(end)s::date::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1 ORDER BY 1
"""

# --- anomalies ---------------------------------------------------------------------------------
# kind, device, household, value, then what the detail is written from (analytics.anomalies):
# a count, a total and an instant
ANOMALY_CHECKS: LiteralString = """
WITH hh AS (  -- per household over the window, from the daily rollups
    SELECT household_ref, sum(uses) AS uses, sum(jams) AS jams, sum(leaks) AS leaks,
           sum(water_l) AS water_l
    FROM usage_daily
    WHERE day >= (%(now)s AT TIME ZONE 'Europe/London')::date - %(days)s
    GROUP BY 1
), live AS (
    SELECT d.id, d.household_ref FROM devices d WHERE d.decommissioned_at IS NULL
)
SELECT 'offline', l.id, l.household_ref,
       extract(epoch FROM %(now)s - s.last_seen) / 3600, NULL::float8, NULL::float8, s.last_seen
FROM live l JOIN device_status s ON s.device_id = l.id
WHERE s.last_seen < %(now)s - make_interval(secs => %(offline_s)s)
UNION ALL
SELECT 'jam_rate', l.id, l.household_ref, hh.jams::float8 / hh.uses, hh.jams, hh.uses, NULL
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.uses > 0 AND hh.jams::float8 / hh.uses > %(jam_rate)s
UNION ALL
SELECT 'leak', l.id, l.household_ref, hh.leaks, hh.leaks, NULL, NULL
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.leaks > 0
UNION ALL
SELECT 'water_per_use', l.id, l.household_ref, hh.water_l / hh.uses, hh.water_l, hh.uses, NULL
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.uses > 0 AND hh.water_l / hh.uses > %(water)s
"""

OPEN_ANOMALY: LiteralString = """
INSERT INTO anomalies (kind, device_id, household_ref, value, detail)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (kind, device_id) WHERE resolved_at IS NULL
DO UPDATE SET value = excluded.value, detail = excluded.detail, last_seen = now()
"""

# --- export ------------------------------------------------------------------------------------
EXPORT_HOURLY: LiteralString = """
SELECT u.household_ref, u.hour, u.uses, u.run_s, u.energy_wh, u.water_l, u.faults
FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
WHERE u.hour >= %(start)s AND u.hour < %(end)s
  AND (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND (%(household)s::text IS NULL OR h.ref = %(household)s)
ORDER BY u.household_ref, u.hour
"""

# daily buckets are local (Europe/London) days; `bucket` is the local midnight
EXPORT_DAILY: LiteralString = """
SELECT u.household_ref, u.day::timestamp AT TIME ZONE 'Europe/London', u.uses, u.run_s,
       u.energy_wh, u.water_l, u.faults
FROM usage_daily u JOIN households h ON h.ref = u.household_ref
WHERE u.day >= (%(start)s AT TIME ZONE 'Europe/London')::date
  AND u.day < (%(end)s AT TIME ZONE 'Europe/London')::date
  AND (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND (%(household)s::text IS NULL OR h.ref = %(household)s)
ORDER BY u.household_ref, u.day
"""

# --- usage -------------------------------------------------------------------------------------
SCOPE_FILTER: LiteralString = """
(%(scope)s = 'pilot' OR (%(scope)s = 'household' AND h.ref = %(key)s)
 OR (%(scope)s = 'cohort' AND h.cohort = %(key)s))
"""

# one use or fault per raw reading, of the scope (the rollups' rows carry sums)
RAW_USAGE_ROWS: LiteralString = (
    """
    SELECT r.ts, (r.kind = 'run')::int, coalesce(r.run_s, 0)::float8,
           coalesce(r.energy_wh, 0)::float8, coalesce(r.water_l, 0)::float8,
           (r.kind = 'fault')::int
    FROM readings r
    JOIN devices d ON d.id = r.device_id
    JOIN households h ON h.ref = d.household_ref
    WHERE """
    + SCOPE_FILTER
)

# Buckets follow local time in `tz` (day buckets start at local midnight across DST changes).
SERIES: LiteralString = (
    """
WITH src AS (
    SELECT u.hour AS t, u.uses::bigint AS uses, u.run_s, u.energy_wh, u.water_l,
           u.faults::bigint AS faults
    FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
    WHERE """
    + SCOPE_FILTER
    + """
      -- the rollup range but its whole days, as two ranges (r_lo <= dt_lo <= dt_hi <= r_hi):
      -- "the range and not the days" PostgreSQL may read whole and filter (790k household-
      -- hours for the dashboard's 30 days at 10,000 households)
      AND ((u.hour >= %(r_lo)s AND u.hour < %(dt_lo)s)
           OR (u.hour >= %(dt_hi)s AND u.hour < %(r_hi)s))
    UNION ALL
    -- whole UK days inside the rollup range, for day and week buckets in UK time: one
    -- household's from its daily rollup, a cohort's or the pilot's from the per-cohort one,
    -- which keeps each local hour (so it answers a cohort's or the pilot's hour buckets too,
    -- on days of 23 or 24 hours: analytics/usage.py)
    SELECT (u.day::timestamp AT TIME ZONE 'Europe/London'), u.uses::bigint, u.run_s,
           u.energy_wh, u.water_l, u.faults::bigint
    FROM usage_daily u
    WHERE %(scope)s = 'household' AND u.household_ref = %(key)s
      AND u.day >= %(d_lo)s AND u.day < %(d_hi)s
    UNION ALL
    SELECT ((p.day + make_interval(hours => p.hour))::timestamp AT TIME ZONE 'Europe/London'),
           p.uses::bigint, p.run_s,
           p.energy_wh, p.water_l, p.faults::bigint
    FROM usage_profile_daily p
    WHERE (%(scope)s = 'pilot' OR (%(scope)s = 'cohort' AND p.cohort = %(key)s))
      AND p.day >= %(d_lo)s AND p.day < %(d_hi)s
    UNION ALL
    """
    + RAW_USAGE_ROWS
    + """ AND ((r.ts >= %(start)s AND r.ts < %(r_lo)s) OR (r.ts >= %(r_hi)s AND r.ts < %(end)s))
    UNION ALL
    -- readings received after the rollups' watermark, in hours the rollups answer
    """
    + RAW_USAGE_ROWS
    + """ AND r.ts >= greatest(%(r_lo)s, %(late_from)s) AND r.ts < %(r_hi)s
      AND r.received_at > %(watermark)s
    UNION ALL
    -- raw readings of archived months in the same windows, read from their files for the
    -- scope's devices (analytics/archive.py: archived_usage); empty when none is archived
    SELECT a.ts, (a.kind = 'run')::int, coalesce(a.run_s, 0)::float8,
           coalesce(a.energy_wh, 0)::float8, coalesce(a.water_l, 0)::float8,
           (a.kind = 'fault')::int
    FROM unnest(%(a_ts)s::timestamptz[], %(a_kind)s::text[], %(a_run)s::float8[],
                %(a_energy)s::float8[], %(a_water)s::float8[])
         AS a(ts, kind, run_s, energy_wh, water_l)
)
SELECT time_bucket(%(width)s::interval, t, %(tz)s) AS bucket,
       sum(uses)::bigint AS uses, round(sum(run_s)::numeric, 2)::float8 AS run_s,
       round(sum(energy_wh)::numeric, 3)::float8 AS energy_wh,
       round(sum(water_l)::numeric, 3)::float8 AS water_l, sum(faults)::bigint AS faults
FROM src
GROUP BY 1
ORDER BY 1
"""
)

# --- read by the API and the analysts' pages ---------------------------------------------------
COHORTS: LiteralString = """
SELECT cohort, count(*)::int AS households FROM households GROUP BY 1 ORDER BY 1
"""

# households, those heard from most recently first (device_status.last_seen is the device time
# of a household's newest stored reading)
HOUSEHOLDS: LiteralString = """
SELECT h.ref, h.cohort, h.joined_on, h.left_on, max(s.last_seen) AS last_reading_at
FROM households h
LEFT JOIN devices d ON d.household_ref = h.ref
LEFT JOIN device_status s ON s.device_id = d.id
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
GROUP BY h.ref
ORDER BY max(s.last_seen) DESC NULLS LAST, h.ref
LIMIT %(limit)s
"""

ANOMALIES: LiteralString = """
SELECT id, kind, household_ref, device_id, value, detail, first_seen, last_seen, resolved_at
FROM anomalies WHERE %(include_resolved)s OR resolved_at IS NULL
ORDER BY last_seen DESC, id DESC
LIMIT %(limit)s
"""

JOB_RUNS: LiteralString = """
SELECT id, job, started_at, finished_at, outcome, rows_touched, detail, host, pid
FROM job_runs WHERE %(job)s::text IS NULL OR job = %(job)s
ORDER BY id DESC LIMIT %(limit)s
"""

WEEKLY_REPORTS: LiteralString = """
SELECT id, period_start, period_end, created_at FROM weekly_reports ORDER BY period_start DESC
"""

WEEKLY_REPORT: LiteralString = "SELECT html, csv, period_start FROM weekly_reports WHERE id = %s"

RESOLVE_GONE_ANOMALIES: LiteralString = (
    "UPDATE anomalies SET resolved_at = now() WHERE resolved_at IS NULL AND NOT (kind || "
    "chr(31) || device_id = ANY(%s))"
)
STORE_WEEKLY_REPORT: LiteralString = (
    "INSERT INTO weekly_reports (period_start, period_end, html, csv) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (period_start, period_end) DO UPDATE SET html = excluded.html, csv = "
    "excluded.csv, created_at = now() RETURNING id"
)
OLDEST_READING: LiteralString = "SELECT min(ts) FROM readings"
# drop_chunks needs the hypertable's owner: migrations/017's function runs as the owner
DROP_READING_CHUNKS: LiteralString = "SELECT drop_reading_chunks(%s::timestamptz)"
ANALYZE_AFFECTED_DAYS: LiteralString = "ANALYZE affected_days"
DELETE_AFFECTED_PROFILE: LiteralString = (
    "DELETE FROM usage_profile_daily WHERE day IN (SELECT day FROM affected_days)"
)
SET_WATERMARK: LiteralString = (
    "INSERT INTO rollup_watermarks (name, received_until) VALUES (%s, %s) ON CONFLICT (name) DO"
    " UPDATE SET received_until = excluded.received_until, updated_at = now()"
)
AFFECTED_SPAN: LiteralString = "SELECT min(hour), max(hour), count(*) FROM affected_hours"
WATERMARK_FOR_UPDATE: LiteralString = (
    "SELECT received_until FROM rollup_watermarks WHERE name = %s FOR UPDATE"
)
DB_NOW_MINUS: LiteralString = "SELECT now() - %s"
DB_NOW: LiteralString = "SELECT now()"
USAGE_WATERMARK: LiteralString = "SELECT received_until FROM rollup_watermarks WHERE name = 'usage'"

DROP_OLD_DEAD_LETTERS: LiteralString = "DELETE FROM dead_letters WHERE received_at < %s"

# --- one household, for "why does this home need a visit?" -------------------------------------
HOUSEHOLD: LiteralString = """
SELECT ref, cohort, joined_on, left_on FROM households WHERE ref = %(ref)s
"""

HOUSEHOLD_DEVICES: LiteralString = """
SELECT d.id AS device_id, d.model, d.installed_on, d.decommissioned_at, s.online, s.status_at,
       s.last_seen, s.last_seq, s.firmware, s.uptime_s, s.rssi_dbm, d.kind
FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
WHERE d.household_ref = %(ref)s
ORDER BY d.decommissioned_at DESC NULLS FIRST, d.installed_on DESC, d.id
"""

HOUSEHOLD_FAULTS: LiteralString = """
SELECT r.ts AS at, coalesce(r.fault, 'unknown') AS kind, r.device_id, r.water_l::float8 AS water_l
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE d.household_ref = %(ref)s AND r.kind = 'fault' AND r.ts >= %(start)s AND r.ts < %(end)s
ORDER BY r.ts DESC
LIMIT %(limit)s
"""

HOUSEHOLD_STATUS_CHANGES: LiteralString = """
SELECT h.device_id, h.online, h.at
FROM device_status_history h JOIN devices d ON d.id = h.device_id
WHERE d.household_ref = %(ref)s AND h.at >= %(start)s
ORDER BY h.at DESC, h.id DESC
LIMIT 100
"""

# one household's days straight from its readings (a few hundred): every reading stored counts,
# also a backlog stamped before the rollups' late window
HOUSEHOLD_DAYS: LiteralString = """
SELECT (r.ts AT TIME ZONE 'Europe/London')::date AS day,
       count(*) FILTER (WHERE r.kind = 'run')::int AS uses,
       coalesce(sum(r.water_l::float8), 0) AS water_l,
       count(*) FILTER (WHERE r.kind = 'fault')::int AS faults
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE d.household_ref = %(ref)s AND r.ts >= %(start)s AND r.ts < %(end)s
GROUP BY 1
"""

HOUSEHOLD_FAULT_COUNTS: LiteralString = """
SELECT coalesce(r.fault, 'unknown') AS kind, count(*) AS n
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE d.household_ref = %(ref)s AND r.kind = 'fault' AND r.ts >= %(start)s AND r.ts < %(end)s
GROUP BY 1 ORDER BY 2 DESC, 1
"""

# each stored seq of the household's devices in the period (and each device's last one before
# it), in seq order: gaps and completeness are worked out from these
HOUSEHOLD_SEQS: LiteralString = """
SELECT device_id, seq, min(ts) AS ts FROM (
    SELECT r.device_id, r.seq, r.ts
    FROM readings r JOIN devices d ON d.id = r.device_id
    WHERE d.household_ref = %(ref)s AND r.ts >= %(start)s AND r.ts < %(end)s
    UNION ALL
    SELECT p.device_id, p.seq, p.ts
    FROM devices d CROSS JOIN LATERAL (
        SELECT r.device_id, r.seq, r.ts FROM readings r
        WHERE r.device_id = d.id AND r.ts < %(start)s ORDER BY r.ts DESC LIMIT 1
    ) p
    WHERE d.household_ref = %(ref)s
) x
GROUP BY 1, 2
ORDER BY 1, 2
"""

# the median household of a cohort, per UK day: uses of each household enrolled that day (a day
# without use counts as 0). Each household-day's uses are its daily rollup's plus the readings
# received since the rollups' watermark (stamped within the late window, as the usage series
# take them); with no watermark yet, the readings alone, so a fresh pilot has it at once. One
# statement: the watermark and both parts are of one snapshot. (From the readings alone this
# read 300,000 of them at 10,000 households: 400 ms of the household page.)
COHORT_DAILY_MEDIAN: LiteralString = """
WITH seen AS (
    SELECT max(received_until) AS wm FROM rollup_watermarks WHERE name = 'usage'
), days AS (
    SELECT generate_series(%(first)s::date, %(last)s::date, interval '1 day')::date AS day
), cohort AS (
    SELECT ref, joined_on, left_on FROM households WHERE cohort = %(cohort)s
), enrolled AS (  -- how many of the cohort's households are enrolled each day
    SELECT days.day, count(*) AS n
    FROM days JOIN cohort h
      ON h.joined_on <= days.day AND (h.left_on IS NULL OR h.left_on >= days.day)
    GROUP BY 1
), rolled AS (  -- from the covering index alone (migration 025)
    SELECT u.household_ref AS ref, u.day, u.uses::bigint AS uses
    FROM usage_daily u JOIN households h
      ON h.ref = u.household_ref AND h.cohort = %(cohort)s AND h.joined_on <= u.day
         AND (h.left_on IS NULL OR h.left_on >= u.day)
    WHERE u.day >= %(first)s AND u.day <= %(last)s AND (SELECT wm FROM seen) IS NOT NULL
), fresh AS (
    SELECT d.household_ref AS ref, (r.ts AT TIME ZONE 'Europe/London')::date AS day,
           count(*) AS uses
    FROM readings r JOIN devices d ON d.id = r.device_id
    JOIN cohort h ON h.ref = d.household_ref
    WHERE r.kind = 'run'
      AND r.ts >= CASE WHEN (SELECT wm FROM seen) IS NULL
                       THEN (%(first)s::date::timestamp AT TIME ZONE 'Europe/London')
                       ELSE greatest(%(first)s::date::timestamp AT TIME ZONE 'Europe/London',
                                     %(late_from)s) END
      AND r.ts < ((%(last)s::date + 1)::timestamp AT TIME ZONE 'Europe/London')
      AND r.received_at > coalesce((SELECT wm FROM seen), '-infinity')
      AND h.joined_on <= (r.ts AT TIME ZONE 'Europe/London')::date
      AND (h.left_on IS NULL OR h.left_on >= (r.ts AT TIME ZONE 'Europe/London')::date)
    GROUP BY 1, 2
), used AS (  -- each enrolled household-day with a row, its uses; one array a day
    SELECT coalesce(r.day, f.day) AS day,
           array_agg(coalesce(r.uses, 0) + coalesce(f.uses, 0)) AS uses
    FROM rolled r FULL JOIN fresh f ON f.ref = r.ref AND f.day = r.day
    GROUP BY 1
)
SELECT e.day,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v)
        FROM (SELECT unnest(coalesce(u.uses, '{}')) AS v
              UNION ALL  -- households enrolled without a use that day: 0
              SELECT 0 FROM generate_series(1, e.n - coalesce(cardinality(u.uses), 0))) x
       ) AS median,
       e.n::int AS households
FROM enrolled e LEFT JOIN used u USING (day)
ORDER BY 1
"""

HOUSEHOLD_ANOMALIES: LiteralString = """
SELECT id, kind, household_ref, device_id, value, detail, first_seen, last_seen, resolved_at
FROM anomalies
WHERE household_ref = %(ref)s AND (resolved_at IS NULL OR resolved_at >= %(start)s)
ORDER BY resolved_at DESC NULLS FIRST, last_seen DESC
LIMIT 100
"""


# --- a household's erasure (analytics/keeper.py) --------------------------------------------
ERASE_DEVICE_DAILY: LiteralString = "DELETE FROM device_daily WHERE device_id = ANY(%(ids)s)"
ERASE_ANOMALIES: LiteralString = (
    "DELETE FROM anomalies WHERE device_id = ANY(%(ids)s) OR household_ref = %(ref)s"
)
ERASE_USAGE_HOURLY: LiteralString = "DELETE FROM usage_hourly WHERE household_ref = %(ref)s"
ERASE_USAGE_DAILY: LiteralString = "DELETE FROM usage_daily WHERE household_ref = %(ref)s"
# refs are letters, digits, - and _ (a CHECK): safe in a pattern; whole words only, so HH-004 is
# not replaced inside HH-0042
REDACT_WEEKLY_REPORTS: LiteralString = (
    "UPDATE weekly_reports SET "
    "html = regexp_replace(html, '(?<![A-Za-z0-9_-])' || %(ref)s || '(?![A-Za-z0-9_-])', "
    "%(erased)s, 'g'), "
    "csv = regexp_replace(csv, '(?<![A-Za-z0-9_-])' || %(ref)s || '(?![A-Za-z0-9_-])', "
    "%(erased)s, 'g') "
    "WHERE strpos(html, %(ref)s) > 0 OR strpos(csv, %(ref)s) > 0"
)

# --- water meters (wM-Bus, ingest/adapters/wmbus.py) -------------------------------------------
# A household's litres per UK day from its meters' registers: each read's increase over the one
# before it (a register that went down — a meter swapped — counts from zero), on the day of the
# later read.
HOUSEHOLD_METER_DAYS: LiteralString = """
WITH r AS (
    SELECT m.ts, m.total_l,
           m.total_l - lag(m.total_l) OVER (PARTITION BY m.device_id, m.meter_id ORDER BY m.ts)
               AS inc
    FROM meter_reads m JOIN devices d ON d.id = m.device_id
    WHERE d.household_ref = %(ref)s
      AND m.ts >= %(start)s - interval '1 day' AND m.ts < %(end)s
)
SELECT (ts AT TIME ZONE 'Europe/London')::date AS day,
       sum(CASE WHEN inc >= 0 THEN inc ELSE total_l END) AS litres,
       count(*) AS reads
FROM r
WHERE inc IS NOT NULL AND ts >= %(start)s
GROUP BY 1
ORDER BY 1
"""

# --- alerts (analytics/alerts.py) ---------------------------------------------------------------
LIVE_ALERTS: LiteralString = """
SELECT id, kind, device_id, state, first_found, clear_since
FROM alerts WHERE state <> 'resolved' ORDER BY id FOR UPDATE
"""
HELD_BACK: LiteralString = "SELECT kind, device_id, id FROM alerts WHERE holds_back FOR UPDATE"
RELEASE_HELD: LiteralString = "UPDATE alerts SET holds_back = false WHERE id = ANY(%s)"
NEW_ALERT: LiteralString = """
INSERT INTO alerts (kind, device_id, household_ref, state, detail, first_found, last_found)
VALUES (%s, %s, %s, 'pending', %s, %s, %s)
RETURNING id
"""
ALERT_FOUND: LiteralString = (
    "UPDATE alerts SET detail = %s, last_found = %s, clear_since = NULL WHERE id = %s"
)
OPEN_ALERT: LiteralString = "UPDATE alerts SET state = 'open', opened_at = %s WHERE id = %s"
ALERT_CLEARING: LiteralString = "UPDATE alerts SET clear_since = %s WHERE id = %s"
# (resolved_at: the check's time, or NULL for now(); by: a person or NULL for the check; note)
RESOLVE_ALERT: LiteralString = """
UPDATE alerts SET state = 'resolved', resolved_at = coalesce(%s, now()), resolved_by = %s,
                  resolution_note = %s, holds_back = %s
WHERE id = %s
"""
ALERTS_TO_ESCALATE: LiteralString = """
SELECT id, escalation_level FROM alerts
WHERE state = 'open' AND coalesce(escalated_at, opened_at) <= %s AND escalation_level < %s
ORDER BY id
"""
ESCALATE_ALERT: LiteralString = (
    "UPDATE alerts SET escalation_level = %s, escalated_at = %s WHERE id = %s"
)
ALERT: LiteralString = """
SELECT kind, device_id, household_ref, detail, first_found, opened_at FROM alerts WHERE id = %s
"""
ALERT_STATE: LiteralString = "SELECT state FROM alerts WHERE id = %s FOR UPDATE"
ACKNOWLEDGE_ALERT: LiteralString = """
UPDATE alerts SET state = 'acknowledged', acknowledged_by = %s, acknowledged_at = now()
WHERE id = %s
"""
ASSIGN_ALERT: LiteralString = "UPDATE alerts SET assigned_to = %s WHERE id = %s"
ALERT_HISTORY: LiteralString = (
    "INSERT INTO alert_history (alert_id, action, actor, note, at) VALUES (%s, %s, %s, %s, %s)"
)
ALERT_HISTORY_OF: LiteralString = (
    "SELECT at, action, actor, note FROM alert_history WHERE alert_id = %s ORDER BY at, id"
)
LIST_ALERTS: LiteralString = """
SELECT id, kind, device_id, household_ref, state, detail, first_found, last_found, opened_at,
       acknowledged_by, acknowledged_at, assigned_to, escalation_level, resolved_at,
       resolved_by, resolution_note
FROM alerts
WHERE (%(state)s::text IS NULL AND state <> 'resolved' OR %(state)s = 'all'
       OR state = %(state)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
  AND (%(household)s::text IS NULL OR household_ref = %(household)s)
ORDER BY first_found DESC, id DESC
LIMIT %(limit)s
"""
HISTORIES_OF: LiteralString = """
SELECT alert_id, at, action, actor, note FROM alert_history WHERE alert_id = ANY(%s)
ORDER BY alert_id, at, id
"""
ERASE_ALERTS: LiteralString = "DELETE FROM alerts WHERE household_ref = %(ref)s"
HOUSEHOLD_ALERT_IDS: LiteralString = "SELECT id FROM alerts WHERE household_ref = %(ref)s"

# --- the analysts' daily digest (analytics/digest.py) -------------------------------------------
DIGEST_SUBSCRIBE: LiteralString = """
INSERT INTO digest_subscriptions (user_id, email, unsubscribe, confirm)
VALUES (%(user)s, %(email)s, %(unsubscribe)s, %(confirm)s)
ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, unsubscribe = excluded.unsubscribe,
                                    confirm = excluded.confirm, confirmed_at = NULL
WHERE digest_subscriptions.email <> excluded.email
RETURNING confirm
"""
DIGEST_CONFIRM_LINK: LiteralString = """
UPDATE digest_subscriptions SET confirm = NULL, confirmed_at = %s WHERE confirm = %s
RETURNING email
"""
DIGEST_OF_CONFIRM: LiteralString = "SELECT email FROM digest_subscriptions WHERE confirm = %s"
DIGEST_UNSUBSCRIBE: LiteralString = "DELETE FROM digest_subscriptions WHERE user_id = %s"
DIGEST_UNSUBSCRIBE_LINK: LiteralString = (
    "DELETE FROM digest_subscriptions WHERE unsubscribe = %s RETURNING email"
)
DIGEST_OF: LiteralString = (
    "SELECT email, confirmed_at IS NOT NULL FROM digest_subscriptions WHERE user_id = %s"
)
DIGEST_OF_LINK: LiteralString = "SELECT email FROM digest_subscriptions WHERE unsubscribe = %s"
DIGEST_ERASE: LiteralString = "DELETE FROM digest_subscriptions WHERE email = %s"
# analysts and admins still allowed in
DIGEST_SUBSCRIBERS: LiteralString = """
SELECT d.user_id, d.email, d.unsubscribe FROM digest_subscriptions d
JOIN users u ON u.id = d.user_id
WHERE u.revoked_at IS NULL AND u.role IN ('analyst', 'admin') AND d.confirmed_at IS NOT NULL
ORDER BY d.user_id
"""
DIGEST_NEW_ALERTS: LiteralString = """
SELECT kind, device_id, household_ref, state, first_found FROM alerts
WHERE opened_at >= %s AND opened_at <= %s ORDER BY opened_at, id
"""
DIGEST_OPEN_ALERTS: LiteralString = """
SELECT kind, device_id, household_ref, state, first_found FROM alerts
WHERE state IN ('open', 'acknowledged') AND opened_at < %s ORDER BY opened_at, id
"""
DIGEST_DAY_FIGURES: LiteralString = """
SELECT count(*) FILTER (WHERE readings_received > 0) AS households, sum(uses) AS uses,
       sum(water_l) AS water_l, sum(energy_wh) AS energy_wh, sum(jams) AS jams,
       sum(leaks) AS leaks
FROM usage_daily WHERE day = %s
"""

# --- the archive tier of raw readings (analytics/archive.py) --------------------------------
# the checksum of a month's (device_id, ts, seq): the same formula as archive.row_hash
ARCHIVE_DB_TALLY: LiteralString = """
SELECT count(*),
       sum(('x' || substr(md5(device_id || ':' || (extract(epoch FROM ts) * 1000000)::bigint
                              || ':' || seq), 1, 15))::bit(60)::bigint)
FROM readings WHERE ts >= %s AND ts < %s
"""
ARCHIVE_READINGS: LiteralString = """
SELECT device_id, ts, seq, kind, run_s, energy_wh, water_l, peak_a, fault, received_at
FROM readings WHERE ts >= %s AND ts < %s ORDER BY device_id, ts, seq
"""
ARCHIVE_STATE: LiteralString = "SELECT state FROM archived_months WHERE month = %s"
ARCHIVE_BEGIN: LiteralString = """
INSERT INTO archived_months (month, state, path, started_at) VALUES (%s, 'writing', %s, %s)
ON CONFLICT (month) DO UPDATE SET state = 'writing', rows = NULL, checksum = NULL, bytes = NULL,
                                  started_at = excluded.started_at
"""
ARCHIVE_RESET: LiteralString = "UPDATE archived_months SET state = 'writing' WHERE month = %s"
ARCHIVE_WRITTEN: LiteralString = """
UPDATE archived_months SET state = 'written', rows = %s, checksum = %s, bytes = %s
WHERE month = %s
"""
# the month's readings go, and the tally of exactly the rows deleted comes back: the
# transaction is rolled back unless it is the file's (a reading stored since the check stays)
ARCHIVE_DELETE_READINGS: LiteralString = """
WITH gone AS (DELETE FROM readings WHERE ts >= %s AND ts < %s RETURNING device_id, ts, seq)
SELECT count(*),
       sum(('x' || substr(md5(device_id || ':' || (extract(epoch FROM ts) * 1000000)::bigint
                              || ':' || seq), 1, 15))::bit(60)::bigint)
FROM gone
"""
ARCHIVE_DONE: LiteralString = """
UPDATE archived_months SET state = 'archived', archived_at = %s WHERE month = %s
"""
ARCHIVE_DROP_CHUNKS: LiteralString = "SELECT drop_reading_chunks_between(%s, %s)"
ARCHIVE_FORGET: LiteralString = "DELETE FROM archived_months WHERE month = %s"
ARCHIVE_RESTORING: LiteralString = "UPDATE archived_months SET state = 'restoring' WHERE month = %s"
ARCHIVE_RESTORE_TABLE: LiteralString = (
    "CREATE TEMP TABLE restoring (LIKE readings INCLUDING DEFAULTS) ON COMMIT DROP"
)
ARCHIVE_RESTORE_COPY: LiteralString = (
    "COPY restoring (device_id, ts, seq, kind, run_s, energy_wh, water_l, peak_a, fault, "
    "received_at) FROM STDIN"
)
ARCHIVE_RESTORE_INSERT: LiteralString = (
    "INSERT INTO readings SELECT * FROM restoring ON CONFLICT DO NOTHING"
)
ARCHIVED_UNTIL: LiteralString = (
    "SELECT max(month) FROM archived_months WHERE state IN ('archived', 'restoring')"
)
ARCHIVE_LIST: LiteralString = """
SELECT month, state, path, rows, bytes, archived_at FROM archived_months ORDER BY month
"""
SCOPE_DEVICES: LiteralString = (
    """
SELECT d.id FROM devices d JOIN households h ON h.ref = d.household_ref WHERE """
    + SCOPE_FILTER
)
ARCHIVE_OF_STATE: LiteralString = """
SELECT month, path FROM archived_months WHERE state IN ('archived', 'restoring') ORDER BY month
"""
ARCHIVE_REWRITTEN: LiteralString = """
UPDATE archived_months SET rows = %s, checksum = %s, bytes = %s WHERE month = %s
"""
# months before the horizon that hold readings and are not archived, oldest first
ARCHIVE_CANDIDATES: LiteralString = """
WITH span AS (SELECT date_trunc('month', min(ts), 'UTC') AS first FROM readings
              WHERE ts < %(horizon)s)
SELECT (m AT TIME ZONE 'UTC')::date
FROM span, generate_series(span.first, %(horizon)s - interval '1 month', interval '1 month') m
WHERE span.first IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM archived_months a WHERE a.month = (m AT TIME ZONE 'UTC')::date
      AND a.state = 'archived')
ORDER BY 1
"""
