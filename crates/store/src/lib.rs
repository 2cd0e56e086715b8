//! StackDock's durable state: the [`Store`] trait and its implementations.
//!
//! `store` depends only on `core`. The engine and the server hold an `Arc<dyn Store>` and
//! never see SQL; the SQLite implementation ([`SqliteStore`]) is the embedded default and the
//! PostgreSQL one ([`PostgresStore`]) serves several nodes on one database. Both pass the same
//! conformance suite (`tests/conformance/`, run by `tests/sqlite.rs` and `tests/postgres.rs`).
//! [`open_url`] picks one from a `STACKDOCK_DATABASE_URL`.
//!
//! **Architecture invariants**
//! - Every write that changes more than one row goes through [`Store::apply`], which runs a
//!   [`Batch`] in one transaction: intent (resource row + operation + audit) is recorded
//!   whole or not at all.
//! - The provisioning state machine is enforced here: an update whose state change
//!   `core::ProvisioningState::check` refuses is rejected with
//!   [`StoreError::IllegalTransition`], whatever the caller.
//! - Resource rows carry a `version`; an update names the version it read and loses with
//!   [`StoreError::VersionConflict`] if another writer got there first.
//! - A batch carrying a [`Lease`] is applied only while that lease is still the operation's
//!   current one (owner and generation match): a worker whose lease expired cannot write over
//!   its successor's progress ([`StoreError::Fenced`]).
//! - Every insert or update of a resource row appends a [`Change`] to the change feed in the
//!   same transaction, so the feed never shows a state the tables do not hold, nor misses one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, DockName, IllegalTransition, Marker, OpState, Operation,
    OperationId, OrgId, Outcome, ProvisioningSource, ProvisioningState, Resource, ResourceId,
    ResourceKind, Role, SealedSecret, Step, Timestamp, TokenId, UserId,
};

pub mod copy;
pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `what` names the thing, e.g. `server 0190...` or `dock "do-main"`.
    #[error("{what} not found")]
    NotFound { what: String },
    /// A uniqueness rule was hit, e.g. a second dock with the same name in an org.
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    /// The write is refused by a rule of the data, e.g. removing a dock that still has live
    /// resources. `message` says which rule and how to get past it.
    #[error("{message}")]
    Refused { message: String },
    #[error("resource {id} was changed concurrently (expected version {expected})")]
    VersionConflict { id: ResourceId, expected: i64 },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("operation {0} is no longer held by this worker")]
    Fenced(OperationId),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Who is calling, as established from a bearer token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: UserId,
    pub email: String,
    pub org_id: OrgId,
    pub role: Role,
    pub token_id: TokenId,
}

/// Which audit rows to read: all given conditions hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub actor: Option<UserId>,
    pub resource: Option<String>,
}

/// Which page of a listing to read: at most `limit` rows, starting right after the row whose
/// key is `after` in the listing's order (from the first row when `None`).
///
/// Pages are keyset pages: a key names a place in the order, not an offset, so rows inserted or
/// deleted between two reads never make a row present throughout be skipped or read twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest<K> {
    pub limit: u32,
    pub after: Option<K>,
}

impl<K> PageRequest<K> {
    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

/// One page of a listing: its rows, and the key of its last row when more rows follow
/// (the `after` of the next page). Implementations read `limit + 1` rows to know.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// The page of `rows` read with `limit + 1`: the extra row, if any, only says more follow.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Self { items: rows, next }
    }
}

/// A row's place in a listing ordered by creation: `(created_at, id)`, the id breaking ties
/// between rows made in the same microsecond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey<I> {
    pub created_at: Timestamp,
    pub id: I,
}

/// The key of a resource listing (newest first).
pub type ResourceKey = CreatedKey<ResourceId>;
/// The key of an operation listing (newest first).
pub type OperationKey = CreatedKey<OperationId>;
/// The key of the token listing (newest first).
pub type TokenKey = CreatedKey<TokenId>;
/// The key of the member listing (oldest first): when the membership was made, and the user.
pub type MemberKey = CreatedKey<UserId>;

/// Who may sign in with an email: their user, the organisation a sign-in opens (their first
/// membership) and the hash of their password, if they have set one.
#[derive(Clone, Debug)]
pub struct Login {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub password_hash: Option<String>,
}

