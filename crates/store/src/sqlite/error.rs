//! How SQLite's failures become [`StoreError`]s.
//!
//! Uniqueness rules are checked before writing wherever a caller needs to know which rule
//! was hit (the message names the thing). The constraints in the schema stay as the
//! backstop; if one fires anyway, the caller's description of the write names it.

use crate::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(Box::new(e))
    }
}

/// Maps a unique-constraint failure to [`StoreError::AlreadyExists`] for `what`, anything
/// else to [`StoreError::Database`].
pub(crate) fn unique_as(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists { what: what() }
        }
        _ => e.into(),
    }
}

/// Maps a foreign-key failure (the row points at something that is not there) to
/// [`StoreError::NotFound`] for `what`, anything else to [`StoreError::Database`].
pub(crate) fn reference_as(
    what: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound { what: what() }
        }
        _ => e.into(),
    }
}
