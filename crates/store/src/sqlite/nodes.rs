//! The nodes alive on the database, for sharing each dock's rate limit among them.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::codec::{now, ts};
use crate::{Result, StoreError};

/// Keeps `node` alive for `ttl`, forgets the nodes whose time ran out, and counts the rest.
pub(crate) fn heartbeat(conn: &Connection, node: &str, ttl: Duration) -> Result<u32> {
    let at = now();
    let ttl = chrono::Duration::from_std(ttl).map_err(|_| StoreError::Refused {
        message: format!("a heartbeat of {ttl:?} is too long"),
    })?;
    conn.prepare_cached("DELETE FROM nodes WHERE expires_at <= ?1")?
        .execute(params![ts(&at)])?;
    conn.prepare_cached(
        "INSERT INTO nodes (name, expires_at) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at",
    )?
    .execute(params![node, ts(&(at + ttl))])?;
    let alive: i64 = conn
        .prepare_cached("SELECT count(*) FROM nodes")?
        .query_row([], |r| r.get(0))?;
    Ok(u32::try_from(alive).unwrap_or(u32::MAX))
}

/// Forgets `node` at once.
pub(crate) fn leave(conn: &Connection, node: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM nodes WHERE name = ?1")?
        .execute(params![node])?;
    Ok(())
}
