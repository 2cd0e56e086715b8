//! Cursor pagination through the HTTP API of the real server: rows seeded through the store
//! (a second handle on the server's database file), read page by page.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use stackdock_core::{
    DockId, DockName, OrgId, ProvisioningSource, ProvisioningState, Resource, ResourceDetails,
    ResourceId, ResourceKind,
};
use stackdock_store::{Batch, SqliteStore, Store, Write};

use crate::support::{DOCK, TestApp, spawn_app, wait_for};

/// One page as answered: status, body and `Link` header.
struct Answer {
    status: u16,
    body: Value,
    link: Option<String>,
}

async fn page(app: &TestApp, path: &str) -> Answer {
    let resp = app
        .http
        .get(format!("{}{path}", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let link = resp
        .headers()
        .get("link")
        .map(|v| v.to_str().expect("ASCII link").to_string());
    let bytes = resp.bytes().await.expect("body").to_vec();
    app.saw(bytes.clone());
    let body = serde_json::from_slice(&bytes).expect("JSON body");
    Answer { status, body, link }
}

/// The path a `Link: <path>; rel="next"` header points at.
fn next_of(link: &str) -> String {
    link.strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("not a next link: {link}"))
        .to_string()
}

/// Reads every page from `first`, following each page's `Link` (checked to carry the same
/// cursor as `next`, and to be there exactly when `next` is), calling `between` after each.
async fn walk(app: &TestApp, first: &str, mut between: impl AsyncFnMut()) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut path = first.to_string();
    loop {
        let a = page(app, &path).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        let items = a.body["items"].as_array().expect("items").clone();
        let next = a.body["next"].as_str().map(str::to_string);
        pages.push(items);
        match (next, a.link) {
            (None, None) => return pages,
            (Some(next), Some(link)) => {
                path = next_of(&link);
                assert!(
                    path.ends_with(&format!("cursor={next}")),
                    "{link} does not carry {next}"
                );
            }
            (next, link) => panic!("next {next:?} but Link {link:?} on {path}"),
        }
        between().await;
    }
}

struct Seeder {
    store: SqliteStore,
    org: OrgId,
    dock: DockId,
}

impl Seeder {
    /// A second handle on the running server's database, as another process would hold one.
    async fn open(app: &TestApp) -> Self {
        let store = SqliteStore::open(&app.data_dir.path().join("stackdock.db"))
            .await
            .expect("open the database");
        let org = store.first_org().await.expect("org").expect("an org");
        let name = DockName::try_from(DOCK.to_string()).expect("dock name");
        let dock = store
            .find_dock_by_name(org, &name)
            .await
            .expect("dock")
            .expect("the test's dock")
            .id;
        Self { store, org, dock }
    }

    /// A row as discovery records one, of `kind`, made at `created_at`.
    fn row(&self, kind: ResourceKind, state: ProvisioningState, created_at: Timestamp) -> Resource {
        let id = ResourceId::new();
        Resource {
            id,
            org_id: self.org,
            dock_id: self.dock,
            provider: "digitalocean".into(),
            provider_resource_id: Some(format!("seed-{}", id.as_uuid().simple())),
            name: format!("seed-{}", &id.as_uuid().simple().to_string()[..12]),
            status: None,
            provisioning_source: ProvisioningSource::Manual,
            provisioning_state: state,
            provisioned_at: None,
            full_api_data: serde_json::json!({}),
            error: None,
            marker: None,
            created_at,
            updated_at: created_at,
            version: 1,
            details: ResourceDetails::empty(kind),
        }
    }

    async fn insert(&self, rows: &[Resource]) {
        let mut batch = Batch::new();
        for r in rows {
            batch = batch.push(Write::InsertResource(r.clone()));
        }
        self.store.apply(batch).await.expect("seed");
    }
}

