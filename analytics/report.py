"""The weekly pilot report: KPIs for a period against the period before, the daily uses and the
time-of-day profile as charts (PNG images inside one self-contained HTML page) plus a CSV."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from html import escape
from typing import Any

import psycopg

from analytics import queries as q
from analytics.kpis import Kpis, pilot_kpis
from analytics.usage import Bucket, usage_series
from core import clock, display
from core.clock import LONDON
from core.settings import Settings

FIGURES = (
    ("households_enrolled", "Households enrolled"),
    ("households_active", "Households with at least one use"),
    ("uses_per_household_day_median", "Uses per household per day (median)"),
    ("uses_per_household_day_mean", "Uses per household per day (mean)"),
    ("food_kg_diverted", "Food waste diverted from bins, kg (estimate)"),
    ("water_l_per_household_day", "Water per household per day, litres"),
    ("energy_wh_per_household_day", "Electricity per household per day, Wh"),
    ("faults_per_100_uses", "Faults per 100 uses"),
    ("completeness", "Data completeness (received / expected)"),
)

# how each figure reads on the page (the CSV keeps the API's numbers)
SHOWN: dict[str, Callable[[Any], str]] = {
    "households_enrolled": partial(display.number, places=0),
    "households_active": partial(display.number, places=0),
    "uses_per_household_day_median": partial(display.number, places=2),
    "uses_per_household_day_mean": partial(display.number, places=2),
    "food_kg_diverted": partial(display.quantity, unit="kg"),
    "water_l_per_household_day": partial(display.quantity, unit="L"),
    "energy_wh_per_household_day": partial(display.quantity, unit="Wh"),
    "faults_per_100_uses": partial(display.number, places=2),
    "completeness": display.percent,
}


def last_full_week(today: date) -> tuple[date, date]:
    """Monday to Monday of the last week that has ended."""
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(days=7), monday


def _change(now: float | int | None, before: float | int | None) -> str:
    if now is None or before is None:
        return ""
    if before == 0:
        return "" if now == 0 else "new"
    return f"{(now - before) / before:+.1%}"


def _no_change(now: float | int | None, before: float | int | None) -> str:
    """What the report's change column says where there is no percentage to give."""
    if now is None:
        return "no figure this week"
    if before is None:
        return "no earlier figure"
    return "no change" if now == before else ""


def comparison(current: Kpis, previous: Kpis) -> list[tuple[str, Any, Any, str]]:
    """(figure, this period, previous period, change) for the report's table."""
    out = []
    for key, label in FIGURES:
        a, b = getattr(current, key), getattr(previous, key)
        out.append((label, a, b, _change(a, b)))
    return out


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _charts(days: list[tuple[date, int]], k: Kpis) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 2.6))
    ax = fig.subplots()
    ax.bar([d.strftime("%a %d") for d, _ in days], [n for _, n in days], color="#1d70b8")
    ax.set_ylabel("uses")
    ax.set_title("Disposer uses per day, all households")
    daily = _png(fig)
    fig = Figure(figsize=(7, 2.6))
    ax = fig.subplots()
    ax.bar(
        [h.hour for h in k.time_of_day],
        [h.water_l_per_household_day for h in k.time_of_day],
        color="#00703c",
    )
    ax.set_xlabel("hour of day (UK time)")
    ax.set_ylabel("litres / household / day")
    ax.set_title("Time of day: water to the sewer")
    profile = _png(fig)
    return daily, profile


def build(conn: psycopg.Connection[Any], start: date, end: date, s: Settings) -> tuple[str, str]:
    """The report for local days [start, end): (HTML page, CSV)."""
    length = end - start
    current = pilot_kpis(conn, start, end, food_kg_per_use=s.food_kg_per_use)
    previous = pilot_kpis(conn, start - length, start, food_kg_per_use=s.food_kg_per_use)
    rows = comparison(current, previous)
    t0 = datetime.combine(start, time(), LONDON).astimezone(UTC)
    t1 = datetime.combine(end, time(), LONDON).astimezone(UTC)
    series = usage_series(conn, "pilot", None, Bucket.D1, t0, t1)
    days = [(p.bucket.astimezone(LONDON).date(), p.uses) for p in series]
    daily_png, profile_png = _charts(days, current)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["figure", f"{start}..{end}", f"{start - length}..{start}", "change"])
    w.writerows(rows)
    table = "\n".join(
        f"<tr><th scope='row'>{escape(label)}</th><td>{escape(SHOWN[key](a))}</td>"
        f"<td>{escape(SHOWN[key](b))}</td><td>{escape(c or _no_change(a, b))}</td></tr>"
        for (key, _), (label, a, b, c) in zip(FIGURES, rows, strict=True)
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Disposer pilot report {display.day(start)} to {display.day(end - timedelta(days=1))}</title>
<style>body{{font-family:Arial,sans-serif;max-width:52em;margin:2em auto;color:#0b0c0c}}
table{{border-collapse:collapse}}th,td{{border-bottom:1px solid #b1b4b6;padding:.3em .8em;
text-align:left}}</style></head><body>
<h1>Food-waste disposer pilot: {display.day(start)} to {display.day(end - timedelta(days=1))}</h1>
<p>{display.number(current.households_active, 0)} of
{display.count(current.households_enrolled, "household")} used their disposer; an estimated
{display.quantity(current.food_kg_diverted, "kg")} of food waste went to the sewer instead of
the bin.</p>
<table><thead><tr><th>Figure</th><th>This week</th><th>Week before</th><th>Change</th></tr>
</thead><tbody>
{table}
</tbody></table>
<h2>Uses per day</h2>
<img alt="Bar chart of disposer uses per day" src="data:image/png;base64,{daily_png}">
<h2>Time of day</h2>
<img alt="Bar chart of water to the sewer by hour of day" src="data:image/png;base64,{profile_png}">
<p>Food waste is estimated at {s.food_kg_per_use} kg per use (published range 0.15-0.3 kg).
Generated {display.when(clock.now())} (UK time).</p>
</body></html>
"""
    return html, out.getvalue()


def store_report(conn: psycopg.Connection[Any], start: date, end: date, s: Settings) -> int:
    """Build the report and keep it (replacing an earlier one for the same period)."""
    html, csv_text = build(conn, start, end, s)
    with conn.transaction():
        row = conn.execute(
            q.STORE_WEEKLY_REPORT,
            (start, end, html, csv_text),
        ).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return int(row[0])
