//! The journal of provider calls, read back oldest first per resource or per operation.

use rusqlite::{Connection, params};
use stackdock_core::{ApiCall, OperationId, OrgId, ResourceId};

use super::codec::{narrow, parse, parse_opt, parse_ts, ts};
use super::reader::rows;
use crate::{Page, PageRequest, Result, StoreError};

const COLUMNS: &str = "id, org_id, dock_id, resource_id, operation_id, method, path, status, duration_ms, request_id, attempt, error, at, worker";

struct ApiCallRow {
    id: i64,
    org_id: String,
    dock_id: String,
    resource_id: Option<String>,
    operation_id: Option<String>,
    method: String,
    path: String,
    status: Option<i64>,
    duration_ms: i64,
    request_id: Option<String>,
    attempt: i64,
    error: Option<String>,
    at: String,
    worker: Option<String>,
}

impl TryFrom<ApiCallRow> for ApiCall {
    type Error = StoreError;
    fn try_from(r: ApiCallRow) -> Result<Self> {
        Ok(ApiCall {
            id: r.id,
            org_id: parse("api_calls.org_id", &r.org_id)?,
            dock_id: parse("api_calls.dock_id", &r.dock_id)?,
            resource_id: parse_opt("api_calls.resource_id", r.resource_id.as_deref())?,
            operation_id: parse_opt("api_calls.operation_id", r.operation_id.as_deref())?,
            method: r.method,
            path: r.path,
            status: r
                .status
                .map(|s| narrow("api_calls.status", s))
                .transpose()?,
            duration_ms: narrow("api_calls.duration_ms", r.duration_ms)?,
            request_id: r.request_id,
            attempt: narrow("api_calls.attempt", r.attempt)?,
            error: r.error,
            at: parse_ts("api_calls.at", &r.at)?,
            worker: r.worker,
        })
    }
}

/// Appends `call`; its `id` is ignored and the database assigns the next one.
pub(crate) fn record(conn: &Connection, call: &ApiCall) -> Result<()> {
    // A duration past i64::MAX milliseconds is not a duration anyone measured; keep the row.
    let duration_ms = i64::try_from(call.duration_ms).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO api_calls (org_id, dock_id, resource_id, operation_id, method, path, status,
                                duration_ms, request_id, attempt, error, at, worker)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        call.org_id.to_string(),
        call.dock_id.to_string(),
        call.resource_id.map(|r| r.to_string()),
        call.operation_id.map(|o| o.to_string()),
        call.method,
        call.path,
        call.status.map(i64::from),
        duration_ms,
        call.request_id,
        i64::from(call.attempt),
        call.error,
        ts(&call.at),
        call.worker
    ])?;
    Ok(())
}

impl ApiCallRow {
    /// A row in the order of [`COLUMNS`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            org_id: r.get(1)?,
            dock_id: r.get(2)?,
            resource_id: r.get(3)?,
            operation_id: r.get(4)?,
            method: r.get(5)?,
            path: r.get(6)?,
            status: r.get(7)?,
            duration_ms: r.get(8)?,
            request_id: r.get(9)?,
            attempt: r.get(10)?,
            error: r.get(11)?,
            at: r.get(12)?,
            worker: r.get(13)?,
        })
    }
}

/// A page of the resource's calls, oldest first: those above the id `page.after`, along the
/// `(resource_id, id)` index.
pub(crate) fn for_resource(
    conn: &Connection,
    org: OrgId,
    resource: ResourceId,
    page: &PageRequest<i64>,
) -> Result<Page<ApiCall, i64>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_calls
         WHERE resource_id = ?1 AND org_id = ?2 AND id > ?3
         ORDER BY id LIMIT ?4"
    );
    // One row more than the page, to know whether another follows.
    let calls = rows(
        conn,
        &sql,
        params![
            resource.to_string(),
            org.to_string(),
            page.after.unwrap_or(0),
            i64::from(page.limit) + 1
        ],
        ApiCallRow::read,
    )?
    .into_iter()
    .map(ApiCall::try_from)
    .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(calls, page.limit, |c| c.id))
}

pub(crate) fn for_operation(
    conn: &Connection,
    org: OrgId,
    op: OperationId,
) -> Result<Vec<ApiCall>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_calls WHERE operation_id = ?1 AND org_id = ?2 ORDER BY id"
    );
    rows(
        conn,
        &sql,
        params![op.to_string(), org.to_string()],
        ApiCallRow::read,
    )?
    .into_iter()
    .map(ApiCall::try_from)
    .collect()
}
