//! [`PostgresStore`]: the [`Store`] on PostgreSQL, for several StackDock nodes sharing one
//! database.
//!
//! How the trait maps onto PostgreSQL:
//!
//! - **A pool, a transaction per call.** Every call takes a connection from the pool; a call
//!   that writes runs in one transaction (`READ COMMITTED`), so a batch is whole or absent, as
//!   on SQLite. A transaction that loses a deadlock or a serialization check is rolled back by
//!   the server and run again by the store, a few times, before the error is returned.
//! - **Row locks instead of one writer.** SQLite has one writer per file; here nodes write at
//!   once, so reads that decide a write lock what they read: a fenced batch its operation
//!   (`operations::check_fence`), an update its resource row (`resources::update`), a removal
//!   its dock, a demotion the org's owners. The schema's unique and foreign keys are the last
//!   word between nodes; their violations map to the errors SQLite's give (`error`).
//! - **Claims skip what others hold.** `FOR UPDATE SKIP LOCKED` then the update, in one
//!   statement (see `operations`): claimers on several nodes never wait for each other and
//!   never get the same operation; the generation bump fences the previous holder.
//! - **A feed in commit order.** Feed and deploy log numbers come from one-row counters taken
//!   as the last step of the writing transaction, not from a sequence (see `feed` for why).
//! - **Signals from every node.** Writing transactions `pg_notify` their newest seq; one
//!   `LISTEN`ing task per store moves [`Store::change_signal`] and
//!   [`Store::deploy_log_signal`] for commits of any process (see `listen`).
//! - **Typed columns.** `uuid` ids, `timestamptz` instants (microseconds; values are
//!   truncated to them before writing, so they read back equal, as with SQLite's text),
//!   `jsonb` documents, `bigint` counts, enums as checked text.
//!
//! Files mirror the SQLite store's: `connect` (pool, migrations), `codec` (column types),
//! `error` (database errors to [`crate::StoreError`], retries), `batch` (apply), `listen`
//! (notifications), and one file per table group: `orgs`, `docks`, `resources`, `operations`,
//! `journal`, `audit`, `feed`, `deploy_log`.

mod audit;
mod batch;
mod codec;
mod connect;
mod deploy_log;
mod docks;
mod error;
mod feed;
mod journal;
mod listen;
mod load;
mod nodes;
mod operations;
mod orgs;
mod resources;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
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

/// How many times a transaction that lost a deadlock or a serialization check is run in all.
const ATTEMPTS: u32 = 5;

/// Runs `$work` (an expression of `$conn: &mut PgConnection` giving a future of a
/// [`Result`]) in a transaction of `$store`'s pool, committing on `Ok` and rolling back on
/// `Err`; a deadlock or serialization failure runs it again, up to [`ATTEMPTS`] times.
///
/// A macro rather than a function taking a closure: the work borrows the connection for the
/// length of its future, which a closure's signature cannot say for every lifetime.
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $work:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome: Result<_> = async {
                let mut tx = $store.pool.begin().await?;
                let value = {
                    let $conn: &mut sqlx::PgConnection = &mut tx;
                    $work.await?
                };
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(e) if attempt < ATTEMPTS && error::is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "transaction lost a conflict; again");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5)).await;
                }
                other => break other.map_err(error::classify),
            }
        }
    }};
}

/// Runs a read with a connection of `$store`'s pool.
macro_rules! read {
    ($store:expr, |$conn:ident| $work:expr) => {{
        let mut pooled = $store.conn().await?;
        let $conn: &mut sqlx::PgConnection = &mut pooled;
        $work.await.map_err(error::classify)
    }};
}

/// The [`Store`] on a PostgreSQL database. Cloning is cheap and shares the pool, the
/// signals and the listener, which stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    /// Every statement's connection.
    pool: PgPool,
    /// Holds the newest feed seq committed by any process, as far as this one has heard.
    changes: Arc<watch::Sender<i64>>,
    /// Holds the newest deploy log seq committed by any process, as far as this one has heard.
    logs: Arc<watch::Sender<i64>>,
    /// Moves the two signals on other processes' commits.
    listener: Arc<listen::Listener>,
}

