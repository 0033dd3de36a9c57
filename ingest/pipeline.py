"""Starting, feeding and stopping an ingest worker's pipeline: its validator and writer
processes (ingest/children.py), piped in a row.

One Python process cannot both read a busy MQTT connection and validate and write what it
reads: the work shares one interpreter lock, and the network loop got about two thirds of it
(py-spy). Nor can one process both validate and write at the database's pace: with validation
in the writing process, 100-reading arrays were stored at a median 0.76 of the database's own
rate; with the same validation in another process, 1.04 (the writer fed through its pipe).

The children start from a fork server that has imported their modules once (fast to start, and
no fork of a process running paho's threads). Each pipeline has a generation number; the ack
ledger forgets a dead generation's shipments.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext

from core import forkserver
from ingest.children import PipelineSpec, run_validator_process, run_writer_process
from ingest.protocol import Outcome, Shipment, Stop

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python 3.10+ names it


@cache
def _context() -> ForkServerContext | SpawnContext:
    return forkserver.context("ingest.children")


def _widen(conn: Connection) -> None:
    """Room for a few shipments in a pipe (Linux: 1 MiB instead of 64 KiB), so that the network
    loop does not wait while the validator checks one."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, 1 << 20)


@dataclass(eq=False)
class Pipeline:
    """One running validator + writer pair. ``send`` shipments in; iterate ``outcomes()``."""

    generation: int
    name: str
    _inbox: Connection  # to the validator
    _outbox: Connection  # from the writer
    _children: tuple[multiprocessing.process.BaseProcess, ...]
    _lock: threading.Lock

    @classmethod
    def start(cls, spec: PipelineSpec, name: str, generation: int) -> Pipeline:
        ctx = _context()
        inbox_r, inbox_w = ctx.Pipe(duplex=False)
        valid_r, valid_w = ctx.Pipe(duplex=False)
        outbox_r, outbox_w = ctx.Pipe(duplex=False)
        validator = ctx.Process(
            target=run_validator_process,
            args=(spec, inbox_r, valid_w),
            name=f"validator-{name}",
            daemon=True,
        )
        writer = ctx.Process(
            target=run_writer_process,
            args=(spec, valid_r, outbox_w),
            name=f"writer-{name}",
            daemon=True,
        )
        _widen(inbox_w)
        _widen(valid_w)
        validator.start()
        writer.start()
        # their ends belong to them alone: an exit must read as end-of-file to the next in line
        for end in (inbox_r, valid_r, valid_w, outbox_w):
            end.close()
        return cls(generation, name, inbox_w, outbox_r, (validator, writer), threading.Lock())

    @property
    def validator(self) -> multiprocessing.process.BaseProcess:
        return self._children[0]

    @property
    def writer(self) -> multiprocessing.process.BaseProcess:
        return self._children[1]

    def send(self, item: Shipment | Stop) -> bool:
        """False when the pipeline is gone (its outcomes end; the worker restarts it)."""
        try:
            with self._lock:  # one sender at a time: a message's bytes must not interleave
                self._inbox.send(item)
        except (OSError, ValueError):  # ValueError: closed here already
            return False
        return True

    def outcomes(self) -> Iterator[Outcome]:
        """The writer's reports, until it exits."""
        while True:
            try:
                yield self._outbox.recv()
            except (EOFError, OSError):
                return

    def exit_codes(self) -> list[int | None]:
        for child in self._children:
            child.join(1)
        return [child.exitcode for child in self._children]

    def close(self, timeout: float = 5.0) -> None:
        """Wait for both to exit (killing what does not), and close the pipes."""
        for child in self._children:
            child.join(timeout)
            if child.is_alive():
                child.kill()
        with self._lock:
            self._inbox.close()
        self._outbox.close()

    def abandon(self) -> None:
        """Close our end of the inbox: the validator reads end-of-file, and the writer after
        it stops at once (a pipeline left behind by a restart)."""
        with self._lock:
            self._inbox.close()
