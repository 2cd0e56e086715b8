-- StackDock's schema on PostgreSQL: the same tables, columns and rules as the SQLite schema
-- (migrations/sqlite, taken as a whole), in PostgreSQL's own types:
--   ids         uuid
--   timestamps  timestamptz (microseconds, as the SQLite text keeps them)
--   JSON        jsonb
--   integers    bigint
--   enums       text in their snake_case names, checked here
--   names       text; those a listing orders by compare bytewise (COLLATE "C"), as in SQLite
--
-- Two things SQLite does not need: the change feed and the deploy log take their numbers from
-- one-row counters (feed_counter, deploy_log_counter), updated as the last write of the
-- transaction that appends, so the numbers follow commit order (see src/postgres/feed.rs).

CREATE TABLE orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    -- An Argon2id hash in PHC form, never the password.
    password_hash  text,
    created_at     timestamptz NOT NULL
);

CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    org_id      uuid NOT NULL REFERENCES orgs (id),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    name        text,
    -- NULL: the member's role, whatever it is at the time.
    role        text CHECK (role IS NULL OR role IN ('owner', 'admin', 'developer', 'viewer')),
    expires_at  timestamptz,
    purpose     text NOT NULL DEFAULT 'api' CHECK (purpose IN ('api', 'invitation'))
);

CREATE INDEX api_tokens_org_user ON api_tokens (org_id, user_id);
CREATE INDEX api_tokens_org_created ON api_tokens (org_id, created_at, id);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    secret_hash  text NOT NULL UNIQUE,
    csrf_hash    text NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id),
    org_id       uuid NOT NULL REFERENCES orgs (id),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE docks (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES orgs (id),
    provider        text NOT NULL,
    name            text COLLATE "C" NOT NULL,
    sealed_api_key  text NOT NULL,
    -- Also inside sealed_api_key; a column of its own finds what a key rotation must reseal.
    key_id          text NOT NULL,
    api_base_url    text,
    settings        jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    UNIQUE (org_id, name)
);

-- The four universal tables share their first sixteen columns. A dock can only be removed
-- once every row of it is gone, hence the plain REFERENCES without cascade.

CREATE TABLE servers (
    id                    uuid PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES orgs (id),
    dock_id               uuid NOT NULL REFERENCES docks (id),
    provider              text NOT NULL,
    provider_resource_id  text,
    name                  text NOT NULL,
    status                text,
    provisioning_source   text NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    text NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        timestamptz,
    full_api_data         jsonb NOT NULL,
    error                 jsonb,
    marker                text UNIQUE,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL,
    region                text,
    size                  text,
    image                 text,
    ipv4                  text,
    ipv6                  text
);

CREATE TABLE web_services (
    id                    uuid PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES orgs (id),
    dock_id               uuid NOT NULL REFERENCES docks (id),
    provider              text NOT NULL,
    provider_resource_id  text,
    name                  text NOT NULL,
    status                text,
    provisioning_source   text NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    text NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        timestamptz,
    full_api_data         jsonb NOT NULL,
    error                 jsonb,
    marker                text UNIQUE,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL,
    production_url        text,
    source                text
);

CREATE TABLE domains (
    id                    uuid PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES orgs (id),
    dock_id               uuid NOT NULL REFERENCES docks (id),
    provider              text NOT NULL,
    provider_resource_id  text,
    name                  text NOT NULL,
    status                text,
    provisioning_source   text NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    text NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        timestamptz,
    full_api_data         jsonb NOT NULL,
    error                 jsonb,
    marker                text UNIQUE,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL,
    records               jsonb NOT NULL
);

CREATE TABLE databases (
    id                    uuid PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES orgs (id),
    dock_id               uuid NOT NULL REFERENCES docks (id),
    provider              text NOT NULL,
    provider_resource_id  text,
    name                  text NOT NULL,
    status                text,
    provisioning_source   text NOT NULL CHECK (provisioning_source IN ('api', 'manual')),
    provisioning_state    text NOT NULL CHECK (provisioning_state IN
                            ('provisioning', 'provisioned', 'failed', 'deprovisioning', 'deprovisioned')),
    provisioned_at        timestamptz,
    full_api_data         jsonb NOT NULL,
    error                 jsonb,
    marker                text UNIQUE,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL,
    engine                text,
    region                text,
    host                  text
);

