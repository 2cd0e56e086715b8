//! The audit log: appended in the transaction of the action it records, read newest first.

use rusqlite::{Connection, params};
use stackdock_core::{AuditEntry, OrgId};

use super::codec::{json, parse, parse_json, parse_opt, parse_ts, ts};
use super::reader::rows;
use crate::Result;

struct AuditRow {
    id: i64,
    org_id: String,
    actor: Option<String>,
    action: String,
    outcome: String,
    resource: Option<String>,
    provider: Option<String>,
    details: String,
    at: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = crate::StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditEntry {
            id: r.id,
            org_id: parse("audit_log.org_id", &r.org_id)?,
            actor: parse_opt("audit_log.actor", r.actor.as_deref())?,
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
        "INSERT INTO audit_log (org_id, actor, action, outcome, resource, provider, details, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.org_id.to_string(),
        entry.actor.map(|a| a.to_string()),
        entry.action,
        entry.outcome.as_str(),
        entry.resource,
        entry.provider,
        json(&entry.details)?,
        ts(&entry.at)
    ])?;
    Ok(conn.last_insert_rowid())
}

impl AuditRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            org_id: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            outcome: r.get(4)?,
            resource: r.get(5)?,
            provider: r.get(6)?,
            details: r.get(7)?,
            at: r.get(8)?,
        })
    }
}

pub(crate) fn list(
    conn: &Connection,
    org: OrgId,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<AuditEntry>> {
    rows(
        conn,
        "SELECT id, org_id, actor, action, outcome, resource, provider, details, at
         FROM audit_log
         WHERE org_id = ?1 AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC
         LIMIT ?3",
        params![org.to_string(), before, i64::from(limit)],
        AuditRow::read,
    )?
    .into_iter()
    .map(AuditEntry::try_from)
    .collect()
}
