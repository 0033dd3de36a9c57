"""The services' database role has row rights only (issue 26, migrations/017): it cannot
change the schema, drop or disable the audit log's triggers, empty a table, delete audit rows
or rewrite the migrations' record, and it is no superuser; what it needs (rows, retention's
chunk drops through the owner's function) it can do. Real PostgreSQL, the role the tests' own
services use."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]

REFUSED = [
    "ALTER TABLE readings ADD COLUMN sneaky text",
    "ALTER TABLE audit_log DISABLE TRIGGER USER",
    "DROP TRIGGER users_audit ON users",
    "DROP TABLE dead_letters",
    "TRUNCATE readings",
    "DELETE FROM audit_log",
    "UPDATE schema_migrations SET checksum = 'x'",
    "CREATE TABLE mine (x int)",
    "CREATE FUNCTION mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER ROLE wastepilot_service SUPERUSER",
    "SELECT drop_chunks('readings', older_than => now())",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_the_services_role_cannot(db_url: str, db: Conn, statement: str) -> None:
    with psycopg.connect(db_url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_services_role_is_no_superuser_and_owns_nothing(db_url: str, db: Conn) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, current_user FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert row is not None and row[:3] == (False, False, False), row
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE pg_get_userbyid(c.relowner) = current_user AND n.nspname = 'public'"
        ).fetchone()
        assert owned == (0,)
        # the owner's schema it uses is the one the owner's URL migrated
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            db.execute("SELECT count(*) FROM schema_migrations").fetchone()
        )


def test_what_the_services_need_they_may(db_url: str, db: Conn) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO households (ref, postcode_district) VALUES ('HH-LP', 'AB1')")
        conn.execute("UPDATE households SET postcode_district = 'AB2' WHERE ref = 'HH-LP'")
        conn.execute("LOCK TABLE erased_devices IN SHARE MODE")  # ingest's batch lock
        conn.execute("CREATE TEMP TABLE scratch (x int)")  # staging, rollups
        assert conn.execute(
            "SELECT drop_reading_chunks(now() - interval '5 years')"
        ).fetchone() == (0,)
        conn.execute("DELETE FROM households WHERE ref = 'HH-LP'")
        conn.commit()
