"""The guard's decision (core/replication.py), pure: when synchronous replication is switched
off for a lost standby, and on again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.replication import SyncGuard


def test_off_only_after_the_grace_and_on_as_soon_as_a_standby_streams() -> None:
    g = SyncGuard(grace_s=10)
    assert g.step(0.0, True) is None
    assert g.step(1.0, False) is None  # lost at 1 s
    assert g.step(10.9, False) is None
    assert g.step(11.0, False) == "degrade"
    assert g.degraded
    assert g.step(50.0, False) is None  # once
    assert g.step(51.0, True) == "restore"
    assert not g.degraded
    assert g.step(52.0, True) is None


def test_a_standby_back_within_the_grace_changes_nothing_and_restarts_the_count() -> None:
    g = SyncGuard(grace_s=10)
    assert g.step(0.0, False) is None
    assert g.step(9.0, True) is None
    assert g.step(10.0, False) is None
    assert g.step(19.0, False) is None  # 9 s since the second loss
    assert g.step(20.0, False) == "degrade"


def test_a_guard_started_on_a_degraded_primary_switches_back_on_when_a_standby_streams() -> None:
    g = SyncGuard(grace_s=10, degraded=True)
    assert g.step(0.0, False) is None
    assert g.step(1.0, True) == "restore"


@given(st.lists(st.tuples(st.floats(0, 30), st.booleans()), max_size=60))
def test_switches_alternate_and_each_follows_what_was_seen(steps: list[tuple[float, bool]]) -> None:
    g = SyncGuard(grace_s=5)
    now, last = 0.0, "restore"
    lost_at: float | None = None
    for gap, streaming in steps:
        now += gap
        if not streaming and lost_at is None:
            lost_at = now
        if streaming:
            lost_at = None
        action = g.step(now, streaming)
        if action is not None:
            assert action != last  # off, on, off, ...
            last = action
        if action == "degrade":
            assert lost_at is not None and now - lost_at >= 5
        if action == "restore":
            assert streaming
        assert g.degraded == (last == "degrade")
