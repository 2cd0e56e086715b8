//! The JSON shapes of the API, built here from the domain's types and never serialized from
//! them directly, so what a store or worker keeps for itself (leases, raw input, sealed values)
//! stays out of answers. Field names are snake_case and match the domain's.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, Failure, OpKind, OpState, Operation, OperationId, OrgId,
    Outcome, Permission, ProvisioningSource, ProvisioningState, RequestId, Resource,
    ResourceDetails, ResourceError, ResourceId, ResourceKind, Role, Step, StepStatus, Timestamp,
    TokenId, UserId,
};
use stackdock_store::{DeployLogLine, Member, TokenInfo};

/// A dock as shown: never the key, sealed or not; `key_id` names the master key that seals it.
#[derive(Serialize, JsonSchema)]
pub struct DockView {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub api_url: Option<String>,
    pub key_id: String,
    /// The rate limit calls on this dock keep to: the owner's, or the provider's documented.
    pub rate_limit: String,
    /// The provider's own dock settings (a Turso organization); never secret.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
}

impl From<&Dock> for DockView {
    fn from(d: &Dock) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.to_string(),
            provider: d.provider.to_string(),
            api_url: d.api_base_url.clone(),
            key_id: d.sealed_api_key.key_id().to_string(),
            rate_limit: stackdock_engine::rate_limit_of(d).to_string(),
            settings: d
                .settings
                .as_object()
                .map(|s| {
                    s.iter()
                        .filter(|(k, _)| k.as_str() != "rate_limit")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            created_at: d.created_at,
        }
    }
}

/// A resource as shown: the universal columns, the kind's own fields beside them (`kind`,
/// `region`, ...), and the operation just queued for it when there is one.
#[derive(Serialize, JsonSchema)]
pub struct ResourceView {
    pub id: ResourceId,
    pub org_id: OrgId,
    pub dock_id: DockId,
    pub provider: String,
    pub provider_resource_id: Option<String>,
    pub name: String,
    pub status: Option<String>,
    pub provisioning_source: ProvisioningSource,
    pub provisioning_state: ProvisioningState,
    pub provisioned_at: Option<Timestamp>,
    /// The provider's last full answer, with secrets redacted before it was stored.
    pub full_api_data: Value,
    pub error: Option<ResourceError>,
    pub marker: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    #[serde(flatten)]
    pub details: ResourceDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<OperationId>,
}

impl From<&Resource> for ResourceView {
    fn from(r: &Resource) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            dock_id: r.dock_id,
            provider: r.provider.clone(),
            provider_resource_id: r.provider_resource_id.clone(),
            name: r.name.clone(),
            status: r.status.clone(),
            provisioning_source: r.provisioning_source,
            provisioning_state: r.provisioning_state,
            provisioned_at: r.provisioned_at,
            full_api_data: r.full_api_data.clone(),
            error: r.error.clone(),
            marker: r.marker.as_ref().map(|m| m.as_str().to_string()),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            details: r.details.clone(),
            operation_id: None,
        }
    }
}

/// A resource, with the operation just queued for it when there is one.
pub fn resource(r: &Resource, operation: Option<&Operation>) -> ResourceView {
    ResourceView {
        operation_id: operation.map(|o| o.id),
        ..ResourceView::from(r)
    }
}

