"""Importing a fund's published award list into a round: council (a partnership's lead), scheme,
amount awarded and partner councils, through the same council matching and preview/commit as
attendance sheets. Each row becomes (or updates) the successful bid of its lead council for its
scheme; the same list again changes nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from bids import queries as q
from bids import records
from bids.councils import CouncilMatcher
from bids.imports import Problem
from bids.sheets import SheetRow
from core import clock
from core.db import Conn
from core.errors import NotFound

MAX_AMOUNT = Decimal("1e11")
_SCALE = {"k": Decimal(1000), "m": Decimal(1_000_000), "bn": Decimal(1_000_000_000)}


def parse_amount(text: str) -> Decimal | None:
    """Pounds as award lists write them: '£1,234,567', '1234567.50', '£1.2m', '850k'."""
    t = text.strip().lower().replace(",", "").replace("£", "").replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(k|m|bn)?", t)
    if m is None:
        return None
    try:
        value = Decimal(m.group(1)) * _SCALE.get(m.group(2) or "", Decimal(1))
    except InvalidOperation:
        return None
    return value.quantize(Decimal("0.01")) if value < MAX_AMOUNT else None


@dataclass(slots=True)
class AwardRow:
    row: int
    council: str
    council_code: str | None
    scheme: str
    amount: Decimal | None
    partner_codes: list[str] = field(default_factory=list)
    outcome: str = "new"  # new | update | unchanged | error
    problems: list[Problem] = field(default_factory=list)
    bid_id: int | None = None


@dataclass(slots=True)
class AwardResult:
    committed: bool
    round_code: str
    counts: dict[str, int]
    rows: list[AwardRow]


def _council(
    text: str, matcher: CouncilMatcher, on: date, column: str
) -> tuple[str | None, Problem | None]:
    m = matcher.match(text, on)
    if m.gss_code:
        return m.gss_code, None
    return None, Problem(column, m.explain(text), m.suggestion, m.suggestion_code)


def check_awards(
    rows: list[SheetRow],
    matcher: CouncilMatcher,
    on: date,
    existing: Mapping[tuple[str, str], tuple[int, Decimal | None, str, list[str]]],
) -> list[AwardRow]:
    """Each row's problems and what committing it would do (pure). ``existing`` maps (lead
    council, scheme) to the round's bid: (id, amount awarded, status, partners)."""
    out: list[AwardRow] = []
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        cells = r.cells
        text = (cells.get("council_code") or cells.get("council", ""))[:200]
        scheme = cells.get("scheme", "")[:200]
        a = AwardRow(r.number, text, None, scheme, parse_amount(cells.get("amount", "")))
        if not text:
            a.problems.append(Problem("council", "the council is empty"))
        else:
            a.council_code, problem = _council(text, matcher, on, "council")
            if problem:
                a.problems.append(problem)
        if a.amount is None:
            a.problems.append(
                Problem("amount", f"{cells.get('amount', '')[:40]!r} is not an amount in pounds")
            )
        for name in filter(
            None, (p.strip() for p in re.split(r"[;\n]", cells.get("partners", "")))
        ):
            code, problem = _council(name, matcher, on, "partners")
            if problem:
                a.problems.append(problem)
            elif code and code != a.council_code and code not in a.partner_codes:
                a.partner_codes.append(code)
        a.partner_codes.sort()
        key = (a.council_code or "", scheme)
        if a.council_code and key in seen:
            a.problems.append(
                Problem("scheme", f"duplicate: row {seen[key]} has the same council and scheme")
            )
        elif a.council_code:
            seen[key] = r.number
        if a.problems:
            a.outcome = "error"
        elif key in existing:
            bid_id, amount, status, partners = existing[key]
            a.bid_id = bid_id
            if not cells.get("partners", "").strip():
                a.partner_codes = partners  # the list names none: the recorded ones stay
            if status == "withdrawn":
                why = "this bid was withdrawn; change it by hand if it is awarded again"
                a.problems.append(Problem("council", why))
                a.outcome = "error"
            else:
                same = (amount, status, partners) == (a.amount, "successful", a.partner_codes)
                a.outcome = "unchanged" if same else "update"
        out.append(a)
    return out


def import_awards(conn: Conn, round_code: str, rows: list[SheetRow], commit: bool) -> AwardResult:
    """Preview (commit=False) or apply an award list to a round, in this transaction: rows with
    problems are never applied; the others all together."""
    found = conn.execute(q.ROUND_DAY, (round_code,)).fetchone()
    if found is None:
        raise NotFound(f"no fund round {round_code!r}")
    on: date = found[0] or clock.today()  # councils as they were when the awards were made
    existing = {
        (str(c), str(s)): (int(i), a, str(st), sorted(p or []))
        for i, c, s, a, st, p in conn.execute(q.ROUND_BIDS, (round_code,))
    }
    checked = check_awards(rows, records.council_matcher(conn), on, existing)
    if commit:
        for a in checked:
            if a.outcome == "new":
                bid = records.create_bid(conn, {
                    "council_code": a.council_code, "round_code": round_code,
                    "scheme": a.scheme, "status": "successful", "amount_requested": None,
                    "amount_awarded": a.amount, "submitted_on": None, "decided_on": found[0],
                    "notes": "", "partner_codes": a.partner_codes})  # fmt: skip
                a.bid_id = int(bid["id"])
            elif a.outcome == "update" and a.bid_id is not None:
                records.update_bid(conn, a.bid_id, {
                    "status": "successful", "amount_awarded": a.amount,
                    "partner_codes": a.partner_codes})  # fmt: skip
    counts = {k: sum(1 for a in checked if a.outcome == k)
              for k in ("new", "update", "unchanged", "error")}  # fmt: skip
    return AwardResult(commit, round_code, counts, checked)
