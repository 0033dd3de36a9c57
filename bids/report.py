"""The take-up report: which councils the workshops reached, where, and whether they bid.

Definitions (also in the API docs):
- a council is *reached* when at least one person from it attended a workshop that was not
  cancelled;
- the attendance rate is attended ÷ places taken (registered + attended + no-show) over the
  workshops marked held;
- a council *bid* when its bid in the round was submitted (status submitted, successful or
  unsuccessful) and was *funded* when the bid is successful.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from core import clock
from core.db import Conn

BID = frozenset({"submitted", "successful", "unsuccessful"})
FUNDED = "successful"

_COUNCILS = """
WITH att AS (
    SELECT r.council_code, count(DISTINCT r.workshop_id)::int AS workshops_attended,
           count(*)::int AS people_attended
    FROM registrations r JOIN workshops w ON w.id = r.workshop_id
    WHERE r.status = 'attended' AND w.status <> 'cancelled'
      AND (%(start)s::timestamptz IS NULL OR w.starts_at >= %(start)s)
      AND (%(end)s::timestamptz IS NULL OR w.starts_at < %(end)s)
    GROUP BY r.council_code
), rnd AS (
    SELECT b.id, b.council_code, b.status, b.amount_requested, b.amount_awarded,
           EXISTS (SELECT 1 FROM bid_status_history h WHERE h.bid_id = b.id
                   AND h.status IN ('submitted', 'successful', 'unsuccessful')) AS submitted
    FROM bids b WHERE b.round_code = %(round)s
), part AS (  -- each council's part in the round's bids: as lead, or as a joint bid's partner
    SELECT council_code, status, submitted, amount_requested, amount_awarded, true AS lead
    FROM rnd
    UNION ALL
    SELECT p.council_code, r.status, r.submitted, NULL, NULL, false
    FROM rnd r JOIN bid_partners p ON p.bid_id = r.id
), cb AS (
    SELECT council_code,
           (array_agg(status ORDER BY CASE status WHEN 'successful' THEN 1
                WHEN 'unsuccessful' THEN 2 WHEN 'submitted' THEN 3 WHEN 'withdrawn' THEN 4
                ELSE 5 END))[1] AS bid_status,
           bool_or(submitted) AS bid_submitted,
           sum(amount_requested) AS amount_requested,
           sum(amount_awarded) FILTER (WHERE status = 'successful') AS amount_awarded,
           count(*) FILTER (WHERE lead)::int AS schemes_led,
           count(*) FILTER (WHERE NOT lead)::int AS joint_bids_joined
    FROM part GROUP BY council_code
)
SELECT c.gss_code, c.name, c.council_type, coalesce(c.region, 'Unknown') AS region,
       coalesce(att.workshops_attended, 0) AS workshops_attended,
       coalesce(att.people_attended, 0) AS people_attended,
       cb.bid_status, coalesce(cb.bid_submitted, false) AS bid_submitted,
       cb.amount_requested, cb.amount_awarded,
       coalesce(cb.schemes_led, 0) AS schemes_led,
       coalesce(cb.joint_bids_joined, 0) AS joint_bids_joined
FROM councils c
LEFT JOIN att ON att.council_code = c.gss_code
LEFT JOIN cb ON cb.council_code = c.gss_code
WHERE att.council_code IS NOT NULL OR cb.council_code IS NOT NULL
ORDER BY c.name, c.gss_code
"""

_WORKSHOPS = """
SELECT w.id, w.title, w.town, coalesce(w.region, 'Unknown') AS region, w.starts_at, w.status,
       w.capacity,
       count(r.id) FILTER (WHERE r.status IN ('registered', 'attended', 'no_show'))::int
           AS places_taken,
       count(r.id) FILTER (WHERE r.status = 'attended')::int AS attended,
       count(r.id) FILTER (WHERE r.status = 'no_show')::int AS no_show,
       count(r.id) FILTER (WHERE r.status = 'waiting')::int AS waiting,
       count(r.id) FILTER (WHERE r.status = 'cancelled')::int AS cancelled,
       count(DISTINCT r.council_code) FILTER (WHERE r.status = 'attended')::int
           AS councils_reached
