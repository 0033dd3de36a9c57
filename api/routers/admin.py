"""Administration: people, their tokens, households and devices (with broker credentials)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Request, Response
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api import queries as admin_queries
from api import signin
from api.auth import Caller, csrf_token, end_session, start_session
from api.deps import AppSettings, AuditedConn, Conn, with_connection
from api.keepers import OTHERS
from core import audit, auth, devices
from core.devices import NEW_DEVICE_ID_PATTERN
from core.registry import Device
from core.settings import Settings
from core.topics import DEVICE_ID_PATTERN, KIND_FAMILY, maker_root

router = APIRouter(prefix="/api/v1", tags=["admin"])
public = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])

Ref = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]
UserName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(Body):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
    role: Literal["analyst", "officer", "admin"]
    password: Annotated[str, StringConstraints(min_length=12, max_length=200)]


class TokenIn(Body):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
    scope: Literal["read", "write"] = "write"
    days: float = Field(90, gt=0, le=366)
    name: Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\x00]*$")] = ""


class TokenOut(BaseModel):
    id: int
    token: str = Field(description="Shown once: only its hash is kept")
    scope: str
    days: float


class DeviceIn(Body):
    device_id: Annotated[str, StringConstraints(pattern=NEW_DEVICE_ID_PATTERN)]
    household: Ref
    model: Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9 ._-]*$")] = (
        "unknown"
    )
    cohort: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")] = (
        "default"
    )
    kind: Literal["wastepilot-v1", "shelly-gen2", "tasmota", "wmbus"] = Field(
        "wastepilot-v1",
        description="How it speaks: the v1 contract, or its maker's format (docs/devices/)",
    )


class DeviceOut(BaseModel):
    device_id: str
    household: str
    kind: str = "wastepilot-v1"
    topic_root: str | None = Field(
        None, description="For a maker's kind: the topic prefix to set on the device"
    )
    mqtt_username: str
    mqtt_password: str = Field(description="Shown once: the broker keeps only its hash")


@public.post("/token", response_model=TokenOut, summary="Sign in for a token")
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    scope: Annotated[Literal["read", "write"], Form()] = "write",
) -> TokenOut:
    """Exchange a username and password for a bearer token valid for 12 hours. Ten wrong
    passwords for an account within a minute (or thirty from one address) and further tries
    are answered 429 for the rest of that minute."""
    signin.check_origin(request)
    if await signin.sign_in(request, username, password) is None:
        raise HTTPException(401, "wrong username or password", {"WWW-Authenticate": "Bearer"})
    tid, token = await with_connection(
        request, lambda c: auth.create_token(c, username, scope=scope, days=0.5, name="sign-in")
    )
    return TokenOut(id=tid, token=token, scope=scope, days=0.5)


@public.post("/session", summary="Sign in to the web pages")
async def sign_in_session(
    request: Request,
    response: Response,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> dict[str, str]:
    """Sign in with a cookie session (12 hours) for the web pages. The session cookie is
    HttpOnly and SameSite=Strict; requests that write must send the returned `csrf_token` in
    the `X-CSRF-Token` header. Throttled as the token sign-in is."""
    signin.check_origin(request)
    if await signin.sign_in(request, username, password) is None:
        raise HTTPException(401, "wrong username or password", {"WWW-Authenticate": "Bearer"})
    token = await with_connection(request, lambda c: start_session(c, username, request, response))
    return {"username": username, "csrf_token": csrf_token(token)}


@public.delete("/session", summary="Sign out of the web pages")
def sign_out_session(conn: Conn, request: Request, response: Response) -> dict[str, str]:
    """End the cookie session: its token is revoked and the cookie cleared."""
    end_session(conn, request, response)
    return {"status": "signed out"}


@public.get("/me", summary="Who am I")
def me(caller: Caller) -> dict[str, Any]:
    """The signed-in user's name, role and token scope."""
    return {"username": caller.username, "role": caller.role, "scope": caller.scope}


@router.get("/users", summary="People")
def list_users(conn: Conn) -> list[dict[str, Any]]:
    """Everyone with an account: role, created, revoked, active tokens."""
    cols = ("username", "role", "created_at", "revoked_at", "active_tokens")
    return [dict(zip(cols, r, strict=True)) for r in auth.list_users(conn)]


@router.post("/users", status_code=201, summary="Add a person")
def add_user(body: UserIn, conn: AuditedConn) -> dict[str, Any]:
    """Add a person with a role: analyst, officer or admin. The password is stored as an
    argon2 hash."""
    uid = auth.add_user(conn, body.username, body.role, body.password)
    return {"id": uid, "username": body.username, "role": body.role}


