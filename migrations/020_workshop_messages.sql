-- Waiting-list offers with a hold deadline (issue 31). A place freed in a workshop still to
-- come is no longer given silently to the first person waiting: it is *offered* to them. The
-- offer holds the place (it counts as taken) until offer_expires_at, stamped by the
-- application with WASTEPILOT_OFFER_HOLD_H when it queues the offer's e-mail (bids/offers.py);
-- the person accepts (registered) or declines; an offer nobody takes up in time *lapses* and the
-- place is offered to the next person. A workshop already held, or cancelled, promotes as
-- before (no one is asked to accept a place at something that has happened).
ALTER TABLE registrations DROP CONSTRAINT registrations_status_check;
ALTER TABLE registrations ADD CONSTRAINT registrations_status_check CHECK (status IN
    ('registered', 'waiting', 'offered', 'lapsed', 'attended', 'no_show', 'cancelled'));
ALTER TABLE registrations
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN offer_token_hash bytea;  -- sha256 of the accept link's secret (never the secret)
CREATE UNIQUE INDEX registrations_offer_token_idx ON registrations (offer_token_hash)
    WHERE offer_token_hash IS NOT NULL;
CREATE INDEX registrations_offers_idx ON registrations (offer_expires_at)
    WHERE status = 'offered';

-- a person whose offer lapsed may register again, as may one who cancelled
DROP INDEX registrations_one_per_email;
CREATE UNIQUE INDEX registrations_one_per_email
    ON registrations (workshop_id, email) WHERE status NOT IN ('cancelled', 'lapsed');

-- places are taken by registered, offered (held), attended and no-show registrations
CREATE OR REPLACE FUNCTION registrations_hold_capacity() RETURNS trigger
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
    IF NEW.status IN ('registered', 'offered', 'attended', 'no_show')
       AND (TG_OP = 'INSERT'
            OR OLD.status NOT IN ('registered', 'offered', 'attended', 'no_show')) THEN
        SELECT count(*) INTO taken FROM registrations
         WHERE workshop_id = NEW.workshop_id
           AND status IN ('registered', 'offered', 'attended', 'no_show');
        IF taken >= cap THEN
            IF NEW.status = 'registered' AND TG_OP = 'INSERT' THEN
                NEW.status := 'waiting';
            ELSE
                RAISE EXCEPTION 'workshop % is full (% places)', NEW.workshop_id, cap
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END IF;
    IF NEW.status <> 'offered' THEN
        NEW.offer_token_hash := NULL;  -- an answered or lapsed offer's link no longer works
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Free places go to the people waiting, first come first served: offered for a planned
-- workshop (bids/offers.py stamps the deadline and queues the e-mail in the same
-- transaction), registered for one already held.
CREATE OR REPLACE FUNCTION promote_waiting(wid bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    wstatus text;
    taken integer;
    promoted integer := 0;
    next_id bigint;
BEGIN
    SELECT capacity, status INTO cap, wstatus FROM workshops WHERE id = wid FOR UPDATE;
    IF wstatus = 'cancelled' THEN
        RETURN 0;
    END IF;
    LOOP
        SELECT count(*) INTO taken FROM registrations
         WHERE workshop_id = wid AND status IN ('registered', 'offered', 'attended', 'no_show');
        EXIT WHEN taken >= cap;
        SELECT id INTO next_id FROM registrations
         WHERE workshop_id = wid AND status = 'waiting' ORDER BY arrival LIMIT 1;
        EXIT WHEN next_id IS NULL;
        UPDATE registrations
           SET status = CASE WHEN wstatus = 'planned' THEN 'offered' ELSE 'registered' END
         WHERE id = next_id;
        promoted := promoted + 1;
    END LOOP;
    RETURN promoted;
END $$;

CREATE OR REPLACE FUNCTION registrations_promote_on_free() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('registered', 'offered', 'attended', 'no_show')
       AND NEW.status NOT IN ('registered', 'offered', 'attended', 'no_show') THEN
        PERFORM promote_waiting(NEW.workshop_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION workshops_check_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    taken integer;
BEGIN
    SELECT count(*) INTO taken FROM registrations
     WHERE workshop_id = NEW.id AND status IN ('registered', 'offered', 'attended', 'no_show');
    IF taken > NEW.capacity THEN
        RAISE EXCEPTION 'workshop % already has % places taken; capacity cannot go below that',
            NEW.id, taken USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

-- What a message is about ("workshop:12", "alert:7"), so a page lists a workshop's messages
-- without parsing references (bids/notices.py sent_for_workshop).
ALTER TABLE outbox ADD COLUMN topic text;
CREATE INDEX outbox_topic_idx ON outbox (topic, created_at DESC) WHERE topic IS NOT NULL;
