//! [`SqliteStore`]: the [`Store`] on one SQLite file, StackDock's embedded default.
//!
//! How the trait maps onto SQLite:
//!
//! - **One writer.** SQLite lets one connection write at a time per file. Every write of this
//!   process (a [`Batch`], a claim, a lease renewal, a journal entry) runs on one thread that
//!   owns the one write connection (see `writer`); reads run on a few reader threads with
//!   read-only connections (see `reader`) and, under WAL, never wait for the writer.
//! - **Group commit.** Writes queued at the same moment share one transaction, each in a
//!   savepoint of its own, so hundreds of operations in flight do not pay a transaction each,
//!   and the statements of a group run back to back on the writer's thread.
//! - **`BEGIN IMMEDIATE`.** Write transactions take the write lock when they start, not at
//!   their first write. A deferred transaction that read first would fail with
//!   `SQLITE_BUSY_SNAPSHOT` when another process had written in between; an immediate one
//!   waits (up to the busy timeout) and then reads current data. This is what makes a claim's
//!   select-then-update atomic across processes sharing the file.
//! - **Text timestamps.** Instants are stored as RFC 3339 UTC text with exactly six
//!   fractional digits, so `ORDER BY` and `<=` on the text order them, and values read back
//!   equal what was written (writes keep microseconds, as PostgreSQL would).
//! - **Four tables, one view.** Resources live in the table of their kind; reads across kinds
//!   are a `UNION ALL` in one row shape (see `resources`).
//! - **Change signal.** Committed resource writes bump a `watch` channel with the newest feed
//!   seq. Other processes' writes are not signalled; subscribers poll the feed for those.
//!   Deploy log lines have their own sequence and their own signal.
//!
//! Files: `connect` (URL forms, creating the file, migrations), `codec` (text forms),
//! `error` (database errors to [`crate::StoreError`]), `batch` (apply), `writer` (the write
//! thread and group commit),
//! and one file per table group:
//! `orgs`, `docks`, `resources`, `operations`, `journal`, `audit`, `feed`, `deploy_log`.

mod audit;
mod batch;
mod codec;
mod connect;
mod deploy_log;
mod docks;
mod dump;
mod error;
mod feed;
mod journal;
mod nodes;
mod operations;
mod orgs;
mod reader;
mod resources;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, DockName, Marker, Operation, OperationId, OrgId, Resource,
    ResourceId, ResourceKind, Role, Step, Timestamp, TokenId, UserId,
};
use tokio::sync::watch;

use crate::{
    AuditFilter, Batch, Bootstrap, Change, DeployLogLine, FencedWrite, IdempotentRequest, Lease,
    Login, Member, MemberKey, NewInvitation, NewSession, NewToken, OperationKey, Page, PageRequest,
    Principal, ResourceFilter, ResourceKey, Result, SealedRows, Store, StoreError, TokenInfo,
    TokenKey,
};

/// The [`Store`] on a SQLite file. Cloning is cheap and shares the threads and the signal.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Reads only; under WAL they see the last commit and never block the writer.
    readers: reader::Readers,
    /// Holds the newest feed seq this process committed (or found at open).
    changes: Arc<watch::Sender<i64>>,
    /// Every write of this process, many to a transaction (group commit).
    writer: writer::Writer,
    /// Holds the newest deploy log seq this process appended.
    logs: Arc<watch::Sender<i64>>,
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directories) the database file, in WAL
    /// mode with a busy timeout and foreign keys on, and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        connect::open(path).await?;
        // The writer first: its connection keeps the WAL's files in place for the read-only
        // ones. Nothing is written before `changes` holds the feed's newest seq.
        let changes = Arc::new(watch::Sender::new(0));
        let writer = {
            let changes = Arc::clone(&changes);
            writer::Writer::start(path, connect::BUSY_TIMEOUT, move |seq| {
                signal(&changes, seq)
            })?
        };
        let readers =
            reader::Readers::start(path, connect::READ_CONNECTIONS, connect::BUSY_TIMEOUT)?;
        signal(&changes, readers.read(feed::latest).await?);
        let logs = Arc::new(watch::Sender::new(readers.read(deploy_log::latest).await?));
        Ok(Self {
            readers,
            changes,
            writer,
            logs,
        })
    }

    /// Opens the file a `STACKDOCK_DATABASE_URL` names: `sqlite:///abs/path.db`,
    /// `sqlite://rel.db`, `sqlite:rel.db` or a plain path.
    pub async fn open_url(url: &str) -> Result<Self> {
        Self::open(&connect::path_from_url(url)?).await
    }

    /// Lets queued reads and writes finish, then closes the connections; later calls fail.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// Every row of `tables` (each with the columns to read), for a copy to another store
    /// (see [`crate::copy`]).
    pub(crate) async fn dump(
        &self,
        tables: Vec<(&'static str, Vec<String>)>,
    ) -> Result<Vec<crate::copy::TableRows>> {
        self.read(move |c| dump::dump(c, &tables)).await
    }

    /// Runs `work` on a reader.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.readers.read(work).await
    }

    /// Runs `work` on the writer; it writes nothing to the feed.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(move |conn| Ok((work(conn)?, None))).await
    }
}

