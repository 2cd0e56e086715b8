//! Operations, their steps, and the leases workers hold on them.
//!
//! Claims are `SELECT ... FOR UPDATE SKIP LOCKED` feeding an `UPDATE` in one statement (a
//! data-modifying CTE, so one transaction and one round trip): a row another node is claiming
//! at this moment is skipped rather than waited for, and a row whose claim committed meanwhile
//! is re-checked against the `WHERE` (PostgreSQL re-reads a row that changed under a locking
//! read) and dropped, so two claimers never get the same operation.
//!
//! A fenced batch reads its operation `FOR NO KEY UPDATE` (see [`check_fence`]): a claim by
//! another node waits for the batch to commit, or the batch sees the new generation.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use stackdock_core::{
    AuditEntry, DockId, Operation, OperationId, OrgId, ResourceId, Step, Timestamp,
};

use super::codec::{
    get, id, json, json_col, micros, narrow, now, opt_id, opt_json, opt_json_col, opt_micros,
    opt_parsed, opt_text, parsed,
};
use super::docks;
use super::error::{reference_as, unique_as};
use crate::{Lease, OperationKey, Page, PageRequest, Result, StoreError};

const COLUMNS: &str = "id, org_id, kind, dock_id, resource_id, resource_kind, requested_by, state, attempt, \
     next_run_at, lease_owner, lease_expires_at, generation, input, last_error, cancel_requested, \
     unwind, waiting_since, created_at, updated_at";

/// Repeated verbatim in queries so the planner can use the partial index `operations_runnable`.
const RUNNABLE: &str = "state IN ('queued', 'running')";

/// Every operation that still needs work, waiting ones included.
const UNFINISHED: &str = "state IN ('queued', 'running', 'waiting')";

fn operation(r: &PgRow) -> Result<Operation> {
    Ok(Operation {
        id: id(r, "id")?,
        org_id: id(r, "org_id")?,
        kind: parsed(r, "kind")?,
        dock_id: id(r, "dock_id")?,
        resource_id: opt_id(r, "resource_id")?,
        resource_kind: opt_parsed(r, "resource_kind")?,
        requested_by: opt_id(r, "requested_by")?,
        state: parsed(r, "state")?,
        attempt: narrow("operations.attempt", get(r, "attempt")?)?,
        next_run_at: get(r, "next_run_at")?,
        lease_owner: get(r, "lease_owner")?,
        lease_expires_at: get(r, "lease_expires_at")?,
        generation: get(r, "generation")?,
        input: json_col(r, "input")?,
        last_error: get(r, "last_error")?,
        cancel_requested: get(r, "cancel_requested")?,
        unwind: opt_json_col(r, "unwind")?,
        waiting_since: get(r, "waiting_since")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

fn operations(rows: &[PgRow]) -> Result<Vec<Operation>> {
    rows.iter().map(operation).collect()
}

pub(crate) async fn insert(c: &mut PgConnection, op: &Operation) -> Result<()> {
    docks::ensure_in_org(c, op.org_id, op.dock_id).await?;
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "INSERT INTO operations ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     $18, $19, $20)"
        )
    });
    sqlx::query(sql)
        .bind(op.id.as_uuid())
        .bind(op.org_id.as_uuid())
        .bind(op.kind.as_str())
        .bind(op.dock_id.as_uuid())
        .bind(op.resource_id.map(|r| r.as_uuid()))
        .bind(op.resource_kind.map(|k| k.as_str()))
        .bind(op.requested_by.map(|u| u.as_uuid()))
        .bind(op.state.as_str())
        .bind(i64::from(op.attempt))
        .bind(micros(&op.next_run_at))
        .bind(&op.lease_owner)
        .bind(opt_micros(op.lease_expires_at.as_ref()))
        .bind(op.generation)
        .bind(json(&op.input)?)
        .bind(opt_text(op.last_error.as_deref()))
        .bind(op.cancel_requested)
        .bind(opt_json(op.unwind.as_ref())?)
        .bind(opt_micros(op.waiting_since.as_ref()))
        .bind(micros(&op.created_at))
        .bind(micros(&op.updated_at))
        .execute(&mut *c)
        .await
        .map_err(unique_as(|| format!("operation {}", op.id)))?;
    Ok(())
}

