"""Erasure covers every table with household or personal data (issue 29): a table with a column
that ties its rows to a household, a device or a person is declared by a package's keeper
(core/keepers.py, composed in api/keepers.py) under household or person, or kept on purpose with
a reason. A new such table that nobody declares fails here."""

from __future__ import annotations

import psycopg
import pytest

from api.keepers import KEEPERS, OTHERS, REGISTRY

pytestmark = pytest.mark.services

# columns that tie a row to a household or a device, and to a person
HOUSEHOLD_COLUMNS = ("household_ref", "device_id")
PERSON_COLUMNS = ("email", "person_name", "speakers")


def _tables_with(
    conn: psycopg.Connection[tuple[object, ...]], columns: tuple[str, ...]
) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
        "AND c.column_name = ANY(%s)",
        (list(columns),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def test_every_table_with_household_or_personal_data_is_erased_or_kept_with_a_reason(
    owner_db_url: str,
) -> None:
    kept = {t for k in KEEPERS for t in k.kept}
    household = {t for k in KEEPERS for t in k.household}
    person = {t for k in KEEPERS for t in k.person}
    with psycopg.connect(owner_db_url) as conn:
        by_household = _tables_with(conn, HOUSEHOLD_COLUMNS) | {"households"}
        by_person = _tables_with(conn, PERSON_COLUMNS)
        every = {str(r[0]) for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'")}  # fmt: skip
    assert by_household - household - kept == set()
    assert by_person - person - kept == set()
    declared = {t for k in KEEPERS for t in k.tables} | kept
    assert declared <= every, declared - every  # no keeper names a table that is not there
    for k in KEEPERS:
        assert not k.household or k.erase_household is not None, k.package
        assert not k.person or k.erase_person is not None, k.package
    assert OTHERS[-1] is not REGISTRY and KEEPERS[-1] is REGISTRY  # devices, households last


def test_the_check_sees_an_undeclared_table(owner_db_url: str) -> None:
    """A table with a device_id that no keeper declares is found (in a rolled-back transaction)."""
    with psycopg.connect(owner_db_url) as conn:
        conn.execute("CREATE TABLE forgotten_per_device (device_id text)")
        try:
            found = _tables_with(conn, HOUSEHOLD_COLUMNS)
        finally:
            conn.rollback()
    household = {t for k in KEEPERS for t in k.household}
    assert "forgotten_per_device" in found - household


def test_every_keepers_retention_rule_is_a_scheduled_job() -> None:
    """A package's retention rules run: each is one of the scheduler's jobs, under its name."""
    from wastepilot.commands.scheduler import JOBS

    rules = {name: fn for k in KEEPERS for name, fn in k.retention.items()}
    assert rules, "no retention rule declared"
    assert {name: JOBS.get(name) for name in rules} == rules
