"""Who keeps what about households and people: one interface each package implements, composed
at the top (api/keepers.py), so that erasing a household or a person, and the tests' list of
tables, come from one place (docs/architecture.md, "Personal data").

A package that creates a table declares it in its ``KEEPER`` (``<package>/keeper.py``): under
``household`` if rows belong to a household or one of its devices (a ``household_ref`` or
``device_id`` column), under ``person`` if they name a person (an email, a name), else under
``other``; it erases its household and person rows in ``erase_household`` /
``erase_person``, and names its retention rules (scheduled jobs) in ``retention``.
tests/core/test_keepers.py fails for a table with such columns that no keeper covers, and for a
retention rule the scheduler does not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.db import Conn
from core.jobs import JobFn

# (conn, household ref, its device ids) -> rows erased, by table
EraseHousehold = Callable[[Conn, str, list[str]], dict[str, int]]
# (conn, the person's email) -> rows erased, by table
ErasePerson = Callable[[Conn, str], dict[str, int]]


@dataclass(frozen=True, slots=True)
class Keeper:
    package: str
    household: tuple[str, ...] = ()
    person: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    erase_household: EraseHousehold | None = None
    erase_person: ErasePerson | None = None
    # kept on purpose after an erasure, and why (the coverage test reads these)
    kept: dict[str, str] = field(default_factory=dict)
    # the package's retention rules: scheduled jobs by name (core/jobs.py's JobFn), run daily
    retention: dict[str, JobFn] = field(default_factory=dict)

    @property
    def tables(self) -> tuple[str, ...]:
        return (*self.household, *self.person, *self.other)


def erase_household(
    keepers: tuple[Keeper, ...], conn: Conn, ref: str, ids: list[str]
) -> dict[str, int]:
    """Every keeper's rows of the household, in the keepers' order (the registry's last)."""
    done: dict[str, int] = {}
    for k in keepers:
        if k.erase_household is not None:
            done |= k.erase_household(conn, ref, ids)
    return done


def erase_person(keepers: tuple[Keeper, ...], conn: Conn, email: str) -> dict[str, int]:
    done: dict[str, int] = {}
    for k in keepers:
        if k.erase_person is not None:
            done |= k.erase_person(conn, email)
    return done
