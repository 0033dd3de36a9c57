"""Attacks on the API that the tests and bench/api.py share: the tests assert what the server
did under them (every answer correct, none waiting for ever), bench/api.py prints how much
slower a signed-in person's reads got (docs/benchmarks.md). Pure HTTP and file-making; nothing
here connects at import."""

from __future__ import annotations

import asyncio
import io
import resource
import socket
import statistics
import threading
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import httpx2
import openpyxl

SESSION_COOKIE = "wp_session"  # api/auth.py's (the bench and the tests talk HTTP only)

# --- sheet bombs ----------------------------------------------------------------------------

SHEET = "xl/worksheets/sheet1.xml"


def good_workbook(rows: int = 3) -> bytes:
    """A small, honest attendance workbook."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Email", "Council", "Attended"])
    for i in range(rows):
        sheet.append([f"Person {i}", f"p{i}@example.org", "Leeds", "yes"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The workbook with some of its parts replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename not in replace:
                dst.writestr(item, src.read(item.filename), zipfile.ZIP_DEFLATED)
        for name, body in replace.items():
            dst.writestr(name, body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def sheet_xml(rows: str, dimension: str = "A1:D2") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
    ).encode()


def inline_row(n: int, cells: list[str]) -> str:
    body = "".join(f'<c t="inlineStr"><is><t>{c}</t></is></c>' for c in cells)
    return f'<row r="{n}">{body}</row>'


HEADER = inline_row(1, ["Name", "Email", "Council", "Attended"])


def bombs() -> dict[str, bytes]:
    """Workbooks that cost far more to read than their size says, by name."""
    base = good_workbook()
    strings = (
        '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main">' + "<si><t>" + "x" * 1000 + "</t></si>" * 1 + "</sst>"
    )
    big_strings = strings.replace("</sst>", "<si><t>" + "y" * 60_000_000 + "</t></si></sst>")
    many_cells = "".join(
        inline_row(n, ["Ann", "a@example.org", "Leeds", "yes"]) for n in range(2, 300_002)
    )
    return {
        # 17 billion cells declared, one row numbered 1,048,576
        "declared size": rezip(
            base,
            {
                SHEET: sheet_xml(
                    HEADER + inline_row(1048576, ["A", "a@example.org", "Leeds", "yes"]),
                    dimension="A1:XFD1048576",
                )
            },
        ),
        # shared strings that unpack to 60 MB
        "shared strings": rezip(base, {"xl/sharedStrings.xml": big_strings.encode()}),
        # 300,000 rows of cells: small packed, large unpacked
        "compressed cells": rezip(base, {SHEET: sheet_xml(HEADER + many_cells)}),
        "malformed xml": rezip(base, {SHEET: b"<worksheet><sheetData><row r='1'><c"}),
        "not a zip": b"PK\x03\x04" + b"\x00" * 100,
    }


def post_bombs(import_url: str, headers: dict[str, str]) -> dict[str, tuple[int, float, str]]:
    """Post every bomb at once, each from its own thread: (status, seconds, detail) by name."""
    results: dict[str, tuple[int, float, str]] = {}

    def post(name: str, data: bytes) -> None:
        t0 = time.perf_counter()
        r = httpx2.post(
            import_url, files={"file": (f"{name}.xlsx", data)}, headers=headers, timeout=60
        )
        results[name] = (r.status_code, time.perf_counter() - t0, r.json().get("detail", ""))

    threads = [threading.Thread(target=post, args=item) for item in bombs().items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


# --- sign-in floods -------------------------------------------------------------------------


@contextmanager
def sign_in_flood(base: str, clients: int = 16) -> Iterator[list[int]]:
    """``clients`` threads posting wrong passwords for made-up accounts until the block ends;
    yields the list their answers' status codes are appended to."""
    stop = threading.Event()
    codes: list[int] = []

    def flood() -> None:
        with httpx2.Client(timeout=60) as c:
            while not stop.is_set():
                name = f"nobody-{uuid.uuid4().hex[:8]}"
                with_password = {"username": name, "password": "x" * 20}
                try:
                    codes.append(
                        c.post(f"{base}/api/v1/auth/token", data=with_password).status_code
                    )
                except httpx2.TransportError:
                    codes.append(0)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield codes
    finally:
        stop.set()
        for t in threads:
            t.join(60)


# --- what a signed-in person sees -----------------------------------------------------------