-- One live row per provider resource and dock: a deprovisioned row is history.
CREATE UNIQUE INDEX servers_live_provider_id ON servers (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX web_services_live_provider_id ON web_services (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX domains_live_provider_id ON domains (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';
CREATE UNIQUE INDEX databases_live_provider_id ON databases (dock_id, provider_resource_id)
    WHERE provider_resource_id IS NOT NULL AND provisioning_state <> 'deprovisioned';

-- Listings walk these newest first from a page's key.
CREATE INDEX servers_org_created ON servers (org_id, created_at, id);
CREATE INDEX web_services_org_created ON web_services (org_id, created_at, id);
CREATE INDEX domains_org_created ON domains (org_id, created_at, id);
CREATE INDEX databases_org_created ON databases (org_id, created_at, id);
CREATE INDEX servers_org_dock_created ON servers (org_id, dock_id, created_at, id);
CREATE INDEX web_services_org_dock_created ON web_services (org_id, dock_id, created_at, id);
CREATE INDEX domains_org_dock_created ON domains (org_id, dock_id, created_at, id);
CREATE INDEX databases_org_dock_created ON databases (org_id, dock_id, created_at, id);
CREATE INDEX servers_org_state_created ON servers (org_id, provisioning_state, created_at, id);
CREATE INDEX web_services_org_state_created ON web_services (org_id, provisioning_state, created_at, id);
CREATE INDEX domains_org_state_created ON domains (org_id, provisioning_state, created_at, id);
CREATE INDEX databases_org_state_created ON databases (org_id, provisioning_state, created_at, id);
CREATE INDEX servers_org_source_created ON servers (org_id, provisioning_source, created_at, id);
CREATE INDEX web_services_org_source_created ON web_services (org_id, provisioning_source, created_at, id);
CREATE INDEX domains_org_source_created ON domains (org_id, provisioning_source, created_at, id);
CREATE INDEX databases_org_source_created ON databases (org_id, provisioning_source, created_at, id);

-- Removing a dock counts and deletes its rows; the partial indexes above cannot serve that.
CREATE INDEX servers_dock ON servers (dock_id);
CREATE INDEX web_services_dock ON web_services (dock_id);
CREATE INDEX domains_dock ON domains (dock_id);
CREATE INDEX databases_dock ON databases (dock_id);

CREATE TABLE operations (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL REFERENCES orgs (id),
    kind              text NOT NULL CHECK (kind IN ('provision', 'deprovision', 'sync')),
    dock_id           uuid NOT NULL REFERENCES docks (id),
    -- No foreign key: the row lives in one of four tables, named by resource_kind.
    resource_id       uuid,
    resource_kind     text CHECK (resource_kind IN ('server', 'web_service', 'domain', 'database')),
    requested_by      uuid,
    state             text NOT NULL
                      CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed')),
    attempt           bigint NOT NULL,
    next_run_at       timestamptz NOT NULL,
    lease_owner       text,
    lease_expires_at  timestamptz,
    generation        bigint NOT NULL,
    input             jsonb NOT NULL,
    last_error        text,
    cancel_requested  boolean NOT NULL DEFAULT false,
    -- {code, message} while the operation undoes what it created before settling failed.
    unwind            jsonb,
    waiting_since     timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

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

CREATE TABLE operation_steps (
    operation_id  uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    step_index    bigint NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL CHECK (status IN ('done', 'undone')),
    output        jsonb NOT NULL,
    undo          jsonb NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (operation_id, step_index)
);

CREATE TABLE idempotency_keys (
    org_id        uuid NOT NULL REFERENCES orgs (id),
    key           text NOT NULL,
    -- SHA-256 of the request, so the same key with another request is refused, not confused.
    request_hash  text NOT NULL,
    resource_id   uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, key)
);

-- History: append-only, no foreign keys, outlives the rows it mentions. Ids are identities
-- BY DEFAULT so a copy from SQLite keeps them (and then moves the identity past them).

CREATE TABLE api_calls (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    org_id        uuid NOT NULL,
    dock_id       uuid NOT NULL,
    resource_id   uuid,
    operation_id  uuid,
    method        text NOT NULL,
    path          text NOT NULL,
    status        bigint,
    duration_ms   bigint NOT NULL,
    request_id    text,
    attempt       bigint NOT NULL,
    error         text,
    at            timestamptz NOT NULL
);

CREATE INDEX api_calls_resource ON api_calls (resource_id, id);
CREATE INDEX api_calls_operation ON api_calls (operation_id, id);

CREATE TABLE audit_log (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL,
    actor       uuid,
    token_id    uuid,
    request_id  uuid,
    action      text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('requested', 'success', 'failure', 'denied')),
    resource    text,
    provider    text,
    details     jsonb NOT NULL,
    at          timestamptz NOT NULL
);

CREATE INDEX audit_log_org ON audit_log (org_id, id);
CREATE INDEX audit_log_org_outcome ON audit_log (org_id, outcome, id);

-- The change feed. `seq` comes from feed_counter, never reused: SSE clients resume from the
-- last seq they saw.
CREATE TABLE changes (
    seq          bigint PRIMARY KEY,
    org_id       uuid NOT NULL,
    resource_id  uuid NOT NULL,
    kind         text NOT NULL,
    snapshot     jsonb NOT NULL,
    at           timestamptz NOT NULL
);

CREATE INDEX changes_org_seq ON changes (org_id, seq);

CREATE TABLE feed_counter (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL
);
INSERT INTO feed_counter (seq) VALUES (0);

-- The deploy log, with its own counter.
CREATE TABLE deploy_logs (
    seq           bigint PRIMARY KEY,
    org_id        uuid NOT NULL,
    resource_id   uuid NOT NULL,
    operation_id  uuid NOT NULL,
    line          text NOT NULL,
    at            timestamptz NOT NULL
);

CREATE INDEX deploy_logs_by_resource ON deploy_logs (resource_id, seq);
CREATE INDEX deploy_logs_by_org ON deploy_logs (org_id, seq);

CREATE TABLE deploy_log_counter (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL
);
INSERT INTO deploy_log_counter (seq) VALUES (0);
