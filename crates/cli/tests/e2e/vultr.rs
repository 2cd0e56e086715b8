//! Vultr through the real binary: a dock's key checked with `GET /account` before it is
//! saved, and one resource of each kind (an instance, a domain from its name alone, a managed
//! database whose admin password is found nowhere StackDock writes or answers).

use std::time::Duration;

use serde_json::{Value, json};
use stackdock_sandbox::{VultrSandbox, VultrSandboxConfig};

use crate::support::{TestApp, spawn_app, wait_for};

const VULTR_DOCK: &str = "vultr";

/// A Vultr sandbox taking the app's canary key (so the canary scan covers it too).
async fn vultr_for(app: &TestApp) -> VultrSandbox {
    VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![app.canary.clone()],
        ready_after: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("vultr sandbox")
}

fn add_body(name: &str, key: &str, url: &str) -> Value {
    json!({"provider": "vultr", "name": name, "api_key": key, "api_url": url})
}

async fn wait_row(app: &TestApp, collection: &str, id: &str, state: &str) -> Value {
    wait_for(|| async {
        let r = app.get(&format!("/api/v1/{collection}/{id}")).await.body;
        (r["provisioning_state"] == state).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("{collection} {id} never became {state}"))
}

/// The id of the only row of `collection`.
async fn only_row(app: &TestApp, collection: &str) -> Value {
    let rows = app.get(&format!("/api/v1/{collection}")).await.body;
    let rows = rows["items"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vultr_dock_is_checked_and_takes_one_resource_of_each_kind() {
    let app = spawn_app().await;
    let vultr = vultr_for(&app).await;
    let url = vultr.base_url();

    let refused = app
        .post("/api/v1/docks", add_body("v-bad", "not-a-vultr-key", &url))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Invalid API token"),
        "{}",
        refused.body
    );
    let added = app
        .post("/api/v1/docks", add_body(VULTR_DOCK, &app.canary, &url))
        .await;
    assert_eq!(added.status, 201, "{}", added.body);

    for args in [
        vec![
            "provision",
            "server",
            "--dock",
            VULTR_DOCK,
            "--name",
            "web-1",
            "--region",
            "ewr",
            "--set",
            "plan=vc2-1c-1gb",
            "--set",
            "os_id=2284",
        ],
        vec![
            "provision",
            "domain",
            "--dock",
            VULTR_DOCK,
            "--name",
            "example.com",
        ],
        vec![
            "provision",
            "database",
            "--dock",
            VULTR_DOCK,
            "--name",
            "orders",
            "--region",
            "ewr",
            "--set",
            "engine=pg",
            "--set",
            "engine_version=16",
            "--set",
            "plan=vultr-dbaas-hobbyist-cc-1-25-1",
        ],
    ] {
        let (code, out, err) = app.cli(&args).await;
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
        assert!(out.contains("provisioned"), "{args:?}: {out}");
    }
    assert_eq!(vultr.instances().len(), 1);
    assert_eq!(vultr.domains().len(), 1);

    let database = only_row(&app, "databases").await;
    assert_eq!(database["engine"], "pg");
    assert!(
        database["host"]
            .as_str()
            .is_some_and(|h| h.ends_with(".vultrdb.com"))
    );
    let id = database["id"].as_str().expect("an id").to_string();
    let (code, out, err) = app.cli(&["deprovision", &id]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    wait_row(&app, "databases", &id, "deprovisioned").await;
    assert_eq!(vultr.databases(), Vec::<Value>::new());

    let passwords = vultr.database_passwords();
    assert_eq!(passwords.len(), 1, "one database made");
    app.finish_keeping_secret(&passwords);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_adds_what_was_made_elsewhere_at_vultr_once() {
    let app = spawn_app().await;
    let vultr = vultr_for(&app).await;
    let added = app
        .post(
            "/api/v1/docks",
            add_body(VULTR_DOCK, &app.canary, &vultr.base_url()),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    for (collection, body) in [
        (
            "servers",
            json!({"dock": VULTR_DOCK, "name": "ours", "region": "ewr",
                   "plan": "vc2-1c-1gb", "os_id": 2284}),
        ),
        (
            "domains",
            json!({"dock": VULTR_DOCK, "name": "ours.example.com"}),
        ),
    ] {
        let made = app.post(&format!("/api/v1/{collection}"), body).await;
        assert_eq!(made.status, 202, "{}", made.body);
        let id = made.body["id"].as_str().expect("an id");
        wait_row(&app, collection, id, "provisioned").await;
    }
    vultr.create_instance_directly("theirs", "ams", "vc2-1c-2gb", &[]);
    vultr.create_domain_directly("theirs.example.org");
    vultr.create_database_directly(
        "theirs",
        "pg",
        "16",
        "ewr",
        "vultr-dbaas-hobbyist-cc-1-25-1",
    );

    for added in [3, 0] {
        let op = app.sync(VULTR_DOCK).await;
        assert_eq!(op["state"], "succeeded", "{op}");
        assert_eq!(
            op["steps"][0]["output"],
            json!({"found": 5, "added": added})
        );
    }
    let mut seen = Vec::new();
    for collection in ["servers", "domains", "databases"] {
        let rows = app.get(&format!("/api/v1/{collection}")).await.body;
        for r in rows["items"].as_array().expect("rows") {
            seen.push((
                collection,
                r["name"].as_str().unwrap_or_default().to_string(),
                r["provisioning_source"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    seen.sort();
    let expected = [
        ("databases", "theirs", "manual"),
        ("domains", "ours.example.com", "api"),
        ("domains", "theirs.example.org", "manual"),
        ("servers", "ours", "api"),
        ("servers", "theirs", "manual"),
    ]
    .map(|(c, n, s)| (c, n.to_string(), s.to_string()));
    assert_eq!(seen, expected);
    app.finish_keeping_secret(&vultr.database_passwords());
}
