"""The council registry: GSS codes, the reference seed, name matching, and its API."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from bids.councils import (
    COUNCIL_TYPES,
    Council,
    CouncilMatcher,
    council_type,
    gss_problem,
    normalise_name,
    reference_councils,
)


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("E06000002", None),
        ("E10000016", None),
        ("E12000007", "not an English council code"),  # a region, not a council
        ("W06000015", "not an English council code"),
        ("E0600002", "not a GSS code"),
        ("e06000002", "not a GSS code"),
        ("E06 000002", "not a GSS code"),
    ],
)
def test_gss_codes_are_checked_for_format_and_prefix(code: str, problem: str | None) -> None:
    found = gss_problem(code)
    assert (found is None) if problem is None else (problem in str(found))


def test_council_type_follows_the_prefix() -> None:
    assert council_type("E06000002") == "unitary"
    assert council_type("E09000011") == "london borough"
    assert set(COUNCIL_TYPES) == {"E06", "E07", "E08", "E09", "E10"}


def test_reference_seed_is_englands_councils_with_their_upper_tier_and_region() -> None:
    seeds = reference_councils()
    by_code = {c.gss_code: c for c in seeds}
    assert len(by_code) == len(seeds)
    prefixes = [c.gss_code[:3] for c in seeds]
    # every English council in force at some time since 2009 (the counts on given days are in
    # test_council_history.py); the Welsh, Scottish and Northern Irish ones are left out
    assert {p: prefixes.count(p) for p in sorted(set(prefixes))} == {
        "E06": 65, "E07": 204, "E08": 36, "E09": 33, "E10": 27,
    }  # fmt: skip
    for c in seeds:
        if c.gss_code.startswith("E07"):
            assert c.upper_tier_code is not None
            assert by_code[c.upper_tier_code].gss_code.startswith("E10")
            assert c.region == by_code[c.upper_tier_code].region
        else:
            assert c.upper_tier_code is None
        assert c.region is not None, c
    assert by_code["E06000002"].short_name == "Middlesbrough"
    assert by_code["E06000002"].region == "North East"
    assert by_code["E08000025"].region == "West Midlands"  # Birmingham
    assert by_code["E07000008"].region == "East of England"  # Cambridge
    assert by_code["E09000011"].region == "London"  # Greenwich
    # an upper tier is listed before its districts, so inserting in order satisfies the key
    order = [c.gss_code for c in seeds]
    assert all(
        order.index(c.upper_tier_code) < order.index(c.gss_code) for c in seeds if c.upper_tier_code
    )


def test_names_match_as_officers_write_them() -> None:
    m = CouncilMatcher(
        Council(c.gss_code, c.name, c.short_name, c.in_force_from, c.in_force_until,
                c.successor_codes)
        for c in reference_councils()
    )  # fmt: skip
    assert m.match("Middlesbrough Council").gss_code == "E06000002"
    assert m.match("ROYAL BOROUGH OF GREENWICH").gss_code == "E09000011"
    assert m.match("Brighton & Hove City Council").gss_code == "E06000043"
    assert m.match("e06000002").gss_code == "E06000002"
    assert m.match("City of London").gss_code == "E09000001"
    assert normalise_name("City of London") == "city of london"
    miss = m.match("Middlesborough")
    assert miss.gss_code is None
    assert (miss.suggestion, miss.suggestion_code) == ("Middlesbrough Borough Council", "E06000002")
    assert m.match("Sheffeild City Council").suggestion_code == "E08000019"
    # an apostrophe, straight or curly, where the registry has none (nor an alias with one)
    for name, code in (("St Alban's", "E07000240"), ("Tunbridge Well\u2019s", "E07000116"),
                       ("King's Lynn and West Norfolk", "E07000146")):  # fmt: skip
        assert m.match(name).gss_code == code, name


@pytest.mark.services
def test_registry_api(api: TestClient, bids_db: psycopg.Connection[tuple[object, ...]]) -> None:
    r = api.get("/api/v1/councils", params={"q": "middles"})
    assert [c["gss_code"] for c in r.json()] == ["E06000002"]
    assert r.json()[0]["council_type"] == "unitary"
    assert len(api.get("/api/v1/councils", params={"region": "London", "limit": 1000}).json()) == 33
    assert api.get("/api/v1/councils/E07000008").json()["upper_tier_code"] == "E10000003"
    assert api.get("/api/v1/councils/E06999999").status_code == 404
    vintage = api.get("/api/v1/reference-data").json()
    assert vintage[0]["vintage"] == "2025-07-10"
    assert vintage[0]["rows"] == 365
    assert "Open Government Licence" in vintage[0]["licence"]

    # a council created after the vintage (a made-up code the source does not have)
    new = {"gss_code": "E06000090", "name": "New Unitary", "region": "North West"}
    r = api.post("/api/v1/councils", json=new)
    assert r.status_code == 201, r.text
    assert r.json()["council_type"] == "unitary"
    assert r.json()["source"] == "officer"
    assert api.post("/api/v1/councils", json=new).status_code == 409
    r = api.post("/api/v1/councils", json=new | {"gss_code": "E12000001"})
    assert r.status_code == 422
    assert "prefix must be one of" in r.text
    r = api.post(
        "/api/v1/councils", json=new | {"gss_code": "E06000091", "upper_tier_code": "E10000099"}
    )
    assert r.status_code == 422
    assert "upper-tier" in r.json()["detail"]
    r = api.patch("/api/v1/councils/E06000090", json={"region": "North East"})
    assert r.json()["region"] == "North East"
    # the database holds the code rule as well as the API
    with pytest.raises(psycopg.errors.CheckViolation):
        bids_db.execute("INSERT INTO councils (gss_code, name, source) VALUES ('X1', 'X', 'sql')")