/// An operation as shown: what it is, where it stands and why it failed, never the worker's
/// lease internals or the input it was given (sensitive config is sealed inside it).
#[derive(Serialize, JsonSchema)]
pub struct OperationView {
    pub id: OperationId,
    pub kind: OpKind,
    pub state: OpState,
    pub dock_id: DockId,
    pub resource_id: Option<ResourceId>,
    pub resource_kind: Option<ResourceKind>,
    pub requested_by: Option<UserId>,
    /// Runs started so far; a resumed operation has more than one.
    pub attempt: u32,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    /// Why it is undoing what it created, while it does.
    pub unwinding: Option<Failure>,
    pub waiting_since: Option<Timestamp>,
    /// When it is next looked at, while it is queued (when it may run) or waiting (its next
    /// check with the provider).
    pub next_run_at: Option<Timestamp>,
    /// The worker running it (its node's name, then `-run`), while one holds it.
    pub running_on: Option<String>,
    /// When that worker's lease runs out unless it renews it: then any node may take the
    /// operation over and resume it.
    pub lease_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Operation> for OperationView {
    fn from(op: &Operation) -> Self {
        Self {
            id: op.id,
            kind: op.kind,
            state: op.state,
            dock_id: op.dock_id,
            resource_id: op.resource_id,
            resource_kind: op.resource_kind,
            requested_by: op.requested_by,
            attempt: op.attempt,
            cancel_requested: op.cancel_requested,
            last_error: op.last_error.clone(),
            unwinding: op.unwind.clone(),
            waiting_since: op.waiting_since,
            next_run_at: matches!(op.state, OpState::Queued | OpState::Waiting)
                .then_some(op.next_run_at),
            running_on: op.lease_owner.clone(),
            lease_expires_at: op.lease_expires_at,
            created_at: op.created_at,
            updated_at: op.updated_at,
        }
    }
}

/// A step of an operation: its name, whether it is done or undone, and what it found, with
/// every sealed value shown as `"[sealed]"`.
#[derive(Serialize, JsonSchema)]
pub struct StepView {
    pub index: i64,
    pub name: String,
    pub status: StepStatus,
    pub output: Value,
    pub at: Timestamp,
}

impl From<&Step> for StepView {
    fn from(s: &Step) -> Self {
        Self {
            index: s.index,
            name: s.name.clone(),
            status: s.status,
            output: stackdock_engine::sealed::shown(&s.output),
            at: s.at,
        }
    }
}

/// A line of a resource's deploy log (scrubbed of secrets when it was kept).
#[derive(Serialize, JsonSchema)]
pub struct DeployLogView {
    pub seq: i64,
    pub resource_id: ResourceId,
    pub operation_id: OperationId,
    pub line: String,
    pub at: Timestamp,
}

impl From<&DeployLogLine> for DeployLogView {
    fn from(l: &DeployLogLine) -> Self {
        Self {
            seq: l.seq,
            resource_id: l.resource_id,
            operation_id: l.operation_id,
            line: l.line.clone(),
            at: l.at,
        }
    }
}

/// A provider call from the journal (which keeps no headers or bodies).
#[derive(Serialize, JsonSchema)]
pub struct ApiCallView {
    pub id: i64,
    pub dock_id: DockId,
    pub resource_id: Option<ResourceId>,
    pub operation_id: Option<OperationId>,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub request_id: Option<String>,
    pub attempt: u32,
    pub error: Option<String>,
    pub at: Timestamp,
    /// The worker that made the call (its name starts with its node's), for calls made by an
    /// operation.
    pub worker: Option<String>,
}

impl From<&ApiCall> for ApiCallView {
    fn from(c: &ApiCall) -> Self {
        Self {
            id: c.id,
            dock_id: c.dock_id,
            resource_id: c.resource_id,
            operation_id: c.operation_id,
            method: c.method.clone(),
            path: c.path.clone(),
            status: c.status,
            duration_ms: c.duration_ms,
            request_id: c.request_id.clone(),
            attempt: c.attempt,
            error: c.error.clone(),
            at: c.at,
            worker: c.worker.clone(),
        }
    }
}

/// An operation with its steps and the provider calls it made.
#[derive(Serialize, JsonSchema)]
pub struct OperationDetailView {
    #[serde(flatten)]
    pub operation: OperationView,
    pub steps: Vec<StepView>,
    pub api_calls: Vec<ApiCallView>,
}

/// A member of the organisation.
#[derive(Serialize, JsonSchema)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: Timestamp,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email.clone(),
            role: m.role,
            created_at: m.created_at,
        }
    }
}

