"""The pages' header, service navigation and footer are GOV.UK Frontend's components as the
installed release writes them (its own fixtures.json, not a copy kept here): every element of
the component's example markup is in ours, with the same classes and ARIA attributes; the crown
and the Crown-copyright/OGL parts, which are for GOV.UK's own services, are not (pure: the
template is rendered without a server)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from api.web.common import templates
from core.auth import Principal

COMPONENTS = (
    Path(__file__).resolve().parents[2]
    / "api/web/node_modules/govuk-frontend/dist/govuk/components"
)
KEPT = (
    "class",
    "role",
    "aria-label",
    "aria-controls",
    "aria-hidden",
    "aria-current",
    "hidden",
    "data-module",
)


class Skeleton(HTMLParser):
    """Each element as the path of (tag, classes, ARIA) from the root: the markup without text."""

    VOID = frozenset({"input", "br", "img", "meta", "link", "path", "circle"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.paths: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = ".".join(sorted((a.get("class") or "").split()))
        aria = ",".join(f"{k}={a[k]}" for k in KEPT[1:] if k in a and k != "aria-label")
        node = f"{tag}.{classes}[{aria}]"
        self.paths.add(" > ".join([*self.stack, node]))
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


def skeleton(html: str) -> set[str]:
    p = Skeleton()
    p.feed(html)
    return p.paths


def fixture(component: str, name: str) -> str:
    found = json.loads((COMPONENTS / component / "fixtures.json").read_text())["fixtures"]
    return next(f["html"] for f in found if f["name"] == name)


def rendered(user: Any | None, path: str = "/analysts") -> str:
    request = SimpleNamespace(url=SimpleNamespace(path=path))
    return templates.get_template("error.html").render(
        request=request, user=user, csrf="t", errors={}, title="T", message="M"
    )


def part(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i : html.index(end, i) + len(end)]


@pytest.fixture
def analyst() -> Principal:
    return Principal(1, "ana", "analyst", "all", None)


def test_the_header_is_the_generic_header_with_the_service_name(analyst: Principal) -> None:
    page = rendered(analyst)
    start = page.index('<div class="govuk-generic-header">')
    ours = skeleton(page[start : page.index("<section", start)])
    theirs = skeleton(fixture("generic-header", "default"))
    assert theirs <= ours, theirs - ours
    assert "govuk-header__crown" not in page
    assert "govuk-logo" not in page
    assert ">\n          wastepilot\n        </a>" in page


def test_the_service_navigation_is_the_component_with_its_current_item() -> None:
    admin = Principal(2, "adm", "admin", "all", None)  # three items: one current, two not
    theirs = skeleton(fixture("service-navigation", "with service name and navigation"))
    for path, example in [
        ("/analysts", "with navigation with a current item"),  # aria-current="page"
        ("/analysts/households/SIM-000001", "with navigation with an active item"),  # "true"
    ]:
        ours = skeleton(part(rendered(admin, path), '<section aria-label="Service', "</section>"))
        if "households" in path:  # that example's second item is active, not current
            assert theirs <= ours, theirs - ours
        # (without a service name the component's root is a <div>; with one, a <section>)
        current = {
            p.replace("div.govuk-service-navigation[", "section.govuk-service-navigation[", 1)
            for p in skeleton(fixture("service-navigation", example))
        }
        assert current <= ours, (path, current - ours)
    # signed out: the service name, no menu
    signed_out = skeleton(part(rendered(None), "<section", "</section>"))
    assert skeleton(fixture("service-navigation", "with service link")) <= signed_out


def test_the_footer_is_the_component_without_the_crown(analyst: Principal) -> None:
    page = rendered(analyst)
    ours = skeleton(part(page, '<div class="govuk-footer">', "</footer>"))
    # left out: the crown, the OGL licence, the Crown copyright item, the example's own link
    theirs = {
        p
        for p in skeleton(fixture("footer", "with meta links and meta content"))
        if not any(gov in p for gov in ("crown", "licence", "copyright", "svg", "custom[] > a"))
        and not p.endswith("> div.govuk-footer__meta-item[]")
    }
    assert theirs <= ours, theirs - ours
    assert "crown" not in part(page, '<div class="govuk-footer">', "</footer>").lower()
    assert "Open Government Licence" not in page
