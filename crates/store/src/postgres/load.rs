//! Loading what a copy read from SQLite (see `crate::copy`): the target's side.

use sqlx::PgConnection;

use super::{deploy_log, feed};
use crate::copy::{CopyReport, TABLES, TableRows};
use crate::{Result, StoreError};

/// Rows sent per statement: one `jsonb` array parameter each, cast column by column.
const CHUNK: usize = 500;

/// `(table, [(column, type)])` for every copied table, in the target's column order.
pub(crate) type Columns = Vec<(&'static str, Vec<(String, String)>)>;

pub(crate) async fn columns(c: &mut PgConnection) -> Result<Columns> {
    let mut out = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let cols: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *c)
        .await?;
        if cols.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "the target has no table {table}"
            )));
        }
        out.push((table, cols));
    }
    Ok(out)
}

/// Refuses a target that holds anything: a copy goes into a new installation only.
async fn ensure_empty(c: &mut PgConnection) -> Result<()> {
    for table in TABLES {
        let any: Option<i32> = sqlx::query_scalar(&format!("SELECT 1 FROM {table} LIMIT 1"))
            .fetch_optional(&mut *c)
            .await?;
        if any.is_some() {
            return Err(StoreError::Refused {
                message: format!(
                    "the target database already holds data (table {table} has rows); copy into an empty one"
                ),
            });
        }
    }
    Ok(())
}

/// Inserts every row in one transaction (the caller's), then moves the counters and the
/// identities past what SQLite handed out.
pub(crate) async fn load(
    c: &mut PgConnection,
    columns: &Columns,
    dump: &[TableRows],
) -> Result<CopyReport> {
    // Other writers wait until the copy is in, and the check below stays true until then.
    sqlx::query("LOCK TABLE feed_counter, deploy_log_counter, orgs IN EXCLUSIVE MODE")
        .execute(&mut *c)
        .await?;
    ensure_empty(c).await?;
    let mut report = CopyReport::default();
    for (rows, (table, cols)) in dump.iter().zip(columns) {
        debug_assert_eq!(rows.table, *table);
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let casts: Vec<String> = cols
            .iter()
            .map(|(n, ty)| format!("(r->>'{n}')::{ty}"))
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT {} FROM jsonb_array_elements($1) AS r",
            names.join(", "),
            casts.join(", ")
        );
        let copied = rows.rows.len() as u64;
        let high_water = rows.high_water;
        let json_cols: Vec<&str> = cols
            .iter()
            .filter(|(_, ty)| ty == "jsonb")
            .map(|(n, _)| n.as_str())
            .collect();
        for chunk in rows.rows.chunks(CHUNK) {
            let chunk: Vec<serde_json::Value> = chunk
                .iter()
                .cloned()
                .map(|mut row| {
                    for name in &json_cols {
                        json_without_nul(row.get_mut(*name));
                    }
                    serde_json::Value::Object(row)
                })
                .collect();
            // SQLite keeps NULs that PostgreSQL refuses: they come over as U+FFFD, as
            // this store writes them.
            let mut chunk = serde_json::Value::Array(chunk);
            super::codec::without_nul(&mut chunk);
            sqlx::query(&sql).bind(chunk).execute(&mut *c).await?;
        }
        report.tables.push((table.to_string(), copied));
        match *table {
            "changes" => report.latest_change = past(c, table, "seq", high_water).await?,
            "deploy_logs" => report.latest_deploy_log = past(c, table, "seq", high_water).await?,
            "api_calls" | "audit_log" => {
                let top = past(c, table, "id", high_water).await?;
                if top > 0 {
                    sqlx::query(&format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1)"
                    ))
                    .bind(top)
                    .execute(&mut *c)
                    .await?;
                }
            }
            _ => {}
        }
    }
    sqlx::query("UPDATE feed_counter SET seq = $1")
        .bind(report.latest_change)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE deploy_log_counter SET seq = $1")
        .bind(report.latest_deploy_log)
        .execute(&mut *c)
        .await?;
    // Every listening node hears where the feed and the log now stand.
    for (channel, seq) in [
        (feed::CHANNEL, report.latest_change),
        (deploy_log::CHANNEL, report.latest_deploy_log),
    ] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(seq.to_string())
            .execute(&mut *c)
            .await?;
    }
    Ok(report)
}

/// The highest number the table's `column` holds or SQLite ever gave out for it, 0 if none.
async fn past(
    c: &mut PgConnection,
    table: &str,
    column: &str,
    high_water: Option<i64>,
) -> Result<i64> {
    let max: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX({column}) FROM {table}"))
        .fetch_one(&mut *c)
        .await?;
    Ok(max.unwrap_or(0).max(high_water.unwrap_or(0)))
}

/// A JSON column's text with every NUL in it (written `\u0000`) made U+FFFD: the text is
/// parsed, cleaned and written again. Text that does not parse is left for the server to
/// refuse, naming it.
fn json_without_nul(value: Option<&mut serde_json::Value>) {
    let Some(serde_json::Value::String(text)) = value else {
        return;
    };
    if !text.contains("\\u0000") {
        return;
    }
    if let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(text) {
        super::codec::without_nul(&mut parsed);
        *text = parsed.to_string();
    }
}
