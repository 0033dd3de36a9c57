"""A device's life in the pilot: registered with its broker login, its password reissued,
decommissioned. The registry (database) and the broker's identities change together: a
registration whose transaction fails leaves no login, and a broker that refuses leaves no
device.

New device ids follow one pattern, upper-case letters, digits, ``-`` and ``_``
(``NEW_DEVICE_ID_PATTERN``, e.g. ``FWD-000123``): the service identities are lower-case
(``wp-ingest``, ``wp-admin``, ...), so a device can never take one's name.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg

from core import keepers
from core import queries as q
from core.brokeradmin import CLIENT_EXISTS, CLIENT_NOT_FOUND, BrokerAdmin, device_command
from core.db import Conn
from core.errors import BrokerAdminError, RegistryConflict, RegistryInvalid, RegistryNotFound
from core.keepers import Keeper
from core.registry import Device, Household, add_devices, add_households, household_exists
from core.topics import V1_KIND, retained_topics

NEW_DEVICE_ID_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,63}$"
_NEW_DEVICE_ID = re.compile(NEW_DEVICE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Login:
    """A device's broker login: shown once, the broker keeps only a hash of the password."""

    device_id: str
    password: str
    kind: str = V1_KIND


def new_password() -> str:
    return secrets.token_urlsafe(24)


def register(
    conn: Conn,
    devices: Sequence[Device],
    broker_url: str | None,
    *,
    cohort: str | Mapping[str, str] = "default",
) -> list[Login]:
    """Register devices (and their new households, in ``cohort``: one name, or one per
    household) with a broker login each, all or none, and commit.

    The logins are made before the database commits; if the broker refuses, nothing is
    committed, and if the commit fails, the logins are removed again. Without a broker URL (a
    broker managed elsewhere) no login is made and none is returned."""
    bad = [d.id for d in devices if not _NEW_DEVICE_ID.match(d.id)]
    if bad:
        raise RegistryInvalid(
            f"device id {bad[0]!r}: 1-64 upper-case letters, digits, - and _, starting with a "
            "letter or digit (e.g. FWD-000123)"
        )
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise RegistryInvalid("a device id appears twice")
    taken = [str(r[0]) for r in conn.execute(q.EXISTING_DEVICES, (ids,))]
    if taken:
        raise RegistryConflict(f"device {taken[0]!r} is registered already")
    erased = [str(r[0]) for r in conn.execute(q.ERASED_DEVICES, (ids,))]
    if erased:
        # ingest drops everything an erased device id sends (its tombstone)
        raise RegistryConflict(
            f"device {erased[0]!r} belonged to an erased household: use a new id"
        )
    refs = sorted({d.household_ref for d in devices})
    cohorts = dict.fromkeys(refs, cohort) if isinstance(cohort, str) else dict(cohort)
    add_households(conn, [Household(ref, cohort=cohorts.get(ref, "default")) for ref in refs])
    if add_devices(conn, devices) != len(devices):
        # another registration of the same id committed meanwhile
        raise RegistryConflict("a device in this registration was registered at the same time")
    if broker_url is None:
        conn.commit()
        return []
    logins = [Login(d.id, new_password(), d.kind) for d in devices]
    made: list[str] = []
    try:
        with BrokerAdmin(broker_url) as broker:
            try:
                for login in logins:
                    _add_login(broker, login)
                    made.append(login.device_id)
                conn.commit()
            except (BrokerAdminError, psycopg.Error):
                for device_id in made:  # all or none, whichever side failed
                    broker.remove(device_id)
                raise
    except BaseException:
        conn.rollback()
        raise
    return logins


def _add_login(broker: BrokerAdmin, login: Login) -> None:
    try:
        broker.add_device(login.device_id, login.password, login.kind)
    except BrokerAdminError as exc:
        if exc.broker_error != CLIENT_EXISTS:
            raise
        # a login left by a registration whose transaction then failed: the database has no
        # such device (checked above), so this registration takes it over with a new password
        broker.remove(login.device_id)
        broker.add_device(login.device_id, login.password, login.kind)


def decommission(conn: Conn, device_id: str, broker_url: str | None) -> None:
    """Take a device out of the pilot and commit: ingest refuses its readings from now on
    (stored ones stay) and its broker login goes, which drops its live connection at once. A
    broker that cannot be reached leaves the device active (try again)."""
    if conn.execute(q.DECOMMISSION_DEVICE, (device_id,)).fetchone() is None:
        raise RegistryNotFound(f"no active device {device_id!r}")
    if broker_url is not None:
        try:
            with BrokerAdmin(broker_url) as broker:
                broker.remove(device_id)
        except BrokerAdminError:
            conn.rollback()
            raise
    conn.commit()


