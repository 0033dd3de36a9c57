"""The pilot registry: households and their devices. Used by the CLI, the API and the simulator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from core import clock
from core import queries as q
from core.errors import RegistryInvalid
from core.topics import KIND_FAMILY, V1_KIND, valid_device_id


@dataclass(frozen=True, slots=True)
class Household:
    ref: str
    cohort: str = "default"
    occupants: int | None = None
    postcode_district: str | None = None
    joined_on: date | None = None


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    household_ref: str
    model: str = "unknown"
    installed_on: date | None = None
    kind: str = V1_KIND  # how it speaks: core/topics.py KIND_FAMILY


def household_exists(conn: psycopg.Connection[Any], ref: str) -> bool:
    return conn.execute(q.HOUSEHOLD_EXISTS, (ref,)).fetchone() is not None


def add_households(
    conn: psycopg.Connection[tuple[object, ...]], households: Iterable[Household]
) -> int:
    """Register households (existing references are left as they are). Returns how many were new."""
    rows = [
        {
            "ref": h.ref,
            "postcode_district": h.postcode_district,
            "cohort": h.cohort,
            "occupants": h.occupants,
            "joined_on": h.joined_on or clock.today(),
        }
        for h in households
    ]
    for row in rows:
        if not valid_device_id(str(row["ref"])):
            raise RegistryInvalid(
                f"household reference {row['ref']!r}: letters, digits, - and _ only"
            )
    return _executemany(conn, q.UPSERT_HOUSEHOLD, rows)


def add_devices(conn: psycopg.Connection[tuple[object, ...]], devices: Iterable[Device]) -> int:
    """Register devices, creating each one's household when it does not exist yet."""
    devs = list(devices)
    for d in devs:
        if d.kind not in KIND_FAMILY:
            raise RegistryInvalid(f"device kind {d.kind!r}: one of {', '.join(KIND_FAMILY)}")
        if not valid_device_id(d.id):
            raise RegistryInvalid(
                f"device id {d.id!r}: 1-64 letters, digits, - and _, "
                "starting with a letter or digit"
            )
    add_households(conn, [Household(ref) for ref in sorted({d.household_ref for d in devs})])
    rows = [
        {
            "id": d.id,
            "household_ref": d.household_ref,
            "model": d.model,
            "installed_on": d.installed_on or clock.today(),
            "kind": d.kind,
        }
        for d in devs
    ]
    return _executemany(conn, q.UPSERT_DEVICE, rows)


def _executemany(
    conn: psycopg.Connection[tuple[object, ...]], query: str, rows: Sequence[Mapping[str, Any]]
) -> int:
    if not rows:
        return 0
    try:
        with conn.cursor() as cur:
            cur.executemany(query.encode(), rows, returning=False)
            count = cur.rowcount
    except psycopg.errors.CheckViolation as exc:
        raise RegistryInvalid(
            f"refused by the registry's rules: {exc.diag.message_primary}"
        ) from exc
    return max(count, 0)
