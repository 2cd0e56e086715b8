//! The journal of provider calls, read back oldest first per resource or per operation.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use stackdock_core::{ApiCall, OperationId, OrgId, ResourceId};

use super::codec::{get, id, micros, narrow, opt_id, opt_text, text};
use crate::{Page, PageRequest, Result};

const COLUMNS: &str = "id, org_id, dock_id, resource_id, operation_id, method, path, status, duration_ms, request_id, attempt, error, at, worker";

fn call(r: &PgRow) -> Result<ApiCall> {
    Ok(ApiCall {
        id: get(r, "id")?,
        org_id: id(r, "org_id")?,
        dock_id: id(r, "dock_id")?,
        resource_id: opt_id(r, "resource_id")?,
        operation_id: opt_id(r, "operation_id")?,
        method: get(r, "method")?,
        path: get(r, "path")?,
        status: get::<Option<i64>>(r, "status")?
            .map(|s| narrow("api_calls.status", s))
            .transpose()?,
        duration_ms: narrow("api_calls.duration_ms", get(r, "duration_ms")?)?,
        request_id: get(r, "request_id")?,
        attempt: narrow("api_calls.attempt", get(r, "attempt")?)?,
        error: get(r, "error")?,
        at: get(r, "at")?,
        worker: get(r, "worker")?,
    })
}

/// Appends `call`; its `id` is ignored and the database assigns the next one.
pub(crate) async fn record(c: &mut PgConnection, call: &ApiCall) -> Result<()> {
    // A duration past i64::MAX milliseconds is not a duration anyone measured; keep the row.
    let duration_ms = i64::try_from(call.duration_ms).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO api_calls (org_id, dock_id, resource_id, operation_id, method, path, status,
                                duration_ms, request_id, attempt, error, at, worker)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(call.org_id.as_uuid())
    .bind(call.dock_id.as_uuid())
    .bind(call.resource_id.map(|r| r.as_uuid()))
    .bind(call.operation_id.map(|o| o.as_uuid()))
    .bind(text(&call.method))
    .bind(text(&call.path))
    .bind(call.status.map(i64::from))
    .bind(duration_ms)
    .bind(opt_text(call.request_id.as_deref()))
    .bind(i64::from(call.attempt))
    .bind(opt_text(call.error.as_deref()))
    .bind(micros(&call.at))
    .bind(&call.worker)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A page of the resource's calls, oldest first: those above the id `page.after`, along the
/// `(resource_id, id)` index.
pub(crate) async fn for_resource(
    c: &mut PgConnection,
    org: OrgId,
    resource: ResourceId,
    page: &PageRequest<i64>,
) -> Result<Page<ApiCall, i64>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_calls
         WHERE resource_id = $1 AND org_id = $2 AND id > $3
         ORDER BY id LIMIT $4"
    );
    // One row more than the page, to know whether another follows.
    let calls = sqlx::query(&sql)
        .bind(resource.as_uuid())
        .bind(org.as_uuid())
        .bind(page.after.unwrap_or(0))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(call)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(calls, page.limit, |c| c.id))
}

pub(crate) async fn for_operation(
    c: &mut PgConnection,
    org: OrgId,
    op: OperationId,
) -> Result<Vec<ApiCall>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_calls WHERE operation_id = $1 AND org_id = $2 ORDER BY id"
    );
    sqlx::query(&sql)
        .bind(op.as_uuid())
        .bind(org.as_uuid())
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(call)
        .collect()
}
