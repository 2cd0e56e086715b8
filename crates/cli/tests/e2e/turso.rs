//! Turso through the real binary: a dock's key checked before it is saved (Turso and
//! DigitalOcean), a database provisioned with nothing but a name whose minted token is found
//! nowhere StackDock writes or answers, and discovery that adds a database once.

use serde_json::{Value, json};
use stackdock_sandbox::{TursoSandbox, TursoSandboxConfig};

use crate::support::{DOCK, TestApp, spawn_app, wait_for};

const TURSO_DOCK: &str = "turso";
const ORG: &str = "acme";

/// A Turso sandbox taking the app's canary key (so the canary scan covers it too).
async fn turso_for(app: &TestApp) -> TursoSandbox {
    TursoSandbox::start(TursoSandboxConfig {
        tokens: vec![app.canary.clone()],
        organization: ORG.into(),
        ..Default::default()
    })
    .await
    .expect("turso sandbox")
}

/// The message of an error our API answered.
fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

fn add_body(name: &str, key: &str, url: &str, settings: Value) -> Value {
    json!({"provider": "turso", "name": name, "api_key": key, "api_url": url, "settings": settings})
}

async fn connect_turso(app: &TestApp, turso: &TursoSandbox) {
    let added = app
        .post(
            "/api/v1/docks",
            add_body(
                TURSO_DOCK,
                &app.canary,
                &turso.base_url(),
                json!({"organization": ORG}),
            ),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["settings"], json!({"organization": ORG}));
}

