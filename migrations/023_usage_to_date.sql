-- Running totals per household (issue 32). Each usage_daily row also carries the household's
-- sums over all its days up to and including that day, so a period's per-household figures are
-- the difference of two rows: the current KPIs for 90 days at 10,000 households read 20,000
-- index entries instead of 900,000 rows (docs/benchmarks.md). The rollup refresh keeps them
-- (analytics/queries.py: REFRESH_TO_DATE, from the first affected day of each household on).
ALTER TABLE usage_daily
    ADD COLUMN uses_to_date bigint NOT NULL DEFAULT 0,
    ADD COLUMN run_s_to_date double precision NOT NULL DEFAULT 0,
    ADD COLUMN energy_wh_to_date double precision NOT NULL DEFAULT 0,
    ADD COLUMN water_l_to_date double precision NOT NULL DEFAULT 0,
    ADD COLUMN faults_to_date bigint NOT NULL DEFAULT 0,
    ADD COLUMN received_to_date bigint NOT NULL DEFAULT 0,
    ADD COLUMN missing_to_date bigint NOT NULL DEFAULT 0;

UPDATE usage_daily u
SET uses_to_date = c.uses, run_s_to_date = c.run_s, energy_wh_to_date = c.energy_wh,
    water_l_to_date = c.water_l, faults_to_date = c.faults, received_to_date = c.received,
    missing_to_date = c.missing
FROM (
    SELECT household_ref, day,
           sum(uses) OVER w AS uses, sum(run_s) OVER w AS run_s,
           sum(energy_wh) OVER w AS energy_wh, sum(water_l) OVER w AS water_l,
           sum(faults) OVER w AS faults, sum(readings_received) OVER w AS received,
           sum(readings_missing) OVER w AS missing
    FROM usage_daily
    WINDOW w AS (PARTITION BY household_ref ORDER BY day)
) c
WHERE u.household_ref = c.household_ref AND u.day = c.day;