@router.post("/users/{username}/revoke", summary="Revoke a person")
def revoke_user(username: UserName, conn: AuditedConn) -> dict[str, str]:
    """The account and every token of it stop working at once."""
    auth.revoke_user(conn, username)
    return {"username": username, "status": "revoked"}


@router.post("/tokens", response_model=TokenOut, status_code=201, summary="Create a token")
def create_token(body: TokenIn, conn: AuditedConn) -> TokenOut:
    """A bearer token for a user, read-only or read-write, expiring after `days`."""
    tid, token = auth.create_token(
        conn, body.username, scope=body.scope, days=body.days, name=body.name
    )
    return TokenOut(id=tid, token=token, scope=body.scope, days=body.days)


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: AuditedConn
) -> dict[str, Any]:
    """The token stops working at once."""
    auth.revoke_token(conn, token_id)
    return {"id": token_id, "status": "revoked"}


@router.get("/devices", summary="Devices")
def list_devices(conn: Conn) -> list[dict[str, Any]]:
    """Registered devices with their household and status."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(admin_queries.DEVICES).fetchall()


def _broker(settings: Settings) -> str:
    url = settings.broker_admin_url()
    if url is None:
        raise HTTPException(
            503,
            "this API has no broker admin identity (WASTEPILOT_MQTT_ADMIN_URL): device logins "
            "cannot be issued here",
        )
    return url


@router.post("/devices", response_model=DeviceOut, status_code=201, summary="Register a device")
def register_device(body: DeviceIn, conn: AuditedConn, settings: AppSettings) -> DeviceOut:
    """Register a disposer meter in a household (created if new) and issue its broker login:
    username and client id = device id, a random password shown once. The broker lets it
    publish only its own readings and status, and subscribe to nothing. Device ids: upper-case
    letters, digits, - and _ (e.g. FWD-000123)."""
    url = _broker(settings)
    [login] = devices.register(
        conn,
        [Device(body.device_id, body.household, body.model, kind=body.kind)],
        url,
        cohort=body.cohort,
    )
    family = KIND_FAMILY[body.kind]
    return DeviceOut(
        device_id=body.device_id,
        household=body.household,
        kind=body.kind,
        topic_root=maker_root(settings.topic_prefix, family, body.device_id) if family else None,
        mqtt_username=login.device_id,
        mqtt_password=login.password,
    )


@router.post(
    "/devices/{device_id}/password", response_model=DeviceOut, summary="Reissue a password"
)
def reissue_password(device_id: DeviceId, conn: AuditedConn, settings: AppSettings) -> DeviceOut:
    """A new broker password for a device (shown once); its live connection is dropped, so only
    the new password works from now on."""
    url = _broker(settings)
    login = devices.reissue(conn, device_id, url)
    audit.record(conn, "devices", device_id, "update", {"broker_password": "reissued"})
    row = conn.execute(admin_queries.DEVICE_HOUSEHOLD, (device_id,)).fetchone()
    return DeviceOut(
        device_id=device_id,
        household=str(row[0]) if row else "",
        mqtt_username=device_id,
        mqtt_password=login.password,
    )


@router.post("/devices/{device_id}/decommission", summary="Decommission a device")
def decommission_device(
    device_id: DeviceId, conn: AuditedConn, settings: AppSettings
) -> dict[str, Any]:
    """The device's broker login is removed (its live connection is dropped at once) and ingest
    refuses its readings from now on; its stored readings stay."""
    devices.decommission(conn, device_id, _broker(settings))
    return {"device_id": device_id, "status": "decommissioned"}


class HouseholdErasureOut(BaseModel):
    household: str
    devices: int
    readings: int
    dead_letters: int


@router.post(
    "/households/{ref}/erasure",
    response_model=HouseholdErasureOut,
    summary="Erase a household that withdraws",
)
def erase_household(ref: Ref, conn: AuditedConn, settings: AppSettings) -> HouseholdErasureOut:
    """A household leaves the pilot and withdraws its data: its devices' broker logins, raw
    readings, statuses, dead letters, rollups and anomalies, the devices and the household are
    deleted, and weekly reports no longer name it. The pilot's and cohorts' past totals stay
    as computed. Irreversible."""
    done = devices.erase_household(
        conn, ref, settings.broker_admin_url(), prefix=settings.topic_prefix, others=OTHERS
    )
    return HouseholdErasureOut(
        household=done.household,
        devices=done.devices,
        readings=done.readings,
        dead_letters=done.dead_letters,
    )
