//! Operations, their steps, and the leases workers hold on them.
//!
//! Claiming and renewing run on the writer (see `writer`), in its `BEGIN IMMEDIATE`
//! transactions, so the read of the runnable row and its update cannot interleave with another
//! claimer, in this process or another.

use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use stackdock_core::{DockId, Operation, OperationId, OrgId, ResourceId, Step, Timestamp};

use super::codec::{
    json, narrow, now, opt_json, opt_ts, parse, parse_json, parse_opt, parse_opt_json,
    parse_opt_ts, parse_ts, ts,
};
use super::docks;
use super::error::{reference_as, unique_as};
use super::reader::rows;
use crate::{Lease, OperationKey, Page, PageRequest, Result, StoreError};

const COLUMNS: &str = "id, org_id, kind, dock_id, resource_id, resource_kind, requested_by, state, attempt, \
     next_run_at, lease_owner, lease_expires_at, generation, input, last_error, cancel_requested, \
     unwind, waiting_since, created_at, updated_at";

/// Repeated verbatim in queries so the planner can use the partial index `operations_runnable`.
const RUNNABLE: &str = "state IN ('queued', 'running')";

/// Every operation that still needs work, waiting ones included.
const UNFINISHED: &str = "state IN ('queued', 'running', 'waiting')";

struct OperationRow {
    id: String,
    org_id: String,
    kind: String,
    dock_id: String,
    resource_id: Option<String>,
    resource_kind: Option<String>,
    requested_by: Option<String>,
    state: String,
    attempt: i64,
    next_run_at: String,
    lease_owner: Option<String>,
    lease_expires_at: Option<String>,
    generation: i64,
    input: String,
    last_error: Option<String>,
    cancel_requested: bool,
    unwind: Option<String>,
    waiting_since: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<OperationRow> for Operation {
    type Error = StoreError;
    fn try_from(r: OperationRow) -> Result<Self> {
        Ok(Operation {
            id: parse("operations.id", &r.id)?,
            org_id: parse("operations.org_id", &r.org_id)?,
            kind: parse("operations.kind", &r.kind)?,
            dock_id: parse("operations.dock_id", &r.dock_id)?,
            resource_id: parse_opt("operations.resource_id", r.resource_id.as_deref())?,
            resource_kind: parse_opt("operations.resource_kind", r.resource_kind.as_deref())?,
            requested_by: parse_opt("operations.requested_by", r.requested_by.as_deref())?,
            state: parse("operations.state", &r.state)?,
            attempt: narrow("operations.attempt", r.attempt)?,
            next_run_at: parse_ts("operations.next_run_at", &r.next_run_at)?,
            lease_owner: r.lease_owner,
            lease_expires_at: parse_opt_ts(
                "operations.lease_expires_at",
                r.lease_expires_at.as_deref(),
            )?,
            generation: r.generation,
            input: parse_json("operations.input", &r.input)?,
            last_error: r.last_error,
            cancel_requested: r.cancel_requested,
            unwind: parse_opt_json("operations.unwind", r.unwind.as_deref())?,
            waiting_since: parse_opt_ts("operations.waiting_since", r.waiting_since.as_deref())?,
            created_at: parse_ts("operations.created_at", &r.created_at)?,
            updated_at: parse_ts("operations.updated_at", &r.updated_at)?,
        })
    }
}

fn rows_to_ops(rows: Vec<OperationRow>) -> Result<Vec<Operation>> {
    rows.into_iter().map(Operation::try_from).collect()
}

impl OperationRow {
    /// A row in the order of [`COLUMNS`].
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            org_id: row.get(1)?,
            kind: row.get(2)?,
            dock_id: row.get(3)?,
            resource_id: row.get(4)?,
            resource_kind: row.get(5)?,
            requested_by: row.get(6)?,
            state: row.get(7)?,
            attempt: row.get(8)?,
            next_run_at: row.get(9)?,
            lease_owner: row.get(10)?,
            lease_expires_at: row.get(11)?,
            generation: row.get(12)?,
            input: row.get(13)?,
            last_error: row.get(14)?,
            cancel_requested: row.get(15)?,
            unwind: row.get(16)?,
            waiting_since: row.get(17)?,
            created_at: row.get(18)?,
            updated_at: row.get(19)?,
        })
    }
}