impl PostgresStore {
    /// Connects to the database a `postgres://` (or `postgresql://`) URL names, with a pool of
    /// 16 connections, and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, connect::DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`PostgresStore::connect`] with a pool of at most `max_connections` (one more is kept
    /// for the listener).
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self> {
        let options = connect::options(url)?;
        let pool = connect::pool(&options, max_connections).await?;
        let changes = Arc::new(watch::Sender::new(0));
        let logs = Arc::new(watch::Sender::new(0));
        let signals = listen::Signals {
            changes: Arc::clone(&changes),
            logs: Arc::clone(&logs),
        };
        // Started before the store is handed out: from then on, every commit of any process
        // reaches the signals (the start reads where the counters are).
        let listener = listen::start(options, pool.clone(), signals).await?;
        Ok(Self {
            pool,
            changes,
            logs,
            listener: Arc::new(listener),
        })
    }

    /// Stops the listener and closes the pool's connections once they are returned; later
    /// calls fail.
    pub async fn close(&self) {
        self.listener.stop();
        self.pool.close().await;
    }

    /// The columns of each copied table, in this schema's order, for a copy from SQLite (see
    /// [`crate::copy`]).
    pub(crate) async fn copy_columns(&self) -> Result<Vec<(&'static str, Vec<String>)>> {
        let columns = read!(self, |c| load::columns(c))?;
        Ok(columns
            .into_iter()
            .map(|(table, cols)| (table, cols.into_iter().map(|(name, _)| name).collect()))
            .collect())
    }

    /// Loads what a copy read, in one transaction, into this (empty) database.
    pub(crate) async fn load(
        &self,
        dump: Vec<crate::copy::TableRows>,
    ) -> Result<crate::copy::CopyReport> {
        let report = in_transaction!(self, |c| load_in(c, &dump))?;
        signal(&self.changes, report.latest_change);
        signal(&self.logs, report.latest_deploy_log);
        Ok(report)
    }

    /// A connection for a call that only reads.
    async fn conn(&self) -> Result<PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// Applies one batch and numbers its feed entries, in the caller's transaction.
    async fn apply_in(
        c: &mut sqlx::PgConnection,
        batch: &Batch,
    ) -> Result<(batch::Applied, Option<i64>)> {
        let applied = batch::apply(c, batch).await?;
        let last = feed::publish(c, &applied.changes).await?;
        Ok((applied, last))
    }
}

/// Tells subscribers the feed (or the deploy log) reached `seq`. Commits and notifications
/// arrive in any order; the signal only moves forward.
fn signal(tx: &watch::Sender<i64>, seq: i64) {
    tx.send_if_modified(|current| {
        if seq > *current {
            *current = seq;
            true
        } else {
            false
        }
    });
}

#[async_trait]
impl Store for PostgresStore {
    async fn bootstrap(&self, b: &Bootstrap, audit: AuditEntry) -> Result<()> {
        in_transaction!(self, |c| orgs::bootstrap(c, b, &audit))
    }

    async fn first_org(&self) -> Result<Option<OrgId>> {
        read!(self, |c| orgs::first_org(c))
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        read!(self, |c| orgs::principal_for_token(c, token_hash))
    }

    async fn create_token(&self, token: NewToken, audit: AuditEntry) -> Result<TokenInfo> {
        in_transaction!(self, |c| orgs::create_token(c, &token, &audit))
    }

    async fn list_tokens(
        &self,
        org: OrgId,
        user: Option<UserId>,
        page: &PageRequest<TokenKey>,
    ) -> Result<Page<TokenInfo, TokenKey>> {
        read!(self, |c| orgs::list_tokens(c, org, user, page))
    }

    async fn revoke_token(
        &self,
        org: OrgId,
        id: TokenId,
        user: Option<UserId>,
        audit: AuditEntry,
    ) -> Result<TokenInfo> {
        in_transaction!(self, |c| orgs::revoke_token(c, org, id, user, &audit))
    }

