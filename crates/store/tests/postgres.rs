//! The conformance suite against [`PostgresStore`], each test on a database of its own, plus
//! what only PostgreSQL has: several nodes (stores) on one database, the feed's commit order
//! under concurrent writers, signals across nodes, and concurrent migrations.
//!
//! The server comes from `STACKDOCK_TEST_POSTGRES_URL`, a URL whose user may create
//! databases. Without it these tests say why on one line and pass, except under CI
//! (`CI=true`), where they must run and fail instead.

#[macro_use]
mod conformance;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use stackdock_core::{ResourceId, ResourceKind};
use stackdock_store::{Batch, DeployLogLine, PostgresStore, Store, StoreError, Write};

use conformance::fixtures::*;

const ADMIN_URL: &str = "STACKDOCK_TEST_POSTGRES_URL";

/// A database made for one test, dropped by [`TestDb::drop_now`].
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

/// A new, empty database, or `None` (having said why) when no server is configured.
async fn fresh_db() -> Option<TestDb> {
    let admin = match std::env::var(ADMIN_URL) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{ADMIN_URL} is not set, and CI must run the PostgreSQL tests");
            }
            eprintln!(
                "skipped: {ADMIN_URL} is not set, so there is no PostgreSQL server to test against"
            );
            return None;
        }
    };
    let name = format!("stackdock_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the admin URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    conn.close().await.expect("close");
    let url = with_database(&admin, &name);
    Some(TestDb { admin, name, url })
}

/// `url` naming the database `name` instead of its own (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, 4)
            .await
            .expect("connect the store")
    }

    async fn drop_now(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin)
            .await
            .expect("connect to the admin URL");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop the test database");
        let _ = conn.close().await;
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = fresh_db().await else { return };
                let store = db.store().await;
                conformance::$name(&store).await;
                store.close().await;
                db.drop_now().await;
            }
        )*
    };
}

every_test!(conformance);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_fail_alone() {
    let Some(db) = fresh_db().await else { return };
    let store = db.store().await;
    conformance::concurrent_batches_fail_alone(Arc::new(store.clone())).await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_exclusive() {
    let Some(db) = fresh_db().await else { return };
    let store = db.store().await;
    conformance::claims_are_exclusive(Arc::new(store.clone())).await;
    store.close().await;
    db.drop_now().await;
}

// ---- PostgreSQL only ----

/// Waits until `rx` holds at least `seq`, or fails after `deadline`.
async fn signal_reaches(rx: &mut tokio::sync::watch::Receiver<i64>, seq: i64, deadline: Duration) {
    tokio::time::timeout(deadline, rx.wait_for(|v| *v >= seq))
        .await
        .unwrap_or_else(|_| panic!("the signal did not reach {seq} within {deadline:?}"))
        .expect("the store is alive");
}

/// Two stores on one database stand for two nodes: each has its own pool and listener, so
/// they meet only in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_write_and_claim_each_operation_once() {
    let Some(db) = fresh_db().await else { return };
    let a: Arc<dyn Store> = Arc::new(db.store().await);
    let b: Arc<dyn Store> = Arc::new(db.store().await);

    let t = tenant(&*a).await;
    let dock = add_dock(&*b, t.org, "shared").await;
    assert_eq!(
        a.get_dock(t.org, dock.id)
            .await
            .expect("a sees b's dock")
            .id,
        dock.id
    );

    // Both write at once: 25 resources and operations each.
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let dock = dock.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let r = insert(&*store, resource(&dock, ResourceKind::Server)).await;
                    insert_operation(&*store, operation(&dock, Some(&r))).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let listed = a
        .list_resources(
            t.org,
            &Default::default(),
            &stackdock_store::PageRequest::first(100),
        )
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 50);

    // Both claim at once, three tasks per node, a few at a time: every operation exactly once.
    let claimers: Vec<_> = (0..6)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_operations(
                            &format!("node-{}/w{i}", i % 2),
                            Duration::from_secs(600),
                            3,
                            &[],
                        )
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|o| o.id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.expect("claimer"));
    }
    let total = claimed.len();
    let distinct: BTreeSet<_> = claimed.into_iter().collect();
    assert_eq!(
        (total, distinct.len()),
        (50, 50),
        "each operation claimed once"
    );

    assert_eq!(
        a.latest_change().await.expect("latest"),
        b.latest_change().await.expect("latest")
    );
    drop((a, b));
    db.drop_now().await;
}

