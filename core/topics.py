"""MQTT topic names of the v1 contract (docs/architecture.md, docs/security.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

Channel = Literal["readings", "status"]


def readings_topic(prefix: str, device_id: str) -> str:
    """Topic a device publishes its readings to."""
    return f"{prefix}/devices/{device_id}/readings"


def status_topic(prefix: str, device_id: str) -> str:
    """Retained topic of a device's online/offline state and heartbeats."""
    return f"{prefix}/devices/{device_id}/status"


def ingest_subscriptions(prefix: str, group: str) -> list[str]:
    """Shared subscriptions of an ingest worker: workers of one group split the messages.

    An empty group means plain subscriptions, for a single worker. The broker's SQLite
    persistence keeps a shared subscription over a restart or a crash (README, "Guarantees and
    their limits"), so the default group is as durable as a plain subscription.
    """
    if not group:
        return [f"{prefix}/devices/+/readings", f"{prefix}/devices/+/status"]
    return [
        f"$share/{group}/{prefix}/devices/+/readings",
        f"$share/{group}/{prefix}/devices/+/status",
    ]


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


def valid_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is well formed (it is also a safe MQTT username and topic level)."""
    return bool(_DEVICE_ID.match(device_id))
