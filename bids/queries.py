"""SQL of the bid-support records: plain, parameterised text."""

from __future__ import annotations

from typing import LiteralString

# --- councils ------------------------------------------------------------------------------------
# A council loaded from an earlier reference takes this one's name, tier, region and history;
# one this reference loaded keeps what officers may have corrected since (name, tier, region)
# and takes the history; an officer's own council is left alone.
INSERT_REFERENCE_COUNCIL = """
INSERT INTO councils AS c (gss_code, name, upper_tier_code, region, source, short_name,
                           in_force_from, in_force_until, successor_codes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gss_code) DO UPDATE SET
    name = CASE WHEN c.source = excluded.source THEN c.name ELSE excluded.name END,
    upper_tier_code = CASE WHEN c.source = excluded.source THEN c.upper_tier_code
                           ELSE excluded.upper_tier_code END,
    region = CASE WHEN c.source = excluded.source THEN c.region ELSE excluded.region END,
    source = excluded.source,
    short_name = excluded.short_name,
    in_force_from = excluded.in_force_from,
    in_force_until = excluded.in_force_until,
    successor_codes = excluded.successor_codes
WHERE c.source <> 'officer'
  AND (c.source, c.short_name, c.in_force_from, c.in_force_until, c.successor_codes)
      IS DISTINCT FROM (excluded.source, excluded.short_name, excluded.in_force_from,
                        excluded.in_force_until, excluded.successor_codes)
"""
UPSERT_REFERENCE_DATA = """
INSERT INTO reference_data (name, vintage, source, licence, rows)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET vintage = excluded.vintage, source = excluded.source,
    licence = excluded.licence, rows = excluded.rows, loaded_at = now()
WHERE (reference_data.vintage, reference_data.rows) <> (excluded.vintage, excluded.rows)
"""
COUNCIL_COLUMNS = "gss_code, name, council_type, upper_tier_code, region, source"
SELECT_COUNCIL = f"SELECT {COUNCIL_COLUMNS} FROM councils WHERE gss_code = %s"
SEARCH_COUNCILS = f"""
SELECT {COUNCIL_COLUMNS} FROM councils
WHERE (%(q)s::text IS NULL OR name ILIKE '%%' || %(q)s || '%%' OR gss_code = upper(%(q)s))
  AND (%(type)s::text IS NULL OR council_type = %(type)s)
  AND (%(region)s::text IS NULL OR region = %(region)s)
ORDER BY name, gss_code
LIMIT %(limit)s OFFSET %(offset)s
"""
COUNCILS_FOR_MATCHING = """
SELECT gss_code, name, short_name, in_force_from, in_force_until, successor_codes FROM councils
"""
INSERT_COUNCIL = f"""
INSERT INTO councils (gss_code, name, upper_tier_code, region, source)
VALUES (%s, %s, %s, %s, 'officer')
RETURNING {COUNCIL_COLUMNS}
"""
SELECT_REFERENCE_DATA = "SELECT name, vintage, source, licence, rows, loaded_at FROM reference_data"

# --- fund rounds and resources -------------------------------------------------------------------
INSERT_ROUND = """
INSERT INTO fund_rounds (code, name, opens_on, closes_on, results_on, budget_gbp)
VALUES (%(code)s, %(name)s, %(opens_on)s, %(closes_on)s, %(results_on)s, %(budget_gbp)s)
RETURNING code, name, opens_on, closes_on, results_on, budget_gbp
"""
SELECT_ROUNDS = """
SELECT code, name, opens_on, closes_on, results_on, budget_gbp FROM fund_rounds
ORDER BY opens_on NULLS LAST, code
"""
INSERT_RESOURCE = """
INSERT INTO guidance_resources (title, url, published_on) VALUES (%s, %s, %s)
RETURNING id, title, url, published_on
"""
SELECT_RESOURCES = "SELECT id, title, url, published_on FROM guidance_resources ORDER BY id"

