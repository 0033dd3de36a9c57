"""Broker addresses as URLs: ``mqtt://user:password@host:port`` or ``mqtts://`` for TLS;
``mqtts://...?ca=/path/ca.pem`` trusts that CA (a private one) instead of the system's."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class MqttAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    ca_file: str | None = None

    def url(self) -> str:
        """The URL again, credentials included (for `services status --json`)."""
        scheme = "mqtts" if self.tls else "mqtt"
        cred = ""
        if self.username is not None:
            cred = quote(self.username, safe="")
            if self.password is not None:
                cred += ":" + quote(self.password, safe="")
            cred += "@"
        query = f"?ca={quote(self.ca_file)}" if self.ca_file else ""
        return f"{scheme}://{cred}{self.host}:{self.port}{query}"

    def redacted(self) -> str:
        """The URL without the password, for logs."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttAddress:
    """Parse a broker URL, refusing anything that is not mqtt:// or mqtts://."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"broker URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError("broker URL has no host")
    tls = parts.scheme == "mqtts"
    ca = parse_qs(parts.query).get("ca")
    if ca and not tls:
        raise ConfigError("a CA file (?ca=) only makes sense with mqtts://")
    return MqttAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        ca_file=ca[0] if ca else None,
    )
