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
HOUSEHOLD_EXISTS: LiteralString = "SELECT 1 FROM households WHERE ref = %s"
