//! The audit log holds a row for every action a user takes through the API — provisioning,
//! docks, members, tokens, keys, passwords and sign-ins — with its outcome, the refused ones
//! included, and the rows of one request carry that request's id.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DOCK, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_leaves_its_audit_row() {
    let app = spawn_app().await;
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut expect = |action: &str, outcome: &str| {
        expected.insert((action.to_string(), outcome.to_string()));
    };

    // Provisioning: request, settle, cancel, deprovision.
    let made = app.provision("audited", "s-1vcpu-1gb").await;
    let id = made["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "provisioned").await;
    expect("server.provision", "requested");
    expect("server.provision", "success");
    let gone = app.delete(&format!("/api/v1/servers/{id}")).await;
    assert_eq!(gone.status, 202, "{}", gone.body);
    app.wait_state(&id, "deprovisioned").await;
    expect("server.deprovision", "requested");
    expect("server.deprovision", "success");

    // Docks.
    let second = app
        .post(
            "/api/v1/docks",
            json!({"provider": "digitalocean", "name": "second", "api_key": app.canary,
                   "api_url": app.sandbox.base_url()}),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    expect("dock.add", "success");
    let patched = app
        .request(
            Method::PATCH,
            "/api/v1/docks/second",
            Some(json!({"rate_limit": "5/s"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    expect("dock.update", "success");
    let synced = app.sync(DOCK).await;
    assert_eq!(synced["state"], "succeeded");
    expect("dock.sync", "requested");
    let removed = app.delete("/api/v1/docks/second").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    expect("dock.remove", "success");

    // Members, tokens, keys, a password and a sign-in, and one refusal.
    let member = app
        .post(
            "/api/v1/members",
            json!({"email": "audited@example.test", "role": "viewer"}),
        )
        .await;
    assert_eq!(member.status, 201);
    expect("member.add", "success");
    let user = member.body["user_id"].as_str().unwrap().to_string();
    let token = app
        .post("/api/v1/tokens", json!({"user_id": user, "name": "ci"}))
        .await;
    assert_eq!(token.status, 201);
    expect("token.create", "success");
    let viewer = token.body["token"].as_str().unwrap().to_string();
    let refused = app
        .request_as(
            Method::POST,
            "/api/v1/servers",
            Some(json!({})),
            Some(&viewer),
        )
        .await;
    assert_eq!(refused.status, 403);
    expect("POST /api/v1/{collection}", "denied");
    let revoked = app
        .delete(&format!(
            "/api/v1/tokens/{}",
            token.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(revoked.status, 200);
    expect("token.revoke", "success");
    let role = app
        .request(
            Method::PATCH,
            &format!("/api/v1/members/{user}"),
            Some(json!({"role": "developer"})),
        )
        .await;
    assert_eq!(role.status, 200);
    expect("member.role", "success");
    assert_eq!(
        app.delete(&format!("/api/v1/members/{user}")).await.status,
        204
    );
    expect("member.remove", "success");
    let rotated = app.post("/api/v1/keys/rotate", json!({})).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    expect("keys.rotate", "success");
    let old = rotated.body["previous"].as_str().unwrap().to_string();
    assert_eq!(app.delete(&format!("/api/v1/keys/{old}")).await.status, 204);
    expect("keys.retire", "success");
    let password = "an-audited-password";
    let set = app
        .request(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(set.status, 204);
    expect("user.password", "success");
    let email = app.get("/api/v1/me").await.body["email"].clone();
    for (pw, outcome) in [("not-the-password", "failure"), (password, "success")] {
        let r = app
            .request_as(
                Method::POST,
                "/api/v1/sessions",
                Some(json!({"email": email, "password": pw})),
                None,
            )
            .await;
        assert!(r.status == 201 || r.status == 401, "{}", r.body);
        expect("session.create", outcome);
    }

    let rows = app.get("/api/v1/audit?limit=1000").await.body;
    let seen: BTreeSet<(String, String)> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r: &Value| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "actions without their audit row: {missing:?}"
    );
    app.finish_keeping_secret(&[password.to_string()]);
}
