//! Provision and deprovision against the DigitalOcean sandbox, including provider errors,
//! retries and rate limits.

use std::time::Duration;

use stackdock_sandbox::Fault;

use crate::support::{droplet_ids, spawn_app};

fn audit_outcomes(audit: &[serde_json::Value], resource: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = audit
        .iter()
        .filter(|a| {
            a["resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(resource))
        })
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.reverse(); // oldest first
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_then_deprovision_leaves_nothing_behind() {
    let app = spawn_app().await;
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["provisioning_source"], "api");
    assert!(
        created["marker"]
            .as_str()
            .unwrap()
            .starts_with("stackdock-")
    );

    let ready = app.wait_state(id, "provisioned").await;
    let ipv4 = ready["ipv4"].as_str().expect("an IPv4 once provisioned");
    assert!(ipv4.parse::<std::net::Ipv4Addr>().is_ok(), "{ipv4}");
    assert_eq!(ready["status"], "active");
    assert_eq!(ready["region"], "nyc3");
    assert_eq!(ready["size"], "s-1vcpu-1gb");
    assert!(ready["provisioned_at"].is_string());
    assert!(ready["error"].is_null());
    let droplets = app.sandbox.droplets();
    assert_eq!(droplets.len(), 1);
    assert_eq!(
        ready["provider_resource_id"].as_str().unwrap(),
        droplets[0]["id"].to_string()
    );
    let tags = droplets[0]["tags"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t == &created["marker"]),
        "droplet not tagged with the marker: {tags:?}"
    );
    assert_eq!(ready["full_api_data"]["id"], droplets[0]["id"]);

    // Every provider call is journaled for the resource.
    let calls = app.api_calls(id).await;
    assert!(
        calls
            .iter()
            .any(|c| c["method"] == "POST" && c["path"] == "/v2/droplets" && c["status"] == 202)
    );
    assert!(
        calls
            .iter()
            .any(|c| c["method"] == "GET" && c["status"] == 200)
    );
    assert!(
        calls
            .iter()
            .all(|c| c["duration_ms"].is_u64() && c["request_id"].is_string())
    );

    let gone = app.delete(&format!("/api/v1/servers/{id}")).await;
    assert_eq!(gone.status, 202, "{}", gone.body);
    assert_eq!(gone.body["provisioning_state"], "deprovisioning");
    app.wait_state(id, "deprovisioned").await;
    assert!(
        app.sandbox.droplets().is_empty(),
        "droplet left at the provider"
    );

    let audit = app.audit().await;
    assert_eq!(
        audit_outcomes(&audit, id),
        vec![
            ("server.provision".into(), "requested".into()),
            ("server.provision".into(), "success".into()),
            ("server.deprovision".into(), "requested".into()),
            ("server.deprovision".into(), "success".into()),
        ]
    );
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_422_fails_with_its_message_and_code_and_leaves_nothing() {
    let app = spawn_app().await;
    let created = app.provision("web-1", "s-99vcpu-999gb").await;
    let id = created["id"].as_str().unwrap();
    let failed = app.wait_state(id, "failed").await;
    assert_eq!(failed["error"]["code"], "unprocessable_entity");
    assert_eq!(
        failed["error"]["message"],
        "You specified an invalid size for Droplet creation."
    );
    assert!(failed["error"]["timestamp"].is_string());
    assert!(failed["provider_resource_id"].is_null());
    assert!(app.sandbox.droplets().is_empty());

    let audit = app.audit().await;
    let outcomes = audit_outcomes(&audit, id);
    assert_eq!(
        outcomes.last().unwrap(),
        &("server.provision".to_string(), "failure".to_string())
    );
    let failure = audit.iter().find(|a| a["outcome"] == "failure").unwrap();
    assert_eq!(failure["details"]["code"], "unprocessable_entity");

    // A failed resource can be cleaned up; nothing exists at the provider, so it settles.
    assert_eq!(
        app.delete(&format!("/api/v1/servers/{id}")).await.status,
        202
    );
    app.wait_state(id, "deprovisioned").await;
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_and_the_retry_is_journaled() {
    let app = spawn_app().await;
    app.sandbox
        .inject(Fault::error(Some("POST"), "/v2/droplets", 500, 1));
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    app.wait_state(id, "provisioned").await;
    assert_eq!(droplet_ids(&app).len(), 1, "exactly one droplet");

    let posts: Vec<_> = app
        .api_calls(id)
        .await
        .into_iter()
        .filter(|c| c["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0]["status"], 500);
    assert!(
        posts[0]["error"].as_str().unwrap().contains("server_error"),
        "{}",
        posts[0]
    );
    assert_eq!(posts[1]["status"], 202);
    assert_eq!(posts[1]["attempt"], 2);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_is_adopted_not_repeated() {
    let app = spawn_app().await;
    // The droplet is created but the answer is a 500: the retry must find it by its marker.
    app.sandbox
        .inject(Fault::lose_response(Some("POST"), "/v2/droplets", 1));
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    let ready = app.wait_state(id, "provisioned").await;
    let ids = droplet_ids(&app);
    assert_eq!(ids.len(), 1, "a second droplet was created: {ids:?}");
    assert_eq!(ready["provider_resource_id"].as_str().unwrap(), ids[0]);
    let posts = app
        .api_calls(id)
        .await
        .into_iter()
        .filter(|c| c["method"] == "POST")
        .count();
    assert_eq!(posts, 1, "the create was repeated");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_waits_at_least_retry_after() {
    let app = spawn_app().await;
    app.sandbox
        .inject(Fault::rate_limited(Some("POST"), "/v2/droplets", 2, 1));
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    app.wait_state(id, "provisioned").await;

    let posts: Vec<_> = app
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/droplets")
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].status, 429);
    let waited = posts[1].at.duration_since(posts[0].at);
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before Retry-After: 2"
    );
    assert_eq!(droplet_ids(&app).len(), 1);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_provision_can_be_retried_once_its_cause_is_gone() {
    let app = spawn_app().await;
    app.sandbox.inject(Fault::error_with(
        Some("POST"),
        "/v2/droplets",
        403,
        "forbidden",
        "You do not have access for the attempted action.",
        1,
    ));
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    let failed = app.wait_state(id, "failed").await;
    assert_eq!(failed["error"]["code"], "forbidden");

    let (code, out, err) = app.cli(&["retry", id, "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let done: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["provisioning_state"], "provisioned");
    assert!(done["error"].is_null());
    assert_eq!(
        done["marker"], created["marker"],
        "the same resource, retried"
    );
    assert_eq!(droplet_ids(&app).len(), 1);
    let posts = app
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/droplets")
        .count();
    assert_eq!(posts, 2, "one refused create, one that succeeded");
    let audit = app.audit().await;
    let outcomes: Vec<String> = audit_outcomes(&audit, id)
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(outcomes, ["requested", "failure", "requested", "success"]);

    // Only a failed resource is retried.
    let again = app
        .post(
            &format!("/api/v1/servers/{id}/retry"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only failed")
    );
    app.finish();
}
