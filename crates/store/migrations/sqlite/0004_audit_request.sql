-- Audit rows name the API token and the request an action came through, and are searched by
-- outcome (the refused ones) and by action.

ALTER TABLE audit_log ADD COLUMN token_id TEXT;
ALTER TABLE audit_log ADD COLUMN request_id TEXT;

CREATE INDEX audit_log_org_outcome ON audit_log (org_id, outcome, id);
