"""Regenerate the settings table in README.md and .env.example from the Settings class.

Run after adding or changing a setting: `.venv/bin/python scripts/settings_docs.py`.
tests/test_docs.py checks both list every setting.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402

HEADER = """# wastepilot settings: every variable, with its default. Copy to .env to change them;
# the real environment wins over .env. Leave DATABASE_URL and MQTT_URL unset to use the local
# services of `wastepilot services up`.
"""


def _default(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return json.dumps(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    return str(value)


def main() -> None:
    env_lines = [HEADER]
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name == "local_services":  # filled by its own settings source, not the environment
            continue
        var = f"WASTEPILOT_{name.upper()}"
        d = _default(field.get_default(call_default_factory=True))
        desc = field.description or ""
        env_lines.append(f"# {desc}\n" + (f"{var}={d}\n" if d else f"# {var}=\n"))
        cell = desc.replace("|", "\\|")
        rows.append(f"| `{var}` | `{d or '(unset)'}` | {cell} |")
    (ROOT / ".env.example").write_text("\n".join(env_lines))
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(rows) + "\n"
    new = re.sub(r"\| variable \| default \| meaning \|\n(\|.*\|\n)+", lambda _m: table, readme)
    (ROOT / "README.md").write_text(new)


if __name__ == "__main__":
    main()
