//! The conformance suite against [`SqliteStore`], one fresh database file per test, plus what
//! only SQLite has: URL forms and several handles (processes) on one file.

#[macro_use]
mod conformance;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stackdock_core::ResourceKind;
use stackdock_store::{SqliteStore, Store};
use tempfile::TempDir;

use conformance::fixtures::*;

/// A store on a new file in its own directory; the directory lives as long as the guard.
async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("stackdock.db"))
        .await
        .expect("open fresh store");
    (dir, store)
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, store) = fresh().await;
                conformance::$name(&store).await;
            }
        )*
    };
}

every_test!(conformance);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_fail_alone() {
    let (_dir, store) = fresh().await;
    conformance::concurrent_batches_fail_alone(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_exclusive() {
    let (_dir, store) = fresh().await;
    conformance::claims_are_exclusive(Arc::new(store)).await;
}

// ---- SQLite only ----

/// Two handles on one file stand for two processes: each has its own pools, so they meet only
/// in SQLite's file locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file_write_and_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open a"));
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open b"));

    let t = tenant(&*a).await;
    let dock = add_dock(&*b, t.org, "shared").await;
    assert_eq!(
        a.get_dock(t.org, dock.id)
            .await
            .expect("a sees b's dock")
            .id,
        dock.id
    );

    // Both write at once: resources and operations, 10 each side.
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let dock = dock.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let r = insert(&*store, resource(&dock, ResourceKind::Server)).await;
                    insert_operation(&*store, operation(&dock, Some(&r))).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(
        a.list_resources(
            t.org,
            &Default::default(),
            &stackdock_store::PageRequest::first(100)
        )
        .await
        .expect("list")
        .items
        .len(),
        20
    );

    // Both claim at once, two tasks per handle: every operation exactly once.
    let claimers: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(i, store)| {
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(op) = store
                    .claim_operation(&format!("proc-{i}"), Duration::from_secs(600))
                    .await
                    .expect("claim without SQLITE_BUSY")
                {
                    mine.push(op.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.expect("claimer"));
    }
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(
        (total, claimed.len()),
        (20, 20),
        "each operation claimed once"
    );

    // A change one handle made is in the feed the other reads.
    assert_eq!(
        a.latest_change().await.expect("latest"),
        b.latest_change().await.expect("latest")
    );
}

/// `path` written relative to the current directory, however deep that is.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().expect("cwd");
    let mut rel = PathBuf::new();
    for c in cwd.components() {
        if matches!(c, Component::Normal(_)) {
            rel.push("..");
        }
    }
    rel.join(path.strip_prefix("/").expect("absolute tempdir"))
}

#[tokio::test]
async fn open_url_accepts_every_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let abs = dir.path().join("nested").join("url.db");
    let rel = relative_to_cwd(&abs);
    let rel = rel.to_str().expect("utf-8 path");
    let abs_text = abs.to_str().expect("utf-8 path");

    // The first open creates the file (and its directory); each later form must reach the
    // same file, which shows as the tenant written through the first.
    let first = SqliteStore::open_url(&format!("sqlite://{abs_text}"))
        .await
        .expect("sqlite:///abs");
    let t = tenant(&first).await;
    first.close().await;

    for url in [
        format!("sqlite://{rel}"),
        format!("sqlite:{rel}"),
        format!("sqlite:{abs_text}?mode=rwc"),
        abs_text.to_string(),
        rel.to_string(),
    ] {
        let store = SqliteStore::open_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_eq!(
            store.first_org().await.expect("first org"),
            Some(t.org),
            "{url}"
        );
        store.close().await;
    }

    assert!(SqliteStore::open_url("sqlite::memory:").await.is_err());
}

#[tokio::test]
async fn reopening_keeps_data_and_starts_the_signal_at_the_latest_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reopen.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let t = tenant(&store).await;
    let dock = add_dock(&store, t.org, "kept").await;
    let r = insert(&store, resource(&dock, ResourceKind::Database)).await;
    let latest = store.latest_change().await.expect("latest");
    assert!(latest > 0);
    store.close().await;

    let store = SqliteStore::open(&path)
        .await
        .expect("reopen runs migrations again harmlessly");
    assert_eq!(store.get_resource(t.org, r.id).await.expect("kept"), r);
    assert_eq!(*store.change_signal().borrow(), latest);
}

/// A database made before operations could wait keeps its operations and their steps when it
/// is opened by this version: the migration rebuilds the operations table around them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_migration_keeps_operations_and_their_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first");
    std::fs::create_dir(&first).expect("mkdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::copy(source.join("0001_init.sql"), first.join("0001_init.sql"))
        .expect("copy the first migration");
    let path = dir.path().join("old.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("pool");
        sqlx::migrate::Migrator::new(first.as_path())
            .await
            .expect("migrator")
            .run(&pool)
            .await
            .expect("the first schema");
        for sql in [
            "INSERT INTO orgs VALUES ('01a216ba-0000-7000-8000-0000000000aa', 'org',
                 '2026-01-01T00:00:00.000000Z')",
            "INSERT INTO docks VALUES ('01a216ba-0000-7000-8000-0000000000bb',
                 '01a216ba-0000-7000-8000-0000000000aa', 'digitalocean', 'do', 'k', 'kid', NULL,
                 '{}', '2026-01-01T00:00:00.000000Z')",
            "INSERT INTO operations VALUES ('01a216ba-0000-7000-8000-000000000001',
                 '01a216ba-0000-7000-8000-0000000000aa', 'sync',
                 '01a216ba-0000-7000-8000-0000000000bb', NULL, NULL, NULL, 'succeeded', 1, '2026-01-01T00:00:00.000000Z', NULL, NULL,
                 1, 'null', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
            "INSERT INTO operation_steps VALUES ('01a216ba-0000-7000-8000-000000000001', 0,
                 'discover', 'done', '{\"found\": 3}', 'null', '2026-01-01T00:00:00.000000Z')",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool.close().await;
    }

    let store = SqliteStore::open(&path).await.expect("migrated");
    let op_id = "01a216ba-0000-7000-8000-000000000001".parse().expect("id");
    let org = "01a216ba-0000-7000-8000-0000000000aa"
        .parse()
        .expect("org id");
    let steps = store.steps(org, op_id).await.expect("steps");
    assert_eq!(steps.len(), 1, "the step survived the rebuild");
    assert_eq!(steps[0].output["found"], 3);
    let op = store
        .get_operation(org, op_id)
        .await
        .expect("the operation survived");
    assert_eq!(op.state, stackdock_core::OpState::Succeeded);
    assert!(!op.cancel_requested);
    assert_eq!((op.unwind, op.waiting_since), (None, None));
}
