"""The makers' formats (pure): payloads written as the makers document them are read, and a
payload that breaks the format is a reject with its reason (ingest/adapters/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.settings import Settings
from core.wire import Reason
from ingest.adapters import shelly, tasmota, wmbus
from ingest.validate import Limits, check_message

PREFIX = "wastepilot/v1"
LIMITS = Limits.from_settings(Settings(pilot_start=datetime(2015, 1, 1, tzinfo=UTC)), prefix=PREFIX)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)

# Shelly Gen2 API docs, "Notifications" (NotifyStatus: params.ts and only the changed keys)
# and "Switch" (the status of switch:0, with aenergy)
SHELLY_NOTIFY = (
    b'{"src":"shellyplusplugs-b0b21c12a3f4","dst":"shellyplusplugs-b0b21c12a3f4/events",'
    b'"method":"NotifyStatus","params":{"ts":1773144000.04,'
    b'"switch:0":{"id":0,"apower":812.4,"current":3.53}}}'
)
SHELLY_SWITCH_STATUS = (
    b'{"id":0,"source":"timer","output":true,"apower":8.9,"voltage":237.5,"current":0.068,'
    b'"aenergy":{"total":6.532,"by_minute":[45.199,47.141,88.397],"minute_ts":1773143940},'
    b'"temperature":{"tC":23.5,"tF":74.4}}'
)
SHELLY_TICK = (
    b'{"src":"shellyplusplugs-b0b21c12a3f4","dst":"shellyplusplugs-b0b21c12a3f4/events",'
    b'"method":"NotifyStatus","params":{"ts":1773144060.00,"switch:0":{"id":0,'
    b'"aenergy":{"by_minute":[45.199,47.141,88.397],"minute_ts":1773144000,"total":6.532}}}}'
)
# Tasmota docs, "Power Monitoring" (tele/SENSOR with ENERGY; Time with SetOption52 1)
TASMOTA_SENSOR = (
    b'{"Time":"2026-03-10T12:00:00+00:00","ENERGY":{"TotalStartTime":"2025-11-03T19:34:28",'
    b'"Total":0.00102,"Yesterday":0.000,"Today":0.001,"Period":0,"Power":4,"ApparentPower":5,'
    b'"ReactivePower":3,"Factor":0.80,"Voltage":231,"Current":0.022}}'
)
# wmbusmeters README (a decoded iPerl telegram as JSON)
WMBUS_TELEGRAM = (
    b'{"media":"water","meter":"iperl","name":"MyTapWater","id":"33225544",'
    b'"total_m3":123.529,"max_flow_m3h":0,"timestamp":"2026-03-10T11:58:42Z"}'
)


def test_shelly_notifications_give_power_and_counter_samples_at_the_devices_time() -> None:
    got = shelly.decode("PLUG-1", "events/rpc", SHELLY_NOTIFY)
    ts = datetime.fromtimestamp(1773144000.04, UTC)
    assert [(s.ts, s.power_w, s.current_a) for s in got.power] == [(ts, 812.4, 3.53)]
    assert got.counters == []
    tick = shelly.decode("PLUG-1", "events/rpc", SHELLY_TICK)
    assert [(c.ts, c.total_wh) for c in tick.counters] == [
        (datetime.fromtimestamp(1773144060, UTC), 6.532)
    ]
    # the full status carries no device time: checked, not stored
    status = shelly.decode("PLUG-1", "status/switch:0", SHELLY_SWITCH_STATUS)
    assert (status.power, status.counters, status.status) == ([], [], None)
    assert shelly.decode("PLUG-1", "online", b"false").status.state == "offline"  # type: ignore[union-attr]
    event = b'{"src":"x","method":"NotifyEvent","params":{"ts":1773144000.1,"events":[]}}'
    assert shelly.decode("PLUG-1", "events/rpc", event).power == []


def test_tasmota_sensor_and_last_will() -> None:
    got = tasmota.decode("PLUG-2", "tele/SENSOR", TASMOTA_SENSOR)
    ts = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert [(s.ts, s.power_w, s.current_a) for s in got.power] == [(ts, 4.0, 0.022)]
    assert [(c.ts, c.total_wh) for c in got.counters] == [(ts, pytest.approx(1.02))]
    # without SetOption52 the time is the device's local (UK) time: in summer, UTC + 1
    summer = TASMOTA_SENSOR.replace(b"2026-03-10T12:00:00+00:00", b"2026-07-01T12:00:00")
    (s,) = tasmota.decode("PLUG-2", "tele/SENSOR", summer).power
    assert s.ts == datetime(2026, 7, 1, 11, tzinfo=UTC)
    assert tasmota.decode("PLUG-2", "tele/LWT", b"Offline").status.state == "offline"  # type: ignore[union-attr]
    state = b'{"Time":"2026-03-10T12:00:00","UptimeSec":4000,"Wifi":{"Signal":-61}}'
    st = tasmota.decode("PLUG-2", "tele/STATE", state).status
    assert st is not None and (st.state, st.uptime_s, st.rssi_dbm) == ("online", 4000, -61)
    assert tasmota.decode("PLUG-2", "stat/POWER", b"ON").power == []


def test_wmbusmeters_telegram_is_a_meter_read_in_litres() -> None:
    (read,) = wmbus.decode("GW-1", "33225544", WMBUS_TELEGRAM).meter
    assert read.meter_id == "33225544" and read.total_l == pytest.approx(123529.0)
    assert read.ts == datetime(2026, 3, 10, 11, 58, 42, tzinfo=UTC)


BROKEN = [
    ("shelly/PLUG-1/events/rpc", b"{not json", Reason.MALFORMED_JSON),
    ("shelly/PLUG-1/events/rpc", b'{"method":"NotifyStatus","params":{}}', Reason.MISSING_FIELD),
    ("shelly/PLUG-1/events/rpc", b'{"method":"NotifyStatus","params":{"ts":"noon"}}',
     Reason.WRONG_TYPE),
    ("shelly/PLUG-1/events/rpc",
     b'{"method":"NotifyStatus","params":{"ts":1773144000,"switch:0":{"apower":-5}}}',
     Reason.OUT_OF_RANGE),
    ("shelly/PLUG-1/events/rpc",
     b'{"method":"NotifyStatus","params":{"ts":1773144000,"switch:0":{"apower":"5"}}}',
     Reason.WRONG_TYPE),
    ("shelly/PLUG-1/events/rpc", b'{"method":"Reboot"}', Reason.INVALID_VALUE),
    ("shelly/PLUG-1/online", b"maybe", Reason.INVALID_VALUE),
    ("shelly/PLUG-1/rpc", b"{}", Reason.BAD_TOPIC),
    ("tasmota/PLUG-2/tele/SENSOR", b'{"ENERGY":{"Power":4,"Total":1}}', Reason.MISSING_FIELD),
    ("tasmota/PLUG-2/tele/SENSOR", b'{"Time":"2026-03-10T12:00:00","ENERGY":{"Power":4}}',
     Reason.MISSING_FIELD),
    ("tasmota/PLUG-2/tele/SENSOR", b'{"Time":"yesterday","ENERGY":{"Power":4,"Total":1}}',
     Reason.INVALID_VALUE),
    ("tasmota/PLUG-2/tele/LWT", b"online", Reason.INVALID_VALUE),
    ("wmbus/GW-1/33225544", WMBUS_TELEGRAM.replace(b'"water"', b'"electricity"'),
     Reason.INVALID_VALUE),
    ("wmbus/GW-1/99999999", WMBUS_TELEGRAM, Reason.DEVICE_MISMATCH),
    ("wmbus/GW-1/33225544", WMBUS_TELEGRAM.replace(b"Z\"}", b'"}'), Reason.INVALID_VALUE),
    ("wmbus/GW-1/33225544", WMBUS_TELEGRAM.replace(b"123.529", b"NaN"), Reason.MALFORMED_JSON),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "payload", "reason"), BROKEN)
def test_a_payload_that_breaks_the_makers_format_is_a_reject_with_its_reason(
    topic: str, payload: bytes, reason: Reason
) -> None:
    out = check_message(f"{PREFIX}/{topic}", payload, LIMITS, NOW)
    assert out.samples is None and out.status is None
    (reject,) = out.rejects
    assert reject.reason is reason and reject.payload == payload
    assert reject.device_id == topic.split("/")[1] and reject.detail


def test_samples_stamped_outside_the_pilots_window_reject_the_message() -> None:
    late = SHELLY_NOTIFY.replace(
        b"1773144000.04", str((NOW + timedelta(days=2)).timestamp()).encode()
    )
    out = check_message(f"{PREFIX}/shelly/PLUG-1/events/rpc", late, LIMITS, NOW)
    assert [r.reason for r in out.rejects] == [Reason.TS_IN_FUTURE]
    assert out.samples is None


def test_documented_payloads_pass_the_whole_check() -> None:
    for topic, payload in [
        ("shelly/PLUG-1/events/rpc", SHELLY_NOTIFY),
        ("shelly/PLUG-1/status/switch:0", SHELLY_SWITCH_STATUS),
        ("tasmota/PLUG-2/tele/SENSOR", TASMOTA_SENSOR),
        ("wmbus/GW-1/33225544", WMBUS_TELEGRAM),
    ]:
        out = check_message(f"{PREFIX}/{topic}", payload, LIMITS, NOW)
        assert out.rejects == [], (topic, out.rejects)
        assert out.device == topic.split("/")[1]
