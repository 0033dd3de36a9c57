"""Water meters read over wM-Bus/OMS by ``wmbusmeters``, docs/devices/wmbus.md.

A household's receiver (wmbusmeters on a small computer, its own device id and login) publishes
each decoded telegram under ``<prefix>/wmbus/<device id>/<meter id>``, as wmbusmeters writes it:
``{"media": "water", "meter": "iperl", "id": "33225544", "total_m3": 123.529,
"timestamp": "2024-02-01T12:00:00Z", ...}``. ``total_m3`` at ``timestamp`` is a meter read (in
litres); other keys a driver adds are kept out.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from core.wire import Reason
from ingest.adapters.base import Decoded, MeterRead, fail, number, obj

FAMILY = "wmbus"
KIND = "wmbus"
_WATER = ("water", "warm water", "cold water")


def decode(device_id: str, subtopic: str, payload: bytes) -> Decoded:
    if "/" in subtopic or not subtopic:
        raise fail(Reason.BAD_TOPIC, "a telegram goes to <prefix>/wmbus/<device id>/<meter id>")
    try:
        msg = obj(orjson.loads(payload), "telegram")
    except orjson.JSONDecodeError as exc:
        raise fail(Reason.MALFORMED_JSON, f"not JSON: {exc}") from None
    media = msg.get("media")
    if media not in _WATER:
        raise fail(Reason.INVALID_VALUE, f"media {media!r:.40} is not a water meter's")
    meter_id = msg.get("id")
    if not isinstance(meter_id, str) or not meter_id or len(meter_id) > 32:
        raise fail(Reason.MISSING_FIELD, "id (the meter's id, text) is required")
    if meter_id != subtopic:
        raise fail(Reason.DEVICE_MISMATCH, f"meter {meter_id} on the topic of {subtopic}")
    total = number(msg, "total_m3", "telegram")
    raw_ts = msg.get("timestamp")
    if not isinstance(raw_ts, str):
        raise fail(Reason.MISSING_FIELD, "timestamp (ISO 8601 text) is required")
    try:
        ts = datetime.fromisoformat(raw_ts)
    except ValueError:
        raise fail(Reason.INVALID_VALUE, f"timestamp {raw_ts[:40]!r} is not ISO 8601") from None
    if ts.tzinfo is None:
        raise fail(Reason.INVALID_VALUE, "timestamp needs a UTC offset (Z)")
    return Decoded(meter=[MeterRead(device_id, ts, meter_id, total * 1000.0)])
