"""SQL of the API's own routes (administration): plain, parameterised text."""

from __future__ import annotations

from typing import LiteralString

DEVICES: LiteralString = """
SELECT d.id AS device_id, d.household_ref AS household, d.model, d.installed_on,
       d.decommissioned_at, s.online, s.last_seen
FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
ORDER BY d.id LIMIT 10000
"""

DEVICE_HOUSEHOLD: LiteralString = "SELECT household_ref FROM devices WHERE id = %s"

REVOKE_TOKEN_BY_HASH: LiteralString = (
    "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL"
)

# --- the sign-in throttle (api/signin.py; migrations/014_sign_in_attempts.sql) ---------------

SIGN_IN_FORGET_OLD: LiteralString = (
    "DELETE FROM sign_in_attempts WHERE at < clock_timestamp() - interval '1 minute'"
)
SIGN_IN_ATTEMPT: LiteralString = (
    "INSERT INTO sign_in_attempts (user_key, addr_key) VALUES (%s, %s) RETURNING id"
)
# attempts in the last minute by this account and from this address, the one just committed
# among them, and when the oldest of each leaves the window (seconds from now)
SIGN_IN_WINDOW: LiteralString = """
SELECT count(*) FILTER (WHERE user_key = %(user)s),
       count(*) FILTER (WHERE addr_key = %(addr)s),
       extract(epoch FROM min(at) FILTER (WHERE user_key = %(user)s)
                         + interval '1 minute' - clock_timestamp()),
       extract(epoch FROM min(at) FILTER (WHERE addr_key = %(addr)s)
                         + interval '1 minute' - clock_timestamp())
FROM sign_in_attempts
WHERE (user_key = %(user)s OR addr_key = %(addr)s)
  AND at > clock_timestamp() - interval '1 minute'
"""
SIGN_IN_TAKE_BACK: LiteralString = "DELETE FROM sign_in_attempts WHERE id = %s"
SIGN_IN_FORGET_ALL: LiteralString = "DELETE FROM sign_in_attempts"
