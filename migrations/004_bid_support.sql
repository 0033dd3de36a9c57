-- Bid support: councils, fund rounds, workshops, registrations/attendance, bids, audit log.
-- The rules officers rely on are held here, not only in Python: GSS code format, one live
-- registration per email per workshop, capacity never exceeded (a trigger serialises
-- registrations per workshop on the workshop row and sends late arrivals to the waiting list),
-- promotion from the waiting list in arrival order, one bid per council per round, and an
-- append-only audit log written by triggers.

CREATE TABLE reference_data (
    name        text PRIMARY KEY,
    vintage     text NOT NULL,
    source      text NOT NULL,
    licence     text NOT NULL,
    rows        integer NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE councils (
    gss_code        text PRIMARY KEY
                    CHECK (gss_code ~ '^E(06|07|08|09|10)[0-9]{6}$'),
    name            text NOT NULL CHECK (btrim(name) <> ''),
    -- derived from the code prefix, so it can never disagree with the code
    council_type    text GENERATED ALWAYS AS (
                        CASE left(gss_code, 3)
                            WHEN 'E06' THEN 'unitary'
                            WHEN 'E07' THEN 'non-metropolitan district'
                            WHEN 'E08' THEN 'metropolitan district'
                            WHEN 'E09' THEN 'london borough'
                            WHEN 'E10' THEN 'county'
                        END) STORED,
    upper_tier_code text REFERENCES councils (gss_code),
    region          text CHECK (region IN (
                        'North East', 'North West', 'Yorkshire and The Humber',
                        'East Midlands', 'West Midlands', 'East of England', 'London',
                        'South East', 'South West')),
    source          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX councils_name_idx ON councils (lower(name));

CREATE TABLE fund_rounds (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
    name        text NOT NULL,
    opens_on    date,
    closes_on   date,
    results_on  date,
    budget_gbp  numeric(14, 2) CHECK (budget_gbp >= 0)
);

CREATE TABLE guidance_resources (
    id              bigserial PRIMARY KEY,
    title           text NOT NULL CHECK (btrim(title) <> ''),
    url             text NOT NULL CHECK (url ~ '^https?://'),
    published_on    date,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workshops (
    id          bigserial PRIMARY KEY,
    title       text NOT NULL CHECK (btrim(title) <> ''),
    venue       text NOT NULL,
    town        text NOT NULL,
    region      text CHECK (region IN (
                    'North East', 'North West', 'Yorkshire and The Humber',
                    'East Midlands', 'West Midlands', 'East of England', 'London',
                    'South East', 'South West')),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    timezone    text NOT NULL DEFAULT 'Europe/London',
    capacity    integer NOT NULL CHECK (capacity > 0),
    status      text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'held', 'cancelled')),
    speakers    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(speakers) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workshops_ends_after_start CHECK (ends_at > starts_at)
);

CREATE TABLE workshop_resources (
    workshop_id bigint NOT NULL REFERENCES workshops (id) ON DELETE CASCADE,
    resource_id bigint NOT NULL REFERENCES guidance_resources (id),
    PRIMARY KEY (workshop_id, resource_id)
);

CREATE SEQUENCE registration_arrival_seq;

CREATE TABLE registrations (
    id              bigserial PRIMARY KEY,
    workshop_id     bigint NOT NULL REFERENCES workshops (id),
    council_code    text NOT NULL REFERENCES councils (gss_code),
    person_name     text,
    person_role     text,
    email           text CHECK (email = lower(email)),
    status          text NOT NULL CHECK (status IN
                        ('registered', 'waiting', 'attended', 'no_show', 'cancelled')),
    -- set under the workshop lock, so it is the order in which the database served requests
    arrival         bigint NOT NULL DEFAULT 0,
    recorded_by     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    erased_at       timestamptz,
    CONSTRAINT registrations_person_known CHECK (erased_at IS NOT NULL OR (email IS NOT NULL AND person_name IS NOT NULL))
);
-- one live registration per email per workshop (a cancelled one may register again)
CREATE UNIQUE INDEX registrations_one_per_email
    ON registrations (workshop_id, email) WHERE status <> 'cancelled';
CREATE INDEX registrations_workshop_idx ON registrations (workshop_id, status, arrival);
CREATE INDEX registrations_email_idx ON registrations (email);

-- Capacity: places are taken by registered, attended and no-show registrations. Every insert
-- or status change locks the workshop row first, so concurrent requests queue here and the
-- count below sees every earlier one (each statement in a volatile function takes a fresh
-- snapshot in READ COMMITTED). A registration that finds the workshop full joins the waiting
-- list; recording attendance beyond capacity is refused.
CREATE FUNCTION registrations_hold_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    wstatus text;
    taken integer;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status AND NEW.workshop_id = OLD.workshop_id THEN
        RETURN NEW;
    END IF;
    SELECT capacity, status INTO cap, wstatus FROM workshops WHERE id = NEW.workshop_id FOR UPDATE;
    IF TG_OP = 'INSERT' THEN
        IF wstatus = 'cancelled' THEN
            RAISE EXCEPTION 'workshop % is cancelled: it takes no registrations', NEW.workshop_id
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.arrival := nextval('registration_arrival_seq');
    END IF;
    IF NEW.status IN ('registered', 'attended', 'no_show')
       AND (TG_OP = 'INSERT' OR OLD.status NOT IN ('registered', 'attended', 'no_show')) THEN
        SELECT count(*) INTO taken FROM registrations
         WHERE workshop_id = NEW.workshop_id AND status IN ('registered', 'attended', 'no_show');
        IF taken >= cap THEN
            IF NEW.status = 'registered' AND TG_OP = 'INSERT' THEN
                NEW.status := 'waiting';
            ELSE
                RAISE EXCEPTION 'workshop % is full (% places)', NEW.workshop_id, cap
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER registrations_capacity
    BEFORE INSERT OR UPDATE OF status, workshop_id ON registrations
    FOR EACH ROW EXECUTE FUNCTION registrations_hold_capacity();

-- Promote waiting registrations, first come first served, while places are free.
CREATE FUNCTION promote_waiting(wid bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    taken integer;
    promoted integer := 0;
    next_id bigint;
BEGIN
    SELECT capacity INTO cap FROM workshops WHERE id = wid FOR UPDATE;
    LOOP
        SELECT count(*) INTO taken FROM registrations
         WHERE workshop_id = wid AND status IN ('registered', 'attended', 'no_show');
        EXIT WHEN taken >= cap;
        SELECT id INTO next_id FROM registrations
         WHERE workshop_id = wid AND status = 'waiting' ORDER BY arrival LIMIT 1;
        EXIT WHEN next_id IS NULL;
        UPDATE registrations SET status = 'registered' WHERE id = next_id;
        promoted := promoted + 1;
    END LOOP;
    RETURN promoted;
END $$;

CREATE FUNCTION registrations_promote_on_free() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('registered', 'attended', 'no_show')
       AND NEW.status NOT IN ('registered', 'attended', 'no_show') THEN
        PERFORM promote_waiting(NEW.workshop_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER registrations_promote
    AFTER UPDATE OF status ON registrations
    FOR EACH ROW EXECUTE FUNCTION registrations_promote_on_free();

CREATE FUNCTION workshops_check_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    taken integer;
BEGIN
    SELECT count(*) INTO taken FROM registrations
     WHERE workshop_id = NEW.id AND status IN ('registered', 'attended', 'no_show');
    IF taken > NEW.capacity THEN
        RAISE EXCEPTION 'workshop % already has % places taken; capacity cannot go below that',
            NEW.id, taken USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER workshops_capacity
    BEFORE UPDATE OF capacity ON workshops
    FOR EACH ROW EXECUTE FUNCTION workshops_check_capacity();

-- more places: the waiting list moves up (after the update, so the new capacity is visible)
CREATE FUNCTION workshops_promote_on_more_places() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.capacity > OLD.capacity THEN
        PERFORM promote_waiting(NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER workshops_promote
    AFTER UPDATE OF capacity ON workshops
    FOR EACH ROW EXECUTE FUNCTION workshops_promote_on_more_places();

CREATE TABLE bids (
    id                  bigserial PRIMARY KEY,
    council_code        text NOT NULL REFERENCES councils (gss_code),
    round_code          text NOT NULL REFERENCES fund_rounds (code),
    status              text NOT NULL CHECK (status IN
                            ('intending', 'submitted', 'successful', 'unsuccessful', 'withdrawn')),
    amount_requested    numeric(14, 2) CHECK (amount_requested >= 0),
    amount_awarded      numeric(14, 2) CHECK (amount_awarded >= 0),
    submitted_on        date,
    decided_on          date,
    notes               text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bids_one_per_council_per_round UNIQUE (council_code, round_code),
    CONSTRAINT bids_award_only_if_successful
        CHECK (amount_awarded IS NULL OR status = 'successful'),
    CONSTRAINT bids_decided_after_submitted CHECK (decided_on IS NULL OR submitted_on IS NULL OR decided_on >= submitted_on)
);

-- Append-only audit log of every change to the bid-support tables. The actor is the
-- transaction's `wastepilot.actor` setting (set by the API per request).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    table_name  text NOT NULL,
    row_key     text NOT NULL,
    action      text NOT NULL CHECK (action IN ('insert', 'update', 'delete', 'erase')),
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_row_idx ON audit_log (table_name, row_key, id);

CREATE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    key_col text := TG_ARGV[0];
    b jsonb;
    a jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' AND (b - 'updated_at') = (a - 'updated_at') THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (actor, table_name, row_key, action, before, after)
    VALUES (coalesce(nullif(current_setting('wastepilot.actor', true), ''), session_user),
            TG_TABLE_NAME, coalesce(a, b) ->> key_col,
            CASE WHEN current_setting('wastepilot.erasing', true) = 'on' THEN 'erase'
                 ELSE lower(TG_OP) END,
            b, a);
    RETURN NULL;
END $$;

CREATE TRIGGER councils_audit AFTER INSERT OR UPDATE OR DELETE ON councils
    FOR EACH ROW EXECUTE FUNCTION audit_row('gss_code');
CREATE TRIGGER fund_rounds_audit AFTER INSERT OR UPDATE OR DELETE ON fund_rounds
    FOR EACH ROW EXECUTE FUNCTION audit_row('code');
CREATE TRIGGER guidance_resources_audit AFTER INSERT OR UPDATE OR DELETE ON guidance_resources
    FOR EACH ROW EXECUTE FUNCTION audit_row('id');
CREATE TRIGGER workshops_audit AFTER INSERT OR UPDATE OR DELETE ON workshops
    FOR EACH ROW EXECUTE FUNCTION audit_row('id');
CREATE TRIGGER workshop_resources_audit AFTER INSERT OR UPDATE OR DELETE ON workshop_resources
    FOR EACH ROW EXECUTE FUNCTION audit_row('workshop_id');
CREATE TRIGGER registrations_audit AFTER INSERT OR UPDATE OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION audit_row('id');
CREATE TRIGGER bids_audit AFTER INSERT OR UPDATE OR DELETE ON bids
    FOR EACH ROW EXECUTE FUNCTION audit_row('id');

-- The audit log only grows. The one exception is erasure of a person: their personal fields are
-- blanked in earlier audit rows too (data protection outranks the record of what they were),
-- and only under the transaction-local `wastepilot.erasing` flag, and only those fields.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('wastepilot.erasing', true) = 'on'
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.table_name = OLD.table_name AND NEW.row_key = OLD.row_key
       AND NEW.action = OLD.action
       AND (NEW.before IS NULL) = (OLD.before IS NULL)
       AND (NEW.after IS NULL) = (OLD.after IS NULL)
       AND (OLD.before IS NULL
            OR (NEW.before - 'person_name' - 'person_role' - 'email')
             = (OLD.before - 'person_name' - 'person_role' - 'email'))
       AND (OLD.after IS NULL
            OR (NEW.after - 'person_name' - 'person_role' - 'email')
             = (OLD.after - 'person_name' - 'person_role' - 'email')) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
