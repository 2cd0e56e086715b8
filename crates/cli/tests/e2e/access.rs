//! Who may do what: every route of the API, taken from the route table the router is built
//! from, called by a member of each role and by a member of another organisation. A role that
//! lacks the route's permission gets exactly 403 and leaves a `denied` audit row; one that has
//! it is never refused; another organisation's member finds nothing of this one.

use reqwest::Method;
use serde_json::{Value, json};
use stackdock_core::{AuditEntry, OrgId, Outcome, Permission, Role, TokenId, UserId};
use stackdock_server::Token;
use stackdock_server::routes::{Access, routes};
use stackdock_store::{Bootstrap, Store};

use crate::support::{DOCK, TestApp, spawn_app};

/// A member of this org with `role` and a token of theirs.
async fn member_token(app: &TestApp, role: Role) -> String {
    let email = format!("{role}@access.test");
    let added = app
        .post("/api/v1/members", json!({"email": email, "role": role}))
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let made = app
        .post(
            "/api/v1/tokens",
            json!({"user_id": added.body["user_id"], "name": format!("{role} key")}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["role"], Value::Null, "the member's role");
    made.body["token"].as_str().unwrap().to_string()
}

/// The owner of a second organisation in the same database, and their token.
async fn other_org_token(app: &TestApp) -> String {
    let store = stackdock_store::SqliteStore::open(&app.data_dir.path().join("stackdock.db"))
        .await
        .expect("open the database");
    let token = Token::generate();
    let b = Bootstrap {
        org_id: OrgId::new(),
        org_name: "elsewhere".into(),
        user_id: UserId::new(),
        email: "owner@elsewhere.test".into(),
        token_id: TokenId::new(),
        token_hash: Token::hash(&token.0),
    };
    let audit = AuditEntry::new(b.org_id, Some(b.user_id), "org.bootstrap", Outcome::Success);
    store.bootstrap(&b, audit).await.expect("a second org");
    store.close().await;
    token.0
}

/// The route's path with its parameters filled from this org's objects.
fn concrete(path: &str, ids: &Value) -> String {
    let op = ids["operation"].as_str().unwrap();
    let resource = ids["resource"].as_str().unwrap();
    let mut p = path
        .replace("{dock}", DOCK)
        .replace("{collection}", "servers")
        // A user of nobody: the route's access is what is under test.
        .replace("{user}", &UserId::new().to_string());
    p = if p.starts_with("/api/v1/operations/") {
        p.replace("{id}", op)
    } else if p.starts_with("/api/v1/tokens/") {
        // A token of nobody: the route's access is what is under test, not the revocation.
        p.replace("{id}", &TokenId::new().to_string())
    } else {
        p.replace("{id}", resource)
    };
    p
}

async fn call(app: &TestApp, method: &Method, path: &str, token: &str) -> (u16, Value) {
    let mut req = app
        .http
        .request(method.clone(), format!("{}{path}", app.url))
        .bearer_auth(token);
    if *method == Method::POST || *method == Method::PATCH {
        // An empty body: what the guard decides comes before what the handler validates.
        req = req.json(&json!({}));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    // The event stream never ends; its status is all there is to see.
    if path.ends_with("/events") {
        return (status, Value::Null);
    }
    let bytes = resp.bytes().await.expect("body").to_vec();
    app.saw(bytes.clone());
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_exactly_the_roles_that_hold_its_permission() {
    let app = spawn_app().await;
    let made = app.provision("matrix", "s-1vcpu-1gb").await;
    let resource = made["id"].as_str().unwrap().to_string();
    app.wait_state(&resource, "provisioned").await;
    let ids = json!({"resource": resource, "operation": made["operation_id"]});

    let mut callers: Vec<(String, Option<Role>)> = vec![(app.token.clone(), Some(Role::Owner))];
    for role in [Role::Admin, Role::Developer, Role::Viewer] {
        callers.push((member_token(&app, role).await, Some(role)));
    }
    let stranger = other_org_token(&app).await;
    callers.push((stranger, None));

    let table = routes();
    assert!(
        table.len() >= 30,
        "the table lists every route: {}",
        table.len()
    );
    let mut denied = 0;
    let mut denied_roles = std::collections::BTreeSet::new();
    for route in &table {
        let path = concrete(route.path, &ids);
        for (token, role) in &callers {
            let (status, body) = call(&app, &route.method, &path, token).await;
            let what = format!("{} {path} as {role:?}: {status} {body}", route.method);
            assert_ne!(status, 401, "{what}");
            match (role, route.access) {
                // Anyone may call it: it is never refused for who the caller is.
                (_, Access::Public) => assert_ne!(status, 403, "{what}"),
                // Another org's owner holds every permission in their own org and none here:
                // whatever names this org's objects is not found, and lists hold none of them.
                // The master keys are the installation's: another org's owner is refused.
                (None, Access::Needs(Permission::KeysFull)) => assert_eq!(status, 403, "{what}"),
                (None, _) => {
                    assert_ne!(status, 403, "{what}");
                    // (A body checked before the lookup may be refused first: 400.)
                    if ["{id}", "{dock}", "{user}"]
                        .iter()
                        .any(|p| route.path.contains(p))
                    {
                        assert!(status == 404 || status == 400, "{what}");
                    }
                    // What it is answered holds nothing of this org (a 404 may echo the
                    // name it was asked for, nothing more).
                    if (200..300).contains(&status) {
                        let text = body.to_string();
                        assert!(!text.contains(&resource) && !text.contains(DOCK), "{what}");
                    }
                }
                (Some(_), Access::Member) => assert_ne!(status, 403, "{what}"),
                (Some(role), Access::Needs(p)) if role.allows(p) => {
                    assert_ne!(status, 403, "{what}")
                }
                (Some(refused), Access::Needs(p)) => {
                    assert_eq!(status, 403, "{what}");
                    assert_eq!(body["error"]["code"], "forbidden", "{what}");
                    assert!(
                        body.to_string().contains(p.as_str()),
                        "names the permission: {what}"
                    );
                    denied += 1;
                    denied_roles.insert(refused.as_str());
                }
            }
        }
    }
    assert_eq!(
        denied_roles.into_iter().collect::<Vec<_>>(),
        ["developer", "viewer"],
        "owners and admins hold every permission; the others are refused somewhere"
    );

    // Every refusal left its row, naming the route and the permission.
    let audit = app.get("/api/v1/audit?limit=1000").await;
    assert_eq!(audit.status, 200);
    let rows: Vec<&Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .collect();
    assert_eq!(rows.len(), denied, "one denied row per refused request");
    assert!(rows.iter().all(|r| r["details"]["permission"].is_string()
        && r["action"].as_str().is_some_and(|a| a.contains("/api/v1/"))));
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_revoked_and_capped_by_role() {
    let app = spawn_app().await;
    let dev = member_token(&app, Role::Developer).await;
    let me = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&dev))
        .await;
    assert_eq!(me.body["role"], "developer");

    // A developer's own viewer token: narrower than its member, never wider.
    let narrow = app
        .request_as(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"role": "viewer", "expires_in_days": 30})),
            Some(&dev),
        )
        .await;
    assert_eq!(narrow.status, 201, "{}", narrow.body);
    assert!(narrow.body["expires_at"].is_string());
    let viewer = narrow.body["token"].as_str().unwrap().to_string();
    let as_viewer = app
        .request_as(
            Method::POST,
            "/api/v1/servers",
            Some(json!({})),
            Some(&viewer),
        )
        .await;
    assert_eq!(as_viewer.status, 403, "{}", as_viewer.body);
    let wider = app
        .request_as(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"role": "admin"})),
            Some(&dev),
        )
        .await;
    assert_eq!(wider.status, 409, "{}", wider.body);
    for bad in [
        json!({"role": "root"}),
        json!({"expires_in_days": 0}),
        json!({"name": ""}),
    ] {
        let r = app
            .request_as(
                Method::POST,
                "/api/v1/tokens",
                Some(bad.clone()),
                Some(&dev),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Acting for another member needs members:full.
    let for_other = app
        .request_as(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"user_id": UserId::new().to_string()})),
            Some(&dev),
        )
        .await;
    assert_eq!(for_other.status, 403, "{}", for_other.body);

    // Listing shows one's own tokens without their text; the owner may list everyone's.
    let mine = app
        .request_as(Method::GET, "/api/v1/tokens", None, Some(&dev))
        .await;
    let mine = mine.body["items"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.iter().all(|t| t["email"] == "developer@access.test"));
    assert!(
        mine.iter()
            .all(|t| t.get("token").is_none() && t.get("token_hash").is_none())
    );
    let everyone = app.get("/api/v1/tokens?all=true").await;
    assert_eq!(
        everyone.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        everyone.body
    );
    let refused = app
        .request_as(Method::GET, "/api/v1/tokens?all=true", None, Some(&dev))
        .await;
    assert_eq!(refused.status, 403);

    // The owner's token is not the developer's to revoke; their own viewer token is.
    let owners = app.get("/api/v1/tokens").await;
    let owner_token = owners.body["items"][0]["id"].as_str().unwrap().to_string();
    let hidden = app
        .request_as(
            Method::DELETE,
            &format!("/api/v1/tokens/{owner_token}"),
            None,
            Some(&dev),
        )
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    let id = narrow.body["id"].as_str().unwrap();
    let revoked = app
        .request_as(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
            Some(&dev),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].is_string());
    let after = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&viewer))
        .await;
    assert_eq!(after.status, 401, "a revoked token is nobody");

    let audit = app.get("/api/v1/audit?limit=1000").await.body;
    let count = |action: &str| {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == action)
            .count()
    };
    assert_eq!(
        (
            count("token.create"),
            count("token.revoke"),
            count("member.add")
        ),
        (2, 1, 1)
    );
    // A token's text is answered once and kept nowhere: only its hash is stored.
    for path in crate::support::files_under(app.data_dir.path()) {
        let bytes = std::fs::read(&path).expect("read a data file");
        for text in [&dev, &viewer] {
            assert!(
                !bytes.windows(text.len()).any(|w| w == text.as_bytes()),
                "{} holds a token's text",
                path.display()
            );
        }
    }
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_members_and_makes_lists_and_revokes_tokens() {
    let app = spawn_app().await;
    let (code, out, err) = app
        .cli(&[
            "members",
            "add",
            "ci@access.test",
            "--role",
            "developer",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let member: Value = serde_json::from_str(&out).expect("one JSON document");
    let user = member["user_id"].as_str().unwrap().to_string();
    let (code, out, _) = app
        .cli(&["members", "add", "ci@access.test", "--role", "viewer"])
        .await;
    assert_ne!(code, 0, "a member twice is refused: {out}");

    let (code, out, err) = app
        .cli(&[
            "tokens",
            "create",
            "--user",
            &user,
            "--name",
            "ci",
            "--expires-in-days",
            "7",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let text = out
        .lines()
        .find_map(|l| l.strip_prefix("token (shown once; keep it safe): "))
        .expect("the token is printed once")
        .to_string();
    let whoami = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&text))
        .await;
    assert_eq!(whoami.body["email"], "ci@access.test");

    let (code, out, _) = app.cli(&["tokens", "list", "--everyone", "--json"]).await;
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    let ci = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("the new token is listed")
        .clone();
    assert!(!out.contains(&text), "listing never shows a token's text");
    let (code, out, err) = app
        .cli(&["tokens", "revoke", ci["id"].as_str().unwrap()])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("revoked"), "{out}");
    let after = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&text))
        .await;
    assert_eq!(after.status, 401);

    // Roles change and members leave, but the last owner stays.
    let (code, out, err) = app
        .cli(&["members", "set-role", &user, "--role", "viewer", "--json"])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["role"],
        "viewer"
    );
    let me = app.get("/api/v1/me").await.body;
    let owner = me["user_id"].as_str().unwrap().to_string();
    let (code, _, err) = app
        .cli(&["members", "set-role", &owner, "--role", "admin"])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("last owner"), "{err}");
    let (code, out, err) = app.cli(&["members", "remove", &user]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = app.cli(&["members", "list", "--json"]).await;
    let members: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 1, "{members}");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_audited_with_its_request_and_token_and_found_by_filter() {
    let app = spawn_app().await;
    let viewer = member_token(&app, Role::Viewer).await;
    let resp = app
        .http
        .post(format!("{}/api/v1/docks", app.url))
        .bearer_auth(&viewer)
        .json(&json!({"provider": "digitalocean", "name": "nope", "api_key": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every answer names its request")
        .to_string();
    let me = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&viewer))
        .await;
    assert_eq!(me.body["role"], "viewer");

    let (code, out, err) = app.cli(&["audit", "--outcome", "denied", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let rows: Value = serde_json::from_str(&out).expect("JSON");
    let rows = rows["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the refusal: {rows:?}");
    assert_eq!(rows[0]["action"], "POST /api/v1/docks");
    assert_eq!(rows[0]["request_id"], request_id.as_str());
    assert_eq!(rows[0]["actor"], me.body["user_id"]);
    assert!(rows[0]["token_id"].is_string());
    assert_eq!(rows[0]["details"]["permission"], "docks:full");

    // A request that succeeds writes its rows with its own request id too.
    let made = app
        .http
        .post(format!("{}/api/v1/members", app.url))
        .bearer_auth(&app.token)
        .json(&json!({"email": "another@access.test", "role": "viewer"}))
        .send()
        .await
        .expect("request");
    assert_eq!(made.status(), 201);
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    let (_, out, _) = app
        .cli(&["audit", "--action", "member.add", "--limit", "1", "--json"])
        .await;
    let row = &serde_json::from_str::<Value>(&out).unwrap()["items"][0];
    assert_eq!(row["request_id"], made_id.as_str());
    let (code, _, err) = app.cli(&["audit", "--outcome", "maybe"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("outcome"), "{err}");
    app.finish();
}
