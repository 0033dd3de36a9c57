#!/bin/sh
# Runs once, when the database volume is first initialised: the login role of the services
# (API, ingest, scheduler, CLI). It is a member of wastepilot_app, whose rights on the tables
# `wastepilot migrate` grants (migrations/017_least_privilege.sql): rows only, no DDL, no
# superuser. The owner ($POSTGRES_USER) signs in for migrations alone. The password goes in as a
# psql variable, quoted by psql.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$DB_SERVICE_PASSWORD" --username "$POSTGRES_USER" \
  --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE wastepilot_app NOLOGIN;
CREATE ROLE wastepilot_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
GRANT wastepilot_app TO wastepilot_service;
SQL
