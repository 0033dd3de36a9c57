-- Bids as the fund really had them (issue 18): a lead council bidding for a partnership, more
-- than one scheme per council per round, and a status history that keeps an award a council
-- later gave back.
ALTER TABLE bids ADD COLUMN scheme text NOT NULL DEFAULT '' CHECK (length(scheme) <= 200);
ALTER TABLE bids DROP CONSTRAINT bids_one_per_council_per_round;
ALTER TABLE bids ADD CONSTRAINT bids_one_per_scheme UNIQUE (council_code, round_code, scheme);
ALTER TABLE bids DROP CONSTRAINT bids_award_only_if_successful;
ALTER TABLE bids ADD CONSTRAINT bids_award_only_if_awarded
    CHECK (amount_awarded IS NULL OR status IN ('successful', 'withdrawn'));

-- the partner councils of a joint bid (the lead is bids.council_code)
CREATE TABLE bid_partners (
    bid_id       bigint NOT NULL REFERENCES bids (id) ON DELETE CASCADE,
    council_code text NOT NULL REFERENCES councils (gss_code),
    PRIMARY KEY (bid_id, council_code)
);
CREATE INDEX bid_partners_council_idx ON bid_partners (council_code);
CREATE TRIGGER bid_partners_audit AFTER INSERT OR UPDATE OR DELETE ON bid_partners
    FOR EACH ROW EXECUTE FUNCTION audit_row('bid_id');

-- every status a bid has had, with the award as it stood then (kept when it is withdrawn)
CREATE TABLE bid_status_history (
    id             bigserial PRIMARY KEY,
    bid_id         bigint NOT NULL REFERENCES bids (id) ON DELETE CASCADE,
    status         text NOT NULL,
    amount_awarded numeric(14, 2),
    on_date        date,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor          text NOT NULL
);
CREATE INDEX bid_status_history_bid_idx ON bid_status_history (bid_id, id);

CREATE FUNCTION bid_status_history_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.amount_awarded IS DISTINCT FROM OLD.amount_awarded THEN
        INSERT INTO bid_status_history (bid_id, status, amount_awarded, on_date, actor)
        VALUES (NEW.id, NEW.status, NEW.amount_awarded,
                CASE NEW.status WHEN 'submitted' THEN NEW.submitted_on
                                WHEN 'successful' THEN NEW.decided_on
                                WHEN 'unsuccessful' THEN NEW.decided_on END,
                coalesce(nullif(current_setting('wastepilot.actor', true), ''), session_user));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bids_status_history AFTER INSERT OR UPDATE ON bids
    FOR EACH ROW EXECUTE FUNCTION bid_status_history_row();

INSERT INTO bid_status_history (bid_id, status, amount_awarded, on_date, actor)
SELECT id, status, amount_awarded, coalesce(decided_on, submitted_on), 'migration 012' FROM bids;
