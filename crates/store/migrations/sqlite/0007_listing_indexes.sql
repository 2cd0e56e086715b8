-- A listing filtered by dock, state or source walks its own index newest first from the page's
-- key, instead of every row of the org: each page reads about as many rows as it answers.

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