/// Tells subscribers the feed reached `seq`. Commits reach here in any order across tasks;
/// the signal only moves forward.
fn signal(changes: &watch::Sender<i64>, seq: i64) {
    changes.send_if_modified(|current| {
        if seq > *current {
            *current = seq;
            true
        } else {
            false
        }
    });
}

#[async_trait]
impl Store for SqliteStore {
    async fn bootstrap(&self, b: &Bootstrap, audit: AuditEntry) -> Result<()> {
        let b = b.clone();
        self.write(move |conn| orgs::bootstrap(conn, &b, &audit))
            .await
    }

    async fn first_org(&self) -> Result<Option<OrgId>> {
        self.read(orgs::first_org).await
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let token_hash = token_hash.to_string();
        self.read(move |c| orgs::principal_for_token(c, &token_hash))
            .await
    }

    async fn create_token(&self, token: NewToken, audit: AuditEntry) -> Result<TokenInfo> {
        self.write(move |conn| orgs::create_token(conn, &token, &audit))
            .await
    }

    async fn list_tokens(
        &self,
        org: OrgId,
        user: Option<UserId>,
        page: &PageRequest<TokenKey>,
    ) -> Result<Page<TokenInfo, TokenKey>> {
        let page = page.clone();
        self.read(move |c| orgs::list_tokens(c, org, user, &page))
            .await
    }

    async fn revoke_token(
        &self,
        org: OrgId,
        id: TokenId,
        user: Option<UserId>,
        audit: AuditEntry,
    ) -> Result<TokenInfo> {
        self.write(move |conn| orgs::revoke_token(conn, org, id, user, &audit))
            .await
    }

    async fn add_member_invited(
        &self,
        org: OrgId,
        email: &str,
        role: Role,
        audit: AuditEntry,
        invitation: Option<NewInvitation>,
    ) -> Result<Member> {
        let email = email.to_string();
        self.write(move |conn| {
            let member = orgs::add_member(conn, org, &email, role, &audit)?;
            if let Some(inv) = &invitation {
                let token = inv.token(org, member.user_id);
                orgs::create_token(conn, &token, &inv.audit_for(member.user_id))?;
            }
            Ok(member)
        })
        .await
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: String,
        audit: AuditEntry,
    ) -> Result<Option<Login>> {
        let hash = token_hash.to_string();
        self.write(move |conn| {
            let Some(login) = orgs::accept_invitation(conn, &hash)? else {
                return Ok(None);
            };
            let audit = AuditEntry {
                org_id: login.org_id,
                actor: Some(login.user_id),
                ..audit
            };
            orgs::set_password(conn, login.user_id, &password_hash, &audit)?;
            Ok(Some(login))
        })
        .await
    }

    async fn set_password(&self, user: UserId, hash: String, audit: AuditEntry) -> Result<()> {
        self.write(move |conn| orgs::set_password(conn, user, &hash, &audit))
            .await
    }

    async fn login(&self, email: &str) -> Result<Option<Login>> {
        let email = email.to_string();
        self.read(move |c| orgs::login(c, &email)).await
    }

    async fn create_session(&self, session: NewSession, audit: AuditEntry) -> Result<()> {
        self.write(move |conn| orgs::create_session(conn, &session, &audit))
            .await
    }

    async fn principal_for_session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(Principal, String)>> {
        let hash = secret_hash.to_string();
        self.read(move |c| orgs::principal_for_session(c, &hash))
            .await
    }

    async fn end_session(&self, secret_hash: &str) -> Result<()> {
        let hash = secret_hash.to_string();
        self.write(move |conn| orgs::end_session(conn, &hash)).await
    }

    async fn sealed_rows(&self) -> Result<SealedRows> {
        self.read(|c| {
            Ok(SealedRows {
                docks: docks::all(c)?,
                operations: operations::with_sealed_input(c)?,
                steps: operations::with_sealed_output(c)?,
            })
        })
        .await
    }

    async fn list_members(
        &self,
        org: OrgId,
        page: &PageRequest<MemberKey>,
    ) -> Result<Page<Member, MemberKey>> {
        let page = page.clone();
        self.read(move |c| orgs::list_members(c, org, &page)).await
    }

    async fn set_member_role(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
        audit: AuditEntry,
    ) -> Result<Member> {
        self.write(move |conn| orgs::set_member_role(conn, org, user, role, &audit))
            .await
    }

