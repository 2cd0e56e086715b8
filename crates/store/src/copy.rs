//! Copying an installation from SQLite to PostgreSQL, row for row: what `stackdock migrate`
//! runs.
//!
//! Every table is copied with its ids, timestamps and numbers as they are, the change feed's
//! and the deploy log's `seq` included, so an SSE client's `Last-Event-ID` means the same
//! event afterwards; PostgreSQL's counters and identities are then set past the highest
//! number SQLite ever handed out (not only the highest still in a table). The target must be
//! empty (freshly migrated), and the copy is one transaction there: it lands whole or not at
//! all. The source is read in one read transaction, so it is one moment's state even if a
//! node still writes to it (which it should not: stop the node first).
//!
//! The two halves know nothing of each other's SQL: the PostgreSQL side names the columns of
//! each table and their types (its schema is the target's), the SQLite side reads those
//! columns as plain values (text, integers, `NULL`), and PostgreSQL casts each value from its
//! text to the column's type, as it would parse a literal (`uuid`, `timestamptz` from the
//! RFC 3339 text, `jsonb` from the JSON text, `boolean` from 0/1).

use crate::{PostgresStore, Result, SqliteStore};

/// The tables copied, in an order that inserts what a row refers to before the row.
pub(crate) const TABLES: [&str; 17] = [
    "orgs",
    "users",
    "memberships",
    "api_tokens",
    "sessions",
    "docks",
    "servers",
    "web_services",
    "domains",
    "databases",
    "operations",
    "operation_steps",
    "idempotency_keys",
    "api_calls",
    "audit_log",
    "changes",
    "deploy_logs",
];

/// One table's rows, each a JSON object of column name to its SQLite value.
pub(crate) struct TableRows {
    pub(crate) table: &'static str,
    pub(crate) rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The highest number SQLite's AUTOINCREMENT ever gave out in this table, if it keeps one:
    /// a number never to be handed out again, even if its row is gone.
    pub(crate) high_water: Option<i64>,
}

/// What was copied: the rows of each table, and where the two sequences stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// `(table, rows copied)`, in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// The change feed's newest seq in the target, where SSE cursors go on from.
    pub latest_change: i64,
    /// The deploy log's newest seq in the target.
    pub latest_deploy_log: i64,
}

/// Copies every row of `from` into `to`, which must be empty. See the module doc.
pub async fn copy_all(from: &SqliteStore, to: &PostgresStore) -> Result<CopyReport> {
    let columns = to.copy_columns().await?;
    let dump = from.dump(columns).await?;
    to.load(dump).await
}