/// Replaces what a worker moves along: state, attempt, schedule, lease, last error, unwinding
/// and waiting; never the input, the generation or `cancel_requested` (the SQLite store's
/// `operations::update` says why).
pub(crate) async fn update(c: &mut PgConnection, op: &Operation) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE operations SET state = $1, attempt = $2, next_run_at = $3, lease_owner = $4,
                lease_expires_at = $5, last_error = $6, unwind = $7,
                waiting_since = $8, updated_at = $9
         WHERE id = $10 AND org_id = $11",
    )
    .bind(op.state.as_str())
    .bind(i64::from(op.attempt))
    .bind(micros(&op.next_run_at))
    .bind(&op.lease_owner)
    .bind(opt_micros(op.lease_expires_at.as_ref()))
    .bind(opt_text(op.last_error.as_deref()))
    .bind(opt_json(op.unwind.as_ref())?)
    .bind(opt_micros(op.waiting_since.as_ref()))
    .bind(now())
    .bind(op.id.as_uuid())
    .bind(op.org_id.as_uuid())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("operation {}", op.id),
        });
    }
    Ok(())
}

pub(crate) async fn get_operation(
    c: &mut PgConnection,
    org: OrgId,
    op_id: OperationId,
) -> Result<Operation> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL
        .get_or_init(|| format!("SELECT {COLUMNS} FROM operations WHERE org_id = $1 AND id = $2"));
    let row = sqlx::query(sql)
        .bind(org.as_uuid())
        .bind(op_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("operation {op_id}"),
        })?;
    operation(&row)
}

/// A page of the org's operations (of `resource` only, if given), newest first by
/// `(created_at, id)`: those below `page.after`.
pub(crate) async fn list(
    c: &mut PgConnection,
    org: OrgId,
    resource: Option<ResourceId>,
    page: &PageRequest<OperationKey>,
) -> Result<Page<Operation, OperationKey>> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM operations WHERE org_id = "));
    q.push_bind(org.as_uuid());
    if let Some(r) = resource {
        q.push(" AND resource_id = ").push_bind(r.as_uuid());
    }
    if let Some(after) = &page.after {
        q.push(" AND (created_at, id) < (")
            .push_bind(micros(&after.created_at))
            .push(", ")
            .push_bind(after.id.as_uuid())
            .push(")");
    }
    // One row more than the page, to know whether another follows.
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(page.limit) + 1);
    let ops = operations(&q.build().fetch_all(&mut *c).await?)?;
    Ok(Page::from_rows(ops, page.limit, |o| OperationKey {
        created_at: o.created_at,
        id: o.id,
    }))
}

pub(crate) async fn active_for(
    c: &mut PgConnection,
    org: OrgId,
    resource: ResourceId,
) -> Result<Option<Operation>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM operations
             WHERE resource_id = $1 AND org_id = $2 AND {UNFINISHED}
             ORDER BY created_at, id
             LIMIT 1"
        )
    });
    let row = sqlx::query(sql)
        .bind(resource.as_uuid())
        .bind(org.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(operation).transpose()
}

fn expiry(from: Timestamp, lease: Duration) -> Result<Timestamp> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .map(|t| micros(&t))
        .ok_or_else(|| StoreError::Refused {
            message: format!("a lease of {lease:?} is too long"),
        })
}

/// Claims up to `limit` runnable operations, oldest due first.
pub(crate) async fn claim(
    c: &mut PgConnection,
    owner: &str,
    lease: Duration,
    limit: u32,
    skip: &[DockId],
) -> Result<Vec<Operation>> {
    let at = now();
    let expires = expiry(at, lease)?;
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "WITH due AS (
                 SELECT id FROM operations
                 WHERE {RUNNABLE}
                   AND ((state = 'queued' AND next_run_at <= $3)
                        OR (state = 'running' AND lease_expires_at < $3))
                   AND NOT (dock_id = ANY($5::uuid[]))
                 ORDER BY next_run_at, created_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE operations
             SET state = 'running', lease_owner = $1, lease_expires_at = $2,
                 generation = generation + 1, attempt = attempt + 1, updated_at = $3
             WHERE id IN (SELECT id FROM due)
             RETURNING {COLUMNS}"
        )
    });
    let skip: Vec<uuid::Uuid> = skip.iter().map(|d| d.as_uuid()).collect();
    let rows = sqlx::query(sql)
        .bind(owner)
        .bind(expires)
        .bind(at)
        .bind(i64::from(limit))
        .bind(skip)
        .fetch_all(&mut *c)
        .await?;
    let mut ops = operations(&rows)?;
    ops.sort_by_key(|o| (o.next_run_at, o.created_at, o.id));
    Ok(ops)
}

