//! The change feed: one row per resource write, appended in the write's transaction, and
//! numbered in commit order.
//!
//! **Why not a sequence.** Several nodes write at once. A sequence (or an identity column)
//! hands out numbers when a row is inserted, not when its transaction commits: writer A takes
//! seq 7, writer B takes seq 8 and commits first. A reader that polls then sees 8, moves its
//! cursor past it, and never reads 7 when A commits a moment later. The feed would lose a
//! change for good, and the SSE stream with it.
//!
//! **What instead.** Numbers come from the one row of `feed_counter`, taken by
//! `UPDATE feed_counter SET seq = seq + n RETURNING seq` as the last statements of the
//! transaction, after every other write (the batch's own writes only collect their
//! [`Pending`] entries, which [`publish`] numbers and inserts at the end). The update locks
//! the row until commit, so the next writer's update waits for this commit and then reads its
//! new value: a transaction can only get numbers above another's once that one has committed
//! (or rolled back, returning nothing, as the counter's update is undone with it). Seq order
//! is commit order, and a reader that sees seq N+1 has every seq up to N visible too. The cost
//! is that feed-writing transactions serialise on that row from their last statements to their
//! commit: a few hundred microseconds each, the rest of each transaction runs in parallel.
//!
//! The same transaction sends `pg_notify` with the newest seq; PostgreSQL delivers it at
//! commit, to every node listening (see `listen`).

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use stackdock_core::{OrgId, Resource, Timestamp};

use super::codec::{from_json, get, id, json, micros};
use crate::{Change, Result};

/// The channel on which feed-writing transactions announce their newest seq.
pub(crate) const CHANNEL: &str = "stackdock_changes";

/// A feed entry a transaction has written but not numbered yet.
pub(crate) struct Pending {
    pub(crate) resource: Resource,
    pub(crate) at: Timestamp,
}

/// Numbers and appends `pending`, in order, and announces the newest seq: the last
/// statements of the transaction. Returns that seq, or `None` when there was nothing to add.
pub(crate) async fn publish(c: &mut PgConnection, pending: &[Pending]) -> Result<Option<i64>> {
    if pending.is_empty() {
        return Ok(None);
    }
    let n = i64::try_from(pending.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar("UPDATE feed_counter SET seq = seq + $1 RETURNING seq")
        .bind(n)
        .fetch_one(&mut *c)
        .await?;
    for (seq, p) in (last - n + 1..).zip(pending) {
        sqlx::query(
            "INSERT INTO changes (seq, org_id, resource_id, kind, snapshot, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(seq)
        .bind(p.resource.org_id.as_uuid())
        .bind(p.resource.id.as_uuid())
        .bind(p.resource.kind().as_str())
        .bind(json(&p.resource)?)
        .bind(micros(&p.at))
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

fn change(r: &PgRow) -> Result<Change> {
    Ok(Change {
        seq: get(r, "seq")?,
        org_id: id(r, "org_id")?,
        resource: from_json("changes.snapshot", get(r, "snapshot")?)?,
        at: get(r, "at")?,
    })
}

/// Entries after `after`, oldest first: one org's, or every org's when `org` is `None`.
pub(crate) async fn since(
    c: &mut PgConnection,
    org: Option<OrgId>,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>> {
    sqlx::query(
        "SELECT seq, org_id, snapshot, at FROM changes
         WHERE ($1::uuid IS NULL OR org_id = $1) AND seq > $2
         ORDER BY seq
         LIMIT $3",
    )
    .bind(org.map(|o| o.as_uuid()))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(change)
    .collect()
}

/// The newest seq committed: the counter moves only in the transactions that append, so it
/// is the highest seq in the table (or past it, after a copy that kept a source's numbers).
pub(crate) async fn latest(c: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT seq FROM feed_counter")
        .fetch_one(&mut *c)
        .await?)
}