async fn wait_database(app: &TestApp, id: &str, state: &str) -> Value {
    wait_for(|| async {
        let r = app.get(&format!("/api/v1/databases/{id}")).await.body;
        (r["provisioning_state"] == state).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("database {id} never became {state}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docks_add_checks_the_key_with_the_provider_before_saving() {
    let app = spawn_app().await;
    let turso = turso_for(&app).await;
    let url = turso.base_url();

    // A key Turso does not take is refused in Turso's words, and no dock is saved.
    let refused = app
        .post(
            "/api/v1/docks",
            add_body(
                "t-bad",
                "not-a-turso-key",
                &url,
                json!({"organization": ORG}),
            ),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["code"], "key_refused",
        "{}",
        refused.body
    );
    let message = error_message(&refused.body);
    assert!(message.contains("token is invalid or expired"), "{message}");

    // A good key for an organization it cannot reach says so.
    let elsewhere = app
        .post(
            "/api/v1/docks",
            add_body(
                "t-elsewhere",
                &app.canary,
                &url,
                json!({"organization": "other"}),
            ),
        )
        .await;
    assert_eq!(elsewhere.status, 422, "{}", elsewhere.body);
    assert!(
        error_message(&elsewhere.body).contains("organization not found"),
        "{}",
        elsewhere.body
    );

    // A Turso dock names its organization, or it is refused by the field's name.
    let unnamed = app
        .post(
            "/api/v1/docks",
            add_body("t-unnamed", &app.canary, &url, json!({})),
        )
        .await;
    assert_eq!(unnamed.status, 422, "{}", unnamed.body);
    assert!(
        error_message(&unnamed.body).starts_with("settings.organization:"),
        "{}",
        unnamed.body
    );

    // The same through the CLI: the bad key is refused with the provider's words, unless
    // the check is skipped.
    let args = |name: &'static str| {
        vec![
            "docks",
            "add",
            "--provider",
            "turso",
            "--name",
            name,
            "--api-key",
            "not-a-turso-key",
            "--api-url",
            &url,
            "--setting",
            "organization=acme",
        ]
    };
    let (code, out, err) = app.cli(&args("t-cli")).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("token is invalid or expired"), "{err}");
    let mut skipped = args("t-unchecked");
    skipped.push("--no-verify");
    let (code, out, err) = app.cli(&skipped).await;
    assert_eq!(code, 0, "{out}\n{err}");

    // A good key is saved.
    connect_turso(&app, &turso).await;
    let docks = app.get("/api/v1/docks").await.body;
    let mut names: Vec<&str> = docks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, [DOCK, "t-unchecked", TURSO_DOCK]);

    // DigitalOcean's keys are checked with GET /v2/account.
    let do_url = app.sandbox.base_url();
    let bad_do = app
        .post(
            "/api/v1/docks",
            json!({"provider": "digitalocean", "name": "do-bad", "api_key": "dop_v1_wrong", "api_url": do_url}),
        )
        .await;
    assert_eq!(bad_do.status, 422, "{}", bad_do.body);
    assert!(
        error_message(&bad_do.body).contains("Unable to authenticate you"),
        "{}",
        bad_do.body
    );
    let good_do = app
        .post(
            "/api/v1/docks",
            json!({"provider": "digitalocean", "name": "do-good", "api_key": app.canary, "api_url": do_url}),
        )
        .await;
    assert_eq!(good_do.status, 201, "{}", good_do.body);
    let account_checks = app
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v2/account")
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert!(account_checks.contains(&401) && account_checks.contains(&200));
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_only_a_name_is_provisioned_and_its_token_stays_sealed() {
    let app = spawn_app().await;
    let turso = turso_for(&app).await;
    connect_turso(&app, &turso).await;

    let (code, out, err) = app
        .cli(&[
            "provision",
            "database",
            "--dock",
            TURSO_DOCK,
            "--name",
            "orders",
        ])
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned"), "{out}");

    let rows = app.get("/api/v1/databases").await.body;
    let row = &rows["items"].as_array().unwrap()[0];
    assert_eq!(row["name"], "orders");
    assert_eq!(row["provisioning_state"], "provisioned");
    let turso_name = row["provider_resource_id"].as_str().unwrap().to_string();
    assert_eq!(row["marker"].as_str(), Some(turso_name.as_str()));
    assert_eq!(row["host"], format!("{turso_name}-{ORG}.turso.io"));
    assert_eq!(row["engine"], "libsql");
    let id = row["id"].as_str().unwrap().to_string();

    // What a user can read about it: the row, its operation with its steps, its calls.
    let seen = app.get(&format!("/api/v1/databases/{id}")).await;
    assert_eq!(seen.status, 200);
    let ops = app.get("/api/v1/operations").await.body;
    for op in ops["items"].as_array().unwrap() {
        let op_id = op["id"].as_str().unwrap();
        assert_eq!(
            app.get(&format!("/api/v1/operations/{op_id}")).await.status,
            200
        );
    }
    let calls = app
        .get(&format!("/api/v1/databases/{id}/api-calls"))
        .await
        .body;
    assert!(
        calls["items"].as_array().unwrap().iter().any(|c| c["path"]
            .as_str()
            .unwrap()
            .contains("/auth/tokens?expiration=never")),
        "{calls}"
    );

    let (code, out, err) = app.cli(&["deprovision", &id]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    wait_database(&app, &id, "deprovisioned").await;
    assert_eq!(turso.databases(), Vec::<Value>::new());

    let minted = turso.minted_tokens();
    assert_eq!(minted.len(), 1, "one token minted");
    app.finish_keeping_secret(&minted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_adds_a_turso_database_made_elsewhere_once() {
    let app = spawn_app().await;
    let turso = turso_for(&app).await;
    connect_turso(&app, &turso).await;
    let ours = app
        .post(
            "/api/v1/databases",
            json!({"dock": TURSO_DOCK, "name": "ours"}),
        )
        .await;
    assert_eq!(ours.status, 202, "{}", ours.body);
    wait_database(&app, ours.body["id"].as_str().unwrap(), "provisioned").await;
    turso.create_database_directly("made-by-hand", "analytics", "aws-eu-west-1");

    for added in [1, 0] {
        let op = app.sync(TURSO_DOCK).await;
        assert_eq!(op["state"], "succeeded", "{op}");
        assert_eq!(
            op["steps"][0]["output"],
            json!({"found": 2, "added": added})
        );
    }
    let rows = app.get("/api/v1/databases").await.body;
    let mut seen: Vec<(String, String)> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["provisioning_source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("made-by-hand".to_string(), "manual".to_string()),
            ("ours".to_string(), "api".to_string()),
        ]
    );
    app.finish_keeping_secret(&turso.minted_tokens());
}
