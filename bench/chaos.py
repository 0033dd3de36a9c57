"""Chaos run: readings published at a steady rate while faults hit every part of the pipeline —
broker SIGTERM and kill -9, PostgreSQL kill -9, ingest worker kill -9 — then a count of what
became of every reading the broker acknowledged.

Two `wastepilot ingest` processes run as deployed, on one shared group (the default
configuration), against the local services of `wastepilot services up`. A fault comes every
5-20 s (random, seeded), cycling through the kinds so that a run of 8 faults has two of each.

    .venv/bin/python bench/chaos.py --readings 200000 --rate 1500
    .venv/bin/python bench/chaos.py --tls   # publishing over TLS, renewals of the broker's
                                            # certificate among the faults
    .venv/bin/python bench/chaos.py --failover  # a synchronous standby, failovers among them

prints one line per fault and the totals: published, acknowledged (PUBACK with success),
stored once, lost (acknowledged and not stored), doubled (stored twice), and PUBACK 0x10
answers (each re-sent by the publisher). The last line is one JSON object. The test suite runs
the same harness small (tests/ingest/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import free_port, fresh_database
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from core.wire import format_ts
from simulator.publisher import Delivery, MqttSink
from wastepilot.localservices import broker, certs, install, postgres
from wastepilot.localservices import state as localstate

FAULTS = ("broker-sigterm", "broker-kill-9", "postgres-kill-9", "worker-kill-9")
# with a synchronous standby (--failover): the primary PostgreSQL killed (-9) and its data directory
# deleted, the standby promoted (`wastepilot services promote`), then rebuilt from it as the new
# standby (`wastepilot services up`) while readings flow; ingest is not restarted
FAILOVER = "postgres-failover"
# with the publisher on the broker's TLS listener (--tls): its certificate renewed from the local
# CA and taken by a SIGHUP (wastepilot/localservices/broker.py), devices staying connected
RENEWAL = "broker-cert-renewal"


@dataclass
class Fault:
    kind: str
    at: float  # seconds since the start
    seq_from: int  # first reading index published at or after the fault
    no_subscribers_before: int
    recovered_s: float = 0.0
    first_commit_s: float | None = None  # failover: from the kill to the new primary's first


@dataclass
class ChaosResult:
    published: int = 0
    acknowledged: int = 0
    stored_once: int = 0
    lost: int = 0
    doubled: int = 0
    no_subscribers: int = 0
    disconnects: int = 0  # the publisher's lost connections
    # readings the broker held for ingest, unstored (its $SYS counts, less those before the run)
    unstored_median: float = 0.0
    unstored_max: float = 0.0
    # the first acknowledged readings not stored: (device, seq, index published, seconds in)
    lost_keys: list[tuple[str, int, int, float]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"published {self.published}, acknowledged {self.acknowledged}, stored once "
            f"{self.stored_once}, lost {self.lost}, doubled {self.doubled}, "
            f"0x10 answers {self.no_subscribers}, publisher disconnects {self.disconnects}"
        )


class Ingest:
    """`wastepilot ingest` processes, as deployed (own client id each, one shared group)."""

    def __init__(self, db_url: str, mqtt_url: str, prefix: str, group: str, logdir: Path) -> None:
        self.env = {
            **os.environ,
            "WASTEPILOT_DATABASE_URL": db_url,
            "WASTEPILOT_MQTT_URL": mqtt_url,
            "WASTEPILOT_TOPIC_PREFIX": prefix,
            "WASTEPILOT_INGEST_GROUP": group,
            "WASTEPILOT_INGEST_RETRY_MAX_S": "2",
        }
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self, client_id: str) -> None:
        env = {
            **self.env,
            "WASTEPILOT_INGEST_CLIENT_ID": client_id,
            "WASTEPILOT_INGEST_METRICS_PORT": str(free_port()),
        }
        self.starts += 1
        with (self.logdir / f"{client_id}-{self.starts}.log").open("wb") as log:
            self.procs[client_id] = subprocess.Popen(
                [sys.executable, "-m", "wastepilot", "ingest"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, client_id: str) -> None:
        p = self.procs[client_id]
        os.killpg(p.pid, signal.SIGKILL)  # the worker and its validator and writer
        p.wait(10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _stored(db_url: str) -> tuple[set[tuple[str, int]], int] | None:
    try:
        with psycopg.connect(db_url, connect_timeout=3) as conn:
            rows = conn.execute("SELECT device_id, seq FROM readings").fetchall()
    except psycopg.OperationalError:
        return None
    return {(str(d), int(s)) for d, s in rows}, len(rows)  # type: ignore[call-overload]


def _wait(cond: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def run_chaos(
    settings: Settings,
    db_url: str,
    mqtt_url: str,
    prefix: str,
    *,
    readings: int,
    rate: float,
    gap_s: tuple[float, float] = (5.0, 20.0),
    faults: tuple[str, ...] = FAULTS,
    devices: int = 200,
    seed: int = 1,
    logdir: Path | None = None,
    out: Any = print,
    db_settings: Settings | None = None,
) -> ChaosResult:
    """Publish ``readings`` single readings at ``rate``/s through two ingest workers while
    faults of ``faults`` come every ``gap_s`` seconds; wait until the acknowledged ones are
    stored (or 180 s), and count. The database faults hit the local cluster(s) of
    ``db_settings`` (default ``settings``: the local services')."""
    paths = localstate.paths_for(settings)
    db_settings = db_settings or settings
    db_paths = localstate.paths_for(db_settings)
    major = install.installed_pg_majors()[0]
    rnd = random.Random(seed)
    ids = [f"CH-{i:05d}" for i in range(devices)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_devices(conn, [Device(d, f"HH-{d}") for d in ids])
    logdir = logdir or Path(tempfile.mkdtemp(prefix="wastepilot-chaos-"))
    run = uuid.uuid4().hex[:6]
    ingest = Ingest(db_url, mqtt_url, prefix, "ingest", logdir)
    workers = [f"chaos-{run}-1", f"chaos-{run}-2"]
    for w in workers:
        ingest.start(w)
    time.sleep(3)  # both subscribed before the first reading

    exposure = Exposure(settings, run)
    sink = MqttSink(mqtt_url, f"chaos-pub-{run}", max_pending=2_000).connect(timeout=30)
    sent: list[tuple[Delivery, tuple[str, int]]] = []
    t0 = time.monotonic()
    base = time.time() - 3600  # stamps within the last hour, unique per (device, seq)
    published = threading.Event()

    def publish() -> None:
        for i in range(readings):
            dev, seq = ids[i % devices], i // devices + 1
            ts = format_ts(datetime.fromtimestamp(base + i * 1e-3, UTC))
            body = (
                f'{{"v":1,"device_id":"{dev}","seq":{seq},"ts":"{ts}","kind":"run",'
                '"run_s":11.5,"energy_wh":1.9,"water_l":6.2,"peak_a":3.1}'
            ).encode()
            sent.append((sink.send(readings_topic(prefix, dev), body), (dev, seq)))
            ahead = (i + 1) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        published.set()

    pub = threading.Thread(target=publish, daemon=True)
    pub.start()
    done: list[Fault] = []
    k = 0
    while not published.wait(rnd.uniform(*gap_s)):
        kind = faults[k % len(faults)]
        k += 1
        f = Fault(kind, time.monotonic() - t0, len(sent), sink.no_subscribers)
        started = time.monotonic()
        if kind == RENEWAL:
            tls = broker.tls_files(settings, paths)
            if tls is None or tls[2] is None:
                raise SystemExit("a renewal needs the local broker's TLS listener and local CA")
            certs.issue_server(tls[0].parent, ["localhost", "127.0.0.1"])
            broker.mqtt_up(settings, paths, localstate.local_secrets(paths))  # copies, SIGHUP
        elif kind.startswith("broker"):
            pid = broker.mqtt_pid(paths)
            if pid is not None:
                os.kill(pid, signal.SIGTERM if kind == "broker-sigterm" else signal.SIGKILL)
                _wait(lambda: broker.mqtt_pid(paths) is None, 30)
            time.sleep(rnd.uniform(0.5, 2.0))  # publishers and ingest find it gone
            broker.mqtt_up(settings, paths, localstate.local_secrets(paths))
        elif kind == "postgres-kill-9":
            primary, _ = postgres.primary_and_standby(db_settings, db_paths)
            pid = int((primary.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            time.sleep(rnd.uniform(0.5, 2.0))
            _wait(lambda node=primary: not postgres.node_running(node, major), 30)
            for _ in range(20):  # its children leave the shared memory shortly after
                try:
                    postgres.node_ctl(primary, major, "start")
                    break
                except Exception:  # noqa: BLE001  (retried: the old children may linger)
                    time.sleep(0.5)
        elif kind == FAILOVER:
            f.first_commit_s = fail_over(db_settings, db_url, major)
        elif kind == "worker-kill-9":
            victim = workers[k % 2]
            ingest.kill(victim)
            time.sleep(rnd.uniform(0.5, 2.0))
            ingest.start(victim)
        f.recovered_s = time.monotonic() - started
        done.append(f)
        if f.first_commit_s is not None:
            out(f"{f.at:7.1f}s {kind}: first commit {f.first_commit_s:.2f}s after the kill")
        out(f"{f.at:7.1f}s {kind:<16} (back after {f.recovered_s:.1f}s); published so far "
            f"{len(sent)}, 0x10 so far {sink.no_subscribers}")  # fmt: skip
    pub.join()
    published_at = time.monotonic() - t0
    unconfirmed = sink.close(timeout=300)
    acked = {key for d, key in sent if d.confirmed}

    def all_stored() -> bool:
        got = _stored(db_url)
        return got is not None and acked <= got[0]

    _wait(all_stored, 180)
    time.sleep(2)  # anything still on its way, to count doubles
    got = _stored(db_url)
    ingest.stop()
    samples = exposure.stop()
    keys, rows = got if got is not None else (set(), 0)
    res = ChaosResult(
        published=len(sent),
        acknowledged=len(acked),
        stored_once=len(acked & keys),
        lost=len(acked - keys),
        doubled=rows - len(keys),
        no_subscribers=sink.no_subscribers,
        disconnects=sink.disconnects,
        seconds=time.monotonic() - t0,
    )
    for index, (d, key) in enumerate(sent):
        if d.confirmed and key not in keys and len(res.lost_keys) < 20:
            res.lost_keys.append((*key, index, round(index / rate, 2)))
    during = [v for at, v in samples if at - t0 <= published_at]
    if during:
        res.unstored_median = statistics.median(during)
        res.unstored_max = max(during)
    bounds = [f.seq_from for f in done] + [len(sent)]
    for i, f in enumerate(done):
        window = [key for d, key in sent[bounds[i] : bounds[i + 1]] if d.confirmed]
        start, end = f.at, (done[i + 1].at if i + 1 < len(done) else published_at)
        zero_x10 = (done[i + 1].no_subscribers_before if i + 1 < len(done) else
                    sink.no_subscribers) - f.no_subscribers_before  # fmt: skip
        row = {
            "fault": f.kind,
            "at_s": round(f.at, 1),
            "published": bounds[i + 1] - bounds[i],
            "acknowledged": len(window),
            "stored_once": sum(1 for key in window if key in keys),
            "lost": sum(1 for key in window if key not in keys),
            "no_subscribers": zero_x10,
            "unstored_max": max((v for at, v in samples if start <= at - t0 < end), default=0.0),
        }
        if f.first_commit_s is not None:
            row["first_commit_s"] = round(f.first_commit_s, 2)
        res.faults.append(row)
    if unconfirmed:
        out(f"not acknowledged by the broker (the publisher gave up): {unconfirmed}")
    return res


class Exposure:
    """Samples, twice a second, the readings the broker holds that are not stored yet (its $SYS
    store count less retained ones, as ingest's wastepilot_broker_unstored_messages), less what
    it held before the run (other sessions' queues on a shared broker)."""

    def __init__(self, settings: Settings, run: str) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        from ingest.exposure import StoreWatch

        self._registry = CollectorRegistry()
        gauge = Gauge("unstored", "held by the broker", registry=self._registry)
        self._watch = StoreWatch(settings.mqtt_url_for("ingest"), f"chaos-store-{run}", gauge)
        self._watch.start()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        _wait(lambda: self._value() is not None, 10)
        self._base = self._value() or 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _value(self) -> float | None:
        return self._registry.get_sample_value("unstored")

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            v = self._value()
            if v is not None and not math.isnan(v):  # (NaN while its connection is down)
                self.samples.append((time.monotonic(), max(v - self._base, 0.0)))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(5)
        self._watch.stop()
        return self.samples


def _count(info: str) -> int | None:
    try:
        with psycopg.connect(info, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
    except psycopg.OperationalError:
        return None
    return int(row[0]) if row else None  # type: ignore[call-overload]


def fail_over(settings: Settings, db_url: str, major: int) -> float:
    """The primary's host is lost: kill -9 and its data directory deleted; the standby promoted
    (as `wastepilot services promote`); once the services' first commit on it is seen, the lost
    node rebuilt as the new standby (as `wastepilot services up`). Returns the seconds from the
    kill to that first commit."""
    paths = localstate.paths_for(settings)
    primary, standby = postgres.primary_and_standby(settings, paths)
    pid = int((primary.data / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    _wait(lambda: not postgres.node_running(primary, major), 30)
    shutil.rmtree(primary.data)  # the disk is gone
    dbname = urlsplit(db_url).path.lstrip("/")
    on_standby = f"host={standby.socket} port={standby.port} user=postgres dbname={dbname}"
    before = _count(on_standby)  # read-only until promoted: exact
    assert before is not None, "the standby does not answer"
    postgres.promote(settings, paths, major)
    if not _wait(lambda: (_count(on_standby) or 0) > before, 120):
        raise RuntimeError("no commit on the promoted standby within 120 s of the failover")
    first = time.monotonic() - killed
    secrets = localstate.local_secrets(paths)
    postgres.pg_up(settings, paths, major, secrets["db"], secrets["db_service"], standby=True)
    return first


def standby_pair(state_dir: Path) -> tuple[Settings, str, str]:
    """Two local clusters of their own — a primary and its synchronous standby, on free ports
    under ``state_dir`` — migrated; returns (their settings, the owner's URL, the services')."""
    from core.migrate import migrate

    s = Settings(state_dir=state_dir, pg_port=free_port(), pg_standby_port=free_port())
    paths = localstate.paths_for(s)
    major = install.installed_pg_majors()[0]
    secrets = localstate.local_secrets(paths)
    localstate.save_identities(paths, {"secrets": secrets})
    try:
        owner, service = postgres.pg_up(
            s, paths, major, secrets["db"], secrets["db_service"], standby=True
        )
        migrate(owner)
    except BaseException:
        stop_pair(s)  # nothing left running behind a failed start
        raise
    return s, owner, service


def stop_pair(s: Settings) -> None:
    """Stop both clusters of ``standby_pair`` and delete their files."""
    paths = localstate.paths_for(s)
    major = install.installed_pg_majors()[0]
    for node in postgres.nodes(s, paths):
        if postgres.node_running(node, major):
            postgres.node_ctl(node, major, "stop")
    shutil.rmtree(paths.pg, ignore_errors=True)


def tls_url(s: Settings) -> str:
    """The test identity on the local broker's TLS listener, pinning the local CA."""
    from core.mqtturl import MqttAddress, parse_mqtt_url

    tls = broker.tls_files(s, localstate.paths_for(s))
    if tls is None or tls[2] is None:
        raise SystemExit("--tls needs the local broker's TLS listener (WASTEPILOT_MQTT_TLS_PORT)")
    plain = parse_mqtt_url(s.mqtt_url_for("test"))
    return MqttAddress(
        "localhost", s.mqtt_tls_port, plain.username, plain.password, True, str(tls[2])
    ).url()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=1500.0, help="readings per second")
    ap.add_argument("--gap", type=float, nargs=2, default=(5.0, 20.0), help="seconds between")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--tls", action="store_true",
        help="publish over the broker's TLS listener, and renew its certificate as a fault too",
    )  # fmt: skip
    ap.add_argument(
        "--failover", action="store_true",
        help="the database as a primary and a synchronous standby of the run's own; a failover "
        "(primary killed, its data deleted, the standby promoted, the lost node rebuilt) among "
        "the faults",
    )  # fmt: skip
    args = ap.parse_args()
    from core.migrate import migrate
    from wastepilot.localservices.state import TEST_TOPIC_ROOT

    s = common.settings()
    pair: Settings | None = None
    faults = (*FAULTS, RENEWAL) if args.tls else FAULTS
    if args.failover:
        pair, _, db_url = standby_pair(Path(tempfile.mkdtemp(prefix="wastepilot-pair-")))
        faults = (*faults, FAILOVER)
    else:
        db_url = bench_database(s)
        migrate(db_url)
    prefix = f"{TEST_TOPIC_ROOT}/chaos-{uuid.uuid4().hex[:6]}/v1"
    url = tls_url(s) if args.tls else s.mqtt_url_for("test")
    try:
        res = run_chaos(
            s, db_url, url, prefix, readings=args.readings, rate=args.rate, gap_s=tuple(args.gap),
            seed=args.seed, faults=faults, db_settings=pair,
        )  # fmt: skip
    finally:
        if pair is not None:
            stop_pair(pair)
    print(f"{'fault':<17} {'at':>7} {'published':>9} {'acked':>9} {'stored':>9} {'lost':>5} "
          f"{'0x10':>5} {'unstored max':>12}")  # fmt: skip
    for f in res.faults:
        print(f"{f['fault']:<17} {f['at_s']:>6}s {f['published']:>9} {f['acknowledged']:>9} "
              f"{f['stored_once']:>9} {f['lost']:>5} {f['no_subscribers']:>5} "
              f"{f['unstored_max']:>12,.0f}")  # fmt: skip
    print(res.line() + f" in {res.seconds:.0f} s; held unstored by the broker: median "
          f"{res.unstored_median:,.0f}, max {res.unstored_max:,.0f}")  # fmt: skip
    print(json.dumps(res.__dict__))


def bench_database(s: Settings) -> str:
    """A fresh database of the chaos run's own on the local cluster."""
    return fresh_database(s.db_owner_url(), "wastepilot_chaos", migrated=False)


if __name__ == "__main__":
    main()