    async fn remove_member(&self, org: OrgId, user: UserId, audit: AuditEntry) -> Result<()> {
        self.write(move |conn| orgs::remove_member(conn, org, user, &audit))
            .await
    }

    async fn get_dock(&self, org: OrgId, id: DockId) -> Result<Dock> {
        self.read(move |c| docks::get(c, org, id)).await
    }

    async fn find_dock_by_name(&self, org: OrgId, name: &DockName) -> Result<Option<Dock>> {
        let name = name.clone();
        self.read(move |c| docks::find_by_name(c, org, &name)).await
    }

    async fn list_docks(
        &self,
        org: OrgId,
        page: &PageRequest<DockName>,
    ) -> Result<Page<Dock, DockName>> {
        let page = page.clone();
        self.read(move |c| docks::list(c, org, &page)).await
    }

    async fn remove_dock(&self, org: OrgId, id: DockId, audit: AuditEntry) -> Result<()> {
        self.write(move |conn| docks::remove(conn, org, id, &audit))
            .await
    }

    async fn get_resource(&self, org: OrgId, id: ResourceId) -> Result<Resource> {
        self.read(move |c| resources::get(c, org, id)).await
    }

    async fn get_resources(&self, org: OrgId, ids: &[ResourceId]) -> Result<Vec<Resource>> {
        let ids = ids.to_vec();
        self.read(move |c| resources::get_many(c, org, &ids)).await
    }

