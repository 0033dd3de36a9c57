"""English regions of the upper-tier councils in the April 2021 ONS lookup.

The ONS lookup shipped on the package index has no regions, so this table was compiled by the
project from the ONS local authority district to region membership (April 2021); lower-tier
districts take the region of their county. London boroughs (E09) are all in London. Councils
added by officers after the vintage carry whatever region the officer records.
"""

from __future__ import annotations

from typing import Literal, get_args

Region = Literal[
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
]
REGIONS: tuple[str, ...] = get_args(Region)

_NE, _NW, _YH, _EM, _WM, _EE, _LONDON, _SE, _SW = REGIONS

# upper-tier GSS code -> region; E06 unitaries and E08 metropolitan districts by number range
# (ONS numbers them region by region), later unitaries and the E10 counties one by one
_RANGES: tuple[tuple[str, int, int, str], ...] = (
    ("E06", 1, 5, _NE),
    ("E06", 6, 9, _NW),
    ("E06", 10, 14, _YH),
    ("E06", 15, 18, _EM),
    ("E06", 19, 21, _WM),
    ("E06", 22, 30, _SW),
    ("E06", 31, 34, _EE),
    ("E06", 35, 46, _SE),
    ("E08", 1, 15, _NW),
    ("E08", 16, 19, _YH),
    ("E08", 20, 24, _NE),
    ("E08", 25, 31, _WM),
    ("E08", 32, 36, _YH),
)

_SINGLE: dict[str, str] = {
    "E06000047": _NE,  # County Durham
    "E06000049": _NW,  # Cheshire East
    "E06000050": _NW,  # Cheshire West and Chester
    "E06000051": _WM,  # Shropshire
    "E06000052": _SW,  # Cornwall
    "E06000053": _SW,  # Isles of Scilly
    "E06000054": _SW,  # Wiltshire
    "E06000055": _EE,  # Bedford
    "E06000056": _EE,  # Central Bedfordshire
    "E06000057": _NE,  # Northumberland
    "E06000058": _SW,  # Bournemouth, Christchurch and Poole
    "E06000059": _SW,  # Dorset
    "E06000060": _SE,  # Buckinghamshire
    "E06000061": _EM,  # North Northamptonshire
    "E06000062": _EM,  # West Northamptonshire
    "E08000037": _NE,  # Gateshead
    "E10000003": _EE,  # Cambridgeshire
    "E10000006": _NW,  # Cumbria
    "E10000007": _EM,  # Derbyshire
    "E10000008": _SW,  # Devon
    "E10000011": _SE,  # East Sussex
    "E10000012": _EE,  # Essex
    "E10000013": _SW,  # Gloucestershire
    "E10000014": _SE,  # Hampshire
    "E10000015": _EE,  # Hertfordshire
    "E10000016": _SE,  # Kent
    "E10000017": _NW,  # Lancashire
    "E10000018": _EM,  # Leicestershire
    "E10000019": _EM,  # Lincolnshire
    "E10000020": _EE,  # Norfolk
    "E10000023": _YH,  # North Yorkshire
    "E10000024": _EM,  # Nottinghamshire
    "E10000025": _SE,  # Oxfordshire
    "E10000027": _SW,  # Somerset
    "E10000028": _WM,  # Staffordshire
    "E10000029": _EE,  # Suffolk
    "E10000030": _SE,  # Surrey
    "E10000031": _WM,  # Warwickshire
    "E10000032": _SE,  # West Sussex
    "E10000034": _WM,  # Worcestershire
}


def region_of(upper_tier_code: str) -> str | None:
    """The English region of an upper-tier council in the 2021 lookup, or None if not known."""
    if upper_tier_code.startswith("E09"):
        return _LONDON
    if upper_tier_code in _SINGLE:
        return _SINGLE[upper_tier_code]
    prefix, number = upper_tier_code[:3], int(upper_tier_code[3:])
    for p, lo, hi, region in _RANGES:
        if p == prefix and lo <= number <= hi:
            return region
    return None
