//! The OpenAPI document as the real server serves it, and real answers of every route checked
//! against it: each answer's status is one the document lists for that route and method, and
//! its JSON body validates against the document's schema for that status.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DOCK, TestApp, spawn_app, wait_for};

struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    /// (method, path template) of every request checked.
    covered: BTreeSet<(String, String)>,
}

/// `/api/v1/docks/{dock}` filled in from `args`, in order.
fn fill(template: &str, args: &[&str]) -> String {
    let mut out = Vec::new();
    let mut args = args.iter();
    for seg in template.split('/') {
        if seg.starts_with('{') {
            out.push(args.next().expect("an argument per parameter").to_string());
        } else {
            out.push(seg.to_string());
        }
    }
    out.join("/")
}

impl Checker<'_> {
    /// Sends the request and checks the answer against the document; answers status and body.
    async fn check(
        &mut self,
        method: Method,
        template: &str,
        args: &[&str],
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let path = fill(template, args);
        let mut req = self
            .app
            .http
            .request(method.clone(), format!("{}{path}", self.app.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().await.expect("body").to_vec();
        self.app.saw(bytes.clone());
        let template = template.split_once('?').map_or(template, |(t, _)| t);
        let m = method.as_str().to_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let answer = &op["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {path} answered {status}, which the document does not list: {}",
            String::from_utf8_lossy(&bytes)
        );
        self.covered
            .insert((method.as_str().to_string(), template.to_string()));
        let Some(content) = answer["content"].as_object() else {
            assert!(
                bytes.is_empty(),
                "{method} {path}: a body the document does not have"
            );
            return (status, Value::Null);
        };
        let (media, schema) = content.iter().next().expect("a media type");
        assert!(
            content_type.starts_with(media.as_str()),
            "{method} {path}: {content_type}, documented {media}"
        );
        if media != "application/json" {
            return (status, Value::Null);
        }
        let value: Value = serde_json::from_slice(&bytes).expect("a JSON body");
        // The schema with the document's components beside it, so its `$ref`s resolve.
        let root = json!({"allOf": [schema["schema"]], "components": self.doc["components"]});
        let validator = jsonschema::draft202012::new(&root).expect("a schema");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: the body does not match the document: {errors:?}\n{value}"
        );
        (status, value)
    }
}