/// Runs a statement that returns operation rows (in the shape of [`COLUMNS`]), decoded.
fn returning(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Operation>> {
    rows_to_ops(rows(conn, sql, params, OperationRow::read)?)
}

pub(crate) fn insert(conn: &Connection, op: &Operation) -> Result<()> {
    docks::ensure_in_org(conn, op.org_id, op.dock_id)?;
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "INSERT INTO operations ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20)"
        )
    });
    conn.prepare_cached(sql)?
        .execute(params![
            op.id.to_string(),
            op.org_id.to_string(),
            op.kind.as_str(),
            op.dock_id.to_string(),
            op.resource_id.map(|r| r.to_string()),
            op.resource_kind.map(|k| k.as_str()),
            op.requested_by.map(|u| u.to_string()),
            op.state.as_str(),
            i64::from(op.attempt),
            ts(&op.next_run_at),
            op.lease_owner,
            opt_ts(op.lease_expires_at.as_ref()),
            op.generation,
            json(&op.input)?,
            op.last_error,
            op.cancel_requested,
            opt_json(op.unwind.as_ref())?,
            opt_ts(op.waiting_since.as_ref()),
            ts(&op.created_at),
            ts(&op.updated_at)
        ])
        .map_err(unique_as(|| format!("operation {}", op.id)))?;
    Ok(())
}

/// Replaces what a worker moves along: state, attempt, schedule, lease, last error, unwinding
/// and waiting. The input is left alone: it is what was asked, fixed when the operation was
/// recorded (only a key rotation re-seals what is sealed in it). `generation` is left alone: only a
/// claim moves it, so no write can revive a lease that a newer claim has superseded. Nor is
/// `cancel_requested`: only [`request_cancel`] sets it, and a worker that read the row before
/// the request must not clear it.
pub(crate) fn update(conn: &Connection, op: &Operation) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE operations SET state = ?1, attempt = ?2, next_run_at = ?3, lease_owner = ?4,
                    lease_expires_at = ?5, last_error = ?6, unwind = ?7,
                    waiting_since = ?8, updated_at = ?9
             WHERE id = ?10 AND org_id = ?11",
        )?
        .execute(params![
            op.state.as_str(),
            i64::from(op.attempt),
            ts(&op.next_run_at),
            op.lease_owner,
            opt_ts(op.lease_expires_at.as_ref()),
            op.last_error,
            opt_json(op.unwind.as_ref())?,
            opt_ts(op.waiting_since.as_ref()),
            ts(&now()),
            op.id.to_string(),
            op.org_id.to_string()
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("operation {}", op.id),
        });
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, org: OrgId, id: OperationId) -> Result<Operation> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL
        .get_or_init(|| format!("SELECT {COLUMNS} FROM operations WHERE org_id = ?1 AND id = ?2"));
    returning(conn, sql, params![org.to_string(), id.to_string()])?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound {
            what: format!("operation {id}"),
        })
}

/// A page of the org's operations (of `resource` only, if given), newest first by
/// `(created_at, id)`: those below `page.after`. Each form of the statement walks its own index
/// (`operations_org_created` or `operations_resource`) backwards from the key.
pub(crate) fn list(
    conn: &Connection,
    org: OrgId,
    resource: Option<ResourceId>,
    page: &PageRequest<OperationKey>,
) -> Result<Page<Operation, OperationKey>> {
    let mut binds: Vec<Value> = vec![Value::Text(org.to_string())];
    let mut conditions = vec!["org_id = ?1".to_string()];
    if let Some(r) = resource {
        binds.push(Value::Text(r.to_string()));
        conditions.push(format!("resource_id = ?{}", binds.len()));
    }
    if let Some(after) = &page.after {
        binds.push(Value::Text(ts(&after.created_at)));
        binds.push(Value::Text(after.id.to_string()));
        let n = binds.len();
        conditions.push(format!("(created_at, id) < (?{}, ?{n})", n - 1));
    }
    // One row more than the page, to know whether another follows.
    binds.push(Value::Integer(i64::from(page.limit) + 1));
    let sql = list_sql(resource.is_some(), &conditions, binds.len());
    let ops = returning(conn, &sql, params_from_iter(binds))?;
    Ok(Page::from_rows(ops, page.limit, |o| OperationKey {
        created_at: o.created_at,
        id: o.id,
    }))
}

