"""Web pages served by the API: officers' workshop pages and the analysts' dashboard.

Pages sign in with the cookie session of `/api/v1/auth/session`'s kind; every form that changes
something carries the session's CSRF token. Data tables are in the HTML, so the pages work
without JavaScript; charts (Chart.js, served locally) draw on top of them."""

from __future__ import annotations

from fastapi import APIRouter

from api.web import account, analysts, digest, offers, officers

# every page's router
PARTS = (account.router, officers.router, analysts.router, offers.router, digest.router)
router = APIRouter(include_in_schema=False)
for part in PARTS:
    router.include_router(part)
