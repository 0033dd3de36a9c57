-- The covering index of migration 024 carries each day's uses too (issue 32): the household
-- page's cohort median per day reads a cohort's month of household-days from the index alone
-- (267,000 entries at 10,000 households) instead of the table (100 ms of its 400).
CREATE INDEX usage_daily_day_uses_idx ON usage_daily (day, household_ref)
    INCLUDE (uses, uses_to_date, run_s_to_date, energy_wh_to_date, water_l_to_date,
             faults_to_date, received_to_date, missing_to_date);
DROP INDEX usage_daily_day_totals_idx;
