#!/bin/sh
# The backup service: an incremental backup every hour and a full one on Sundays at 01:xx (UTC),
# each followed by consistent copies of the broker's store (sqlite's online backup) and its
# dynamic-security file, under broker/<label>/ in the repository. pgBackRest expires old
# backups and WAL (repo1-retention-full); the broker's copies of expired backups go with them.
set -eu
until pg_isready -h /var/run/postgresql -q; do sleep 2; done
pgbackrest --stanza=wastepilot stanza-create
while :; do
  kind=incr
  [ "$(date -u +%u%H)" = "701" ] && kind=full
  if pgbackrest --stanza=wastepilot --type="$kind" backup; then
    label=$(pgbackrest --stanza=wastepilot info --output=json | grep -o '"label":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
    dir=/var/lib/pgbackrest/broker/$label
    mkdir -p "$dir.partial"
    sqlite3 /mosquitto/data/mosquitto.sqlite3 ".backup '$dir.partial/mosquitto.sqlite3'"
    cp /mosquitto/data/dynamic-security.json "$dir.partial/"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    kept=$(pgbackrest --stanza=wastepilot info --output=json | grep -o '"label":"[^"]*"' | cut -d'"' -f4)
    for old in /var/lib/pgbackrest/broker/*; do
      echo "$kept" | grep -qx "$(basename "$old")" || rm -rf "$old"
    done
  else
    echo "backup-loop: pgbackrest backup failed; next try in an hour" >&2
  fi
  sleep 3600
done