/// `list`'s statement for its `conditions`, the limit bound last (`?{limit}`). One resource's
/// operations name their index: left to itself SQLite walks the whole org's (see
/// [`active_for_sql`]).
pub(crate) fn list_sql(of_resource: bool, conditions: &[String], limit: usize) -> String {
    let index = if of_resource {
        " INDEXED BY operations_resource"
    } else {
        ""
    };
    format!(
        "SELECT {COLUMNS} FROM operations{index} WHERE {}
         ORDER BY created_at DESC, id DESC LIMIT ?{limit}",
        conditions.join(" AND "),
    )
}

pub(crate) fn active_for(
    conn: &Connection,
    org: OrgId,
    resource: ResourceId,
) -> Result<Option<Operation>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(active_for_sql);
    Ok(
        returning(conn, sql, params![resource.to_string(), org.to_string()])?
            .into_iter()
            .next(),
    )
}

/// `active_for`'s statement. Without statistics SQLite takes `operations_org_created` for it
/// (it gives the order, and the planner cannot tell an org from a resource), which walks every
/// operation of the org: a deprovision request cost more with every operation ever run. The
/// index is named so the statement reads only the resource's own operations.
pub(crate) fn active_for_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM operations INDEXED BY operations_resource
         WHERE resource_id = ?1 AND org_id = ?2 AND {UNFINISHED}
         ORDER BY created_at, id
         LIMIT 1"
    )
}

pub(crate) fn expiry(from: Timestamp, lease: Duration) -> Result<Timestamp> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .ok_or_else(|| StoreError::Refused {
            message: format!("a lease of {lease:?} is too long"),
        })
}

/// Claims up to `limit` runnable operations, oldest due first. Must run inside a write
/// transaction: the select and the update are one step.
pub(crate) fn claim(
    conn: &Connection,
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
            "UPDATE operations
             SET state = 'running', lease_owner = ?1, lease_expires_at = ?2,
                 generation = generation + 1, attempt = attempt + 1, updated_at = ?3
             WHERE id IN (
                 SELECT id FROM operations
                 WHERE {RUNNABLE}
                   AND ((state = 'queued' AND next_run_at <= ?3)
                        OR (state = 'running' AND lease_expires_at < ?3))
                   AND dock_id NOT IN (SELECT value FROM json_each(?5))
                 ORDER BY next_run_at, created_at, id
                 LIMIT ?4)
             RETURNING {COLUMNS}"
        )
    });
    // A JSON array of the ids (uuids: nothing in them needs escaping) for `json_each`.
    let skip = format!(
        "[{}]",
        skip.iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut ops = returning(
        conn,
        sql,
        params![owner, ts(&expires), ts(&at), i64::from(limit), skip],
    )?;
    ops.sort_by_key(|o| (o.next_run_at, o.created_at));
    Ok(ops)
}

