"""The process's fork server, shared by everything that starts helper processes (ingest's
pipeline, the API's sheet readers): children start from a server that has imported their
modules once (fast to start, and no fork of a process running threads). Each user names the
modules its children need; whoever starts the server first gets them all preloaded."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext, SpawnContext

_PRELOAD: set[str] = set()


def context(*preload: str) -> ForkServerContext | SpawnContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    _PRELOAD.update(preload)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(sorted(_PRELOAD))  # no effect once the server runs
    return ctx
