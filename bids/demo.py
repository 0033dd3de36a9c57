"""A demo programme modelled on the 2012 weekly collection support scheme: five bid workshops
around England, 120+ councils attending, bids with outcomes (the published shape: 118 councils
bid, 85 funded). Everything goes through the same functions and database rules as the API."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bids import queries as q
from bids import records
from bids.registrations import change_status, register
from core.audit import set_actor
from core.db import Conn

ROUND = "2012"
ACTOR = "demo seed"

_WORKSHOPS = (  # town, venue, region, date
    ("London", "Local Government House", "London", date(2012, 2, 14)),
    ("Birmingham", "Council House", "West Midlands", date(2012, 2, 21)),
    ("Leeds", "Civic Hall", "Yorkshire and The Humber", date(2012, 2, 28)),
    ("Manchester", "Town Hall", "North West", date(2012, 3, 6)),
    ("Bristol", "City Hall", "South West", date(2012, 3, 13)),
)
_SPEAKERS = (
    {
        "name": "Fund programme lead",
        "organisation": "Department for Communities and Local Government",
    },
    {"name": "Collections adviser", "organisation": "WRAP"},
    {"name": "Waste policy officer", "organisation": "Local Government Association"},
    {"name": "Independent waste consultant", "organisation": "Waste experts panel"},
)
_FIRST = ("Alex", "Sam", "Jo", "Chris", "Pat", "Ruth", "Imran", "Priya", "Tom", "Megan", "Dev")
_LAST = ("Shaw", "Patel", "Jones", "Smith", "Khan", "Evans", "Hughes", "Brown", "Clarke", "Ali")
_ROLES = ("Waste services manager", "Recycling officer", "Head of environment", "Policy officer")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    seeded: bool
    workshops: int
    registrations: int
    councils_registered: int
    bids: int


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def seed_demo(conn: Conn, seed: int = 2012, councils: int = 130) -> DemoSummary:
    """Seed the demo programme in this transaction; a second call does nothing."""
    set_actor(conn, ACTOR)
    if conn.execute(q.FUND_ROUND_EXISTS, (ROUND,)).fetchone():
        return DemoSummary(False, 0, 0, 0, 0)
    rng = random.Random(seed)
    conn.execute(
        q.INSERT_FUND_ROUND,
        (
            ROUND,
            "Weekly collection support scheme",
            date(2012, 2, 3),
            date(2012, 8, 17),
            date(2012, 11, 22),
            Decimal(250_000_000),
        ),
    )
    guide = conn.execute(
        q.INSERT_GUIDANCE,
        (
            "Weekly collection support scheme: prospectus",
            "https://www.gov.uk/government/publications/weekly-collection-support-scheme",
            date(2012, 2, 3),
        ),
    ).fetchone()
    assert guide is not None  # noqa: S101  (INSERT ... RETURNING)
    workshop_ids = []
    for town, venue, region, day in _WORKSHOPS:
        start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)
        w = records.create_workshop(
            conn,
            {
                "title": f"Weekly collection support scheme: bid workshop, {town}",
                "venue": venue,
                "town": town,
                "region": region,
                "starts_at": start,
                "ends_at": start + timedelta(hours=5, minutes=30),
                "timezone": "Europe/London",
                "capacity": 60,
                "status": "held",
                "speakers": rng.sample(_SPEAKERS, 3),
                "resource_ids": [int(guide[0])],
            },
        )
        workshop_ids.append(int(w["id"]))
    on = _WORKSHOPS[0][3]
    pool = [(str(c), str(n)) for c, n in conn.execute(q.DEMO_COUNCILS, {"on": on})]
    chosen = rng.sample(pool, councils)
    n_reg = 0
    for code, name in chosen:
        for wid in rng.sample(workshop_ids, 1 if rng.random() < 0.8 else 2):
            for k in range(1 if rng.random() < 0.6 else 2):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                reg = register(
                    conn,
                    wid,
                    code,
                    f"{first} {last}",
                    rng.choice(_ROLES),
                    f"{first}.{last}{k}@{_slug(name)}.example.gov.uk".lower(),
                    ACTOR,
                )
                n_reg += 1
                if reg["status"] != "registered":
                    continue
                u = rng.random()
                outcome = "attended" if u < 0.85 else "no_show" if u < 0.95 else "cancelled"
                change_status(conn, int(reg["id"]), outcome)
    # bids: most councils that came, a few that did not; 85 of 118 funded
    others = [c for c in pool if c not in chosen]
    bidders = rng.sample(chosen, 100) + rng.sample(others, 18)
    funded = set(rng.sample(range(len(bidders)), 85))
    for i, (code, _name) in enumerate(bidders):
        # skewed like the real awards: most bids a few £m, the largest near £30 m
        requested = Decimal(round(min(max(rng.lognormvariate(14.5, 0.9), 150_000), 29.8e6), -3))
        ok = i in funded
        records.create_bid(
            conn,
            {
                "council_code": code,
                "round_code": ROUND,
                "status": "successful" if ok else "unsuccessful",
                "amount_requested": requested,
                "amount_awarded": (requested * Decimal(rng.choice((0.8, 0.9, 1.0)))).quantize(
                    Decimal(1)
                )
                if ok
                else None,
                "submitted_on": date(2012, 8, 17),
                "decided_on": date(2012, 11, 22),
                "notes": "",
            },
        )
    # and a few that meant to bid but did not: counted as neither bid nor funded
    for code, _name in rng.sample([c for c in chosen if c not in bidders], 5):
        records.create_bid(
            conn,
            {
                "council_code": code,
                "round_code": ROUND,
                "status": rng.choice(("intending", "withdrawn")),
                "amount_requested": None,
                "amount_awarded": None,
                "submitted_on": None,
                "decided_on": None,
                "notes": "",
            },
        )
    return DemoSummary(True, len(workshop_ids), n_reg, len(chosen), len(bidders) + 5)
