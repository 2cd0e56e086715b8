//! Recording intent: what the server calls when a user asks for something. Each request is
//! checked, then written whole — resource row, operation, audit row — in one transaction, and
//! handed to the workers. Nothing here calls a provider.

use serde_json::{Map, Value, json};
use stackdock_core::{
    AuditEntry, Dock, DockName, Marker, OpKind, Operation, OrgId, Outcome, Provider,
    ProvisioningSource, ProvisioningState, RequestId, Resource, ResourceDetails, ResourceId,
    ResourceKind, SecretString, TokenId, UserId,
};
use std::sync::Arc;

use stackdock_docks::{CallScope, ConfigError, Ctx, DockAdapter, DockError, RateLimit};
use stackdock_store::{Batch, IdempotentRequest, PageRequest, StoreError, Write};

use crate::recorder::ConnectRecorder;
use crate::worker::merge;
use crate::{Engine, EngineError};

/// Who is asking: the user (for the audit log) in their organisation, and the token and API
/// request they asked through, if they did.
#[derive(Clone, Copy, Debug)]
pub struct Actor {
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
    pub token_id: Option<TokenId>,
    pub request_id: Option<RequestId>,
}

impl Actor {
    /// The actor of the org's own start-up and tools: no user, token or request.
    pub fn system(org_id: OrgId, user_id: Option<UserId>) -> Self {
        Self {
            org_id,
            user_id,
            token_id: None,
            request_id: None,
        }
    }

    /// An audit row of an action this actor takes.
    pub fn audit(&self, action: impl Into<String>, outcome: Outcome) -> AuditEntry {
        AuditEntry::new(self.org_id, self.user_id, action, outcome)
            .through(self.token_id, self.request_id)
    }
}

/// A new dock as a user describes it.
pub struct NewDock {
    pub provider: Provider,
    pub name: DockName,
    pub api_key: SecretString,
    pub api_base_url: Option<String>,
    /// The account's rate limit, when the owner sets one; `None` keeps the provider's
    /// documented limits.
    pub rate_limit: Option<RateLimit>,
    /// The provider's own dock settings (a Turso organization), checked against the
    /// adapter's `dock_settings_schema`.
    pub settings: Map<String, Value>,
    /// Check the key with the provider before saving the dock.
    pub verify: bool,
}

/// What changes on an existing dock; `None` leaves a part as it is.
#[derive(Default)]
pub struct DockUpdate {
    /// `Some(None)` goes back to the provider's public URL.
    pub api_base_url: Option<Option<String>>,
    pub api_key: Option<SecretString>,
    /// `Some(None)` goes back to the provider's documented limits.
    pub rate_limit: Option<Option<RateLimit>>,
    /// Check a new key or URL with the provider before saving it, as adding a dock does.
    pub verify: bool,
}

/// A provision request as recorded.
pub struct Requested {
    pub resource: Resource,
    pub operation: Operation,
    /// The request repeated an earlier one with the same `Idempotency-Key`: this is the row
    /// that one made, and nothing new was recorded.
    pub replayed: bool,
}

/// Checks a new dock's settings against what its provider takes; a problem names the field
/// as `settings.<field>`.
fn check_settings(
    adapter: &dyn DockAdapter,
    settings: &Map<String, Value>,
) -> Result<(), EngineError> {
    let prefixed = |e: ConfigError| ConfigError::new(format!("settings.{}", e.field), e.message);
    match adapter.dock_settings_schema() {
        Some(schema) => schema.validate(settings).map_err(prefixed)?,
        None => {
            if let Some(field) = settings.keys().next() {
                return Err(EngineError::InvalidConfig(ConfigError::new(
                    format!("settings.{field}"),
                    format!("{} docks take no settings", adapter.provider()),
                )));
            }
        }
    }
    Ok(())
}

/// The most characters of an `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// The audit `resource` field for a row.
pub(crate) fn audit_ref(kind: ResourceKind, id: ResourceId) -> String {
    format!("{}/{}", kind.collection(), id)
}

