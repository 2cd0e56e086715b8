-- The nodes alive on this database, each until its heartbeat runs out: how many share every
-- dock's rate limit. Rows come and go; nothing refers to them.
CREATE TABLE nodes (
    name        text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
