//! The conformance suite against [`SqliteStore`], one fresh database file per test, plus what
//! only SQLite has: URL forms and several handles (processes) on one file.

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

conformance!(
    bootstrap_and_principal_for_token,
    docks_insert_get_find_list,
    duplicate_dock_name_is_already_exists,
    update_dock_replaces_key_url_and_settings,
    remove_dock_waits_for_deprovisioning,
    remove_dock_waits_for_operations,
    remove_unknown_dock_is_not_found,
    resources_round_trip_every_kind,
    list_resources_honours_every_filter,
    resources_page_newest_first_as_rows_come_and_go,
    operations_and_the_journal_page_as_rows_come,
    docks_members_tokens_and_audit_page,
    get_resource_is_scoped_to_org,
    resource_in_unknown_dock_is_refused,
    second_writer_from_the_same_read_loses,
    illegal_transition_writes_nothing,
    batch_is_all_or_nothing,
    duplicates_of_live_resources_are_refused,
    find_by_provider_id_ignores_deprovisioned,
    find_by_marker_across_kinds,
    fencing_stops_a_stale_worker,
    renew_lease_only_while_held,
    expire_leases_frees_only_the_named_workers,
    future_operations_are_not_claimed,
    claims_take_the_oldest_first,
    record_step_twice_leaves_one_row,
    operations_get_list_and_active,
    change_feed_follows_every_write,
    change_signal_sees_new_seq,
    journal_is_per_resource_and_operation_in_order,
    deploy_logs_are_per_resource_in_order_from_a_position,
    audit_is_newest_first_and_pages,
    batch_claims_take_each_due_operation_once,
    waiting_operations_are_taken_for_a_hold_without_a_run,
    a_held_check_is_extended_only_while_still_held,
    heartbeats_count_the_live_nodes,
    a_cancel_wakes_a_waiting_operation_and_is_refused_once_finished,
    expire_leases_frees_waiting_operations_a_dead_observer_held,
    waiting_operations_are_found_and_taken_per_dock,
    get_resources_reads_many_rows_of_the_org_at_once,
    apply_each_keeps_each_batch_whole_and_alone,
    idempotency_keys_are_unique_per_org,
    journal_batches_are_written_whole,
    a_fenced_step_sets_the_provider_id_and_reports_a_cancel,
    tokens_carry_a_capped_role_expire_and_revoke,
    the_last_owner_stays,
    audit_is_searched_by_every_filter_a_page_at_a_time,
    a_reseal_replaces_only_what_it_read_and_updates_leave_input_alone,
    lookups_by_marker_provider_id_active_operation_and_steps_stay_in_their_org,
);

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
