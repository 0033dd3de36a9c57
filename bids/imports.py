"""Import an attendance sheet into a workshop: a dry-run preview of every row's problems, then
an idempotent commit of the good rows (importing the same sheet twice changes nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from email_validator import EmailNotValidError, validate_email

from bids import queries as q
from bids import records
from bids.councils import CouncilMatcher
from bids.registrations import (
    EMAIL_MAX,
    NAME_MAX,
    attendance_problem,
    change_status,
    register,
    transition_problem,
)
from bids.sheets import SheetRow, attendance_of
from core.clock import LONDON
from core.db import Conn
from core.errors import Conflict
from core.outbox import normal_email


@dataclass(slots=True)
class Problem:
    field: str
    message: str
    suggestion: str | None = None
    suggestion_code: str | None = None


@dataclass(slots=True)
class CheckedRow:
    row: int
    name: str
    email: str
    council: str
    council_code: str | None
    status: str | None
    role: str | None = None
    outcome: str = "new"  # new | update | unchanged | error
    problems: list[Problem] = field(default_factory=list)
    registration_id: int | None = None


def _too_long(c: CheckedRow) -> list[Problem]:
    """A problem for each field over the API's limit for it; the row keeps (and echoes back)
    only that much of each."""
    problems = []
    for column, limit in (("name", NAME_MAX), ("role", NAME_MAX), ("email", EMAIL_MAX),
                          ("council", NAME_MAX)):  # fmt: skip
        text = getattr(c, column) or ""
        if len(text) > limit:
            problems.append(Problem(column, f"longer than {limit} characters"))
            setattr(c, column, text[:limit])
    return problems


def check_rows(
    rows: list[SheetRow],
    matcher: CouncilMatcher,
    existing: Mapping[str, tuple[int, str]],
    accept_suggestions: bool = False,
    on: date | None = None,
) -> list[CheckedRow]:
    """Each row's problems and what committing it would do. Pure: `existing` maps the emails
    already registered for the workshop to (registration id, status)."""
    seen: dict[str, int] = {}
    out: list[CheckedRow] = []
    for r in rows:
        cells = r.cells
        name, raw_email = cells.get("name", ""), cells.get("email", "")
        council_text = cells.get("council_code") or cells.get("council", "")
        status = attendance_of(cells.get("attendance", ""))
        c = CheckedRow(r.number, name, raw_email, council_text, None, status)
        c.role = cells.get("role") or None
        c.problems = _too_long(c)
        council_text = c.council
        if not name:
            c.problems.append(Problem("name", "the name is empty"))
        email = normal_email(raw_email)
        try:
            email = normal_email(
                validate_email(email[:EMAIL_MAX], check_deliverability=False).normalized
            )
            c.email = email
        except EmailNotValidError as exc:
            shown = raw_email[:60]
            c.problems.append(Problem("email", f"{shown!r} is not an email address: {exc}"))
        if email and email in seen:
            c.problems.append(Problem("email", f"duplicate: row {seen[email]} has the same email"))
        elif email:
            seen[email] = r.number
        if status is None:
            c.problems.append(
                Problem(
                    "attendance",
                    f"{cells.get('attendance')!r} is not an attendance value; use yes, no, "
                    "registered or cancelled",
                )
            )
        if not council_text:
            c.problems.append(Problem("council", "the council is empty"))
        else:
            m = matcher.match(council_text, on)
            if m.gss_code:
                c.council_code = m.gss_code
            elif accept_suggestions and m.acceptable:
                c.council_code = m.suggestion_code
            else:
                c.problems.append(
                    Problem("council", m.explain(council_text), m.suggestion, m.suggestion_code)
                )
        if c.problems:
            c.outcome = "error"
        elif email in existing:
            c.registration_id, current = existing[email]
            if status in (current, "registered"):
                c.outcome = "unchanged"  # a plain booking never undoes recorded attendance
            elif problem := transition_problem(current, status or current):
                c.problems.append(Problem("attendance", problem))
                c.outcome = "error"
            else:
                c.outcome = "update"
        out.append(c)
    return out


@dataclass(slots=True)
class ImportResult:
    committed: bool
    rows: list[CheckedRow]
    sheet_problems: list[str]
    counts: dict[str, int]


def import_sheet(
    conn: Conn,
    workshop: Mapping[str, Any],
    rows: list[SheetRow],
    actor: str,
    commit: bool,
    accept_suggestions: bool = False,
) -> ImportResult:
    """Preview (commit=False) or apply (commit=True) a sheet to one workshop, in this
    transaction. Rows with problems are never applied; the others are applied all together."""
    conn.execute(q.LOCK_WORKSHOP, (workshop["id"],))  # one import or booking at a time
    matcher = records.council_matcher(conn)
    existing: dict[str, tuple[int, str]] = {}
    # a live registration wins over a cancelled one of the same person (ordered that way)
    for i, e, s in conn.execute(q.REGISTRATIONS_FOR_IMPORT, (workshop["id"],)):
        existing.setdefault(str(e), (int(i), str(s)))
    on = workshop["starts_at"].astimezone(LONDON).date()  # councils as they were that day
    checked = check_rows(rows, matcher, existing, accept_suggestions, on)
    sheet_problems: list[str] = []
    attending = [c for c in checked if c.outcome in ("new", "update")]
    for s in sorted({c.status for c in attending if c.status}):
        if problem := attendance_problem(s, workshop["status"], workshop["starts_at"]):
            sheet_problems.append(problem)
    new_places = sum(
        1 for c in checked if c.outcome == "new" and c.status in ("attended", "no_show")
    )
    if new_places > workshop["places_free"]:
        sheet_problems.append(
            f"the sheet records {new_places} new attendees but the workshop has "
            f"{workshop['places_free']} free places; raise its capacity first"
        )
    counts = {
        o: sum(1 for c in checked if c.outcome == o)
        for o in ("new", "update", "unchanged", "error")
    }
    if commit and sheet_problems:
        raise Conflict("; ".join(sheet_problems))
    if commit:
        for c in attending:
            assert c.status is not None  # noqa: S101  (rows without a status are errors)
            if c.outcome == "new":
                reg = register(
                    conn,
                    int(workshop["id"]),
                    str(c.council_code),
                    c.name,
                    c.role,
                    c.email,
                    actor,
                    status=c.status if c.status != "cancelled" else "registered",
                )
                c.registration_id = int(reg["id"])
                if c.status == "cancelled":
                    change_status(conn, c.registration_id, "cancelled")
            else:
                assert c.registration_id is not None  # noqa: S101  (an update has its row)
                change_status(conn, c.registration_id, c.status)
    return ImportResult(commit, checked, sheet_problems, counts)
