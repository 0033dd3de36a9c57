"""What ingest keeps about households (core/keepers.py): the raw readings, dead letters and the
devices' status, and the maker devices' samples, uses, events and marks; erased with the
household."""

from __future__ import annotations

from core.db import Conn
from core.keepers import Keeper
from ingest import queries as q
from ingest.derive import sample_retention


def _erase_household(conn: Conn, _ref: str, ids: list[str]) -> dict[str, int]:
    return {
        "readings": conn.execute(q.ERASE_READINGS, (ids,)).rowcount,
        "dead_letters": conn.execute(q.ERASE_DEAD_LETTERS, {"ids": ids}).rowcount,
        "device_status": conn.execute(q.ERASE_DEVICE_STATUS, (ids,)).rowcount,
        "device_status_history": conn.execute(q.ERASE_DEVICE_STATUS_HISTORY, (ids,)).rowcount,
        **{
            t: conn.execute(statement, (ids,)).rowcount
            for t, statement in q.ERASE_MAKER_DATA.items()
        },
    }


KEEPER = Keeper(
    "ingest",
    household=(
        "readings",
        "dead_letters",
        "device_status",
        "device_status_history",
        *q.MAKER_TABLES,
    ),
    erase_household=_erase_household,
    retention={"sample_retention": sample_retention},  # maker devices' raw samples (by chunk)
)
