"""Adapters at the ingest edge: off-the-shelf devices' own MQTT formats turned into samples.

Each family is one module with the same shape — ``FAMILY`` (its topic level under the prefix,
core/topics.py), ``KIND`` (the device kind chosen at registration) and
``decode(device_id, subtopic, payload)`` returning a :class:`~ingest.adapters.base.Decoded` or
raising ``WireError`` with the reason a message breaks the maker's format. Nothing here does
I/O. A device of such a kind publishes under ``<prefix>/<family>/<device id>/...`` (the broker's
rights bind that level to its login), so the topic names the device; what a payload says of
its own id is not trusted.
"""

from __future__ import annotations

from types import ModuleType

from ingest.adapters import shelly, tasmota, wmbus

ADAPTERS: dict[str, ModuleType] = {m.FAMILY: m for m in (shelly, tasmota, wmbus)}
