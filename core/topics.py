"""MQTT topic names of the v1 contract (docs/architecture.md, docs/security.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

Channel = Literal["readings", "status"]

# Device kinds and the topic level their makers' formats live under (None: the v1 contract's
# own topics). A device of a maker kind publishes under <prefix>/<family>/<device id>/...
# (docs/devices/); its adapter is ingest/adapters/<family>.py.
V1_KIND = "wastepilot-v1"
KIND_FAMILY: dict[str, str | None] = {
    V1_KIND: None,
    "shelly-gen2": "shelly",
    "tasmota": "tasmota",
    "wmbus": "wmbus",
}
FAMILIES: tuple[str, ...] = tuple(f for f in KIND_FAMILY.values() if f)


def readings_topic(prefix: str, device_id: str) -> str:
    """Topic a device publishes its readings to."""
    return f"{prefix}/devices/{device_id}/readings"


def status_topic(prefix: str, device_id: str) -> str:
    """Retained topic of a device's online/offline state and heartbeats."""
    return f"{prefix}/devices/{device_id}/status"


# what a maker's device leaves retained on the broker (its last will), below its root
_RETAINED: dict[str, tuple[str, ...]] = {"shelly": ("online",), "tasmota": ("tele/LWT",)}


def retained_topics(prefix: str, device_id: str) -> list[str]:
    """Every topic a device of any kind may leave a retained message on (erasure clears them)."""
    out = [readings_topic(prefix, device_id), status_topic(prefix, device_id)]
    for family in FAMILIES:
        out += [f"{maker_root(prefix, family, device_id)}/{t}" for t in _RETAINED.get(family, ())]
    return out


def maker_root(prefix: str, family: str, device_id: str) -> str:
    """The topic under which a device of a maker kind publishes everything."""
    return f"{prefix}/{family}/{device_id}"


def ingest_filters(prefix: str) -> list[str]:
    """Every topic filter ingest reads: the v1 contract's two and each maker family's tree."""
    return [
        f"{prefix}/devices/+/readings",
        f"{prefix}/devices/+/status",
        *(f"{prefix}/{family}/+/#" for family in FAMILIES),
    ]


def ingest_subscriptions(prefix: str, group: str) -> list[str]:
    """Shared subscriptions of an ingest worker: workers of one group split the messages.

    An empty group means plain subscriptions, for a single worker. The broker's SQLite
    persistence keeps a shared subscription over a restart or a crash (README, "Guarantees and
    their limits"), so the default group is as durable as a plain subscription.
    """
    if not group:
        return ingest_filters(prefix)
    return [f"$share/{group}/{f}" for f in ingest_filters(prefix)]


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """What a topic names: the device and the channel."""

    device_id: str
    channel: Channel


@lru_cache(maxsize=65536)  # every message is parsed; devices repeat their topics
def parse_topic(prefix: str, topic: str) -> TopicAddress | None:
    """Split a device topic under ``prefix``; None when it is not one of the contract's topics."""
    head = f"{prefix}/devices/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 2 or parts[1] not in ("readings", "status"):
        return None
    if not _DEVICE_ID.match(parts[0]):
        return None
    channel: Channel = "readings" if parts[1] == "readings" else "status"
    return TopicAddress(parts[0], channel)


@dataclass(frozen=True, slots=True)
class MakerAddress:
    """What a maker-format topic names: the family, the device and the rest of the topic."""

    family: str
    device_id: str
    subtopic: str


@lru_cache(maxsize=65536)
def parse_maker_topic(prefix: str, topic: str) -> MakerAddress | None:
    """Split ``<prefix>/<family>/<device id>/<subtopic>``; None when it is not one."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/", 2)
    if len(parts) != 3 or parts[0] not in FAMILIES or not _DEVICE_ID.match(parts[1]):
        return None
    return MakerAddress(parts[0], parts[1], parts[2])


def valid_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is well formed (it is also a safe MQTT username and topic level)."""
    return bool(_DEVICE_ID.match(device_id))
