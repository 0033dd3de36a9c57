-- The per-day profile rollup also carries run seconds, energy and faults, so day and week series
-- of the whole pilot or a cohort read 24 rows per cohort and day instead of a row per household.
ALTER TABLE usage_profile_daily
    ADD COLUMN run_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN energy_wh double precision NOT NULL DEFAULT 0,
    ADD COLUMN faults integer NOT NULL DEFAULT 0;

-- existing rows lack the new figures: rebuild the table from the hourly rollups
DELETE FROM usage_profile_daily;
INSERT INTO usage_profile_daily (day, cohort, hour, uses, water_l, run_s, energy_wh, faults)
SELECT (u.hour AT TIME ZONE 'Europe/London')::date, h.cohort,
       extract(hour FROM u.hour AT TIME ZONE 'Europe/London')::smallint,
       sum(u.uses)::int, sum(u.water_l), sum(u.run_s), sum(u.energy_wh), sum(u.faults)::int
FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
GROUP BY 1, 2, 3;
