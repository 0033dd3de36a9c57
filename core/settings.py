"""One typed settings object, read from ``WASTEPILOT_*`` environment variables (and ``.env``).

Every field is documented in ``.env.example`` and the README; a test keeps the three in step.
When ``database_url`` / ``mqtt_url`` are unset, the local services started by
``wastepilot services up`` are used: a settings source that the top layer registers
(``register_source``; wastepilot/localservices/state.py, the only reader and writer of the state
folder's identities file) fills ``local_services``. Production never uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import ConfigError

Role = Literal["ingest", "simulator", "admin", "test"]
LOCAL_SERVICES_KEY = "__local_services__"  # the key a local-services source fills


class LocalServices(BaseModel):
    """Where the local services of `wastepilot services up` are: the database URL and a broker
    URL per identity (role)."""

    database_url: str | None = None  # None: the database is not a local one
    database_owner_url: str | None = None  # the schema owner's, for migrations only
    mqtt: dict[str, str] = Field(default_factory=dict)


SourceFactory = Callable[[type[BaseSettings]], PydanticBaseSettingsSource]
_EXTRA_SOURCES: list[SourceFactory] = []


def register_source(factory: SourceFactory) -> None:
    """Add a settings source read after the environment and ``.env`` (the CLI, tests and
    benchmarks register the local services' source)."""
    if factory not in _EXTRA_SOURCES:
        _EXTRA_SOURCES.append(factory)
        get_settings.cache_clear()


MIN_CALLBACK_TOKEN = 24  # e.g. `openssl rand -hex 16` (Notify itself asks for 10 or more)


class Settings(BaseSettings):
    """All configuration of every wastepilot process."""

    model_config = SettingsConfigDict(
        env_prefix="WASTEPILOT_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "test", "production"] = Field(
        "development",
        description="development | test | production (production refuses local fallbacks)",
    )
    state_dir: Path = Field(
        Path(".wastepilot"), description="Folder for the local services' data, logs and identities"
    )
    log_level: str = Field("INFO", description="Python logging level")
    log_json: bool = Field(False, description="Log one JSON object per line instead of text")
    clock_at: datetime | None = Field(
        None,
        description="Run as if the clock read this instant when the process started (e.g. "
        "2027-05-30T12:00:00Z; time runs on from there): demos and tests at any date; refused "
        "in production",
    )

    local_services: LocalServices | None = Field(
        None,
        validation_alias=LOCAL_SERVICES_KEY,
        description="Filled by the local services' settings source, not from the environment",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        extra = tuple(factory(settings_cls) for factory in _EXTRA_SOURCES)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings, *extra)

    # --- services -----------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL of the services (API, ingest, scheduler, CLI): a role with "
        "only DML rights (member of wastepilot_app); unset = the local cluster of `services up`",
    )
    database_owner_url: str | None = Field(
        None,
        description="PostgreSQL URL of the schema's owner, used by `wastepilot migrate` only; "
        "unset = the local cluster's owner, or DATABASE_URL when only that is set",
    )
    mqtt_url: str | None = Field(
        None, description="MQTT URL mqtt://user:password@host:port; unset = local broker identity"
    )
    mqtt_admin_url: str | None = Field(
        None,
        description="Broker URL of the admin identity, which manages device logins over the "
        "dynamic-security control topic (API, CLI); unset = the local broker's wp-admin when "
        "MQTT_URL is unset too, else devices cannot be given logins here",
    )
    pg_port: int = Field(55432, description="Port of the local private PostgreSQL cluster")
    pg_standby: bool = Field(
        False,
        description="`services up` also runs a streaming standby of the local cluster whose "
        "confirmation every commit waits for (synchronous replication), and the services' URL "
        "names both (docs/recovery.md)",
    )
    pg_standby_port: int = Field(55433, description="Port of the local cluster's standby")
    db_standby_name: str = Field(
        "wastepilot_standby",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="application_name the synchronous standby streams as (the local one, and "
        "the one `wastepilot db guard` watches)",
    )
    db_standby_grace_s: float = Field(
        10.0,
        gt=0,
        description="How long commits may wait for a lost standby before `wastepilot db guard` "
        "switches synchronous replication off (and alerts); on again when it streams",
    )
    db_guard_metrics_port: int = Field(
        9104, ge=0, description="Port of `wastepilot db guard`'s /metrics and /readyz (0 = none)"
    )
    pg_backups: bool = Field(
        False,
        description="`services up` turns on WAL archiving to the backup repository (pgBackRest) "
        "and the scheduler backs the local database and broker up (docs/recovery.md)",
    )
    backup_dir: Path | None = Field(
        None,
        description="Backup repository of the local services (put it on another disk); unset = "
        "backup/ beside the local clusters",
    )
    backup_retention_full: int = Field(
        2, ge=1, description="Full backups kept (with the WAL and later backups they need)"
    )
    pg_synchronous_commit: Literal["on", "remote_apply"] = Field(
        "on",
        description="What a commit waits for from the standby: on = its disk has the commit "
        "(flush), remote_apply = its queries see it",
    )
    mqtt_port: int = Field(51883, description="Port of the local private Mosquitto broker")
    mqtt_tls_port: int = Field(
        51884,
        ge=0,
        description="Port of the local broker's TLS listener, the one devices (and the local "
        "simulator) use, as in compose (0 = none)",
    )
    mqtt_tls_cert_file: Path | None = Field(
        None,
        description="Certificate (PEM, with its chain) of the local broker's TLS listener; unset "
        "= one for localhost from a local CA in the state folder (tls/ca.pem)",
    )
    mqtt_tls_key_file: Path | None = Field(
        None, description="Private key (PEM) of the local broker's TLS listener"
    )
    migrations_dir: Path | None = Field(
        None, description="Folder of the SQL migrations; unset = migrations/ beside the code"
    )
    db_pool_max: int = Field(8, ge=1, description="Largest size of a process's connection pool")

    # --- MQTT contract ----------------------------------------------------------------------
    topic_prefix: str = Field(
        "wastepilot/v1", description="Root of all topics (tests use their own)"
    )
    pilot_start: datetime = Field(
        datetime(2024, 1, 1, tzinfo=UTC),
        description="Readings stamped before this instant are rejected (ts_before_pilot)",
    )

    # --- ingest -----------------------------------------------------------------------------
    ingest_group: str = Field(
        "ingest",
        description="Shared-subscription group ($share/<group>/...); empty = plain subscription "
        "(one worker only)",
    )
    ingest_client_id: str = Field(
        "wastepilot-ingest-1", description="Stable MQTT client id of an ingest worker (session key)"
    )
    ingest_session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="How long the broker keeps an absent worker's session"
    )
    ingest_receive_maximum: int = Field(
        5000,
        ge=1,
        le=65535,
        description="Unacknowledged messages the broker may send a worker (bounds its memory)",
    )
    ingest_batch_size: int = Field(2000, ge=1, description="Readings per database commit, at most")
    ingest_batch_max_ms: int = Field(
        100, ge=1, description="Longest a received message waits before its batch is written"
    )
    ingest_max_payload_bytes: int = Field(
        256 * 1024, ge=256, description="Larger MQTT payloads are dead-lettered (oversized_payload)"
    )
    ingest_max_readings_per_message: int = Field(
        1000, ge=1, description="Longest array of readings in one message"
    )
    ingest_max_future_s: int = Field(
        300, ge=0, description="Readings stamped further ahead of the ingest clock are rejected"
    )
    ingest_max_run_s: float = Field(600.0, gt=0, description="Upper bound of run_s")
    ingest_max_energy_wh: float = Field(200.0, gt=0, description="Upper bound of energy_wh")
    ingest_max_water_l: float = Field(200.0, gt=0, description="Upper bound of water_l")
    ingest_max_peak_a: float = Field(40.0, gt=0, description="Upper bound of peak_a")
    ingest_device_readings_per_min: int = Field(
        6000,
        ge=1,
        description="New readings one device may store a minute (by arrival); the excess is "
        "refused and counted in one dead letter per batch (reason rate_limited). A flood guard "
        "sized so that a queue drained after an ingest outage is not refused",
    )
    # --- alerts and the outbox (analytics/alerts.py, core/outbox.py) -------------------------
    public_url: str = Field(
        "http://127.0.0.1:8080",
        description="The address people open the pages at (links in e-mails)",
    )
    alerts_rota: list[str] = Field(
        default_factory=list,
        description="E-mail addresses told of a new alert, in turn: the first when it opens, "
        'the next when nobody acknowledges it in time (JSON list: ["a@x.org","b@x.org"])',
    )
    alerts_open_after_min: float = Field(
        30.0, ge=0, description="A device check's finding opens an alert once found this long"
    )
    alerts_resolve_after_min: float = Field(
        60.0,
        ge=0,
        description="An open alert resolves once its check has not found it for this long",
    )
    alerts_escalate_after_h: float = Field(
        4.0, gt=0, description="An alert nobody acknowledges in this time tells the next person"
    )
    mail_provider: Literal["none", "smtp", "notify"] = Field(
        "none",
        description="How the outbox sends: notify (GOV.UK Notify, WASTEPILOT_NOTIFY_API_KEY), "
        "smtp (WASTEPILOT_SMTP_URL), or none (messages stay queued)",
    )
    smtp_url: str | None = Field(
        None,
        description="smtp://[user:password@]host[:port][?starttls=1], or smtps:// for TLS from "
        "the start",
    )
    notify_api_key: SecretStr | None = Field(
        None,
        description="A GOV.UK Notify API key (its name, service id and secret as Notify shows "
        "it): a test key sends nothing, a team key only to the team, a live key to anyone",
    )
    notify_template_id: str | None = Field(
        None,
        description="The Notify e-mail template every message goes through: subject ((subject)), "
        "body ((body)) (docs/operations.md, GOV.UK Notify)",
    )
    notify_base_url: str = Field(
        "https://api.notifications.service.gov.uk", description="GOV.UK Notify's API address"
    )
    notify_callback_token: SecretStr | None = Field(
        None,
        description="The bearer token Notify sends with its delivery receipts to "
        "/api/v1/notify/delivery (24 characters or more; set the same in Notify's callback "
        "settings); unset: receipts are refused and delivery is asked of Notify instead",
    )
    digest_hour: int = Field(
        7,
        ge=0,
        le=23,
        description="The analysts' daily digest is queued from this hour (UK time) each day",
    )
    mail_from: str = Field(
        "Food waste disposer pilot <no-reply@localhost>", description="The From of e-mails"
    )
    outbox_per_minute: int = Field(
        3000, ge=1, description="Messages sent a minute at most (GOV.UK Notify's limit: 3,000)"
    )
    outbox_max_attempts: int = Field(
        10, ge=1, description="A message the provider keeps deferring fails after this many tries"
    )
    # --- uses from metering plugs (ingest/uses.py, docs/devices/) ------------------------------
    uses_threshold_w: float = Field(
        100.0,
        gt=0,
        description="A plug's power at or above this is the disposer running (the simulator's "
        "disposers draw 600-900 W, under 1 W idle)",
    )
    uses_min_on_s: float = Field(
        2.0, ge=0, description="A run shorter than this is not a use (debounce)"
    )
    uses_off_delay_s: float = Field(
        5.0,
        ge=0,
        description="Power below the threshold for longer than this ends a use; a shorter dip "
        "is part of it",
    )
    uses_gap_s: float = Field(
        180.0,
        gt=0,
        description="No report from a maker device for longer than this is a gap (event); "
        "three times the report cadence the device pages ask for (60 s)",
    )
    uses_meter_window_s: float = Field(
        120.0,
        gt=0,
        description="A water meter's reads must bracket a use this closely (beyond its length) "
        "to give its litres",
    )
    ingest_dead_letter_max_bytes: int = Field(
        16 * 1024, ge=64, description="Raw payload kept in a dead-letter row, at most"
    )
    ingest_dead_letters_per_device_per_min: int = Field(
        100,
        ge=1,
        description="Dead-letter rows kept per device a minute; more are counted in one summary "
        "row (reason too_many_dead_letters), not stored one by one",
    )
    ingest_metrics_port: int = Field(
        9101, ge=0, description="Port of the ingest /metrics, /healthz, /readyz (0 = none)"
    )
    ingest_retry_max_s: float = Field(30.0, gt=0, description="Longest backoff between DB retries")

    # --- API --------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Address the API listens on")
    api_port: int = Field(8080, description="Port the API listens on")
    api_queue_wait_s: float = Field(
        10.0,
        gt=0,
        description="Longest a request waits for a database connection before it is answered "
        "503 with Retry-After (overload queues briefly, never hangs)",
    )
    api_queue_max: int = Field(
        500,
        ge=1,
        description="Requests that may wait for a database connection at once; more are "
        "answered 503 with Retry-After at once",
    )
    api_head_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A connection that has not sent a whole request head this long after "
        "opening (or after its last answer) is closed (slow or idle clients)",
    )
    api_max_connections: int = Field(
        2000,
        ge=10,
        description="Open connections at most; past it the oldest still waiting for its request "
        "head is closed to make room",
    )
    api_trusted_proxies: str = Field(
        "",
        description="Addresses (comma-separated, or *) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty = none, the client is the TCP peer",
    )

    # --- bid support ------------------------------------------------------------------------
    attendee_retention_days: int = Field(
        730,
        ge=1,
        description="Days after a workshop ends that attendees' names and emails are kept "
        "(`wastepilot bids erase-expired` anonymises older ones)",
    )
    offer_hold_h: float = Field(
        48.0,
        gt=0,
        description="A waiting-list place offered to someone is held for them this long (never "
        "past the workshop's start); then it goes to the next person waiting",
    )
    reminder_days: int = Field(
        2,
        ge=1,
        description="Registered people are reminded of a workshop this many days before it "
        "(not those who registered inside that time: they have just had their confirmation)",
    )

    # --- analytics and scheduled jobs --------------------------------------------------------
    food_kg_per_use: float = Field(
        0.22,
        gt=0,
        description="Estimated food waste per disposer use, kg (0.15-0.3 published; "
        "shared/domain figures)",
    )
    rollup_late_window_h: int = Field(
        168,
        ge=1,
        description="Late readings stamped up to this many hours back are re-aggregated by the "
        "rollup job (older ones: `wastepilot rollups rebuild`)",
    )
    rollup_interval_s: int = Field(
        60, ge=5, description="How often the scheduler refreshes rollups"
    )
    dead_letter_retention_days: int = Field(
        30,
        ge=1,
        description="Dead letters (with their raw payloads) older than this are deleted by the "
        "retention job",
    )
    raw_retention_days: int = Field(
        730,
        ge=7,
        description="Raw readings older than this are dropped (whole chunks) by the retention "
        "job; rollups are kept",
    )
    archive_after_months: int | None = Field(
        None,
        ge=2,
        description="Months of raw readings older than this many whole months are moved to "
        "Parquet files in WASTEPILOT_ARCHIVE_DIR by the archive job (rollups stay); unset: "
        "never (docs/operations.md, Archive)",
    )
    archive_dir: Path | None = Field(
        None,
        description="Where archived months of raw readings are kept (unset: <state dir>/archive)",
    )
    offline_after_h: float = Field(
        48.0, gt=0, description="A device not heard from for this long is listed as offline"
    )
    jam_rate_max: float = Field(
        0.05, gt=0, description="Jams per use above which a device is listed (over 14 days)"
    )
    water_per_use_max_l: float = Field(
        4.0,
        gt=0,
        description="Mean litres per use above which a device is listed (14 days); a "
        "normal use takes 1-1.5 L",
    )
    reports_dir: Path = Field(
        Path("reports"), description="Folder `wastepilot report` writes its files to"
    )

    scheduler_metrics_port: int = Field(
        9102, ge=0, description="Port of the scheduler's /metrics, /healthz, /readyz (0 = none)"
    )

    # --- simulator --------------------------------------------------------------------------
    sim_households: int = Field(5, ge=1, description="Households simulated by `run`/`simulate`")
    sim_speed: float = Field(
        60.0, gt=0, description="Simulated seconds per real second in live mode"
    )
    sim_seed: int = Field(1, description="Random seed: the same seed gives the same readings")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production" and self.database_url is None:
            raise ValueError(
                "WASTEPILOT_ENV=production needs WASTEPILOT_DATABASE_URL; the local development "
                "services are never used in production"
            )
        if self.env == "production" and self.clock_at is not None:
            raise ValueError("WASTEPILOT_CLOCK_AT moves the clock: it is refused in production")
        if self.clock_at is not None and self.clock_at.tzinfo is None:
            raise ValueError("WASTEPILOT_CLOCK_AT needs a time zone, e.g. 2027-05-30T12:00:00Z")
        if self.mail_provider == "smtp" and not self.smtp_url:
            raise ValueError("WASTEPILOT_MAIL_PROVIDER=smtp needs WASTEPILOT_SMTP_URL")
        token = self.notify_callback_token
        if token is not None and 0 < len(token.get_secret_value()) < MIN_CALLBACK_TOKEN:
            raise ValueError(
                f"WASTEPILOT_NOTIFY_CALLBACK_TOKEN needs at least {MIN_CALLBACK_TOKEN} characters "
                "(it is the only thing between the internet and delivery receipts)"
            )
        if self.mail_provider == "notify" and not (self.notify_api_key and self.notify_template_id):
            raise ValueError(
                "WASTEPILOT_MAIL_PROVIDER=notify needs WASTEPILOT_NOTIFY_API_KEY and "
                "WASTEPILOT_NOTIFY_TEMPLATE_ID"
            )
        return self

    # --- resolution of the local identities ----------------------------------------------------
    def _local(self) -> LocalServices:
        if self.env == "production":
            raise ConfigError(
                "WASTEPILOT_ENV=production needs WASTEPILOT_MQTT_URL (or, to manage device "
                "logins, WASTEPILOT_MQTT_ADMIN_URL); the local services are never used there"
            )
        if self.local_services is None:
            raise ConfigError(
                "no WASTEPILOT_DATABASE_URL/WASTEPILOT_MQTT_URL set and no local services found "
                f"in {self.state_dir}: run `wastepilot services up` first"
            )
        return self.local_services

    def db_url(self) -> str:
        """The database URL: the configured one, or the local cluster's."""
        if self.database_url:
            return self.database_url
        url = self._local().database_url
        if url is None:
            raise ConfigError("WASTEPILOT_DATABASE_URL is not set and no local database runs")
        return url

    def db_owner_url(self) -> str:
        """The URL migrations run as: the schema's owner (docs/security.md, least privilege)."""
        if self.database_owner_url:
            return self.database_owner_url
        if self.database_url:
            return self.database_url
        url = self._local().database_owner_url
        if url is None:
            raise ConfigError("no local database runs: run `wastepilot services up`")
        return url

    def mqtt_url_for(self, role: Role) -> str:
        """The broker URL with the credentials of ``role``: the configured one, or the local one."""
        if self.mqtt_url:
            return self.mqtt_url
        identities = self._local().mqtt
        if role not in identities:
            raise ConfigError(
                f"the local services have no broker identity for {role!r}: "
                "run `wastepilot services up` again"
            )
        return identities[role]

    def broker_admin_url(self) -> str | None:
        """The admin identity's broker URL (device logins), or None when not managed here."""
        if self.mqtt_admin_url:
            return self.mqtt_admin_url
        if self.mqtt_url or self.env == "production":
            return None
        return self.mqtt_url_for("admin")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (entry points call this, libraries take arguments)."""
    try:
        return Settings()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
