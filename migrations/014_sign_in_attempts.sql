-- Sign-in attempts (issue 26: a throttle that cannot be raced, shared by every API process).
-- A row is written and committed *before* the password is checked, then the window's rows are
-- counted: of N attempts at once, the k-th to commit counts at least k, so no more than the
-- limit are ever checked. A right password or a refused attempt takes its row back; a wrong
-- one leaves it for the window (a minute). Rows older than that are deleted as new ones come.
-- Keys, not people: 'user:<name>' and 'addr:<client address>'.
CREATE TABLE sign_in_attempts (
    id        bigserial PRIMARY KEY,
    user_key  text NOT NULL,
    addr_key  text NOT NULL,
    at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX sign_in_attempts_user_idx ON sign_in_attempts (user_key, at);
CREATE INDEX sign_in_attempts_addr_idx ON sign_in_attempts (addr_key, at);
CREATE INDEX sign_in_attempts_at_idx ON sign_in_attempts (at);
