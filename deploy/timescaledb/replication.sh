#!/bin/sh
# Runs once, when the primary's volume is first initialised: the standby's replication login and
# synchronous replication (ALTER SYSTEM, the way `wastepilot db guard` switches it off when the
# standby is lost and on again when it is back: core/replication.py). The password goes in as a
# psql variable, quoted by psql, never pasted into the SQL.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$DB_REPLICATION_PASSWORD" --username "$POSTGRES_USER" \
  --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'pw';
ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("wastepilot_standby")';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
