#!/bin/sh
# The standby's entry point: on an empty volume, a copy of the primary (pg_basebackup, WAL
# streamed alongside) that follows it as `wastepilot_standby`; then PostgreSQL as usual.
# Promotion (docs/recovery.md): docker compose stop timescaledb, then
#   docker compose exec -u postgres timescaledb-standby pg_ctl promote -D "$PGDATA"
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  until pg_isready -h timescaledb -p 5432 -q; do sleep 1; done
  # .pgpass: ':' and '\' in the password escaped; the password never passes through a shell line
  pw=$(printf '%s' "$DB_REPLICATION_PASSWORD" | sed 's/[\\:]/\\&/g')
  home=$(getent passwd postgres | cut -d: -f6)
  (umask 077; printf 'timescaledb:5432:replication:replicator:%s\n' "$pw" > "$home/.pgpass")
  chown postgres:postgres "$home/.pgpass"
  su-exec postgres pg_basebackup -h timescaledb -p 5432 -U replicator -D "$PGDATA" \
    -X stream -c fast -R -d "application_name=wastepilot_standby"
fi
exec docker-entrypoint.sh "$@"
