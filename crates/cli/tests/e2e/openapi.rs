//! The OpenAPI document as the real server serves it, and real answers of every route checked
//! against it: each answer's status is one the document lists for that route and method, and
//! its JSON body validates against the document's schema for that status.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DOCK, Options, TestApp, spawn_app, spawn_app_with, wait_for};

/// A master key for a server that takes its keys from the environment.
const ENV_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    /// (method, path template) of every request checked.
    covered: BTreeSet<(String, String)>,
    /// (method, path template, status) of every answer checked.
    seen: BTreeSet<(String, String, u16)>,
}

/// How a request is authenticated.
#[derive(Clone, Copy)]
enum Auth<'t> {
    None,
    Bearer(&'t str),
    /// A session cookie, without the session's CSRF token.
    Cookie(&'t str),
}

/// A request's body.
#[derive(Clone, Copy)]
enum Body<'b> {
    None,
    Json(&'b Value),
    /// Sent as it is, as `application/json`.
    Raw(&'b str),
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
        let auth = token.map_or(Auth::None, Auth::Bearer);
        let body = body.as_ref().map_or(Body::None, Body::Json);
        self.ask(method, template, args, body, auth).await
    }

    /// As [`Checker::check`], with any authentication and body.
    async fn ask(
        &mut self,
        method: Method,
        template: &str,
        args: &[&str],
        body: Body<'_>,
        auth: Auth<'_>,
    ) -> (u16, Value) {
        let (bare, query) = template
            .split_once('?')
            .map_or((template, None), |(t, q)| (t, Some(q)));
        let mut path = fill(bare, args);
        if let Some(q) = query {
            path = format!("{path}?{q}");
        }
        let mut req = self
            .app
            .http
            .request(method.clone(), format!("{}{path}", self.app.url));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Cookie(c) => req.header("cookie", c),
        };
        req = match body {
            Body::None => req,
            Body::Json(b) => req.json(b),
            Body::Raw(text) => req
                .header("content-type", "application/json")
                .body(text.to_string()),
        };
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
        self.seen
            .insert((method.as_str().to_string(), template.to_string(), status));
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
        seen: BTreeSet::new(),
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
        422
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
    c.check(M::POST, "/api/v1/keys/reseal", &[], None, owner)
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
    // Following a resource that is not there is refused, not an empty stream for ever.
    assert_eq!(
        c.check(
            M::GET,
            "/api/v1/events?resource_id=00000000-0000-4000-8000-000000000000",
            &[],
            None,
            owner
        )
        .await
        .0,
        404
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

    reach_every_documented_status(&mut c, me["email"].as_str().unwrap(), pw).await;
    app.finish();
}

/// Every status the document lists for a route is one a real request gets: what the walk
/// above did not see is asked for here, without a token, with a role that lacks the route's
/// permission, with a session but no CSRF token, with malformed input and with ids that do
/// not exist, then by the requests a status needs of its own.
async fn reach_every_documented_status(c: &mut Checker<'_>, email: &str, password: &str) {
    use Method as M;
    let app = c.app;
    let owner = Auth::Bearer(&app.token);
    // A session, to be used without its CSRF token.
    let signed_in = app
        .http
        .post(format!("{}/api/v1/sessions", app.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 201);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    // A viewer, whose role lacks every permission but reading.
    let (_, viewer) = c
        .check(
            M::POST,
            "/api/v1/members",
            &[],
            Some(json!({"email": "watcher@example.com", "role": "viewer"})),
            Some(&app.token),
        )
        .await;
    let viewer_id = viewer["user_id"].as_str().expect("user id").to_string();
    let (_, token) = c
        .check(
            M::POST,
            "/api/v1/tokens",
            &[],
            Some(json!({"user_id": viewer_id, "name": "watcher"})),
            Some(&app.token),
        )
        .await;
    let viewer_token = token["token"].as_str().expect("token").to_string();

    let unknown = "0190d7c1-0000-7000-8000-000000000000";
    let zeros = "0".repeat(64);
    let fine = |name: &str| -> String {
        match name {
            "collection" => "servers".into(),
            "dock" => "no-such-dock".into(),
            "key" => "no-such-key".into(),
            "sha256" => zeros.clone(),
            _ => unknown.into(),
        }
    };
    // A name that is not even text (a percent-encoded byte that is not UTF-8), an id that
    // is not a UUID.
    let malformed = |name: &str| -> String {
        match name {
            "collection" => "servers".into(),
            "dock" | "key" | "sha256" => "%FF".into(),
            _ => "not-an-id".into(),
        }
    };
    let documented = |c: &Checker<'_>, method: &Method, path: &str| -> BTreeSet<u16> {
        c.doc["paths"][path][method.as_str().to_lowercase()]["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("a status"))
            .collect()
    };
    // What the walk above did not ask for, by the requests each status needs.
    let reach = |what: &str, got: u16, want: u16| assert_eq!(got, want, "{what}");

    // An invitation taken up: a refused password first leaves it good.
    let invite = json!({"email": "newcomer@example.com", "role": "developer", "invite": true});
    let (_, invited) = c
        .ask(M::POST, "/api/v1/members", &[], Body::Json(&invite), owner)
        .await;
    let invitation = invited["invitation"]["token"].as_str().expect("invitation");
    for (password, want) in [("short", 422), (password, 201)] {
        let accept = json!({"token": invitation, "password": password});
        let (got, _) = c
            .ask(
                M::POST,
                "/api/v1/invitations/accept",
                &[],
                Body::Json(&accept),
                Auth::None,
            )
            .await;
        reach("taking up an invitation", got, want);
    }
    // Failed sign-ins to one account, past its limit.
    let wrong = json!({"email": "nobody@example.com", "password": "not the password at all"});
    let mut last = 0;
    for _ in 0..10 {
        last = c
            .ask(
                M::POST,
                "/api/v1/sessions",
                &[],
                Body::Json(&wrong),
                Auth::None,
            )
            .await
            .0;
        if last == 429 {
            break;
        }
    }
    reach("repeated failed sign-ins", last, 429);

    // Docks: a provider that cannot be reached to check a key, a change to a dock that does
    // not exist, a dock that still has resources, a kind the provider does not offer.
    let unreachable = "http://127.0.0.1:9/v2";
    let add = json!({"provider": "digitalocean", "name": "unreachable", "api_key": "k",
        "api_url": unreachable});
    let (got, _) = c
        .ask(M::POST, "/api/v1/docks", &[], Body::Json(&add), owner)
        .await;
    reach("a key that cannot be checked", got, 502);
    let rekey = json!({"api_key": "k", "api_url": unreachable});
    let (got, _) = c
        .ask(
            M::PATCH,
            "/api/v1/docks/{dock}",
            &[DOCK],
            Body::Json(&rekey),
            owner,
        )
        .await;
    reach("a new key that cannot be checked", got, 502);
    let (_, dock) = c
        .check(
            M::GET,
            "/api/v1/docks/{dock}",
            &[DOCK],
            None,
            Some(&app.token),
        )
        .await;
    assert_ne!(
        dock["api_url"], unreachable,
        "a refused change changes nothing: {dock}"
    );
    let limit = json!({"rate_limit": "100/min"});
    let (got, _) = c
        .ask(
            M::PATCH,
            "/api/v1/docks/{dock}",
            &["no-such-dock"],
            Body::Json(&limit),
            owner,
        )
        .await;
    reach("changing a dock that does not exist", got, 404);
    let schema = "/api/v1/docks/{dock}/schema/{collection}";
    let (got, _) = c
        .ask(M::GET, schema, &[DOCK, "web-services"], Body::None, owner)
        .await;
    reach("a kind DigitalOcean does not offer", got, 422);

    // Resources: a provision the provider refuses, retried; one held at the provider,
    // cancelled; a dock with resources, kept; the same Idempotency-Key for another request.
    let refused = json!({"dock": DOCK, "name": "big", "size": "db-s-99vcpu"});
    let (_, big) = c
        .ask(
            M::POST,
            "/api/v1/{collection}",
            &["databases"],
            Body::Json(&refused),
            owner,
        )
        .await;
    let big = big["id"].as_str().expect("id").to_string();
    app.wait_resource("databases", &big, "failed").await;
    let (got, _) = c
        .ask(
            M::POST,
            "/api/v1/{collection}/{id}/retry",
            &["databases", &big],
            Body::None,
            owner,
        )
        .await;
    reach("retrying a failed provision", got, 202);
    app.wait_resource("databases", &big, "failed").await;
    let (got, _) = c
        .ask(
            M::POST,
            "/api/v1/resources/{id}/retry",
            &[&big],
            Body::None,
            owner,
        )
        .await;
    reach("retrying a failed provision of any kind", got, 202);
    app.wait_resource("databases", &big, "failed").await;

    app.sandbox.hold_databases_creating(true);
    let mut held_ids = Vec::new();
    for (n, (path, args)) in [
        ("/api/v1/{collection}/{id}/cancel", vec!["databases"]),
        ("/api/v1/resources/{id}/cancel", vec![]),
    ]
    .into_iter()
    .enumerate()
    {
        // A name of its own: a cluster's name is unique at DigitalOcean, and the first may
        // not be unwound yet when the second is created.
        let held = json!({"dock": DOCK, "name": format!("held-{n}")});
        let (_, r) = c
            .ask(
                M::POST,
                "/api/v1/{collection}",
                &["databases"],
                Body::Json(&held),
                owner,
            )
            .await;
        let id = r["id"].as_str().expect("id").to_string();
        // Cancelled while the provider still says `creating`.
        wait_for(|| async {
            let calls = app.get(&format!("/api/v1/databases/{id}/api-calls")).await;
            let posted = calls.body["items"]
                .as_array()
                .is_some_and(|calls| calls.iter().any(|call| call["method"] == "POST"));
            posted.then_some(())
        })
        .await
        .expect("the create was sent");
        let mut args: Vec<&str> = args;
        args.push(&id);
        let (got, _) = c.ask(M::POST, path, &args, Body::None, owner).await;
        reach("cancelling a provision under way", got, 202);
        held_ids.push(id);
    }
    let (got, _) = c
        .ask(
            M::DELETE,
            "/api/v1/docks/{dock}",
            &[DOCK],
            Body::None,
            owner,
        )
        .await;
    reach("removing a dock that has resources", got, 409);
    app.sandbox.hold_databases_creating(false);
    for id in &held_ids {
        app.wait_resource("databases", id, "failed").await;
    }

    let keyed = |key: &'static str| {
        app.http
            .post(format!("{}/api/v1/domains", app.url))
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
    };
    let first = keyed("reach-409")
        .json(&json!({"dock": DOCK, "name": "first.example.com"}))
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), 202);
    let other = keyed("reach-409")
        .json(&json!({"dock": DOCK, "name": "second.example.com"}))
        .send()
        .await
        .expect("request");
    let status = other.status().as_u16();
    app.saw(other.bytes().await.expect("body").to_vec());
    reach("one Idempotency-Key for two requests", status, 409);
    c.seen
        .insert(("POST".into(), "/api/v1/{collection}".into(), status));
    let unknown_kind = json!({"dock": DOCK, "name": "boat"});
    let (got, _) = c
        .ask(
            M::POST,
            "/api/v1/{collection}",
            &["boats"],
            Body::Json(&unknown_kind),
            owner,
        )
        .await;
    reach("a collection that does not exist", got, 404);
    let (got, _) = c
        .ask(
            M::GET,
            "/api/v1/resources?dock=no-such-dock",
            &[],
            Body::None,
            owner,
        )
        .await;
    reach("resources of a dock that does not exist", got, 404);
    // A resource already being deleted is not deleted twice.
    for (path, args) in [
        ("/api/v1/resources/{id}", vec![big.as_str()]),
        ("/api/v1/{collection}/{id}", vec!["databases", big.as_str()]),
    ] {
        let (got, _) = c.ask(M::DELETE, path, &args, Body::None, owner).await;
        assert!(got == 202 || got == 409, "{path}: {got}");
    }
    let (got, _) = c
        .ask(
            M::DELETE,
            "/api/v1/resources/{id}",
            &[&big],
            Body::None,
            owner,
        )
        .await;
    reach("deleting a resource being deleted", got, 409);

    // Files: contents that match their digest; a digest that is not one; too much.
    let contents = b"<h1>hello</h1>\n";
    let digest = stackdock_docks::Sha256Hex::of(contents).to_string();
    for (sha, body, want) in [
        (digest.as_str(), contents.to_vec(), 204),
        ("xyz", contents.to_vec(), 422),
    ] {
        let resp = app
            .http
            .put(format!("{}/api/v1/files/{sha}", app.url))
            .bearer_auth(&app.token)
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = resp.status().as_u16();
        app.saw(resp.bytes().await.expect("body").to_vec());
        reach("an upload", status, want);
        c.seen
            .insert(("PUT".into(), "/api/v1/files/{sha256}".into(), status));
    }
    // More than a file may be, declared: refused before any of it is sent. (A client that
    // sends it all anyway finds the connection closed under it, so this one only declares.)
    let too_much = 50 * 1024 * 1024 + 1;
    let answer = app.put_announcing(&digest, too_much).await;
    let status: u16 = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    reach("an upload over the limit", status, 413);
    assert!(answer.contains("\"too_large\""), "{answer}");
    c.seen
        .insert(("PUT".into(), "/api/v1/files/{sha256}".into(), status));

    // Keys: the current one is kept; an older one with nothing sealed under it is retired.
    let (_, keys) = c
        .check(M::GET, "/api/v1/keys", &[], None, Some(&app.token))
        .await;
    let keys = keys["items"].as_array().expect("keys").clone();
    let current = keys[0]["id"].as_str().expect("id").to_string();
    let (got, _) = c
        .ask(
            M::DELETE,
            "/api/v1/keys/{key}",
            &[&current],
            Body::None,
            owner,
        )
        .await;
    reach("retiring the current key", got, 409);
    let older = keys[1]["id"]
        .as_str()
        .expect("an older key, after the rotation")
        .to_string();
    let (got, _) = c
        .ask(
            M::DELETE,
            "/api/v1/keys/{key}",
            &[&older],
            Body::None,
            owner,
        )
        .await;
    reach("retiring a key nothing is sealed under", got, 204);

    // Members and tokens: the last owner stays; a token revoked once; another member's
    // tokens, listed by a viewer; a token for nobody.
    let me = c
        .check(M::GET, "/api/v1/me", &[], None, Some(&app.token))
        .await
        .1;
    let me = me["user_id"].as_str().expect("user id").to_string();
    let demote = json!({"role": "viewer"});
    let (got, _) = c
        .ask(
            M::PATCH,
            "/api/v1/members/{user}",
            &[&me],
            Body::Json(&demote),
            owner,
        )
        .await;
    reach("demoting the last owner", got, 409);
    let (got, _) = c
        .ask(
            M::DELETE,
            "/api/v1/members/{user}",
            &[&me],
            Body::None,
            owner,
        )
        .await;
    reach("removing the last owner", got, 409);
    let (got, _) = c
        .ask(
            M::PATCH,
            "/api/v1/members/{user}",
            &[unknown],
            Body::Json(&demote),
            owner,
        )
        .await;
    reach("a member who does not exist", got, 404);
    let (_, made) = c
        .ask(
            M::POST,
            "/api/v1/tokens",
            &[],
            Body::Json(&json!({"name": "once"})),
            owner,
        )
        .await;
    let made = made["id"].as_str().expect("id").to_string();
    for want in [200, 409] {
        let (got, _) = c
            .ask(
                M::DELETE,
                "/api/v1/tokens/{id}",
                &[&made],
                Body::None,
                owner,
            )
            .await;
        reach("revoking a token twice", got, want);
    }
    let (got, _) = c
        .ask(
            M::GET,
            "/api/v1/tokens?all=true",
            &[],
            Body::None,
            Auth::Bearer(&viewer_token),
        )
        .await;
    reach("every member's tokens, for a viewer", got, 403);
    let nobody = json!({"user_id": unknown, "name": "nobody's"});
    let (got, _) = c
        .ask(M::POST, "/api/v1/tokens", &[], Body::Json(&nobody), owner)
        .await;
    reach("a token for a member who does not exist", got, 404);

    // The event stream's 200 never ends: its head is checked above.
    c.seen.insert(("GET".into(), "/api/v1/events".into(), 200));

    for route in stackdock_server::routes::routes() {
        let (method, path) = (route.method.clone(), route.path);
        let params: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let good: Vec<String> = params.iter().map(|p| fine(p)).collect();
        let good: Vec<&str> = good.iter().map(String::as_str).collect();
        let bad: Vec<String> = params.iter().map(|p| malformed(p)).collect();
        let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
        let missing = |c: &Checker<'_>, status: u16| {
            documented(c, &method, path).contains(&status)
                && !c
                    .seen
                    .contains(&(method.to_string(), path.to_string(), status))
        };
        if missing(c, 401) {
            c.ask(method.clone(), path, &good, Body::None, Auth::None)
                .await;
        }
        if missing(c, 403) {
            let lacks = match route.access {
                stackdock_server::routes::Access::Needs(p) => {
                    !stackdock_core::Role::Viewer.allows(p)
                }
                _ => false,
            };
            let auth = if lacks {
                Auth::Bearer(&viewer_token)
            } else {
                Auth::Cookie(&cookie)
            };
            c.ask(method.clone(), path, &good, Body::None, auth).await;
        }
        if missing(c, 400) {
            let query = format!("{path}?no_such_parameter=1");
            c.ask(method.clone(), &query, &good, Body::None, owner)
                .await;
        }
        if missing(c, 400) && !params.is_empty() {
            c.ask(method.clone(), path, &bad, Body::None, owner).await;
        }
        if missing(c, 400) && method != M::GET {
            c.ask(method.clone(), path, &good, Body::Raw("{"), owner)
                .await;
        }
        if missing(c, 404) {
            c.ask(method.clone(), path, &good, Body::None, owner).await;
        }
    }

    // Keys from the environment cannot be rotated from the API: another server, so.
    let env_keys = spawn_app_with(Options {
        env: vec![("STACKDOCK_MASTER_KEY", ENV_KEY)],
        ..Options::default()
    })
    .await;
    let resp = env_keys
        .http
        .post(format!("{}/api/v1/keys/rotate", env_keys.url))
        .bearer_auth(&env_keys.token)
        .send()
        .await
        .expect("rotate");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "keys_from_environment");
    c.seen
        .insert(("POST".into(), "/api/v1/keys/rotate".into(), status));
    env_keys.finish();

    let mut unreached = Vec::new();
    for route in stackdock_server::routes::routes() {
        for status in documented(c, &route.method, route.path) {
            let key = (route.method.to_string(), route.path.to_string(), status);
            if !c.seen.contains(&key) {
                unreached.push(format!("{} {} {status}", route.method, route.path));
            }
        }
    }
    assert!(
        unreached.is_empty(),
        "documented statuses no request reached ({}):\n{}",
        unreached.len(),
        unreached.join("\n")
    );
}
