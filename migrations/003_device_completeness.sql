-- Data completeness per device and local (Europe/London) day, from gaps in each device's seq:
-- a reading whose seq jumps past its predecessor's + 1 reveals the missing ones, counted on
-- the day of the reading after the gap. A seq sent twice (a re-send with a skewed clock) is
-- counted once. Analysts read it directly; the rollup job stores it per day.
CREATE VIEW device_completeness_daily AS
WITH ordered AS (
    SELECT device_id, ts, seq,
           lag(seq) OVER (PARTITION BY device_id ORDER BY seq, ts) AS prev_seq
    FROM readings
)
SELECT device_id,
       (ts AT TIME ZONE 'Europe/London')::date AS day,
       count(DISTINCT seq) AS received,
       sum(CASE WHEN prev_seq IS NOT NULL AND seq > prev_seq + 1
                THEN seq - prev_seq - 1 ELSE 0 END)::bigint AS missing
FROM ordered
GROUP BY 1, 2;
