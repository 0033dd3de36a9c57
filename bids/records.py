"""Councils, fund rounds, guidance resources, workshops and bids: reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bids import notices
from bids import queries as q
from bids.councils import (
    REFERENCE_LICENCE,
    REFERENCE_NAME,
    REFERENCE_SOURCE,
    REFERENCE_VINTAGE,
    Council,
    CouncilMatcher,
    reference_councils,
)
from bids.errors import translated
from core.db import Conn
from core.errors import Invalid, NotFound

Row = dict[str, Any]


def load_reference_councils(conn: Conn) -> int:
    """Seed the council registry from mySociety's local authority register (bids/councils.py);
    councils already there are left as they
    are (officers may have corrected them). Returns how many were added."""
    seeds = reference_councils()
    source = f"{REFERENCE_NAME} {REFERENCE_VINTAGE}"
    with conn.cursor() as cur:
        before = cur.execute(q.COUNT_COUNCILS).fetchone()
        cur.executemany(
            q.INSERT_REFERENCE_COUNCIL,
            [
                (
                    c.gss_code,
                    c.name,
                    c.upper_tier_code,
                    c.region,
                    source,
                    c.short_name,
                    c.in_force_from,
                    c.in_force_until,
                    list(c.successor_codes),
                )
                for c in seeds
            ],
        )
        cur.execute(
            q.UPSERT_REFERENCE_DATA,
            (REFERENCE_NAME, REFERENCE_VINTAGE, REFERENCE_SOURCE, REFERENCE_LICENCE, len(seeds)),
        )
        after = cur.execute(q.COUNT_COUNCILS).fetchone()
    assert before is not None  # noqa: S101  (count(*) returns a row)
    assert after is not None  # noqa: S101
    return int(after[0]) - int(before[0])


def update_row(
    conn: Conn, table: str, key_column: str, key: object, changes: Mapping[str, object]
) -> None:
    """UPDATE one row's given columns (names come from our own models, never from input)."""
    if not changes:
        return
    stmt = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
        sql.Identifier(table),
        sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(c)) for c in [*changes, "updated_at"]
        ),
        sql.Identifier(key_column),
    )
    values = [Jsonb(v) if isinstance(v, list) else v for v in changes.values()]
    with translated():
        cur = conn.execute(stmt, [*values, _now(), key])
    if cur.rowcount == 0:
        raise NotFound(f"no {table[:-1]} {key!r}")


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _one(conn: Conn, query: str, params: tuple[object, ...], what: str) -> Row:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    if row is None:
        raise NotFound(what)
    return row


# --- councils ------------------------------------------------------------------------------------


def get_council(conn: Conn, code: str) -> Row:
    return _one(conn, q.SELECT_COUNCIL, (code,), f"no council with GSS code {code!r}")


def search_councils(conn: Conn, **filters: object) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.SEARCH_COUNCILS, filters).fetchall()


def add_council(conn: Conn, data: Mapping[str, Any]) -> Row:
    with translated(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            q.INSERT_COUNCIL,
            (data["gss_code"], data["name"], data.get("upper_tier_code"), data.get("region")),
        ).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return row


# --- workshops -----------------------------------------------------------------------------------


def _workshop_row(row: Row) -> Row:
    tz = ZoneInfo(row["timezone"])
    row["starts_local"] = row["starts_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    row["places_free"] = max(row["capacity"] - row["places_taken"], 0)
    return row


def get_workshop(conn: Conn, workshop_id: int) -> Row:
    return _workshop_row(
        _one(conn, q.SELECT_WORKSHOP, (workshop_id,), f"no workshop with id {workshop_id}")
    )


def list_workshops(conn: Conn, status: str | None, region: str | None) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q.LIST_WORKSHOPS, {"status": status, "region": region}).fetchall()
    return [_workshop_row(r) for r in rows]


def _link_resources(conn: Conn, workshop_id: int, resource_ids: list[int]) -> None:
    with translated(), conn.cursor() as cur:
        cur.execute(q.UNLINK_RESOURCES, (workshop_id,))
        for rid in dict.fromkeys(resource_ids):
            cur.execute(q.LINK_RESOURCE, (workshop_id, rid))


