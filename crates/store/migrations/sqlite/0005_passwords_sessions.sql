-- Users may sign in with a password (an Argon2id hash in PHC form, never the password) and
-- hold browser sessions: the cookie's secret and the CSRF token are kept as SHA-256 hashes.

ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL UNIQUE,
    csrf_hash    TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id),
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT
);

CREATE INDEX sessions_user ON sessions (user_id);