/// An API token as listed: never its text or its hash.
#[derive(Serialize, JsonSchema)]
pub struct TokenView {
    pub id: TokenId,
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    /// Its own role; `null` means its member's role.
    pub role: Option<Role>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<&TokenInfo> for TokenView {
    fn from(t: &TokenInfo) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            email: t.email.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A row of the audit log.
#[derive(Serialize, JsonSchema)]
pub struct AuditView {
    pub id: i64,
    pub actor: Option<UserId>,
    pub token_id: Option<TokenId>,
    pub request_id: Option<RequestId>,
    pub action: String,
    pub outcome: Outcome,
    pub resource: Option<String>,
    pub provider: Option<String>,
    pub details: Value,
    pub at: Timestamp,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id,
            actor: a.actor,
            token_id: a.token_id,
            request_id: a.request_id,
            action: a.action.clone(),
            outcome: a.outcome,
            resource: a.resource.clone(),
            provider: a.provider.clone(),
            details: a.details.clone(),
            at: a.at,
        }
    }
}

/// `GET /api/v1/health`.
#[derive(Serialize, JsonSchema)]
pub struct HealthView {
    /// Always `ok` while the server answers.
    pub status: &'static str,
}

/// Who the caller is: their member and the permissions their role grants.
#[derive(Serialize, JsonSchema)]
pub struct MeView {
    pub user_id: UserId,
    pub email: String,
    pub org_id: OrgId,
    pub role: Role,
    pub permissions: Vec<Permission>,
}

/// A signed-in browser session: the cookie is set beside it, and `csrf_token` goes in the
/// `X-CSRF-Token` header of every request that changes something.
#[derive(Serialize, JsonSchema)]
pub struct SessionView {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub csrf_token: String,
}

/// The config a dock accepts for a kind: what the CLI and the web UI build forms from.
#[derive(Serialize, JsonSchema)]
pub struct ConfigSchemaView {
    pub kind: ResourceKind,
    pub provider: String,
    /// A JSON Schema of the config.
    pub schema: Value,
    /// The config fields that are sealed and never shown.
    pub sensitive: Vec<String>,
}

/// Which of the digests asked about the server does not hold yet.
#[derive(Serialize, JsonSchema)]
pub struct MissingFilesView {
    pub missing: Vec<String>,
}

/// A master key: never the key itself.
#[derive(Serialize, JsonSchema)]
pub struct KeyView {
    pub id: String,
    pub current: bool,
    /// How many sealed values it seals.
    pub sealed_values: u64,
}

/// A rotation: the new current key, the one before and what was resealed.
#[derive(Serialize, JsonSchema)]
pub struct RotationView {
    pub current: String,
    pub previous: String,
    /// The reseal report: how many values of each kind moved to the new key.
    pub resealed: Value,
}

/// A reseal: the current key and what was sealed again under it.
#[derive(Serialize, JsonSchema)]
pub struct ResealView {
    /// The key everything was sealed again under.
    pub current: String,
    /// The reseal report: how many values of each kind moved to the current key, and how
    /// many are still sealed under each key (`sealed_by_key`).
    pub resealed: Value,
}

/// A member just added, with their one-time invitation when one was asked for.
#[derive(Serialize, JsonSchema)]
pub struct AddedMemberView {
    #[serde(flatten)]
    pub member: MemberView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<InvitationView>,
}

/// The only time an invitation's text is shown; it opens nothing but setting a password.
#[derive(Serialize, JsonSchema)]
pub struct InvitationView {
    pub token: String,
    pub expires_at: Timestamp,
}

/// A token just made, with its text: the only time the text is shown.
#[derive(Serialize, JsonSchema)]
pub struct CreatedTokenView {
    #[serde(flatten)]
    pub info: TokenView,
    pub token: String,
}
