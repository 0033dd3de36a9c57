-- Field-visit alerts with a lifecycle, and an outbox of messages to send (issue 31).
--
-- An alert is one device check (offline, jams often, leak, high water per use) for one device:
-- pending while found for less than WASTEPILOT_ALERTS_OPEN_AFTER_MIN, then open (the rota's
-- first person is told), acknowledged by someone, resolved by the check clearing for
-- WASTEPILOT_ALERTS_RESOLVE_AFTER_MIN or by a person with a note. Never two live at once for a
-- device and a check (analytics/alerts.py; docs/analytics.md, "Alerts").
CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    device_id        text NOT NULL,
    household_ref    text NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'open', 'acknowledged', 'resolved')),
    detail           text NOT NULL,
    first_found      timestamptz NOT NULL,
    last_found       timestamptz NOT NULL,
    opened_at        timestamptz,
    clear_since      timestamptz,  -- the check no longer finds it (resolves after the period)
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    assigned_to      text,
    escalation_level integer NOT NULL DEFAULT 0,  -- the rota's position last told
    escalated_at     timestamptz,
    resolved_at      timestamptz,
    resolved_by      text,  -- a person's name, or NULL when the check cleared
    resolution_note  text,
    -- resolved by a person while the check still finds it: no new alert until it stops
    holds_back       boolean NOT NULL DEFAULT false,
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE UNIQUE INDEX alerts_live_idx ON alerts (kind, device_id) WHERE state <> 'resolved';
CREATE INDEX alerts_household_idx ON alerts (household_ref, first_found DESC);

-- What happened to an alert, by whom (a person's name; NULL: the checks or the escalation).
CREATE TABLE alert_history (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    action    text NOT NULL,
    actor     text,
    note      text
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, at);

-- A message to send, written in the transaction of the event that causes it. event_ref names
-- the event (alert 12 opened: "alert:12:told:0"), once: the same event never queues twice, and
-- it is the reference given to the provider. Sent by the send_outbox job (core/outbox.py).
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_ref       text NOT NULL UNIQUE,
    template        text NOT NULL,
    to_address      text,  -- NULL once erased
    personalisation jsonb NOT NULL DEFAULT '{}',
    transactional   boolean NOT NULL DEFAULT true,
    status          text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'erased')),
    attempts        integer NOT NULL DEFAULT 0,
    -- sends started but not recorded (the sender died in between): each a possible duplicate
    interrupted     integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    provider_ref    text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status IN ('queued', 'sending');
