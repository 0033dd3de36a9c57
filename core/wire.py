"""The MQTT wire schema (contract v1), shared by the simulator and ingest.

A readings message is one reading object or an array of them (a device's offline backlog).
This module checks *shape and types*; the limits that depend on configuration (value bounds,
time window, registry) are ingest's, in ``ingest/validate.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.topics import DEVICE_ID_PATTERN

WIRE_VERSION = 1

FaultKind = Literal["jam", "overload", "leak", "power"]
Measure = Annotated[float | None, Field(default=None, ge=0, allow_inf_nan=False)]


class Reason(StrEnum):
    """Why a message (or one reading of it) was dead-lettered. Stored as text in dead_letters."""

    MALFORMED_JSON = "malformed_json"
    NOT_A_READING = "not_a_reading"  # JSON, but neither an object nor an array of objects
    EMPTY = "empty"
    TOO_MANY_READINGS = "too_many_readings"
    OVERSIZED_PAYLOAD = "oversized_payload"
    UNKNOWN_VERSION = "unknown_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"  # NaN/inf, unknown kind, bad id, inconsistent fields
    OUT_OF_RANGE = "out_of_range"
    TS_IN_FUTURE = "ts_in_future"
    TS_BEFORE_PILOT = "ts_before_pilot"
    UNKNOWN_DEVICE = "unknown_device"
    DECOMMISSIONED_DEVICE = "decommissioned_device"
    DEVICE_MISMATCH = "device_mismatch"
    BAD_TOPIC = "bad_topic"
    STORAGE_ERROR = "storage_error"  # valid by the contract, but the database refused it


class Reading(BaseModel):
    """One use of a disposer (``kind="run"``) or a fault event (``kind="fault"``)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    v: int
    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)]
    # ISO 8601 text with an offset, parsed by _iso_ts (not pydantic's lax parsing, which would
    # also take numbers as Unix time).
    ts: AwareDatetime
    kind: Literal["run", "fault"]
    run_s: Measure
    energy_wh: Measure
    water_l: Measure
    peak_a: Measure
    fault: FaultKind | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_version(cls, data: Any) -> Any:
        # Checked first so a v2 message is reported as such, not as a pile of field errors.
        if isinstance(data, dict):
            version = data.get("v")
            if type(version) is int and version != WIRE_VERSION:
                raise ValueError(
                    f"unknown_version: v={version}, this ingest speaks v{WIRE_VERSION}"
                )
        return data

    @field_validator("ts", mode="before")
    @classmethod
    def _iso_ts(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            # pydantic turns only ValueError into a validation error, not TypeError
            raise ValueError(f"wrong_type: ts must be ISO 8601 text, got {type(value).__name__}")  # noqa: TRY004
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"invalid_value: ts {value[:40]!r} is not ISO 8601") from None
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError("invalid_value: ts needs a UTC offset (Z or +hh:mm)")
        return ts

    @model_validator(mode="after")
    def _consistent(self) -> Reading:
        if self.kind == "run":
            missing = [n for n in ("run_s", "energy_wh", "water_l") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"missing_field: a run needs {', '.join(missing)}")
            if self.fault is not None:
                raise ValueError("invalid_value: a run carries no fault")
        elif self.fault is None:
            raise ValueError("missing_field: a fault event needs fault (jam|overload|leak|power)")
        return self


class StatusMessage(BaseModel):
    """A device's retained status or heartbeat (plain ``online``/``offline`` text is accepted)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    state: Literal["online", "offline"]
    ts: AwareDatetime | None = None
    firmware: Annotated[str, Field(max_length=64)] | None = None
    uptime_s: Annotated[int, Field(ge=0)] | None = None
    rssi_dbm: Annotated[int, Field(ge=-150, le=0)] | None = None


class WireError(ValueError):
    """A payload, or one element of it, broke the contract."""

    def __init__(self, reason: Reason, detail: str, index: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.index = index


_TYPE_ERRORS = ("_type", "_parsing", "is_instance_of", "model_attributes_type", "dict_type")


def reason_of(exc: ValidationError) -> tuple[Reason, str]:
    """The dead-letter reason and a one-line detail for a pydantic validation error."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "reading"
    etype = err["type"]
    msg = err["msg"]
    if etype == "value_error":
        text = str(err.get("ctx", {}).get("error", msg))
        code, _, detail = text.partition(": ")
        try:
            return Reason(code), detail
        except ValueError:
            return Reason.INVALID_VALUE, text
    if etype == "missing":
        return Reason.MISSING_FIELD, f"{loc} is required"
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return Reason.OUT_OF_RANGE, f"{loc}: {msg}"
    if etype == "finite_number":
        return Reason.INVALID_VALUE, f"{loc}: NaN and infinity are not readings"
    if etype.endswith(_TYPE_ERRORS) or etype in ("bool_type",):
        return Reason.WRONG_TYPE, f"{loc}: {msg}"
    return Reason.INVALID_VALUE, f"{loc}: {msg}"


def decode_payload(payload: bytes, max_items: int) -> list[Any]:
    """JSON-decode a readings payload into a list of elements (one object becomes a list of one).

    Raises WireError for what makes the whole message unusable.
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(Reason.MALFORMED_JSON, f"not JSON: {exc}") from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        if not data:
            raise WireError(Reason.EMPTY, "an empty array carries no readings")
        if len(data) > max_items:
            raise WireError(
                Reason.TOO_MANY_READINGS,
                f"{len(data)} readings in one message, at most {max_items}",
            )
        return data
    raise WireError(
        Reason.NOT_A_READING, f"expected an object or an array, got {type(data).__name__}"
    )


def parse_reading(item: Any, index: int | None = None) -> Reading:
    """Validate one decoded element as a Reading, or raise WireError with the reason."""
    if not isinstance(item, dict):
        raise WireError(
            Reason.NOT_A_READING, f"expected an object, got {type(item).__name__}", index
        )
    try:
        return Reading.model_validate(item)
    except ValidationError as exc:
        reason, detail = reason_of(exc)
        raise WireError(reason, detail, index) from None


def parse_status(payload: bytes, device_id: str) -> StatusMessage:
    """Validate a status payload (JSON heartbeat, or plain online/offline text)."""
    text = payload.strip()
    if text in (b"online", b"offline"):
        return StatusMessage(
            device_id=device_id, state="online" if text == b"online" else "offline"
        )
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(Reason.MALFORMED_JSON, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError(Reason.NOT_A_READING, "a status is an object or online/offline")
    try:
        return StatusMessage.model_validate(data)
    except ValidationError as exc:
        reason, detail = reason_of(exc)
        raise WireError(reason, detail) from None


def format_ts(ts: datetime) -> str:
    """The contract's timestamp text: UTC, milliseconds, ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def encode_readings(readings: list[dict[str, Any]]) -> bytes:
    """Serialise reading dicts as one message: a single object, or an array of several."""
    return orjson.dumps(readings[0] if len(readings) == 1 else readings)
