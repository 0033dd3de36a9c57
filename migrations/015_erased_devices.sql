-- Tombstones of erased devices (issue 26: "erasure leaves nothing"). Household erasure writes
-- its devices here first, then deletes their data, in one transaction. Ingest locks this table
-- in SHARE mode at the start of every batch and drops whatever of a tombstoned device the batch
-- holds (readings, statuses, dead letters with their payloads; only a count is kept). The
-- erasure's insert waits for the batches under way to commit (their rows are then deleted with
-- the rest) and batches that start meanwhile wait for the erasure (and then see the tombstone):
-- nothing of the household is stored after it, whether queued on the broker, in flight or sent
-- later by the device. A device id is never registered again once erased.
CREATE TABLE erased_devices (
    device_id  text PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now()
);
