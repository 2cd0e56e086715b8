//! Cloudflare through the real binary: a dock's token checked with `GET /user/tokens/verify`
//! before it is saved, the account it names required, and a zone provisioned with nothing
//! but a name, its marker record and Cloudflare's status shown; a zone the user already had
//! is refused by name and left alone.

use serde_json::{Value, json};
use stackdock_sandbox::cloudflare::ACCOUNT_ID;
use stackdock_sandbox::{CloudflareSandbox, CloudflareSandboxConfig};

use crate::support::{TestApp, spawn_app};

const CLOUDFLARE_DOCK: &str = "cloudflare";

fn add_body(name: &str, key: &str, url: &str, settings: Value) -> Value {
    json!({"provider": "cloudflare", "name": name, "api_key": key, "api_url": url,
           "settings": settings})
}

async fn provision(app: &TestApp, body: Value) -> String {
    let r = app.post("/api/v1/domains", body).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudflare_dock_is_checked_and_a_zone_needs_only_a_name() {
    let app = spawn_app().await;
    // The sandbox takes the app's canary key, so the canary scan covers it too.
    let cloudflare = CloudflareSandbox::start(CloudflareSandboxConfig {
        tokens: vec![app.canary.clone()],
        ..Default::default()
    })
    .await
    .expect("cloudflare sandbox");
    let url = cloudflare.api_url();

    // A token Cloudflare does not take is refused in Cloudflare's words; nothing is saved.
    let refused = app
        .post(
            "/api/v1/docks",
            add_body(
                "cf-bad",
                "not-a-token",
                &url,
                json!({"account_id": ACCOUNT_ID}),
            ),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["code"], "key_refused",
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Authentication error"),
        "{}",
        refused.body
    );
    // A dock names its account, or it is refused by the field's name.
    let unnamed = app
        .post(
            "/api/v1/docks",
            add_body("cf-unnamed", &app.canary, &url, json!({})),
        )
        .await;
    assert_eq!(unnamed.status, 422, "{}", unnamed.body);
    assert!(
        unnamed.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("settings.account_id:"),
        "{}",
        unnamed.body
    );
    let added = app
        .post(
            "/api/v1/docks",
            add_body(
                CLOUDFLARE_DOCK,
                &app.canary,
                &url,
                json!({"account_id": ACCOUNT_ID}),
            ),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);

    let id = provision(
        &app,
        json!({"dock": CLOUDFLARE_DOCK, "name": "shop.example.com"}),
    )
    .await;
    let domain = app.wait_resource("domains", &id, "provisioned").await;
    assert_eq!(
        domain["status"], "pending",
        "Cloudflare's own status: {domain}"
    );
    let zones = cloudflare.zones();
    assert_eq!(zones.len(), 1);
    assert_eq!(domain["provider_resource_id"], zones[0]["id"]);
    assert!(
        cloudflare.records().iter().any(|r| r["type"] == "TXT"
            && r["name"] == "_stackdock.shop.example.com"
            && r["content"] == domain["marker"]),
        "the marker record: {:?}",
        cloudflare.records()
    );

    // A zone the user already has is refused by name, and left alone.
    cloudflare.create_zone_directly("theirs.example.com");
    let theirs = provision(
        &app,
        json!({"dock": CLOUDFLARE_DOCK, "name": "theirs.example.com"}),
    )
    .await;
    let failed = app.wait_resource("domains", &theirs, "failed").await;
    assert_eq!(failed["error"]["code"], "invalid_config", "{failed}");
    assert_eq!(cloudflare.zones().len(), 2, "their zone is still there");
    app.finish();
}
