-- API tokens get a name, a role of their own (at most their member's; NULL means the
-- member's role) and an optional expiry. Audit rows may record a refused request ('denied'):
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with its rows.

ALTER TABLE api_tokens ADD COLUMN name TEXT;
ALTER TABLE api_tokens ADD COLUMN role TEXT
    CHECK (role IS NULL OR role IN ('owner', 'admin', 'developer', 'viewer'));
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;

CREATE INDEX api_tokens_org_user ON api_tokens (org_id, user_id);

CREATE TABLE audit_log_rebuilt (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id    TEXT NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('requested', 'success', 'failure', 'denied')),
    resource  TEXT,
    provider  TEXT,
    details   TEXT NOT NULL,
    at        TEXT NOT NULL
);
INSERT INTO audit_log_rebuilt (id, org_id, actor, action, outcome, resource, provider, details, at)
    SELECT id, org_id, actor, action, outcome, resource, provider, details, at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_rebuilt RENAME TO audit_log;
CREATE INDEX audit_log_org ON audit_log (org_id, id);
