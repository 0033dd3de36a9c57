"""Prometheus metrics of ingest, in a registry of their own (one per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters and gauges shared by the workers of one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ns = "wastepilot_ingest"
        self.received = Counter(f"{ns}_messages_received", "MQTT messages received", registry=r)
        self.written = Counter(f"{ns}_readings_written", "Readings newly stored", registry=r)
        self.duplicates = Counter(
            f"{ns}_readings_duplicate",
            "Readings already stored (re-sent or redelivered)",
            registry=r,
        )
        self.dead_letters = Counter(
            f"{ns}_dead_letters",
            "Messages or readings dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.statuses = Counter(f"{ns}_status_updates", "Device status messages stored", registry=r)
        self.samples_written = Counter(
            f"{ns}_samples_written",
            "Maker devices' samples (power, energy counter, water meter) newly stored",
            registry=r,
        )
        self.samples_duplicate = Counter(
            f"{ns}_samples_duplicate",
            "Maker devices' samples already stored (re-sent or redelivered)",
            registry=r,
        )
        self.batch_size = Histogram(
            f"{ns}_batch_readings",
            "Readings per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            f"{ns}_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.lag_seconds = Histogram(
            f"{ns}_lag_seconds",
            "Receive time minus device time of the first reading of a message",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
            registry=r,
        )
        self.buffer = Gauge(
            f"{ns}_buffer_messages", "Messages received and not yet acknowledged", registry=r
        )
        self.connected = Gauge(
            f"{ns}_broker_connected", "Workers connected to the broker", registry=r
        )
        self.database_up = Gauge(
            f"{ns}_database_up", "1 when the last write or ping succeeded", registry=r
        )
        self.retries = Counter(
            f"{ns}_write_retries", "Batch writes retried after a database error", registry=r
        )
        self.unstored = Gauge(
            "wastepilot_broker_unstored_messages",
            "Messages the broker holds for ingest (acknowledged to devices, not yet stored): "
            "they are on the broker's disk only (ingest/exposure.py)",
            registry=r,
        )
        self.stalls = Counter(
            f"{ns}_stalls_recovered", "Silent broker stalls noticed by the watchdog", registry=r
        )
