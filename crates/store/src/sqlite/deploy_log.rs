//! The deploy log: lines appended as an operation's provider prints them, read back per
//! resource in order, from a position on.

use rusqlite::{Connection, params};
use stackdock_core::{OrgId, ResourceId};

use super::codec::{parse, parse_ts, ts};
use super::reader::rows;
use crate::{DeployLogLine, Result, StoreError};

/// Appends `line`; its `seq` is ignored and the database assigns the next one, answered.
pub(crate) fn append(conn: &Connection, line: &DeployLogLine) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO deploy_logs (org_id, resource_id, operation_id, line, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        line.org_id.to_string(),
        line.resource_id.to_string(),
        line.operation_id.to_string(),
        line.line,
        ts(&line.at)
    ])?;
    Ok(conn.last_insert_rowid())
}

struct Row {
    seq: i64,
    org_id: String,
    resource_id: String,
    operation_id: String,
    line: String,
    at: String,
}

impl TryFrom<Row> for DeployLogLine {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(DeployLogLine {
            seq: r.seq,
            org_id: parse("deploy_logs.org_id", &r.org_id)?,
            resource_id: parse("deploy_logs.resource_id", &r.resource_id)?,
            operation_id: parse("deploy_logs.operation_id", &r.operation_id)?,
            line: r.line,
            at: parse_ts("deploy_logs.at", &r.at)?,
        })
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        org_id: r.get(1)?,
        resource_id: r.get(2)?,
        operation_id: r.get(3)?,
        line: r.get(4)?,
        at: r.get(5)?,
    })
}

/// Every org's lines after `after`, oldest first, at most `limit`.
pub(crate) fn all_since(conn: &Connection, after: i64, limit: u32) -> Result<Vec<DeployLogLine>> {
    rows(
        conn,
        "SELECT seq, org_id, resource_id, operation_id, line, at FROM deploy_logs
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        params![after, limit],
        read_row,
    )?
    .into_iter()
    .map(DeployLogLine::try_from)
    .collect()
}

/// The org's lines after `after`, oldest first, at most `limit`; only `resource`'s when given.
pub(crate) fn since(
    conn: &Connection,
    org: OrgId,
    resource: Option<ResourceId>,
    after: i64,
    limit: u32,
) -> Result<Vec<DeployLogLine>> {
    let read = read_row;
    let found = match resource {
        Some(resource) => rows(
            conn,
            "SELECT seq, org_id, resource_id, operation_id, line, at FROM deploy_logs
             WHERE resource_id = ?1 AND org_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
            params![resource.to_string(), org.to_string(), after, limit],
            read,
        )?,
        None => rows(
            conn,
            "SELECT seq, org_id, resource_id, operation_id, line, at FROM deploy_logs
             WHERE org_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            params![org.to_string(), after, limit],
            read,
        )?,
    };
    found.into_iter().map(DeployLogLine::try_from).collect()
}

/// The newest line's `seq` of the whole store, 0 when there is none.
pub(crate) fn latest(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM deploy_logs", [], |r| {
            r.get(0)
        })?,
    )
}
