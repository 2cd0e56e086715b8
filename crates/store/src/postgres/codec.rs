//! Values to and from PostgreSQL's column types, and the way back to domain types.
//!
//! As in the SQLite store, everything read is checked here: a value that does not decode
//! becomes [`StoreError::Corrupt`] naming the column, never a panic.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{SubsecRound, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use stackdock_core::Timestamp;

use crate::{Result, StoreError};

/// Now, at the precision `timestamptz` keeps (microseconds).
pub(crate) fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// An instant as it reads back: `timestamptz` keeps microseconds, and truncating here (rather
/// than letting the server round) keeps the same instant the SQLite store's text keeps.
pub(crate) fn micros(t: &Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

pub(crate) fn opt_micros(t: Option<&Timestamp>) -> Option<Timestamp> {
    t.map(micros)
}

/// Column `name` of `row`, decoded as `T`.
pub(crate) fn get<'r, T>(row: &'r PgRow, name: &str) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

/// A uuid column as the id type the domain gives it.
pub(crate) fn id<T: From<uuid::Uuid>>(row: &PgRow, name: &str) -> Result<T> {
    get::<uuid::Uuid>(row, name).map(T::from)
}

pub(crate) fn opt_id<T: From<uuid::Uuid>>(row: &PgRow, name: &str) -> Result<Option<T>> {
    Ok(get::<Option<uuid::Uuid>>(row, name)?.map(T::from))
}

/// A text column the domain parses with `FromStr` (enums, names).
pub(crate) fn parsed<T>(row: &PgRow, name: &str) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = get(row, name)?;
    parse(name, &text)
}

pub(crate) fn opt_parsed<T>(row: &PgRow, name: &str) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: Display,
{
    get::<Option<String>>(row, name)?
        .map(|s| parse(name, &s))
        .transpose()
}

pub(crate) fn parse<T>(column: &str, s: &str) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    s.parse().map_err(|e| corrupt(column, s, e))
}

/// A `jsonb` column decoded into `T`.
pub(crate) fn json_col<T: DeserializeOwned>(row: &PgRow, name: &str) -> Result<T> {
    let value: serde_json::Value = get(row, name)?;
    from_json(name, value)
}

pub(crate) fn opt_json_col<T: DeserializeOwned>(row: &PgRow, name: &str) -> Result<Option<T>> {
    get::<Option<serde_json::Value>>(row, name)?
        .map(|v| from_json(name, v))
        .transpose()
}

pub(crate) fn from_json<T: DeserializeOwned>(column: &str, value: serde_json::Value) -> Result<T> {
    let shown = value.to_string();
    serde_json::from_value(value).map_err(|e| corrupt(column, &shown, e))
}

/// `value` as a `jsonb` parameter, with every NUL in its strings and keys made U+FFFD
/// (see [`text`]).
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<serde_json::Value> {
    // Only non-string map keys can fail here, which the domain types never produce; a
    // failure is still reported, not unwrapped.
    let mut value = serde_json::to_value(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))?;
    without_nul(&mut value);
    Ok(value)
}

/// The character PostgreSQL keeps in no `text` and no `jsonb` (SQLite keeps it).
const NUL: char = '\0';

/// `s` as a `text` parameter. PostgreSQL refuses a NUL in text and in JSON strings, so a
/// provider's answer or a build's output that carries one would fail every write of the
/// row, and the operation could never settle: a NUL is kept as U+FFFD instead.
pub(crate) fn text(s: &str) -> String {
    s.replace(NUL, "\u{FFFD}")
}

pub(crate) fn opt_text(s: Option<&str>) -> Option<String> {
    s.map(text)
}

/// `value` with every NUL in its strings and keys made U+FFFD (see [`text`]).
pub(crate) fn without_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains(NUL) => *s = text(s),
        Value::Array(items) => items.iter_mut().for_each(without_nul),
        Value::Object(map) if map.keys().any(|k| k.contains(NUL)) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                without_nul(&mut v);
                map.insert(text(&k), v);
            }
        }
        Value::Object(map) => map.values_mut().for_each(without_nul),
        _ => {}
    }
}

pub(crate) fn opt_json<T: Serialize>(value: Option<&T>) -> Result<Option<serde_json::Value>> {
    value.map(json).transpose()
}

/// Integers stored as `bigint` that the domain holds narrower.
pub(crate) fn narrow<T: TryFrom<i64>>(column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column}: {v} is out of range")))
}

fn corrupt(column: &str, value: &str, e: impl Display) -> StoreError {
    // Cut long values (JSON documents) so the message stays readable in a log line.
    let shown: String = value.chars().take(80).collect();
    StoreError::Corrupt(format!("{column}: {e} (value {shown:?})"))
}