/// Takes up to `limit` waiting operations whose check is due (of `dock` only, if given), with
/// those due within `ahead` that no other observer holds, for one observer, until `hold` from
/// now: their next check moves there and their generation is bumped, so no other observer
/// takes them meanwhile and a slow one cannot write after a newer claim. Neither the state nor
/// the attempt changes: waiting is not a run. Of one dock, nothing while another observer
/// holds a round of its checks (see the trait); the one writer makes claims take turns.
pub(crate) fn claim_waiting(
    conn: &Connection,
    owner: &str,
    (hold, ahead): (Duration, Duration),
    limit: u32,
    dock: Option<DockId>,
) -> Result<Vec<Operation>> {
    let at = now();
    let until = ts(&expiry(at, hold)?);
    let by = ts(&expiry(at, ahead)?);
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "UPDATE operations
             SET lease_owner = ?1, lease_expires_at = ?2, next_run_at = ?2,
                 generation = generation + 1, updated_at = ?3
             WHERE id IN (
                 SELECT id FROM operations
                 WHERE state = 'waiting'
                   AND (next_run_at <= ?3
                        OR (next_run_at <= ?6 AND (lease_owner IS NULL OR lease_owner = ?1)))
                   AND (?5 IS NULL OR dock_id = ?5)
                   AND (?5 IS NULL OR NOT EXISTS (
                       SELECT 1 FROM operations AS held
                       WHERE held.state = 'waiting' AND held.dock_id = ?5
                         AND held.lease_owner <> ?1 AND held.next_run_at > ?3))
                 ORDER BY next_run_at
                 LIMIT ?4)
             RETURNING {COLUMNS}"
        )
    });
    returning(
        conn,
        sql,
        params![
            owner,
            until,
            ts(&at),
            i64::from(limit),
            dock.map(|d| d.to_string()),
            by
        ],
    )
}

/// Moves the next check of the waiting operations still held under `leases` to `hold` from
/// now; answers how many moved.
pub(crate) fn extend_waiting(conn: &Connection, leases: &[Lease], hold: Duration) -> Result<u64> {
    let at = now();
    let until = ts(&expiry(at, hold)?);
    let mut statement = conn.prepare_cached(
        "UPDATE operations SET lease_expires_at = ?1, next_run_at = ?1, updated_at = ?2
         WHERE id = ?3 AND state = 'waiting' AND lease_owner = ?4 AND generation = ?5",
    )?;
    let mut moved = 0;
    for lease in leases {
        moved += statement.execute(params![
            until,
            ts(&at),
            lease.operation_id.to_string(),
            lease.owner,
            lease.generation
        ])? as u64;
    }
    Ok(moved)
}

/// The docks (with their orgs) that have waiting operations due now.
pub(crate) fn due_waiting_docks(conn: &Connection, limit: u32) -> Result<Vec<(OrgId, DockId)>> {
    rows(
        conn,
        "SELECT DISTINCT org_id, dock_id FROM operations
         WHERE state = 'waiting' AND next_run_at <= ?1
         LIMIT ?2",
        params![ts(&now()), i64::from(limit)],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?
    .into_iter()
    .map(|(org, dock)| {
        Ok((
            parse("operations.org_id", &org)?,
            parse("operations.dock_id", &dock)?,
        ))
    })
    .collect()
}

/// The earliest check due among waiting operations, if any wait.
pub(crate) fn next_waiting(conn: &Connection) -> Result<Option<Timestamp>> {
    let at: Option<String> = conn
        .prepare_cached(
            "SELECT next_run_at FROM operations WHERE state = 'waiting'
             ORDER BY next_run_at LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    at.map(|t| parse_ts("operations.next_run_at", &t))
        .transpose()
}

/// Marks an unfinished operation cancelled. A waiting one is made runnable at once, so a
/// worker unwinds it now instead of at its next check.
pub(crate) fn request_cancel(conn: &Connection, org: OrgId, id: OperationId) -> Result<Operation> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "UPDATE operations
             SET cancel_requested = 1, updated_at = ?1,
                 state = CASE WHEN state = 'waiting' THEN 'queued' ELSE state END,
                 next_run_at = CASE WHEN state IN ('waiting', 'queued') THEN ?1 ELSE next_run_at END
             WHERE org_id = ?2 AND id = ?3 AND {UNFINISHED}
             RETURNING {COLUMNS}"
        )
    });
    let cancelled = returning(
        conn,
        sql,
        params![ts(&now()), org.to_string(), id.to_string()],
    )?;
    if let Some(op) = cancelled.into_iter().next() {
        return Ok(op);
    }
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM operations WHERE org_id = ?1 AND id = ?2")?
        .query_row(params![org.to_string(), id.to_string()], |r| r.get(0))
        .optional()?;
    match state {
        None => Err(StoreError::NotFound {
            what: format!("operation {id}"),
        }),
        Some(state) => Err(StoreError::Refused {
            message: format!("operation {id} has already finished ({state})"),
        }),
    }
}

