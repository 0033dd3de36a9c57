"""The one formatting layer: figures, times and codes as people read them (pure)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core import display


def test_numbers_have_thousands_separators_and_fixed_places() -> None:
    assert display.number(6656.8) == "6,656.8"
    assert display.number(3.419, 2) == "3.42"
    assert display.number(1234567, 0) == "1,234,567"
    assert display.number(0.0) == "0.0"  # a true zero stays a zero


def test_units_are_written_after_the_figure() -> None:
    assert display.quantity(6656.8, "kg") == "6,656.8 kg"
    assert display.quantity(18.162, "L") == "18.2 L"
    assert display.quantity(3419.5, "kWh") == "3,419.5 kWh"
    assert display.quantity(10.46, "Wh") == "10.5 Wh"
    assert display.quantity(-61, "dBm", 0) == "-61 dBm"
    assert display.percent(0.97814) == "97.8%"
    assert display.percent(1.0, 0) == "100%"
    assert display.money(Decimal("1250000.00")) == "£1,250,000"
    assert display.money(Decimal("12.5")) == "£12.50"


def test_missing_figures_read_no_data_yet_never_none_or_nan() -> None:
    for f in (display.number, display.percent, display.money):
        assert f(None) == "no data yet"
        assert f(float("nan")) == "no data yet"
    assert display.quantity(None, "kg") == "no data yet"
    assert display.quantity(float("inf"), "L") == "no data yet"
    assert display.count(None, "use") == "no data yet"
    assert display.count(float("nan"), "use") == "no data yet"  # type: ignore[arg-type]
    assert display.number(-0.01) == "0.0"  # never "-0.0"
    assert display.money(Decimal("1E+40")).startswith("£")
    assert display.duration(display.seconds(10**15)) == "100 years"


def test_plurals() -> None:
    assert display.count(1, "leak") == "1 leak"
    assert display.count(2, "leak event") == "2 leak events"
    assert display.count(0, "household") == "0 households"
    assert display.count(1204, "use") == "1,204 uses"
    assert display.count(3, "person", "people") == "3 people"


def test_times_are_uk_local_and_plain() -> None:
    # winter: GMT; summer: BST (an hour ahead of UTC)
    assert display.when(datetime(2026, 11, 23, 22, 15, 21, tzinfo=UTC)) == "23 Nov 2026, 22:15"
    assert display.when(datetime(2026, 7, 23, 22, 15, tzinfo=UTC)) == "23 Jul 2026, 23:15"
    # the repeated hour of 25 Oct 2026: 00:30Z is 01:30 BST, 01:30Z is 01:30 GMT
    assert display.when(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "25 Oct 2026, 01:30"
    assert display.when(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == "25 Oct 2026, 01:30"
    assert display.when(None) == "never"
    assert display.day(date(2028, 2, 29)) == "29 Feb 2028"
    # a UTC instant late on New Year's Eve is already the next day in summer time only
    assert display.day(datetime(2026, 12, 31, 23, 45, tzinfo=UTC)) == "31 Dec 2026"
    assert display.day(datetime(2026, 6, 30, 23, 45, tzinfo=UTC)) == "1 Jul 2026"
    assert display.hour_range(23) == "23:00 to 00:00"
    assert display.duration(timedelta(hours=50)) == "2 days"
    assert display.duration(timedelta(minutes=-3)) == "0 seconds"  # a clock ahead


def test_codes_read_as_words_with_their_tag_colour() -> None:
    assert display.words("no_show") == "Did not attend"
    assert display.words("attended") == "Attended"
    assert display.words("cancelled") == "Cancelled"
    assert display.words("jam_rate") == "Jams often"
    assert display.words("some_new_state") == "Some new state"
    assert display.words(None) == "no data yet"
    assert display.tag_class("attended") == "govuk-tag govuk-tag--green"
    assert display.tag_class("registered") == "govuk-tag"  # GOV.UK's default blue
    assert display.tag_class("never-heard-of-it") == "govuk-tag"


BAD = re.compile(r"\b(None|nan|NaN|inf)\b|^-$")


@given(
    st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**12), max_value=10**12),
    ),
    st.integers(min_value=0, max_value=3),
)
def test_no_figure_ever_reads_none_nan_or_a_bare_dash(x: float | None, places: int) -> None:
    for text in (
        display.number(x, places),
        display.quantity(x, "kg", places),
        display.quantity(x, "L", places),
        display.percent(x, places),
    ):
        assert not BAD.search(text), text
        if x is not None and math.isfinite(x):
            assert any(ch.isdigit() for ch in text), text
