"""How figures, times and status values read for people: the one formatting layer of the pages
and reports. The API returns numbers; the pages show those same numbers through these functions
(thousands separators, units, UK local time, plurals, words for codes). Nothing here ever
returns "None", "nan" or a bare "-": a missing figure reads "no data yet"."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent, format_scientific
from babel.units import format_unit

from core.clock import LONDON

LOCALE: Final = "en_GB"
UK: Final = LONDON
NO_DATA: Final = "no data yet"

# CLDR's names of the units the pilot reports (Babel writes their short symbols); litres are
# written "L" (CLDR's British short form is "l", easily read as a 1)
_UNITS: Final = {
    "kg": "mass-kilogram",
    "kWh": "energy-kilowatt-hour",
    "s": "duration-second",
}

Number = int | float | Decimal


def missing(x: object) -> bool:
    """None, NaN or infinity: a figure nobody can read."""
    if isinstance(x, Decimal):  # (math.isfinite goes through a float: 1e309 would be inf)
        return not x.is_finite()
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def _pattern(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places > 0 else "")


def number(x: Number | None, places: int = 1) -> str:
    """6656.8 → "6,656.8"; places fixes the decimals shown."""
    if x is None or missing(x):
        return NO_DATA
    if abs(float(x)) < 0.5 * 10**-places:
        x = 0  # no "-0.0"
    try:
        return format_decimal(x, format=_pattern(places), locale=LOCALE)
    except InvalidOperation:  # beyond decimal's precision (no pilot figure is): 1.2E30
        return format_scientific(x, format="0.0E0", locale=LOCALE)


def quantity(x: Number | None, unit: str, places: int = 1) -> str:
    """A figure with its unit: "6,656.8 kg", "18.2 L", "3.4 kWh", "10.5 Wh", "-61 dBm"."""
    if x is None or missing(x):
        return NO_DATA
    cldr = _UNITS.get(unit)
    if cldr is None or abs(float(x)) >= 1e15:
        return f"{number(x, places)} {unit}"
    return format_unit(x, cldr, length="short", format=_pattern(places), locale=LOCALE)


def percent(x: Number | None, places: int = 1) -> str:
    """A share (0.9781) as a percentage: "97.8%"."""
    if x is None or missing(x):
        return NO_DATA
    if abs(float(x)) >= 1e13:  # (as a Decimal: 1e307 times 100 is beyond a float)
        return number(Decimal(str(x)) * 100, places) + "%"
    return format_percent(x, format=_pattern(places) + "%", locale=LOCALE)


def money(x: Number | None) -> str:
    """Pounds, whole: "£1,250,000"; pence only when there are some ("£12.50")."""
    if x is None or missing(x):
        return NO_DATA
    try:
        whole = Decimal(str(x)) == Decimal(str(x)).to_integral_value()
        return format_currency(
            x,
            "GBP",
            format="¤#,##0" if whole else "¤#,##0.00",
            currency_digits=False,
            locale=LOCALE,
        )
    except InvalidOperation:  # beyond decimal's precision
        return "£" + number(x, 0)


def count(n: int | None, singular: str, plural: str | None = None) -> str:
    """ "1 leak event", "2 leak events", "1,204 uses"."""
    if n is None or missing(n):
        return NO_DATA
    n = round(n)
    word = singular if n == 1 else (plural or singular + "s")
    return f"{number(n, 0)} {word}"


def when(t: datetime | None, *, never: str = "never") -> str:
    """UK local time, plainly: "23 Nov 2026, 22:15"."""
    if t is None:
        return never
    return format_datetime(t, "d MMM y, HH:mm", tzinfo=UK, locale=LOCALE)


def day(d: date | datetime | None, *, never: str = NO_DATA) -> str:
    """A UK date: "23 Nov 2026" (a datetime is taken at its UK local date)."""
    if d is None:
        return never
    if isinstance(d, datetime):
        d = d.astimezone(UK).date()
    return format_date(d, "d MMM y", locale=LOCALE)


def hour_range(hour: int) -> str:
    """An hour of the day as a span: 7 → "07:00 to 08:00"."""
    return f"{hour:02d}:00 to {(hour + 1) % 24:02d}:00"


def duration(td: timedelta) -> str:
    """ "3 hours", "2 days" (rounded as people say it; a clock ahead reads as no time)."""
    return format_timedelta(max(td, timedelta(0)), threshold=1.5, locale=LOCALE)


def seconds(n: float) -> timedelta:
    """Seconds as a span (a device reporting an absurd uptime reads as a century)."""
    return timedelta(seconds=min(max(n, 0), 100 * 365.25 * 86400))


# Codes the database stores and the words people read for them, with the GOV.UK tag colour
# that marks them (no colour: the default blue tag).
_WORDS: Final[dict[str, tuple[str, str]]] = {
    # registrations
    "registered": ("Booked", "blue"),
    "waiting": ("Waiting list", "yellow"),
    "offered": ("Place offered", "purple"),
    "lapsed": ("Offer ran out", "grey"),
    "attended": ("Attended", "green"),
    "no_show": ("Did not attend", "orange"),
    "cancelled": ("Cancelled", "grey"),
    # workshops
    "planned": ("Planned", "blue"),
    "held": ("Held", "green"),
    # bids
    "intending": ("Intends to bid", "light-blue"),
    "submitted": ("Submitted", "blue"),
    "successful": ("Funded", "green"),
    "unsuccessful": ("Not funded", "red"),
    "withdrawn": ("Withdrawn", "grey"),
    # sheet import outcomes
    "new": ("New", "green"),
    "update": ("Update", "blue"),
    "unchanged": ("Unchanged", "grey"),
    "error": ("Problem", "red"),
    # devices and their faults
    "online": ("Online", "green"),
    "offline": ("Offline", "red"),
    "decommissioned": ("Decommissioned", "grey"),
    "unknown": ("Not heard from yet", "grey"),
    "jam": ("Jam", "orange"),
    "overload": ("Overload", "orange"),
    "leak": ("Leak", "red"),
    "power": ("Power cut", "yellow"),
    # device kinds (core/topics.py KIND_FAMILY)
    "wastepilot-v1": ("wastepilot meter", "blue"),
    "shelly-gen2": ("Shelly smart plug", "blue"),
    "tasmota": ("Tasmota smart plug", "blue"),
    "wmbus": ("wM-Bus water meter", "blue"),
    # what derivation found in a maker device's reports
    "counter_reset": ("Counter reset", "yellow"),
    "gap": ("No reports", "orange"),
    # anomalies (devices that need a visit)
    "jam_rate": ("Jams often", "orange"),
    "water_per_use": ("High water use", "yellow"),
    "open": ("Open", "red"),
    "resolved": ("Resolved", "grey"),
    # alerts' other states (analytics/alerts.py)
    "pending": ("Pending", "yellow"),
    "acknowledged": ("Acknowledged", "blue"),
    # messages in the outbox (core/outbox.py)
    "queued": ("Queued", "grey"),
    "sending": ("Sending", "light-blue"),
    "sent": ("Sent", "blue"),
    "delivered": ("Delivered", "green"),
    "failed": ("Not delivered", "red"),
    "erased": ("Erased", "grey"),
    # the messages themselves (core/messages/)
    "workshop_confirmed": ("Place confirmed", "blue"),
    "workshop_waiting": ("On the waiting list", "blue"),
    "workshop_offer": ("Place offered", "blue"),
    "workshop_offer_lapsed": ("Offer ran out", "blue"),
    "workshop_reminder": ("Reminder", "blue"),
    "workshop_changed": ("Workshop changed", "blue"),
    "workshop_cancelled": ("Workshop cancelled", "blue"),
    "alert_opened": ("Alert opened", "blue"),
    "alert_escalated": ("Alert escalated", "blue"),
}


def words(code: str | None) -> str:
    """The words for a stored code: "no_show" → "Did not attend"; an unknown code reads as
    words too ("some_new_state" → "Some new state")."""
    if not code:
        return NO_DATA
    known = _WORDS.get(code)
    return known[0] if known else code.replace("_", " ").capitalize()


def tag_class(code: str | None) -> str:
    """GOV.UK Frontend's tag classes for a code's colour."""
    colour = _WORDS.get(code or "", ("", ""))[1]
    return "govuk-tag" + (f" govuk-tag--{colour}" if colour and colour != "blue" else "")


FILTERS: Final = {
    "number": number,
    "quantity": quantity,
    "percent": percent,
    "count": count,
    "money": money,
    "when": when,
    "day": day,
    "hour_range": hour_range,
    "duration": duration,
    "seconds": seconds,
    "words": words,
    "tag_class": tag_class,
}
