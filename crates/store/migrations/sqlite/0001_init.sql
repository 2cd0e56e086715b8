-- StackDock's schema. Written so that the PostgreSQL migrations can use the same table and
-- column names and the same text forms:
--   ids         TEXT, hyphenated lowercase UUIDs
--   timestamps  TEXT, RFC 3339 UTC with exactly six fractional digits
--               ('2026-11-26T01:02:03.123456Z'), so comparing the text orders the instants
--   JSON        TEXT
--   enums       TEXT in their snake_case names, checked here
--
-- Foreign keys tie the tables that hold current state together (orgs, docks, resource rows,
-- operations). The history tables (api_calls, audit_log, changes) carry ids but no foreign
-- keys: they are append-only, outlive the rows they mention, and a journal entry may be
-- written for a dock that is still being connected.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE memberships (
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE docks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    provider        TEXT NOT NULL,
    name            TEXT NOT NULL,
    sealed_api_key  TEXT NOT NULL,
    -- Also inside sealed_api_key; a column of its own finds what a key rotation must reseal.
    key_id          TEXT NOT NULL,
    api_base_url    TEXT,
    settings        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (org_id, name)
);

-- The four universal tables share their first sixteen columns.
-- A dock can only be removed once every row of it is gone (see remove_dock), hence the plain
-- REFERENCES without cascade: a row never points at a dock that does not exist.

CREATE TABLE servers (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs (id),
    dock_id               TEXT NOT NULL REFERENCES docks (id),
    provider              TEXT NOT NULL,
    provider_resource_id  TEXT,
    name                  TEXT NOT NULL,
    status                TEXT,
    provisioning_source   TEXT NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    TEXT NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        TEXT,
    full_api_data         TEXT NOT NULL,
    error                 TEXT,
    marker                TEXT UNIQUE,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    version               INTEGER NOT NULL,
    region                TEXT,
    size                  TEXT,
    image                 TEXT,
    ipv4                  TEXT,
    ipv6                  TEXT
);

CREATE TABLE web_services (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs (id),
    dock_id               TEXT NOT NULL REFERENCES docks (id),
    provider              TEXT NOT NULL,
    provider_resource_id  TEXT,
    name                  TEXT NOT NULL,
    status                TEXT,
    provisioning_source   TEXT NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    TEXT NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        TEXT,
    full_api_data         TEXT NOT NULL,
    error                 TEXT,
    marker                TEXT UNIQUE,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    version               INTEGER NOT NULL,
    production_url        TEXT,
    source                TEXT
);

CREATE TABLE domains (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs (id),
    dock_id               TEXT NOT NULL REFERENCES docks (id),
    provider              TEXT NOT NULL,
    provider_resource_id  TEXT,
    name                  TEXT NOT NULL,
    status                TEXT,
    provisioning_source   TEXT NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    TEXT NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        TEXT,
    full_api_data         TEXT NOT NULL,
    error                 TEXT,
    marker                TEXT UNIQUE,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    version               INTEGER NOT NULL,
    records               TEXT NOT NULL
);

CREATE TABLE databases (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs (id),
    dock_id               TEXT NOT NULL REFERENCES docks (id),
    provider              TEXT NOT NULL,
    provider_resource_id  TEXT,
    name                  TEXT NOT NULL,
    status                TEXT,
    provisioning_source   TEXT NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    TEXT NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        TEXT,
    full_api_data         TEXT NOT NULL,
    error                 TEXT,
    marker                TEXT UNIQUE,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    version               INTEGER NOT NULL,
    engine                TEXT,
    region                TEXT,
    host                  TEXT
);

-- One live row per provider resource and dock: a deprovisioned row is history and does not
-- stop the same provider id (some providers reuse them) from being tracked again.
CREATE UNIQUE INDEX servers_live_provider_id ON servers (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX web_services_live_provider_id ON web_services (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX domains_live_provider_id ON domains (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX databases_live_provider_id ON databases (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';

-- Listing is newest first within an org.
CREATE INDEX servers_org_created ON servers (org_id, created_at, id);
CREATE INDEX web_services_org_created ON web_services (org_id, created_at, id);
CREATE INDEX domains_org_created ON domains (org_id, created_at, id);
CREATE INDEX databases_org_created ON databases (org_id, created_at, id);

-- Removing a dock counts and deletes its rows, and the foreign key check on deleting the dock
-- looks them up; the partial indexes above cannot serve either.
CREATE INDEX servers_dock ON servers (dock_id);
CREATE INDEX web_services_dock ON web_services (dock_id);
CREATE INDEX domains_dock ON domains (dock_id);
CREATE INDEX databases_dock ON databases (dock_id);

CREATE TABLE operations (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs (id),
    kind              TEXT NOT NULL CHECK (kind IN ('provision', 'deprovision', 'sync')),
    dock_id           TEXT NOT NULL REFERENCES docks (id),
    -- No foreign key: the row lives in one of four tables, named by resource_kind.
    resource_id       TEXT,
    resource_kind     TEXT CHECK (resource_kind IN ('server', 'web_service', 'domain', 'database')),
    requested_by      TEXT,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempt           INTEGER NOT NULL,
    next_run_at       TEXT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    generation        INTEGER NOT NULL,
    input             TEXT NOT NULL,
    last_error        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

-- Workers poll for runnable operations; finished ones pile up and must not slow the poll.
-- Queries repeat the `state IN (...)` term verbatim so the planner can use this index.
CREATE INDEX operations_runnable ON operations (next_run_at, created_at, id)
    WHERE state IN ('queued', 'running');
CREATE INDEX operations_resource ON operations (resource_id, created_at, id);
CREATE INDEX operations_org_created ON operations (org_id, created_at, id);
CREATE INDEX operations_dock ON operations (dock_id);

CREATE TABLE operation_steps (
    operation_id  TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    step_index    INTEGER NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('done', 'undone')),
    output        TEXT NOT NULL,
    undo          TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (operation_id, step_index)
);

CREATE TABLE api_calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL,
    dock_id       TEXT NOT NULL,
    resource_id   TEXT,
    operation_id  TEXT,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    status        INTEGER,
    duration_ms   INTEGER NOT NULL,
    request_id    TEXT,
    attempt       INTEGER NOT NULL,
    error         TEXT,
    at            TEXT NOT NULL
);

CREATE INDEX api_calls_resource ON api_calls (resource_id, id);
CREATE INDEX api_calls_operation ON api_calls (operation_id, id);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id    TEXT NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('requested', 'success', 'failure')),
    resource  TEXT,
    provider  TEXT,
    details   TEXT NOT NULL,
    at        TEXT NOT NULL
);

CREATE INDEX audit_log_org ON audit_log (org_id, id);

-- The change feed. AUTOINCREMENT, not a plain rowid: a seq is never reused, even after the
-- newest rows are deleted, because SSE clients resume from the last seq they saw.
CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    snapshot     TEXT NOT NULL,
    at           TEXT NOT NULL
);

CREATE INDEX changes_org_seq ON changes (org_id, seq);
