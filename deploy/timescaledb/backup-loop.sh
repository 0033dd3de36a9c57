#!/bin/sh
# The backup service (root, for the broker's files; pgBackRest runs as postgres): a backup at
# the top of every hour — incremental, full on Sundays at 01:00 UTC — each followed by
# consistent copies of the broker's store (sqlite's online backup) and its dynamic-security
# file under broker/<label>/ in the repository. pgBackRest expires old backups and WAL
# (repo1-retention-full); the broker's copies of expired backups go with them.
set -eu
pgbr() { su-exec postgres pgbackrest --stanza=wastepilot "$@"; }
labels() { pgbr info --output=json | grep -o '"label":"[^"]*"' | cut -d'"' -f4; }
until pg_isready -h /var/run/postgresql -q; do sleep 2; done
pgbr stanza-create
while :; do
  kind=incr
  [ "$(date -u +%u%H)" = "701" ] && kind=full
  if pgbr --type="$kind" backup && kept=$(labels) && [ -n "$kept" ]; then
    label=$(printf '%s\n' "$kept" | tail -n 1)
    dir=/var/lib/pgbackrest/broker/$label
    mkdir -p "$dir.partial"
    sqlite3 /mosquitto/data/mosquitto.sqlite3 ".backup '$dir.partial/mosquitto.sqlite3'"
    cp /mosquitto/data/dynamic-security.json "$dir.partial/"
    date -u +%Y-%m-%dT%H:%M:%S+00:00 > "$dir.partial/taken.txt"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    for old in /var/lib/pgbackrest/broker/*; do
      printf '%s\n' "$kept" | grep -qx "$(basename "$old")" || rm -rf "$old"
    done
  else
    echo "backup-loop: the backup or its listing failed; the broker's copies are left as they are" >&2
  fi
  now=$(date -u +%s)
  sleep $((3600 - now % 3600))
done
