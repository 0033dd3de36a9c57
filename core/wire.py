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
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from core.errors import WireError
from core.topics import DEVICE_ID_PATTERN

WIRE_VERSION = 1

FaultKind = Literal["jam", "overload", "leak", "power"]


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
    TOO_MANY_DEAD_LETTERS = "too_many_dead_letters"  # a device's excess in a minute, counted
    # a message of an erased household's device: dropped, payload and all; only counted
    ERASED_DEVICE = "erased_device"
    # a device's new readings over its rate (a setting): refused, one summary row per batch
    RATE_LIMITED = "rate_limited"
    # a seq the device already used with another ts (a device's counter is its idempotency key)
    SEQ_REUSED = "seq_reused"


def _iso_ts(value: Any) -> datetime:
    """ISO 8601 text with a UTC offset -> aware datetime (pydantic's own parsing would also take
    numbers and numeric strings as Unix time, which the contract does not allow)."""
    if not isinstance(value, str):
        # pydantic turns only ValueError into a validation error, not TypeError
        raise ValueError(f"wrong_type: ts must be ISO 8601 text, got {type(value).__name__}")  # noqa: TRY004
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid_value: ts {value[:40]!r} is not ISO 8601") from None
    if ts.tzinfo is None:
        raise ValueError("invalid_value: ts needs a UTC offset (Z or +hh:mm)")
    return ts


IsoTime = Annotated[datetime, BeforeValidator(_iso_ts)]
Measure = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Reading(BaseModel):
    """One use of a disposer (``kind="run"``) or a fault event (``kind="fault"``).

    Validated entirely by pydantic-core (strict JSON), except the timestamp: the subclasses
    below are the two shapes, chosen by ``kind``.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    v: Literal[1]
    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)]
    ts: IsoTime
    kind: Literal["run", "fault"]
    run_s: Measure | None = None
    energy_wh: Measure | None = None
    water_l: Measure | None = None
    peak_a: Measure | None = None
    fault: FaultKind | None = None


class RunReading(Reading):
    """One use: the motor ran for ``run_s`` seconds."""

    kind: Literal["run"]
    run_s: Measure
    energy_wh: Measure
    water_l: Measure
    fault: None = None


class FaultReading(Reading):
    """A jam, overload, leak or power loss."""

    kind: Literal["fault"]
    fault: FaultKind


AnyReading = Annotated[RunReading | FaultReading, Field(discriminator="kind")]
_ONE: TypeAdapter[RunReading | FaultReading] = TypeAdapter(AnyReading)
_MANY: TypeAdapter[list[RunReading | FaultReading]] = TypeAdapter(list[AnyReading])


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


_TYPE_ERRORS = ("_type", "_parsing", "is_instance_of", "dict_type")


def _reason_of_error(err: Any) -> tuple[Reason, str]:
    loc_parts = [str(p) for p in err["loc"] if p not in ("run", "fault")]
    loc = ".".join(loc_parts) or "reading"
    etype: str = err["type"]
    msg: str = err["msg"]
    if etype == "value_error":
        text = str(err.get("ctx", {}).get("error", msg))
        code, _, detail = text.partition(": ")
        try:
            return Reason(code), detail
        except ValueError:
            return Reason.INVALID_VALUE, text
    if etype == "literal_error" and loc_parts[-1:] == ["v"]:
        value = err.get("input")
        if type(value) is int:
            return Reason.UNKNOWN_VERSION, f"v={value}, this ingest speaks v{WIRE_VERSION}"
        return Reason.WRONG_TYPE, f"v: {msg}"
    if etype == "union_tag_not_found":
        return Reason.MISSING_FIELD, "kind is required (run or fault)"
    if etype == "union_tag_invalid":
        return Reason.INVALID_VALUE, "kind must be run or fault"
    if etype == "model_type":
        return Reason.NOT_A_READING, f"expected an object, got {type(err.get('input')).__name__}"
    if etype == "none_required":
        return Reason.INVALID_VALUE, f"{loc}: a run carries no fault"
    if etype == "missing":
        return Reason.MISSING_FIELD, f"{loc} is required"
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return Reason.OUT_OF_RANGE, f"{loc}: {msg}"
    if etype == "finite_number":
        return Reason.INVALID_VALUE, f"{loc}: NaN and infinity are not readings"
    if etype.endswith(_TYPE_ERRORS):
        return Reason.WRONG_TYPE, f"{loc}: {msg}"
    return Reason.INVALID_VALUE, f"{loc}: {msg}"


def reason_of(exc: ValidationError) -> tuple[Reason, str]:
    """The dead-letter reason and a one-line detail for a pydantic validation error.

    An unknown version wins over everything else: a v2 message is reported as such, not as
    the pile of field errors its other shape causes.
    """
    reasons = [_reason_of_error(e) for e in exc.errors(include_url=False)]
    for reason in reasons:
        if reason[0] is Reason.UNKNOWN_VERSION:
            return reason
    return reasons[0]


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
        _check_length(len(data), max_items)
        return data
    raise WireError(
        Reason.NOT_A_READING, f"expected an object or an array, got {type(data).__name__}"
    )


def _check_length(n: int, max_items: int) -> None:
    if n == 0:
        raise WireError(Reason.EMPTY, "an empty array carries no readings")
    if n > max_items:
        raise WireError(
            Reason.TOO_MANY_READINGS, f"{n} readings in one message, at most {max_items}"
        )


def parse_reading(item: Any, index: int | None = None) -> Reading:
    """Validate one decoded element as a Reading, or raise WireError with the reason."""
    if not isinstance(item, dict):
        raise WireError(
            Reason.NOT_A_READING, f"expected an object, got {type(item).__name__}", index
        )
    try:
        # Through JSON again, so an element is judged exactly as the fast path judges it.
        return _ONE.validate_json(orjson.dumps(item))
    except ValidationError as exc:
        reason, detail = reason_of(exc)
        raise WireError(reason, detail, index) from None
    except orjson.JSONEncodeError as exc:
        raise WireError(Reason.INVALID_VALUE, f"unencodable element: {exc}", index) from None


def parse_readings(
    payload: bytes, max_items: int
) -> tuple[list[tuple[int | None, Reading]], list[tuple[WireError, Any]]]:
    """All readings of a message with their index in it (None for a single object), and the
    elements that failed (with their decoded value).

    Fast path: the whole payload validated by pydantic-core in one call. Only when that fails is
    the payload split so that each element gets its own verdict. Raises WireError when the
    message as a whole is unusable (not JSON, empty, too long, not a reading at all).
    """
    head = payload.lstrip()[:1]
    try:
        if head == b"{":
            return [(None, _ONE.validate_json(payload))], []
        if head == b"[":
            items = _MANY.validate_json(payload)
            _check_length(len(items), max_items)
            return list(enumerate(items)), []
    except ValidationError:
        pass
    elements = decode_payload(payload, max_items)
    many = head == b"["
    good: list[tuple[int | None, Reading]] = []
    bad: list[tuple[WireError, Any]] = []
    for i, item in enumerate(elements):
        index = i if many else None
        try:
            good.append((index, parse_reading(item, index)))
        except WireError as exc:
            bad.append((exc, item))
    return good, bad


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
