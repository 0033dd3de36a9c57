"""Reading an uploaded sheet within a budget: in a child process with a memory limit and a
time limit, at most ``PARALLEL`` at a time, and never while a database connection is held
(the callers parse first, then connect).

A sheet's bytes say little about what reading it costs: a 1.8 KB workbook can declare a grid
of 17 billion cells, a 511 KB one can hold shared strings that unpack to gigabytes. The checks
in bids/sheets.py refuse what is too large by its parts' sizes; this bounds what is left (and
what nobody has thought of yet): a child that runs out of memory or time is killed, and the
officer gets a 422 that says so, while the API process stays as it was.
"""

from __future__ import annotations

import contextlib
import resource
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from bids.sheets import ATTENDANCE, Layout, SheetRow, read_sheet
from core import forkserver
from core.errors import SheetError

PARALLEL = 2  # sheets read at once in this process; others wait
WAIT_S = 10.0  # longest wait for a free reader before the officer is asked to retry
TIME_S = 3.0  # wall-clock budget of one read (a 5,000-row workbook takes well under 1 s)
MEMORY_BYTES = 256 * 1024 * 1024  # heap a read may add to the child

_slots = threading.BoundedSemaphore(PARALLEL)


def _heap_now() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _read(filename: str, data: bytes, layout: Layout, out: Connection) -> None:
    """The child: cap its heap, read, send back rows or the error's text."""
    limit = _heap_now() + MEMORY_BYTES
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        out.send(("rows", read_sheet(filename, data, layout)))
    except SheetError as exc:
        out.send(("error", str(exc)))
    except MemoryError:
        out.send(("error", _TOO_BIG))
    finally:
        out.close()


_TOO_BIG = (
    "the sheet needs more memory to read than any attendance sheet should; save just the "
    "attendance table as a new .xlsx or .csv and try again"
)


def read_sheet_within_budget(
    filename: str, data: bytes, layout: Layout = ATTENDANCE
) -> list[SheetRow]:
    """``read_sheet`` in a child process with the limits above; SheetError for every way a
    sheet can fail (a 422 for the API)."""
    if not _slots.acquire(timeout=WAIT_S):
        raise SheetError("other sheets are being read just now: try again in a minute")
    try:
        ctx = forkserver.context("bids.sheets", "openpyxl")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_read, args=(filename, data, layout, send), daemon=True)
        child.start()
        send.close()
        try:
            if not receive.poll(TIME_S):
                raise SheetError(
                    f"the sheet took more than {TIME_S:.0f} s to read; an attendance sheet "
                    "takes well under one: save just the attendance table and try again"
                )
            try:
                kind, value = receive.recv()
            except (EOFError, OSError):
                raise SheetError(_TOO_BIG) from None
        finally:
            receive.close()
            child.kill()
            child.join()
    finally:
        _slots.release()
    if kind == "error":
        raise SheetError(str(value))
    rows: list[SheetRow] = value
    return rows
