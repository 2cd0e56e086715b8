//! The audit log: appended in the transaction of the action it records, read newest first.
//! There is no way to change or remove a row.

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use stackdock_core::{AuditEntry, OrgId};

use super::codec::{json, parse, parse_json, parse_opt, parse_ts, ts};
use super::reader::rows;
use crate::{AuditFilter, Page, PageRequest, Result};

const COLUMNS: &str =
    "id, org_id, actor, token_id, request_id, action, outcome, resource, provider, details, at";

struct AuditRow {
    id: i64,
    org_id: String,
    actor: Option<String>,
    token_id: Option<String>,
    request_id: Option<String>,
    action: String,
    outcome: String,
    resource: Option<String>,
    provider: Option<String>,
    details: String,
    at: String,
}

impl AuditRow {
    /// A row in the order of [`COLUMNS`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            org_id: r.get(1)?,
            actor: r.get(2)?,
            token_id: r.get(3)?,
            request_id: r.get(4)?,
            action: r.get(5)?,
            outcome: r.get(6)?,
            resource: r.get(7)?,
            provider: r.get(8)?,
            details: r.get(9)?,
            at: r.get(10)?,
        })
    }
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = crate::StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditEntry {
            id: r.id,
            org_id: parse("audit_log.org_id", &r.org_id)?,
            actor: parse_opt("audit_log.actor", r.actor.as_deref())?,
            token_id: parse_opt("audit_log.token_id", r.token_id.as_deref())?,
            request_id: parse_opt("audit_log.request_id", r.request_id.as_deref())?,
            action: r.action,
            outcome: parse("audit_log.outcome", &r.outcome)?,
            resource: r.resource,
            provider: r.provider,
            details: parse_json("audit_log.details", &r.details)?,
            at: parse_ts("audit_log.at", &r.at)?,
        })
    }
}

/// Appends `entry`; its `id` is ignored and the database assigns the next one.
pub(crate) fn append(conn: &Connection, entry: &AuditEntry) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO audit_log (org_id, actor, token_id, request_id, action, outcome, resource,
                                provider, details, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        entry.org_id.to_string(),
        entry.actor.map(|a| a.to_string()),
        entry.token_id.map(|t| t.to_string()),
        entry.request_id.map(|r| r.to_string()),
        entry.action,
        entry.outcome.as_str(),
        entry.resource,
        entry.provider,
        json(&entry.details)?,
        ts(&entry.at)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A page of the org's rows that pass `filter`, newest first: those below the id `page.after`.
/// The `(org_id, id)` and `(org_id, outcome, id)` indexes walk them in order.
pub(crate) fn list(
    conn: &Connection,
    org: OrgId,
    filter: &AuditFilter,
    page: &PageRequest<i64>,
) -> Result<Page<AuditEntry, i64>> {
    let mut binds = vec![Value::Text(org.to_string())];
    let mut conditions = vec!["org_id = ?1".to_string()];
    let mut add = |condition: &str, value: Value| {
        binds.push(value);
        conditions.push(condition.replace('?', &format!("?{}", binds.len())));
    };
    if let Some(before) = page.after {
        add("id < ?", Value::Integer(before));
    }
    if let Some(action) = &filter.action {
        add("action = ?", Value::Text(action.clone()));
    }
    if let Some(outcome) = filter.outcome {
        add("outcome = ?", Value::Text(outcome.as_str().into()));
    }
    if let Some(actor) = filter.actor {
        add("actor = ?", Value::Text(actor.to_string()));
    }
    if let Some(resource) = &filter.resource {
        add("resource = ?", Value::Text(resource.clone()));
    }
    // One row more than the page, to know whether another follows.
    binds.push(Value::Integer(i64::from(page.limit) + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY id DESC LIMIT ?{}",
        conditions.join(" AND "),
        binds.len()
    );
    let entries = rows(conn, &sql, params_from_iter(binds), AuditRow::read)?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(entries, page.limit, |e| e.id))
}
