//! [`SqliteStore`]: the [`Store`] on one SQLite file, StackDock's embedded default.
//!
//! How the trait maps onto SQLite:
//!
//! - **One writer.** SQLite lets one connection write at a time per file. Every write of this
//!   process (a [`Batch`], a claim, a lease renewal, a journal entry) goes
//!   through a pool of exactly one connection, so they queue in the pool; reads use a separate
//!   small pool and, under WAL, never wait for the writer.
//! - **Group commit.** Batches and journal entries written at the same moment share one
//!   transaction, each in a savepoint of its own (see `commit`), so hundreds of operations in
//!   flight do not pay a transaction each.
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
//!
//! Files: `connect` (URL forms, pragmas, pools, migrations), `codec` (text forms),
//! `error` (sqlx errors to [`crate::StoreError`]), `batch` (apply), `commit` (group commit),
//! and one file per table group:
//! `orgs`, `docks`, `resources`, `operations`, `journal`, `audit`, `feed`.

mod audit;
mod batch;
mod codec;
mod commit;
mod connect;
mod docks;
mod error;
mod feed;
mod journal;
mod operations;
mod orgs;
mod resources;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Sqlite, Transaction};
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, DockName, Marker, Operation, OperationId, OrgId, Resource,
    ResourceId, ResourceKind, Step, Timestamp,
};
use tokio::sync::watch;

use crate::{
    Batch, Bootstrap, Change, IdempotentRequest, Lease, Principal, ResourceFilter, Result, Store,
};

