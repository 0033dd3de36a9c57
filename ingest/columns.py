"""A stored reading's columns, declared once. Each field of :class:`Row` is a column of
``readings`` with its PostgreSQL type (the ``Annotated`` metadata); the validator fills a Row by
these names from the contract's Reading (core/wire.py), and the staging table, the binary COPY
and the INSERT's column lists are built from them (ingest/queries.py). Ingest adds one column of
its own, ``received_at``. A new column of readings is a line here, a migration and a field of
the wire schema — nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NamedTuple, get_args, get_type_hints


class Row(NamedTuple):
    """A valid reading as ingest stores it, in the staging table's column order. Checking hands
    these on rather than the pydantic models: they cross from the validator process to the
    writer process, and a model pickles and unpickles five times slower."""

    ts: Annotated[datetime, "timestamptz"]
    device_id: Annotated[str, "text"]
    seq: Annotated[int, "int8"]
    kind: Annotated[str, "text"]
    run_s: Annotated[float | None, "float8"]
    energy_wh: Annotated[float | None, "float8"]
    water_l: Annotated[float | None, "float8"]
    peak_a: Annotated[float | None, "float8"]
    fault: Annotated[str | None, "text"]


_HINTS = get_type_hints(Row, include_extras=True)
FIELDS: tuple[str, ...] = Row._fields
# (name, PostgreSQL type, may be NULL) of every staged column: the reading's, then ingest's own
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    *(
        (name, str(_HINTS[name].__metadata__[0]), type(None) in get_args(_HINTS[name].__origin__))
        for name in FIELDS
    ),
    ("received_at", "timestamptz", False),
)
NAMES: tuple[str, ...] = tuple(c[0] for c in COLUMNS)
TYPES: list[str] = [c[1] for c in COLUMNS]

# A staged row: a Row's values, then received_at (a plain tuple: what COPY writes). Read by name
# through these positions.
StagedRow = tuple[Any, ...]
TS, DEVICE, SEQ = (FIELDS.index(n) for n in ("ts", "device_id", "seq"))
RECEIVED = len(FIELDS)
