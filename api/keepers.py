"""Every package's keeper of household and personal data, composed (core/keepers.py): the
erasures and the tests' list of tables come from here."""

from __future__ import annotations

from analytics.digest import KEEPER as DIGEST
from analytics.keeper import KEEPER as ANALYTICS
from bids.keeper import KEEPER as BIDS
from core.devices import KEEPER as REGISTRY
from core.keepers import Keeper
from core.outbox import KEEPER as OUTBOX
from ingest.keeper import KEEPER as INGEST

# the registry's last: a household's devices and the household go after what hangs off them
KEEPERS: tuple[Keeper, ...] = (INGEST, ANALYTICS, BIDS, OUTBOX, DIGEST, REGISTRY)
OTHERS: tuple[Keeper, ...] = KEEPERS[:-1]
__all__ = ["ANALYTICS", "BIDS", "DIGEST", "INGEST", "KEEPERS", "OTHERS", "OUTBOX", "REGISTRY"]
