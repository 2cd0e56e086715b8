//! Domains and databases through the real binary: provisioned with only a name, a
//! cluster's password kept out of everything StackDock writes or answers, failed provisions
//! that leave nothing behind at the provider, discovery that tracks each once, and what an
//! operation waiting on the provider shows.

use serde_json::{Value, json};
use stackdock_sandbox::Fault;

use crate::support::{DOCK, TestApp, spawn_app, wait_for};

async fn provision(app: &TestApp, collection: &str, body: Value) -> String {
    let r = app.post(&format!("/api/v1/{collection}"), body).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_and_a_database_need_only_a_name_and_the_password_stays_out() {
    let app = spawn_app().await;

    let (code, out, err) = app
        .cli(&[
            "provision",
            "domain",
            "--dock",
            DOCK,
            "--name",
            "shop.example.com",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let domain: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(domain["provisioning_state"], "provisioned");
    assert_eq!(domain["provider_resource_id"], "shop.example.com");
    let records = domain["records"].as_array().expect("records");
    assert!(
        records.iter().any(|r| r["type"] == "TXT"
            && r["name"] == "_stackdock"
            && r["data"] == domain["marker"]),
        "the marker record: {records:?}"
    );

    let (code, out, err) = app
        .cli(&[
            "provision",
            "database",
            "--dock",
            DOCK,
            "--name",
            "orders",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let database: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(database["provisioning_state"], "provisioned");
    assert_eq!(database["status"], "online");
    assert_eq!(database["engine"], "pg");
    assert_eq!(database["region"], "nyc1");
    assert!(
        database["host"]
            .as_str()
            .is_some_and(|h| h.starts_with("orders-"))
    );

    // Everything StackDock answers about the cluster, each searched for its password below.
    let id = database["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/databases/{id}"),
        format!("/api/v1/databases/{id}/api-calls"),
        "/api/v1/resources".to_string(),
        "/api/v1/operations".to_string(),
        "/api/v1/audit".to_string(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let cluster = app.sandbox.databases().pop().expect("the cluster");
    let password = cluster["connection"]["password"]
        .as_str()
        .expect("password")
        .to_string();

    for id in [domain["id"].as_str().unwrap(), id] {
        let (code, out, err) = app.cli(&["deprovision", id]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    assert!(app.sandbox.domains().is_empty());
    assert!(app.sandbox.databases().is_empty());
    // Searched for, as it is and encoded, in every answer and file.
    app.finish_keeping_secret(&[password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_domain_and_database_provisions_leave_nothing_behind() {
    let app = spawn_app().await;

    // Refused by DigitalOcean outright.
    let big = provision(
        &app,
        "databases",
        json!({"dock": DOCK, "name": "big", "size": "db-s-99vcpu"}),
    )
    .await;
    let failed = app.wait_resource("databases", &big, "failed").await;
    assert_eq!(failed["error"]["code"], "unprocessable_entity", "{failed}");

    // The domain is made, then one of its records is refused: the domain is removed again.
    app.sandbox.inject(
        Fault::error_with(
            Some("POST"),
            "/v2/domains/",
            422,
            "unprocessable_entity",
            "Data is invalid.",
            1,
        )
        .after(1),
    );
    let half = provision(
        &app,
        "domains",
        json!({"dock": DOCK, "name": "half.example.com",
               "records": [{"type": "A", "name": "www", "data": "192.0.2.1"}]}),
    )
    .await;
    let failed = app.wait_resource("domains", &half, "failed").await;
    assert_eq!(failed["error"]["message"], "Data is invalid.", "{failed}");

    assert!(
        app.sandbox.databases().is_empty(),
        "{:?}",
        app.sandbox.databases()
    );
    assert!(
        app.sandbox.domains().is_empty(),
        "{:?}",
        app.sandbox.domains()
    );

    // A domain the user already has is refused by name, and left alone.
    app.sandbox.create_domain_directly("theirs.example.com");
    let theirs = provision(
        &app,
        "domains",
        json!({"dock": DOCK, "name": "theirs.example.com"}),
    )
    .await;
    let failed = app.wait_resource("domains", &theirs, "failed").await;
    assert_eq!(failed["error"]["code"], "invalid_config", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name: "),
        "{failed}"
    );
    let (code, _, _) = app.cli(&["deprovision", &theirs]).await;
    assert_eq!(code, 0, "a failed row is cleaned up");
    assert_eq!(
        app.sandbox.domains().len(),
        1,
        "their domain is still there"
    );
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_tracks_domains_and_databases_made_elsewhere_once() {
    let app = spawn_app().await;
    let ours = provision(
        &app,
        "domains",
        json!({"dock": DOCK, "name": "ours.example.com"}),
    )
    .await;
    app.wait_resource("domains", &ours, "provisioned").await;
    app.sandbox.create_domain_directly("theirs.example.org");
    app.sandbox
        .create_database_directly("theirs", "mysql", "fra1", "db-s-1vcpu-1gb", &["team-a"]);

    for (round, added) in [(1, 2), (2, 0)] {
        let op = app
            .post(&format!("/api/v1/docks/{DOCK}/sync"), json!({}))
            .await;
        assert_eq!(op.status, 202, "{}", op.body);
        let id = op.body["id"].as_str().unwrap().to_string();
        let done = wait_for(|| async {
            let o = app.get(&format!("/api/v1/operations/{id}")).await.body;
            (o["state"] == "succeeded").then_some(o)
        })
        .await
        .expect("sync finished");
        assert_eq!(
            done["steps"][0]["output"],
            json!({"found": 3, "added": added}),
            "round {round}"
        );
    }

    // The filter leaves out StackDock's own domain and the discovered database.
    let manual = app.get("/api/v1/domains?source=manual").await.body;
    let names: Vec<&str> = manual["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["theirs.example.org"]);
    let all = app.get("/api/v1/domains").await.body;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    let databases = app.get("/api/v1/databases?source=manual").await.body;
    let databases = databases["items"].as_array().unwrap();
    assert_eq!(databases.len(), 1);
    assert_eq!(databases[0]["engine"], "mysql");
    assert_eq!(databases[0]["provisioning_state"], "provisioned");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_waiting_on_the_provider_says_when_it_is_checked_next() {
    let app = spawn_app().await;
    // The cluster stays `creating` until the test lets it come online.
    app.sandbox.hold_databases_creating(true);
    let id = provision(&app, "databases", json!({"dock": DOCK, "name": "held"})).await;
    let operation = |state: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            let ops = app
                .get(&format!("/api/v1/operations?resource_id={id}"))
                .await
                .body;
            let op = ops["items"].as_array()?.first()?.clone();
            (op["state"] == state).then_some(op)
        }
    };
    let waiting = wait_for(|| operation("waiting"))
        .await
        .expect("the provision waits on the provider");
    assert!(
        waiting["running_on"].is_null(),
        "a parked operation holds no worker: {waiting}"
    );
    assert!(waiting["lease_expires_at"].is_null(), "{waiting}");
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(waiting["waiting_since"].clone()).expect("waiting_since");
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(waiting["next_run_at"].clone()).expect("next_run_at");
    assert!(
        next > since,
        "the next check is after the wait began: {waiting}"
    );

    app.sandbox.hold_databases_creating(false);
    app.wait_resource("databases", &id, "provisioned").await;
    let done = wait_for(|| operation("succeeded")).await.expect("settled");
    assert!(
        done["next_run_at"].is_null(),
        "nothing is next for a settled operation: {done}"
    );
    assert!(done["running_on"].is_null(), "{done}");
    app.finish();
}
