"""Errors become status codes by their kind, never by their text (issue 29): every request below
gets the same status code when every domain error's message is renamed to the same words."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import KINDS, status_of
from core import errors
from core.errors import WastepilotError
from core.settings import Settings
from tests.helpers import PASSWORD, bearer, person, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def _requests(admin: TestClient, officer: TestClient) -> list[tuple[str, Callable[[], Any]]]:
    u = uuid.uuid4().hex[:6]
    w = officer.post("/api/v1/workshops", json=workshop_body()).json()
    officer.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(1))
    admin.post(
        "/api/v1/users", json={"username": f"k-{u}", "role": "analyst", "password": PASSWORD}
    )
    return [
        ("user exists", lambda: admin.post(
            "/api/v1/users", json={"username": f"k-{u}", "role": "analyst", "password": PASSWORD})),
        ("weak password", lambda: admin.post(
            "/api/v1/users", json={"username": f"w-{u}", "role": "analyst", "password": "password1234"})),
        ("no such user", lambda: admin.post(f"/api/v1/users/nobody-{u}/revoke")),
        ("token for nobody", lambda: admin.post("/api/v1/tokens", json={"username": f"nobody-{u}"})),
        ("no such token", lambda: admin.delete("/api/v1/tokens/999999999")),
        ("no such device", lambda: admin.post(f"/api/v1/devices/NOPE-{u.upper()}/decommission")),
        ("no such household", lambda: admin.post(f"/api/v1/households/NOPE-{u}/erasure")),
        ("registered twice", lambda: officer.post(
            f"/api/v1/workshops/{w['id']}/registrations", json=person(1))),
        ("no such workshop", lambda: officer.get("/api/v1/workshops/999999999")),
        ("no such registration", lambda: officer.patch(
            "/api/v1/registrations/999999999", json={"status": "attended"})),
        ("unknown council", lambda: officer.post(
            f"/api/v1/workshops/{w['id']}/registrations", json=person(2, council="E99999999"))),
    ]  # fmt: skip


def test_status_codes_do_not_depend_on_the_words_of_an_error(
    bids_db: Conn, db_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(database_url=db_url, db_pool_max=4))
    with (
        TestClient(app, headers=bearer(tokens["admin"])) as admin,
        TestClient(app, headers=bearer(tokens["officer"])) as officer,
    ):
        before = {name: call().status_code for name, call in _requests(admin, officer)}
        monkeypatch.setattr(WastepilotError, "__str__", lambda self: "something went wrong")
        after = {name: call().status_code for name, call in _requests(admin, officer)}
    assert after == before
    assert set(before.values()) == {404, 409, 422}, before  # each kind a person can cause here
    assert before["user exists"] == 409 and before["no such user"] == 404
    assert before["weak password"] == 422 and before["registered twice"] == 409


def test_every_error_a_person_can_cause_has_one_kind_and_the_kinds_one_status_each() -> None:
    """Each class in core/errors.py that callers raise for a person's request is of exactly one
    kind; the table in api/errors.py gives every kind a status."""
    kinds = [cls for cls, _ in KINDS]
    assert len({code for _, code in KINDS}) == len(KINDS)
    domain = [
        c for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, WastepilotError) and c not in kinds
        and c is not WastepilotError
    ]  # fmt: skip
    for cls in domain:
        of = [k for k in kinds if issubclass(cls, k)]
        assert len(of) <= 1, (cls, of)
    for name in ("RegistryNotFound", "RegistryConflict", "RegistryInvalid", "AuthNotFound",
                 "AuthConflict", "AuthInvalid", "BrokerAdminError", "SheetError"):  # fmt: skip
        assert status_of(getattr(errors, name)("x")) is not None, name
    assert status_of(errors.ConfigError("x")) is None  # a defect, not a person's error: a 500
