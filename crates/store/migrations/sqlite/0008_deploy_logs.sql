-- The deploy log: what a provider printed while an operation worked on a resource (a
-- container image's build and push output), line by line, already scrubbed of secrets and
-- bounded per run by the engine. Append-only history like api_calls: no foreign keys, and it
-- outlives the resource it tells of.

CREATE TABLE deploy_logs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    operation_id  TEXT NOT NULL,
    line          TEXT NOT NULL,
    at            TEXT NOT NULL
);

CREATE INDEX deploy_logs_by_resource ON deploy_logs (resource_id, seq);