# --- workshops -----------------------------------------------------------------------------------
WORKSHOP_SELECT = """
SELECT w.id, w.title, w.venue, w.town, w.region, w.starts_at, w.ends_at, w.timezone,
       w.capacity, w.status, w.speakers, w.updated_at,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', g.id, 'title', g.title,
                        'url', g.url, 'published_on', g.published_on) ORDER BY g.id)
                 FROM workshop_resources wr JOIN guidance_resources g ON g.id = wr.resource_id
                 WHERE wr.workshop_id = w.id), '[]') AS resources,
       count(r.id) FILTER (WHERE r.status IN ('registered', 'offered', 'attended', 'no_show'))::int
           AS places_taken,
       count(r.id) FILTER (WHERE r.status = 'offered')::int AS offered,
       count(r.id) FILTER (WHERE r.status = 'waiting')::int AS waiting
FROM workshops w LEFT JOIN registrations r ON r.workshop_id = w.id
"""
SELECT_WORKSHOP = WORKSHOP_SELECT + " WHERE w.id = %s GROUP BY w.id"
LIST_WORKSHOPS = (
    WORKSHOP_SELECT
    + """
WHERE (%(status)s::text IS NULL OR w.status = %(status)s)
  AND (%(region)s::text IS NULL OR w.region = %(region)s)
GROUP BY w.id ORDER BY w.starts_at, w.id
"""
)
INSERT_WORKSHOP = """
INSERT INTO workshops (title, venue, town, region, starts_at, ends_at, timezone, capacity,
                       status, speakers)
VALUES (%(title)s, %(venue)s, %(town)s, %(region)s, %(starts_at)s, %(ends_at)s, %(timezone)s,
        %(capacity)s, %(status)s, %(speakers)s)
RETURNING id
"""
LINK_RESOURCE = "INSERT INTO workshop_resources (workshop_id, resource_id) VALUES (%s, %s)"
UNLINK_RESOURCES = "DELETE FROM workshop_resources WHERE workshop_id = %s"
LOCK_WORKSHOP = "SELECT status, starts_at FROM workshops WHERE id = %s FOR UPDATE"

# --- registrations -------------------------------------------------------------------------------
REGISTRATION_SELECT = """
SELECT r.id, r.workshop_id, r.council_code, c.name AS council_name, r.person_name,
       r.person_role, r.email, r.status, r.offer_expires_at,
       CASE WHEN r.status = 'waiting' THEN
           (SELECT count(*) FROM registrations q WHERE q.workshop_id = r.workshop_id
             AND q.status = 'waiting' AND q.arrival <= r.arrival)::int END AS waiting_position,
       r.recorded_by, r.created_at, r.updated_at, r.erased_at IS NOT NULL AS erased
FROM registrations r JOIN councils c ON c.gss_code = r.council_code
"""
SELECT_REGISTRATION = REGISTRATION_SELECT + " WHERE r.id = %s"
LIST_REGISTRATIONS = (
    REGISTRATION_SELECT
    + """
WHERE r.workshop_id = %(workshop)s AND (%(status)s::text IS NULL OR r.status = %(status)s)
ORDER BY r.arrival
"""
)
INSERT_REGISTRATION = """
INSERT INTO registrations (workshop_id, council_code, person_name, person_role, email, status,
                           recorded_by)
VALUES (%s, %s, %s, %s, %s, %s, %s)
RETURNING id
"""
SELECT_REGISTRATION_STATE = """
SELECT r.status, r.workshop_id, w.status AS workshop_status, w.starts_at
FROM registrations r JOIN workshops w ON w.id = r.workshop_id WHERE r.id = %s
"""
UPDATE_REGISTRATION_STATUS = "UPDATE registrations SET status = %s WHERE id = %s"
REGISTRATIONS_BY_EMAIL = "SELECT id FROM registrations WHERE email = %s"
EXPIRED_REGISTRATIONS = """
SELECT r.id FROM registrations r JOIN workshops w ON w.id = r.workshop_id
WHERE r.erased_at IS NULL AND w.ends_at < %(now)s - make_interval(days => %(days)s)
"""
ERASE_REGISTRATIONS = """
UPDATE registrations
SET person_name = NULL, person_role = NULL, email = NULL, erased_at = now(), updated_at = now()
WHERE id = ANY(%s) AND erased_at IS NULL
"""
ERASE_AUDIT = """
UPDATE audit_log
SET before = CASE WHEN before IS NULL THEN NULL
                  ELSE before || '{"person_name": null, "person_role": null, "email": null}' END,
    after = CASE WHEN after IS NULL THEN NULL
                 ELSE after || '{"person_name": null, "person_role": null, "email": null}' END
WHERE table_name = 'registrations' AND row_key = ANY(%s)
"""
REGISTRATIONS_FOR_IMPORT = """
SELECT id, email, status FROM registrations
WHERE workshop_id = %s AND email IS NOT NULL
ORDER BY status = 'cancelled', arrival DESC
"""