impl Engine {
    /// Connects a provider account: seals the key to the new dock's id and records it.
    pub async fn add_dock(&self, actor: Actor, new: NewDock) -> Result<Dock, EngineError> {
        let adapter = self
            .inner
            .registry
            .get(new.provider)
            .ok_or(EngineError::NoAdapter(new.provider))?;
        if new.api_key.is_empty() && adapter.key_required() {
            return Err(EngineError::InvalidConfig(
                stackdock_docks::ConfigError::new("api_key", "is required"),
            ));
        }
        check_settings(&*adapter, &new.settings)?;
        // Before the key is checked: a provider is not asked about a dock that cannot be saved.
        // The store's uniqueness still decides a race between two adds.
        if self
            .inner
            .store
            .find_dock_by_name(actor.org_id, &new.name)
            .await?
            .is_some()
        {
            return Err(EngineError::Conflict(format!(
                "a dock named {} already exists",
                new.name
            )));
        }
        let id = stackdock_core::DockId::new();
        let mut settings = new.settings;
        if let Some(limit) = &new.rate_limit {
            settings.insert("rate_limit".into(), Value::String(limit.to_string()));
        }
        let dock = Dock {
            id,
            org_id: actor.org_id,
            provider: new.provider,
            name: new.name,
            sealed_api_key: self.inner.keyring.seal(&new.api_key, &id.to_string()),
            api_base_url: new.api_base_url,
            settings: Value::Object(settings),
            created_at: chrono::Utc::now(),
        };
        if new.verify {
            self.verify_key(&*adapter, &dock).await?;
        }
        let audit = actor
            .audit("dock.add", Outcome::Success)
            .resource(format!("docks/{id}"))
            .provider(dock.provider.as_str())
            .details(json!({"name": dock.name}));
        self.inner
            .store
            .apply(
                Batch::new()
                    .push(Write::InsertDock(dock.clone()))
                    .push(Write::Audit(audit)),
            )
            .await?;
        Ok(dock)
    }

    /// Changes an existing dock: its base URL, its API key (sealed again to the dock), its rate
    /// limit. The new limit applies to calls from now on, in flight or not.
    pub async fn update_dock(
        &self,
        actor: Actor,
        mut dock: Dock,
        update: DockUpdate,
    ) -> Result<Dock, EngineError> {
        // A new key or URL is checked as a new dock's is: a dock never keeps a key the
        // provider refuses, or a URL no key was checked against.
        let check = update.verify && (update.api_base_url.is_some() || update.api_key.is_some());
        let mut changed = Vec::new();
        if let Some(url) = update.api_base_url {
            dock.api_base_url = url;
            changed.push("api_url");
        }
        if let Some(key) = update.api_key {
            if key.is_empty() {
                return Err(EngineError::InvalidConfig(ConfigError::new(
                    "api_key",
                    "must not be empty",
                )));
            }
            dock.sealed_api_key = self.inner.keyring.seal(&key, &dock.id.to_string());
            changed.push("api_key");
        }
        if check {
            let adapter = self
                .inner
                .registry
                .get(dock.provider)
                .ok_or(EngineError::NoAdapter(dock.provider))?;
            self.verify_key(&*adapter, &dock).await?;
        }
        if let Some(limit) = update.rate_limit {
            if !dock.settings.is_object() {
                dock.settings = Value::Object(Map::new());
            }
            if let Some(settings) = dock.settings.as_object_mut() {
                match &limit {
                    Some(l) => settings.insert("rate_limit".into(), Value::String(l.to_string())),
                    None => settings.remove("rate_limit"),
                };
            }
            changed.push("rate_limit");
        }
        let audit = actor
            .audit("dock.update", Outcome::Success)
            .resource(format!("docks/{}", dock.id))
            .provider(dock.provider.as_str())
            .details(json!({"name": dock.name, "changed": changed}));
        self.inner
            .store
            .apply(
                Batch::new()
                    .push(Write::UpdateDock(dock.clone()))
                    .push(Write::Audit(audit)),
            )
            .await?;
        // The budget of a running dock follows at once.
        self.inner
            .budgets
            .for_dock(dock.id, crate::rate_limit_of(&dock));
        Ok(dock)
    }

    /// Asks the provider whether it takes the dock's key, before the dock is saved. The call
    /// is journaled under the new dock's id.
    async fn verify_key(&self, adapter: &dyn DockAdapter, dock: &Dock) -> Result<(), EngineError> {
        let access = self.open_dock(dock)?;
        let scope = CallScope {
            org_id: dock.org_id,
            dock_id: dock.id,
            resource_id: None,
            operation_id: None,
            recorder: Arc::new(ConnectRecorder {
                store: self.inner.store.clone(),
            }),
        };
        let mut ctx = Ctx::new(scope, None, 1, Vec::new());
        ctx.retry = self.inner.config.retry;
        match adapter.verify_credentials(&mut ctx, &access).await {
            Ok(()) => Ok(()),
            Err(DockError::Provider(p)) => Err(EngineError::KeyRefused {
                provider: p.provider,
                code: p.code,
                message: p.message,
            }),
            Err(DockError::InvalidConfig(c)) => Err(EngineError::InvalidConfig(c)),
            Err(other) => Err(EngineError::KeyUnchecked {
                provider: dock.provider,
                detail: other.to_string(),
            }),
        }
    }

