-- Delivery receipts and the analysts' daily digest (issue 31).
--
-- A message handed to GOV.UK Notify is 'sent' (accepted); Notify's delivery receipt (its
-- callback to /api/v1/notify/delivery) or, when no receipt comes, the outbox asking Notify
-- (core/outbox.py: check_deliveries) makes it 'delivered' or 'failed' with Notify's reason.
-- An SMTP server's acceptance is its last word: those rows stay 'sent'.
ALTER TABLE outbox
    ADD COLUMN provider          text,  -- smtp or notify: who took it
    ADD COLUMN delivered_at      timestamptz,
    ADD COLUMN status_checked_at timestamptz,  -- last asked of the provider
    ADD COLUMN unsubscribe_url   text;  -- set for a message that is not transactional
CREATE INDEX outbox_provider_ref_idx ON outbox (provider_ref) WHERE provider_ref IS NOT NULL;
-- the per-minute budget counts recent tries; receipts are awaited oldest first
CREATE INDEX outbox_claimed_at_idx ON outbox (claimed_at);
CREATE INDEX outbox_awaiting_receipt_idx ON outbox (sent_at) WHERE status = 'sent';

-- An analyst (or admin) who asked for the daily digest: new and still-open alerts and
-- yesterday's figures, to this address — once the address has confirmed it (a link e-mailed
-- to it, `confirm`, spent on use): a typo never gets a household's alerts every morning.
-- Every digest carries the same unsubscribe link, so its secret is kept as it is: it lets
-- whoever holds it stop this digest and nothing else.
CREATE TABLE digest_subscriptions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    email            text NOT NULL,
    unsubscribe      text NOT NULL UNIQUE,
    confirm          text UNIQUE,  -- the confirmation link's secret, NULL once confirmed
    confirmed_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
