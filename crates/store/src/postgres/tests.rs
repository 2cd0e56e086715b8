//! What only the inside of the store can show: that a transaction which loses a deadlock is
//! run again, whole, and that server errors map to the store's. Needs a server, as
//! `tests/postgres.rs` does (`STACKDOCK_TEST_POSTGRES_URL`; skipped with a line without it,
//! except under `CI=true`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

use super::*;

/// A store on a new database of its own, or `None` when no server is configured.
async fn fresh() -> Option<(PostgresStore, String, String)> {
    let admin = match std::env::var("STACKDOCK_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "STACKDOCK_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests"
                );
            }
            eprintln!(
                "skipped: STACKDOCK_TEST_POSTGRES_URL is not set, so there is no PostgreSQL server to test against"
            );
            return None;
        }
    };
    let name = format!("stackdock_unit_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let options = connect::options(&admin)
        .expect("admin options")
        .database(&name);
    let pool = connect::pool(&options, 4).await.expect("pool");
    let changes = Arc::new(watch::Sender::new(0));
    let logs = Arc::new(watch::Sender::new(0));
    let listener = listen::start(
        options,
        pool.clone(),
        listen::Signals {
            changes: Arc::clone(&changes),
            logs: Arc::clone(&logs),
        },
    )
    .await
    .expect("listener");
    let store = PostgresStore {
        pool,
        changes,
        logs,
        listener: Arc::new(listener),
    };
    Some((store, admin, name))
}

async fn drop_database(store: PostgresStore, admin: &str, name: &str) {
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("admin");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop database");
    let _ = conn.close().await;
}

/// Locks `first`'s counter row, waits for the other transaction to lock its own, then
/// locks `second`'s: two of these in opposite orders deadlock, and the server aborts one.
async fn cross(
    c: &mut sqlx::PgConnection,
    first: &str,
    second: &str,
    both_hold_one: &tokio::sync::Barrier,
    attempts: &AtomicU32,
) -> Result<()> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    sqlx::query(&format!("UPDATE {first} SET seq = seq + 1"))
        .execute(&mut *c)
        .await?;
    if attempt == 1 {
        both_hold_one.wait().await;
    }
    sqlx::query(&format!("UPDATE {second} SET seq = seq + 1"))
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_loses_a_deadlock_runs_again_whole() {
    let Some((store, admin, name)) = fresh().await else {
        return;
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tries = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    let tasks: Vec<_> = [
        ("feed_counter", "deploy_log_counter"),
        ("deploy_log_counter", "feed_counter"),
    ]
    .into_iter()
    .zip(tries.clone())
    .map(|((first, second), attempts)| {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            in_transaction!(store, |c| cross(c, first, second, &barrier, &attempts))
        })
    })
    .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("both transactions commit in the end");
    }
    let runs: Vec<u32> = tries.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(
        runs.iter().sum::<u32>(),
        3,
        "one of the two ran twice: {runs:?}"
    );
    // Each committed once: the aborted run's increments were rolled back with it.
    let mut c = store.conn().await.expect("conn");
    assert_eq!(feed::latest(&mut c).await.expect("feed"), 2);
    assert_eq!(deploy_log::latest(&mut c).await.expect("log"), 2);
    drop(c);
    drop_database(store, &admin, &name).await;
}

#[tokio::test]
async fn server_errors_map_to_the_stores() {
    let Some((store, admin, name)) = fresh().await else {
        return;
    };
    let raise = |code: &'static str| {
        let store = store.clone();
        async move {
            let mut c = store.conn().await.expect("conn");
            let err = sqlx::query(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$"
            ))
            .execute(&mut *c)
            .await
            .expect_err("raised");
            StoreError::from(err)
        }
    };
    assert!(error::is_retryable(&raise("40P01").await));
    assert!(error::is_retryable(&raise("40001").await));
    assert!(!error::is_retryable(&raise("23505").await));
    assert!(matches!(
        error::classify(raise("23505").await),
        StoreError::AlreadyExists { .. }
    ));
    assert!(matches!(
        error::classify(raise("23503").await),
        StoreError::NotFound { .. }
    ));
    assert!(matches!(
        error::classify(raise("22000").await),
        StoreError::Database(_)
    ));
    drop_database(store, &admin, &name).await;
}
