"""The admission queue (api/deps.py) as pure logic: a fake app state, no database."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi import HTTPException, Request

from api.deps import RETRY_AFTER_S, admitted
from core.settings import Settings


def request(slots: int, **settings: object) -> Request:
    state = SimpleNamespace(
        settings=Settings(**settings),  # type: ignore[arg-type]
        db_slots=asyncio.Semaphore(slots),
        db_waiting=0,
    )
    return Request({"type": "http", "app": SimpleNamespace(state=state), "headers": []})


def test_a_request_waits_for_a_place_and_gives_it_back() -> None:
    async def run() -> list[str]:
        r = request(1)
        order: list[str] = []

        async def first() -> None:
            async with admitted(r):
                order.append("first in")
                await asyncio.sleep(0.05)
                order.append("first out")

        async def second() -> None:
            await asyncio.sleep(0.01)
            async with admitted(r):
                order.append("second in")

        await asyncio.gather(first(), second())
        assert not r.app.state.db_slots.locked()
        assert r.app.state.db_waiting == 0
        return order

    assert asyncio.run(run()) == ["first in", "first out", "second in"]


def test_a_request_that_waits_too_long_is_told_to_come_back() -> None:
    async def run() -> HTTPException:
        r = request(1)
        async with admitted(r):
            with pytest.raises(HTTPException) as caught:
                async with admitted(r, wait_s=0.05):
                    pass
        assert r.app.state.db_waiting == 0
        return caught.value

    exc = asyncio.run(run())
    assert exc.status_code == 503
    assert exc.headers == {"Retry-After": str(RETRY_AFTER_S)}


def test_past_the_queue_limit_the_answer_is_503_at_once() -> None:
    async def run() -> HTTPException:
        r = request(1, api_queue_max=2, api_queue_wait_s=600)
        async with admitted(r):
            waiting = [asyncio.create_task(_enter(r)) for _ in range(2)]
            await asyncio.sleep(0.01)
            assert r.app.state.db_waiting == 2
            # a third finds the queue full: refused without waiting its 600 s
            with pytest.raises(HTTPException) as caught:
                await asyncio.wait_for(_enter(r), timeout=30)
        await asyncio.gather(*waiting)
        return caught.value

    assert asyncio.run(run()).status_code == 503


async def _enter(r: Request) -> None:
    async with admitted(r):
        pass
