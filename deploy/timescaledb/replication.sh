#!/bin/sh
# Runs once, when the primary's volume is first initialised: the standby's replication login and
# synchronous replication (ALTER SYSTEM, so that `wastepilot db guard` can switch it off when the
# standby is lost and on again when it is back: core/replication.py).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '${DB_REPLICATION_PASSWORD}';
ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (wastepilot_standby)';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
