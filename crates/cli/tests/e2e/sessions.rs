//! Signing in with a password for the web UI: an Argon2id hash is kept, the session cookie is
//! `HttpOnly` and `SameSite=Strict`, every change made with it needs its CSRF token, failed
//! sign-ins are limited per account, and signing out ends the session.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_session_needs_its_csrf_token_to_change_anything_and_ends_on_sign_out() {
    let app = spawn_app().await;
    let password = format!("pw-{:016x}-long", rand::random::<u64>());
    let short = app
        .request(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"password": "short"})),
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.body);
    let set = app
        .request(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    let email = app.get("/api/v1/me").await.body["email"]
        .as_str()
        .unwrap()
        .to_string();

    let wrong = app
        .request_as(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": email, "password": "not the password"})),
            None,
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let unknown = app
        .request_as(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": "nobody@example.test", "password": password})),
            None,
        )
        .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body, unknown.body,
        "an unknown email reads like a wrong password"
    );

    let resp = app
        .http
        .post(format!("{}/api/v1/sessions", app.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), 201);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let body: Value = resp.json().await.expect("JSON");
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    let with = |method: Method, path: &str| {
        app.http
            .request(method, format!("{}{path}", app.url))
            .header("cookie", &session)
    };
    let me = with(Method::GET, "/api/v1/me").send().await.unwrap();
    assert_eq!(me.status(), 200, "a read needs only the cookie");
    let forged = with(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "from a form"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        403,
        "a change without the CSRF token is refused"
    );
    let wrong_token = with(Method::POST, "/api/v1/tokens")
        .header("x-csrf-token", "not-it")
        .json(&json!({"name": "from a form"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 403);
    let made = with(Method::POST, "/api/v1/tokens")
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "from the UI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    let out = with(Method::DELETE, "/api/v1/sessions")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = with(Method::GET, "/api/v1/me").send().await.unwrap();
    assert_eq!(after.status(), 401, "the session ended");

    // The password is kept only as its hash.
    for path in crate::support::files_under(app.data_dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            path.display()
        );
    }
    let audit = app
        .get("/api/v1/audit?action=session.create&limit=10")
        .await
        .body;
    let outcomes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "failure"]);
    app.finish_keeping_secret(&[password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_account() {
    let app = spawn_app().await;
    let password = "a-long-enough-password";
    let set = app
        .request(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(set.status, 204);
    let email = app.get("/api/v1/me").await.body["email"]
        .as_str()
        .unwrap()
        .to_string();
    let attempt = |pw: &'static str| {
        let email = email.clone();
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/sessions", app.url))
                .json(&json!({"email": email, "password": pw}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-wrong-wrong").await.status(), 401);
    }
    let limited = attempt("wrong-wrong-wrong").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Past the limit even the right password waits: guessing cannot go on.
    assert_eq!(attempt("a-long-enough-password").await.status(), 429);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_sets_a_password_once_and_signs_in() {
    let app = spawn_app().await;
    let (code, out, err) = app
        .cli(&[
            "users",
            "add",
            // Kept as one address whatever its case: it signs in as typed below.
            "New@Example.test",
            "--role",
            "developer",
            "--json",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let added: Value = serde_json::from_str(&out).expect("JSON");
    let invitation = added["invitation"]["token"].as_str().unwrap().to_string();
    assert!(added["invitation"]["expires_at"].is_string());

    // The invitation opens no API call, and lists with no token.
    let as_token = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&invitation))
        .await;
    assert_eq!(as_token.status, 401);
    let listed = app.get("/api/v1/tokens?all=true").await.body;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "invitation")
    );

    let password = "the-new-member-password";
    let accept = |token: String, pw: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/invitations/accept", app.url))
                .json(&json!({"token": token, "password": pw}))
                .send()
                .await
                .unwrap()
        }
    };
    let short = accept(invitation.clone(), "short").await;
    assert_eq!(
        short.status(),
        422,
        "a refused password leaves the invitation good"
    );
    let taken = accept(invitation.clone(), password).await;
    assert_eq!(taken.status(), 201);
    let cookie = taken.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_string();
    let me = app
        .http
        .get(format!("{}/api/v1/me", app.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("new@example.test"), Some("developer"))
    );

    let again = accept(invitation.clone(), password).await;
    assert_eq!(again.status(), 401, "an invitation is taken once");
    let signed_in = app
        .request_as(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": "new@example.test", "password": password})),
            None,
        )
        .await;
    assert_eq!(signed_in.status, 201, "{}", signed_in.body);
    let shouted = app
        .request_as(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": "NEW@EXAMPLE.TEST", "password": password})),
            None,
        )
        .await;
    assert_eq!(shouted.status, 201, "{}", shouted.body);
    app.finish_keeping_secret(&[password.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_address_across_accounts() {
    let app = spawn_app().await;
    let attempt = |n: usize| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/sessions", app.url))
                .json(&json!({"email": format!("guess-{n}@example.test"), "password": "nope-nope-nope"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Each account fails once; the address as a whole runs out after twenty.
    for n in 0..20 {
        assert_eq!(attempt(n).await, 401, "attempt {n}");
    }
    assert_eq!(attempt(20).await, 429);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sets_a_password_from_the_cli_and_signs_in_with_it() {
    let app = spawn_app().await;
    let sign_in = |password: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/sessions", app.url))
                .json(&json!({"email": "owner@localhost", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let password = "correct horse battery staple";
    assert_eq!(sign_in(password).await, 401, "no password yet");

    let (code, out, err) = app.cli_with_stdin(&["password"], "short\n").await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("password: must be 12"), "{err}");
    let (code, out, err) = app
        .cli_with_stdin(&["password"], &format!("{password}\n"))
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("owner@localhost"), "{out}");
    assert!(!out.contains(password) && !err.contains(password));
    assert_eq!(sign_in(password).await, 201);
    app.finish();
}
