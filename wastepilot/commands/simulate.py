"""`wastepilot simulate`: synthetic pilot households publishing readings (or writing a file)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core import clock
from core.db import connect
from core.errors import ConfigError, PublishError
from core.registry import Device, Household, add_devices, add_households
from core.settings import Settings, get_settings
from core.topics import KIND_FAMILY, V1_KIND
from wastepilot.signals import stop_on_signals

if TYPE_CHECKING:
    from simulator.device_sink import DeviceSinks as DeviceSinksType

console = Console()


def simulate_cmd(
    households: Annotated[
        int | None, typer.Option(min=1, help="Fleet size (default WASTEPILOT_SIM_HOUSEHOLDS)")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default WASTEPILOT_SIM_SEED)")
    ] = None,
    backfill_days: Annotated[
        float, typer.Option(min=0, help="Publish this many days of history first")
    ] = 0,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Then publish in (sped-up) real time")
    ] = True,
    speed: Annotated[
        float | None, typer.Option(min=0.01, help="Simulated seconds per real second")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write JSON lines to this file instead of publishing")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Override a model parameter: name=value")
    ] = None,
    first: Annotated[int, typer.Option(min=1, help="Index of the first household")] = 1,
    malformed: Annotated[
        bool, typer.Option(help="Also send one malformed message of each dead-letter reason")
    ] = False,
    per_device: Annotated[
        bool,
        typer.Option(
            help="Each device on its own connection with its own credentials "
            "(local broker); default: the load identity publishes for all"
        ),
    ] = False,
    device_kind: Annotated[
        str,
        typer.Option(
            help="Publish as this kind of device: wastepilot-v1, or a maker's format "
            "(shelly-gen2, tasmota, wmbus: backfill only, beside each household's v1 meter)"
        ),
    ] = "wastepilot-v1",
) -> None:
    """Simulate pilot households: backfill history and/or publish live."""
    from simulator.model import make_fleet
    from simulator.params import Params
    from simulator.publisher import FileSink, MqttSink, Sink
    from simulator.runner import SeqStore, backfill
    from simulator.runner import live as run_live

    s = get_settings()
    n = households or s.sim_households
    seed_ = s.sim_seed if seed is None else seed
    try:
        params = Params().with_overrides(dict(p.split("=", 1) for p in (param or [])))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    fleet = make_fleet(n, seed_, params, first)
    if device_kind != V1_KIND:
        _makers(s, fleet, device_kind, backfill_days, seed_, params, live=live, output=output)
        return
    if output is None:
        with connect(s.db_url()) as conn:
            add_households(
                conn,
                [
                    Household(h.ref, h.cohort, h.occupants, h.postcode_district, date(2024, 1, 1))
                    for h in fleet
                ],
            )
            add_devices(
                conn, [Device(h.device_id, h.ref, "sim-meter", date(2024, 1, 1)) for h in fleet]
            )
    seqs = SeqStore(None if output else s.state_dir / "simulator" / f"seq-{seed_}.json")
    stop = stop_on_signals()

    def sink() -> Sink:
        if output is not None:
            return FileSink(output)
        if per_device:
            return _device_sinks(s, fleet)
        return MqttSink(s.mqtt_url_for("simulator"), f"wastepilot-sim-{seed_}").connect()

    now = clock.now()
    bad = None
    if malformed:
        from simulator.faults import malformed_messages

        bad = malformed_messages(
            fleet[0],
            now - timedelta(hours=1),
            unknown_device="FWD-UNREGISTERED",
            max_payload_bytes=s.ingest_max_payload_bytes,
        )
    if backfill_days > 0 or bad:
        start = now - timedelta(days=backfill_days)
        with Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("backfill", total=None)
            summ = backfill(
                sink(),
                s.topic_prefix,
                fleet,
                start,
                now,
                seed_,
                params,
                seqs,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
                stop=stop,
                malformed=bad,
            )
        console.print(
            f"backfill: {summ.readings} readings ({summ.faults} faults, {summ.resends} re-sent) "
            f"in {summ.messages} messages, {summ.bytes / 1e6:.1f} MB, {summ.seconds:.1f}s "
            f"({summ.rate:.0f} readings/s); not confirmed: {summ.not_confirmed}"
        )
        if summ.malformed:
            console.print(f"malformed messages sent, by expected reason: {summ.malformed}")
        if summ.not_confirmed:
            raise PublishError(
                f"the broker did not confirm {summ.not_confirmed} of {summ.messages} messages "
                "(refused logins or topics? see the broker's log)"
            )
    if live and not stop.is_set() and output is None:
        sp = speed or s.sim_speed
        console.print(f"live: {n} households at {sp:g}x; Ctrl-C stops")
        summ = run_live(sink(), s.topic_prefix, fleet, sp, seed_, params, seqs, stop, start=now)
        console.print(
            f"live: {summ.readings} readings in {summ.messages} messages; "
            f"not confirmed: {summ.not_confirmed}"
        )
        if summ.not_confirmed:
            raise PublishError(f"the broker did not confirm {summ.not_confirmed} messages")


def _device_sinks(s: Settings, fleet: list[Any]) -> DeviceSinksType:
    """Connections of the fleet's own devices, each with its own broker login (issued afresh
    for this run through the admin identity)."""
    from core.devices import issue_logins
    from core.mqtturl import parse_mqtt_url
    from simulator.device_sink import DeviceSinks

    admin = s.broker_admin_url()
    if admin is None:
        raise ConfigError("--per-device issues device logins: set WASTEPILOT_MQTT_ADMIN_URL")
    logins = issue_logins(admin, [h.device_id for h in fleet])
    addr = parse_mqtt_url(s.mqtt_url_for("simulator"))
    console.print(f"connecting {len(fleet)} devices with their own logins")
    return DeviceSinks(
        addr.host, addr.port, s.topic_prefix, {x.device_id: x.password for x in logins}
    ).connect()


def _makers(
    s: Settings,
    fleet: list[Any],
    kind: str,
    days: float,
    seed: int,
    params: Any,
    *,
    live: bool,
    output: Path | None,
) -> None:
    """The fleet's devices of a maker's kind: registered (with the kind's broker rights), then
    ``days`` of history published in the maker's format through the simulator's identity."""
    from simulator.publisher import FileSink, MqttSink, Sink
    from simulator.runner import MAKER_MODELS, backfill_makers, maker_device_id

    if kind not in KIND_FAMILY:
        raise ConfigError(f"device kind {kind!r}: one of {', '.join(KIND_FAMILY)}")
    if days <= 0:
        raise ConfigError("a maker's format is published as history: give --backfill-days")
    if live:
        console.print("live publishing in makers' formats is not built: backfill only")
    if output is None:
        with connect(s.db_url()) as conn:
            add_households(conn, [Household(h.ref, h.cohort, h.occupants, h.postcode_district,
                                            date(2024, 1, 1)) for h in fleet])  # fmt: skip
            add_devices(conn, [Device(maker_device_id(kind, h.index), h.ref, MAKER_MODELS[kind],
                                      date(2024, 1, 1), kind=kind) for h in fleet])  # fmt: skip
    sink: Sink = (
        FileSink(output)
        if output is not None
        else MqttSink(s.mqtt_url_for("simulator"), f"wastepilot-sim-{kind}-{seed}").connect()
    )
    now = clock.now()
    with Progress(TextColumn(f"backfill {kind}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("days"), TimeElapsedColumn(), console=console) as bar:  # fmt: skip
        task = bar.add_task("backfill", total=None)
        summ = backfill_makers(
            sink, s.topic_prefix, fleet, kind, now - timedelta(days=days), now, seed, params,  # type: ignore[arg-type]
            progress=lambda d, t: bar.update(task, completed=d, total=t), stop=stop_on_signals(),
        )  # fmt: skip
    console.print(
        f"backfill {kind}: {summ.messages} messages, {summ.bytes / 1e6:.1f} MB, "
        f"{summ.seconds:.1f}s; not confirmed: {summ.not_confirmed}"
    )
    if summ.not_confirmed:
        raise PublishError(f"the broker did not confirm {summ.not_confirmed} messages")
