"""Attendance sheets as officers have them: CSV or XLSX, headers in their own words.

Pure functions: bytes in, rows of named cells out. The sheet may have a title or blank rows above
the header; the header row is the first that names at least a person and an email column.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime

from core.errors import SheetError

MAX_ROWS = 5_000

# our field -> the headers officers use for it (compared lower-case, punctuation removed)
HEADERS: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "full name",
        "attendee",
        "attendee name",
        "delegate",
        "delegate name",
        "person",
    ),
    "role": ("role", "job title", "position", "job role"),
    "email": ("email", "e mail", "email address", "e mail address"),
    "council": (
        "council",
        "council name",
        "organisation",
        "organization",
        "local authority",
        "authority",
    ),
    "council_code": ("gss code", "council code", "la code", "ons code", "gss"),
    "attendance": ("attended", "attendance", "status", "present", "attended y n"),
}
REQUIRED = ("name", "email")

ATTENDANCE_WORDS: dict[str, str] = {
    **dict.fromkeys(("yes", "y", "true", "1", "attended", "present", "x", "✓", "✔"), "attended"),
    **dict.fromkeys(
        ("no", "n", "false", "0", "no show", "noshow", "absent", "did not attend", "dna"), "no_show"
    ),
    **dict.fromkeys(("", "registered", "booked"), "registered"),
    **dict.fromkeys(("cancelled", "canceled", "withdrew"), "cancelled"),
}


@dataclass(frozen=True, slots=True)
class SheetRow:
    number: int  # the row number the officer sees in their spreadsheet (1-based)
    cells: dict[str, str]


def _key(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


_LOOKUP = {_key(h): field for field, hs in HEADERS.items() for h in hs}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _rows_from_grid(grid: list[list[str]]) -> list[SheetRow]:
    for i, row in enumerate(grid):
        fields = {_LOOKUP.get(_key(c)) for c in row} - {None}
        if all(f in fields for f in REQUIRED):
            columns = [_LOOKUP.get(_key(c)) for c in row]
            header_at = i
            break
    else:
        expected = "; ".join(f"{f}: {', '.join(repr(h) for h in HEADERS[f][:3])}" for f in REQUIRED)
        raise SheetError(
            f"no header row found: the sheet needs a column for each of {expected} "
            f"(council by name or by GSS code, and an attendance column, are read too)"
        )
    if "council" not in columns and "council_code" not in columns:
        raise SheetError("the sheet has no council column (a council name or its GSS code)")
    out: list[SheetRow] = []
    for n, row in enumerate(grid[header_at + 1 :], start=header_at + 2):
        if not any(c for c in row):
            continue
        cells = {f: (row[j] if j < len(row) else "") for j, f in enumerate(columns) if f}
        out.append(SheetRow(n, cells))
        if len(out) > MAX_ROWS:
            raise SheetError(f"the sheet has more than {MAX_ROWS:,} rows; split it")
    return out


def read_csv(data: bytes) -> list[SheetRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's "CSV" on Windows
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        grid = [
            [c.strip() for c in row] for row in csv.reader(io.StringIO(text, newline=""), dialect)
        ]
    except csv.Error as exc:
        raise SheetError(f"not a readable CSV file: {exc}") from exc
    return _rows_from_grid(grid)


def read_xlsx(data: bytes) -> list[SheetRow]:
    from zipfile import BadZipFile

    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SheetError(f"not a readable XLSX workbook: {exc}") from exc
    try:
        for sheet in book.worksheets:
            grid = [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            try:
                return _rows_from_grid(grid)
            except SheetError:
                if sheet is book.worksheets[-1]:
                    raise
        raise SheetError("the workbook has no worksheets")
    finally:
        book.close()


def read_sheet(filename: str, data: bytes) -> list[SheetRow]:
    """Rows of a CSV or XLSX attendance sheet (chosen by content, then by file name)."""
    if data[:2] == b"PK" or filename.lower().endswith((".xlsx", ".xlsm")):
        return read_xlsx(data)
    if filename.lower().endswith(".xls"):
        raise SheetError("old .xls workbooks are not read: save the sheet as .xlsx or .csv")
    return read_csv(data)


def attendance_of(text: str) -> str | None:
    """The registration status an attendance cell means, or None if it is not understood."""
    return ATTENDANCE_WORDS.get(_key(text) if text not in ("✓", "✔") else text)
