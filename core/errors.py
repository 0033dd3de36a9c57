"""The project's exception tree, kept in one place. No HTTP here: the API maps these to status
codes once (api/errors.py).

WastepilotError
 ├── ConfigError          settings are missing or unsafe for the environment
 ├── ServiceError         a local service (PostgreSQL, Mosquitto) could not be installed or started
 ├── MigrationError       a migration failed or the migration history does not match the files
 ├── RegistryError        a household or device registration was refused
 ├── BrokerAdminError     the broker refused or did not answer an identity change
 ├── AuthError            a user or token request that cannot be carried out
 ├── WireError            a payload, or one element of it, broke the wire contract (ValueError)
 ├── DatabaseUnavailable  ingest cannot reach the database; the batch is retried
 ├── ReplayConflict       another dead-letter replay ran at the same time
 ├── PublishError         the broker refused a publisher's connection or message
 └── BidSupportError      a bid-support request that cannot be carried out
      ├── NotFound        the workshop, council, registration or bid does not exist
      ├── Conflict        the request clashes with what is recorded (full, duplicate, cancelled)
      └── Invalid         the request itself is wrong (unknown council code, bad sheet)
           └── SheetError the sheet as a whole cannot be read (format, header, size)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.wire import Reason


class WastepilotError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(WastepilotError):
    """Settings are missing, malformed or unsafe for the environment."""


class ServiceError(WastepilotError):
    """A local service could not be installed, configured or started."""


class MigrationError(WastepilotError):
    """A migration failed, or the recorded history disagrees with the files."""


class RegistryError(WastepilotError):
    """A registry change (household, device) was refused."""


class BrokerAdminError(WastepilotError):
    """The broker's dynamic-security plugin refused, or did not answer, an identity change."""


class AuthError(WastepilotError):
    """A user or token request that cannot be carried out (unknown user, weak password ...)."""


class WireError(WastepilotError, ValueError):
    """A payload, or one element of it, broke the contract (a ValueError, so that pydantic
    validators may raise it)."""

    def __init__(self, reason: Reason, detail: str, index: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.index = index


class DatabaseUnavailable(WastepilotError):
    """The database could not be reached or dropped the connection; retry later."""


class ReplayConflict(WastepilotError):
    """Another replay ran at the same time; nothing of this one was kept."""


class PublishError(WastepilotError):
    """The broker refused the connection or a message could not be handed to paho."""


class BidSupportError(WastepilotError):
    """A bid-support request that cannot be carried out; the message tells the officer why."""


class NotFound(BidSupportError):
    """The workshop, council, registration or bid does not exist."""


class Conflict(BidSupportError):
    """The request clashes with what is recorded (full, duplicate, cancelled)."""


class Invalid(BidSupportError):
    """The request itself is wrong (unknown council code, bad value)."""


class SheetError(Invalid):
    """The sheet as a whole cannot be read (format, header, size)."""
