"""The one place where the domain's errors (core/errors.py) become HTTP status codes."""

from __future__ import annotations

from fastapi import HTTPException

from core.errors import BidSupportError, Conflict, Invalid, NotFound

_STATUS: tuple[tuple[type[BidSupportError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
)


def status_of(exc: BidSupportError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def http_error(exc: BidSupportError) -> HTTPException:
    return HTTPException(status_of(exc), str(exc))