/// The first key of the advisory locks that make claims of one dock's checks take turns
/// (the second is the dock's); two-key locks never meet one-key ones.
const ROUND_LOCKS: i32 = 0x5344_0001;

/// Takes up to `limit` waiting operations whose check is due (of `dock` only, if given), for
/// one observer, until `hold` from now: their next check moves there and their generation is
/// bumped. Neither the state nor the attempt changes: waiting is not a run. Of one dock,
/// nothing while another observer holds a round of its checks (see the trait).
pub(crate) async fn claim_waiting(
    c: &mut PgConnection,
    owner: &str,
    (hold, ahead): (Duration, Duration),
    limit: u32,
    dock: Option<DockId>,
) -> Result<Vec<Operation>> {
    if let Some(dock) = dock {
        // Claims of one dock's checks take turns, so the second sees the first's hold.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ROUND_LOCKS)
            .bind(dock.to_string())
            .execute(&mut *c)
            .await?;
    }
    let at = now();
    let until = expiry(at, hold)?;
    let by = expiry(at, ahead)?;
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "WITH due AS (
                 SELECT id FROM operations
                 WHERE state = 'waiting'
                   AND (next_run_at <= $3
                        OR (next_run_at <= $6 AND (lease_owner IS NULL OR lease_owner = $1)))
                   AND ($5::uuid IS NULL OR dock_id = $5)
                   AND ($5::uuid IS NULL OR NOT EXISTS (
                       SELECT 1 FROM operations AS held
                       WHERE held.state = 'waiting' AND held.dock_id = $5
                         AND held.lease_owner <> $1 AND held.next_run_at > $3))
                 ORDER BY next_run_at
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE operations
             SET lease_owner = $1, lease_expires_at = $2, next_run_at = $2,
                 generation = generation + 1, updated_at = $3
             WHERE id IN (SELECT id FROM due)
             RETURNING {COLUMNS}"
        )
    });
    let rows = sqlx::query(sql)
        .bind(owner)
        .bind(until)
        .bind(at)
        .bind(i64::from(limit))
        .bind(dock.map(|d| d.as_uuid()))
        .bind(by)
        .fetch_all(&mut *c)
        .await?;
    operations(&rows)
}

/// Moves the next check of the waiting operations still held under `leases` to `hold` from
/// now; answers how many moved.
pub(crate) async fn extend_waiting(
    c: &mut PgConnection,
    leases: &[Lease],
    hold: Duration,
) -> Result<u64> {
    let at = now();
    let until = expiry(at, hold)?;
    let ids: Vec<uuid::Uuid> = leases.iter().map(|l| l.operation_id.as_uuid()).collect();
    let owners: Vec<&str> = leases.iter().map(|l| l.owner.as_str()).collect();
    let generations: Vec<i64> = leases.iter().map(|l| l.generation).collect();
    let moved = sqlx::query(
        "UPDATE operations AS o
         SET lease_expires_at = $1, next_run_at = $1, updated_at = $2
         FROM unnest($3::uuid[], $4::text[], $5::bigint[]) AS l(id, owner, generation)
         WHERE o.id = l.id AND o.state = 'waiting' AND o.lease_owner = l.owner
           AND o.generation = l.generation",
    )
    .bind(until)
    .bind(at)
    .bind(ids)
    .bind(owners)
    .bind(generations)
    .execute(&mut *c)
    .await?;
    Ok(moved.rows_affected())
}

/// The docks (with their orgs) that have waiting operations due now.
///
/// A plain read, without locks: it only names docks for the observer to look at, and taking
/// their operations is [`claim_waiting`]'s, which skips what another node holds. Locking here
/// would write a lock into every due row on every poll and exclude nothing more.
pub(crate) async fn due_waiting_docks(
    c: &mut PgConnection,
    limit: u32,
) -> Result<Vec<(OrgId, DockId)>> {
    sqlx::query(
        "SELECT DISTINCT org_id, dock_id FROM operations
         WHERE state = 'waiting' AND next_run_at <= $1
         LIMIT $2",
    )
    .bind(now())
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| Ok((id(r, "org_id")?, id(r, "dock_id")?)))
    .collect()
}

