//! Reading every row of the tables a copy asks for (see `crate::copy`), as plain values.

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use crate::copy::TableRows;
use crate::{Result, StoreError};

/// The rows of each `(table, columns)`, in insertion order, read in one read transaction so
/// the tables are of one moment.
pub(crate) fn dump(
    conn: &Connection,
    tables: &[(&'static str, Vec<String>)],
) -> Result<Vec<TableRows>> {
    conn.execute_batch("BEGIN")?;
    let dumped = read_all(conn, tables);
    // A read transaction has nothing to keep; ending it either way frees the snapshot.
    conn.execute_batch("COMMIT")?;
    dumped
}

fn read_all(conn: &Connection, tables: &[(&'static str, Vec<String>)]) -> Result<Vec<TableRows>> {
    let mut out = Vec::with_capacity(tables.len());
    for (table, columns) in tables {
        let sql = format!("SELECT {} FROM {table} ORDER BY rowid", columns.join(", "));
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut read = Vec::new();
        while let Some(row) = rows.next()? {
            let mut object = Map::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                let value = match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::from(n),
                    ValueRef::Real(f) => Value::from(f),
                    ValueRef::Text(t) => Value::String(
                        std::str::from_utf8(t)
                            .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))?
                            .to_string(),
                    ),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt(format!(
                            "{table}.{column} holds a blob, which no column of the schema does"
                        )));
                    }
                };
                object.insert(column.clone(), value);
            }
            read.push(object);
        }
        let high_water: Option<i64> = {
            let mut stmt = conn.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?1")?;
            let mut found = stmt.query([table])?;
            match found.next()? {
                Some(r) => Some(r.get(0)?),
                None => None,
            }
        };
        out.push(TableRows {
            table,
            rows: read,
            high_water,
        });
    }
    Ok(out)
}
