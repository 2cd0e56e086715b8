//! What the engine test binaries share: an [`Engine`] on its own SQLite file and its own
//! DigitalOcean sandbox, a store that fails on request at named points, and ways to drive
//! workers until something settles.
//!
//! Each test binary uses a different subset of this module, so unused items are expected.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, DockName, Keyring, Marker, MasterKey, Operation,
    OperationId, OrgId, Outcome, Provider, Resource, ResourceDetails, ResourceId, ResourceKind,
    SecretString, Step, StepStatus, TokenId, UserId,
};
use stackdock_docks::{Registry, RetryPolicy};
use stackdock_engine::intent::NewDock;
use stackdock_engine::{Actor, Engine, EngineConfig, WaitPolicy};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig, RecordedRequest};
use stackdock_store::{
    Batch, Bootstrap, Change, Lease, Page, PageRequest, Principal, ResourceFilter, SqliteStore,
    Store, StoreError, Write,
};

/// Long enough that a test's waits are seconds, never minutes.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The knobs a test turns; everything else is fast and fixed.
#[derive(Clone, Debug)]
pub struct Options {
    pub ready_after: Duration,
    /// Runs of one operation before a transient failure is final.
    pub max_attempts: u32,
    /// Tries of one provider call within a run.
    pub call_attempts: u32,
    pub reschedule_base: Duration,
    pub lease: Duration,
    /// How long an operation may wait on the provider in all.
    pub wait_timeout: Duration,
    pub max_in_flight: usize,
    /// The dock's `settings.rate_limit`.
    pub rate_limit: stackdock_docks::RateLimit,
    /// The least time between two rounds of checks of the dock's waiting operations.
    pub min_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ready_after: Duration::from_millis(100),
            max_attempts: 8,
            call_attempts: 2,
            reschedule_base: Duration::from_millis(20),
            lease: Duration::from_millis(500),
            wait_timeout: Duration::from_secs(5),
            max_in_flight: 16,
            rate_limit: stackdock_docks::RateLimit::None,
            min_interval: Duration::from_millis(20),
        }
    }
}

pub struct TestEngine {
    pub engine: Engine,
    pub store: Arc<FaultyStore>,
    pub sandbox: DigitalOceanSandbox,
    pub actor: Actor,
    pub dock: Dock,
    /// The dock's API key in plaintext, to search for where it must not be.
    pub key: String,
    /// Holds the database file; removed when the test ends.
    pub dir: tempfile::TempDir,
    /// Names handed to successive claims, so each run of an operation is a new "worker".
    claims: Mutex<u32>,
}

pub async fn spawn_engine() -> TestEngine {
    spawn_engine_with(Options::default()).await
}

pub async fn spawn_engine_with(opts: Options) -> TestEngine {
    let bits: u64 = rand::random();
    let key = format!("dop_v1_canary{bits:016x}");
    let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![key.clone()],
        ready_after: opts.ready_after,
        ..DoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStore::open(&dir.path().join("stackdock.db"))
        .await
        .expect("open the database");
    let store = Arc::new(FaultyStore::new(sqlite));

    let (org_id, user_id) = (OrgId::new(), UserId::new());
    let boot = Bootstrap {
        org_id,
        org_name: "test".into(),
        user_id,
        email: "owner@example.test".into(),
        token_id: TokenId::new(),
        token_hash: "0".repeat(64),
    };
    let audit = AuditEntry::new(org_id, Some(user_id), "org.bootstrap", Outcome::Success);
    store.bootstrap(&boot, audit).await.expect("bootstrap");

    let config = EngineConfig {
        worker_id: "test".into(),
        max_in_flight: opts.max_in_flight,
        lease: opts.lease,
        idle_poll: Duration::from_millis(20),
        retry: RetryPolicy {
            max_attempts: opts.call_attempts,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        },
        wait: WaitPolicy {
            min_interval: opts.min_interval,
            timeout: opts.wait_timeout,
            ..WaitPolicy::default()
        },
        max_attempts: opts.max_attempts,
        reschedule_base: opts.reschedule_base,
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        store.clone(),
        Registry::builtin(),
        Keyring::new(MasterKey::generate()),
        config,
    );
    let actor = Actor::system(org_id, Some(user_id));
    let dock = engine
        .add_dock(
            actor,
            NewDock {
                provider: Provider::DigitalOcean,
                name: DockName::try_from("do-test".to_string()).unwrap(),
                api_key: SecretString::new(key.as_str()),
                api_base_url: Some(sandbox.base_url()),
                rate_limit: Some(opts.rate_limit.clone()),
                settings: serde_json::Map::new(),
                verify: false,
            },
        )
        .await
        .expect("add the dock");
    TestEngine {
        engine,
        store,
        sandbox,
        actor,
        dock,
        key,
        dir,
        claims: Mutex::new(0),
    }
}