/// The earliest check due among waiting operations, if any wait.
pub(crate) async fn next_waiting(c: &mut PgConnection) -> Result<Option<Timestamp>> {
    Ok(sqlx::query_scalar(
        "SELECT next_run_at FROM operations WHERE state = 'waiting'
         ORDER BY next_run_at LIMIT 1",
    )
    .fetch_optional(&mut *c)
    .await?)
}

/// Marks an unfinished operation cancelled. A waiting one is made runnable at once.
pub(crate) async fn request_cancel(
    c: &mut PgConnection,
    org: OrgId,
    op_id: OperationId,
    audit: &AuditEntry,
) -> Result<Operation> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "UPDATE operations
             SET cancel_requested = true, updated_at = $1,
                 state = CASE WHEN state = 'waiting' THEN 'queued' ELSE state END,
                 next_run_at = CASE WHEN state IN ('waiting', 'queued') THEN $1 ELSE next_run_at END
             WHERE org_id = $2 AND id = $3 AND {UNFINISHED}
             RETURNING {COLUMNS}"
        )
    });
    let cancelled = sqlx::query(sql)
        .bind(now())
        .bind(org.as_uuid())
        .bind(op_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    if let Some(row) = cancelled {
        super::audit::append(c, audit).await?;
        return operation(&row);
    }
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM operations WHERE org_id = $1 AND id = $2")
            .bind(org.as_uuid())
            .bind(op_id.as_uuid())
            .fetch_optional(&mut *c)
            .await?;
    match state {
        None => Err(StoreError::NotFound {
            what: format!("operation {op_id}"),
        }),
        Some(state) => Err(StoreError::Refused {
            message: format!("operation {op_id} has already finished ({state})"),
        }),
    }
}

/// Ends the leases of workers named `owner_prefix...`: running operations become claimable,
/// and waiting ones a dead observer held become due now. Compared with `starts_with`, not
/// `LIKE`, so no character of the prefix is a wildcard.
pub(crate) async fn expire(c: &mut PgConnection, owner_prefix: &str) -> Result<u64> {
    let at = now();
    let running = sqlx::query(
        "UPDATE operations SET lease_expires_at = $1, updated_at = $1
         WHERE state = 'running' AND lease_owner IS NOT NULL
           AND starts_with(lease_owner, $2)",
    )
    .bind(at)
    .bind(owner_prefix)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let waiting = sqlx::query(
        "UPDATE operations SET next_run_at = $1, lease_owner = NULL, lease_expires_at = NULL,
                updated_at = $1
         WHERE state = 'waiting' AND lease_owner IS NOT NULL
           AND starts_with(lease_owner, $2)",
    )
    .bind(at)
    .bind(owner_prefix)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(running + waiting)
}

pub(crate) async fn renew(c: &mut PgConnection, lease: &Lease, duration: Duration) -> Result<()> {
    let at = now();
    let changed = sqlx::query(
        "UPDATE operations SET lease_expires_at = $1, updated_at = $2
         WHERE id = $3 AND lease_owner = $4 AND generation = $5 AND state = 'running'",
    )
    .bind(expiry(at, duration)?)
    .bind(at)
    .bind(lease.operation_id.as_uuid())
    .bind(&lease.owner)
    .bind(lease.generation)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::Fenced(lease.operation_id));
    }
    Ok(())
}

/// The fence of a batch: the lease must still be the operation's current one. An expired
/// lease that nobody has claimed since still passes: no one else has written, so nothing can
/// be overwritten. Returns whether a cancel of the operation has been requested.
///
/// The row is locked until the batch commits, so no claim can slip in between this check and
/// the batch's writes.
pub(crate) async fn check_fence(c: &mut PgConnection, lease: &Lease) -> Result<bool> {
    let row = sqlx::query(
        "SELECT lease_owner, generation, cancel_requested FROM operations WHERE id = $1
         FOR NO KEY UPDATE",
    )
    .bind(lease.operation_id.as_uuid())
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::Fenced(lease.operation_id));
    };
    let owner: Option<String> = get(&row, "lease_owner")?;
    let generation: i64 = get(&row, "generation")?;
    if owner.as_deref() == Some(lease.owner.as_str()) && generation == lease.generation {
        get(&row, "cancel_requested")
    } else {
        Err(StoreError::Fenced(lease.operation_id))
    }
}

const STEP_COLUMNS: &str = "s.operation_id, s.step_index, s.name, s.status, s.output, s.undo, s.at";

