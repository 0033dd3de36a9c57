"""An ingest worker: a consumer on the shared subscription feeding its pipeline processes.

Delivery: QoS 1, persistent session, manual acknowledgement *after* the batch holding a message
has committed. The rooms:

- ``consumer.py``: the MQTT client (connect, subscribe, read bursts, the probe);
- ``acks.py``: which packet ids wait for which commit (the ack ledger);
- ``processes.py``: the validator and writer processes (``pipeline.py``), started and
  restarted as a pair;
- ``protocol.py``: what crosses the pipes; ``batcher.py``: when the writer writes;
- ``config.py``: what a worker needs (``WorkerConfig``).

This module joins them: batches from the consumer are tracked and shipped; the writer's
reports settle them and release the PUBACKs; a pipeline that dies is restarted and the
connection dropped so that the broker redelivers what it held; a watchdog reconnects a
connection that delivers nothing while idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ingest.acks import AckLedger
from ingest.config import WorkerConfig
from ingest.consumer import Consumer, Message
from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from ingest.protocol import Outcome, Shipment, Stop

log = logging.getLogger(__name__)

_PIPELINE_START_S = 10.0  # longest wait for the writer's first report before connecting
_RESTART_PAUSE_S = 1.0  # a pipeline that dies at once (a broken install) is not restarted in a loop


class IngestWorker:
    """One consumer on the shared subscription. ``start()``, then ``stop()`` to flush and leave."""

    def __init__(
        self,
        cfg: WorkerConfig,
        metrics: IngestMetrics | None = None,
        on_commit: Callable[[Outcome], None] | None = None,
        *,
        reading_times: bool = False,
    ) -> None:
        """``on_commit`` is called with each committed batch's Outcome; with ``reading_times``
        the Outcome also lists every stored reading's device time (latency measurements)."""
        self.cfg = cfg
        self.metrics = metrics or IngestMetrics()
        self._on_commit = on_commit
        self._reading_times = reading_times
        self._ledger = AckLedger()
        self._db_ok = False
        self._stopping = threading.Event()
        self._reported = threading.Event()  # the writer has reported at least once
        self._pipeline: Pipeline | None = None
        self._outcomes: threading.Thread | None = None
        self.batches = 0  # committed batches, for tests and the summary line
        self.consumer = Consumer(
            cfg.consumer(),
            on_batch=self._ship,
            on_connected=self._connected,
            on_disconnected=self.metrics.connected.dec,
        )
        self._watchdog = threading.Thread(
            target=self._run_watchdog, name=f"watchdog-{cfg.client_id}", daemon=True
        )

    def _connected(self) -> None:
        self._ledger.new_connection()
        self.metrics.connected.inc()

    def _ship(self, messages: list[Message], mids: list[int]) -> None:
        pipeline = self._pipeline
        generation = pipeline.generation if pipeline is not None else -1
        sid = self._ledger.track(mids, len(messages), generation)
        self.metrics.received.inc(len(messages))
        if pipeline is not None and not pipeline.send(Shipment(sid, messages)):
            # its outcomes end too: the worker restarts it and has the broker redeliver
            log.warning("%s: the pipeline is gone", self.cfg.client_id)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._start_pipeline(0)
        # Take messages once the pipeline can: the writer reports after its first contact with
        # the database. Until then a backlog would only fill the pipes and delay the first
        # commits.
        if not self._reported.wait(_PIPELINE_START_S):
            log.warning("%s: the pipeline has not reported; connecting anyway", self.cfg.client_id)
        self.consumer.start()
        self._watchdog.start()

    def _start_pipeline(self, generation: int) -> None:
        spec = self.cfg.pipeline(details=self._reading_times)
        pipeline = Pipeline.start(spec, self.cfg.client_id, generation)
        old, self._pipeline = self._pipeline, pipeline
        if old is not None:
            old.abandon()  # a validator left from a writer that died reads end-of-file
        self._outcomes = threading.Thread(
            target=self._run_outcomes,
            args=(pipeline,),
            name=f"outcomes-{self.cfg.client_id}",
            daemon=True,
        )
        self._outcomes.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write and acknowledge what was received, then leave; the session stays on the broker."""
        self._stopping.set()
        self.consumer.paused = True
        self.consumer.flush()
        pipeline = self._pipeline
        if pipeline is not None and self._outcomes is not None:
            pipeline.send(Stop())
            self._outcomes.join(timeout)
            if self._outcomes.is_alive():
                # The database is still away: give up on the held messages without
                # acknowledging them; the broker keeps them for this client id.
                pipeline.send(Stop(abandon=True))
                self._outcomes.join(5)
        self.consumer.stop()
        if pipeline is not None:
            pipeline.close()

    def ready(self) -> tuple[bool, str]:
        """Ready = connected to the broker and the database accepted the last write or ping."""
        if not self.consumer.connected:
            return False, f"{self.cfg.client_id}: not connected to the broker"
        if not self._db_ok:
            return False, f"{self.cfg.client_id}: database unavailable"
        return True, f"{self.cfg.client_id}: ready"

    @property
    def pipeline(self) -> Pipeline | None:
        return self._pipeline

    @property
    def connected(self) -> bool:
        return self.consumer.connected

    @property
    def database_ok(self) -> bool:
        return self._db_ok

    def held(self) -> int:
        """Messages received and not yet acknowledged (Receive Maximum bounds it)."""
        return self._ledger.held + self.consumer.pending

    # --- the writer's reports -------------------------------------------------------------

    def _run_outcomes(self, pipeline: Pipeline) -> None:
        for outcome in pipeline.outcomes():
            self._db_ok = outcome.database_up
            self.metrics.database_up.set(1 if outcome.database_up else 0)
            self._reported.set()
            if outcome.retry:
                self.metrics.retries.inc()
            if outcome.shipments:
                self._committed(outcome)
            self.metrics.buffer.set(self.held())
        if not self._stopping.is_set():
            self._pipeline_died(pipeline)

    def _committed(self, outcome: Outcome) -> None:
        self.consumer.ack(self._ledger.settle(outcome.shipments))
        res = outcome.result
        if res is not None:
            self.metrics.commit_seconds.observe(outcome.commit_s)
            self.metrics.batch_size.observe(res.inserted + res.duplicates)
            self.metrics.written.inc(res.inserted)
            self.metrics.duplicates.inc(res.duplicates)
            self.metrics.statuses.inc(res.statuses)
            self.metrics.samples_written.inc(res.samples)
            self.metrics.samples_duplicate.inc(res.sample_duplicates)
            for reason, n in res.reasons.items():
                self.metrics.dead_letters.labels(reason).inc(n)
        if outcome.lag_s is not None:
            self.metrics.lag_seconds.observe(outcome.lag_s)
        self.batches += 1
        if self._on_commit is not None:
            self._on_commit(outcome)

    def _pipeline_died(self, pipeline: Pipeline) -> None:
        """The writer exited on its own (a crash of it, or of the validator before it): forget
        what it held, start a new pair, and reconnect so that the broker redelivers."""
        dropped = self._ledger.forget(pipeline.generation)
        log.error(
            "%s: pipeline exited (validator, writer exit codes: %s; %d messages to redeliver);"
            " restarting it",
            self.cfg.client_id,
            pipeline.exit_codes(),
            dropped,
        )
        self._db_ok = False
        self.metrics.database_up.set(0)
        if self._stopping.wait(_RESTART_PAUSE_S):
            return
        self._start_pipeline(pipeline.generation + 1)
        self.consumer.drop_connection()

    # --- watchdog -------------------------------------------------------------------------

    def _run_watchdog(self) -> None:
        """Notice a connection that looks alive but delivers nothing, and reconnect it: a probe
        to this worker's own topic must come back within ``stall_after_s`` while the pipeline
        keeps up (nothing held, database fine)."""
        while not self._stopping.wait(self.cfg.probe_interval_s):
            if not self.consumer.connected:
                continue
            self.consumer.publish_probe()
            silent = time.monotonic() - self.consumer.probe_seen
            if self.held() == 0 and self._db_ok and silent > self.cfg.stall_after_s:
                log.warning(
                    "%s: no delivery for %.0fs while idle; reconnecting",
                    self.cfg.client_id,
                    silent,
                )
                self.metrics.stalls.inc()
                self.consumer.probe_seen = time.monotonic()
                self.consumer.drop_connection()


__all__ = ["IngestWorker", "WorkerConfig"]
