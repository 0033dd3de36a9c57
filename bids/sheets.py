"""Attendance sheets as officers have them: CSV or XLSX, headers in their own words.

Pure functions: bytes in, rows of named cells out. The sheet may have a title or blank rows above
the header; the header row is the first that names at least a person and an email column.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.errors import SheetError

MiB = 1024 * 1024
MAX_FILE_BYTES = 5 * MiB  # the upload (the API's and the page's limit: api/security.py)
MAX_ROWS = 5_000  # attendees in one sheet
MAX_COLS = 50  # columns read
MAX_CELL = 1_000  # characters kept of a cell (a field's own limit is checked per row)
MAX_HEADER_SEARCH = 50  # rows searched for the header (a title, notes or blanks above it)
MAX_BLANK_ROWS = 50_000  # blank rows tolerated among and after the data
MAX_SHEETS = 10  # worksheets searched for the attendance table
MAX_MEMBERS = 200  # parts of an XLSX
MAX_PART_BYTES = 20 * MiB  # unpacked size of one part (a worksheet)
MAX_STRINGS_BYTES = 10 * MiB  # unpacked size of the shared strings
MAX_UNPACKED_BYTES = 40 * MiB  # unpacked size of all parts

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


@dataclass(frozen=True, slots=True)
class Layout:
    """What a kind of sheet holds: our field -> the headers people use for it; the fields that
    must have a column; of ``one_of``, at least one must."""

    headers: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    one_of: tuple[str, ...] = ()
    one_of_problem: str = ""

    def lookup(self) -> dict[str, str]:
        return {_key(h): field for field, hs in self.headers.items() for h in hs}


ATTENDANCE = Layout(
    HEADERS,
    REQUIRED,
    ("council", "council_code"),
    "the sheet has no council column (a council name or its GSS code)",
)
# a fund's published award list: council (or a partnership's lead), scheme, amount, partners
AWARDS = Layout(
    {
        "council": (
            "council",
            "local authority",
            "authority",
            "lead council",
            "lead authority",
            "council or partnership",
            "partnership",
            "organisation",
            "bidder",
        ),
        "council_code": ("gss code", "council code", "la code", "ons code", "gss"),
        "scheme": ("scheme", "scheme name", "project", "bid", "bid name", "proposal"),
        "amount": (
            "amount",
            "amount awarded",
            "award",
            "awarded",
            "funding",
            "grant",
            "funding awarded",
            "total award",
            "total",
        ),
        "partners": ("partners", "partner councils", "partner authorities", "with"),
    },
    ("amount",),
    ("council", "council_code"),
    "the sheet has no council column (a council or partnership name, or its GSS code)",
)

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


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _cell(value: object) -> str:
    """A cell's text, without NUL characters (never meaningful; the database refuses them) and
    cut at MAX_CELL characters (longer is a row problem, reported, never stored)."""
    text = _text(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[: MAX_CELL + 1]


def _rows_from_grid(
    grid: Iterable[Sequence[object]], layout: Layout = ATTENDANCE
) -> list[SheetRow]:
    """The rows under the header row. ``grid`` is read lazily and never beyond the header plus
    MAX_ROWS rows: a sheet's declared size is never trusted."""
    rows = iter(grid)
    lookup = layout.lookup()
    columns: list[str | None] = []
    header_at = -1
    for i, raw in enumerate(rows):
        if i >= MAX_HEADER_SEARCH:
            break
        row = [_cell(c) for c in raw[:MAX_COLS]]
        fields = {lookup.get(_key(c)) for c in row} - {None}
        if all(f in fields for f in layout.required):
            columns = [lookup.get(_key(c)) for c in row]
            header_at = i
            break
    if header_at < 0:
        expected = "; ".join(
            f"{f}: {', '.join(repr(h) for h in layout.headers[f][:3])}" for f in layout.required
        )
        raise SheetError(
            f"no header row found in the first {MAX_HEADER_SEARCH} rows: the sheet needs a "
            f"column for each of {expected} (council by name or by GSS code, and an attendance "
            "column, are read too)"
        )
    if layout.one_of and not set(columns) & set(layout.one_of):
        raise SheetError(layout.one_of_problem)
    out: list[SheetRow] = []
    last = header_at + 1 + MAX_ROWS + MAX_BLANK_ROWS  # the last row number read
    for n, raw in enumerate(rows, start=header_at + 2):
        if n > last:
            raise SheetError(
                f"the sheet has (or declares) rows beyond row {last:,}; an attendance sheet "
                f"has at most {MAX_ROWS:,}: save just the attendance table and try again"
            )
        row = [_cell(c) for c in raw[: len(columns)]]
        if not any(row):
            continue
        if len(out) >= MAX_ROWS:
            raise SheetError(f"the sheet has more than {MAX_ROWS:,} rows; split it")
        cells: dict[str, str] = {}
        for j, f in enumerate(columns):
            if f and f not in cells:  # two columns for one field: the first one counts
                cells[f] = row[j] if j < len(row) else ""
        out.append(SheetRow(n, cells))
    return out