/// Ends the leases of workers named `owner_prefix...`: running operations become claimable,
/// and waiting ones a dead observer held become due now. Compared with `substr`, not `LIKE`,
/// so no character of the prefix is a wildcard.
pub(crate) fn expire(conn: &Connection, owner_prefix: &str) -> Result<u64> {
    let at = ts(&now());
    let running = conn.execute(
        "UPDATE operations SET lease_expires_at = ?1, updated_at = ?1
         WHERE state = 'running' AND lease_owner IS NOT NULL
           AND substr(lease_owner, 1, length(?2)) = ?2",
        params![at, owner_prefix],
    )?;
    let waiting = conn.execute(
        "UPDATE operations SET next_run_at = ?1, lease_owner = NULL, lease_expires_at = NULL,
                updated_at = ?1
         WHERE state = 'waiting' AND lease_owner IS NOT NULL
           AND substr(lease_owner, 1, length(?2)) = ?2",
        params![at, owner_prefix],
    )?;
    Ok((running + waiting) as u64)
}

pub(crate) fn renew(conn: &Connection, lease: &Lease, duration: Duration) -> Result<()> {
    let at = now();
    let changed = conn
        .prepare_cached(
            "UPDATE operations SET lease_expires_at = ?1, updated_at = ?2
             WHERE id = ?3 AND lease_owner = ?4 AND generation = ?5 AND state = 'running'",
        )?
        .execute(params![
            ts(&expiry(at, duration)?),
            ts(&at),
            lease.operation_id.to_string(),
            lease.owner,
            lease.generation
        ])?;
    if changed == 0 {
        return Err(StoreError::Fenced(lease.operation_id));
    }
    Ok(())
}

/// The fence of a batch: the lease must still be the operation's current one. An expired
/// lease that nobody has claimed since still passes: no one else has written, so nothing can
/// be overwritten. Returns whether a cancel of the operation has been requested.
pub(crate) fn check_fence(conn: &Connection, lease: &Lease) -> Result<bool> {
    let current: Option<(Option<String>, i64, bool)> = conn
        .prepare_cached(
            "SELECT lease_owner, generation, cancel_requested FROM operations WHERE id = ?1",
        )?
        .query_row(params![lease.operation_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    match current {
        Some((Some(owner), generation, cancel_requested))
            if owner == lease.owner && generation == lease.generation =>
        {
            Ok(cancel_requested)
        }
        _ => Err(StoreError::Fenced(lease.operation_id)),
    }
}

struct StepRow {
    operation_id: String,
    step_index: i64,
    name: String,
    status: String,
    output: String,
    undo: String,
    at: String,
}

impl StepRow {
    /// A row whose first columns are `operation_id, step_index, name, status, output, undo, at`.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            operation_id: r.get(0)?,
            step_index: r.get(1)?,
            name: r.get(2)?,
            status: r.get(3)?,
            output: r.get(4)?,
            undo: r.get(5)?,
            at: r.get(6)?,
        })
    }
}

impl TryFrom<StepRow> for Step {
    type Error = StoreError;
    fn try_from(r: StepRow) -> Result<Self> {
        Ok(Step {
            operation_id: parse("operation_steps.operation_id", &r.operation_id)?,
            index: r.step_index,
            name: r.name,
            status: parse("operation_steps.status", &r.status)?,
            output: parse_json("operation_steps.output", &r.output)?,
            undo: parse_json("operation_steps.undo", &r.undo)?,
            at: parse_ts("operation_steps.at", &r.at)?,
        })
    }
}

