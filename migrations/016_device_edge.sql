-- The device edge (issue 26): a device may store at most ingest_device_readings_per_min new
-- readings a minute of their arrival. Ingest keeps each device's current window here, beside
-- its last stored seq, and reads both under a row lock at the start of every batch
-- (ingest/edge.py; docs/ingest.md, "Device edge").
ALTER TABLE device_status
    ADD COLUMN rate_minute timestamptz,
    ADD COLUMN rate_count integer NOT NULL DEFAULT 0;