/// The [`Store`] on a SQLite file. Cloning is cheap and shares the pools and the signal.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Exactly one connection: every write of this process, in `BEGIN IMMEDIATE`.
    write: SqlitePool,
    /// Reads only; under WAL they see the last commit and never block the writer.
    read: SqlitePool,
    /// Holds the newest feed seq this process committed (or found at open).
    changes: Arc<watch::Sender<i64>>,
    /// Batches and journal entries go through it, many to a transaction (group commit).
    committer: commit::Committer,
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directories) the database file, in WAL
    /// mode with a busy timeout and foreign keys on, and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let pools = connect::open(path).await?;
        let mut conn = pools.read.acquire().await?;
        let latest = feed::latest(&mut conn).await?;
        drop(conn);
        let changes = Arc::new(watch::Sender::new(latest));
        let committer = {
            let changes = Arc::clone(&changes);
            commit::Committer::start(pools.write.clone(), move |seq| signal(&changes, seq))
        };
        Ok(Self {
            write: pools.write,
            read: pools.read,
            changes,
            committer,
        })
    }

    /// Opens the file a `STACKDOCK_DATABASE_URL` names: `sqlite:///abs/path.db`,
    /// `sqlite://rel.db`, `sqlite:rel.db` or a plain path.
    pub async fn open_url(url: &str) -> Result<Self> {
        Self::open(&connect::path_from_url(url)?).await
    }

    /// Closes both pools, waiting for their connections to finish; later calls fail.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn reader(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.read.acquire().await?)
    }

    async fn writer(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn signal(&self, seq: i64) {
        signal(&self.changes, seq);
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
        let mut tx = self.writer().await?;
        orgs::bootstrap(&mut tx, b, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn first_org(&self) -> Result<Option<OrgId>> {
        orgs::first_org(&mut *self.reader().await?).await
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        orgs::principal_for_token(&mut *self.reader().await?, token_hash).await
    }

    async fn get_dock(&self, org: OrgId, id: DockId) -> Result<Dock> {
        docks::get(&mut *self.reader().await?, org, id).await
    }

    async fn find_dock_by_name(&self, org: OrgId, name: &DockName) -> Result<Option<Dock>> {
        docks::find_by_name(&mut *self.reader().await?, org, name).await
    }

    async fn list_docks(&self, org: OrgId) -> Result<Vec<Dock>> {
        docks::list(&mut *self.reader().await?, org).await
    }

    async fn remove_dock(&self, org: OrgId, id: DockId, audit: AuditEntry) -> Result<()> {
        let mut tx = self.writer().await?;
        docks::remove(&mut tx, org, id, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_resource(&self, org: OrgId, id: ResourceId) -> Result<Resource> {
        resources::get(&mut *self.reader().await?, org, id).await
    }

    async fn get_resources(&self, org: OrgId, ids: &[ResourceId]) -> Result<Vec<Resource>> {
        resources::get_many(&mut *self.reader().await?, org, ids).await
    }

    async fn list_resources(&self, org: OrgId, filter: &ResourceFilter) -> Result<Vec<Resource>> {
        resources::list(&mut *self.reader().await?, org, filter).await
    }

    async fn find_by_provider_id(
        &self,
        dock: DockId,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Resource>> {
        resources::find_by_provider_id(&mut *self.reader().await?, dock, kind, provider_resource_id)
            .await
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<Resource>> {
        resources::find_by_marker(&mut *self.reader().await?, marker).await
    }

    async fn apply(&self, batch: Batch) -> Result<Vec<Resource>> {
        Ok(self.committer.apply(batch).await?.resources)
    }

    async fn apply_each(&self, batches: Vec<Batch>) -> Result<Vec<Result<Vec<Resource>>>> {
        let mut tx = self.writer().await?;
        let mut results = Vec::with_capacity(batches.len());
        let mut last_seq = None;
        for batch in &batches {
            // A savepoint per batch: one that fails is rolled back alone.
            let mut sub = tx.begin().await?;
            match batch::apply(&mut sub, batch).await {
                Ok(applied) => {
                    sub.commit().await?;
                    last_seq = applied.last_seq.or(last_seq);
                    results.push(Ok(applied.resources));
                }
                Err(e) => {
                    sub.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        if let Some(seq) = last_seq {
            self.signal(seq);
        }
        Ok(results)
    }

    async fn find_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        resources::find_idempotency_key(&mut *self.reader().await?, org, key).await
    }

    async fn get_operation(&self, org: OrgId, id: OperationId) -> Result<Operation> {
        operations::get(&mut *self.reader().await?, org, id).await
    }

    async fn list_operations(
        &self,
        org: OrgId,
        resource: Option<ResourceId>,
        limit: u32,
    ) -> Result<Vec<Operation>> {
        operations::list(&mut *self.reader().await?, org, resource, limit).await
    }

    async fn active_operation_for(&self, resource: ResourceId) -> Result<Option<Operation>> {
        operations::active_for(&mut *self.reader().await?, resource).await
    }

    async fn claim_operations(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Operation>> {
        let mut tx = self.writer().await?;
        let claimed = operations::claim(&mut tx, owner, lease, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn claim_waiting(
        &self,
        owner: &str,
        hold: Duration,
        limit: u32,
        dock: Option<DockId>,
    ) -> Result<Vec<Operation>> {
        // Most polls find nothing due; a read answers those without taking the write lock.
        match operations::next_waiting(&mut *self.reader().await?).await? {
            Some(due) if due <= codec::now() => {}
            _ => return Ok(Vec::new()),
        }
        let mut tx = self.writer().await?;
        let claimed = operations::claim_waiting(&mut tx, owner, hold, limit, dock).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn due_waiting_docks(&self, limit: u32) -> Result<Vec<(OrgId, DockId)>> {
        operations::due_waiting_docks(&mut *self.reader().await?, limit).await
    }

    async fn next_waiting(&self) -> Result<Option<Timestamp>> {
        operations::next_waiting(&mut *self.reader().await?).await
    }

    async fn request_cancel(&self, org: OrgId, id: OperationId) -> Result<Operation> {
        let mut tx = self.writer().await?;
        let op = operations::request_cancel(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(op)
    }

    async fn expire_leases(&self, owner_prefix: &str) -> Result<u64> {
        let mut tx = self.writer().await?;
        let ended = operations::expire(&mut tx, owner_prefix).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<()> {
        let mut tx = self.writer().await?;
        operations::renew(&mut tx, lease, duration).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn steps(&self, operation: OperationId) -> Result<Vec<Step>> {
        operations::steps(&mut *self.reader().await?, operation).await
    }

    async fn record_api_calls(&self, calls: Vec<ApiCall>) -> Result<()> {
        self.committer.journal(calls).await
    }

    async fn api_calls(&self, org: OrgId, resource: ResourceId) -> Result<Vec<ApiCall>> {
        journal::for_resource(&mut *self.reader().await?, org, resource).await
    }

    async fn api_calls_for_operation(&self, org: OrgId, op: OperationId) -> Result<Vec<ApiCall>> {
        journal::for_operation(&mut *self.reader().await?, org, op).await
    }

    async fn list_audit(
        &self,
        org: OrgId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        audit::list(&mut *self.reader().await?, org, limit, before).await
    }

    async fn changes_since(&self, org: OrgId, after: i64, limit: u32) -> Result<Vec<Change>> {
        feed::since(&mut *self.reader().await?, org, after, limit).await
    }

    async fn latest_change(&self) -> Result<i64> {
        feed::latest(&mut *self.reader().await?).await
    }

    fn change_signal(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests;