# --- bids ----------------------------------------------------------------------------------------
BID_SELECT = """
SELECT b.id, b.council_code, c.name AS council_name, b.round_code, b.scheme, b.status,
       b.amount_requested, b.amount_awarded, b.submitted_on, b.decided_on, b.notes,
       coalesce((SELECT array_agg(p.council_code ORDER BY p.council_code)
                 FROM bid_partners p WHERE p.bid_id = b.id), '{}') AS partner_codes,
       coalesce((SELECT json_agg(json_build_object(
                     'status', h.status, 'amount_awarded', h.amount_awarded,
                     'on_date', h.on_date, 'recorded_at', h.recorded_at) ORDER BY h.id)
                 FROM bid_status_history h WHERE h.bid_id = b.id), '[]') AS history
FROM bids b JOIN councils c ON c.gss_code = b.council_code
"""
SELECT_BID = BID_SELECT + " WHERE b.id = %s"
LIST_BIDS = (
    BID_SELECT
    + """
WHERE (%(round)s::text IS NULL OR b.round_code = %(round)s)
  AND (%(status)s::text IS NULL OR b.status = %(status)s)
  AND (%(council)s::text IS NULL OR b.council_code = %(council)s
       OR EXISTS (SELECT 1 FROM bid_partners p
                  WHERE p.bid_id = b.id AND p.council_code = %(council)s))
ORDER BY b.round_code, c.name, b.scheme
"""
)
INSERT_BID = """
INSERT INTO bids (council_code, round_code, scheme, status, amount_requested, amount_awarded,
                  submitted_on, decided_on, notes)
VALUES (%(council_code)s, %(round_code)s, %(scheme)s, %(status)s, %(amount_requested)s,
        %(amount_awarded)s, %(submitted_on)s, %(decided_on)s, %(notes)s)
RETURNING id
"""
SET_BID_PARTNERS = """
WITH gone AS (DELETE FROM bid_partners WHERE bid_id = %(bid)s AND NOT council_code = ANY(%(codes)s))
INSERT INTO bid_partners (bid_id, council_code)
SELECT %(bid)s, unnest(%(codes)s::text[])
ON CONFLICT DO NOTHING
"""

# --- audit ---------------------------------------------------------------------------------------
SELECT_AUDIT = """
SELECT id, at, actor, table_name, row_key, action, before, after FROM audit_log
WHERE table_name = ANY(%(tables)s)
  AND (%(table)s::text IS NULL OR table_name = %(table)s)
  AND (%(key)s::text IS NULL OR row_key = %(key)s)
ORDER BY id DESC LIMIT %(limit)s
"""


INSERT_FUND_ROUND: LiteralString = (
    "INSERT INTO fund_rounds (code, name, opens_on, closes_on, results_on, budget_gbp) VALUES "
    "(%s, %s, %s, %s, %s, %s)"
)
FUND_ROUND_EXISTS: LiteralString = "SELECT 1 FROM fund_rounds WHERE code = %s"
INSERT_GUIDANCE: LiteralString = (
    "INSERT INTO guidance_resources (title, url, published_on) VALUES (%s, %s, %s) RETURNING id"
)
# the councils in force on the demo programme's day (the councils of 2012)
DEMO_COUNCILS: LiteralString = """
SELECT gss_code, name FROM councils
WHERE council_type <> 'county'
  AND (in_force_from IS NULL OR in_force_from <= %(on)s)
  AND (in_force_until IS NULL OR in_force_until > %(on)s)
ORDER BY gss_code
"""
COUNT_COUNCILS: LiteralString = "SELECT count(*) FROM councils"
ERASING_ON: LiteralString = "SELECT set_config('wastepilot.erasing', 'on', true)"
ERASING_OFF: LiteralString = "SELECT set_config('wastepilot.erasing', 'off', true)"