/// A browser session to record: only hashes of its secrets are stored.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: TokenId,
    pub secret_hash: String,
    pub csrf_hash: String,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub expires_at: Timestamp,
}

/// An API token as listed: never its text or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: TokenId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    /// The token's own role; `None` means its member's role, whatever that is at the time.
    pub role: Option<Role>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A token to record: only the hash of its text is stored.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub id: TokenId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub token_hash: String,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub expires_at: Option<Timestamp>,
    /// A one-time invitation to set a password, not a key to the API.
    pub invitation: bool,
}

/// A one-time invitation to set a password, made with the member it is for
/// ([`Store::add_member_invited`]): only the hash of its text is stored.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub id: TokenId,
    pub token_hash: String,
    pub expires_at: Timestamp,
    /// Its audit row; the store sets its resource to the member (`members/<user id>`).
    pub audit: AuditEntry,
}

impl NewInvitation {
    /// The token row that records it, for `user` of `org`.
    pub fn token(&self, org: OrgId, user: UserId) -> NewToken {
        NewToken {
            id: self.id,
            org_id: org,
            user_id: user,
            token_hash: self.token_hash.clone(),
            name: Some("invitation".into()),
            role: None,
            expires_at: Some(self.expires_at),
            invitation: true,
        }
    }

    /// Its audit row, naming the member it is for.
    pub fn audit_for(&self, user: UserId) -> AuditEntry {
        let mut audit = self.audit.clone();
        audit.resource = Some(format!("members/{user}"));
        audit
    }
}

/// A member of an organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// What the first start of StackDock creates: an organisation, its owner, and the owner's
/// first API token (only its hash is stored).
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub org_id: OrgId,
    pub org_name: String,
    pub user_id: UserId,
    pub email: String,
    pub token_id: TokenId,
    pub token_hash: String,
}

/// A worker's hold on an operation, from [`Store::claim_operation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub operation_id: OperationId,
    pub owner: String,
    pub generation: i64,
}

#[derive(Clone, Debug, Default)]
pub struct ResourceFilter {
    pub kind: Option<ResourceKind>,
    pub dock_id: Option<DockId>,
    pub state: Option<ProvisioningState>,
    pub source: Option<ProvisioningSource>,
    /// Rows of this provider (`digitalocean`, ...), whichever of its docks.
    pub provider: Option<String>,
    /// Rows whose name contains this text, ignoring ASCII case: a search box's.
    pub name: Option<String>,
}

/// One entry of the change feed: a resource as it was right after a write.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Strictly increasing across the whole store; SSE uses it as the event id.
    pub seq: i64,
    pub org_id: OrgId,
    pub resource: Resource,
    pub at: Timestamp,
}

/// One line of a resource's deploy log: what its provider printed while an operation worked
/// (a build's output), already scrubbed of secrets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeployLogLine {
    /// Strictly increasing across the whole store (its own sequence, not the feed's).
    pub seq: i64,
    pub org_id: OrgId,
    pub resource_id: ResourceId,
    pub operation_id: OperationId,
    pub line: String,
    pub at: Timestamp,
}

/// One write of a [`Batch`].
#[derive(Clone, Debug)]
pub enum Write {
    InsertResource(Resource),
    /// Replaces the row if its stored version is `expected_version` and the state change is
    /// legal; the store bumps `version` and sets `updated_at`.
    UpdateResource {
        resource: Resource,
        expected_version: i64,
    },
    InsertOperation(Operation),
    /// Replaces the operation row (state, attempt, next_run_at, lease, last_error, ...); never
    /// its input, which is fixed when the operation is recorded.
    UpdateOperation(Operation),
    /// Replaces a sealed value with the same value sealed under another key, if the row still
    /// holds `from` (else [`StoreError::Refused`]: it changed meanwhile). What a key rotation
    /// writes.
    Reseal(Reseal),
    /// Upserts by (operation, index): recording the same step twice leaves one row.
    RecordStep(Step),
    Audit(AuditEntry),
    InsertDock(Dock),
    /// Replaces a dock's base URL override and settings (the sealed key may change too).
    UpdateDock(Dock),
    /// Sets the provider id a step established on a resource row: the row is read, changed and
    /// written back (version bumped, feed appended) inside the batch's transaction, so the
    /// caller needs no read of its own first.
    SetProviderId {
        org_id: OrgId,
        kind: ResourceKind,
        resource_id: ResourceId,
        provider_resource_id: String,
    },
    /// Remembers which resource a create with an `Idempotency-Key` made;
    /// [`StoreError::AlreadyExists`] if the org has used the key before.
    IdempotencyKey(IdempotentRequest),
}