    pub async fn remove_dock(&self, actor: Actor, dock: &Dock) -> Result<(), EngineError> {
        let audit = actor
            .audit("dock.remove", Outcome::Success)
            .resource(format!("docks/{}", dock.id))
            .provider(dock.provider.as_str())
            .details(json!({"name": dock.name}));
        self.inner
            .store
            .remove_dock(actor.org_id, dock.id, audit)
            .await?;
        Ok(())
    }

    /// Checks `config` (which includes `name`) against the dock's adapter.
    /// The config fields of `kind` that the dock's adapter marks sensitive.
    fn sensitive_fields(&self, dock: &Dock, kind: ResourceKind) -> Vec<String> {
        self.inner
            .registry
            .get(dock.provider)
            .and_then(|a| a.config_schema(kind))
            .map(|s| s.sensitive().to_vec())
            .unwrap_or_default()
    }

    pub fn validate(
        &self,
        dock: &Dock,
        kind: ResourceKind,
        config: &Map<String, Value>,
    ) -> Result<(), EngineError> {
        let adapter = self
            .inner
            .registry
            .get(dock.provider)
            .ok_or(EngineError::NoAdapter(dock.provider))?;
        let schema = adapter
            .config_schema(kind)
            .ok_or_else(|| EngineError::UnsupportedKind {
                provider: dock.provider,
                kind: kind.as_str().into(),
                supported: adapter
                    .kinds()
                    .iter()
                    .map(|k| k.collection())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        schema.validate(config)?;
        Ok(())
    }

    /// Records the intent to provision and queues the operation. The returned row is in
    /// `provisioning`.
    pub async fn request_provision(
        &self,
        actor: Actor,
        dock: &Dock,
        kind: ResourceKind,
        config: Map<String, Value>,
    ) -> Result<(Resource, Operation), EngineError> {
        let r = self
            .request_provision_once(actor, dock, kind, config, None)
            .await?;
        Ok((r.resource, r.operation))
    }

    /// [`Engine::request_provision`] with an optional `Idempotency-Key`: a request repeating
    /// an earlier one with the same key answers the row that one made instead of a second
    /// resource; the same key with a different request is refused.
    pub async fn request_provision_once(
        &self,
        actor: Actor,
        dock: &Dock,
        kind: ResourceKind,
        config: Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Requested, EngineError> {
        self.validate(dock, kind, &config)?;
        let keyed = match idempotency_key {
            None => None,
            Some(key) => {
                if key.is_empty()
                    || key.len() > IDEMPOTENCY_KEY_MAX
                    || !key.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(EngineError::InvalidConfig(ConfigError::new(
                        "Idempotency-Key",
                        format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
                    )));
                }
                let hash = request_hash(dock, kind, &config);
                if let Some(done) = self.replay(actor, key, &hash).await? {
                    return Ok(done);
                }
                Some((key.to_string(), hash))
            }
        };
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let now = chrono::Utc::now();
        let id = ResourceId::new();
        let resource = Resource {
            id,
            org_id: actor.org_id,
            dock_id: dock.id,
            provider: dock.provider.as_str().into(),
            provider_resource_id: None,
            name: name.clone(),
            status: None,
            provisioning_source: ProvisioningSource::Api,
            provisioning_state: ProvisioningState::Provisioning,
            provisioned_at: None,
            full_api_data: Value::Null,
            error: None,
            marker: Some(Marker::for_resource(&id)),
            created_at: now,
            updated_at: now,
            version: 0,
            details: ResourceDetails::empty(kind),
        };
        // Sensitive fields are sealed before anything is written; the digest above was taken
        // of what was asked, so a repeat still matches.
        let mut config = config;
        crate::sealed::seal(
            &self.inner.keyring,
            id,
            &self.sensitive_fields(dock, kind),
            &mut config,
        );
        let (op, audit) = resource_request(
            actor,
            OpKind::Provision,
            &resource,
            json!({ "config": config }),
            json!({"dock": dock.name}),
        );
        let mut writes = vec![Write::InsertResource(resource)];
        if let Some((key, request_hash)) = &keyed {
            writes.push(Write::IdempotencyKey(IdempotentRequest {
                org_id: actor.org_id,
                key: key.clone(),
                request_hash: request_hash.clone(),
                resource_id: id,
            }));
        }
        match self.enqueue(writes, &op, audit).await {
            Ok(written) => Ok(Requested {
                resource: row_of(written)?,
                operation: op,
                replayed: false,
            }),
            // Two requests with one key at once: the other recorded first; answer its row.
            Err(EngineError::Store(StoreError::AlreadyExists { .. })) if keyed.is_some() => {
                let (key, hash) = keyed.unwrap_or_default();
                self.replay(actor, &key, &hash).await?.ok_or_else(|| {
                    EngineError::Conflict(format!("Idempotency-Key {key:?} is in use"))
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The answer to a request repeated with an `Idempotency-Key` already used, if it was.
    async fn replay(
        &self,
        actor: Actor,
        key: &str,
        hash: &str,
    ) -> Result<Option<Requested>, EngineError> {
        let store = &self.inner.store;
        let Some(first) = store.find_idempotency_key(actor.org_id, key).await? else {
            return Ok(None);
        };
        if first.request_hash != hash {
            return Err(EngineError::Conflict(format!(
                "Idempotency-Key {key:?} was already used for a different request"
            )));
        }
        let resource = store.get_resource(actor.org_id, first.resource_id).await?;
        let operation = store
            .list_operations(actor.org_id, Some(resource.id), &PageRequest::first(1000))
            .await?
            .items
            .into_iter()
            .rfind(|op| op.kind == OpKind::Provision)
            .ok_or_else(|| {
                EngineError::Store(StoreError::Corrupt(format!(
                    "resource {} has no provision operation",
                    resource.id
                )))
            })?;
        Ok(Some(Requested {
            resource,
            operation,
            replayed: true,
        }))
    }

    /// Stops a provision under way at its next step boundary; what it created is undone and
    /// the row settles `failed` with code `cancelled`. A waiting provision is woken at once.
    pub async fn request_cancel(
        &self,
        actor: Actor,
        id: ResourceId,
    ) -> Result<(Resource, Operation), EngineError> {
        let store = &self.inner.store;
        let resource = store.get_resource(actor.org_id, id).await?;
        let kind = resource.kind();
        let op = match store.active_operation_for(actor.org_id, id).await? {
            Some(op) if op.kind == OpKind::Provision => op,
            Some(op) => {
                return Err(EngineError::Conflict(format!(
                    "{kind} {id} is being {}ed; only a provision can be cancelled",
                    op.kind
                )));
            }
            None => {
                return Err(EngineError::Conflict(format!(
                    "{kind} {id} is {}; there is no provision under way to cancel",
                    resource.provisioning_state
                )));
            }
        };
        // The request and its audit row are one transaction.
        let audit = actor
            .audit(format!("{kind}.cancel"), Outcome::Requested)
            .resource(audit_ref(kind, id))
            .provider(resource.provider.clone())
            .details(json!({"name": resource.name, "operation_id": op.id}));
        let op = store
            .request_cancel(actor.org_id, op.id, audit)
            .await
            .map_err(|e| match e {
                StoreError::Refused { message } => EngineError::Conflict(message),
                other => EngineError::Store(other),
            })?;
        self.inner.wake.notify_one();
        Ok((resource, op))
    }

    /// Records the intent to destroy a resource and queues the operation. The returned row is
    /// in `deprovisioning`.
    pub async fn request_deprovision(
        &self,
        actor: Actor,
        id: ResourceId,
    ) -> Result<(Resource, Operation), EngineError> {
        let mut resource = self.idle_resource(actor, id).await?;
        let state = resource.provisioning_state;
        if !state.can_become(ProvisioningState::Deprovisioning) {
            return Err(EngineError::Conflict(format!(
                "{} {} is {}; only provisioned or failed resources can be deprovisioned",
                resource.kind(),
                id,
                state
            )));
        }
        let expected_version = resource.version;
        resource.provisioning_state = ProvisioningState::Deprovisioning;
        let (op, audit) = resource_request(
            actor,
            OpKind::Deprovision,
            &resource,
            Value::Null,
            json!({}),
        );
        self.enqueue_update(resource, expected_version, op, audit)
            .await
    }

    /// Provisions a `failed` resource again with the config it was first asked for. Refused
    /// while anything of it may still exist at the provider: that is deprovisioned first, so a
    /// retry can never leave an untracked resource behind.
    pub async fn request_retry(
        &self,
        actor: Actor,
        id: ResourceId,
    ) -> Result<(Resource, Operation), EngineError> {
        let mut resource = self.idle_resource(actor, id).await?;
        let kind = resource.kind();
        let refuse = |why: String| Err(EngineError::Conflict(format!("{kind} {id} {why}")));
        if resource.provisioning_state != ProvisioningState::Failed {
            return refuse(format!(
                "is {}; only failed resources can be retried",
                resource.provisioning_state
            ));
        }
        if resource.provisioning_source != ProvisioningSource::Api {
            return refuse(
                "was discovered, not provisioned here; there is nothing to retry".into(),
            );
        }
        if let Some(pid) = &resource.provider_resource_id {
            return refuse(format!(
                "may still exist at the provider as {pid}; deprovision it first"
            ));
        }
        let first = self
            .inner
            .store
            .list_operations(actor.org_id, Some(id), &PageRequest::first(1000))
            .await?
            .items
            .into_iter()
            .rfind(|op| op.kind == OpKind::Provision);
        let Some(first) = first else {
            return refuse("has no provision request to repeat".into());
        };
        let expected_version = resource.version;
        resource.provisioning_state = ProvisioningState::Provisioning;
        resource.error = None;
        let (op, audit) = resource_request(
            actor,
            OpKind::Provision,
            &resource,
            first.input,
            json!({"retry": true}),
        );
        self.enqueue_update(resource, expected_version, op, audit)
            .await
    }

    /// Queues a discovery of everything in the dock's account.
    pub async fn request_sync(&self, actor: Actor, dock: &Dock) -> Result<Operation, EngineError> {
        let op = Operation::new(
            actor.org_id,
            OpKind::Sync,
            dock.id,
            None,
            actor.user_id,
            Value::Null,
        );
        let audit = actor
            .audit("dock.sync", Outcome::Requested)
            .resource(format!("docks/{}", dock.id))
            .provider(dock.provider.as_str())
            .details(json!({"operation_id": op.id}));
        self.enqueue(Vec::new(), &op, audit).await?;
        Ok(op)
    }

    /// The resource, if no operation is under way on it; a conflict naming that operation
    /// otherwise.
    async fn idle_resource(&self, actor: Actor, id: ResourceId) -> Result<Resource, EngineError> {
        let store = &self.inner.store;
        let resource = store.get_resource(actor.org_id, id).await?;
        if let Some(op) = store.active_operation_for(actor.org_id, id).await? {
            return Err(EngineError::Conflict(format!(
                "{} {id} has an unfinished {} operation ({}); wait for it to finish",
                resource.kind(),
                op.kind,
                op.id
            )));
        }
        Ok(resource)
    }

    /// [`Engine::enqueue`] for a request that changes an existing row.
    async fn enqueue_update(
        &self,
        resource: Resource,
        expected_version: i64,
        op: Operation,
        audit: AuditEntry,
    ) -> Result<(Resource, Operation), EngineError> {
        let write = Write::UpdateResource {
            resource,
            expected_version,
        };
        let written = self.enqueue(vec![write], &op, audit).await?;
        Ok((row_of(written)?, op))
    }

    /// Records an operation with its audit row (and the writes it carries out, if any) in one
    /// transaction, then wakes the workers. Returns the resource as written, if any.
    async fn enqueue(
        &self,
        writes: Vec<Write>,
        op: &Operation,
        audit: AuditEntry,
    ) -> Result<Option<Resource>, EngineError> {
        let mut batch = Batch::new();
        batch.writes.extend(writes);
        let batch = batch
            .push(Write::InsertOperation(op.clone()))
            .push(Write::Audit(audit));
        let written = self.inner.store.apply(batch).await?;
        self.inner.wake.notify_one();
        Ok(written.into_iter().next())
    }
}

/// A digest of what a provision asks for, to tell a repeat from another request.
fn request_hash(dock: &Dock, kind: ResourceKind, config: &Map<String, Value>) -> String {
    use sha2::Digest;
    // serde_json's maps are ordered by key, so equal configs serialize alike.
    let text = json!({"dock": dock.id, "kind": kind, "config": config}).to_string();
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The row a resource write returned; the store returns every row it writes.
fn row_of(written: Option<Resource>) -> Result<Resource, EngineError> {
    written.ok_or_else(|| {
        EngineError::Store(stackdock_store::StoreError::Corrupt(
            "the store returned no row for a resource write".into(),
        ))
    })
}

/// The operation that carries out a request on a resource, and the audit row of the request.
fn resource_request(
    actor: Actor,
    kind: OpKind,
    resource: &Resource,
    input: Value,
    details: Value,
) -> (Operation, AuditEntry) {
    let rkind = resource.kind();
    let op = Operation::new(
        actor.org_id,
        kind,
        resource.dock_id,
        Some((resource.id, rkind)),
        actor.user_id,
        input,
    );
    let details = merge(
        json!({"name": resource.name, "operation_id": op.id}),
        details,
    );
    let audit = actor
        .audit(format!("{rkind}.{kind}"), Outcome::Requested)
        .resource(audit_ref(rkind, resource.id))
        .provider(resource.provider.clone())
        .details(details);
    (op, audit)
}
