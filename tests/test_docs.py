"""Docs that must match the code: every setting in .env.example and the README, and back."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {f"WASTEPILOT_{name.upper()}" for name in Settings.model_fields}


def test_env_example_lists_every_setting_and_no_other() -> None:
    text = (ROOT / ".env.example").read_text()
    assert set(re.findall(r"^#? ?(WASTEPILOT_[A-Z0-9_]+)=", text, flags=re.M)) == FIELDS


def test_readme_documents_every_setting_and_no_other() -> None:
    text = (ROOT / "README.md").read_text()
    assert set(re.findall(r"`(WASTEPILOT_[A-Z0-9_]+)`", text)) == FIELDS


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci/run").read_text()
    assert "scripts/test" in ci
    assert "scripts/test" in (ROOT / "README.md").read_text()
