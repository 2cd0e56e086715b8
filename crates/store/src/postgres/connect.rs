//! Connecting: the pool, the migrations (sqlx's migrator, recording them in
//! `_sqlx_migrations`), and the connection the listener keeps.
//!
//! Several nodes may start at once on a new database. sqlx's PostgreSQL migrator takes a
//! session-level advisory lock (`pg_advisory_lock`) before it even creates its table, so one
//! node migrates while the others wait and then find every migration applied. The migrations
//! run on a connection of their own that is closed after, which also lets go of that lock if a
//! migration failed half way.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::{Result, StoreError};

/// Connections a store keeps by default: enough for a node's API requests and its workers'
/// batches at once, few enough that several nodes fit in PostgreSQL's default 100.
pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before failing: a store that cannot get one
/// this long is overloaded or cut off, and the caller should hear so.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a session may sit inside a transaction without sending anything before the
/// server ends it.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(15);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The options a `postgres://` URL gives. A URL that does not parse is refused without being
/// repeated, as it may hold a password: sqlx's parse errors name the part that failed (a
/// port that is not a number, an unknown `sslmode`), never the URL.
pub(crate) fn options(url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Database(Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the PostgreSQL database URL does not parse: {e}"),
        )))
    })
}

/// Opens the pool and brings the schema up to date.
pub(crate) async fn pool(options: &PgConnectOptions, max_connections: u32) -> Result<PgPool> {
    migrate(options).await?;
    // A node cut off in the middle of a transaction would keep its row locks until the
    // server noticed the connection was dead (TCP's keepalive: hours), and claims would skip
    // those rows all that time. The store's transactions are a few statements long: one
    // idle this long is abandoned, and the server ends it and frees its locks.
    let options = options.clone().options([(
        "idle_in_transaction_session_timeout",
        IDLE_IN_TRANSACTION.as_millis().to_string(),
    )]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?)
}

async fn migrate(options: &PgConnectOptions) -> Result<()> {
    let mut conn = PgConnection::connect_with(options).await?;
    let migrated = MIGRATOR.run_direct(&mut conn).await;
    // Closing the session ends the advisory lock, whatever happened.
    let _ = conn.close().await;
    migrated.map_err(StoreError::from)
}

/// A pool of one connection for the listener: its `LISTEN`s belong to its session, so it is
/// kept apart from the pool statements run on, and kept open (no idle or lifetime limit).
pub(crate) async fn listener_pool(options: &PgConnectOptions) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone().application_name("stackdock-listener"))
        .await?)
}
