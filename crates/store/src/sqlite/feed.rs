//! The change feed: one row per resource write, appended in the write's transaction.
//!
//! A snapshot is the resource as serialized by `core` (the same JSON the API shows), so a
//! subscriber needs no second read and sees exactly the state that was committed with it.

use rusqlite::{Connection, params};
use stackdock_core::{OrgId, Resource, Timestamp};

use super::codec::{json, parse, parse_json, parse_ts, ts};
use super::reader::rows;
use crate::{Change, Result, StoreError};

/// Appends `resource` as written and returns its `seq`.
pub(crate) fn append(conn: &Connection, resource: &Resource, at: &Timestamp) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO changes (org_id, resource_id, kind, snapshot, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        resource.org_id.to_string(),
        resource.id.to_string(),
        resource.kind().as_str(),
        json(resource)?,
        ts(at)
    ])?;
    Ok(conn.last_insert_rowid())
}

struct ChangeRow {
    seq: i64,
    org_id: String,
    snapshot: String,
    at: String,
}

impl TryFrom<ChangeRow> for Change {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> Result<Self> {
        Ok(Change {
            seq: r.seq,
            org_id: parse("changes.org_id", &r.org_id)?,
            resource: parse_json("changes.snapshot", &r.snapshot)?,
            at: parse_ts("changes.at", &r.at)?,
        })
    }
}

/// Entries after `after`, oldest first: one org's, or every org's when `org` is `None`.
pub(crate) fn since(
    conn: &Connection,
    org: Option<OrgId>,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>> {
    let read = |r: &rusqlite::Row<'_>| {
        Ok(ChangeRow {
            seq: r.get(0)?,
            org_id: r.get(1)?,
            snapshot: r.get(2)?,
            at: r.get(3)?,
        })
    };
    match org {
        Some(org) => rows(
            conn,
            "SELECT seq, org_id, snapshot, at FROM changes
             WHERE org_id = ?1 AND seq > ?2
             ORDER BY seq
             LIMIT ?3",
            params![org.to_string(), after, i64::from(limit)],
            read,
        )?,
        None => rows(
            conn,
            "SELECT seq, org_id, snapshot, at FROM changes
             WHERE seq > ?1
             ORDER BY seq
             LIMIT ?2",
            params![after, i64::from(limit)],
            read,
        )?,
    }
    .into_iter()
    .map(Change::try_from)
    .collect()
}

pub(crate) fn latest(conn: &Connection) -> Result<i64> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM changes")?
        .query_row([], |r| r.get(0))?;
    Ok(seq.unwrap_or(0))
}
