"""What analytics keeps about households (core/keepers.py): per-device and per-household
rollups, anomalies, and the weekly reports that name households (redacted, not deleted: the
pilot's totals stay). The cohort profile and the watermarks hold no household."""

from __future__ import annotations

from analytics import archive
from analytics import queries as q
from analytics.jobs import retention
from core import outbox
from core.db import Conn
from core.keepers import Keeper

ERASED = "[erased household]"


def _erase_household(conn: Conn, ref: str, ids: list[str]) -> dict[str, int]:
    params = {"ids": ids, "ref": ref, "erased": ERASED}
    # the e-mails about its alerts name it: they go with the alerts (their history cascades)
    alert_ids = [int(r[0]) for r in conn.execute(q.HOUSEHOLD_ALERT_IDS, params)]
    outbox.forget(conn, [f"alert:{a}:" for a in alert_ids])
    return {
        # its readings in archived months' files (analytics/archive.py)
        "archived_readings": archive.erase_devices(conn, ids),
        "alerts": conn.execute(q.ERASE_ALERTS, params).rowcount,
        "device_daily": conn.execute(q.ERASE_DEVICE_DAILY, params).rowcount,
        "anomalies": conn.execute(q.ERASE_ANOMALIES, params).rowcount,
        "usage_hourly": conn.execute(q.ERASE_USAGE_HOURLY, params).rowcount,
        "usage_daily": conn.execute(q.ERASE_USAGE_DAILY, params).rowcount,
        "weekly_reports": conn.execute(q.REDACT_WEEKLY_REPORTS, params).rowcount,
    }


KEEPER = Keeper(
    "analytics",
    household=(
        "device_daily",
        "anomalies",
        "usage_hourly",
        "usage_daily",
        "weekly_reports",
        "alerts",
        "alert_history",
    ),
    other=("usage_profile_daily", "rollup_watermarks", "archived_months"),
    erase_household=_erase_household,
    retention={"retention": retention},  # raw readings (by chunk) and dead letters
)