def reissue(conn: Conn, device_id: str, broker_url: str) -> Login:
    """A new password for an active device (a lost or leaked one); its live connection is
    dropped, so only the new password works from now on."""
    row = conn.execute(q.DEVICE_ACTIVE, (device_id,)).fetchone()
    if row is None:
        raise RegistryNotFound(f"no active device {device_id!r}")
    login = Login(device_id, new_password(), str(row[0]))
    with BrokerAdmin(broker_url) as broker:
        try:
            broker.set_password(device_id, login.password)
        except BrokerAdminError as exc:
            if exc.broker_error != CLIENT_NOT_FOUND:
                raise
            # registered before the broker kept logins
            broker.add_device(device_id, login.password, login.kind)
    return login


def issue_logins(broker_url: str, device_ids: Sequence[str]) -> list[Login]:
    """Logins for devices already in the registry (the simulator's own fleet): made where
    missing, a new password where present. Sent in batches, one answer each."""
    logins = [Login(d, new_password()) for d in device_ids]
    with BrokerAdmin(broker_url) as broker:
        for i in range(0, len(logins), 200):
            batch = logins[i : i + 200]
            answers = broker.run(device_command(x.device_id, x.password) for x in batch)
            again = [
                {"command": "setClientPassword", "username": login.device_id,
                 "password": login.password}
                for login, answer in zip(batch, answers, strict=True)
                if answer.get("error") == CLIENT_EXISTS
            ]  # fmt: skip
            failed = [a for a in [*answers, *broker.run(again)] if a.get("error")]
            failed = [a for a in failed if a["error"] != CLIENT_EXISTS]
            if failed:
                raise BrokerAdminError(f"the broker refused a device login: {failed[0]}")
    return logins


@dataclass(frozen=True, slots=True)
class HouseholdErasure:
    household: str
    devices: int
    readings: int
    dead_letters: int


def _forget_on_broker(broker_url: str | None, ids: list[str], prefix: str) -> None:
    """Remove the devices' logins (disconnecting them) and clear their retained messages."""
    if broker_url is None or not ids:
        return
    with BrokerAdmin(broker_url) as broker:
        for device_id in ids:
            broker.remove(device_id)  # False when it had no login: fine
            # what the broker would still hand a new subscriber: retained messages
            for topic in retained_topics(prefix, device_id):
                broker.clear_retained(topic)


def erase_household(
    conn: Conn, ref: str, broker_url: str | None, *, prefix: str, others: tuple[Keeper, ...]
) -> HouseholdErasure:
    """Erase a household that leaves the pilot and withdraws its data, and commit: its devices'
    broker logins, raw readings, status, dead letters (with their payloads), per-device and
    per-household rollups and anomalies, the devices and the household go; weekly reports
    already written name it no more. What stays: the pilot's and cohorts' totals over past
    periods as they were computed (they hold no household), and the audit log's record that the
    devices were registered and deleted (by device id; the household is redacted from it).

    The broker comes first, before the database is touched: the devices' logins go (which
    disconnects them) and their retained messages under ``prefix`` are cleared. Only then are
    the devices tombstoned (``erased_devices``), so ingest waits for the erasure's transaction
    only as long as the database work takes, never for the broker; from then on ingest drops
    whatever of theirs still comes (queued on the broker, in a batch under way). If the broker
    cannot be reached nothing is erased and the call can simply be repeated; if the database
    fails after the broker, repeating it finishes the erasure (a login already gone is fine).
    What each package keeps of the household it erases itself (``others``: every package's
    keeper but the registry's, composed at the top, api/keepers.py); the devices and the
    household go last."""
    ids = [str(r[0]) for r in conn.execute(q.HOUSEHOLD_DEVICES, (ref,))]
    if not ids and not household_exists(conn, ref):
        raise RegistryNotFound(f"no household {ref!r} is registered")
    # (the transaction stays open, holding no lock that ingest waits for: the caller's audit
    # actor, set for this transaction, must name whoever erased)
    _forget_on_broker(broker_url, ids, prefix)
    # a device registered to the household meanwhile is forgotten on the broker too
    now = [str(r[0]) for r in conn.execute(q.HOUSEHOLD_DEVICES, (ref,))]
    _forget_on_broker(broker_url, [i for i in now if i not in ids], prefix)
    ids = now
    conn.execute(q.ERASE_TOMBSTONES, (ids,))  # ingest stores nothing of them from now on
    done = keepers.erase_household((*others, KEEPER), conn, ref, ids)
    conn.commit()
    return HouseholdErasure(ref, len(ids), done.get("readings", 0), done.get("dead_letters", 0))


def _erase_registry(conn: Conn, ref: str, _ids: list[str]) -> dict[str, int]:
    done = {}
    for statement, table in zip(q.ERASE_REGISTRY, ("devices", "households"), strict=True):
        done[table] = conn.execute(statement, {"ref": ref}).rowcount
    return done


# what the registry keeps (core/keepers.py): households and their devices, erased last
KEEPER = Keeper(
    "core",
    household=("households", "devices"),
    other=("job_runs", "sign_in_attempts"),
    erase_household=_erase_registry,
    kept={
        "erased_devices": "the tombstone: ingest refuses an erased device id for ever",
        "audit_log": "append-only: the devices' registration and deletion by id, the household "
        "redacted from its rows",
    },
)