fn step(r: &PgRow) -> Result<Step> {
    Ok(Step {
        operation_id: id(r, "operation_id")?,
        index: get(r, "step_index")?,
        name: get(r, "name")?,
        status: parsed(r, "status")?,
        output: json_col(r, "output")?,
        undo: json_col(r, "undo")?,
        at: get(r, "at")?,
    })
}

/// Upsert by (operation, index): a step replayed after a crash overwrites its first record.
pub(crate) async fn record_step(c: &mut PgConnection, s: &Step) -> Result<()> {
    sqlx::query(
        "INSERT INTO operation_steps (operation_id, step_index, name, status, output, undo, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (operation_id, step_index) DO UPDATE SET
             name = excluded.name, status = excluded.status, output = excluded.output,
             undo = excluded.undo, at = excluded.at",
    )
    .bind(s.operation_id.as_uuid())
    .bind(s.index)
    .bind(&s.name)
    .bind(s.status.as_str())
    .bind(json(&s.output)?)
    .bind(json(&s.undo)?)
    .bind(micros(&s.at))
    .execute(&mut *c)
    .await
    .map_err(reference_as(|| format!("operation {}", s.operation_id)))?;
    Ok(())
}

pub(crate) async fn steps(c: &mut PgConnection, org: OrgId, op: OperationId) -> Result<Vec<Step>> {
    sqlx::query(&format!(
        "SELECT {STEP_COLUMNS}
         FROM operation_steps s JOIN operations o ON o.id = s.operation_id
         WHERE s.operation_id = $1 AND o.org_id = $2 ORDER BY s.step_index"
    ))
    .bind(op.as_uuid())
    .bind(org.as_uuid())
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(step)
    .collect()
}

/// Operations whose input holds a sealed value.
pub(crate) async fn with_sealed_input(c: &mut PgConnection) -> Result<Vec<Operation>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM operations WHERE input::text LIKE '%\"$sealed\"%' ORDER BY id"
    ))
    .fetch_all(&mut *c)
    .await?;
    operations(&rows)
}

/// Steps whose output may hold a sealed value (`v1:` text), with their operation's resource.
pub(crate) async fn with_sealed_output(
    c: &mut PgConnection,
) -> Result<Vec<(Step, Option<ResourceId>)>> {
    sqlx::query(&format!(
        "SELECT {STEP_COLUMNS}, o.resource_id
         FROM operation_steps s JOIN operations o ON o.id = s.operation_id
         WHERE s.output::text LIKE '%\"v1:%' ORDER BY s.operation_id, s.step_index"
    ))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| Ok((step(r)?, opt_id(r, "resource_id")?)))
    .collect()
}

/// Applies one re-sealed value if the row still holds what was read (`jsonb` equality: the
/// same document, however it was spelled).
pub(crate) async fn reseal(c: &mut PgConnection, r: &crate::Reseal) -> Result<()> {
    use crate::Reseal;
    let changed = match r {
        Reseal::DockKey {
            org_id,
            id,
            from,
            to,
        } => sqlx::query(
            "UPDATE docks SET sealed_api_key = $1, key_id = $2
             WHERE org_id = $3 AND id = $4 AND sealed_api_key = $5",
        )
        .bind(to.as_str())
        .bind(to.key_id())
        .bind(org_id.as_uuid())
        .bind(id.as_uuid())
        .bind(from.as_str())
        .execute(&mut *c)
        .await?
        .rows_affected(),
        Reseal::OperationInput {
            org_id,
            id,
            from,
            to,
        } => sqlx::query(
            "UPDATE operations SET input = $1 WHERE org_id = $2 AND id = $3 AND input = $4",
        )
        .bind(json(to)?)
        .bind(org_id.as_uuid())
        .bind(id.as_uuid())
        .bind(json(from)?)
        .execute(&mut *c)
        .await?
        .rows_affected(),
        Reseal::StepOutput {
            operation_id,
            index,
            from,
            to,
        } => sqlx::query(
            "UPDATE operation_steps SET output = $1
             WHERE operation_id = $2 AND step_index = $3 AND output = $4",
        )
        .bind(json(to)?)
        .bind(operation_id.as_uuid())
        .bind(index)
        .bind(json(from)?)
        .execute(&mut *c)
        .await?
        .rows_affected(),
    };
    if changed == 0 {
        return Err(StoreError::Refused {
            message: "the sealed value changed meanwhile".into(),
        });
    }
    Ok(())
}
