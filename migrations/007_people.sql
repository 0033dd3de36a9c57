-- People who use the API and their tokens. Passwords are argon2 hashes; tokens are random and
-- stored only as SHA-256 hashes (a token has 256 bits of entropy, so a fast hash is enough;
-- a password has little, so it gets argon2's deliberately slow one).
CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    role            text NOT NULL CHECK (role IN ('analyst', 'officer', 'admin')),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE api_tokens (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id),
    name            text NOT NULL DEFAULT '',
    token_hash      text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    scope           text NOT NULL CHECK (scope IN ('read', 'write')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    last_used_at    timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