/// Writers on two nodes fill the feed while a reader follows it as the fan-out does: the
/// reader must see every seq once, in increasing order, and none may turn up behind its
/// cursor later (which is what numbering at insert time, by a sequence, would let happen).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_is_read_in_commit_order_under_concurrent_writers() {
    const TASKS: usize = 8;
    const INSERTS: usize = 50;
    let Some(db) = fresh_db().await else { return };
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let t = tenant(&*a).await;
    let dock = add_dock(&*a, t.org, "feed").await;
    let start = a.latest_change().await.expect("latest");

    let writers: Vec<_> = (0..TASKS)
        .map(|i| {
            let store: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let dock = dock.clone();
            tokio::spawn(async move {
                for _ in 0..INSERTS {
                    // More than the resource in the batch, so each transaction lasts a while
                    // after its resource row is written.
                    let r = resource(&dock, ResourceKind::Server);
                    let op = operation(&dock, Some(&r));
                    store
                        .apply(
                            Batch::new()
                                .push(Write::InsertResource(r))
                                .push(Write::InsertOperation(op))
                                .push(Write::Audit(audit(dock.org_id, "server.provision"))),
                        )
                        .await
                        .expect("write");
                }
            })
        })
        .collect();

    let reader = {
        let store = a.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            let expected_last = start + (TASKS * INSERTS) as i64;
            let until = tokio::time::Instant::now() + Duration::from_secs(120);
            while cursor < expected_last {
                assert!(
                    tokio::time::Instant::now() < until,
                    "the reader fell behind for good"
                );
                let batch = store
                    .all_changes_since(cursor, 7)
                    .await
                    .expect("read the feed");
                for change in batch {
                    assert!(change.seq > cursor, "seq {} after {cursor}", change.seq);
                    cursor = change.seq;
                    seen.push(change.seq);
                }
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let seen = reader.await.expect("reader");
    let latest = a.latest_change().await.expect("latest");
    assert_eq!(latest, start + (TASKS * INSERTS) as i64);
    // Every seq the table holds was read, exactly once and in order: nothing committed
    // behind the reader's cursor.
    let all: Vec<i64> = a
        .all_changes_since(start, 10_000)
        .await
        .expect("read all")
        .into_iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(all.len(), TASKS * INSERTS);
    let read: BTreeSet<i64> = seen.iter().copied().collect();
    let missed: Vec<i64> = all.iter().copied().filter(|s| !read.contains(s)).collect();
    assert!(
        missed.is_empty(),
        "the reader missed {} change(s) that committed behind its cursor, e.g. {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    assert_eq!(seen, all, "every seq read once, in order");
    drop((a, b));
    db.drop_now().await;
}

/// The deploy log's own numbers follow commit order too: appends from two nodes, a reader
/// following `all_deploy_log_since`, every line read once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deploy_log_is_read_in_commit_order_under_concurrent_writers() {
    const TASKS: usize = 8;
    const APPENDS: usize = 25;
    let Some(db) = fresh_db().await else { return };
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let t = tenant(&*a).await;
    let expected = (TASKS * APPENDS * 2) as i64;

    let writers: Vec<_> = (0..TASKS)
        .map(|i| {
            let store: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let org = t.org;
            tokio::spawn(async move {
                let (resource_id, operation_id) =
                    (ResourceId::new(), stackdock_core::OperationId::new());
                for n in 0..APPENDS {
                    let line = |k: usize| DeployLogLine {
                        seq: 0,
                        org_id: org,
                        resource_id,
                        operation_id,
                        line: format!("task {i} line {n}.{k}"),
                        at: now(),
                    };
                    store
                        .append_deploy_log(vec![line(0), line(1)])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    let reader = {
        let store = a.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = Vec::new();
            let until = tokio::time::Instant::now() + Duration::from_secs(120);
            while cursor < expected {
                assert!(
                    tokio::time::Instant::now() < until,
                    "the reader fell behind for good"
                );
                for line in store.all_deploy_log_since(cursor, 5).await.expect("read") {
                    assert!(line.seq > cursor, "seq {} after {cursor}", line.seq);
                    cursor = line.seq;
                    seen.push(line.seq);
                }
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let seen = reader.await.expect("reader");
    assert_eq!(a.latest_deploy_log().await.expect("latest"), expected);
    let read: BTreeSet<i64> = seen.iter().copied().collect();
    let missed: Vec<i64> = (1..=expected).filter(|s| !read.contains(s)).collect();
    assert!(
        missed.is_empty(),
        "the reader missed {} line(s) that committed behind its cursor, e.g. {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    assert_eq!(seen.len(), read.len(), "every line read once");
    drop((a, b));
    db.drop_now().await;
}

/// A commit on node B moves node A's signals, through `LISTEN`/`NOTIFY`; and after A's
/// listening connection is killed, it comes back and hears B again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_on_one_node_moves_the_signals_of_another() {
    let Some(db) = fresh_db().await else { return };
    let a = db.store().await;
    let b = db.store().await;
    let t = tenant(&a).await;
    let dock = add_dock(&a, t.org, "signals").await;
    let mut changes = a.change_signal();
    let mut logs = a.deploy_log_signal();
    let deadline = Duration::from_secs(10);

    let r = insert(&b, resource(&dock, ResourceKind::Server)).await;
    let seq = b.latest_change().await.expect("latest");
    signal_reaches(&mut changes, seq, deadline).await;

    let line = |n: usize| DeployLogLine {
        seq: 0,
        org_id: t.org,
        resource_id: r.id,
        operation_id: stackdock_core::OperationId::new(),
        line: format!("step {n}"),
        at: now(),
    };
    b.append_deploy_log(vec![line(1), line(2)])
        .await
        .expect("append");
    let log_seq = b.latest_deploy_log().await.expect("latest log");
    assert_eq!(log_seq, 2);
    signal_reaches(&mut logs, log_seq, deadline).await;

    // Kill every listening session of this database (A's and B's) from outside.
    let mut admin = sqlx::PgConnection::connect(&db.admin).await.expect("admin");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND application_name = 'stackdock-listener') AS k",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .expect("terminate the listeners");
    assert_eq!(killed, 2, "each store listens on a connection of its own");
    let _ = admin.close().await;

    let moved = move_to(&b, &r, stackdock_core::ProvisioningState::Provisioned).await;
    assert_eq!(moved.version, r.version + 1);
    let seq = b.latest_change().await.expect("latest");
    signal_reaches(&mut changes, seq, deadline).await;
    b.append_deploy_log(vec![line(3)]).await.expect("append");
    signal_reaches(&mut logs, 3, deadline).await;

    a.close().await;
    b.close().await;
    db.drop_now().await;
}

/// A worker on node A whose lease ran out, and whose operation node B then claimed, cannot
/// write: its fenced batch is refused and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_lease_from_another_node_is_fenced() {
    let Some(db) = fresh_db().await else { return };
    let a = db.store().await;
    let b = db.store().await;
    let t = tenant(&a).await;
    let dock = add_dock(&a, t.org, "fenced").await;
    let r = insert(&a, resource(&dock, ResourceKind::Server)).await;
    let op = insert_operation(&a, operation(&dock, Some(&r))).await;

    let stale = a
        .claim_operation("node-a/w0", Duration::from_millis(50))
        .await
        .expect("claim")
        .expect("the queued operation");
    let fresh = claim_within(
        &b,
        "node-b/w0",
        Duration::from_secs(600),
        Duration::from_secs(10),
    )
    .await
    .expect("node B takes the expired lease over");
    assert_eq!((fresh.id, fresh.generation), (op.id, stale.generation + 1));

    let feed_before = a.latest_change().await.expect("latest");
    let mut progress = r.clone();
    progress.provisioning_state = stackdock_core::ProvisioningState::Provisioned;
    let lease = |o: &stackdock_core::Operation| stackdock_store::Lease {
        operation_id: o.id,
        owner: o.lease_owner.clone().expect("owner"),
        generation: o.generation,
    };
    let refused = a
        .apply_fenced(
            t.org,
            Batch::fenced(&lease(&stale))
                .push(update(progress.clone(), r.version))
                .push(Write::Audit(audit(t.org, "server.provision"))),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced(id)) if id == op.id),
        "{refused:?}"
    );
    assert_eq!(b.get_resource(t.org, r.id).await.expect("get"), r);
    assert_eq!(b.latest_change().await.expect("latest"), feed_before);

    let written = b
        .apply_fenced(
            t.org,
            Batch::fenced(&lease(&fresh)).push(update(progress, r.version)),
        )
        .await
        .expect("the current lease writes");
    assert_eq!(written.resources[0].version, r.version + 1);
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

/// Nodes starting at once on a new database all come up: one migrates, the others wait for
/// its advisory lock and find the schema in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(db) = fresh_db().await else { return };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect_with(&url, 2).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("task").expect("every node starts"));
    }
    let t = tenant(&stores[0]).await;
    assert_eq!(stores[3].first_org().await.expect("first org"), Some(t.org));
    for s in &stores {
        s.close().await;
    }
    db.drop_now().await;
}

/// A URL whose password is wrong fails to connect without the password in the error.
#[tokio::test]
async fn a_failed_connection_does_not_show_the_password() {
    let Some(db) = fresh_db().await else { return };
    let (scheme, rest) = db.url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = format!("{scheme}://no_such_user_x:s3cret-pw@{host}");
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("no such user");
    assert!(!format!("{err:?} {err}").contains("s3cret-pw"), "{err:?}");
    db.drop_now().await;
}

#[tokio::test]
async fn open_url_reaches_postgres() {
    let Some(db) = fresh_db().await else { return };
    let store = stackdock_store::open_url(&db.url)
        .await
        .expect("open by URL");
    let t = tenant(&*store).await;
    assert_eq!(store.first_org().await.expect("first org"), Some(t.org));
    drop(store);
    db.drop_now().await;
}

// ---- copying an installation from SQLite ----

/// What the copy test wrote, to read back from either store.
struct Populated {
    tenant: Tenant,
    member_email: String,
    session_secret: String,
    resources: Vec<stackdock_core::Resource>,
    operations: Vec<stackdock_core::OperationId>,
    idempotency_key: String,
}

/// Fills a store through the trait: every table gets rows.
async fn populate(store: &dyn Store) -> Populated {
    use stackdock_core::{ApiCall, OpState, ProvisioningState, Role, Step, StepStatus, TokenId};
    use stackdock_store::{IdempotentRequest, NewSession, NewToken};

    let t = tenant(store).await;
    let member_email = "dev@example.test".to_string();
    let member = store
        .add_member(
            t.org,
            &member_email,
            Role::Developer,
            audit(t.org, "member.add"),
        )
        .await
        .expect("add member");
    for (hash, invitation) in [("tok-dev", false), ("inv-dev", true)] {
        store
            .create_token(
                NewToken {
                    id: TokenId::new(),
                    org_id: t.org,
                    user_id: member.user_id,
                    token_hash: hash.into(),
                    name: Some(format!("{hash} name")),
                    role: Some(Role::Viewer),
                    expires_at: Some(now() + chrono::TimeDelta::days(30)),
                    invitation,
                },
                audit(t.org, "token.create"),
            )
            .await
            .expect("create token");
    }
    store
        .set_password(
            t.user,
            "$argon2id$v=19$hash".into(),
            audit(t.org, "password.set"),
        )
        .await
        .expect("set password");
    let session_secret = "session-secret-hash".to_string();
    store
        .create_session(
            NewSession {
                id: TokenId::new(),
                secret_hash: session_secret.clone(),
                csrf_hash: "csrf-hash".into(),
                user_id: t.user,
                org_id: t.org,
                expires_at: now() + chrono::TimeDelta::hours(8),
            },
            audit(t.org, "session.create"),
        )
        .await
        .expect("create session");

    let main = add_dock(store, t.org, "main").await;
    let _spare = add_dock(store, t.org, "spare").await;
    let mut resources = Vec::new();
    for kind in ResourceKind::ALL {
        resources.push(insert(store, fully_populated(&main, kind)).await);
        let r = insert(store, resource(&main, kind)).await;
        resources.push(move_to(store, &r, ProvisioningState::Provisioned).await);
    }
    resources.push(insert(store, discovered(&main, ResourceKind::Server, "found-1")).await);

    let mut operations = Vec::new();
    let first = insert_operation(store, operation(&main, Some(&resources[1]))).await;
    operations.push(first.id);
    let waiting = {
        let mut op = operation(&main, Some(&resources[3]));
        op.state = OpState::Waiting;
        op.next_run_at = now() + chrono::TimeDelta::minutes(5);
        op.waiting_since = Some(now());
        insert_operation(store, op).await
    };
    operations.push(waiting.id);
    let claimed = store
        .claim_operation("node-1/w0", Duration::from_secs(600))
        .await
        .expect("claim")
        .expect("the queued operation");
    let lease = stackdock_store::Lease {
        operation_id: claimed.id,
        owner: "node-1/w0".into(),
        generation: claimed.generation,
    };
    store
        .apply_fenced(
            t.org,
            Batch::fenced(&lease)
                .push(Write::RecordStep(Step {
                    operation_id: claimed.id,
                    index: 0,
                    name: "create".into(),
                    status: StepStatus::Done,
                    output: serde_json::json!({"id": "v1:k:sealed", "n": 1}),
                    undo: serde_json::json!(null),
                    at: now(),
                }))
                .push(Write::SetProviderId {
                    org_id: t.org,
                    kind: resources[1].kind(),
                    resource_id: resources[1].id,
                    provider_resource_id: "prov-set".into(),
                }),
        )
        .await
        .expect("a fenced step");

    let idempotency_key = "create-1".to_string();
    store
        .apply(Batch::new().push(Write::IdempotencyKey(IdempotentRequest {
            org_id: t.org,
            key: idempotency_key.clone(),
            request_hash: "digest".into(),
            resource_id: resources[0].id,
        })))
        .await
        .expect("idempotency key");

    let call = |n: u32| ApiCall {
        id: 0,
        org_id: t.org,
        dock_id: main.id,
        resource_id: Some(resources[1].id),
        operation_id: Some(claimed.id),
        method: "POST".into(),
        path: format!("/v2/droplets?page={n}"),
        status: Some(202),
        duration_ms: 12,
        request_id: Some(format!("req-{n}")),
        attempt: n,
        error: None,
        at: now(),
        // The worker column travels too, where it is set and where it is not.
        worker: (n % 2 == 1).then(|| format!("node-a-{n}")),
    };
    store
        .record_api_calls(vec![call(1), call(2), call(3)])
        .await
        .expect("journal");
    let line = |n: usize| DeployLogLine {
        seq: 0,
        org_id: t.org,
        resource_id: resources[1].id,
        operation_id: claimed.id,
        line: format!("building {n}"),
        at: now(),
    };
    store
        .append_deploy_log(vec![line(1), line(2), line(3)])
        .await
        .expect("deploy log");
    Populated {
        tenant: t,
        member_email,
        session_secret,
        resources,
        operations,
        idempotency_key,
    }
}

/// Everything the trait answers about a populated store, as text to compare.
async fn everything(store: &dyn Store, p: &Populated) -> Vec<String> {
    use stackdock_store::{AuditFilter, PageRequest};
    let org = p.tenant.org;
    let mut out = vec![
        format!("{:?}", store.first_org().await.expect("first org")),
        format!(
            "{:?}",
            store
                .principal_for_token(&p.tenant.token_hash)
                .await
                .expect("principal")
        ),
        format!(
            "{:?}",
            store
                .principal_for_token("tok-dev")
                .await
                .expect("principal")
        ),
        format!("{:?}", store.login(&p.tenant.email).await.expect("login")),
        format!("{:?}", store.login(&p.member_email).await.expect("login")),
        format!(
            "{:?}",
            store
                .principal_for_session(&p.session_secret)
                .await
                .expect("session")
        ),
        format!(
            "{:?}",
            store
                .list_members(org, &PageRequest::first(100))
                .await
                .expect("members")
        ),
        format!(
            "{:?}",
            store
                .list_tokens(org, None, &PageRequest::first(100))
                .await
                .expect("tokens")
        ),
        format!(
            "{:?}",
            store
                .list_docks(org, &PageRequest::first(100))
                .await
                .expect("docks")
        ),
        format!(
            "{:?}",
            store
                .list_resources(org, &Default::default(), &PageRequest::first(100))
                .await
                .expect("resources")
        ),
        format!(
            "{:?}",
            store
                .list_operations(org, None, &PageRequest::first(100))
                .await
                .expect("operations")
        ),
        format!(
            "{:?}",
            store
                .search_audit(org, &AuditFilter::default(), &PageRequest::first(1000))
                .await
                .expect("audit")
        ),
        format!(
            "{:?}",
            store.all_changes_since(0, 10_000).await.expect("feed")
        ),
        format!("{:?}", store.latest_change().await.expect("latest change")),
        format!(
            "{:?}",
            store
                .all_deploy_log_since(0, 10_000)
                .await
                .expect("deploy log")
        ),
        format!("{:?}", store.latest_deploy_log().await.expect("latest log")),
        format!(
            "{:?}",
            store
                .find_idempotency_key(org, &p.idempotency_key)
                .await
                .expect("key")
        ),
        format!("{:?}", store.sealed_rows().await.expect("sealed rows")),
        format!("{:?}", store.next_waiting().await.expect("next waiting")),
    ];
    for r in &p.resources {
        out.push(format!(
            "{:?}",
            store.get_resource(org, r.id).await.expect("resource")
        ));
        out.push(format!(
            "{:?}",
            store
                .api_calls(org, r.id, &PageRequest::first(100))
                .await
                .expect("journal")
        ));
        out.push(format!(
            "{:?}",
            store.active_operation_for(org, r.id).await.expect("active")
        ));
    }
    for op in &p.operations {
        out.push(format!(
            "{:?}",
            store.get_operation(org, *op).await.expect("operation")
        ));
        out.push(format!("{:?}", store.steps(org, *op).await.expect("steps")));
        out.push(format!(
            "{:?}",
            store
                .api_calls_for_operation(org, *op)
                .await
                .expect("calls")
        ));
    }
    out
}

/// What SQLite kept with a NUL in it (a provider's status and JSON, a build's output) is
/// copied, as U+FFFD, instead of failing the whole copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_all_moves_rows_that_hold_a_nul() {
    let Some(db) = fresh_db().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = stackdock_store::SqliteStore::open(&dir.path().join("source.db"))
        .await
        .expect("open the source");
    let t = tenant(&sqlite).await;
    let d = add_dock(&sqlite, t.org, "nul").await;
    let mut r = fully_populated(&d, ResourceKind::Server);
    r.status = Some("new\0".into());
    r.full_api_data = serde_json::json!({"name\0": ["a\0b"]});
    insert(&sqlite, r.clone()).await;
    let op = insert_operation(&sqlite, operation(&d, Some(&r))).await;
    sqlite
        .append_deploy_log(vec![DeployLogLine {
            seq: 0,
            org_id: t.org,
            resource_id: r.id,
            operation_id: op.id,
            line: "out\0".into(),
            at: now(),
        }])
        .await
        .expect("append");
    let target = db.store().await;

    stackdock_store::copy::copy_all(&sqlite, &target)
        .await
        .expect("the copy takes rows that hold a NUL");
    let got = target.get_resource(t.org, r.id).await.expect("get");
    assert_eq!(got.status.as_deref(), Some("new\u{FFFD}"));
    assert_eq!(
        got.full_api_data,
        serde_json::json!({"name\u{FFFD}": ["a\u{FFFD}b"]})
    );
    let lines = target
        .deploy_log_since(t.org, Some(r.id), 0, 10)
        .await
        .expect("log");
    assert_eq!(lines.first().map(|l| l.line.as_str()), Some("out\u{FFFD}"));

    sqlite.close().await;
    target.close().await;
    db.drop_now().await;
}

/// An installation copied from SQLite answers every read as it did, keeps its feed's and its
/// deploy log's numbers, and numbers what comes after them past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_all_moves_every_row_from_sqlite_and_keeps_the_cursors() {
    let Some(db) = fresh_db().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = stackdock_store::SqliteStore::open(&dir.path().join("source.db"))
        .await
        .expect("open the source");
    let p = populate(&sqlite).await;
    let target = db.store().await;
    let mut signal = target.change_signal();

    let report = stackdock_store::copy::copy_all(&sqlite, &target)
        .await
        .expect("copy");
    assert_eq!(
        report.latest_change,
        sqlite.latest_change().await.expect("latest")
    );
    assert_eq!(report.latest_deploy_log, 3);
    let counted: std::collections::BTreeMap<_, _> = report.tables.iter().cloned().collect();
    for table in [
        "orgs",
        "users",
        "memberships",
        "api_tokens",
        "sessions",
        "docks",
        "servers",
        "web_services",
        "domains",
        "databases",
        "operations",
        "operation_steps",
        "idempotency_keys",
        "api_calls",
        "audit_log",
        "changes",
        "deploy_logs",
    ] {
        assert!(
            counted.get(table).is_some_and(|n| *n > 0),
            "{table}: {report:?}"
        );
    }

    let before = everything(&sqlite, &p).await;
    let after = everything(&target, &p).await;
    assert_eq!(before.len(), after.len());
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "read {i} differs after the copy");
    }
    signal_reaches(&mut signal, report.latest_change, Duration::from_secs(10)).await;

    // What comes next is numbered past what was copied.
    let audit_top = target
        .list_audit(p.tenant.org, 1, None)
        .await
        .expect("audit")[0]
        .id;
    let dock = target
        .find_dock_by_name(
            p.tenant.org,
            &stackdock_core::DockName::try_from("main".to_string()).expect("name"),
        )
        .await
        .expect("find")
        .expect("the copied dock");
    let r = insert(&target, resource(&dock, ResourceKind::Server)).await;
    assert_eq!(
        target.latest_change().await.expect("latest"),
        report.latest_change + 1
    );
    target
        .apply(Batch::new().push(Write::Audit(audit(p.tenant.org, "after.copy"))))
        .await
        .expect("audit after the copy");
    assert!(
        target
            .list_audit(p.tenant.org, 1, None)
            .await
            .expect("audit")[0]
            .id
            > audit_top
    );
    target
        .append_deploy_log(vec![DeployLogLine {
            seq: 0,
            org_id: p.tenant.org,
            resource_id: r.id,
            operation_id: stackdock_core::OperationId::new(),
            line: "after".into(),
            at: now(),
        }])
        .await
        .expect("append");
    assert_eq!(target.latest_deploy_log().await.expect("latest"), 4);

    // A second copy into a database that holds data is refused, and changes nothing.
    let again = stackdock_store::copy::copy_all(&sqlite, &target).await;
    assert!(
        matches!(again, Err(StoreError::Refused { .. })),
        "{again:?}"
    );
    assert_eq!(
        target.latest_change().await.expect("latest"),
        report.latest_change + 1
    );

    sqlite.close().await;
    target.close().await;
    db.drop_now().await;
}

/// A store connected with a password (the test server may ignore it) never shows it.
#[tokio::test]
async fn a_store_does_not_show_its_password() {
    let Some(db) = fresh_db().await else { return };
    let (scheme, rest) = db.url.split_once("://").expect("a URL");
    let (user, host) = match rest.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or(userinfo), host),
        None => ("postgres", rest),
    };
    let url = format!("{scheme}://{user}:pw-never-shown@{host}");
    match PostgresStore::connect_with(&url, 1).await {
        Ok(store) => {
            assert!(
                !format!("{store:?}").contains("pw-never-shown"),
                "{store:?}"
            );
            store.close().await;
        }
        // A server that checks passwords refuses this one; the error must not show it either.
        Err(e) => assert!(!format!("{e:?} {e}").contains("pw-never-shown"), "{e:?}"),
    }
    db.drop_now().await;
}