    async fn add_member_invited(
        &self,
        org: OrgId,
        email: &str,
        role: Role,
        audit: AuditEntry,
        invitation: Option<NewInvitation>,
    ) -> Result<Member> {
        in_transaction!(self, |c| orgs::add_member_invited(
            c,
            org,
            (email, role, &audit),
            invitation.as_ref()
        ))
    }

    async fn list_members(
        &self,
        org: OrgId,
        page: &PageRequest<MemberKey>,
    ) -> Result<Page<Member, MemberKey>> {
        read!(self, |c| orgs::list_members(c, org, page))
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: String,
        audit: AuditEntry,
    ) -> Result<Option<Login>> {
        in_transaction!(self, |c| orgs::take_up_invitation(
            c,
            token_hash,
            &password_hash,
            &audit
        ))
    }

    async fn set_password(&self, user: UserId, hash: String, audit: AuditEntry) -> Result<()> {
        in_transaction!(self, |c| orgs::set_password(c, user, &hash, &audit))
    }

    async fn login(&self, email: &str) -> Result<Option<Login>> {
        read!(self, |c| orgs::login(c, email))
    }

    async fn create_session(&self, session: NewSession, audit: AuditEntry) -> Result<()> {
        in_transaction!(self, |c| orgs::create_session(c, &session, &audit))
    }

    async fn principal_for_session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(Principal, String)>> {
        read!(self, |c| orgs::principal_for_session(c, secret_hash))
    }

    async fn end_session(&self, secret_hash: &str) -> Result<()> {
        in_transaction!(self, |c| orgs::end_session(c, secret_hash))
    }

    async fn set_member_role(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
        audit: AuditEntry,
    ) -> Result<Member> {
        in_transaction!(self, |c| orgs::set_member_role(c, org, user, role, &audit))
    }

    async fn remove_member(&self, org: OrgId, user: UserId, audit: AuditEntry) -> Result<()> {
        in_transaction!(self, |c| orgs::remove_member(c, org, user, &audit))
    }

    async fn get_dock(&self, org: OrgId, id: DockId) -> Result<Dock> {
        read!(self, |c| docks::get_dock(c, org, id))
    }

    async fn find_dock_by_name(&self, org: OrgId, name: &DockName) -> Result<Option<Dock>> {
        read!(self, |c| docks::find_by_name(c, org, name))
    }

    async fn list_docks(
        &self,
        org: OrgId,
        page: &PageRequest<DockName>,
    ) -> Result<Page<Dock, DockName>> {
        read!(self, |c| docks::list(c, org, page))
    }

    async fn remove_dock(&self, org: OrgId, id: DockId, audit: AuditEntry) -> Result<()> {
        in_transaction!(self, |c| docks::remove(c, org, id, &audit))
    }

    async fn get_resource(&self, org: OrgId, id: ResourceId) -> Result<Resource> {
        read!(self, |c| resources::get_resource(c, org, id))
    }

    async fn get_resources(&self, org: OrgId, ids: &[ResourceId]) -> Result<Vec<Resource>> {
        read!(self, |c| resources::get_many(c, org, ids))
    }

    async fn list_resources(
        &self,
        org: OrgId,
        filter: &ResourceFilter,
        page: &PageRequest<ResourceKey>,
    ) -> Result<Page<Resource, ResourceKey>> {
        read!(self, |c| resources::list(c, org, filter, page))
    }

