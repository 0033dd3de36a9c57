"""Off-the-shelf devices end to end (issue 30): a day of a household's messages in each maker's
format, published through the real broker with the device's own login, read by an ingest
worker, stored in the real database and turned into uses by the derive_uses job — compared
with what the simulator's household model did."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core.brokeradmin import BrokerAdmin
from core.devices import register
from core.registry import Device
from core.settings import Settings
from core.topics import KIND_FAMILY, maker_root, retained_topics
from ingest.derive import derive_uses
from ingest.validate import Limits
from ingest.worker import IngestWorker
from simulator.device_sink import DeviceSinks
from simulator.makers import DayPlan, DayTruth, MakerMessage, day_messages
from simulator.model import household_day, make_household
from simulator.params import Params
from tests.helpers import metric_value, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
PREFIX = "wastepilot/v1"  # device logins may write only here (the broker's device roles)
DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a fixed past day: the test never reads the clock
SEED = 7
# a 2-hour offline spell and a reboot, at times the household does not use its disposer
REPORT_S = 61.0  # both plugs report at least once a minute (Shelly's tick, TelePeriod 60)
PLAN = DayPlan(
    offline=(DAY + timedelta(hours=2), DAY + timedelta(hours=4)),
    reboot=DAY + timedelta(hours=15, minutes=3),
)


@pytest.fixture
def login(db: Conn, settings: Settings) -> Iterator[Callable[[str], tuple[str, str]]]:
    """Register a device of a kind for a new household, with its broker login."""
    admin = settings.broker_admin_url()
    if admin is None:
        pytest.skip("device logins are issued through the broker's admin identity")
    made: list[str] = []

    def make(kind: str, household: str | None = None) -> tuple[str, str]:
        device = f"MK-{uuid.uuid4().hex[:8].upper()}"
        ref = household or f"HH-{device}"
        (got,) = register(db, [Device(device, ref, kind=kind)], admin)
        made.append(device)
        return device, got.password

    yield make
    with BrokerAdmin(admin) as broker:
        for device in made:
            broker.remove(device)
            for topic in retained_topics(PREFIX, device):  # the last wills the test left
                broker.clear_retained(topic)


def household(index: int) -> tuple[Any, list[Any]]:
    p = Params()
    h = make_household(index, SEED, p)
    return h, household_day(h, DAY.date(), SEED, p)


def publish(
    settings: Settings, device: str, password: str, family: str, msgs: list[MakerMessage]
) -> None:
    sinks = DeviceSinks("127.0.0.1", settings.mqtt_port, PREFIX, {device: password})
    sinks.connect(timeout=30)
    root = maker_root(PREFIX, family, device)
    for m in msgs:
        sinks.send(f"{root}/{m.subtopic}", m.payload, retain=m.retain)
    assert sinks.close(timeout=60) == 0, "the broker confirmed every message"
    assert sinks.refused == 0


def derive(db_url: str, settings: Settings) -> int:
    with psycopg.connect(db_url) as conn:
        return derive_uses(conn, settings)


@pytest.fixture
def worker(start_worker: Callable[..., IngestWorker], settings: Settings) -> IngestWorker:
    return start_worker(
        mqtt_url=settings.mqtt_url_for("ingest"),
        limits=replace(Limits.from_settings(settings), prefix=PREFIX),
    )


def stored_samples(db: Conn, device: str) -> int:
    row = db.execute(
        "SELECT (SELECT count(*) FROM power_samples WHERE device_id = %(d)s)"
        " + (SELECT count(*) FROM energy_counters WHERE device_id = %(d)s)"
        " + (SELECT count(*) FROM meter_reads WHERE device_id = %(d)s)",
        {"d": device},
    ).fetchone()
    db.commit()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def expected_samples(family: str, msgs: list[MakerMessage]) -> int:
    """The samples the messages carry, each key once (a table's key is the device's time)."""
    from ingest.adapters import ADAPTERS

    keys: set[tuple[str, object]] = set()
    for m in msgs:
        d = ADAPTERS[family].decode("X", m.subtopic, m.payload)
        keys |= {("power", s.ts) for s in d.power} | {("counter", s.ts) for s in d.counters}
        keys |= {("meter", (s.meter_id, s.ts)) for s in d.meter}
    return len(keys)


def check_plug_day(
    db: Conn,
    device: str,
    truth: DayTruth,
    settings: Settings,
    cadence_s: float,
    *,
    history: bool = True,
) -> None:
    uses = db.execute(
        "SELECT start_at, end_at, energy_wh, energy_source, straddles_gap FROM power_uses"
        " WHERE device_id = %s ORDER BY start_at",
        (device,),
    ).fetchall()
    expected = [u for u in truth.uses if u.run_s >= settings.uses_min_on_s]
    assert len(uses) == len(expected), (uses, expected)
    for (start, end, wh, source, flagged), model in zip(uses, expected, strict=True):
        assert abs((start - model.start).total_seconds()) <= cadence_s
        assert source == "counter" and not flagged
        assert abs(wh - model.energy_wh) <= 0.10 * model.energy_wh, (wh, model)
        assert abs((end - start).total_seconds() - model.run_s) <= cadence_s
    # the same uses are run readings, so rollups, KPIs and pages count them
    runs = db.execute(
        "SELECT count(*), coalesce(sum(energy_wh), 0) FROM readings"
        " WHERE device_id = %s AND kind = 'run'",
        (device,),
    ).fetchone()
    assert runs is not None and runs[0] == len(expected)
    # the day's energy from the counter, across its reset, within 2 % of what the meter saw
    day_wh = db.execute(
        "SELECT sum(CASE WHEN d >= 0 THEN d ELSE total_wh END) FROM ("
        "  SELECT total_wh, total_wh - lag(total_wh) OVER (ORDER BY ts) AS d"
        "  FROM energy_counters WHERE device_id = %s) AS c WHERE d IS NOT NULL",
        (device,),
    ).fetchone()
    assert day_wh is not None
    assert abs(float(day_wh[0]) - truth.energy_wh) <= 0.02 * truth.energy_wh, (day_wh, truth)
    # the reset and the 2-hour gap are reported, once each
    events = db.execute(
        "SELECT kind, start_at, end_at FROM device_events WHERE device_id = %s ORDER BY start_at",
        (device,),
    ).fetchall()
    kinds = [e[0] for e in events]
    assert kinds.count("counter_reset") == 1 and kinds.count("gap") == 1, events
    (gap,) = [e for e in events if e[0] == "gap"]
    assert PLAN.offline is not None
    # from the last report before the spell to the first after it: within a report period
    assert timedelta(0) <= PLAN.offline[0] - gap[1] <= timedelta(seconds=REPORT_S)
    assert timedelta(0) <= gap[2] - PLAN.offline[1] <= timedelta(seconds=REPORT_S)
    (reset,) = [e for e in events if e[0] == "counter_reset"]
    assert PLAN.reboot is not None and reset[1] <= PLAN.reboot <= reset[2]
    # no use invented in the silence
    assert not [u for u in uses if PLAN.offline[0] <= u[0] < PLAN.offline[1]]
    if not history:
        return  # a retained last will carries no time: sent again, it is a change again
    # the online/offline history follows the last-will messages
    changes = db.execute(
        "SELECT online FROM device_status_history WHERE device_id = %s ORDER BY id", (device,)
    ).fetchall()
    assert [c[0] for c in changes] == truth.online_changes


@pytest.mark.parametrize(("kind", "cadence_s"), [("shelly-gen2", 1.0), ("tasmota", 2.0)])
def test_a_day_of_a_metering_plug_becomes_the_models_uses_once(
    db: Conn,
    db_url: str,
    settings: Settings,
    login: Callable[..., tuple[str, str]],
    worker: IngestWorker,
    kind: str,
    cadence_s: float,
) -> None:
    family = KIND_FAMILY[kind]
    assert family is not None
    h, events = household(4)
    msgs, truth = day_messages(kind, h, events, DAY, SEED, PLAN)  # type: ignore[arg-type]
    assert len(truth.uses) >= 3 and truth.unseen == []
    device, password = login(kind)
    publish(settings, device, password, family, msgs)
    want = expected_samples(family, msgs)
    wait_for(lambda: stored_samples(db, device) == want, 60, "every sample stored")
    wait_for(
        lambda: metric_value(worker.metrics.statuses) >= len(truth.online_changes),
        30,
        "the status messages",
    )
    assert derive(db_url, settings) == len([u for u in truth.uses if u.run_s >= 2.0])
    check_plug_day(db, device, truth, settings, cadence_s)
    # a message that breaks the maker's format, from the device itself: a dead letter, kept
    broken = MakerMessage(DAY, {"shelly": "events/rpc", "tasmota": "tele/SENSOR"}[family],
                          b'{"method": "NotifyStatus", "Time": ')  # fmt: skip
    publish(settings, device, password, family, [broken])
    wait_for(lambda: metric_value(worker.metrics.dead_letters.labels("malformed_json")) >= 1,
             30, "the dead letter")  # fmt: skip
    letter = db.execute(
        "SELECT topic, reason, payload FROM dead_letters WHERE device_id = %s", (device,)
    ).fetchone()
    assert letter == (
        f"{maker_root(PREFIX, family, device)}/{broken.subtopic}",
        "malformed_json",
        broken.payload,
    )
    # the same messages again (a device that re-sends, a redelivery): nothing changes
    before = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,)).fetchone()
    publish(settings, device, password, family, msgs)
    wait_for(lambda: metric_value(worker.metrics.samples_duplicate) >= want, 60, "resent seen")
    assert derive(db_url, settings) == 0
    assert stored_samples(db, device) == want
    after = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,)).fetchone()
    assert before == after
    check_plug_day(db, device, truth, settings, cadence_s, history=False)


def test_a_water_meter_gives_the_days_litres_and_each_plug_use_its_litres(
    db: Conn,
    db_url: str,
    settings: Settings,
    login: Callable[..., tuple[str, str]],
    worker: IngestWorker,
) -> None:
    """wmbusmeters' telegrams for a household with a Shelly plug: the day's litres from the
    meter's register (across a meter swap), the swap and a 2-hour silence reported, and each
    use of the plug with the litres the meter counted during it. Sent twice: nothing doubles."""
    h, events = household(5)
    meter_msgs, meter_truth = day_messages("wmbus", h, events, DAY, SEED, PLAN)
    plug_msgs, plug_truth = day_messages("shelly-gen2", h, events, DAY, SEED, PLAN)
    meter, meter_pw = login("wmbus")
    ref = db.execute("SELECT household_ref FROM devices WHERE id = %s", (meter,)).fetchone()
    assert ref is not None
    plug, plug_pw = login("shelly-gen2", str(ref[0]))
    want = expected_samples("wmbus", meter_msgs) + expected_samples("shelly", plug_msgs)
    for sent in (1, 2):
        publish(settings, meter, meter_pw, "wmbus", meter_msgs)
        publish(settings, plug, plug_pw, "shelly", plug_msgs)
        seen = sent * want

        def all_seen(seen: int = seen) -> bool:
            done = metric_value(worker.metrics.samples_written) + metric_value(
                worker.metrics.samples_duplicate
            )
            return done >= seen and stored_samples(db, meter) + stored_samples(db, plug) == want

        wait_for(all_seen, 60, "every sample seen")
        derive(db_url, settings)
        litres = db.execute(
            "SELECT sum(CASE WHEN d >= 0 THEN d ELSE total_l END) FROM ("
            "  SELECT total_l, total_l - lag(total_l) OVER (ORDER BY ts) AS d"
            "  FROM meter_reads WHERE device_id = %s) AS c WHERE d IS NOT NULL",
            (meter,),
        ).fetchone()
        assert litres is not None
        assert abs(float(litres[0]) - meter_truth.litres) <= 0.02 * meter_truth.litres
        events_found = db.execute(
            "SELECT kind, detail FROM device_events WHERE device_id = %s ORDER BY start_at",
            (meter,),
        ).fetchall()
        assert sorted(e[0] for e in events_found) == ["counter_reset", "gap"], events_found
        uses = db.execute(
            "SELECT start_at, water_l FROM power_uses WHERE device_id = %s ORDER BY start_at",
            (plug,),
        ).fetchall()
        expected = [u for u in plug_truth.uses if u.run_s >= settings.uses_min_on_s]
        assert len(uses) == len(expected)
        for (_start, water), model in zip(uses, expected, strict=True):
            assert water is not None and abs(water - model.water_l) <= 0.25, (water, model)
        readings = db.execute(
            "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", ([plug, meter],)
        ).fetchone()
        assert readings == (len(expected),)


def test_a_makers_device_may_publish_only_under_its_own_tree(
    db: Conn, settings: Settings, login: Callable[..., tuple[str, str]], worker: IngestWorker
) -> None:
    """The broker's device role of a maker's kind: its own <prefix>/<family>/<id>/# only —
    not another plug's tree, not another family's, not the v1 contract's topics."""
    from core.topics import readings_topic

    plug, password = login("shelly-gen2")
    other, _ = login("shelly-gen2")
    sinks = DeviceSinks("127.0.0.1", settings.mqtt_port, PREFIX, {plug: password})
    sinks.connect(timeout=30)
    frame = b'{"method":"NotifyStatus","params":{"ts":1773144000,"switch:0":{"apower":1}}}'
    sinks.send_as(plug, f"{maker_root(PREFIX, 'shelly', plug)}/events/rpc", frame)
    for topic in (
        f"{maker_root(PREFIX, 'shelly', other)}/events/rpc",
        f"{maker_root(PREFIX, 'tasmota', plug)}/tele/SENSOR",
        readings_topic(PREFIX, plug),
    ):
        sinks.send_as(plug, topic, frame)
    sinks.close(timeout=30)
    assert sinks.refused == 3  # the broker answered "not authorized" to each of the three
    wait_for(lambda: metric_value(worker.metrics.samples_written) >= 1, 30, "its own sample")
    stored = db.execute("SELECT device_id, count(*) FROM power_samples GROUP BY 1").fetchall()
    assert stored == [(plug, 1)]
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (0,)