/// A create made with an `Idempotency-Key`: the key, what was asked, and the row it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub org_id: OrgId,
    pub key: String,
    /// A digest of the request, so one key reused for another request is told apart.
    pub request_hash: String,
    pub resource_id: ResourceId,
}

/// One sealed value re-sealed: where it is, what it held, what it holds now.
#[derive(Clone, Debug)]
pub enum Reseal {
    DockKey {
        org_id: OrgId,
        id: DockId,
        from: SealedSecret,
        to: SealedSecret,
    },
    OperationInput {
        org_id: OrgId,
        id: OperationId,
        from: serde_json::Value,
        to: serde_json::Value,
    },
    StepOutput {
        operation_id: OperationId,
        index: i64,
        from: serde_json::Value,
        to: serde_json::Value,
    },
}

/// Every row that holds a sealed value, for a key rotation to go through.
#[derive(Clone, Debug, Default)]
pub struct SealedRows {
    pub docks: Vec<Dock>,
    /// Operations whose input holds a sealed value.
    pub operations: Vec<Operation>,
    /// Steps whose output holds a sealed value, with the resource of their operation.
    pub steps: Vec<(Step, Option<ResourceId>)>,
}

/// What [`Store::apply_fenced`] returns: the rows written, and whether a cancel of the
/// operation had been requested when its batch was applied.
#[derive(Clone, Debug, Default)]
pub struct FencedWrite {
    pub resources: Vec<Resource>,
    pub cancel_requested: bool,
}

