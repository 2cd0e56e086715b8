//! The deploy log: lines appended as an operation's provider prints them, read back per
//! resource in order, from a position on.
//!
//! Its `seq` comes from `deploy_log_counter`, for the reason and in the way `feed` explains:
//! numbered in commit order, so a reader following `seq` never passes a line that commits
//! later. An append is its own transaction, the counter its last statement but the inserts.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use stackdock_core::{OrgId, ResourceId};

use super::codec::{get, id, micros, text};
use crate::{DeployLogLine, Result};

/// The channel on which appends announce their newest seq.
pub(crate) const CHANNEL: &str = "stackdock_deploy_logs";

/// Appends `lines` (their `seq` is ignored: numbered here, in order) and announces the newest
/// seq; returns it, or `None` when there was nothing to add.
pub(crate) async fn append(c: &mut PgConnection, lines: &[DeployLogLine]) -> Result<Option<i64>> {
    if lines.is_empty() {
        return Ok(None);
    }
    let n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    let last: i64 =
        sqlx::query_scalar("UPDATE deploy_log_counter SET seq = seq + $1 RETURNING seq")
            .bind(n)
            .fetch_one(&mut *c)
            .await?;
    for (seq, line) in (last - n + 1..).zip(lines) {
        sqlx::query(
            "INSERT INTO deploy_logs (seq, org_id, resource_id, operation_id, line, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(seq)
        .bind(line.org_id.as_uuid())
        .bind(line.resource_id.as_uuid())
        .bind(line.operation_id.as_uuid())
        .bind(text(&line.line))
        .bind(micros(&line.at))
        .execute(&mut *c)
        .await?;
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(last.to_string())
        .execute(&mut *c)
        .await?;
    Ok(Some(last))
}

fn line(r: &PgRow) -> Result<DeployLogLine> {
    Ok(DeployLogLine {
        seq: get(r, "seq")?,
        org_id: id(r, "org_id")?,
        resource_id: id(r, "resource_id")?,
        operation_id: id(r, "operation_id")?,
        line: get(r, "line")?,
        at: get(r, "at")?,
    })
}

const COLUMNS: &str = "seq, org_id, resource_id, operation_id, line, at";

/// Every org's lines after `after`, oldest first, at most `limit`.
pub(crate) async fn all_since(
    c: &mut PgConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<DeployLogLine>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM deploy_logs WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(line)
    .collect()
}

/// The org's lines after `after`, oldest first, at most `limit`; only `resource`'s when given.
pub(crate) async fn since(
    c: &mut PgConnection,
    org: OrgId,
    resource: Option<ResourceId>,
    after: i64,
    limit: u32,
) -> Result<Vec<DeployLogLine>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM deploy_logs
         WHERE org_id = $1 AND ($2::uuid IS NULL OR resource_id = $2) AND seq > $3
         ORDER BY seq LIMIT $4"
    ))
    .bind(org.as_uuid())
    .bind(resource.map(|r| r.as_uuid()))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(line)
    .collect()
}

/// The newest line's `seq` committed, 0 when there is none.
pub(crate) async fn latest(c: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT seq FROM deploy_log_counter")
        .fetch_one(&mut *c)
        .await?)
}
