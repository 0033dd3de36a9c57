"""What the local services share: the state folder's paths, identities and secrets, and small
process helpers (run as a service user, wait for a port)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from core.brokeradmin import SERVICE_USERS
from core.errors import ServiceError
from core.settings import LOCAL_SERVICES_KEY, Settings, register_source

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
DB_NAME = "wastepilot"
DB_ROLE = "wastepilot"  # the schema's owner: migrations (and, locally, test databases)
# the services' login: no superuser, no DDL, only the DML rights of the group role
# wastepilot_app that migrations/017_least_privilege.sql grants (docs/security.md)
SERVICE_ROLE = "wastepilot_service"
APP_GROUP = "wastepilot_app"
# Local broker identities: role in the code -> MQTT username.
# the broker's service identities, by role
MQTT_USERS = SERVICE_USERS
# Tests publish under their own prefixes below this root, with the wp-test identity.
TEST_TOPIC_ROOT = "wastepilot-test"


@dataclass(frozen=True, slots=True)
class Paths:
    state: Path
    pg: Path
    mqtt: Path

    @property
    def pg_data(self) -> Path:
        return self.pg / "data"

    @property
    def pg_socket(self) -> Path:
        return self.pg / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg / "postgresql.log"

    @property
    def mqtt_conf(self) -> Path:
        return self.mqtt / "mosquitto.conf"

    @property
    def mqtt_pid(self) -> Path:
        return self.mqtt / "mosquitto.pid"

    @property
    def mqtt_log(self) -> Path:
        return self.mqtt / "mosquitto.log"


def user_can_reach(user: str, path: Path) -> bool:
    """Whether OS ``user`` can traverse to ``path`` (each parent needs the x bit for others)."""
    if os.geteuid() != 0:
        return True
    proc = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)], check=False, capture_output=True
    )
    return proc.returncode == 0


def paths_for(settings: Settings) -> Paths:
    """Where the services keep their files: under the state folder when the service users can
    reach it, else under /var/lib/wastepilot (a clone under /root is not readable by them)."""
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    reachable = user_can_reach("postgres", state) if has_user("postgres") else True
    if reachable:
        base = state
    else:
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
        base = Path("/var/lib/wastepilot") / digest
        claim(state, base)
        for p in (Path("/var/lib/wastepilot"), base):
            p.chmod(0o755)
    return Paths(state=state, pg=base / "pg", mqtt=base / "mosquitto")


OWNER_FILE = ".base-owner"


def claim(state: Path, base: Path) -> None:
    """A folder under /var/lib/wastepilot belongs to the one state folder it was made for.
    Its name comes from the state folder's path, so a state folder made again at the same path
    (a fresh clone, a test's temporary folder whose name comes round again) would otherwise
    find the last one's database and broker files — whose passwords it does not have ("Not
    authorized"). A token in both says whose it is: a base that belongs to a state folder no
    longer there (its token differs, or the state folder is new and has no identities) is
    removed; one from before the token, beside a state folder with identities, is adopted."""
    import shutil

    mine, theirs = state / OWNER_FILE, base / OWNER_FILE
    token = mine.read_text().strip() if mine.exists() else None
    if base.exists() and any(base.iterdir()):
        owner = theirs.read_text().strip() if theirs.exists() else None
        fresh = token is None and not (state / LOCAL_FILE).exists()
        if fresh or (token is not None and owner is not None and owner != token):
            shutil.rmtree(base)
    if token is None:
        token = secrets.token_hex(8)
        mine.write_text(token)
    base.mkdir(parents=True, exist_ok=True)
    if not theirs.exists() or theirs.read_text().strip() != token:
        theirs.write_text(token)


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def as_user(user: str, cmd: list[str]) -> list[str]:
    """Run as ``user`` when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *cmd]
    return cmd


def chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


# --- identities -----------------------------------------------------------------------------


LOCAL_FILE = "local.json"  # database URL and broker identities; only this module reads it


class LocalServicesSource(PydanticBaseSettingsSource):
    """The settings source of the local services: fills ``Settings.local_services`` from the
    state folder's identities file (nothing in production, nothing before `services up`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        state = self.current_state
        if state.get("env") == "production":
            return {}
        default = Settings.model_fields["state_dir"].default
        path = Path(state.get("state_dir") or default) / LOCAL_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        local = {
            "database_url": data.get("database_url"),
            "database_owner_url": data.get("database_owner_url"),
            "mqtt": data.get("mqtt") or {},
        }
        return {LOCAL_SERVICES_KEY: local}


def use_local_services() -> None:
    """Have Settings find the local services (the CLI, tests and benchmarks call this)."""
    register_source(LocalServicesSource)


def load_identities(paths: Paths) -> dict[str, Any]:
    path = paths.state / LOCAL_FILE
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def save_identities(paths: Paths, data: dict[str, Any]) -> None:
    path = paths.state / LOCAL_FILE
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def local_secrets(paths: Paths) -> dict[str, str]:
    """Generated passwords of the local identities, made once and kept in the state folder."""
    data = load_identities(paths)
    secret: dict[str, str] = dict(data.get("secrets", {}))
    for key in ["db", "db_service", *MQTT_USERS.values()]:
        secret.setdefault(key, secrets.token_urlsafe(18))
    return secret


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def wait_until(ready: Any, seconds: float, what: str, logfile: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    tail = logfile.read_text(errors="replace").splitlines()[-10:] if logfile.exists() else []
    raise ServiceError(f"timed out waiting for {what}; last log lines:\n" + "\n".join(tail))


def free_port() -> int:
    """A TCP port nobody listens on now (for a service started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
