"""The deployment files kept honest without a Docker engine (first checks; see issue 9)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.db import SERVER_PRIVACY_SETTINGS
from core.settings import Settings
from wastepilot.localservices import install

ROOT = Path(__file__).resolve().parent.parent


def test_compose_sets_only_real_settings() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(WASTEPILOT_[A-Z0-9_]+)\b", text))
    fields = {f"WASTEPILOT_{n.upper()}" for n in Settings.model_fields}
    assert used, "compose sets no WASTEPILOT_ variables"
    assert used <= fields, used - fields


def test_compose_images_are_pinned() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    images = re.findall(r"^\s*image:\s*(\S+)", text, flags=re.M)
    for image in images:
        if image.startswith("wastepilot"):
            continue
        assert re.search(r":\d+\.\d+", image), f"{image} is not pinned to a version"


def test_compose_runs_the_local_broker_version_with_the_same_plugins() -> None:
    """The compose broker is the release the set-up builds, and its configuration loads the
    plugins the set-up builds, from where the image has them (/usr/lib)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    version = ".".join(map(str, install.MOSQUITTO_MIN))
    assert compose["services"]["mosquitto"]["image"] == f"eclipse-mosquitto:{version}-alpine"
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    plugins = re.findall(r"^plugin (\S+)$", conf, flags=re.M)
    assert sorted(plugins) == sorted(f"/usr/lib/{n}" for n in install.MOSQUITTO_PLUGINS.values())
    assert re.search(r"^persistence false$", conf, flags=re.M)
    assert re.search(r"^plugin_opt_flush_period 0$", conf, flags=re.M)
    assert not re.search(r"^(password_file|acl_file) ", conf, flags=re.M)


def test_compose_file_validates_against_the_compose_specification() -> None:
    import shutil
    import subprocess
    import sys

    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    out = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_database_keeps_personal_data_out_of_its_log() -> None:
    """The same server settings as the local cluster's (core/db.py)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["timescaledb"]["command"]
    given = dict(a.split("=", 1) for a in command[2::2])
    assert command[0] == "postgres" and set(command[1::2]) == {"-c"}
    assert given == SERVER_PRIVACY_SETTINGS
