"""A reading's columns are declared once (ingest/columns.py, issue 29): the declaration, the
contract's Reading and the readings table agree, and everything ingest writes is built from it."""

from __future__ import annotations

import psycopg
import pytest

from core.wire import Reading
from ingest import queries
from ingest.columns import COLUMNS, FIELDS, NAMES, RECEIVED, Row

PG_NAMES = {  # information_schema's names of the binary COPY types
    "timestamptz": "timestamp with time zone",
    "text": "text",
    "int8": "bigint",
    "float8": "double precision",
}


def test_the_declaration_is_the_contracts_reading_and_ingests_received_at() -> None:
    assert set(FIELDS) == set(Reading.model_fields) - {"v"}
    assert (*FIELDS, "received_at") == NAMES and len(FIELDS) == RECEIVED
    nullable = {name for name, _, may in COLUMNS if may}
    assert nullable == {n for n, f in Reading.model_fields.items() if not f.is_required()}


def test_the_staging_sql_is_built_from_the_declaration() -> None:
    copy = queries.COPY_STAGING.as_string(None)
    insert = queries.INSERT_FROM_STAGING.as_string(None)
    listed = ", ".join(f'"{n}"' for n in NAMES)
    assert f"({listed})" in copy
    assert f"INSERT INTO readings ({listed})" in insert and f"SELECT {listed}" in insert
    assert [pg for _, pg, _ in COLUMNS] == queries.STAGING_TYPES
    assert Row._fields == FIELDS


@pytest.mark.services
def test_the_declaration_matches_the_readings_table(owner_db_url: str) -> None:
    with psycopg.connect(owner_db_url) as conn:
        table = {
            str(name): (str(kind), nullable == "YES")
            for name, kind, nullable in conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'readings'"
            )
        }
    assert {n: (PG_NAMES[pg], may) for n, pg, may in COLUMNS} == table
