"""The councils of 2012 (issue 18): a registry with history, tested against facts not used to
build it, and matching that knows the workshop's date and how people write council names."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import httpx2
import pytest

from bids.councils import COUNCIL_TYPES, Council, CouncilMatcher, reference_councils
from tests.helpers import bearer, workshop_body

ROOT = Path(__file__).resolve().parents[2]
SEEDS = reference_councils()


def in_force(on: date) -> list[str]:
    return [
        s.gss_code
        for s in SEEDS
        if (s.in_force_from is None or s.in_force_from <= on)
        and (s.in_force_until is None or on < s.in_force_until)
    ]


def matcher() -> CouncilMatcher:
    return CouncilMatcher(
        Council(s.gss_code, s.name, s.short_name, s.in_force_from, s.in_force_until,
                s.successor_codes)
        for s in SEEDS
    )  # fmt: skip


@pytest.mark.parametrize(
    ("on", "counts"),
    [
        # England's councils as the LGA and ONS counted them: 353 in 2012, 317 from April 2023
        (date(2012, 6, 1), {"county": 27, "non-metropolitan district": 201,
                            "metropolitan district": 36, "london borough": 33, "unitary": 56}),
        (date(2023, 4, 1), {"county": 21, "non-metropolitan district": 164,
                            "metropolitan district": 36, "london borough": 33, "unitary": 63}),
    ],
)  # fmt: skip
def test_councils_by_type_on_a_day_are_the_published_counts(
    on: date, counts: dict[str, int]
) -> None:
    assert Counter(COUNCIL_TYPES[c[:3]] for c in in_force(on)) == counts


def test_the_councils_of_april_2021_are_the_ons_lookups() -> None:
    """The ONS April 2021 lower/upper tier lookup (another package, another compiler)."""
    import qlacref_authorities  # type: ignore[import-untyped]

    ons = {
        code
        for r in qlacref_authorities.records
        for code in (r["LTLA21CD"], r["UTLA21CD"])
        if code.startswith("E")
    }
    assert set(in_force(date(2021, 4, 1))) == ons


def test_abolitions_lead_to_their_successors() -> None:
    m = matcher()
    cases = {
        "Kettering Borough Council": ("E07000153", "North Northamptonshire Council"),
        "Aylesbury Vale District Council": ("E07000004", "Buckinghamshire Council"),
        "Taunton Deane Borough Council": ("E07000190", "Somerset Council"),
        "Forest Heath District Council": ("E07000201", "West Suffolk Council"),
        "Bournemouth Borough Council": ("E06000028", "Bournemouth, Christchurch and Poole"),
        "Allerdale Borough Council": ("E07000026", "Cumberland Council"),
        "Northamptonshire County Council": ("E10000021", "North Northamptonshire Council"),
    }
    for name, (code_2012, successor) in cases.items():
        assert m.match(name, date(2012, 2, 14)).gss_code == code_2012, name
        later = m.match(name, date(2025, 6, 1))
        assert later.gss_code is None and later.kind == "successor", name
        assert later.suggestion is not None and successor in later.suggestion, later
        assert "successor" in later.explain(name) and not later.acceptable
    # a council created later is not a council of 2012: its predecessors are named instead
    early = m.match("North Northamptonshire Council", date(2012, 2, 14))
    assert early.kind == "predecessor" and early.suggestion is not None
    assert "Kettering" in early.suggestion and "Corby" in early.suggestion
    # a rename keeps the authority: Shepway is Folkestone and Hythe
    assert m.match("Shepway District Council", date(2012, 2, 14)).gss_code == "E07000112"


def test_labelled_names_precision_and_recall() -> None:
    """1,341 English council names as published datasets write them (compiled by mySociety from
    ONS, the GOV.UK registers and others: tests/data; the matcher indexes only each council's
    official and short name): every accepted match must be right; recall is reported."""
    with (ROOT / "bids/data/uk_local_authorities.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (ROOT / "tests/data/lookup_name_to_registry.csv").open() as fh:
        labelled = list(csv.DictReader(fh))
    gss = {r["local-authority-code"]: r["gss-code"] for r in rows}
    by = {s.gss_code: s for s in SEEDS}
    m = matcher()
    outcome: Counter[str] = Counter()
    wrong = []
    for r in labelled:
        code = gss.get(r["local-authority-code"])
        if code not in by:
            continue  # not an English council
        s = by[code]
        on = date(2012, 6, 1)
        if code not in in_force(on):  # a day the council was in force
            on = s.in_force_from or date(s.in_force_until.year - 1, 6, 1)  # type: ignore[union-attr]
        x = m.match(r["la-name"], on)
        taken = x.gss_code or (x.suggestion_code if x.acceptable else None)
        if taken is not None:
            outcome["accepted"] += 1
            if taken != code:
                wrong.append((r["la-name"], code, taken))
        elif x.kind == "similar":
            outcome["suggested right" if x.suggestion_code == code else "suggested wrong"] += 1
        else:
            outcome["refused"] += 1
    total = sum(outcome.values())
    print(f"labelled names: {total}; {dict(outcome)}; recall {outcome['accepted'] / total:.3f}")
    assert total >= 300
    assert wrong == []  # precision of accepted matches: 100 %
    assert outcome["suggested wrong"] == 0
    assert outcome["accepted"] / total >= 0.99


SHEET_2012 = [
    # (as the officer's sheet wrote it, the GSS code of 2012)
    ("Kettering Borough Council", "E07000153"),
    ("Aylesbury Vale District Council", "E07000004"),
    ("Taunton Deane Borough Council", "E07000190"),
    ("Forest Heath DC", "E07000201"),
    ("Shepway District Council", "E07000112"),
    ("Bournemouth Borough Council", "E06000028"),
    ("LB Hackney", "E09000012"),
    ("Hull City Council", "E06000010"),
    ("Newcastle City Council", "E08000021"),
    ("Durham County Council", "E06000047"),
    ("City of York Council", "E06000014"),
    ("Brighton & Hove City Council", "E06000043"),
    ("Leeds City Council", "E08000035"),
    ("Corby BC", "E07000150"),
    ("South Bucks DC", "E07000006"),
    ("Wycombe District Council", "E07000007"),
    ("Christchurch Borough Council", "E07000048"),
    ("Poole BC", "E06000029"),
    ("Suffolk Coastal DC", "E07000205"),
    ("Waveney District Council", "E07000206"),
    ("West Somerset Council", "E07000191"),
    ("Allerdale BC", "E07000026"),
    ("Harrogate Borough Council", "E07000165"),
    ("Birmingham City Council", "E08000025"),
    ("RB Windsor & Maidenhead", "E06000040"),
]
ABOLISHED = {code for _, code in SHEET_2012} - set(in_force(date(2025, 6, 1)))


def test_a_2012_sheet_matches_the_councils_of_2012_and_a_2025_one_names_successors(
    served: str, tokens: dict[str, str]
) -> None:
    assert len(SHEET_2012) == 25 and len(ABOLISHED) >= 15
    head = bearer(tokens["officer"])
    sheet = "Name,Email,Council,Attended\n" + "".join(
        f'P{i},p{i}@example.org,"{name}",yes\n' for i, (name, _) in enumerate(SHEET_2012)
    )
    results = {}
    for year in (2012, 2025):
        start = datetime(year, 2, 14, 10, tzinfo=UTC)
        body = workshop_body(
            starts_at=start.isoformat(),
            ends_at=start.replace(hour=15).isoformat(),
            status="held",
        )
        w = httpx2.post(f"{served}/api/v1/workshops", json=body, headers=head).json()
        r = httpx2.post(
            f"{served}/api/v1/workshops/{w['id']}/attendance-import",
            files={"file": ("s.csv", sheet.encode())},
            params={"accept_suggestions": "true"},
            headers=head,
        )
        assert r.status_code == 200, r.text
        results[year] = r.json()["rows"]
    got_2012 = [row["council_code"] for row in results[2012]]
    assert got_2012 == [code for _, code in SHEET_2012]
    assert all(row["problems"] == [] for row in results[2012])
    for (name, code), row in zip(SHEET_2012, results[2025], strict=True):
        if code in ABOLISHED:
            assert row["council_code"] is None, name  # not taken, even with accept_suggestions
            [problem] = [p for p in row["problems"] if p["field"] == "council"]
            assert "successor" in problem["message"] and problem["suggestion"], (name, problem)
        else:
            assert row["council_code"] == code, name
