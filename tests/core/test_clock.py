"""The pilot's one clock (pure)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from core import clock
from core.settings import Settings


def test_real_time_by_default_then_moved_and_running_on() -> None:
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1
    try:
        clock.start_at(datetime(2027, 5, 30, 12, 0, tzinfo=UTC))
        first = clock.now()
        assert abs((first - datetime(2027, 5, 30, 12, 0, tzinfo=UTC)).total_seconds()) < 1
        time.sleep(0.05)
        assert clock.now() > first  # it runs on
        child = clock.shift()
        assert (
            abs(child - (datetime(2027, 5, 30, 12, tzinfo=UTC) - datetime.now(UTC)).total_seconds())
            < 1
        )
    finally:
        clock.start_at(None)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1


def test_frozen_inside_the_block_only_and_handed_to_children() -> None:
    at = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    with clock.frozen_at(at):
        assert clock.now() == at
        time.sleep(0.02)
        assert clock.now() == at
        # a child process runs on from the frozen instant
        assert abs(clock.shift() - (at - datetime.now(UTC)).total_seconds()) < 1
    assert clock.now() != at


@pytest.mark.parametrize(
    ("at", "uk_day"),
    [
        (datetime(2027, 5, 30, 23, 30, tzinfo=UTC), date(2027, 5, 31)),  # 00:30 BST, Monday
        (datetime(2026, 12, 31, 23, 45, tzinfo=UTC), date(2026, 12, 31)),  # GMT: the same day
        (datetime(2028, 2, 29, 23, 59, tzinfo=UTC), date(2028, 2, 29)),
        (datetime(2026, 10, 24, 23, 30, tzinfo=UTC), date(2026, 10, 25)),  # 00:30 BST
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 25)),  # 23:30 GMT
    ],
)
def test_today_is_the_uk_date(at: datetime, uk_day: date) -> None:
    with clock.frozen_at(at):
        assert clock.today() == uk_day


def test_an_instant_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        clock.start_at(datetime(2027, 5, 30, 12, 0))
    with pytest.raises(ValueError, match="time zone"), clock.frozen_at(datetime(2027, 1, 1)):
        pass


def test_the_setting_is_refused_in_production_and_without_a_zone() -> None:
    at = datetime.now(UTC) + timedelta(days=1)
    assert Settings(clock_at=at).clock_at == at
    with pytest.raises(ValueError, match="refused in production"):
        Settings(env="production", database_url="postgresql://x/y", mqtt_url="mqtt://h:1",
                 clock_at=at)  # fmt: skip
    with pytest.raises(ValueError, match="time zone"):
        Settings(clock_at=datetime(2027, 1, 1))