# --- erasing a speaker ---------------------------------------------------------------------------
WORKSHOPS_WITH_SPEAKER: LiteralString = """
SELECT id FROM workshops
WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(speakers) e
              WHERE lower(normalize(coalesce(e ->> 'name', ''), NFKC)) = %(name)s)
"""
ERASE_SPEAKER: LiteralString = """
UPDATE workshops SET speakers = (SELECT coalesce(jsonb_agg(e ORDER BY i), '[]'::jsonb)
      FROM jsonb_array_elements(speakers) WITH ORDINALITY AS s(e, i)
      WHERE lower(normalize(coalesce(e ->> 'name', ''), NFKC)) <> %(name)s)
WHERE id = ANY(%(ids)s)
"""
ERASE_SPEAKER_AUDIT: LiteralString = """
UPDATE audit_log
SET before = CASE WHEN before ? 'speakers' AND jsonb_typeof(before -> 'speakers') = 'array'
                  THEN jsonb_set(before, '{speakers}', (
                      SELECT coalesce(jsonb_agg(e ORDER BY i), '[]'::jsonb)
                      FROM jsonb_array_elements(before -> 'speakers') WITH ORDINALITY AS s(e, i)
                      WHERE lower(normalize(coalesce(e ->> 'name', ''), NFKC)) <> %(name)s))
                  ELSE before END,
    after = CASE WHEN after ? 'speakers' AND jsonb_typeof(after -> 'speakers') = 'array'
                 THEN jsonb_set(after, '{speakers}', (
                     SELECT coalesce(jsonb_agg(e ORDER BY i), '[]'::jsonb)
                     FROM jsonb_array_elements(after -> 'speakers') WITH ORDINALITY AS s(e, i)
                     WHERE lower(normalize(coalesce(e ->> 'name', ''), NFKC)) <> %(name)s))
                 ELSE after END
WHERE table_name = 'workshops' AND row_key = ANY(%(keys)s)
"""

# --- award lists (bids/awards.py) ----------------------------------------------------------------
ROUND_DAY: LiteralString = (
    "SELECT coalesce(results_on, closes_on, opens_on) FROM fund_rounds WHERE code = %s"
)
ROUND_BIDS: LiteralString = """
SELECT b.id, b.council_code, b.scheme, b.amount_awarded, b.status,
       (SELECT array_agg(p.council_code) FROM bid_partners p WHERE p.bid_id = b.id)
FROM bids b WHERE b.round_code = %s
"""

# what a confirmation says of its workshop (bids/registrations.py; the outbox's message)
WORKSHOP_FOR_MESSAGE = """
SELECT id, title, venue, town, starts_at, ends_at, timezone, status, updated_at
FROM workshops WHERE id = %s
"""
# --- waiting-list offers, reminders and notices (bids/notices.py) -------------------------------
NEW_OFFERS = """
SELECT r.id, r.workshop_id, r.person_name, r.email, w.starts_at
FROM registrations r JOIN workshops w ON w.id = r.workshop_id
WHERE r.status = 'offered' AND r.offer_expires_at IS NULL
ORDER BY r.arrival
FOR UPDATE OF r
"""
STAMP_OFFER = """
UPDATE registrations SET offer_expires_at = %s, offer_token_hash = %s, updated_at = now()
WHERE id = %s
"""
LAPSE_OFFERS = """
UPDATE registrations SET status = 'lapsed'
WHERE id IN (SELECT id FROM registrations
             WHERE status = 'offered' AND offer_expires_at <= %s
             ORDER BY arrival FOR UPDATE)
RETURNING id, workshop_id, person_name, email
"""
OFFER_BY_TOKEN = """
SELECT r.id, r.workshop_id, r.person_name, r.email, r.status, r.offer_expires_at,
       w.title, w.venue, w.town, w.starts_at, w.ends_at, w.timezone
FROM registrations r JOIN workshops w ON w.id = r.workshop_id
WHERE r.offer_token_hash = %s AND r.status = 'offered' AND w.status = 'planned'
FOR UPDATE OF r
"""
REMINDERS_DUE = """
SELECT r.id AS registration_id, r.person_name, r.email,
       w.id, w.title, w.venue, w.town, w.starts_at, w.ends_at, w.timezone
FROM registrations r JOIN workshops w ON w.id = r.workshop_id
WHERE w.status = 'planned' AND r.status = 'registered' AND r.email IS NOT NULL
  AND w.starts_at > %(now)s AND w.starts_at <= %(now)s + make_interval(days => %(days)s)
  AND r.created_at < w.starts_at - make_interval(days => %(days)s)
ORDER BY w.starts_at, r.arrival
"""
PEOPLE_TO_TELL = """
SELECT id, person_name, email, status FROM registrations
WHERE workshop_id = %s AND status IN ('registered', 'offered', 'waiting') AND email IS NOT NULL
ORDER BY arrival
"""
WORKSHOP_MESSAGES = """
SELECT id, template, to_address, status, attempts, interrupted, created_at, sent_at,
       last_error
FROM outbox WHERE topic = %(topic)s
ORDER BY created_at DESC, id DESC
LIMIT 500
"""
