#!/bin/sh
# The primary's entry point: refuses to start when the standby has been promoted meanwhile (a
# failover while this node's host was away): two writable nodes would split the pilot's data.
# Rebuild this node as the standby instead (docs/recovery.md). Then PostgreSQL as usual.
set -eu
if [ -s "$PGDATA/PG_VERSION" ] && [ ! -f "$PGDATA/standby.signal" ]; then
  promoted=$(PGPASSWORD="$DB_REPLICATION_PASSWORD" PGCONNECT_TIMEOUT=3 psql -h timescaledb-standby \
    -U replicator -d postgres -tAc "SELECT NOT pg_is_in_recovery()" 2>/dev/null || true)
  if [ "$promoted" = "t" ]; then
    echo "primary.sh: timescaledb-standby was promoted; this node must not start as a primary." >&2
    echo "primary.sh: rebuild it as the standby (docs/recovery.md, 'Failover')." >&2
    exit 1
  fi
fi
exec docker-entrypoint.sh "$@"
