"""Councils: GSS codes, types, the reference-data seed and matching the names officers type."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process

from bids.regions import region_of

COUNCIL_TYPES: dict[str, str] = {
    "E06": "unitary",
    "E07": "non-metropolitan district",
    "E08": "metropolitan district",
    "E09": "london borough",
    "E10": "county",
}
GSS_RE = re.compile(r"^[A-Z]\d{2}\d{6}$")
REFERENCE_NAME = "mysociety-uk-local-authorities"
REFERENCE_VINTAGE = "2025-07-10"
REFERENCE_SOURCE = (
    "mySociety UK Local Authority Names and Codes (commit 67ef8b1, 2025-07-10), compiled from "
    "ONS codes, the GOV.UK local-authority registers and structural change orders: every "
    "English authority with its start and end dates and successors (bids/data/SOURCE.md)"
)
REFERENCE_LICENCE = "MIT (mySociety); the underlying public data Open Government Licence v3.0"
HISTORY_FILE = Path(__file__).parent / "data" / "uk_local_authorities.csv"

# Authorities renamed since 2009 keep their GSS code; their former names still mean them.
# (The source lists these among many spelling variants; these are the renames.)
FORMER_NAMES: dict[str, tuple[str, ...]] = {
    "E07000112": ("Shepway District Council", "Shepway"),  # Folkestone and Hythe from 2018
}


def gss_problem(code: str) -> str | None:
    """Why `code` is not the GSS code of an English council, or None when it is one."""
    if not GSS_RE.fullmatch(code):
        return (
            f"{code!r} is not a GSS code: expected 9 characters, a letter, 2 digits and 6 digits "
            "(e.g. E06000002)"
        )
    if code[:3] not in COUNCIL_TYPES:
        known = ", ".join(f"{p} {t}" for p, t in COUNCIL_TYPES.items())
        return f"{code!r} is not an English council code; the prefix must be one of: {known}"
    return None


def council_type(code: str) -> str:
    """The council type its GSS code's prefix stands for (the database derives the same)."""
    return COUNCIL_TYPES[code[:3]]


@dataclass(frozen=True, slots=True)
class CouncilSeed:
    gss_code: str
    name: str
    upper_tier_code: str | None
    region: str | None
    short_name: str | None = None
    in_force_from: date | None = None  # None: since before 2009
    in_force_until: date | None = None  # exclusive; None: still in force
    successor_codes: tuple[str, ...] = ()


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _until(end: str) -> date | None:
    """The first day an authority is no longer in force. The source gives either its last day
    (31 March) or its successor's first (1 April): both mean the same change."""
    last = _day(end)
    if last is None:
        return None
    return last + timedelta(days=1) if (last.month, last.day) == (3, 31) else last


def reference_councils() -> list[CouncilSeed]:
    """Every English council in force at any time since 2009 (the registry's source, read as
    published): districts, unitaries, metropolitan districts, London boroughs with the City of
    London, and counties, with dates and successors."""
    with HISTORY_FILE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    gss_of = {r["local-authority-code"]: r["gss-code"] for r in rows if r["gss-code"]}
    english = [r for r in rows if r["nation"] == "England" and r["gss-code"][:3] in COUNCIL_TYPES]
    region = {r["gss-code"]: r["region"] or None for r in english}

    def codes(field: str) -> tuple[str, ...]:
        return tuple(gss_of[c] for c in field.split(",") if c and c in gss_of)

    out: list[CouncilSeed] = []
    for r in english:
        code = r["gss-code"]
        upper = codes(r["county-la"])
        successors = codes(r["replaced-by"])
        # the project's own table first (the source misplaces some counties), then the
        # source's; an abolished authority's is its county's or its successor's
        where = (
            region_of(code)
            or region[code]
            or next((region.get(c) for c in (*upper, *successors) if region.get(c)), None)
        )
        out.append(
            CouncilSeed(
                code,
                r["official-name"],
                upper[0] if upper else None,
                where,
                r["nice-name"] or None,
                _day(r["start-date"]),
                _until(r["end-date"]),
                successors,
            )
        )
    # counties first, so a district's upper tier exists when it is inserted
    return sorted(out, key=lambda c: (c.upper_tier_code is not None, c.gss_code))