    async fn find_by_provider_id(
        &self,
        org: OrgId,
        dock: DockId,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Resource>> {
        read!(self, |c| resources::find_by_provider_id(
            c,
            org,
            dock,
            kind,
            provider_resource_id
        ))
    }

    async fn find_by_marker(&self, org: OrgId, marker: &Marker) -> Result<Option<Resource>> {
        read!(self, |c| resources::find_by_marker(c, org, marker))
    }

    async fn apply(&self, batch: Batch) -> Result<Vec<Resource>> {
        let (applied, last) = in_transaction!(self, |c| Self::apply_in(c, &batch))?;
        if let Some(seq) = last {
            signal(&self.changes, seq);
        }
        Ok(applied.resources)
    }

    /// One transaction: the fence check reads `cancel_requested` from the row it locks, so the
    /// answer is the one the batch was applied under.
    async fn apply_fenced(&self, _org: OrgId, batch: Batch) -> Result<FencedWrite> {
        if batch.fence.is_none() {
            return Err(StoreError::Refused {
                message: "apply_fenced needs a batch fenced by a lease".into(),
            });
        }
        let (applied, last) = in_transaction!(self, |c| Self::apply_in(c, &batch))?;
        if let Some(seq) = last {
            signal(&self.changes, seq);
        }
        Ok(FencedWrite {
            resources: applied.resources,
            cancel_requested: applied.cancel_requested,
        })
    }

    async fn apply_each(&self, batches: Vec<Batch>) -> Result<Vec<Result<Vec<Resource>>>> {
        let (results, last) = in_transaction!(self, |c| apply_each_in(c, &batches))?;
        if let Some(seq) = last {
            signal(&self.changes, seq);
        }
        Ok(results)
    }

    async fn find_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        read!(self, |c| resources::find_idempotency_key(c, org, key))
    }

    async fn sealed_rows(&self) -> Result<SealedRows> {
        read!(self, |c| sealed_rows_in(c))
    }

    async fn get_operation(&self, org: OrgId, id: OperationId) -> Result<Operation> {
        read!(self, |c| operations::get_operation(c, org, id))
    }

    async fn list_operations(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        page: &PageRequest<OperationKey>,
    ) -> Result<Page<Operation, OperationKey>> {
        read!(self, |c| operations::list(c, org, resource, page))
    }

    async fn active_operation_for(
        &self,
        org: OrgId,
        resource: ResourceId,
    ) -> Result<Option<Operation>> {
        read!(self, |c| operations::active_for(c, org, resource))
    }

    async fn claim_operations(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
        skip: &[DockId],
    ) -> Result<Vec<Operation>> {
        in_transaction!(self, |c| operations::claim(c, owner, lease, limit, skip))
    }

    async fn claim_waiting(
        &self,
        owner: &str,
        hold: Duration,
        ahead: Duration,
        limit: u32,
        dock: Option<DockId>,
    ) -> Result<Vec<Operation>> {
        in_transaction!(self, |c| operations::claim_waiting(
            c,
            owner,
            (hold, ahead),
            limit,
            dock
        ))
    }

    async fn extend_waiting(&self, leases: &[Lease], hold: Duration) -> Result<u64> {
        in_transaction!(self, |c| operations::extend_waiting(c, leases, hold))
    }

    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32> {
        in_transaction!(self, |c| nodes::heartbeat(c, node, ttl))
    }

    async fn leave(&self, node: &str) -> Result<()> {
        in_transaction!(self, |c| nodes::leave(c, node))
    }

    async fn due_waiting_docks(&self, limit: u32) -> Result<Vec<(OrgId, DockId)>> {
        read!(self, |c| operations::due_waiting_docks(c, limit))
    }

    async fn next_waiting(&self) -> Result<Option<Timestamp>> {
        read!(self, |c| operations::next_waiting(c))
    }

    async fn request_cancel(
        &self,
        org: OrgId,
        id: OperationId,
        audit: AuditEntry,
    ) -> Result<Operation> {
        in_transaction!(self, |c| operations::request_cancel(c, org, id, &audit))
    }

    async fn expire_leases(&self, owner_prefix: &str) -> Result<u64> {
        in_transaction!(self, |c| operations::expire(c, owner_prefix))
    }

    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<()> {
        in_transaction!(self, |c| operations::renew(c, lease, duration))
    }

    async fn steps(&self, org: OrgId, operation: OperationId) -> Result<Vec<Step>> {
        read!(self, |c| operations::steps(c, org, operation))
    }