/// A valid server config.
pub fn server_config(name: &str) -> Map<String, Value> {
    json!({"name": name, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"})
        .as_object()
        .cloned()
        .expect("a JSON object")
}

impl TestEngine {
    pub async fn provision(&self, name: &str) -> (Resource, Operation) {
        self.engine
            .request_provision(
                self.actor,
                &self.dock,
                ResourceKind::Server,
                server_config(name),
            )
            .await
            .expect("provision requested")
    }

    pub async fn resource(&self, id: ResourceId) -> Resource {
        self.store
            .get_resource(self.actor.org_id, id)
            .await
            .expect("resource")
    }

    pub async fn operation(&self, id: OperationId) -> Operation {
        self.store
            .get_operation(self.actor.org_id, id)
            .await
            .expect("operation")
    }

    /// Claims and runs one operation as a fresh worker name; `false` if none was runnable.
    pub async fn run_one(&self) -> bool {
        let owner = {
            let mut n = self.claims.lock().unwrap();
            *n += 1;
            format!("w{n}")
        };
        self.engine.run_next(&owner).await.expect("claim")
    }

    /// Checks the waiting operations that are due, as the observer would; how many.
    pub async fn observe_one(&self) -> usize {
        self.engine.observe_due("observer").await.expect("observe")
    }

    /// Runs workers and checks until operation `op` has finished, waiting out leases and
    /// schedules.
    pub async fn run_until_finished(&self, op: OperationId) -> Operation {
        let started = Instant::now();
        loop {
            let current = self.operation(op).await;
            if current.state.is_finished() {
                return current;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "operation still {} after {DEADLINE:?}: {current:?}",
                current.state
            );
            let ran = self.run_one().await;
            let checked = self.observe_one().await;
            if !ran && checked == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    pub fn requests(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Lookups of `row`'s marker at the provider.
    pub fn marker_lookups(&self, row: &Resource) -> usize {
        let marker = row.marker.as_ref().expect("a marker").to_string();
        self.sandbox
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.path == "/v2/droplets"
                    && r.query
                        .as_deref()
                        .is_some_and(|q| q.contains(&format!("tag_name={marker}")))
            })
            .count()
    }

    pub fn droplet_ids(&self) -> Vec<String> {
        self.sandbox
            .droplets()
            .iter()
            .map(|d| d["id"].to_string())
            .collect()
    }

    /// Audit rows about `resource`, oldest first, as (action, outcome).
    pub async fn audit_of(&self, resource: &Resource) -> Vec<AuditEntry> {
        let mut rows = self
            .store
            .list_audit(self.actor.org_id, 1000, None)
            .await
            .expect("audit");
        rows.retain(|a| {
            a.resource
                .as_deref()
                .is_some_and(|r| r.ends_with(&resource.id.to_string()))
        });
        rows.reverse();
        rows
    }

    pub async fn steps(&self, op: OperationId) -> Vec<Step> {
        self.store
            .steps(self.actor.org_id, op)
            .await
            .expect("steps")
    }
}

/// The server's public IPv4, once the provider has shown one.
pub fn ipv4(row: &Resource) -> Option<&str> {
    match &row.details {
        ResourceDetails::Server(s) => s.ipv4.as_deref(),
        _ => None,
    }
}

/// Asserts that `op` holds the two steps of a droplet's create, `create_sent` then `created`,
/// both with `status`, the second naming `droplet`.
pub fn assert_one_create_step(steps: &[Step], status: StepStatus, droplet: &str) {
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["create_sent", "created"], "{steps:?}");
    assert!(steps.iter().all(|s| s.status == status), "{steps:?}");
    assert_eq!(steps[1].output["droplet_id"], droplet);
}

/// Where a [`FaultyStore`] can be told to fail, named after what the engine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The batch that records the `created` step (and the provider id on the row).
    CreateCheckpoint,
    /// The batch that ends an operation: its final state, the row and the audit entry.
    Settle,
}

impl Point {
    fn matches(self, batch: &Batch) -> bool {
        batch.writes.iter().any(|w| match (self, w) {
            (Point::CreateCheckpoint, Write::RecordStep(s)) => {
                s.name == "created" && s.status == StepStatus::Done
            }
            (Point::Settle, Write::UpdateOperation(op)) => op.state.is_finished(),
            _ => false,
        })
    }
}

/// How a write at a [`Point`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing is written and the caller is told so (the database was unreachable).
    LoseWrite,
    /// The write commits but the caller is told it failed (the answer was lost, or the
    /// process died right after the commit).
    LoseAck,
}

