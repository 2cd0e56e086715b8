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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

/// The extended result code of a constraint failure, if `e` is one.
fn constraint(e: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(f.extended_code)
        }
        _ => None,
    }
}

/// Maps a unique-constraint failure to [`StoreError::AlreadyExists`] for `what`, anything
/// else to [`StoreError::Database`].
pub(crate) fn unique_as(
    what: impl FnOnce() -> String,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match constraint(&e) {
        Some(
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ) => StoreError::AlreadyExists { what: what() },
        _ => e.into(),
    }
}

/// Maps a foreign-key failure (the row points at something that is not there) to
/// [`StoreError::NotFound`] for `what`, anything else to [`StoreError::Database`].
pub(crate) fn reference_as(
    what: impl FnOnce() -> String,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match constraint(&e) {
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound { what: what() },
        _ => e.into(),
    }
}