    async fn record_api_calls(&self, calls: Vec<ApiCall>) -> Result<()> {
        in_transaction!(self, |c| record_calls_in(c, &calls))
    }

    async fn api_calls(
        &self,
        org: OrgId,
        resource: ResourceId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ApiCall, i64>> {
        read!(self, |c| journal::for_resource(c, org, resource, page))
    }

    async fn api_calls_for_operation(&self, org: OrgId, op: OperationId) -> Result<Vec<ApiCall>> {
        read!(self, |c| journal::for_operation(c, org, op))
    }

    async fn search_audit(
        &self,
        org: OrgId,
        filter: &AuditFilter,
        page: &PageRequest<i64>,
    ) -> Result<Page<AuditEntry, i64>> {
        read!(self, |c| audit::list(c, org, filter, page))
    }

    async fn changes_since(&self, org: OrgId, after: i64, limit: u32) -> Result<Vec<Change>> {
        read!(self, |c| feed::since(c, Some(org), after, limit))
    }

    async fn all_changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        read!(self, |c| feed::since(c, None, after, limit))
    }

    async fn latest_change(&self) -> Result<i64> {
        read!(self, |c| feed::latest(c))
    }

    async fn append_deploy_log(&self, lines: Vec<DeployLogLine>) -> Result<()> {
        let last = in_transaction!(self, |c| deploy_log::append(c, &lines))?;
        if let Some(seq) = last {
            signal(&self.logs, seq);
        }
        Ok(())
    }

    async fn deploy_log_since(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeployLogLine>> {
        read!(self, |c| deploy_log::since(c, org, resource, after, limit))
    }

    async fn all_deploy_log_since(&self, after: i64, limit: u32) -> Result<Vec<DeployLogLine>> {
        read!(self, |c| deploy_log::all_since(c, after, limit))
    }

    async fn latest_deploy_log(&self) -> Result<i64> {
        read!(self, |c| deploy_log::latest(c))
    }

    fn deploy_log_signal(&self) -> watch::Receiver<i64> {
        self.logs.subscribe()
    }

    fn change_signal(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }
}

/// Every batch in a savepoint of its own, in the caller's transaction: one that fails is
/// rolled back alone. The feed entries of those that stay are numbered at the end, in batch
/// order. A batch that lost a deadlock fails the whole call instead (the transaction is then
/// run again), since running it again alone could succeed.
async fn apply_each_in(
    c: &mut sqlx::PgConnection,
    batches: &[Batch],
) -> Result<(Vec<Result<Vec<Resource>>>, Option<i64>)> {
    let mut results = Vec::with_capacity(batches.len());
    let mut changes = Vec::new();
    for batch in batches {
        sqlx::query("SAVEPOINT batch").execute(&mut *c).await?;
        match batch::apply(c, batch).await {
            Ok(applied) => {
                sqlx::query("RELEASE SAVEPOINT batch")
                    .execute(&mut *c)
                    .await?;
                changes.extend(applied.changes);
                results.push(Ok(applied.resources));
            }
            Err(e) if error::is_retryable(&e) => return Err(e),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT batch")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT batch")
                    .execute(&mut *c)
                    .await?;
                results.push(Err(error::classify(e)));
            }
        }
    }
    let last = feed::publish(c, &changes).await?;
    Ok((results, last))
}

async fn load_in(
    c: &mut sqlx::PgConnection,
    dump: &[crate::copy::TableRows],
) -> Result<crate::copy::CopyReport> {
    let columns = load::columns(c).await?;
    load::load(c, &columns, dump).await
}

async fn record_calls_in(c: &mut sqlx::PgConnection, calls: &[ApiCall]) -> Result<()> {
    for call in calls {
        journal::record(c, call).await?;
    }
    Ok(())
}

async fn sealed_rows_in(c: &mut sqlx::PgConnection) -> Result<SealedRows> {
    Ok(SealedRows {
        docks: docks::all(c).await?,
        operations: operations::with_sealed_input(c).await?,
        steps: operations::with_sealed_output(c).await?,
    })
}

#[cfg(test)]
mod tests;
