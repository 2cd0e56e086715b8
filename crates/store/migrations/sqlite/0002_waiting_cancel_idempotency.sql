-- Operations learn to wait without holding a worker (`waiting`), to be cancelled, and to
-- remember that they are unwinding; creates learn idempotency keys.
--
-- SQLite cannot change a CHECK constraint in place, so `operations` is rebuilt. Foreign keys
-- are on (and cannot be turned off inside the migration's transaction), so dropping the old
-- table cascades into `operation_steps`: the steps are set aside first and put back after.
CREATE TEMP TABLE steps_kept AS SELECT * FROM operation_steps;

CREATE TABLE operations_v2 (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs (id),
    kind              TEXT NOT NULL CHECK (kind IN ('provision', 'deprovision', 'sync')),
    dock_id           TEXT NOT NULL REFERENCES docks (id),
    -- No foreign key: the row lives in one of four tables, named by resource_kind.
    resource_id       TEXT,
    resource_kind     TEXT CHECK (resource_kind IN ('server', 'web_service', 'domain', 'database')),
    requested_by      TEXT,
    state             TEXT NOT NULL
                      CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed')),
    attempt           INTEGER NOT NULL,
    next_run_at       TEXT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    generation        INTEGER NOT NULL,
    input             TEXT NOT NULL,
    last_error        TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    -- JSON {code, message} while the operation undoes what it created before settling failed.
    unwind            TEXT,
    waiting_since     TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

INSERT INTO operations_v2 (id, org_id, kind, dock_id, resource_id, resource_kind, requested_by,
        state, attempt, next_run_at, lease_owner, lease_expires_at, generation, input,
        last_error, created_at, updated_at)
    SELECT id, org_id, kind, dock_id, resource_id, resource_kind, requested_by,
        state, attempt, next_run_at, lease_owner, lease_expires_at, generation, input,
        last_error, created_at, updated_at
    FROM operations;

DROP TABLE operations;
ALTER TABLE operations_v2 RENAME TO operations;

INSERT INTO operation_steps SELECT * FROM steps_kept;
DROP TABLE steps_kept;

-- Workers poll for runnable operations, the observer for waiting ones; finished ones pile up
-- and must slow neither. Queries repeat these `state` terms verbatim so the planner can use
-- the partial indexes.
CREATE INDEX operations_runnable ON operations (next_run_at, created_at, id)
    WHERE state IN ('queued', 'running');
CREATE INDEX operations_waiting ON operations (next_run_at, dock_id)
    WHERE state = 'waiting';
CREATE INDEX operations_resource ON operations (resource_id, created_at, id);
CREATE INDEX operations_org_created ON operations (org_id, created_at, id);
CREATE INDEX operations_dock ON operations (dock_id);

-- A create sent twice with the same Idempotency-Key answers the first row.
CREATE TABLE idempotency_keys (
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    key           TEXT NOT NULL,
    -- SHA-256 of the request, so the same key with another request is refused, not confused.
    request_hash  TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);
