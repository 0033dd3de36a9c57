"""The device edge's plan (pure): a reused seq, the rate limit, duplicates never counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest.edge import Window, minute_of, plan, suspects
from ingest.protocol import ReadingRow
from ingest.validate import DeviceState

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
AT = datetime(2026, 5, 1, 12, 30, 10, tzinfo=UTC)  # arrival


def row(device: str, seq: int, ts: datetime, at: datetime = AT) -> ReadingRow:
    return (ts, device, seq, "run", 10.0, 1.0, 5.0, 2.0, None, at)


def test_in_order_readings_are_new_and_not_suspect() -> None:
    rows = [row("A", s, T0 + timedelta(minutes=s)) for s in range(1, 6)]
    states = {"A": DeviceState(None, last_seq=0)}
    assert suspects(rows, states) == []
    p = plan(rows, states, set(), per_min=100)
    assert p.stage == [0, 1, 2, 3, 4] and p.new == 5
    assert (p.refused, p.reused, p.probe) == ({}, [], [])
    assert p.windows == {"A": Window(minute_of(AT), 5)}


def test_the_rate_refuses_new_readings_over_the_minutes_allowance_in_arrival_order() -> None:
    rows = [row("A", s, T0 + timedelta(seconds=s)) for s in range(1, 11)]
    states = {"A": DeviceState(None, last_seq=None, rate_minute=minute_of(AT), rate_count=7)}
    p = plan(rows, states, set(), per_min=10)
    assert p.stage == [0, 1, 2] and p.refused == {"A": list(range(3, 10))}
    assert p.windows["A"] == Window(minute_of(AT), 10)


def test_a_new_minute_starts_a_new_allowance() -> None:
    later = AT + timedelta(minutes=1)
    rows = [row("A", 1, T0, AT), row("A", 2, T0 + timedelta(seconds=1), later)]
    states = {"A": DeviceState(None, rate_minute=minute_of(AT), rate_count=10)}
    p = plan(rows, states, set(), per_min=10)
    assert p.stage == [1] and p.refused == {"A": [0]}
    assert p.windows["A"] == Window(minute_of(later), 1)


def test_redelivered_readings_are_staged_but_never_counted_or_refused() -> None:
    rows = [row("A", s, T0 + timedelta(seconds=s)) for s in range(1, 6)]
    states = {"A": DeviceState(None, last_seq=5, rate_minute=minute_of(AT), rate_count=10)}
    assert suspects(rows, states) == [0, 1, 2, 3, 4]
    p = plan(rows, states, stored={0, 1, 2, 3, 4}, per_min=10)  # all stored already
    assert p.stage == [0, 1, 2, 3, 4] and p.new == 0 and p.refused == {}
    assert p.windows["A"] == Window(minute_of(AT), 10)
    # the same reading twice in one batch counts once
    twice = [row("B", 1, T0), row("B", 1, T0)]
    q = plan(twice, {}, set(), per_min=1)
    assert q.stage == [0, 1] and q.new == 1 and q.refused == {}


def test_a_seq_reused_with_another_ts_in_one_batch_is_refused_and_not_counted() -> None:
    rows = [row("A", 1, T0), row("A", 1, T0 + timedelta(hours=1)), row("A", 2, T0)]
    p = plan(rows, {}, set(), per_min=100)
    assert p.stage == [0, 2] and p.reused == [(1, T0)] and p.new == 2


def test_only_admitted_new_suspects_are_probed() -> None:
    """An out-of-order or reused seq (at or below the last stored seq, not stored with this ts)
    is asked about; one over the rate is not (the costly question is bounded by the rate)."""
    rows = [row("A", 3, T0), row("A", 4, T0), row("A", 2, T0 + timedelta(minutes=5))]
    states = {"A": DeviceState(None, last_seq=10)}
    p = plan(rows, states, stored={0}, per_min=1)
    assert p.stage == [0, 1] and p.probe == [1] and p.refused == {"A": [2]}


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.integers(1, 30),
        st.integers(0, 5),  # ts: T0 + n minutes
        st.integers(0, 2),  # arrival: AT + n minutes
    ),
    max_size=120,
)


@given(rows_strategy, st.integers(1, 20), st.integers(0, 20))
def test_plan_never_stages_more_new_than_the_rate_nor_one_seq_twice(
    spec: list[tuple[str, int, int, int]], per_min: int, last: int
) -> None:
    # a batch holds its rows in the order they arrived: arrival minutes never go back
    ordered = sorted(spec, key=lambda x: x[3])
    rows = [
        row(d, s, T0 + timedelta(minutes=t), AT + timedelta(minutes=a)) for d, s, t, a in ordered
    ]
    states = {d: DeviceState(None, last_seq=last) for d in "ABC"}
    p = plan(rows, states, set(), per_min)
    staged = [rows[i] for i in p.stage]
    # no (device, seq) staged with two timestamps
    ts_of: dict[tuple[str, int], set[datetime]] = {}
    for r in staged:
        ts_of.setdefault((r[1], r[2]), set()).add(r[0])
    assert all(len(v) == 1 for v in ts_of.values())
    # per device and minute of arrival, new readings within the rate
    # (a reading staged twice is one reading: counted once, in the minute it first arrived)
    first: dict[tuple[str, int, datetime], datetime] = {}
    for r in staged:
        first.setdefault((r[1], r[2], r[0]), r[-1])
    per: dict[tuple[str, datetime], int] = {}
    for (device, _, _), at in first.items():
        k = (device, minute_of(at))
        per[k] = per.get(k, 0) + 1
    assert all(n <= per_min for n in per.values())
    # every row is accounted for exactly once
    accounted = p.stage + [i for v in p.refused.values() for i in v] + [i for i, _ in p.reused]
    assert sorted(accounted) == list(range(len(rows)))
    assert set(p.probe) <= set(p.stage)
