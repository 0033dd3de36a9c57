"""The dashboard's chart puts back the empty hours and UK days the API leaves out (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.usage import Bucket, UsagePoint
from api.web.analysts import with_empty_buckets


def point(t: datetime, uses: int) -> UsagePoint:
    return UsagePoint(t, uses, 12.0 * uses, 3.0 * uses, 1.2 * uses, 0)


def test_empty_hours_are_put_back_as_zero() -> None:
    start = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
    series = [point(datetime(2026, 11, 20, 7, tzinfo=UTC), 2),
              point(datetime(2026, 11, 20, 10, tzinfo=UTC), 1)]  # fmt: skip
    filled = with_empty_buckets(series, Bucket.H1, start, start + timedelta(hours=5))
    assert [(t.hour, p.uses if p else 0) for t, p in filled] == [
        (6, 0), (7, 2), (8, 0), (9, 0), (10, 1), (11, 0),
    ]  # fmt: skip


def test_empty_uk_days_are_put_back_across_the_autumn_clock_change() -> None:
    # 24-27 Oct 2026: midnights at 23:00Z (BST) until the 25th, then 00:00Z (GMT)
    start = datetime(2026, 10, 23, 23, 0, tzinfo=UTC)
    series = [point(datetime(2026, 10, 23, 23, tzinfo=UTC), 3),
              point(datetime(2026, 10, 27, 0, tzinfo=UTC), 4)]  # fmt: skip
    filled = with_empty_buckets(series, Bucket.D1, start, datetime(2026, 10, 28, tzinfo=UTC))
    assert [(t, p.uses if p else 0) for t, p in filled] == [
        (datetime(2026, 10, 23, 23, tzinfo=UTC), 3),
        (datetime(2026, 10, 24, 23, tzinfo=UTC), 0),  # Sunday 25th, 25 hours long
        (datetime(2026, 10, 26, 0, tzinfo=UTC), 0),
        (datetime(2026, 10, 27, 0, tzinfo=UTC), 4),
    ]
    assert with_empty_buckets([], Bucket.D1, start, start) == []