/// Writes applied together in one transaction, optionally fenced by a lease.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub fence: Option<Lease>,
    pub writes: Vec<Write>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fenced(lease: &Lease) -> Self {
        Self {
            fence: Some(lease.clone()),
            writes: Vec::new(),
        }
    }

    pub fn push(mut self, w: Write) -> Self {
        self.writes.push(w);
        self
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- organisations, users, tokens ----

    /// Creates the first organisation, its owner and the owner's token, in one transaction.
    async fn bootstrap(&self, b: &Bootstrap, audit: AuditEntry) -> Result<()>;
    /// The first organisation, if any (single-org installs and `stackdock up`).
    async fn first_org(&self) -> Result<Option<OrgId>>;
    /// Resolves a token by the SHA-256 hash of its text; `None` if unknown or revoked.
    /// The caller a token stands for: unknown, revoked or expired tokens are nobody. The role
    /// is the token's own capped by its member's current one, so a demoted member's tokens
    /// lose what the member lost.
    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// Records a token of a member of its org, with its audit row. [`StoreError::NotFound`] if
    /// the user is not a member of the org.
    async fn create_token(&self, token: NewToken, audit: AuditEntry) -> Result<TokenInfo>;
    /// A page of the org's tokens (of `user` only, if given), newest first, revoked ones
    /// included.
    async fn list_tokens(
        &self,
        org: OrgId,
        user: Option<UserId>,
        page: &PageRequest<TokenKey>,
    ) -> Result<Page<TokenInfo, TokenKey>>;
    /// Revokes a token of the org (of `user` only, if given); revoking twice is refused.
    async fn revoke_token(
        &self,
        org: OrgId,
        id: TokenId,
        user: Option<UserId>,
        audit: AuditEntry,
    ) -> Result<TokenInfo>;
    /// Adds a user (new, or known by email) to the org with `role`, with its audit row;
    /// [`StoreError::AlreadyExists`] if they are a member already.
    async fn add_member(
        &self,
        org: OrgId,
        email: &str,
        role: Role,
        audit: AuditEntry,
    ) -> Result<Member> {
        self.add_member_invited(org, email, role, audit, None).await
    }
    /// [`Store::add_member`], and with `invitation` a one-time invitation for the member,
    /// with its own audit row (which comes to name the member): one transaction, so a member
    /// is never added without the invitation asked for, which nothing could make later.
    async fn add_member_invited(
        &self,
        org: OrgId,
        email: &str,
        role: Role,
        audit: AuditEntry,
        invitation: Option<NewInvitation>,
    ) -> Result<Member>;
    /// A page of the org's members, oldest first.
    async fn list_members(
        &self,
        org: OrgId,
        page: &PageRequest<MemberKey>,
    ) -> Result<Page<Member, MemberKey>>;
    /// Takes up an invitation: if `token_hash` is an unexpired, unrevoked invitation, revokes
    /// it, sets the member's password to `password_hash` with `audit` (whose org and actor
    /// become the invitation's) and answers whom it was for; `None` otherwise, writing
    /// nothing. One transaction: it is taken once, and never without the password set.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: String,
        audit: AuditEntry,
    ) -> Result<Option<Login>>;
    /// Sets (or replaces) a user's password hash, with its audit row.
    async fn set_password(&self, user: UserId, hash: String, audit: AuditEntry) -> Result<()>;
    /// The user an email signs in as, if they are a member of some organisation.
    async fn login(&self, email: &str) -> Result<Option<Login>>;
    /// Records a browser session, with its audit row.
    async fn create_session(&self, session: NewSession, audit: AuditEntry) -> Result<()>;
    /// The caller a session's secret stands for, and the hash of its CSRF token; ended or
    /// expired sessions, and members no longer in the org, are nobody.
    async fn principal_for_session(&self, secret_hash: &str)
    -> Result<Option<(Principal, String)>>;
    /// Ends a session (signing out); ending one already ended is no error.
    async fn end_session(&self, secret_hash: &str) -> Result<()>;
    /// Changes a member's role; refused for the org's last owner, who may not be demoted.
    async fn set_member_role(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
        audit: AuditEntry,
    ) -> Result<Member>;
    /// Removes a member from the org (their tokens for it stop working at once); refused for
    /// the org's last owner.
    async fn remove_member(&self, org: OrgId, user: UserId, audit: AuditEntry) -> Result<()>;

    // ---- docks ----

    async fn get_dock(&self, org: OrgId, id: DockId) -> Result<Dock>;
    async fn find_dock_by_name(&self, org: OrgId, name: &DockName) -> Result<Option<Dock>>;
    /// A page of the org's docks, by name.
    async fn list_docks(
        &self,
        org: OrgId,
        page: &PageRequest<DockName>,
    ) -> Result<Page<Dock, DockName>>;
    /// Removes a dock. Refused while it has unfinished operations or resources created through
    /// StackDock that are not `deprovisioned`; discovered (`manual`) rows go with it.
    async fn remove_dock(&self, org: OrgId, id: DockId, audit: AuditEntry) -> Result<()>;

    // ---- resources ----

    async fn get_resource(&self, org: OrgId, id: ResourceId) -> Result<Resource>;
    /// The org's rows among `ids`, in any order; unknown ids are left out.
    async fn get_resources(&self, org: OrgId, ids: &[ResourceId]) -> Result<Vec<Resource>>;
    /// A page of the org's rows that pass `filter`, newest first.
    async fn list_resources(
        &self,
        org: OrgId,
        filter: &ResourceFilter,
        page: &PageRequest<ResourceKey>,
    ) -> Result<Page<Resource, ResourceKey>>;
    /// The live (not `deprovisioned`) row for a provider's resource in a dock, if tracked.
    async fn find_by_provider_id(
        &self,
        org: OrgId,
        dock: DockId,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Resource>>;
    async fn find_by_marker(&self, org: OrgId, marker: &Marker) -> Result<Option<Resource>>;

    // ---- writes ----

    /// Applies every write in one transaction, or none. Returns the resource rows as written
    /// (with their new versions), in the order the batch wrote them.
    async fn apply(&self, batch: Batch) -> Result<Vec<Resource>>;
    /// [`Store::apply`] for a batch fenced by a lease on an operation of `org`, also telling
    /// whether a cancel of that operation had been requested: a worker's step boundary, which
    /// needs both. A batch without a fence is refused.
    async fn apply_fenced(&self, org: OrgId, batch: Batch) -> Result<FencedWrite> {
        let Some(lease) = batch.fence.clone() else {
            return Err(StoreError::Refused {
                message: "apply_fenced needs a batch fenced by a lease".into(),
            });
        };
        let resources = self.apply(batch).await?;
        let op = self.get_operation(org, lease.operation_id).await?;
        Ok(FencedWrite {
            resources,
            cancel_requested: op.cancel_requested,
        })
    }
    /// Applies many independent batches in one transaction: each whole or not at all (a fenced
    /// one that lost its lease fails alone), with one result per batch in order. For settling
    /// many operations at once without a transaction each.
    async fn apply_each(&self, batches: Vec<Batch>) -> Result<Vec<Result<Vec<Resource>>>>;
    /// The request an `Idempotency-Key` of the org was first used for, if it was.
    async fn find_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<IdempotentRequest>>;

    /// Every dock (of every org), and every operation input and step output that holds a
    /// sealed value: what a key rotation re-seals.
    async fn sealed_rows(&self) -> Result<SealedRows>;

    // ---- operations ----

    async fn get_operation(&self, org: OrgId, id: OperationId) -> Result<Operation>;
    /// A page of an org's operations, newest first; only those of `resource` if given.
    async fn list_operations(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        page: &PageRequest<OperationKey>,
    ) -> Result<Page<Operation, OperationKey>>;
    /// Unfinished operations on a resource (at most one is expected).
    async fn active_operation_for(
        &self,
        org: OrgId,
        resource: ResourceId,
    ) -> Result<Option<Operation>>;
    /// Claims up to `limit` runnable operations, oldest due first: queued with
    /// `next_run_at <= now`, or running with an expired lease; none of a dock in `skip` (the
    /// docks whose budget has as much work as it can start soon on this node). Each becomes
    /// `running` with `lease_owner = owner` and `lease_expires_at = now + lease`, its
    /// `generation` and `attempt` bumped. Two concurrent claimers never get the same
    /// operation.
    async fn claim_operations(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
        skip: &[DockId],
    ) -> Result<Vec<Operation>>;
    /// [`Store::claim_operations`] for one, of any dock.
    async fn claim_operation(&self, owner: &str, lease: Duration) -> Result<Option<Operation>> {
        Ok(self.claim_operations(owner, lease, 1, &[]).await?.pop())
    }
    /// Takes up to `limit` `waiting` operations whose check is due (of `dock` only, if given),
    /// soonest due first, for `hold`: they stay `waiting` with their attempt unchanged (waiting
    /// is not a run), their next check moved `hold` ahead so nobody else takes them meanwhile,
    /// and their generation bumped so the returned lease fences what the taker writes.
    /// Operations due within `ahead` come along unless another owner holds them (their next
    /// check is then the end of that owner's hold, which may be a round still under way): a
    /// round of checks whose one listing serves every operation of a dock takes those due
    /// before its next round with the ones due now. Of one dock, nothing is taken while
    /// another owner holds any of its operations: that is a round under way elsewhere (another
    /// node's), whose listing is being made; a second round beside it would list the whole
    /// dock again for the few that fell due meanwhile. Claims of one dock take turns, so two
    /// owners claiming at once never split one round's operations between them.
    async fn claim_waiting(
        &self,
        owner: &str,
        hold: Duration,
        ahead: Duration,
        limit: u32,
        dock: Option<DockId>,
    ) -> Result<Vec<Operation>>;
    /// Moves the next check of waiting operations still held under `leases` (from
    /// [`Store::claim_waiting`]) to `hold` from now: a round of checks that runs longer than
    /// it planned keeps them, so no other node checks them at the same time. Operations
    /// settled, handed back or taken by another since are left alone. Answers how many moved.
    async fn extend_waiting(&self, leases: &[Lease], hold: Duration) -> Result<u64>;
    /// Records that the node `node` is alive for `ttl` from now, forgets nodes whose time ran
    /// out, and answers how many are alive (this one included): the nodes that share each
    /// dock's rate limit.
    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32>;
    /// Forgets `node` at once (it is stopping), so the others take back its share.
    async fn leave(&self, node: &str) -> Result<()>;
    /// The docks, with their orgs, that have waiting operations due now: the observer checks
    /// one dock at a time.
    async fn due_waiting_docks(&self, limit: u32) -> Result<Vec<(OrgId, DockId)>>;
    /// When the next waiting operation is due, if any waits.
    async fn next_waiting(&self) -> Result<Option<Timestamp>>;
    /// Asks an unfinished operation to stop, with `audit` in the same transaction; a waiting
    /// one becomes runnable at once. [`StoreError::Refused`] if it has finished (nothing is
    /// written).
    async fn request_cancel(
        &self,
        org: OrgId,
        id: OperationId,
        audit: AuditEntry,
    ) -> Result<Operation>;
    /// Ends now every lease held by a worker whose name starts with `owner_prefix`, so their
    /// operations can be claimed at once instead of when the leases run out; waiting
    /// operations such a worker held for a check become due at once. For a process that
    /// knows those workers are gone: it restarted under the same node name, which it holds
    /// exclusively. Returns how many leases it ended.
    async fn expire_leases(&self, owner_prefix: &str) -> Result<u64>;
    /// Extends a held lease; [`StoreError::Fenced`] if it is no longer held.
    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<()>;
    async fn steps(&self, org: OrgId, operation: OperationId) -> Result<Vec<Step>>;

    // ---- journal, audit, change feed ----

    /// Appends to the journal. Not fenced: a call a stale worker made was still made.
    async fn record_api_call(&self, call: ApiCall) -> Result<()> {
        self.record_api_calls(vec![call]).await
    }
    /// Appends several entries in one transaction (one batched provider call journaled for
    /// each resource it served).
    async fn record_api_calls(&self, calls: Vec<ApiCall>) -> Result<()>;
    /// A page of a resource's journal, oldest first; the key is the entry's id.
    async fn api_calls(
        &self,
        org: OrgId,
        resource: ResourceId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ApiCall, i64>>;
    async fn api_calls_for_operation(&self, org: OrgId, op: OperationId) -> Result<Vec<ApiCall>>;
    /// Up to `limit` audit rows of an org, newest first, with `id < before` when given.
    async fn list_audit(
        &self,
        org: OrgId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        let page = PageRequest {
            limit,
            after: before,
        };
        Ok(self
            .search_audit(org, &AuditFilter::default(), &page)
            .await?
            .items)
    }
    /// A page of the org's audit rows that pass `filter`, newest first; the key is the row's id.
    async fn search_audit(
        &self,
        org: OrgId,
        filter: &AuditFilter,
        page: &PageRequest<i64>,
    ) -> Result<Page<AuditEntry, i64>>;
    /// Feed entries of an org with `seq > after`, oldest first.
    async fn changes_since(&self, org: OrgId, after: i64, limit: u32) -> Result<Vec<Change>>;
    /// Feed entries of every org with `seq > after`, oldest first: for the one reader per
    /// process that fans events out to each org's subscribers (and filters them by org).
    async fn all_changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>>;
    /// The highest `seq` written so far (0 when none).
    async fn latest_change(&self) -> Result<i64>;
    /// Appends lines to deploy logs (their `seq` is assigned), and wakes
    /// [`Store::deploy_log_signal`]'s subscribers.
    async fn append_deploy_log(&self, lines: Vec<DeployLogLine>) -> Result<()>;
    /// The org's deploy log lines after `after`, oldest first, at most `limit`; only
    /// `resource`'s when given.
    async fn deploy_log_since(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeployLogLine>>;
    /// Deploy log lines of every org after `after`, oldest first, at most `limit`: for the
    /// process's event fan-out, as [`Store::all_changes_since`].
    async fn all_deploy_log_since(&self, after: i64, limit: u32) -> Result<Vec<DeployLogLine>>;
    /// The newest deploy log `seq` of the whole store (0 when empty).
    async fn latest_deploy_log(&self) -> Result<i64>;
    /// Moves when this process appends deploy log lines (on PostgreSQL, when any process
    /// does).
    fn deploy_log_signal(&self) -> tokio::sync::watch::Receiver<i64>;
    /// Wakes when this process writes a change. Writers in other processes are seen by
    /// polling [`Store::changes_since`]; this only saves the wait. (On PostgreSQL it also
    /// moves on other processes' commits, through `LISTEN`/`NOTIFY`.)
    fn change_signal(&self) -> tokio::sync::watch::Receiver<i64>;
}

/// `state` of an operation that still needs work.
pub fn op_is_active(state: OpState) -> bool {
    !state.is_finished()
}

/// Opens the store a `STACKDOCK_DATABASE_URL` names: `postgres://` or `postgresql://` for
/// [`PostgresStore`]; `sqlite:`, `sqlite://` or a plain path for [`SqliteStore`]. Any other
/// scheme is refused, never taken for a file name.
pub async fn open_url(url: &str) -> Result<Arc<dyn Store>> {
    Ok(match backend_of(url)? {
        Backend::Postgres => Arc::new(PostgresStore::connect(url).await?),
        Backend::Sqlite(url) => Arc::new(SqliteStore::open_url(&url).await?),
    })
}

/// Which store a database URL is for.
#[derive(Debug, PartialEq, Eq)]
enum Backend {
    Postgres,
    /// The URL in the form [`SqliteStore::open_url`] reads (its scheme lower-cased).
    Sqlite(String),
}

/// A database URL whose scheme no store serves. Only the scheme is kept: the rest of the URL
/// may hold a password.
#[derive(Debug, thiserror::Error)]
#[error(
    "database URL scheme {scheme:?} is not supported; use postgres://, postgresql://, \
     sqlite: (or sqlite://) or a plain file path"
)]
pub struct UnsupportedScheme {
    pub scheme: String,
}

