"""The one place where the domain's errors become HTTP status codes: by their kind
(core/errors.py), never by their message."""

from __future__ import annotations

from fastapi import HTTPException

from core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable, WastepilotError

# the errors a person's request can cause: one kind each, and its status
USER_ERRORS = (NotFound, Conflict, Invalid, Forbidden, Unavailable)
UserError = NotFound | Conflict | Invalid | Forbidden | Unavailable
KINDS: tuple[tuple[type[WastepilotError], int], ...] = tuple(
    zip(USER_ERRORS, (404, 409, 422, 403, 503), strict=True)
)


def status_of(exc: WastepilotError) -> int | None:
    """The status of an error's kind; None for an error of no kind (a defect: a 500)."""
    return next((code for cls, code in KINDS if isinstance(exc, cls)), None)


def http_error(exc: WastepilotError) -> HTTPException:
    status = status_of(exc)
    if status is None:
        raise exc
    headers = {"Retry-After": "30"} if status == 503 else None
    return HTTPException(status, str(exc), headers=headers)