/// Upsert by (operation, index): a step replayed after a crash overwrites its first record.
pub(crate) fn record_step(conn: &Connection, step: &Step) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO operation_steps (operation_id, step_index, name, status, output, undo, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (operation_id, step_index) DO UPDATE SET
             name = excluded.name, status = excluded.status, output = excluded.output,
             undo = excluded.undo, at = excluded.at",
    )?
    .execute(params![
        step.operation_id.to_string(),
        step.index,
        step.name,
        step.status.as_str(),
        json(&step.output)?,
        json(&step.undo)?,
        ts(&step.at)
    ])
    .map_err(reference_as(|| format!("operation {}", step.operation_id)))?;
    Ok(())
}

pub(crate) fn steps(conn: &Connection, org: OrgId, op: OperationId) -> Result<Vec<Step>> {
    rows(
        conn,
        "SELECT s.operation_id, s.step_index, s.name, s.status, s.output, s.undo, s.at
         FROM operation_steps s JOIN operations o ON o.id = s.operation_id
         WHERE s.operation_id = ?1 AND o.org_id = ?2 ORDER BY s.step_index",
        params![op.to_string(), org.to_string()],
        StepRow::read,
    )?
    .into_iter()
    .map(Step::try_from)
    .collect()
}

/// Operations whose input holds a sealed value.
pub(crate) fn with_sealed_input(conn: &Connection) -> Result<Vec<Operation>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!("SELECT {COLUMNS} FROM operations WHERE input LIKE '%\"$sealed\"%' ORDER BY id")
    });
    returning(conn, sql, [])
}

/// Steps whose output may hold a sealed value (`v1:` text), with their operation's resource.
pub(crate) fn with_sealed_output(conn: &Connection) -> Result<Vec<(Step, Option<ResourceId>)>> {
    rows(
        conn,
        "SELECT s.operation_id, s.step_index, s.name, s.status, s.output, s.undo, s.at, o.resource_id
         FROM operation_steps s JOIN operations o ON o.id = s.operation_id
         WHERE s.output LIKE '%\"v1:%' ORDER BY s.operation_id, s.step_index",
        [],
        |r| {
            Ok((StepRow::read(r)?, r.get::<_, Option<String>>(7)?))
        },
    )?
    .into_iter()
    .map(|(step, resource)| {
        Ok((
            Step::try_from(step)?,
            parse_opt("operations.resource_id", resource.as_deref())?,
        ))
    })
    .collect()
}

/// Applies one re-sealed value if the row still holds what was read.
pub(crate) fn reseal(conn: &Connection, r: &crate::Reseal) -> Result<()> {
    use crate::Reseal;
    let changed = match r {
        Reseal::DockKey {
            org_id,
            id,
            from,
            to,
        } => conn
            .prepare_cached(
                "UPDATE docks SET sealed_api_key = ?1, key_id = ?2
                 WHERE org_id = ?3 AND id = ?4 AND sealed_api_key = ?5",
            )?
            .execute(params![
                to.as_str(),
                to.key_id(),
                org_id.to_string(),
                id.to_string(),
                from.as_str()
            ])?,
        Reseal::OperationInput {
            org_id,
            id,
            from,
            to,
        } => conn
            .prepare_cached(
                "UPDATE operations SET input = ?1 WHERE org_id = ?2 AND id = ?3 AND input = ?4",
            )?
            .execute(params![
                json(to)?,
                org_id.to_string(),
                id.to_string(),
                json(from)?
            ])?,
        Reseal::StepOutput {
            operation_id,
            index,
            from,
            to,
        } => conn
            .prepare_cached(
                "UPDATE operation_steps SET output = ?1
                 WHERE operation_id = ?2 AND step_index = ?3 AND output = ?4",
            )?
            .execute(params![
                json(to)?,
                operation_id.to_string(),
                index,
                json(from)?
            ])?,
    };
    if changed == 0 {
        return Err(StoreError::Refused {
            message: "the sealed value changed meanwhile".into(),
        });
    }
    Ok(())
}
