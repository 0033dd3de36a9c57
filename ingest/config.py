"""What one ingest worker needs, and the parts of it its consumer and pipeline take."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core import clock
from core.logs import JsonFormatter
from core.settings import Settings
from ingest.children import PipelineSpec
from ingest.consumer import ConsumerConfig
from ingest.validate import Limits


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What one worker needs; built from Settings by the CLI, or directly by tests."""

    db_url: str
    mqtt_url: str
    client_id: str
    group: str
    limits: Limits
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 5000
    batch_size: int = 2000
    batch_max_ms: int = 100
    dead_letter_max_bytes: int = 16 * 1024
    dead_letters_per_min: int = 100
    retry_max_s: float = 30.0
    keepalive_s: int = 30
    probe_interval_s: float = 10.0
    stall_after_s: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings, index: int | None = None) -> WorkerConfig:
        """Worker ``index`` of a process (None: the only one, with the client id as set)."""
        client_id = s.ingest_client_id if index is None else f"{s.ingest_client_id}-{index}"
        return cls(
            db_url=s.db_url(),
            mqtt_url=s.mqtt_url_for("ingest"),
            client_id=client_id,
            group=s.ingest_group,
            limits=Limits.from_settings(s),
            session_expiry_s=s.ingest_session_expiry_s,
            receive_maximum=s.ingest_receive_maximum,
            batch_size=s.ingest_batch_size,
            batch_max_ms=s.ingest_batch_max_ms,
            dead_letter_max_bytes=s.ingest_dead_letter_max_bytes,
            dead_letters_per_min=s.ingest_dead_letters_per_device_per_min,
            retry_max_s=s.ingest_retry_max_s,
        )

    def consumer(self) -> ConsumerConfig:
        return ConsumerConfig(
            self.mqtt_url,
            self.client_id,
            self.group,
            self.limits.prefix,
            self.session_expiry_s,
            self.receive_maximum,
            self.keepalive_s,
        )

    def pipeline(self, *, details: bool) -> PipelineSpec:
        """The pipeline's spec, with this process's logging and clock handed on."""
        root = logging.getLogger()
        return PipelineSpec(
            db_url=self.db_url,
            limits=self.limits,
            batch_size=self.batch_size,
            batch_max_ms=self.batch_max_ms,
            dead_letter_max_bytes=self.dead_letter_max_bytes,
            dead_letters_per_min=self.dead_letters_per_min,
            retry_max_s=self.retry_max_s,
            log_level=root.getEffectiveLevel(),
            log_json=any(isinstance(h.formatter, JsonFormatter) for h in root.handlers),
            details=details,
            clock_shift_s=clock.shift(),
        )
