//! The nodes alive on the database, for sharing each dock's rate limit among them. Times are
//! the database server's own, so nodes whose clocks disagree still agree on who is alive.

use std::time::Duration;

use sqlx::PgConnection;

use crate::Result;

/// Keeps `node` alive for `ttl`, forgets the nodes whose time ran out, and counts the rest.
pub(crate) async fn heartbeat(c: &mut PgConnection, node: &str, ttl: Duration) -> Result<u32> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM nodes WHERE expires_at <= clock_timestamp()")
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO nodes (name, expires_at)
         VALUES ($1, clock_timestamp() + make_interval(secs => $2::double precision / 1000))
         ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(node)
    .bind(ttl_ms)
    .execute(&mut *c)
    .await?;
    let alive: i64 = sqlx::query_scalar("SELECT count(*) FROM nodes")
        .fetch_one(&mut *c)
        .await?;
    Ok(u32::try_from(alive).unwrap_or(u32::MAX))
}

/// Forgets `node` at once.
pub(crate) async fn leave(c: &mut PgConnection, node: &str) -> Result<()> {
    sqlx::query("DELETE FROM nodes WHERE name = $1")
        .bind(node)
        .execute(&mut *c)
        .await?;
    Ok(())
}