def create_workshop(conn: Conn, data: Mapping[str, Any]) -> Row:
    params = {k: v for k, v in data.items() if k != "resource_ids"}
    params["speakers"] = Jsonb(params.get("speakers", []))
    with translated():
        row = conn.execute(q.INSERT_WORKSHOP, params).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    workshop_id = int(row[0])
    _link_resources(conn, workshop_id, list(data.get("resource_ids", [])))
    return get_workshop(conn, workshop_id)


def update_workshop(conn: Conn, workshop_id: int, changes: Mapping[str, Any]) -> Row:
    current = get_workshop(conn, workshop_id)
    starts = changes.get("starts_at") or current["starts_at"]
    ends = changes.get("ends_at") or current["ends_at"]
    if ends <= starts:
        raise Invalid("a workshop must end after it starts")
    cols = {k: v for k, v in changes.items() if k != "resource_ids"}
    update_row(conn, "workshops", "id", workshop_id, cols)
    if "resource_ids" in changes:
        _link_resources(conn, workshop_id, list(changes["resource_ids"]))
    after = get_workshop(conn, workshop_id)
    notices.stamp_offers(conn)  # more places: the waiting list's offers
    notices.workshop_changed(conn, current, after)  # cancelled or moved: everyone is told
    return after


# --- bids ----------------------------------------------------------------------------------------


def get_bid(conn: Conn, bid_id: int) -> Row:
    return _one(conn, q.SELECT_BID, (bid_id,), f"no bid with id {bid_id}")


def list_bids(conn: Conn, **filters: object) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.LIST_BIDS, filters).fetchall()


def create_bid(conn: Conn, data: Mapping[str, Any]) -> Row:
    """A bid: a lead council's scheme in a round, with the partner councils of a joint bid."""
    fields = {"scheme": ""} | dict(data)
    partners = _partners(fields.pop("partner_codes", None) or [], fields["council_code"])
    with translated():
        row = conn.execute(q.INSERT_BID, fields).fetchone()
        assert row is not None  # noqa: S101  (INSERT ... RETURNING)
        conn.execute(q.SET_BID_PARTNERS, {"bid": int(row[0]), "codes": partners})
    return get_bid(conn, int(row[0]))


def update_bid(conn: Conn, bid_id: int, changes: Mapping[str, Any]) -> Row:
    """Change a bid; ``partner_codes``, when given, replaces its partners."""
    fields = dict(changes)
    partners = fields.pop("partner_codes", None)
    update_row(conn, "bids", "id", bid_id, fields)
    if partners is not None:
        lead = get_bid(conn, bid_id)["council_code"]
        with translated():
            conn.execute(q.SET_BID_PARTNERS, {"bid": bid_id, "codes": _partners(partners, lead)})
    return get_bid(conn, bid_id)


def _partners(codes: list[str], lead: str) -> list[str]:
    if lead in codes:
        raise Invalid(f"{lead} leads the bid: list only the other councils as partners")
    return sorted(set(codes))


def council_matcher(conn: Conn) -> CouncilMatcher:
    """The registry's councils, with their history, for matching names and codes."""
    return CouncilMatcher(
        Council(str(code), str(name), short, start, until, tuple(successors or ()))
        for code, name, short, start, until, successors in conn.execute(q.COUNCILS_FOR_MATCHING)
    )


def reference_data(conn: Conn) -> list[Row]:
    """Which reference data seeded the registry: source, vintage, licence, when loaded."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.SELECT_REFERENCE_DATA).fetchall()


def fund_rounds(conn: Conn) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.SELECT_ROUNDS).fetchall()


def add_fund_round(conn: Conn, data: Mapping[str, Any]) -> Row:
    with translated(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.INSERT_ROUND, dict(data)).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return row


def resources(conn: Conn) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.SELECT_RESOURCES).fetchall()


def add_resource(conn: Conn, title: str, url: str, published_on: object) -> Row:
    with translated(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.INSERT_RESOURCE, (title, url, published_on)).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return row


def audit_trail(
    conn: Conn, tables: list[str], table: str | None, key: str | None, limit: int
) -> list[Row]:
    """Changes to ``tables`` (one of them, one row's), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            q.SELECT_AUDIT, {"tables": tables, "table": table, "key": key, "limit": limit}
        ).fetchall()
