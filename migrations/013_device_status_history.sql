-- Each change of a device's connection state (issue 20: "device status and history" on the
-- household page): a row when ingest stores a status message that turns it online or offline.
-- device_status keeps only the latest; readings (last_seen) never add rows here.
CREATE TABLE device_status_history (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL,
    online     boolean NOT NULL,
    at         timestamptz NOT NULL  -- the status message's time (else when it was stored)
);
CREATE INDEX device_status_history_device_idx ON device_status_history (device_id, at DESC);

CREATE FUNCTION device_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.online IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.online IS DISTINCT FROM NEW.online) THEN
        INSERT INTO device_status_history (device_id, online, at)
        VALUES (NEW.device_id, NEW.online, coalesce(NEW.status_at, now()));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER device_status_history_row AFTER INSERT OR UPDATE OF online ON device_status
    FOR EACH ROW EXECUTE FUNCTION device_status_changed();
