//! Bad input on every route answers a clear 4xx naming the problem and writes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DOCK, TestApp, spawn_app};

fn assert_error(what: &str, r: &crate::support::Response, status: u16, mentions: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let code = r.body["error"]["code"].as_str().unwrap_or_default();
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!code.is_empty(), "{what}: no error code in {}", r.body);
    assert!(
        message.contains(mentions),
        "{what}: message {message:?} does not name {mentions:?}"
    );
}

async fn counts(app: &TestApp) -> (usize, usize, usize) {
    let len = |v: Value| v["items"].as_array().map(Vec::len).unwrap_or(usize::MAX);
    (
        len(app.get("/api/v1/resources").await.body),
        len(app.get("/api/v1/docks").await.body),
        len(app.get("/api/v1/operations").await.body),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_leaves_no_row() {
    let app = spawn_app().await;
    let before = counts(&app).await;
    assert_eq!(before, (0, 1, 0));
    let server = |extra: Value| {
        let mut b = json!({"dock": DOCK, "name": "web-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };

    // Resources.
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("no dock", server(json!({"dock": null})), 422, "dock"),
        ("unknown dock", server(json!({"dock": "nope"})), 422, "nope"),
        ("no size", server(json!({"size": null})), 422, "size"),
        ("size not a string", server(json!({"size": 4})), 422, "size"),
        (
            "bad hostname",
            server(json!({"name": "web 1"})),
            422,
            "name",
        ),
        (
            "unknown field",
            server(json!({"colour": "red"})),
            422,
            "colour",
        ),
        ("bad ipv6 type", server(json!({"ipv6": "yes"})), 422, "ipv6"),
    ];
    for (what, body, status, mentions) in cases {
        let r = app.post("/api/v1/servers", body).await;
        assert_error(what, &r, status, mentions);
    }
    assert_error(
        "not json",
        &app.raw(Method::POST, "/api/v1/servers", "{nope").await,
        400,
        "JSON",
    );
    assert_error(
        "not an object",
        &app.raw(Method::POST, "/api/v1/servers", "[1]").await,
        400,
        "object",
    );
    assert_error(
        "empty body",
        &app.raw(Method::POST, "/api/v1/servers", "").await,
        400,
        "empty",
    );
    let web = app
        .post(
            "/api/v1/web-services",
            json!({"dock": DOCK, "name": "site"}),
        )
        .await;
    assert_error("unsupported kind", &web, 422, "web_service");
    assert_error(
        "unknown collection",
        &app.get("/api/v1/widgets").await,
        404,
        "widgets",
    );
    assert_error("bad id", &app.get("/api/v1/servers/xyz").await, 400, "xyz");
    let unknown = "01a2155a-0000-7000-8000-000000000000";
    assert_error(
        "unknown id",
        &app.get(&format!("/api/v1/servers/{unknown}")).await,
        404,
        unknown,
    );
    assert_error(
        "delete unknown",
        &app.delete(&format!("/api/v1/servers/{unknown}")).await,
        404,
        unknown,
    );
    assert_error(
        "bad state filter",
        &app.get("/api/v1/servers?state=gone").await,
        400,
        "state",
    );
    assert_error(
        "bad source filter",
        &app.get("/api/v1/servers?source=x").await,
        400,
        "source",
    );
    assert_error(
        "zero limit",
        &app.get("/api/v1/servers?limit=0").await,
        400,
        "limit",
    );
    assert_error(
        "unknown filter",
        &app.get("/api/v1/servers?colour=red").await,
        400,
        "colour",
    );
    assert_error(
        "bad kind filter",
        &app.get("/api/v1/resources?kind=boat").await,
        400,
        "boat",
    );
    assert_error(
        "retry of unknown id",
        &app.post(&format!("/api/v1/resources/{unknown}/retry"), json!({}))
            .await,
        404,
        unknown,
    );
    assert_error(
        "api calls of bad id",
        &app.get("/api/v1/servers/xyz/api-calls").await,
        400,
        "xyz",
    );

    // Docks.
    let dock_cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "no provider",
            json!({"name": "x", "api_key": "k"}),
            422,
            "provider",
        ),
        (
            "unknown provider",
            json!({"provider": "aws", "name": "x", "api_key": "k"}),
            422,
            "aws",
        ),
        (
            "bad name",
            json!({"provider": "digitalocean", "name": "Bad Name", "api_key": "k"}),
            422,
            "name",
        ),
        (
            "no key",
            json!({"provider": "digitalocean", "name": "x"}),
            422,
            "api_key",
        ),
        (
            "empty key",
            json!({"provider": "digitalocean", "name": "x", "api_key": ""}),
            422,
            "api_key",
        ),
        (
            "bad url",
            json!({"provider": "digitalocean", "name": "x", "api_key": "k", "api_url": "ftp://x"}),
            422,
            "api_url",
        ),
        (
            "unknown field",
            json!({"provider": "digitalocean", "name": "x", "api_key": "k", "region": "x"}),
            422,
            "region",
        ),
        (
            "duplicate",
            json!({"provider": "digitalocean", "name": DOCK, "api_key": "k"}),
            409,
            DOCK,
        ),
    ];
    for (what, body, status, mentions) in dock_cases {
        assert_error(
            what,
            &app.post("/api/v1/docks", body).await,
            status,
            mentions,
        );
    }
    assert_error(
        "get unknown dock",
        &app.get("/api/v1/docks/nope").await,
        404,
        "nope",
    );
    assert_error(
        "remove unknown dock",
        &app.delete("/api/v1/docks/nope").await,
        404,
        "nope",
    );
    assert_error(
        "sync unknown dock",
        &app.post("/api/v1/docks/nope/sync", json!({})).await,
        404,
        "nope",
    );
    assert_error(
        "schema of unknown kind",
        &app.get(&format!("/api/v1/docks/{DOCK}/schema/boats")).await,
        404,
        "boats",
    );

    // Operations, audit, events.
    assert_error(
        "bad operation id",
        &app.get("/api/v1/operations/xyz").await,
        400,
        "xyz",
    );
    assert_error(
        "unknown operation",
        &app.get(&format!("/api/v1/operations/{unknown}")).await,
        404,
        unknown,
    );
    assert_error(
        "operations bad resource",
        &app.get("/api/v1/operations?resource_id=q").await,
        400,
        "q",
    );
    assert_error(
        "audit limit",
        &app.get("/api/v1/audit?limit=0").await,
        400,
        "limit",
    );
    assert_error(
        "audit bad before",
        &app.get("/api/v1/audit?before=x").await,
        400,
        "before",
    );
    assert_error(
        "events negative",
        &app.get("/api/v1/events?after=-1").await,
        400,
        "after",
    );
    assert_error(
        "events beyond the newest",
        &app.get("/api/v1/events?after=999999999").await,
        400,
        "beyond the newest",
    );
    assert_error(
        "events of no such resource",
        &app.get("/api/v1/events?resource_id=00000000-0000-4000-8000-000000000000")
            .await,
        404,
        "",
    );
    assert_error(
        "unknown route",
        &app.get("/api/v2/anything").await,
        404,
        "route",
    );

    assert_eq!(counts(&app).await, before, "bad input wrote something");

    // Conflicts: a second deprovision while the first is in flight, removing a busy dock.
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();
    assert_error(
        "deprovision while provisioning",
        &app.delete(&format!("/api/v1/servers/{id}")).await,
        409,
        id,
    );
    app.wait_state(id, "provisioned").await;
    assert_error(
        "remove a dock with live resources",
        &app.delete(&format!("/api/v1/docks/{DOCK}")).await,
        409,
        "",
    );
    assert_error(
        "wrong collection",
        &app.get(&format!("/api/v1/databases/{id}")).await,
        404,
        id,
    );
    assert_eq!(
        app.get("/api/v1/docks").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_requires_a_valid_token() {
    let app = spawn_app().await;
    let id = "01a2155a-0000-7000-8000-000000000000";
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/api/v1/me".into()),
        (Method::GET, "/api/v1/docks".into()),
        (Method::POST, "/api/v1/docks".into()),
        (Method::GET, format!("/api/v1/docks/{DOCK}")),
        (Method::DELETE, format!("/api/v1/docks/{DOCK}")),
        (Method::POST, format!("/api/v1/docks/{DOCK}/sync")),
        (Method::GET, format!("/api/v1/docks/{DOCK}/schema/servers")),
        (Method::GET, "/api/v1/resources".into()),
        (Method::GET, format!("/api/v1/resources/{id}")),
        (Method::DELETE, format!("/api/v1/resources/{id}")),
        (Method::GET, "/api/v1/servers".into()),
        (Method::POST, "/api/v1/servers".into()),
        (Method::GET, format!("/api/v1/servers/{id}")),
        (Method::DELETE, format!("/api/v1/servers/{id}")),
        (Method::GET, format!("/api/v1/servers/{id}/api-calls")),
        (Method::POST, format!("/api/v1/servers/{id}/retry")),
        (Method::POST, format!("/api/v1/resources/{id}/retry")),
        (Method::GET, "/api/v1/operations".into()),
        (Method::GET, format!("/api/v1/operations/{id}")),
        (Method::GET, "/api/v1/audit".into()),
        (Method::GET, "/api/v1/events".into()),
    ];
    for (method, path) in &routes {
        for token in [None, Some("sdt_not-a-token")] {
            let r = app
                .request_as(method.clone(), path, Some(json!({})), token)
                .await;
            assert_eq!(r.status, 401, "{method} {path} with {token:?}: {}", r.body);
            assert_eq!(r.body["error"]["code"], "unauthenticated");
        }
    }
    // The dock is still there: nothing was done without a token.
    assert_eq!(
        app.get("/api/v1/docks").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let me = app.get("/api/v1/me").await.body;
    assert_eq!(me["role"], "owner");
    app.finish();
}

/// A path under `/api/` no route has, and a route asked with a method it does not take, answer
/// in the same error shape as every other refusal; the 405 names the methods the route takes
/// in `Allow`. (Outside `/api/`, the web UI answers a 404 page: `web_ui.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/api/v1/docks/one/two/three"),
        (Method::POST, "/api/v2/resources"),
        (Method::GET, "/api/v1"),
    ] {
        let r = app.request(method.clone(), path, None).await;
        assert_error(&format!("{method} {path}"), &r, 404, path);
        assert_eq!(r.body["error"]["code"], "not_found", "{method} {path}");
    }

    for (method, path, allowed) in [
        (Method::PUT, "/api/v1/docks", vec!["GET", "POST"]),
        (Method::PATCH, "/api/v1/resources", vec!["GET"]),
        (Method::POST, "/api/v1/audit", vec!["GET"]),
    ] {
        let resp = app
            .http
            .request(method.clone(), format!("{}{path}", app.url))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.retain(|m| *m != "HEAD");
        listed.sort_unstable();
        assert_eq!(listed, allowed, "{method} {path}: Allow: {allow:?}");
        let body: Value = resp.json().await.expect("a JSON body");
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(path) && message.contains(method.as_str()),
            "{method} {path}: {message:?}"
        );
    }
    app.finish();
}
