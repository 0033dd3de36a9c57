-- The archive tier of raw readings (issue 32): a month of readings older than
-- WASTEPILOT_ARCHIVE_AFTER_MONTHS is written to a Parquet file, verified against the database
-- (row count and a checksum of (device_id, ts, seq)), then deleted from `readings` in the same
-- transaction that marks the month archived (analytics/archive.py). Rollups stay here.
--
-- state: writing (the file is being written; the rows are all still here), written (the file
-- is complete and verified; the rows are still here), archived (the rows are only in the
-- file), restoring (being copied back; the file is still the truth until the copy commits,
-- which removes this row).
CREATE TABLE archived_months (
    month        date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    state        text NOT NULL CHECK (state IN ('writing', 'written', 'archived', 'restoring')),
    path         text NOT NULL,  -- the file (under WASTEPILOT_ARCHIVE_DIR)
    rows         bigint,
    checksum     numeric,  -- sum over rows of a 60-bit slice of md5(device_id:ts_us:seq)
    bytes        bigint,
    started_at   timestamptz NOT NULL,
    archived_at  timestamptz
);

-- empty chunks inside an archived month go (their rows were deleted in the archiving
-- transaction); only chunks wholly inside [newer_than, older_than) are touched
CREATE FUNCTION drop_reading_chunks_between(newer_than timestamptz, older_than timestamptz)
RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT count(*)::integer
      FROM drop_chunks('readings', older_than => older_than, newer_than => newer_than) $$;
REVOKE ALL ON FUNCTION drop_reading_chunks_between(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_reading_chunks_between(timestamptz, timestamptz) TO wastepilot_app;
