-- Measures as double precision: real (float4) refused values a device may legitimately send
-- (tiny subnormal numbers underflow), which turned a valid reading into a storage error.
ALTER TABLE readings
    ALTER COLUMN run_s TYPE double precision,
    ALTER COLUMN energy_wh TYPE double precision,
    ALTER COLUMN water_l TYPE double precision,
    ALTER COLUMN peak_a TYPE double precision;