type Timestamp = chrono::DateTime<chrono::Utc>;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_rows_walked_while_rows_are_inserted_are_each_seen_once() {
    let app = spawn_app().await;
    let seeder = Arc::new(Seeder::open(&app).await);
    let base = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let mut present = HashSet::new();
    for chunk in 0..10 {
        let rows: Vec<Resource> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i: i64| {
                // Four rows to a millisecond, one in each table: ties the id must break.
                let at = base + chrono::TimeDelta::milliseconds(i / 4);
                let kind = ResourceKind::ALL[(i % 4) as usize];
                seeder.row(kind, ProvisioningState::Provisioned, at)
            })
            .collect();
        present.extend(rows.iter().map(|r| r.id.to_string()));
        seeder.insert(&rows).await;
    }
    assert_eq!(present.len(), 10_000);

    // Another writer inserts rows for as long as the walk lasts; what it may have written is
    // noted before it writes.
    let inserted = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let writer = {
        let (seeder, inserted, stop) = (seeder.clone(), inserted.clone(), stop.clone());
        let written = written.clone();
        tokio::spawn(async move {
            loop {
                let rows: Vec<Resource> = ResourceKind::ALL
                    .iter()
                    .map(|k| seeder.row(*k, ProvisioningState::Provisioned, chrono::Utc::now()))
                    .collect();
                let ids = rows.iter().map(|r| r.id.to_string());
                written.lock().expect("lock").extend(ids);
                tokio::select! {
                    () = stop.notified() => return,
                    () = seeder.insert(&rows) => {}
                }
                inserted.fetch_add(rows.len(), Ordering::SeqCst);
            }
        })
    };

    // Each next page is read only once the writer has inserted since the page before.
    let pages = walk(&app, "/api/v1/resources?limit=100", async || {
        let before = inserted.load(Ordering::SeqCst);
        wait_for(|| async { (inserted.load(Ordering::SeqCst) > before).then_some(()) })
            .await
            .expect("the writer inserts while the pages are read");
    })
    .await;
    stop.notify_one();
    writer.await.expect("writer");
    assert!(
        inserted.load(Ordering::SeqCst) >= 99 * 4,
        "rows went in between every page"
    );

    let written = written.lock().expect("lock");
    let mut seen = HashSet::new();
    for (n, items) in pages.iter().enumerate() {
        if n + 1 < pages.len() {
            assert_eq!(items.len(), 100, "page {n} is short but not the last");
        }
        for id in ids(items) {
            assert!(
                present.contains(&id) || written.contains(&id),
                "{id} is no row of this test"
            );
            assert!(seen.insert(id.clone()), "{id} came twice (page {n})");
        }
    }
    let missing: Vec<&String> = present.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{} rows skipped, e.g. {:?}",
        missing.len(),
        &missing[..1]
    );
    // Rows the writer made before the first page was read may come in the walk too.
    assert!(pages.len() >= 100, "{} pages", pages.len());
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_leave_rows_out_across_pages_and_bad_paging_input_names_the_parameter() {
    let app = spawn_app().await;
    let seeder = Seeder::open(&app).await;
    let base = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let mut rows = Vec::new();
    for i in 0..120_i64 {
        let kind = if i % 3 == 0 {
            ResourceKind::Domain
        } else {
            ResourceKind::Server
        };
        let state = if i % 2 == 0 {
            ProvisioningState::Failed
        } else {
            ProvisioningState::Provisioned
        };
        rows.push(seeder.row(kind, state, base + chrono::TimeDelta::seconds(i / 2)));
    }
    seeder.insert(&rows).await;
    let newest_first = |keep: &dyn Fn(&Resource) -> bool| {
        let mut v: Vec<&Resource> = rows.iter().filter(|r| keep(r)).collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id.to_string())));
        v.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>()
    };

    let failed_servers = newest_first(&|r| {
        r.kind() == ResourceKind::Server && r.provisioning_state == ProvisioningState::Failed
    });
    assert!(failed_servers.len() > 7 * 3, "several pages");
    let pages = walk(&app, "/api/v1/servers?state=failed&limit=7", async || {}).await;
    assert!(pages.iter().all(|p| p.len() <= 7));
    assert_eq!(
        pages
            .concat()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        failed_servers,
        "the failed servers, newest first; no domain and no provisioned server"
    );
    let domains = newest_first(&|r| r.kind() == ResourceKind::Domain);
    let pages = walk(&app, "/api/v1/resources?kind=domain&limit=9", async || {}).await;
    assert_eq!(ids(&pages.concat()), domains);

    // A cursor is for its listing only.
    let first = page(&app, "/api/v1/servers?state=failed&limit=7").await;
    let cursor = first.body["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    for (path, what) in [
        (
            format!("/api/v1/domains?state=failed&cursor={cursor}"),
            "another collection",
        ),
        (
            format!("/api/v1/servers?state=provisioned&cursor={cursor}"),
            "another filter",
        ),
        (format!("/api/v1/servers?cursor={cursor}"), "no filter"),
        (
            "/api/v1/servers?cursor=not-a-cursor!".to_string(),
            "malformed",
        ),
        ("/api/v1/audit?cursor=e30".to_string(), "not ours"),
    ] {
        let a = page(&app, &path).await;
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "bad_request", "{what}");
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("cursor:"), "{what}: {message}");
    }
    for limit in ["0", "1001", "ten", "-5"] {
        for collection in [
            "resources",
            "docks",
            "audit",
            "members",
            "tokens",
            "operations",
        ] {
            let a = page(&app, &format!("/api/v1/{collection}?limit={limit}")).await;
            assert_eq!(a.status, 400, "{collection} limit={limit}: {}", a.body);
            let message = a.body["error"]["message"].as_str().unwrap();
            assert!(message.starts_with("limit:"), "{message}");
        }
    }
    let the_most = page(&app, "/api/v1/resources?limit=1000").await;
    assert_eq!(the_most.status, 200);
    assert_eq!(the_most.body["items"].as_array().unwrap().len(), 120);
    assert!(the_most.body["next"].is_null() && the_most.link.is_none());

    // Every collection answers the same shape, a first page of 100 by default.
    let id = &rows[1].id;
    for path in [
        "/api/v1/resources".to_string(),
        "/api/v1/servers".to_string(),
        "/api/v1/web-services".to_string(),
        "/api/v1/domains".to_string(),
        "/api/v1/databases".to_string(),
        "/api/v1/docks".to_string(),
        "/api/v1/operations".to_string(),
        "/api/v1/audit".to_string(),
        format!("/api/v1/servers/{id}/api-calls"),
        "/api/v1/members".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/keys".to_string(),
    ] {
        let a = page(&app, &path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let items = a.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {}", a.body));
        assert!(items.len() <= 100, "{path}");
        assert!(a.body.get("next").is_some(), "{path}: {}", a.body);
        assert_eq!(a.body["next"].is_string(), a.link.is_some(), "{path}");
    }
    let resources = page(&app, "/api/v1/resources").await;
    assert_eq!(resources.body["items"].as_array().unwrap().len(), 100);
    assert!(
        resources.link.is_some(),
        "120 rows are two pages of the default 100"
    );

    // The audit log pages the same way, its filters kept in the Link.
    let audit = walk(&app, "/api/v1/audit?limit=1&outcome=success", async || {}).await;
    assert!(audit.len() >= 2, "{audit:?}");
    assert!(audit.iter().flatten().all(|r| r["outcome"] == "success"));
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_a_page_says_how_to_get_the_next_and_walks_them_all() {
    let app = spawn_app().await;
    let seeder = Seeder::open(&app).await;
    let base = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let rows: Vec<Resource> = (0..25_i64)
        .map(|i| {
            let state = if i < 20 {
                ProvisioningState::Provisioned
            } else {
                ProvisioningState::Failed
            };
            seeder.row(
                ResourceKind::Server,
                state,
                base + chrono::TimeDelta::seconds(i),
            )
        })
        .collect();
    seeder.insert(&rows).await;

    let (code, out, err) = app
        .cli(&["list", "--state", "provisioned", "--limit", "8"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 8, "{out}");
    let hint = err
        .lines()
        .find(|l| l.starts_with("more:"))
        .expect("a hint");
    let cursor = hint
        .split_whitespace()
        .skip_while(|w| *w != "--cursor")
        .nth(1)
        .expect("the cursor in the hint");
    let (code, out, err) = app
        .cli(&[
            "list",
            "--state",
            "provisioned",
            "--limit",
            "8",
            "--cursor",
            cursor,
        ])
        .await;
    assert_eq!((code, out.lines().count()), (0, 8), "{out}{err}");

    let (code, out, err) = app
        .cli(&[
            "list",
            "--state",
            "provisioned",
            "--limit",
            "8",
            "--all",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&out).expect("one JSON document");
    let got: HashSet<String> = ids(all.as_array().expect("--all --json: the items"))
        .into_iter()
        .collect();
    let want: HashSet<String> = rows[..20].iter().map(|r| r.id.to_string()).collect();
    assert_eq!(got, want, "every provisioned row, no failed one");
    assert!(!err.contains("more:"), "{err}");

    let (code, out, _) = app.cli(&["list", "--limit", "10", "--json"]).await;
    assert_eq!(code, 0);
    let first: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert!(first["next"].is_string());

    let (code, _, err) = app.cli(&["list", "--limit", "0"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limit"), "{err}");
    let (code, _, err) = app.cli(&["audit", "--cursor", "nope"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cursor"), "{err}");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_log_is_read_in_pages_and_followed_from_its_last_line() {
    let app = spawn_app().await;
    let seeder = Seeder::open(&app).await;
    let now = chrono::Utc::now();
    let ours = seeder.row(
        ResourceKind::WebService,
        ProvisioningState::Provisioned,
        now,
    );
    let other = seeder.row(
        ResourceKind::WebService,
        ProvisioningState::Provisioned,
        now,
    );
    seeder.insert(&[ours.clone(), other.clone()]).await;
    // Interleaved with another resource's lines, which no page of ours may show.
    let op = stackdock_core::OperationId::new();
    let mut lines = Vec::new();
    for i in 0..23 {
        for (r, who) in [(&ours, "ours"), (&other, "other")] {
            lines.push(stackdock_store::DeployLogLine {
                seq: 0,
                org_id: seeder.org,
                resource_id: r.id,
                operation_id: op,
                line: format!("{who} {i}"),
                at: now,
            });
        }
    }
    seeder.store.append_deploy_log(lines).await.expect("log");
    let logs = format!("/api/v1/resources/{}/logs", ours.id);

    let pages = walk(&app, &format!("{logs}?limit=5"), async || {}).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [5, 5, 5, 5, 3]
    );
    let read: Vec<&str> = pages
        .iter()
        .flatten()
        .map(|l| l["line"].as_str().expect("line"))
        .collect();
    let want: Vec<String> = (0..23).map(|i| format!("ours {i}")).collect();
    assert_eq!(read, want);

    // A follower reads on after the last line it has; at the end, an empty page.
    let seqs: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|l| l["seq"].as_i64().expect("seq"))
        .collect();
    let rest = page(&app, &format!("{logs}?after={}", seqs[19])).await;
    assert_eq!(rest.status, 200);
    let rest: Vec<&str> = rest.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["line"].as_str().expect("line"))
        .collect();
    assert_eq!(rest, ["ours 20", "ours 21", "ours 22"]);
    let end = page(&app, &format!("{logs}?after={}", seqs[22])).await;
    assert_eq!(end.body["items"], serde_json::json!([]));
    assert_eq!(end.body["next"], Value::Null);

    // `after` and `cursor` together, or a negative `after`, are refused by name.
    let first = page(&app, &format!("{logs}?limit=5")).await;
    let cursor = first.body["next"].as_str().expect("a next page");
    for bad in [format!("after=3&cursor={cursor}"), "after=-1".to_string()] {
        let a = page(&app, &format!("{logs}?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        let message = a.body["error"]["message"].as_str().expect("message");
        assert!(message.starts_with("after:"), "{bad}: {message}");
    }
    app.finish();
}