#[tokio::test]
async fn every_route_answers_as_the_document_says() {
    let app = spawn_app().await;
    // Served without a token, and the reference page renders it.
    let doc: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut c = Checker {
        app: &app,
        doc,
        covered: BTreeSet::new(),
    };
    let owner = Some(app.token.as_str());
    let none = None;
    let unknown = "0190d7c1-0000-7000-8000-000000000000";
    use Method as M;

    c.check(M::GET, "/api/v1/openapi.json", &[], None, none)
        .await;
    c.check(M::GET, "/api/v1/docs", &[], None, none).await;
    let page = app
        .http
        .get(format!("{}/api/v1/docs", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("fetch(\"/api/v1/openapi.json\")"), "{page}");
    c.check(M::GET, "/api/v1/health", &[], None, none).await;
    let (_, me) = c.check(M::GET, "/api/v1/me", &[], None, owner).await;
    assert_eq!(c.check(M::GET, "/api/v1/me", &[], None, none).await.0, 401);
    assert_eq!(
        c.check(M::GET, "/api/v1/me", &[], None, Some("sd_nope"))
            .await
            .0,
        401
    );

    // Sessions and passwords.
    let short = json!({"password": "short"});
    let pw = "a long enough password 1";
    assert_eq!(
        c.check(M::PUT, "/api/v1/me/password", &[], Some(short), owner)
            .await
            .0,
        400
    );
    let good = json!({"password": pw});
    assert_eq!(
        c.check(M::PUT, "/api/v1/me/password", &[], Some(good), owner)
            .await
            .0,
        204
    );
    let wrong = json!({"email": me["email"], "password": "not the password at all"});
    assert_eq!(
        c.check(M::POST, "/api/v1/sessions", &[], Some(wrong), none)
            .await
            .0,
        401
    );
    let right = json!({"email": me["email"], "password": pw});
    assert_eq!(
        c.check(M::POST, "/api/v1/sessions", &[], Some(right), none)
            .await
            .0,
        201
    );
    let bad_field = json!({"email": me["email"], "pass": pw});
    assert_eq!(
        c.check(M::POST, "/api/v1/sessions", &[], Some(bad_field), none)
            .await
            .0,
        400
    );
    let invitation = json!({"token": "sd_not_an_invitation", "password": pw});
    assert_eq!(
        c.check(
            M::POST,
            "/api/v1/invitations/accept",
            &[],
            Some(invitation),
            none
        )
        .await
        .0,
        401
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/sessions", &[], None, owner)
            .await
            .0,
        204
    );

    // Docks.
    c.check(M::GET, "/api/v1/docks", &[], None, owner).await;
    let no_key = json!({"provider": "digitalocean", "name": "second"});
    assert_eq!(
        c.check(M::POST, "/api/v1/docks", &[], Some(no_key), owner)
            .await
            .0,
        422
    );
    let again = json!({"provider": "digitalocean", "name": DOCK, "api_key": app.canary,
        "api_url": app.sandbox.base_url()});
    assert_eq!(
        c.check(M::POST, "/api/v1/docks", &[], Some(again), owner)
            .await
            .0,
        409
    );
    let other = json!({"provider": "digitalocean", "name": "other", "api_key": app.canary,
        "api_url": app.sandbox.base_url()});
    assert_eq!(
        c.check(M::POST, "/api/v1/docks", &[], Some(other), owner)
            .await
            .0,
        201
    );
    c.check(M::GET, "/api/v1/docks/{dock}", &[DOCK], None, owner)
        .await;
    assert_eq!(
        c.check(M::GET, "/api/v1/docks/{dock}", &["nope"], None, owner)
            .await
            .0,
        404
    );
    let patch = json!({"rate_limit": "100/min"});
    assert_eq!(
        c.check(
            M::PATCH,
            "/api/v1/docks/{dock}",
            &[DOCK],
            Some(patch),
            owner
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.check(
            M::PATCH,
            "/api/v1/docks/{dock}",
            &[DOCK],
            Some(json!({})),
            owner
        )
        .await
        .0,
        422
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/docks/{dock}", &["other"], None, owner)
            .await
            .0,
        204
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/docks/{dock}", &["other"], None, owner)
            .await
            .0,
        404
    );
    let (status, sync) = c
        .check(M::POST, "/api/v1/docks/{dock}/sync", &[DOCK], None, owner)
        .await;
    assert_eq!(status, 202);
    let path = "/api/v1/docks/{dock}/schema/{collection}";
    assert_eq!(
        c.check(M::GET, path, &[DOCK, "servers"], None, owner)
            .await
            .0,
        200
    );
    assert_eq!(
        c.check(M::GET, path, &[DOCK, "boats"], None, owner).await.0,
        404
    );

    // Operations and the audit log.
    c.check(M::GET, "/api/v1/operations", &[], None, owner)
        .await;
    let op = sync["id"].as_str().unwrap();
    c.check(M::GET, "/api/v1/operations/{id}", &[op], None, owner)
        .await;
    assert_eq!(
        c.check(M::GET, "/api/v1/operations/{id}", &[unknown], None, owner)
            .await
            .0,
        404
    );
    c.check(M::GET, "/api/v1/audit", &[], None, owner).await;
    assert_eq!(
        c.check(M::GET, "/api/v1/audit?limit=0", &[], None, owner)
            .await
            .0,
        400
    );

    // Files.
    let digest = "0".repeat(64);
    let missing = json!({"sha256": [digest]});
    c.check(M::POST, "/api/v1/files/missing", &[], Some(missing), owner)
        .await;
    let not_list = json!({"sha256": "x"});
    assert_eq!(
        c.check(M::POST, "/api/v1/files/missing", &[], Some(not_list), owner)
            .await
            .0,
        422
    );
    let (status, _) = c
        .check(
            M::PUT,
            "/api/v1/files/{sha256}",
            &[&digest],
            Some(json!("x")),
            owner,
        )
        .await;
    assert_ne!(status, 204, "contents that do not match their digest");

    // Keys.
    c.check(M::GET, "/api/v1/keys", &[], None, owner).await;
    c.check(M::POST, "/api/v1/keys/rotate", &[], None, owner)
        .await;
    c.check(M::DELETE, "/api/v1/keys/{key}", &["nope"], None, owner)
        .await;

    // Events: the stream's head (its body never ends).
    let resp = app
        .http
        .get(format!("{}/api/v1/events", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let op = &c.doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"];
    assert!(op.get("text/event-stream").is_some());
    drop(resp);
    c.covered.insert(("GET".into(), "/api/v1/events".into()));
    assert_eq!(
        c.check(M::GET, "/api/v1/events?after=x", &[], None, owner)
            .await
            .0,
        400
    );

    // Members and tokens.
    c.check(M::GET, "/api/v1/members", &[], None, owner).await;
    let new = json!({"email": "dev@example.com", "role": "developer", "invite": true});
    let (status, member) = c
        .check(M::POST, "/api/v1/members", &[], Some(new.clone()), owner)
        .await;
    assert_eq!(status, 201);
    assert!(member["invitation"]["token"].is_string());
    assert_eq!(
        c.check(M::POST, "/api/v1/members", &[], Some(new), owner)
            .await
            .0,
        409
    );
    let user = member["user_id"].as_str().unwrap();
    let role = json!({"role": "viewer"});
    assert_eq!(
        c.check(
            M::PATCH,
            "/api/v1/members/{user}",
            &[user],
            Some(role),
            owner
        )
        .await
        .0,
        200
    );
    let (status, made) = c
        .check(
            M::POST,
            "/api/v1/tokens",
            &[],
            Some(json!({"name": "ci"})),
            owner,
        )
        .await;
    assert_eq!(status, 201);
    c.check(M::GET, "/api/v1/tokens", &[], None, owner).await;
    let viewer = json!({"user_id": user, "name": "theirs"});
    let (_, theirs) = c
        .check(M::POST, "/api/v1/tokens", &[], Some(viewer), owner)
        .await;
    let viewer_token = theirs["token"].as_str().unwrap().to_string();
    // A viewer lacks members:full.
    assert_eq!(
        c.check(
            M::DELETE,
            "/api/v1/members/{user}",
            &[user],
            None,
            Some(&viewer_token)
        )
        .await
        .0,
        403
    );
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        c.check(M::DELETE, "/api/v1/tokens/{id}", &[id], None, owner)
            .await
            .0,
        200
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/tokens/{id}", &[unknown], None, owner)
            .await
            .0,
        404
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/members/{user}", &[user], None, owner)
            .await
            .0,
        204
    );
    assert_eq!(
        c.check(M::DELETE, "/api/v1/members/{user}", &[user], None, owner)
            .await
            .0,
        404
    );

    // Resources.
    let server = json!({"dock": DOCK, "name": "web-1", "region": "nyc3", "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64"});
    let (status, created) = c
        .check(
            M::POST,
            "/api/v1/{collection}",
            &["servers"],
            Some(server),
            owner,
        )
        .await;
    assert_eq!(status, 202);
    let bad = json!({"dock": DOCK, "name": "web-2"});
    assert_eq!(
        c.check(
            M::POST,
            "/api/v1/{collection}",
            &["servers"],
            Some(bad),
            owner
        )
        .await
        .0,
        422
    );
    let id = created["id"].as_str().unwrap().to_string();
    let id = id.as_str();
    wait_for(|| async {
        let r = app.get(&format!("/api/v1/servers/{id}")).await;
        (r.body["provisioning_state"] == "provisioned").then_some(())
    })
    .await
    .expect("the server is provisioned");
    c.check(M::GET, "/api/v1/resources", &[], None, owner).await;
    c.check(
        M::GET,
        "/api/v1/resources?state=provisioned&limit=1",
        &[],
        None,
        owner,
    )
    .await;
    c.check(M::GET, "/api/v1/{collection}", &["servers"], None, owner)
        .await;
    assert_eq!(
        c.check(M::GET, "/api/v1/{collection}", &["boats"], None, owner)
            .await
            .0,
        404
    );
    c.check(M::GET, "/api/v1/resources/{id}", &[id], None, owner)
        .await;
    c.check(
        M::GET,
        "/api/v1/{collection}/{id}",
        &["servers", id],
        None,
        owner,
    )
    .await;
    assert_eq!(
        c.check(
            M::GET,
            "/api/v1/resources/{id}",
            &["not-an-id"],
            None,
            owner
        )
        .await
        .0,
        400
    );
    let calls = "/api/v1/{collection}/{id}/api-calls";
    c.check(M::GET, calls, &["servers", id], None, owner).await;
    // A droplet's provisioning prints nothing: an empty log, read from the start.
    let logs = "/api/v1/resources/{id}/logs";
    c.check(M::GET, logs, &[id], None, owner).await;
    // Nothing failed to retry, nothing in flight to cancel.
    let retry = "/api/v1/{collection}/{id}/retry";
    assert!(
        c.check(M::POST, retry, &["servers", id], None, owner)
            .await
            .0
            >= 400
    );
    let retry_any = "/api/v1/resources/{id}/retry";
    assert!(c.check(M::POST, retry_any, &[id], None, owner).await.0 >= 400);
    let cancel = "/api/v1/{collection}/{id}/cancel";
    c.check(M::POST, cancel, &["servers", id], None, owner)
        .await;
    c.check(M::POST, "/api/v1/resources/{id}/cancel", &[id], None, owner)
        .await;
    let (status, _) = c
        .check(
            M::DELETE,
            "/api/v1/{collection}/{id}",
            &["servers", id],
            None,
            owner,
        )
        .await;
    assert_eq!(status, 202);
    c.check(M::DELETE, "/api/v1/resources/{id}", &[unknown], None, owner)
        .await;

    // Every route was asked at least once.
    let all: BTreeSet<(String, String)> = stackdock_server::routes::routes()
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    let missed: Vec<_> = all.difference(&c.covered).collect();
    assert!(missed.is_empty(), "routes no request checked: {missed:?}");
    app.finish();
}
