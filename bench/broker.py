"""The broker's own throughput with and without the durable settings, measured in one run.

Two private brokers (this machine's Mosquitto build, anonymous, no dynamic security, so that
only persistence differs) take the same backlog of single-reading QoS 1 messages for an
offline persistent session, which then drains it:

- durable: the product's settings (deploy/mosquitto/mosquitto.conf): the SQLite persistence
  plugin, committing at every turn of the broker's loop;
- built-in: the earlier settings: the built-in persistence file, saved every 60 s and on
  shutdown (loses what it acknowledged since the last save on a kill -9, and the shared
  subscription over any restart);
- durable+tls: the durable settings with the publisher on a TLS listener, as devices are
  (TLS 1.3, a private CA's certificate; wastepilot/localservices/certs.py), and the drain on
  the plain one, as ingest is: what TLS at the device edge costs the broker.

    .venv/bin/python bench/broker.py [--messages 60000] [--rounds 3]

prints publish (PUBACK) and drain rates for each, medians of the rounds, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.ingest import RawSubscriber, broker_ceiling, publish_backlog, single_messages
from wastepilot.localservices import certs, install
from wastepilot.localservices.state import port_open

TUNING = """
max_queued_messages 2000000
max_queued_bytes 0
max_inflight_messages 5000
max_packet_size 2097152
set_tcp_nodelay true
log_dest none
"""

VARIANTS = {
    "durable": "persistence false\npersistence_location {data}/\nplugin {sqlite}\n"
    "plugin_opt_flush_period 0\nplugin_opt_sync normal\n",
    "built-in": "persistence true\npersistence_location {data}/\nautosave_interval 60\n",
    "durable+tls": "persistence false\npersistence_location {data}/\nplugin {sqlite}\n"
    "plugin_opt_flush_period 0\nplugin_opt_sync normal\n"
    "listener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\ntls_version tlsv1.2\n",
}


def start(variant: str, folder: Path, port: int, tls_port: int = 0) -> subprocess.Popen[bytes]:
    data = folder / variant
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.chown(data, "mosquitto", "mosquitto")
    conf = folder / f"{variant}.conf"
    sqlite = install.mosquitto_plugin("mosquitto_persist_sqlite.so")
    tls = folder / "tls"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        + VARIANTS[variant].format(
            data=data,
            sqlite=sqlite,
            tls_port=tls_port,
            cert=tls / "broker.pem",
            key=tls / "broker-key.pem",
        )
        + TUNING
    )
    proc = subprocess.Popen([install.mosquitto_binary(), "-c", str(conf)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        port_open("127.0.0.1", port) and (not tls_port or port_open("127.0.0.1", tls_port))
    ):
        time.sleep(0.05)
    return proc


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, n: int, pid: int, publish_to: str = "") -> tuple[float, float, float]:
    """(publish rate, drain rate, the broker's CPU µs a message over both); the publisher on
    ``publish_to`` when given (the TLS listener), else on the plain one, as the drain."""
    url = f"mqtt://127.0.0.1:{port}"
    cpu0 = cpu_s(pid)
    prefix = f"bench-{uuid.uuid4().hex[:6]}/v1"
    sub = RawSubscriber(url, f"raw-{uuid.uuid4().hex[:6]}",
                        f"$share/raw/{prefix}/devices/+/readings")  # fmt: skip
    sub.start()
    sub.stop()
    publish = publish_backlog(publish_to or url, prefix, single_messages(prefix, n))
    drain = broker_ceiling(sub, n)
    return publish, drain, (cpu_s(pid) - cpu0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {
        v: {"publish": [], "drain": [], "cpu_us": []} for v in VARIANTS
    }
    with tempfile.TemporaryDirectory(prefix="wastepilot-broker-bench-") as tmp:
        folder = Path(tmp)
        made = certs.issue_server(folder / "tls", ["localhost", "127.0.0.1"])
        for path in (folder, folder / "tls", made.key, made.cert):
            shutil.chown(path, "mosquitto", "mosquitto")
        for r in range(args.rounds):
            for i, variant in enumerate(VARIANTS if r % 2 == 0 else reversed(VARIANTS)):
                port, tls_port = 52900 + 2 * i, 52901 + 2 * i
                tls = variant.endswith("+tls")
                proc = start(variant, folder, port, tls_port if tls else 0)
                to = f"mqtts://localhost:{tls_port}?ca={made.ca}" if tls else ""
                try:
                    pub, drain, cpu = measure(port, args.messages, proc.pid, to)
                finally:
                    proc.terminate()
                    proc.wait(30)
                results[variant]["publish"].append(pub)
                results[variant]["drain"].append(drain)
                results[variant]["cpu_us"].append(cpu)
                print(f"round {r + 1} {variant:<9} publish {pub:>8,.0f}/s  drain {drain:>8,.0f}/s"
                      f"  broker CPU {cpu:.1f} us a message")  # fmt: skip
    med = {v: {k: statistics.median(x) for k, x in d.items()} for v, d in results.items()}
    for v, d in med.items():
        print(f"{v:<9} median: publish {d['publish']:,.0f} msg/s, drain {d['drain']:,.0f} msg/s, "
              f"broker CPU {d['cpu_us']:.1f} us a message")  # fmt: skip
    keys = ("publish", "drain", "cpu_us")
    ratio = {k: med["durable"][k] / med["built-in"][k] for k in keys}
    print(f"durable / built-in: publish {ratio['publish']:.2f}, drain {ratio['drain']:.2f}, "
          f"broker CPU {ratio['cpu_us']:.2f}")  # fmt: skip
    tls_ratio = {k: med["durable+tls"][k] / med["durable"][k] for k in keys}
    print(f"devices on TLS / plaintext: publish {tls_ratio['publish']:.2f}, drain "
          f"{tls_ratio['drain']:.2f}, broker CPU a message {tls_ratio['cpu_us']:.2f}")  # fmt: skip
    print(json.dumps({"medians": med, "ratio": ratio, "tls_ratio": tls_ratio,
                      "messages": args.messages}))  # fmt: skip


if __name__ == "__main__":
    main()