def timed_gets(url: str, headers: dict[str, str], n: int) -> list[tuple[int, float]]:
    """``n`` GETs one after another on one connection: (status, seconds) each."""
    out = []
    with httpx2.Client(headers=headers, timeout=60) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            status = c.get(url).status_code
            out.append((status, time.perf_counter() - t0))
    return out


@contextmanager
def reading_meanwhile(url: str, headers: dict[str, str]) -> Iterator[list[tuple[int, float]]]:
    """GETs one after another from a thread for as long as the block runs; yields the list of
    (status, seconds) it fills."""
    stop = threading.Event()
    got: list[tuple[int, float]] = []

    def read() -> None:
        with httpx2.Client(headers=headers, timeout=60) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                status = c.get(url).status_code
                got.append((status, time.perf_counter() - t0))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        yield got
    finally:
        stop.set()
        t.join(90)


def p95(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=20)[18] if len(seconds) > 1 else seconds[0]


def patience(quiet: list[float], floor: float = 5.0) -> float:
    """The longest a signed-in read may take while the API is attacked, for the tests: ten
    times the quiet p95 measured in the same test, and never less than ``floor`` seconds — wide
    enough for a busy machine, far below a hang or a client's time-out."""
    return max(10 * p95(quiet), floor)


# --- many signed-in people at once ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One request of a load: what it was, when it started (seconds from the load's start),
    its status (0: no answer at all), how long it took, and its Retry-After header."""

    kind: str
    started: float
    status: int
    seconds: float
    retry_after: str | None


async def signed_in_load(
    base: str,
    *,
    session: str,
    token: str,
    pages: list[str],
    reads: list[str],
    clients: int = 200,
    seconds: float = 60.0,
    sign_ins: list[tuple[str, str]] | None = None,
) -> tuple[list[Answer], tuple[float, float]]:
    """``clients`` people at once, each looping for ``seconds`` over the pages (with the
    session cookie) and the API reads (with the bearer token), one request at a time; half-way,
    every one of ``sign_ins`` (username, password) signs in at the same moment, each from an
    address of its own (127.0.1.x: people, not one guesser). Returns every answer and the
    sign-in burst's (start, end) in the same seconds."""
    answers: list[Answer] = []
    t0 = time.perf_counter()
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(kind: str, send: Callable[[], Awaitable[httpx2.Response]]) -> None:
            started = time.perf_counter()
            try:
                r = await send()
                status, retry = r.status_code, r.headers.get("retry-after")
            except httpx2.TransportError:
                status, retry = 0, None
            done = time.perf_counter()
            answers.append(Answer(kind, started - t0, status, done - started, retry))

        cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
        head = {"Authorization": f"Bearer {token}"}

        async def person(i: int) -> None:
            n = i
            while time.perf_counter() - t0 < seconds:
                n += 1
                if n % 2:
                    page = partial(client.get, pages[n % len(pages)], headers=cookie)
                    await one("page", page)
                else:
                    read = partial(client.get, reads[n % len(reads)], headers=head)
                    await one("read", read)

        async def sign_in(i: int, username: str, password: str) -> None:
            transport = httpx2.AsyncHTTPTransport(local_address=f"127.0.1.{i + 1}")
            async with httpx2.AsyncClient(base_url=base, timeout=60, transport=transport) as c:
                form = {"username": username, "password": password}
                await one("sign-in", partial(c.post, "/api/v1/auth/token", data=form))

        async def burst() -> tuple[float, float]:
            await asyncio.sleep(seconds / 2)
            start = time.perf_counter() - t0
            await asyncio.gather(*(sign_in(i, *c) for i, c in enumerate(sign_ins or [])))
            return start, time.perf_counter() - t0

        people = [asyncio.create_task(person(i)) for i in range(clients)]
        window = await burst()
        await asyncio.gather(*people)
    return answers, window


@contextmanager
def idle_connections(base: str, n: int) -> Iterator[list[socket.socket]]:
    """``n`` connections that never send a request (half of them a request head begun and
    never finished); closed when the block ends."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    assert host
    assert port
    socks: list[socket.socket] = []
    try:
        for i in range(n):
            s = socket.create_connection((host, port), timeout=30)
            if i % 2:
                s.sendall(b"GET /api/v1/workshops HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def open_files_needed(n: int) -> None:
    """Raise this process's open-file limit for ``n`` more sockets (or fail saying why)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise RuntimeError(f"{n} connections need an open-file limit of {want}; hard: {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
