"""The deployment files kept honest without a Docker engine (first checks; see issue 9)."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings
from wastepilot.broker import render_acl

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


def test_deploy_acl_is_the_rendered_template() -> None:
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert acl.split("\n", 1)[1] == render_acl("wastepilot/v1", local=False)


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
