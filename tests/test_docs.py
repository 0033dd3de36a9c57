"""Docs that must match the code: every setting in .env.example and docs/configuration.md, and
back; the README and docs name only files and settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# local_services is filled by the local services' settings source, not from the environment
FIELDS = {f"WASTEPILOT_{name.upper()}" for name in Settings.model_fields} - {
    "WASTEPILOT_LOCAL_SERVICES"
}


def test_env_example_lists_every_setting_and_no_other() -> None:
    text = (ROOT / ".env.example").read_text()
    assert set(re.findall(r"^#? ?(WASTEPILOT_[A-Z0-9_]+)=", text, flags=re.M)) == FIELDS


def test_the_configuration_page_documents_every_setting_and_no_other() -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    assert set(re.findall(r"`(WASTEPILOT_[A-Z0-9_]+)`", text)) == FIELDS


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_name_only_settings_that_exist(doc: Path) -> None:
    named = set(re.findall(r"\b(WASTEPILOT_[A-Z0-9_]*[A-Z0-9])\b", doc.read_text()))
    assert named - FIELDS == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_name_only_files_that_exist(doc: Path) -> None:
    """Every `folder/file.ext` path in backticks, and every relative link, exists."""
    text = doc.read_text()
    paths = set(
        re.findall(r"`((?:[a-z_]+/)+[a-z_0-9.-]+\.(?:py|sql|md|conf|yml|toml|html))`", text)
    )
    links = {
        str((doc.parent / link).resolve().relative_to(ROOT))
        for link in re.findall(r"\]\(((?!https?:)[^)#]+)", text)
    }
    missing = sorted(p for p in paths | links if not (ROOT / p).exists())
    assert missing == []


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci/run").read_text()
    assert "scripts/test" in ci
    assert "scripts/test" in (ROOT / "README.md").read_text()
