"""The SQL of the bottom layer (job runs, users and tokens), in one place."""

from typing import LiteralString

# --- job runs (core/jobs.py) ------------------------------------------------------------------

JOB_TRY_LOCK: LiteralString = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
JOB_UNLOCK: LiteralString = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
JOB_RUN_STARTED: LiteralString = (
    "INSERT INTO job_runs (job, outcome, host, pid) VALUES (%s, 'running', %s, %s) RETURNING id"
)
JOB_RUN_RECORDED: LiteralString = (
    "INSERT INTO job_runs (job, outcome, rows_touched, detail, finished_at, host, pid) "
    "VALUES (%s, %s, %s, %s, clock_timestamp(), %s, %s)"
)
JOB_RUN_FINISHED: LiteralString = (
    "UPDATE job_runs SET outcome = %s, rows_touched = %s, detail = %s, "
    "finished_at = clock_timestamp() WHERE id = %s"
)

# --- users and tokens (core/auth.py) ---------------------------------------------------------

USER_ADD: LiteralString = (
    "INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s) RETURNING id"
)

USER_REVOKE: LiteralString = (
    "UPDATE users SET revoked_at = now() WHERE username = %s AND revoked_at IS NULL RETURNING id"
)

TOKENS_REVOKE_OF_USER: LiteralString = (
    "UPDATE api_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL"
)

USER_PASSWORD_HASH: LiteralString = (
    "SELECT id, password_hash FROM users WHERE username = %s AND revoked_at IS NULL"
)

USER_ACTIVE_ID: LiteralString = "SELECT id FROM users WHERE username = %s AND revoked_at IS NULL"

TOKEN_ADD: LiteralString = (
    "INSERT INTO api_tokens (user_id, name, token_hash, scope, expires_at) "
    "VALUES (%s, %s, %s, %s, now() + %s * interval '1 day') RETURNING id"
)

USER_ROLE: LiteralString = "SELECT role FROM users WHERE id = %s"

TOKEN_REVOKE: LiteralString = (
    "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"
)

TOKEN_OWNER: LiteralString = (
    "SELECT u.id, u.username, u.role, t.scope, t.id, t.token_hash, "
    "t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now() "
    "AND u.revoked_at IS NULL"
)

TOKEN_USED: LiteralString = "UPDATE api_tokens SET last_used_at = now() WHERE id = %s"

USERS_LIST: LiteralString = (
    "SELECT u.username, u.role, u.created_at, u.revoked_at, "
    "count(t.id) FILTER (WHERE t.revoked_at IS NULL AND t.expires_at > now()) "
    "FROM users u LEFT JOIN api_tokens t ON t.user_id = u.id GROUP BY u.id ORDER BY 1"
)
USERS_ANY: LiteralString = "SELECT 1 FROM users LIMIT 1"

