//! Opening the database file: the URL forms we accept, creating it, and the migrations (run
//! with sqlx's migrator, which records them in `_sqlx_migrations`). The connections the store
//! works on are the writer's and the readers' own (see `writer` and `reader`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{Result, StoreError};

/// How long a writer waits for another process's write transaction before giving up with
/// SQLITE_BUSY. Write transactions here are short (one batch), so waiting this long means
/// something is stuck rather than busy.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers never block each other or the writer under WAL; a few connections let the API
/// serve several requests while a worker writes.
pub(crate) const READ_CONNECTIONS: usize = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The file a `STACKDOCK_DATABASE_URL` names: `sqlite:///abs/path.db`, `sqlite://rel.db`,
/// `sqlite:rel.db` or a plain path. A query string (`?mode=rwc`, as other tools write it) is
/// ignored: the store decides the connection settings itself.
pub(crate) fn path_from_url(url: &str) -> Result<PathBuf> {
    let rest = if let Some(rest) = url.strip_prefix("sqlite://") {
        strip_query(rest)
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        strip_query(rest)
    } else {
        url
    };
    if rest.is_empty() || rest == ":memory:" {
        // The writer and the readers would each see their own empty in-memory database.
        return Err(invalid_input(format!(
            "database url {url:?} names no file; StackDock needs a file it can open twice"
        )));
    }
    Ok(PathBuf::from(rest))
}

fn strip_query(s: &str) -> &str {
    s.split_once('?').map_or(s, |(path, _)| path)
}

fn invalid_input(message: String) -> StoreError {
    StoreError::Database(Box::new(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        message,
    )))
}

/// Creates the file if missing (with its parent directories), puts it in WAL mode and brings
/// its schema up to date. The readers and the writer open their own connections after.
pub(crate) async fn open(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL loses at most the last transactions on power loss, never
        // consistency; FULL would fsync on every batch of every worker.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);

    let migrating = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let migrated = migrate(&migrating).await;
    migrating.close().await;
    migrated
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    // sqlx takes no lock for SQLite migrations, so two processes opening a new file at the
    // same moment can both try to apply the first one; the loser fails. Running again then
    // finds it applied and only checks it.
    match MIGRATOR.run(pool).await {
        Ok(()) => Ok(()),
        Err(first) => {
            tracing::debug!(error = %first, "migrating again after a failed attempt");
            MIGRATOR.run(pool).await.map_err(StoreError::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_names_its_file() {
        let cases = [
            ("sqlite:///abs/path.db", "/abs/path.db"),
            ("sqlite://rel.db", "rel.db"),
            ("sqlite:rel.db", "rel.db"),
            ("sqlite:/abs.db?mode=rwc", "/abs.db"),
            ("data/stackdock.db", "data/stackdock.db"),
            ("/var/lib/stackdock.db", "/var/lib/stackdock.db"),
        ];
        for (url, path) in cases {
            assert_eq!(path_from_url(url).expect(url), PathBuf::from(path), "{url}");
        }
    }

    #[test]
    fn memory_and_empty_urls_are_refused() {
        for url in ["", "sqlite::memory:", "sqlite://", "sqlite:"] {
            assert!(path_from_url(url).is_err(), "{url}");
        }
    }
}