FROM workshops w LEFT JOIN registrations r ON r.workshop_id = w.id
WHERE w.status <> 'cancelled'
  AND (%(start)s::timestamptz IS NULL OR w.starts_at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR w.starts_at < %(end)s)
GROUP BY w.id ORDER BY w.starts_at, w.id
"""

_LATEST_ROUND = "SELECT code FROM fund_rounds ORDER BY opens_on DESC NULLS LAST, code DESC LIMIT 1"


@dataclass(frozen=True, slots=True)
class TakeUp:
    round_code: str | None
    workshops: list[dict[str, Any]]
    councils: list[dict[str, Any]]  # reached or bid, one row each
    councils_reached: int
    people_attended: int
    attendance_rate: float | None
    by_council_type: dict[str, int]
    by_region: dict[str, int]
    reached_and_bid: int
    reached_and_funded: int
    reached_amount_requested: Decimal
    reached_amount_awarded: Decimal
    bids_in_round: int
    funded_in_round: int
    sentence: str
    # the councils reached, as today's authorities: "121 councils of 2012, today covered by N"
    reached_today_authorities: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count_words(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _approx(n: int) -> str:
    """'over 120 councils (123)' reads better in a board paper than '123 councils'."""
    if n >= 20 and n % 10:
        return f"Over {n // 10 * 10} councils ({n})"
    return f"{_count_words(n).capitalize()} council{'s' if n != 1 else ''}"


def _money(x: Decimal) -> str:
    if x >= 1_000_000:
        return f"£{x / 1_000_000:,.1f} m"
    return f"£{x:,.0f}"


def sentence(
    reached: int, workshops: int, bid: int, funded: int, awarded: Decimal, rate: float | None
) -> str:
    """The board-paper sentence, from the figures."""
    text = (
        f"{_approx(reached)} attended our {_count_words(workshops)} "
        f"workshop{'s' if workshops != 1 else ''}"
    )
    if reached:
        if bid:
            text += f"; {bid} of them bid to the fund and {funded} "
            text += f"{'was' if funded == 1 else 'were'} funded"
            text += f", with {_money(awarded)} awarded." if funded else "."
        else:
            text += "; none of them has bid yet."
    else:
        text += "."
    if rate is not None:
        text += f" {round(rate * 100)}% of the people registered for held workshops attended."
    return text


def _bid(c: dict[str, Any]) -> bool:
    """A council bid to the round when a bid it led or joined was submitted (a bid withdrawn
    after it was submitted, or after its award, still was)."""
    return bool(c.get("bid_submitted")) or c["bid_status"] in BID


def summarise(
    round_code: str | None, workshops: list[dict[str, Any]], councils: list[dict[str, Any]]
) -> TakeUp:
    """The report's figures from its two tables (pure, so it is tested on fixed data)."""
    reached = [c for c in councils if c["people_attended"] > 0]
    held = [w for w in workshops if w["status"] == "held"]
    taken = sum(w["places_taken"] for w in held)
    rate = sum(w["attended"] for w in held) / taken if taken else None
    bid = [c for c in reached if _bid(c)]
    funded = [c for c in bid if c["bid_status"] == FUNDED]
    requested = sum((c["amount_requested"] or Decimal(0) for c in bid), Decimal(0))
    awarded = sum((c["amount_awarded"] or Decimal(0) for c in funded), Decimal(0))
    for w in workshops:
        w["attendance_rate"] = (
            round(w["attended"] / w["places_taken"], 4) if w["places_taken"] else None
        )
    return TakeUp(
        round_code=round_code,
        workshops=workshops,
        councils=councils,
        councils_reached=len(reached),
        people_attended=sum(c["people_attended"] for c in reached),
        attendance_rate=round(rate, 4) if rate is not None else None,
        by_council_type=dict(sorted(Counter(c["council_type"] for c in reached).items())),
        by_region=dict(sorted(Counter(c["region"] for c in reached).items())),
        reached_and_bid=len(bid),
        reached_and_funded=len(funded),
        reached_amount_requested=requested,
        reached_amount_awarded=awarded,
        bids_in_round=sum(1 for c in councils if _bid(c)),
        funded_in_round=sum(1 for c in councils if c["bid_status"] == FUNDED),
        sentence=sentence(len(reached), len(workshops), len(bid), len(funded), awarded, rate),
    )


