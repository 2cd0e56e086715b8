//! Sensitive config at rest and in answers: a droplet's cloud-init `user_data` reaches the
//! provider, and nowhere else — not the database, the log, the journal, the operations API
//! or any answer — while operations show their progress without lease internals or input.

use serde_json::{Value, json};

use crate::support::{DOCK, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_reaches_the_provider_and_is_sealed_everywhere_else() {
    let app = spawn_app().await;
    let secret = format!("export DB_PASSWORD=canary-{:016x}", rand::random::<u64>());
    let user_data = format!("#!/bin/sh\n{secret}\n");
    let created = app
        .post(
            "/api/v1/servers",
            json!({
                "dock": DOCK, "name": "with-init", "region": "nyc3", "size": "s-1vcpu-1gb",
                "image": "ubuntu-24-04-x64", "user_data": user_data
            }),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let op_id = created.body["operation_id"].as_str().unwrap().to_string();
    app.wait_state(&id, "provisioned").await;

    // The provider was handed the value itself, opened in memory for the call.
    let sent: Vec<Value> = app
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/droplets")
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["user_data"], user_data);

    // Operations show what they did, never their input or the worker's lease.
    let op = app.get(&format!("/api/v1/operations/{op_id}")).await;
    assert_eq!(op.status, 200, "{}", op.body);
    assert_eq!(op.body["state"], "succeeded");
    assert_eq!(op.body["kind"], "provision");
    let steps: Vec<&str> = op.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["create_sent", "created"], "{}", op.body);
    assert!(
        op.body["api_calls"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let listed = app.get("/api/v1/operations?limit=10").await;
    assert_eq!(listed.status, 200);
    // The sealed input and the store's own bookkeeping stay out; which worker holds the
    // operation and until when are shown as `running_on` and `lease_expires_at`.
    for shown in std::iter::once(&op.body).chain(listed.body["items"].as_array().unwrap()) {
        for hidden in ["input", "lease_owner", "generation", "org_id"] {
            assert!(shown.get(hidden).is_none(), "{hidden} shown: {shown}");
        }
    }
    // The sandbox's request log is the test's own; the server's answers, outputs and files
    // are searched for the secret in every encoding.
    app.finish_keeping_secret(&[secret]);
}
