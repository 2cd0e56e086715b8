//! The audit log: appended in the transaction of the action it records, read newest first.
//! There is no way to change or remove a row.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use stackdock_core::{AuditEntry, OrgId};

use super::codec::{get, id, json, json_col, micros, opt_id, parsed};
use crate::{AuditFilter, Page, PageRequest, Result};

const COLUMNS: &str =
    "id, org_id, actor, token_id, request_id, action, outcome, resource, provider, details, at";

fn entry(r: &PgRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: get(r, "id")?,
        org_id: id(r, "org_id")?,
        actor: opt_id(r, "actor")?,
        token_id: opt_id(r, "token_id")?,
        request_id: opt_id(r, "request_id")?,
        action: get(r, "action")?,
        outcome: parsed(r, "outcome")?,
        resource: get(r, "resource")?,
        provider: get(r, "provider")?,
        details: json_col(r, "details")?,
        at: get(r, "at")?,
    })
}

/// Appends `entry`; its `id` is ignored and the database assigns the next one.
pub(crate) async fn append(c: &mut PgConnection, entry: &AuditEntry) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (org_id, actor, token_id, request_id, action, outcome, resource,
                                provider, details, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id",
    )
    .bind(entry.org_id.as_uuid())
    .bind(entry.actor.map(|a| a.as_uuid()))
    .bind(entry.token_id.map(|t| t.as_uuid()))
    .bind(entry.request_id.map(|r| r.as_uuid()))
    .bind(&entry.action)
    .bind(entry.outcome.as_str())
    .bind(&entry.resource)
    .bind(&entry.provider)
    .bind(json(&entry.details)?)
    .bind(micros(&entry.at))
    .fetch_one(&mut *c)
    .await?;
    Ok(id)
}

/// A page of the org's rows that pass `filter`, newest first: those below the id `page.after`.
/// The `(org_id, id)` and `(org_id, outcome, id)` indexes walk them in order.
pub(crate) async fn list(
    c: &mut PgConnection,
    org: OrgId,
    filter: &AuditFilter,
    page: &PageRequest<i64>,
) -> Result<Page<AuditEntry, i64>> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log WHERE org_id = "));
    q.push_bind(org.as_uuid());
    if let Some(before) = page.after {
        q.push(" AND id < ").push_bind(before);
    }
    if let Some(action) = &filter.action {
        q.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(outcome) = filter.outcome {
        q.push(" AND outcome = ").push_bind(outcome.as_str());
    }
    if let Some(actor) = filter.actor {
        q.push(" AND actor = ").push_bind(actor.as_uuid());
    }
    if let Some(resource) = &filter.resource {
        q.push(" AND resource = ").push_bind(resource.clone());
    }
    // One row more than the page, to know whether another follows.
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(page.limit) + 1);
    let entries = q
        .build()
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(entry)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(entries, page.limit, |e| e.id))
}
