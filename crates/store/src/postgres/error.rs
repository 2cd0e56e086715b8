//! How PostgreSQL's failures become [`StoreError`]s, and which of them are worth a retry.
//!
//! As in the SQLite store, uniqueness rules are checked before writing wherever a caller
//! needs to know which rule was hit; the constraints stay as the backstop, and between two
//! nodes they are what decides. A unique violation that gets through becomes
//! [`StoreError::AlreadyExists`] and a foreign-key violation [`StoreError::NotFound`] (as
//! SQLite's are), naming what the write said it wrote or else the constraint. Deadlocks and
//! serialization failures are retried by the store (see `mod.rs`); everything else, a lost
//! connection included, is [`StoreError::Database`].

use crate::StoreError;

/// SQLSTATEs.
const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";
const SERIALIZATION_FAILURE: &str = "40001";
const DEADLOCK_DETECTED: &str = "40P01";

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The SQLSTATE inside a [`StoreError::Database`], if it came from the server.
fn store_sqlstate(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Database(source) => source.downcast_ref::<sqlx::Error>().and_then(sqlstate),
        _ => None,
    }
}

/// Whether running the whole transaction again may succeed: it lost a deadlock or a
/// serialization check, and was rolled back.
pub(crate) fn is_retryable(e: &StoreError) -> bool {
    matches!(
        store_sqlstate(e).as_deref(),
        Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
    )
}

/// The last word on an error leaving the store: a constraint that fired without a check of
/// its own before it is named as the rule it stands for.
pub(crate) fn classify(e: StoreError) -> StoreError {
    let StoreError::Database(source) = &e else {
        return e;
    };
    let Some(sqlx::Error::Database(db)) = source.downcast_ref::<sqlx::Error>() else {
        return e;
    };
    let what = || match (db.table(), db.constraint()) {
        (Some(table), Some(c)) => format!("row of {table} ({c})"),
        (_, Some(c)) => format!("row ({c})"),
        _ => "row".to_string(),
    };
    match db.code().as_deref() {
        Some(UNIQUE_VIOLATION) => StoreError::AlreadyExists { what: what() },
        Some(FOREIGN_KEY_VIOLATION) => StoreError::NotFound {
            what: format!("what a {} refers to", what()),
        },
        _ => e,
    }
}

pub(crate) fn is_unique(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some(UNIQUE_VIOLATION)
}

/// Maps a unique violation to [`StoreError::AlreadyExists`] for `what`, anything else as
/// `?` would.
pub(crate) fn unique_as(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match sqlstate(&e).as_deref() {
        Some(UNIQUE_VIOLATION) => StoreError::AlreadyExists { what: what() },
        _ => e.into(),
    }
}

/// Maps a foreign-key violation (the row points at something that is not there) to
/// [`StoreError::NotFound`] for `what`, anything else as `?` would.
pub(crate) fn reference_as(
    what: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match sqlstate(&e).as_deref() {
        Some(FOREIGN_KEY_VIOLATION) => StoreError::NotFound { what: what() },
        _ => e.into(),
    }
}