fn backend_of(url: &str) -> Result<Backend> {
    let Some((scheme, rest)) = scheme_of(url) else {
        return Ok(Backend::Sqlite(url.to_string()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        "sqlite" => Ok(Backend::Sqlite(format!("sqlite:{rest}"))),
        _ => Err(StoreError::Database(Box::new(UnsupportedScheme {
            scheme: scheme.to_string(),
        }))),
    }
}

/// The URL's scheme and what follows its colon, if it has one: letters, digits, `+`, `-` and
/// `.` after a first letter, then `:`. A Windows drive (`C:\` or `C:/`) is a path, not a scheme.
fn scheme_of(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    if scheme.len() == 1
        && (rest.starts_with('\\') || rest.starts_with('/'))
        && !rest.starts_with("//")
    {
        return None;
    }
    Some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_go_to_the_store_their_scheme_names() {
        let cases = [
            (
                "postgres://u:secret@db.example:5432/stackdock",
                Backend::Postgres,
            ),
            ("postgresql://localhost/stackdock", Backend::Postgres),
            ("POSTGRES://localhost/stackdock", Backend::Postgres),
            (
                "sqlite:///var/lib/stackdock.db",
                Backend::Sqlite("sqlite:///var/lib/stackdock.db".into()),
            ),
            ("sqlite://rel.db", Backend::Sqlite("sqlite://rel.db".into())),
            ("sqlite:rel.db", Backend::Sqlite("sqlite:rel.db".into())),
            ("SQLite:rel.db", Backend::Sqlite("sqlite:rel.db".into())),
            (
                "data/stackdock.db",
                Backend::Sqlite("data/stackdock.db".into()),
            ),
            (
                "/var/lib/stackdock.db",
                Backend::Sqlite("/var/lib/stackdock.db".into()),
            ),
            ("./odd:name.db", Backend::Sqlite("./odd:name.db".into())),
            ("stackdock.db", Backend::Sqlite("stackdock.db".into())),
            (
                "C:\\data\\stackdock.db",
                Backend::Sqlite("C:\\data\\stackdock.db".into()),
            ),
            (
                "C:/data/stackdock.db",
                Backend::Sqlite("C:/data/stackdock.db".into()),
            ),
        ];
        for (url, backend) in cases {
            assert_eq!(backend_of(url).expect(url), backend, "{url}");
        }
    }

    #[test]
    fn other_schemes_are_refused_by_name_without_the_password() {
        for (url, scheme) in [
            ("mysql://root:hunter2@localhost/db", "mysql"),
            ("mysql:x", "mysql"),
            ("postgres+tls://u:hunter2@h/db", "postgres+tls"),
            ("redis://h", "redis"),
            ("file:///tmp/x.db", "file"),
            ("http://u:hunter2@h/x", "http"),
            ("x://y", "x"),
            ("pg.v2:whatever", "pg.v2"),
        ] {
            let err = backend_of(url).expect_err(url);
            let StoreError::Database(source) = &err else {
                panic!("{url}: {err:?}");
            };
            let message = source.to_string();
            assert!(message.contains(&format!("{scheme:?}")), "{url}: {message}");
            assert!(message.contains("postgres://"), "{url}: {message}");
            assert!(message.contains("sqlite:"), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
            assert!(!format!("{err:?}").contains("hunter2"), "{url}: {err:?}");
        }
    }

    #[tokio::test]
    async fn open_url_refuses_an_unknown_scheme_without_creating_a_file() {
        // Read as a path, this URL would make a directory `mysql:` here.
        let cwd = std::env::current_dir().expect("cwd");
        assert!(open_url("mysql://root@localhost/db").await.is_err());
        assert!(!cwd.join("mysql:").exists());
    }
}