def take_up(
    conn: Conn,
    round_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TakeUp:
    """The take-up report for workshops starting in [start, end) and bids in a fund round
    (default: the latest round)."""
    if round_code is None:
        row = conn.execute(_LATEST_ROUND).fetchone()
        round_code = str(row[0]) if row else None
    params = {"round": round_code, "start": start, "end": end}
    with conn.cursor(row_factory=dict_row) as cur:
        workshops = cur.execute(_WORKSHOPS, params).fetchall()
        councils = cur.execute(_COUNCILS, params).fetchall()
    result = summarise(round_code, workshops, councils)
    from bids.records import council_matcher

    matcher = council_matcher(conn)
    today = clock.today()
    covering = {
        now
        for c in councils
        if c["people_attended"] > 0
        for now in matcher.today_for(c["gss_code"], today)
    }
    return replace(result, reached_today_authorities=len(covering))


COUNCIL_COLUMNS = (
    "gss_code",
    "name",
    "council_type",
    "region",
    "workshops_attended",
    "people_attended",
    "bid_status",
    "amount_requested",
    "amount_awarded",
)
WORKSHOP_COLUMNS = (
    "id",
    "title",
    "town",
    "region",
    "starts_at",
    "status",
    "capacity",
    "places_taken",
    "attended",
    "no_show",
    "waiting",
    "cancelled",
    "councils_reached",
    "attendance_rate",
)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _cell(v: object) -> object:
    """A value safe for a spreadsheet: no control characters (XLSX cannot hold them), and text
    that a spreadsheet would run as a formula (=, +, -, @ first) kept as text."""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, str):
        v = _CONTROL.sub("", v)
        return "'" + v if v[:1] in ("=", "+", "-", "@") else v
    return "" if v is None else v


def to_csv(report: TakeUp) -> str:
    """One row per council reached or bidding: what analysts paste into their own tables."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COUNCIL_COLUMNS)
    for c in report.councils:
        w.writerow([_cell(c[k]) for k in COUNCIL_COLUMNS])
    return out.getvalue()


def to_xlsx(report: TakeUp) -> bytes:
    """A workbook with Summary, Workshops and Councils sheets."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    summary = book.create_sheet("Summary")
    summary.append(["Take-up report", report.sentence])
    for key in (
        "round_code",
        "councils_reached",
        "people_attended",
        "attendance_rate",
        "reached_and_bid",
        "reached_and_funded",
        "reached_amount_requested",
        "reached_amount_awarded",
        "bids_in_round",
        "funded_in_round",
    ):
        summary.append([key.replace("_", " "), _cell(getattr(report, key))])
    for kind, counts in (("council type", report.by_council_type), ("region", report.by_region)):
        for k, n in counts.items():
            summary.append([f"councils reached, {kind}: {k}", n])
    sheet = book.create_sheet("Workshops")
    sheet.append(list(WORKSHOP_COLUMNS))
    for ws in report.workshops:
        sheet.append([_cell(ws[k]) for k in WORKSHOP_COLUMNS])
    sheet = book.create_sheet("Councils")
    sheet.append(list(COUNCIL_COLUMNS))
    for c in report.councils:
        sheet.append([_cell(c[k]) for k in COUNCIL_COLUMNS])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