PING: LiteralString = "SELECT 1"
MIGRATE_LOCK: LiteralString = "SELECT pg_advisory_lock(%s)"
CREATE_SCHEMA_MIGRATIONS: LiteralString = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ( version integer PRIMARY KEY, name text NOT "
    "NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
MIGRATE_UNLOCK: LiteralString = "SELECT pg_advisory_unlock(%s)"
APPLIED_MIGRATIONS: LiteralString = "SELECT version, checksum FROM schema_migrations"
RECORD_MIGRATION: LiteralString = (
    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
)

# --- core/registry.py --------------------------------------------------------------------------
UPSERT_HOUSEHOLD: LiteralString = """
INSERT INTO households (ref, postcode_district, cohort, occupants, joined_on)
VALUES (%(ref)s, %(postcode_district)s, %(cohort)s, %(occupants)s, %(joined_on)s)
ON CONFLICT (ref) DO NOTHING
"""
UPSERT_DEVICE: LiteralString = """
INSERT INTO devices (id, household_ref, model, installed_on, kind)
VALUES (%(id)s, %(household_ref)s, %(model)s, %(installed_on)s, %(kind)s)
ON CONFLICT (id) DO NOTHING
"""

# --- core/devices.py ---------------------------------------------------------------------------
EXISTING_DEVICES: LiteralString = "SELECT id FROM devices WHERE id = ANY(%s)"
DECOMMISSION_DEVICE: LiteralString = (
    "UPDATE devices SET decommissioned_at = now() WHERE id = %s AND decommissioned_at IS NULL "
    "RETURNING id"
)
DEVICE_ACTIVE: LiteralString = (
    "SELECT kind FROM devices WHERE id = %s AND decommissioned_at IS NULL"
)

# --- core/audit.py
SET_ACTOR: LiteralString = "SELECT set_config('wastepilot.actor', %s, true)"
# every active admin, locked: two revocations at once cannot both pass the last-admin check
ACTIVE_ADMINS_LOCKED: LiteralString = (
    "SELECT username FROM users WHERE role = 'admin' AND revoked_at IS NULL ORDER BY id FOR UPDATE"
)
AUDIT_RECORD: LiteralString = """
INSERT INTO audit_log (actor, table_name, row_key, action, after)
VALUES (coalesce(nullif(current_setting('wastepilot.actor', true), ''), session_user),
        %s, %s, %s, %s)
"""

# --- erasing a household (core/devices.py) ---------------------------------------------------
HOUSEHOLD_DEVICES: LiteralString = "SELECT id FROM devices WHERE household_ref = %s ORDER BY id"
HOUSEHOLD_EXISTS: LiteralString = "SELECT 1 FROM households WHERE ref = %s"
# first: waits for ingest's batches under way (migrations/015_erased_devices.sql)
ERASE_TOMBSTONES: LiteralString = (
    "INSERT INTO erased_devices (device_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING"
)
ERASED_DEVICES: LiteralString = "SELECT device_id FROM erased_devices WHERE device_id = ANY(%s)"
ERASE_REGISTRY: tuple[LiteralString, ...] = (
    "DELETE FROM devices WHERE household_ref = %(ref)s",
    "DELETE FROM households WHERE ref = %(ref)s",
)

# an old-parameter hash replaced after a successful sign-in; only if still the one verified
UPGRADE_PASSWORD_HASH: LiteralString = (
    "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s"
)

# --- the outbox (core/outbox.py) ----------------------------------------------------------------
OUTBOX_ENQUEUE: LiteralString = """
INSERT INTO outbox (event_ref, template, to_address, personalisation, transactional, topic,
                    unsubscribe_url, created_at, next_attempt_at)
VALUES (%(ref)s, %(template)s, %(to)s, %(p)s, %(transactional)s, %(topic)s, %(unsubscribe)s,
        %(now)s, %(now)s)
ON CONFLICT (event_ref) DO NOTHING
RETURNING id
"""
# a sender that died between claiming a row and recording its send left it 'sending'
OUTBOX_REQUEUE_INTERRUPTED: LiteralString = (
    "UPDATE outbox SET status = 'queued', interrupted = interrupted + 1 WHERE status = 'sending'"
)
# the budget counts every try (Notify's rate limit counts every request, refused or not)
OUTBOX_TRIED_SINCE: LiteralString = "SELECT count(*) FROM outbox WHERE claimed_at >= %s"
OUTBOX_CLAIM: LiteralString = """
UPDATE outbox SET status = 'sending', claimed_at = %s, attempts = attempts + 1
WHERE id = (
    SELECT id FROM outbox
    WHERE status = 'queued' AND next_attempt_at <= %s AND to_address IS NOT NULL
    ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, event_ref, template, to_address, personalisation, attempts, unsubscribe_url,
          last_error IS NOT NULL OR interrupted > 0 AS tried
"""
OUTBOX_RETRY: LiteralString = """
UPDATE outbox SET status = CASE WHEN %s THEN 'failed' ELSE 'queued' END,
                  next_attempt_at = %s, last_error = %s
WHERE id = %s
"""
# the provider refused as a whole: back in the queue, the try not counted against the message
OUTBOX_PAUSED: LiteralString = """
UPDATE outbox SET status = 'queued', attempts = attempts - 1, next_attempt_at = %s,
                  last_error = %s
WHERE id = %s
"""
# the provider was asked for it by reference: an interrupted send did not double it
OUTBOX_NOT_DOUBLED: LiteralString = (
    "UPDATE outbox SET interrupted = greatest(interrupted - 1, 0) WHERE id = %s"
)
OUTBOX_FAILED: LiteralString = "UPDATE outbox SET status = 'failed', last_error = %s WHERE id = %s"
OUTBOX_SENT: LiteralString = """
UPDATE outbox SET status = 'sent', sent_at = %s, provider_ref = %s, provider = %s,
                  last_error = NULL
WHERE id = %s
"""
# messages Notify took and has not yet given a final word on, oldest asked first
OUTBOX_AWAITING_RECEIPT: LiteralString = """
SELECT id, provider_ref FROM outbox
WHERE status = 'sent' AND provider = %(provider)s
  AND sent_at <= %(sent_before)s AND sent_at > %(sent_after)s
  AND (status_checked_at IS NULL OR status_checked_at <= %(checked_before)s)
ORDER BY status_checked_at NULLS FIRST, sent_at LIMIT %(limit)s
"""
OUTBOX_CHECKED: LiteralString = "UPDATE outbox SET status_checked_at = %s WHERE id = %s"
# a provider's final word: delivered, or failed with its reason (a receipt for a message
# already settled changes nothing)
OUTBOX_RECEIPT: LiteralString = """
UPDATE outbox SET status = %(status)s, last_error = %(reason)s, status_checked_at = %(at)s,
                  delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(at)s::timestamptz END
WHERE provider_ref = %(ref)s AND provider = %(provider)s AND status = 'sent'
RETURNING id
"""
OUTBOX_FORGET: LiteralString = "DELETE FROM outbox WHERE starts_with(event_ref, ANY(%s::text[]))"
OUTBOX_ERASE_PERSON: LiteralString = """
UPDATE outbox SET to_address = NULL, personalisation = '{}',
       status = CASE WHEN status IN ('queued', 'sending') THEN 'erased' ELSE status END
WHERE to_address = %(email)s
"""
