"""Imports only go downwards: core <- domains (ingest, simulator, analytics, bids) <- api <-
wastepilot; the domains never import each other (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = {"ingest", "simulator", "analytics", "bids"}
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    **{d: {"core", d} for d in DOMAINS},
    "api": {"core", "api", *DOMAINS},
    "wastepilot": {"core", "api", "wastepilot", *DOMAINS},
}
PACKAGES = sorted(ALLOWED)


def imported_packages(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package])
        for f in (ROOT / package).rglob("*.py")
    }
    assert {f: w for f, w in wrong.items() if w} == {}


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from api.app import create_app\nimport ingest.worker\nfrom . import y\n")
    assert imported_packages(bad) == {"api", "ingest"}


def imported_queries(path: Path) -> set[str]:
    """The packages whose queries module ``path`` imports (``from X import queries``,
    ``from X.queries import ...``, ``import X.queries``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names if a.name.endswith(".queries")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module.endswith(".queries") or any(a.name == "queries" for a in node.names))
        ):
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_runs_only_its_own_sql(package: str) -> None:
    """Each package's queries.py is its own: others call its functions (issue 29)."""
    wrong = {
        str(f.relative_to(ROOT)): sorted(imported_queries(f) - {package})
        for f in (ROOT / package).rglob("*.py")
    }
    assert {f: w for f, w in wrong.items() if w} == {}


def test_the_sql_check_sees_another_packages_queries(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text(
        "from analytics import queries\nfrom bids.queries import X\nimport core.queries\n"
    )
    assert imported_queries(bad) == {"analytics", "bids", "core"}
