-- Councils as they were (issue 18): when each was in force and what replaced it, so that a 2012
-- workshop's attendance matches the councils of 2012. Rows of councils abolished since are added
-- by the reference-data load (wastepilot migrate).
ALTER TABLE councils
    ADD COLUMN short_name      text,
    ADD COLUMN in_force_from   date,
    ADD COLUMN in_force_until  date,
    ADD COLUMN successor_codes text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT councils_in_force_order
        CHECK (in_force_until IS NULL OR in_force_from IS NULL OR in_force_until > in_force_from);