    async fn list_resources(
        &self,
        org: OrgId,
        filter: &ResourceFilter,
        page: &PageRequest<ResourceKey>,
    ) -> Result<Page<Resource, ResourceKey>> {
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |c| resources::list(c, org, &filter, &page))
            .await
    }

    async fn find_by_provider_id(
        &self,
        org: OrgId,
        dock: DockId,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Resource>> {
        let pid = provider_resource_id.to_string();
        self.read(move |c| resources::find_by_provider_id(c, org, dock, kind, &pid))
            .await
    }

    async fn find_by_marker(&self, org: OrgId, marker: &Marker) -> Result<Option<Resource>> {
        let marker = marker.clone();
        self.read(move |c| resources::find_by_marker(c, org, &marker))
            .await
    }

    async fn apply(&self, batch: Batch) -> Result<Vec<Resource>> {
        self.writer
            .write(move |conn| {
                let applied = batch::apply(conn, &batch)?;
                Ok((applied.resources, applied.last_seq))
            })
            .await
    }

    async fn apply_fenced(&self, _org: OrgId, batch: Batch) -> Result<FencedWrite> {
        if batch.fence.is_none() {
            return Err(StoreError::Refused {
                message: "apply_fenced needs a batch fenced by a lease".into(),
            });
        }
        self.writer
            .write(move |conn| {
                let applied = batch::apply(conn, &batch)?;
                let fenced = FencedWrite {
                    resources: applied.resources,
                    cancel_requested: applied.cancel_requested,
                };
                Ok((fenced, applied.last_seq))
            })
            .await
    }

    async fn apply_each(&self, batches: Vec<Batch>) -> Result<Vec<Result<Vec<Resource>>>> {
        self.writer
            .write(move |conn| {
                let mut results = Vec::with_capacity(batches.len());
                let mut last_seq = None;
                for batch in &batches {
                    // A savepoint per batch: one that fails is rolled back alone.
                    conn.execute_batch("SAVEPOINT batch")?;
                    match batch::apply(conn, batch) {
                        Ok(applied) => {
                            conn.execute_batch("RELEASE batch")?;
                            last_seq = applied.last_seq.or(last_seq);
                            results.push(Ok(applied.resources));
                        }
                        Err(e) => {
                            conn.execute_batch("ROLLBACK TO batch; RELEASE batch")?;
                            results.push(Err(e));
                        }
                    }
                }
                Ok((results, last_seq))
            })
            .await
    }

    async fn find_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        let key = key.to_string();
        self.read(move |c| resources::find_idempotency_key(c, org, &key))
            .await
    }

    async fn get_operation(&self, org: OrgId, id: OperationId) -> Result<Operation> {
        self.read(move |c| operations::get(c, org, id)).await
    }

    async fn list_operations(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        page: &PageRequest<OperationKey>,
    ) -> Result<Page<Operation, OperationKey>> {
        let page = page.clone();
        self.read(move |c| operations::list(c, org, resource, &page))
            .await
    }

    async fn active_operation_for(
        &self,
        org: OrgId,
        resource: ResourceId,
    ) -> Result<Option<Operation>> {
        self.read(move |c| operations::active_for(c, org, resource))
            .await
    }

    async fn claim_operations(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
        skip: &[DockId],
    ) -> Result<Vec<Operation>> {
        let owner = owner.to_string();
        let skip = skip.to_vec();
        self.write(move |conn| operations::claim(conn, &owner, lease, limit, &skip))
            .await
    }

    async fn claim_waiting(
        &self,
        owner: &str,
        hold: Duration,
        ahead: Duration,
        limit: u32,
        dock: Option<DockId>,
    ) -> Result<Vec<Operation>> {
        // Most polls find nothing due; a read answers those without taking the write lock.
        let by = operations::expiry(codec::now(), ahead)?;
        match self.read(operations::next_waiting).await? {
            Some(due) if due <= by => {}
            _ => return Ok(Vec::new()),
        }
        let owner = owner.to_string();
        self.write(move |conn| operations::claim_waiting(conn, &owner, (hold, ahead), limit, dock))
            .await
    }

    async fn extend_waiting(&self, leases: &[Lease], hold: Duration) -> Result<u64> {
        let leases = leases.to_vec();
        self.write(move |conn| operations::extend_waiting(conn, &leases, hold))
            .await
    }

    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32> {
        let node = node.to_string();
        self.write(move |conn| nodes::heartbeat(conn, &node, ttl))
            .await
    }

    async fn leave(&self, node: &str) -> Result<()> {
        let node = node.to_string();
        self.write(move |conn| nodes::leave(conn, &node)).await
    }

    async fn due_waiting_docks(&self, limit: u32) -> Result<Vec<(OrgId, DockId)>> {
        self.read(move |c| operations::due_waiting_docks(c, limit))
            .await
    }

    async fn next_waiting(&self) -> Result<Option<Timestamp>> {
        self.read(operations::next_waiting).await
    }

    async fn request_cancel(
        &self,
        org: OrgId,
        id: OperationId,
        audit: AuditEntry,
    ) -> Result<Operation> {
        self.write(move |conn| {
            let op = operations::request_cancel(conn, org, id)?;
            audit::append(conn, &audit)?;
            Ok(op)
        })
        .await
    }

    async fn expire_leases(&self, owner_prefix: &str) -> Result<u64> {
        let prefix = owner_prefix.to_string();
        self.write(move |conn| operations::expire(conn, &prefix))
            .await
    }

    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<()> {
        let lease = lease.clone();
        self.write(move |conn| operations::renew(conn, &lease, duration))
            .await
    }

    async fn steps(&self, org: OrgId, operation: OperationId) -> Result<Vec<Step>> {
        self.read(move |c| operations::steps(c, org, operation))
            .await
    }

    async fn record_api_calls(&self, calls: Vec<ApiCall>) -> Result<()> {
        self.write(move |conn| {
            for call in &calls {
                journal::record(conn, call)?;
            }
            Ok(())
        })
        .await
    }

    async fn api_calls(
        &self,
        org: OrgId,
        resource: ResourceId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ApiCall, i64>> {
        let page = page.clone();
        self.read(move |c| journal::for_resource(c, org, resource, &page))
            .await
    }

    async fn api_calls_for_operation(&self, org: OrgId, op: OperationId) -> Result<Vec<ApiCall>> {
        self.read(move |c| journal::for_operation(c, org, op)).await
    }

    async fn search_audit(
        &self,
        org: OrgId,
        filter: &AuditFilter,
        page: &PageRequest<i64>,
    ) -> Result<Page<AuditEntry, i64>> {
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |c| audit::list(c, org, &filter, &page))
            .await
    }

    async fn changes_since(&self, org: OrgId, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(move |c| feed::since(c, Some(org), after, limit))
            .await
    }

    async fn all_changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(move |c| feed::since(c, None, after, limit)).await
    }

    async fn latest_change(&self) -> Result<i64> {
        self.read(feed::latest).await
    }

    fn change_signal(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }

    async fn append_deploy_log(&self, lines: Vec<DeployLogLine>) -> Result<()> {
        let newest = self
            .write(move |conn| {
                let mut newest = 0;
                for line in &lines {
                    newest = deploy_log::append(conn, line)?;
                }
                Ok(newest)
            })
            .await?;
        signal(&self.logs, newest);
        Ok(())
    }

    async fn deploy_log_since(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeployLogLine>> {
        self.read(move |c| deploy_log::since(c, org, resource, after, limit))
            .await
    }

    async fn all_deploy_log_since(&self, after: i64, limit: u32) -> Result<Vec<DeployLogLine>> {
        self.read(move |c| deploy_log::all_since(c, after, limit))
            .await
    }

    async fn latest_deploy_log(&self) -> Result<i64> {
        self.read(deploy_log::latest).await
    }

    fn deploy_log_signal(&self) -> watch::Receiver<i64> {
        self.logs.subscribe()
    }
}

#[cfg(test)]
mod tests;
