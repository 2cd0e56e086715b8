//! What the v2 engine gives users at the API and the CLI: cancelling a provision, creates
//! that a repeat cannot double (`Idempotency-Key`), and changing a dock's key, URL and rate
//! limit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DOCK, Options, provision_args, spawn_app, spawn_app_with, wait_for};

fn server_body(name: &str) -> Value {
    json!({"dock": DOCK, "name": name, "region": "nyc3", "size": "s-1vcpu-1gb",
           "image": "ubuntu-24-04-x64"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_with_the_same_idempotency_key_answers_the_first_row() {
    let app = spawn_app().await;
    let send = |key: &'static str, body: Value| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(format!("{}/api/v1/servers", app.url))
                .bearer_auth(&app.token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("send");
            let replayed = resp
                .headers()
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("json");
            app.saw(body.to_string().into_bytes());
            (status, replayed, body)
        }
    };
    let (s1, r1, first) = send("key-1", server_body("web-1")).await;
    let (s2, r2, again) = send("key-1", server_body("web-1")).await;
    assert_eq!((s1, r1.as_deref()), (202, Some("false")));
    assert_eq!((s2, r2.as_deref()), (202, Some("true")));
    assert_eq!(first["id"], again["id"], "the repeat answers the first row");
    assert_eq!(first["operation_id"], again["operation_id"]);

    // The same key for another request is refused, naming the key.
    let (s3, _, other) = send("key-1", server_body("web-2")).await;
    assert_eq!(s3, 409, "{other}");
    assert!(
        other["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key-1"),
        "{other}"
    );

    // Another key makes another resource.
    let (s4, _, second) = send("key-2", server_body("web-2")).await;
    assert_eq!(s4, 202);
    assert_ne!(second["id"], first["id"]);
    let id = first["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "provisioned").await;
    app.wait_state(second["id"].as_str().unwrap(), "provisioned")
        .await;
    assert_eq!(
        app.sandbox.droplets().len(),
        2,
        "one droplet per key, none for the repeat"
    );
    let rows = app.get("/api/v1/servers").await.body;
    assert_eq!(rows["items"].as_array().unwrap().len(), 2, "{rows}");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_provision_and_removes_what_it_made() {
    // Never ready: the provision waits at the provider until cancelled.
    let app = spawn_app_with(Options {
        ready_after: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(|| async { (app.sandbox.droplets().len() == 1).then_some(()) })
        .await
        .expect("the droplet was created");

    let (code, out, err) = app.cli(&["cancel", &id, "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let done: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(done["provisioning_state"], "failed");
    assert_eq!(done["error"]["code"], "cancelled");
    assert!(
        app.sandbox.droplets().is_empty(),
        "the cancelled provision's droplet was left"
    );

    // Nothing under way any more: a second cancel is refused as a conflict (exit 2).
    let (code, _, err) = app.cli(&["cancel", &id]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no provision under way"), "{err}");
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a["action"] == "server.cancel" && a["outcome"] == "requested"),
        "{audit:?}"
    );
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docks_update_replaces_the_key_from_stdin_the_url_and_the_rate_limit() {
    let app = spawn_app().await;
    let (code, out, _) = app.cli(&["docks", "list", "--json"]).await;
    assert_eq!(code, 0);
    let docks: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        docks["items"][0]["rate_limit"], "250/min,5000/h",
        "DigitalOcean's documented limits by default"
    );

    let (code, out, err) = app
        .cli(&[
            "docks",
            "update",
            DOCK,
            "--rate-limit",
            "10/s,600/min",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let dock: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dock["rate_limit"], "10/s,600/min");
    let (code, out, _) = app.cli(&["docks", "list"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("10/s,600/min"),
        "the list shows each dock's limit: {out}"
    );

    let (code, _, err) = app
        .cli(&["docks", "update", DOCK, "--rate-limit", "250/fortnight"])
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("rate_limit") && err.contains("fortnight"),
        "{err}"
    );
    let (code, _, err) = app.cli(&["docks", "update", DOCK]).await;
    assert_eq!(code, 2);
    assert!(err.contains("nothing to change"), "{err}");

    // A wrong key from stdin is checked first, as a new dock's is: refused in the
    // provider's words, and the dock keeps the key it had.
    let (code, out, err) = app
        .cli_with_stdin(
            &["docks", "update", DOCK, "--api-key-stdin"],
            "dop_v1_wrong\n",
        )
        .await;
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("Unable to authenticate you"), "{err}");
    let (code, out, err) = app.cli(&provision_args(DOCK, "web-0", "s-1vcpu-1gb")).await;
    assert_eq!(code, 0, "the old key still works: {out}\n{err}");

    // Saved unchecked when asked: the provider refuses the next call with its own words.
    let (code, _, err) = app
        .cli_with_stdin(
            &["docks", "update", DOCK, "--api-key-stdin", "--no-verify"],
            "dop_v1_wrong\n",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let mut bad = provision_args(DOCK, "web-1", "s-1vcpu-1gb");
    bad.push("--json");
    let (code, out, _) = app.cli(&bad).await;
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["error"]["code"], "unauthorized", "{doc}");

    // The right key again, and the dock works.
    let canary = format!("{}\n", app.canary);
    let (code, _, err) = app
        .cli_with_stdin(&["docks", "update", DOCK, "--api-key-stdin"], &canary)
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = app.cli(&provision_args(DOCK, "web-2", "s-1vcpu-1gb")).await;
    assert_eq!(code, 0, "{out}\n{err}");

    // Moving the dock to another URL takes effect for the next call.
    let (code, out, _) = app
        .cli(&[
            "docks",
            "update",
            DOCK,
            "--api-url",
            "http://127.0.0.1:9",
            "--no-verify",
            "--json",
        ])
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["api_url"],
        "http://127.0.0.1:9"
    );
    let audit = app.audit().await;
    let updates = audit
        .iter()
        .filter(|a| a["action"] == "dock.update")
        .count();
    assert_eq!(updates, 4, "{audit:?}");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_added_with_a_bad_rate_limit_is_refused_naming_it() {
    let app = spawn_app().await;
    for (limit, says) in [
        ("0/min", "at least 1"),
        ("ten/min", "ten"),
        ("5/min,6/min", "min"),
        ("", "rate_limit"),
    ] {
        let resp = app
            .post(
                "/api/v1/docks",
                json!({"provider": "digitalocean", "name": "other", "api_key": "k",
                       "rate_limit": limit}),
            )
            .await;
        assert_eq!(resp.status, 422, "{limit}: {}", resp.body);
        let message = resp.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("rate_limit") && message.contains(says),
            "{limit}: {message}"
        );
    }
    let docks = app.get("/api/v1/docks").await.body;
    assert_eq!(
        docks["items"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );
    let resp = app
        .post(
            "/api/v1/docks",
            // Not checked with the provider: there is no DigitalOcean behind a test.
            json!({"provider": "digitalocean", "name": "raised", "api_key": "k",
                   "rate_limit": "none", "verify": false}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body["rate_limit"], "none");
    app.finish();
}
