"""The project's exception tree, kept in one place.

WastepilotError
 ├── ConfigError          settings are missing or unsafe for the environment
 ├── ServiceError         a local service (PostgreSQL, Mosquitto) could not be installed or started
 ├── MigrationError       a migration failed or the migration history does not match the files
 ├── RegistryError        a household or device registration was refused
 └── BrokerAdminError     the broker refused or did not answer an identity change
"""


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
