//! The text forms the tables hold, and the way back to domain types.
//!
//! Everything read from the database is parsed here and a value that does not parse becomes
//! [`StoreError::Corrupt`] naming the column: a row edited by hand or written by a newer
//! version must not bring a worker down.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stackdock_core::Timestamp;

use crate::{Result, StoreError};

/// Microseconds: the finest precision PostgreSQL keeps, so both backends hold the same
/// instant and a value reads back equal to what was written.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Now, at the precision the tables keep.
pub(crate) fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Fixed width, so that comparing the text orders the instants (`next_run_at <= $now`).
pub(crate) fn ts(t: &Timestamp) -> String {
    t.format(TS_FORMAT).to_string()
}

pub(crate) fn opt_ts(t: Option<&Timestamp>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(column: &str, s: &str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(column, s, e))
}

pub(crate) fn parse_opt_ts(column: &str, s: Option<&str>) -> Result<Option<Timestamp>> {
    s.map(|s| parse_ts(column, s)).transpose()
}

/// Ids, enums and names: everything the domain parses from text with `FromStr`.
pub(crate) fn parse<T>(column: &str, s: &str) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    s.parse().map_err(|e| corrupt(column, s, e))
}

pub(crate) fn parse_opt<T>(column: &str, s: Option<&str>) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: Display,
{
    s.map(|s| parse(column, s)).transpose()
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    // Only non-string map keys can fail here, which the domain types never produce; a
    // failure is still reported, not unwrapped.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

pub(crate) fn opt_json<T: Serialize>(value: Option<&T>) -> Result<Option<String>> {
    value.map(json).transpose()
}

pub(crate) fn parse_json<T: DeserializeOwned>(column: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(column, s, e))
}

pub(crate) fn parse_opt_json<T: DeserializeOwned>(
    column: &str,
    s: Option<&str>,
) -> Result<Option<T>> {
    s.map(|s| parse_json(column, s)).transpose()
}

/// Integers stored as `INTEGER` (i64) that the domain holds narrower.
pub(crate) fn narrow<T: TryFrom<i64>>(column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column}: {v} is out of range")))
}

fn corrupt(column: &str, value: &str, e: impl Display) -> StoreError {
    // Cut long values (JSON documents) so the message stays readable in a log line.
    let shown: String = value.chars().take(80).collect();
    StoreError::Corrupt(format!("{column}: {e} (value {shown:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_have_fixed_width_and_round_trip() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 26, 1, 2, 3)
            .single()
            .expect("valid date");
        assert_eq!(ts(&t), "2026-11-26T01:02:03.000000Z");
        let n = now();
        assert_eq!(parse_ts("at", &ts(&n)).expect("parses"), n);
    }

    #[test]
    fn bad_text_is_corrupt_not_a_panic() {
        assert!(matches!(
            parse_ts("at", "yesterday"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            narrow::<u16>("status", 70_000),
            Err(StoreError::Corrupt(_))
        ));
    }
}
