"""The project's exception tree, kept in one place. No HTTP here: the API maps the *kinds* to
status codes once (api/errors.py), so no caller ever reads an error's message to decide what it
was.

Every error a person can cause belongs to one **kind** — what went wrong, whoever raised it:

WastepilotError
 ├── NotFound      what the request names does not exist          (API: 404)
 ├── Conflict      it clashes with what is recorded               (API: 409)
 ├── Invalid       the request itself is wrong                    (API: 422)
 │    └── SheetError  a sheet as a whole cannot be read (format, header, size)
 ├── Forbidden     the caller may not do this                     (API: 403)
 └── Unavailable   a service it needs did not answer; try later   (API: 503)

and to one **domain** — where it was raised — for callers that handle a domain's failures:

WastepilotError
 ├── ConfigError          settings are missing or unsafe for the environment
 ├── ServiceError         a local service (PostgreSQL, Mosquitto) could not be installed or started
 ├── MigrationError       a migration failed or the migration history does not match the files
 ├── RegistryError        a household or device registration was refused
 ├── BrokerAdminError     the broker refused or did not answer an identity change (Unavailable;
 │                        the broker's own error text in ``broker_error``)
 ├── AuthError            a user or token request that cannot be carried out
 ├── WireError            a payload, or one element of it, broke the wire contract (ValueError)
 ├── DatabaseUnavailable  ingest cannot reach the database; the batch is retried (Unavailable)
 ├── ReplayConflict       another dead-letter replay ran at the same time (Conflict)
 └── PublishError         the broker refused a publisher's connection or message

A domain error of a kind is a class of both, declared here (``RegistryConflict`` is a
``RegistryError`` and a ``Conflict``). A new kind goes here and in api/errors.py's table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.wire import Reason


class WastepilotError(Exception):
    """Base of every error this project raises on purpose. ``field`` names the input the error
    is about, when it is about one (a form shows the message beside that field)."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


# --- kinds ---------------------------------------------------------------------------------


class NotFound(WastepilotError):
    """What the request names does not exist."""


class Conflict(WastepilotError):
    """The request clashes with what is recorded (exists already, full, cancelled, last admin)."""


class Invalid(WastepilotError):
    """The request itself is wrong (a malformed id, an unknown council code, a weak password)."""


class SheetError(Invalid):
    """The sheet as a whole cannot be read (format, header, size)."""


class Forbidden(WastepilotError):
    """The caller may not do this."""


class Unavailable(WastepilotError):
    """A service the request needs did not answer; it may work later."""


# --- domains --------------------------------------------------------------------------------


class ConfigError(WastepilotError):
    """Settings are missing, malformed or unsafe for the environment."""


class ServiceError(WastepilotError):
    """A local service could not be installed, configured or started."""


class MigrationError(WastepilotError):
    """A migration failed, or the recorded history disagrees with the files."""


class RegistryError(WastepilotError):
    """A registry change (household, device) was refused."""


class RegistryNotFound(RegistryError, NotFound):
    """No such (active) device or household."""


class RegistryConflict(RegistryError, Conflict):
    """Registered already, erased, or registered by someone else at the same moment."""


class RegistryInvalid(RegistryError, Invalid):
    """A malformed id, a repeated one, or a value the registry's rules refuse."""


class BrokerAdminError(Unavailable):
    """The broker's dynamic-security plugin refused, or did not answer, an identity change.
    ``broker_error`` is the plugin's own error text ("Client not found", ...), or None when it
    did not answer: callers that expect a refusal compare that field, never the message."""

    def __init__(self, message: str, *, broker_error: str | None = None) -> None:
        super().__init__(message)
        self.broker_error = broker_error


class AuthError(WastepilotError):
    """A user or token request that cannot be carried out."""


class AuthNotFound(AuthError, NotFound):
    """No such active user or token."""


class AuthConflict(AuthError, Conflict):
    """The user exists already, or the change would leave no admin."""


class AuthInvalid(AuthError, Invalid):
    """A malformed username, an unknown role or scope, a weak password."""


class WireError(WastepilotError, ValueError):
    """A payload, or one element of it, broke the contract (a ValueError, so that pydantic
    validators may raise it)."""

    def __init__(self, reason: Reason, detail: str, index: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.index = index


class DatabaseUnavailable(Unavailable):
    """The database could not be reached or dropped the connection; retry later."""


class ReplayConflict(Conflict):
    """Another replay ran at the same time; nothing of this one was kept."""


class PublishError(WastepilotError):
    """The broker refused the connection or a message could not be handed to paho."""