def _decode(data: bytes) -> str:
    """CSV text as officers' tools write it: UTF-8 (with or without a byte-order mark), UTF-16
    (Excel's "Unicode text", with its mark), else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SheetError(f"the file says UTF-16 but is not: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel's "CSV" on Windows


def read_csv(data: bytes, layout: Layout = ATTENDANCE) -> list[SheetRow]:
    text = _decode(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(MAX_FILE_BYTES)  # a long cell is a row problem, not a broken sheet
    try:
        return _rows_from_grid(csv.reader(io.StringIO(text, newline=""), dialect), layout)
    except csv.Error as exc:
        raise SheetError(f"not a readable CSV file: {exc}") from exc


def check_archive(data: bytes) -> None:
    """Refuse an XLSX whose parts would unpack to more than the limits, before anything is
    unpacked: member count, each member's and the total uncompressed size, the shared strings
    and every worksheet. (A member cannot unpack to more than it declares: zipfile stops there
    and fails its checksum.)"""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SheetError(f"not a readable XLSX workbook: {exc}") from exc
    if len(members) > MAX_MEMBERS:
        raise SheetError(f"the workbook has {len(members)} parts; at most {MAX_MEMBERS} are read")
    total = 0
    for m in members:
        total += m.file_size
        limit = MAX_STRINGS_BYTES if m.filename.endswith("sharedStrings.xml") else MAX_PART_BYTES
        if m.file_size > limit:
            raise SheetError(
                f"the workbook's part {m.filename[:80]} unpacks to {m.file_size / MiB:.0f} MB; "
                f"an attendance sheet's is under {limit // MiB} MB: save only the sheet needed"
            )
    if total > MAX_UNPACKED_BYTES:
        raise SheetError(
            f"the workbook unpacks to {total / MiB:.0f} MB; at most {MAX_UNPACKED_BYTES // MiB} "
            "MB are read"
        )


def _first_table(sheets: list[Any], layout: Layout) -> list[SheetRow]:
    """The attendance table of the first worksheet that has one."""
    if not sheets:
        raise SheetError("the workbook has no worksheets")
    for sheet in sheets:
        # bounded whatever the sheet declares (its dimension, a row numbered 1,048,576)
        grid = sheet.iter_rows(
            max_row=MAX_HEADER_SEARCH + MAX_ROWS + MAX_BLANK_ROWS + 2,  # one past: refused
            max_col=MAX_COLS,
            values_only=True,
        )
        try:
            return _rows_from_grid(grid, layout)
        except SheetError:
            if sheet is sheets[-1]:
                raise
    raise AssertionError("unreachable")  # the last sheet returned or raised


def read_xlsx(data: bytes, layout: Layout = ATTENDANCE) -> list[SheetRow]:
    import openpyxl

    check_archive(data)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise SheetError(f"not a readable XLSX workbook: {str(exc)[:200]}") from exc
    try:
        return _first_table(book.worksheets[:MAX_SHEETS], layout)
    except SheetError:
        raise
    except Exception as exc:  # malformed XML inside the workbook, and the like
        raise SheetError(f"not a readable XLSX workbook: {str(exc)[:200]}") from exc
    finally:
        book.close()


def read_sheet(filename: str, data: bytes, layout: Layout = ATTENDANCE) -> list[SheetRow]:
    """Rows of a CSV or XLSX attendance sheet (chosen by content, then by file name). Pure and
    bounded in what it keeps, but not in CPU: the API runs it through bids/sheetbudget.py."""
    if len(data) > MAX_FILE_BYTES:
        raise SheetError(f"the sheet is larger than {MAX_FILE_BYTES // MiB} MB")
    if data[:2] == b"PK" or filename.lower().endswith((".xlsx", ".xlsm")):
        return read_xlsx(data, layout)
    if filename.lower().endswith(".xls"):
        raise SheetError("old .xls workbooks are not read: save the sheet as .xlsx or .csv")
    return read_csv(data, layout)


def attendance_of(text: str) -> str | None:
    """The registration status an attendance cell means, or None if it is not understood."""
    return ATTENDANCE_WORDS.get(_key(text) if text not in ("✓", "✔") else text)