_NOISE = re.compile(
    r"\b(council|borough|district|county|metropolitan|city|of|the|royal|london|mbc|bc|dc|cc"
    r"|lb|lbc|rb|rbc|mb|mdc|ua|unitary|authority|boro)\b"
)
# abbreviations people write for a word of the name itself
_ABBREVIATIONS = {
    "bucks": "buckinghamshire",
    "herts": "hertfordshire",
    "northants": "northamptonshire",
    "notts": "nottinghamshire",
    "lincs": "lincolnshire",
    "glos": "gloucestershire",
    "leics": "leicestershire",
    "worcs": "worcestershire",
    "staffs": "staffordshire",
    "cambs": "cambridgeshire",
    "beds": "bedfordshire",
    "oxon": "oxfordshire",
    "wilts": "wiltshire",
    "hants": "hampshire",
    "yorks": "yorkshire",
}


@lru_cache(maxsize=4096)
def normalise_name(name: str) -> str:
    """A council name reduced to what distinguishes it: 'Borough of Middlesbrough Council',
    'middlesbrough' and 'MIDDLESBROUGH BC' all become 'middlesbrough'. Words that are part of
    the name itself ('Kingston upon Hull, City of') survive in the reference spelling."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    # an apostrophe joins ("King's", or King with a curly one, is "kings" as the registry has it)
    s = s.replace("'", "").replace("`", "")
    s = s.replace("&", " and ").replace("st.", "st ").replace("saint ", "st ")
    s = re.sub(r"[^a-z0-9 ]+", " ", s)
    s = " ".join(_ABBREVIATIONS.get(w, w) for w in s.split())
    plain = s
    # 'City of London' is all noise words: keep it whole rather than reduce it to nothing
    return " ".join(_NOISE.sub(" ", s).split()) or plain


# A suggestion (a council named like the text, in force on the day) is offered from this
# WRatio score up when no other council is within AMBIGUOUS_GAP of it, and taken by
# accept_suggestions only when the two names are also alike letter by letter (ACCEPT_CLOSENESS:
# a typo such as "Sheffeild"). Chosen on the 1,341 labelled names of tests/data
# (tests/api/test_council_history.py): no wrong council was suggested, and the one wrong
# candidate at a high WRatio ("south buckinghamshire" -> Buckinghamshire, 95) has a plain
# similarity of 83.
SUGGEST_SCORE = 88.0
ACCEPT_CLOSENESS = 85.0  # plain edit similarity: a typo, not a shared word ("South Bucks")
AMBIGUOUS_GAP = 5.0  # the runner-up within this of the best: no suggestion


@dataclass(frozen=True, slots=True)
class Match:
    gss_code: str | None
    suggestion: str | None = None
    suggestion_code: str | None = None
    score: float = 0.0
    kind: str | None = None  # of the suggestion: similar | successor | predecessor
    closeness: float = 0.0  # plain edit similarity of the two names (a typo: high)

    @property
    def acceptable(self) -> bool:
        """Whether accept_suggestions may take the suggestion: only the same council, spelt
        nearly alike — never a predecessor or successor."""
        return self.kind == "similar" and self.closeness >= ACCEPT_CLOSENESS

    def explain(self, text: str) -> str:
        if self.suggestion is None:
            return f"unknown council {text!r}"
        if self.kind == "successor":
            return (
                f"{text!r} was abolished before the workshop; its successor is "
                f"{self.suggestion} ({self.suggestion_code})"
            )
        if self.kind == "predecessor":
            return (
                f"{text!r} did not exist yet at the workshop; it was then "
                f"{self.suggestion} ({self.suggestion_code})"
            )
        return f"unknown council {text!r}; did you mean {self.suggestion} ({self.suggestion_code})?"


@dataclass(frozen=True, slots=True)
class Council:
    gss_code: str
    name: str
    short_name: str | None = None
    in_force_from: date | None = None
    in_force_until: date | None = None
    successor_codes: tuple[str, ...] = ()

    def in_force(self, on: date | None) -> bool:
        if on is None:
            return self.in_force_until is None
        return (self.in_force_from is None or self.in_force_from <= on) and (
            self.in_force_until is None or on < self.in_force_until
        )


class CouncilMatcher:
    """Finds the council a sheet or form means, as it was on the workshop's day: by GSS code, or
    by its official or short name once both are reduced to what distinguishes them ('LB
    Hackney', 'Hull City Council', 'Durham County Council', '&' for 'and'). A name of a council
    not in force that day is never a match: its successor (or predecessor) is suggested, and
    says so. Otherwise the closest name in force that day is suggested above SUGGEST_SCORE."""

    def __init__(self, councils: Iterable[Council]) -> None:
        self._all: dict[str, Council] = {}
        self._by_key: dict[str, list[str]] = {}
        for c in councils:
            self._all[c.gss_code] = c
            for name in {c.name, c.short_name or c.name, *FORMER_NAMES.get(c.gss_code, ())}:
                codes = self._by_key.setdefault(normalise_name(name), [])
                if c.gss_code not in codes:
                    codes.append(c.gss_code)
        self._predecessors: dict[str, list[str]] = {}
        for c in self._all.values():
            for s in c.successor_codes:
                self._predecessors.setdefault(s, []).append(c.gss_code)

    def name_of(self, code: str) -> str | None:
        c = self._all.get(code)
        return c.name if c else None

    def match(self, text: str, on: date | None = None) -> Match:
        t = text.strip()
        code = t.upper()
        if code in self._all:
            return self._in_force(code, on)
        codes = self._by_key.get(normalise_name(t), [])
        live = [c for c in codes if self._all[c].in_force(on)]
        if len(live) == 1:
            return Match(live[0])
        if codes and not live:
            return self._in_force(codes[0], on)
        return self._similar(t, on)

    def _in_force(self, code: str, on: date | None) -> Match:
        c = self._all[code]
        if c.in_force(on):
            return Match(code)
        if c.in_force_until is not None and (on is None or on >= c.in_force_until):
            nxt = self._follow(code, on, forward=True)
            return self._related(nxt, "successor")
        prev = self._follow(code, on, forward=False)
        return self._related(prev, "predecessor")

    def today_for(self, code: str, on: date) -> list[str]:
        """The councils in force on ``on`` that cover ``code``'s area: itself, or those that took
        over from it (one council of 2012 can be one of today's, or part of it)."""
        c = self._all.get(code)
        if c is None:
            return []
        return [code] if c.in_force(on) else self._follow(code, on, forward=True)

    def _follow(self, code: str, on: date | None, *, forward: bool) -> list[str]:
        """The councils that took over from (or came before) ``code``, as of ``on``."""
        seen, todo, found = set(), [code], []
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            nxt = self._all[cur].successor_codes if forward else self._predecessors.get(cur, [])
            for n in nxt:
                if n in self._all and self._all[n].in_force(on):
                    found.append(n)
                elif n in self._all:
                    todo.append(n)
        return sorted(set(found))

    def _related(self, codes: list[str], kind: str) -> Match:
        if not codes:
            return Match(None)
        names = " / ".join(self._all[c].name for c in codes)
        return Match(None, names, ",".join(codes), 100.0, kind)

    def _similar(self, text: str, on: date | None) -> Match:
        keys = [k for k, codes in self._by_key.items() if any(
            self._all[c].in_force(on) for c in codes)]  # fmt: skip
        best = process.extract(normalise_name(text), keys, scorer=fuzz.WRatio, limit=2)
        if not best or best[0][1] < SUGGEST_SCORE:
            return Match(None)
        if len(best) > 1 and best[0][1] - best[1][1] < AMBIGUOUS_GAP:
            return Match(None)  # 'Kingston': upon Hull or upon Thames? neither is suggested
        key, score, _ = best[0]
        code = next(c for c in self._by_key[key] if self._all[c].in_force(on))
        close = fuzz.ratio(normalise_name(text), key)
        return Match(None, self._all[code].name, code, float(score), "similar", float(close))
