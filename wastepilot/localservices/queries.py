"""The SQL of the local services' set-up, in one place."""

from typing import LiteralString

ROLE_EXISTS: LiteralString = "SELECT 1 FROM pg_roles WHERE rolname = %s"
DATABASE_EXISTS: LiteralString = "SELECT 1 FROM pg_database WHERE datname = %s"
PENDING_RESTART: LiteralString = "SELECT 1 FROM pg_settings WHERE pending_restart"
SYNC_STATE: LiteralString = "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s"