/// A [`Store`] that passes everything to SQLite, except that it fails once at an armed
/// [`Point`] — failure injection at named points, in the manner of meilisearch's scheduler
/// tests.
pub struct FaultyStore {
    inner: SqliteStore,
    armed: Mutex<Option<(Point, Mode)>>,
    /// Keep the fault armed after it fires: the failure repeats at every run.
    sticky: Mutex<bool>,
    fired: Mutex<Vec<(Point, Mode)>>,
    /// Every lease renewal fails as an unreachable database would make it.
    failing_renewals: std::sync::atomic::AtomicBool,
}

impl FaultyStore {
    fn new(inner: SqliteStore) -> Self {
        Self {
            inner,
            armed: Mutex::new(None),
            sticky: Mutex::new(false),
            fired: Mutex::new(Vec::new()),
            failing_renewals: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes every lease renewal fail (`true`) or go through again (`false`).
    pub fn fail_renewals(&self, fail: bool) {
        self.failing_renewals
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn arm(&self, point: Point, mode: Mode) {
        *self.armed.lock().unwrap() = Some((point, mode));
    }

    /// Like [`FaultyStore::arm`], but the failure happens every time, not once.
    pub fn arm_always(&self, point: Point, mode: Mode) {
        *self.sticky.lock().unwrap() = true;
        self.arm(point, mode);
    }

    pub fn fired(&self) -> Vec<(Point, Mode)> {
        self.fired.lock().unwrap().clone()
    }

    pub async fn close(&self) {
        self.inner.close().await;
    }

    fn take(&self, batch: &Batch) -> Option<(Point, Mode)> {
        let mut armed = self.armed.lock().unwrap();
        let hit = armed.filter(|(point, _)| point.matches(batch))?;
        if !*self.sticky.lock().unwrap() {
            *armed = None;
        }
        self.fired.lock().unwrap().push(hit);
        Some(hit)
    }
}

fn injected(point: Point) -> StoreError {
    StoreError::Database(Box::new(std::io::Error::other(format!(
        "injected failure at {point:?}"
    ))))
}

#[async_trait]
impl Store for FaultyStore {
    async fn apply(&self, batch: Batch) -> stackdock_store::Result<Vec<Resource>> {
        match self.take(&batch) {
            None => self.inner.apply(batch).await,
            Some((point, Mode::LoseWrite)) => Err(injected(point)),
            Some((point, Mode::LoseAck)) => {
                self.inner.apply(batch).await?;
                Err(injected(point))
            }
        }
    }

    async fn apply_each(
        &self,
        batches: Vec<Batch>,
    ) -> stackdock_store::Result<Vec<stackdock_store::Result<Vec<Resource>>>> {
        let mut out = Vec::new();
        for batch in batches {
            out.push(self.apply(batch).await);
        }
        Ok(out)
    }
    async fn find_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> stackdock_store::Result<Option<stackdock_store::IdempotentRequest>> {
        self.inner.find_idempotency_key(org, key).await
    }
    async fn claim_operations(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
        skip: &[stackdock_core::DockId],
    ) -> stackdock_store::Result<Vec<Operation>> {
        self.inner.claim_operations(owner, lease, limit, skip).await
    }
    async fn claim_waiting(
        &self,
        owner: &str,
        hold: Duration,
        ahead: Duration,
        limit: u32,
        dock: Option<DockId>,
    ) -> stackdock_store::Result<Vec<Operation>> {
        self.inner
            .claim_waiting(owner, hold, ahead, limit, dock)
            .await
    }
    async fn extend_waiting(
        &self,
        leases: &[stackdock_store::Lease],
        hold: Duration,
    ) -> stackdock_store::Result<u64> {
        self.inner.extend_waiting(leases, hold).await
    }
    async fn heartbeat(&self, node: &str, ttl: Duration) -> stackdock_store::Result<u32> {
        self.inner.heartbeat(node, ttl).await
    }
    async fn leave(&self, node: &str) -> stackdock_store::Result<()> {
        self.inner.leave(node).await
    }
    async fn due_waiting_docks(&self, limit: u32) -> stackdock_store::Result<Vec<(OrgId, DockId)>> {
        self.inner.due_waiting_docks(limit).await
    }
    async fn get_resources(
        &self,
        org: OrgId,
        ids: &[ResourceId],
    ) -> stackdock_store::Result<Vec<Resource>> {
        self.inner.get_resources(org, ids).await
    }
    async fn next_waiting(&self) -> stackdock_store::Result<Option<stackdock_core::Timestamp>> {
        self.inner.next_waiting().await
    }
    async fn request_cancel(
        &self,
        org: OrgId,
        id: OperationId,
        audit: AuditEntry,
    ) -> stackdock_store::Result<Operation> {
        self.inner.request_cancel(org, id, audit).await
    }
    async fn record_api_calls(&self, calls: Vec<ApiCall>) -> stackdock_store::Result<()> {
        self.inner.record_api_calls(calls).await
    }
    async fn bootstrap(&self, b: &Bootstrap, audit: AuditEntry) -> stackdock_store::Result<()> {
        self.inner.bootstrap(b, audit).await
    }
    async fn create_token(
        &self,
        token: stackdock_store::NewToken,
        audit: AuditEntry,
    ) -> stackdock_store::Result<stackdock_store::TokenInfo> {
        self.inner.create_token(token, audit).await
    }
    async fn list_tokens(
        &self,
        org: OrgId,
        user: Option<UserId>,
        page: &PageRequest<stackdock_store::TokenKey>,
    ) -> stackdock_store::Result<Page<stackdock_store::TokenInfo, stackdock_store::TokenKey>> {
        self.inner.list_tokens(org, user, page).await
    }
    async fn revoke_token(
        &self,
        org: OrgId,
        id: TokenId,
        user: Option<UserId>,
        audit: AuditEntry,
    ) -> stackdock_store::Result<stackdock_store::TokenInfo> {
        self.inner.revoke_token(org, id, user, audit).await
    }
    async fn add_member(
        &self,
        org: OrgId,
        email: &str,
        role: stackdock_core::Role,
        audit: AuditEntry,
    ) -> stackdock_store::Result<stackdock_store::Member> {
        self.inner.add_member(org, email, role, audit).await
    }
    async fn add_member_invited(
        &self,
        org: OrgId,
        email: &str,
        role: stackdock_core::Role,
        audit: AuditEntry,
        invitation: Option<stackdock_store::NewInvitation>,
    ) -> stackdock_store::Result<stackdock_store::Member> {
        self.inner
            .add_member_invited(org, email, role, audit, invitation)
            .await
    }
    async fn list_members(
        &self,
        org: OrgId,
        page: &PageRequest<stackdock_store::MemberKey>,
    ) -> stackdock_store::Result<Page<stackdock_store::Member, stackdock_store::MemberKey>> {
        self.inner.list_members(org, page).await
    }
    async fn set_member_role(
        &self,
        org: OrgId,
        user: UserId,
        role: stackdock_core::Role,
        audit: AuditEntry,
    ) -> stackdock_store::Result<stackdock_store::Member> {
        self.inner.set_member_role(org, user, role, audit).await
    }
    async fn remove_member(
        &self,
        org: OrgId,
        user: UserId,
        audit: AuditEntry,
    ) -> stackdock_store::Result<()> {
        self.inner.remove_member(org, user, audit).await
    }
    async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: String,
        audit: AuditEntry,
    ) -> stackdock_store::Result<Option<stackdock_store::Login>> {
        self.inner
            .accept_invitation(token_hash, password_hash, audit)
            .await
    }
    async fn set_password(
        &self,
        user: UserId,
        hash: String,
        audit: AuditEntry,
    ) -> stackdock_store::Result<()> {
        self.inner.set_password(user, hash, audit).await
    }
    async fn login(&self, email: &str) -> stackdock_store::Result<Option<stackdock_store::Login>> {
        self.inner.login(email).await
    }
    async fn create_session(
        &self,
        session: stackdock_store::NewSession,
        audit: AuditEntry,
    ) -> stackdock_store::Result<()> {
        self.inner.create_session(session, audit).await
    }
    async fn principal_for_session(
        &self,
        secret_hash: &str,
    ) -> stackdock_store::Result<Option<(Principal, String)>> {
        self.inner.principal_for_session(secret_hash).await
    }
    async fn end_session(&self, secret_hash: &str) -> stackdock_store::Result<()> {
        self.inner.end_session(secret_hash).await
    }
    async fn sealed_rows(&self) -> stackdock_store::Result<stackdock_store::SealedRows> {
        self.inner.sealed_rows().await
    }
    async fn first_org(&self) -> stackdock_store::Result<Option<OrgId>> {
        self.inner.first_org().await
    }
    async fn principal_for_token(&self, h: &str) -> stackdock_store::Result<Option<Principal>> {
        self.inner.principal_for_token(h).await
    }
    async fn get_dock(&self, org: OrgId, id: DockId) -> stackdock_store::Result<Dock> {
        self.inner.get_dock(org, id).await
    }
    async fn find_dock_by_name(
        &self,
        org: OrgId,
        name: &DockName,
    ) -> stackdock_store::Result<Option<Dock>> {
        self.inner.find_dock_by_name(org, name).await
    }
    async fn list_docks(
        &self,
        org: OrgId,
        page: &PageRequest<DockName>,
    ) -> stackdock_store::Result<Page<Dock, DockName>> {
        self.inner.list_docks(org, page).await
    }
    async fn remove_dock(
        &self,
        org: OrgId,
        id: DockId,
        audit: AuditEntry,
    ) -> stackdock_store::Result<()> {
        self.inner.remove_dock(org, id, audit).await
    }
    async fn get_resource(&self, org: OrgId, id: ResourceId) -> stackdock_store::Result<Resource> {
        self.inner.get_resource(org, id).await
    }
    async fn list_resources(
        &self,
        org: OrgId,
        filter: &ResourceFilter,
        page: &PageRequest<stackdock_store::ResourceKey>,
    ) -> stackdock_store::Result<Page<Resource, stackdock_store::ResourceKey>> {
        self.inner.list_resources(org, filter, page).await
    }
    async fn find_by_provider_id(
        &self,
        org: OrgId,
        dock: DockId,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> stackdock_store::Result<Option<Resource>> {
        self.inner
            .find_by_provider_id(org, dock, kind, provider_resource_id)
            .await
    }
    async fn find_by_marker(
        &self,
        org: OrgId,
        marker: &Marker,
    ) -> stackdock_store::Result<Option<Resource>> {
        self.inner.find_by_marker(org, marker).await
    }
    async fn get_operation(
        &self,
        org: OrgId,
        id: OperationId,
    ) -> stackdock_store::Result<Operation> {
        self.inner.get_operation(org, id).await
    }
    async fn list_operations(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        page: &PageRequest<stackdock_store::OperationKey>,
    ) -> stackdock_store::Result<Page<Operation, stackdock_store::OperationKey>> {
        self.inner.list_operations(org, resource, page).await
    }
    async fn active_operation_for(
        &self,
        org: OrgId,
        resource: ResourceId,
    ) -> stackdock_store::Result<Option<Operation>> {
        self.inner.active_operation_for(org, resource).await
    }
    async fn expire_leases(&self, owner_prefix: &str) -> stackdock_store::Result<u64> {
        self.inner.expire_leases(owner_prefix).await
    }
    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> stackdock_store::Result<()> {
        if self
            .failing_renewals
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Database(Box::new(std::io::Error::other(
                "injected failure of a lease renewal",
            ))));
        }
        self.inner.renew_lease(lease, duration).await
    }
    async fn steps(
        &self,
        org: OrgId,
        operation: OperationId,
    ) -> stackdock_store::Result<Vec<Step>> {
        self.inner.steps(org, operation).await
    }
    async fn api_calls(
        &self,
        org: OrgId,
        resource: ResourceId,
        page: &PageRequest<i64>,
    ) -> stackdock_store::Result<Page<ApiCall, i64>> {
        self.inner.api_calls(org, resource, page).await
    }
    async fn api_calls_for_operation(
        &self,
        org: OrgId,
        op: OperationId,
    ) -> stackdock_store::Result<Vec<ApiCall>> {
        self.inner.api_calls_for_operation(org, op).await
    }
    async fn search_audit(
        &self,
        org: OrgId,
        filter: &stackdock_store::AuditFilter,
        page: &PageRequest<i64>,
    ) -> stackdock_store::Result<Page<AuditEntry, i64>> {
        self.inner.search_audit(org, filter, page).await
    }
    async fn changes_since(
        &self,
        org: OrgId,
        after: i64,
        limit: u32,
    ) -> stackdock_store::Result<Vec<Change>> {
        self.inner.changes_since(org, after, limit).await
    }
    async fn all_changes_since(
        &self,
        after: i64,
        limit: u32,
    ) -> stackdock_store::Result<Vec<Change>> {
        self.inner.all_changes_since(after, limit).await
    }
    async fn all_deploy_log_since(
        &self,
        after: i64,
        limit: u32,
    ) -> stackdock_store::Result<Vec<stackdock_store::DeployLogLine>> {
        self.inner.all_deploy_log_since(after, limit).await
    }
    async fn latest_change(&self) -> stackdock_store::Result<i64> {
        self.inner.latest_change().await
    }
    fn change_signal(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.change_signal()
    }
    async fn append_deploy_log(
        &self,
        lines: Vec<stackdock_store::DeployLogLine>,
    ) -> stackdock_store::Result<()> {
        self.inner.append_deploy_log(lines).await
    }
    async fn deploy_log_since(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        after: i64,
        limit: u32,
    ) -> stackdock_store::Result<Vec<stackdock_store::DeployLogLine>> {
        self.inner
            .deploy_log_since(org, resource, after, limit)
            .await
    }
    async fn latest_deploy_log(&self) -> stackdock_store::Result<i64> {
        self.inner.latest_deploy_log().await
    }
    fn deploy_log_signal(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.deploy_log_signal()
    }
}
