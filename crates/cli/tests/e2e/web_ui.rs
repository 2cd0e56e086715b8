//! The web UI in a real browser (headless chromium over WebDriver), against the real binary
//! and the DigitalOcean sandbox: sign in, connect a dock, provision from the form the schema
//! makes, watch the row settle without a reload, read the provider calls, deprovision; and a
//! viewer, who sees no button they cannot use and whose forged form posts are refused.
//!
//! Each test ends with the secret scan of [`TestApp::finish`], which also reads every page
//! the test looked at.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::Browser;
use stackdock_sandbox::Fault;

use crate::support::{DOCK, Options, TestApp, spawn_app_with};

/// Gives the owner a password for the sign-in form; answers their email.
async fn owner_password(app: &TestApp, password: &str) -> String {
    let set = app
        .request(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    app.get("/api/v1/me").await.body["email"]
        .as_str()
        .expect("email")
        .to_string()
}

/// A `fetch` from the page: `{status, body}`.
fn post_from_page(path: &str, body: &str) -> String {
    format!(
        "var done = arguments[arguments.length - 1];
         fetch({path:?}, {{method: 'POST', credentials: 'same-origin',
             headers: {{'content-type': 'application/x-www-form-urlencoded'}}, body: {body}}})
           .then(function (r) {{ return r.text().then(function (t) {{ done({{status: r.status, body: t}}); }}); }})
           .catch(function (e) {{ done({{status: -1, body: String(e)}}); }});"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_connects_a_dock_provisions_watches_it_settle_live_and_deprovisions() {
    let app = spawn_app_with(Options {
        // Slow enough that the dashboard opens while the droplet is still being made.
        ready_after: Duration::from_secs(3),
        connect_dock: false,
        ..Options::default()
    })
    .await;
    let Some(browser) = Browser::start(&app).await else {
        return app.finish();
    };
    let password = format!("pw-{:016x}-long", rand::random::<u64>());
    let email = owner_password(&app, &password).await;

    // Signed out, every page leads to the sign-in form; a wrong password is told in words.
    browser.goto("/").await;
    browser.wait_path(|p| p == "/sign-in").await;
    browser.fill("#email", &email).await;
    browser.fill("#password", "not the password at all").await;
    browser.click("form[action='/sign-in'] button").await;
    assert_eq!(
        browser.text("#sign-in-error").await,
        "Wrong email or password."
    );
    browser.sign_in(&email, &password).await;
    assert_eq!(browser.text("h1").await, "Resources");

    // A form post without the session's CSRF token changes nothing.
    let forged = browser
        .run_async(&post_from_page(
            "/docks",
            "'provider=digitalocean&name=no-csrf&api_key=x'",
        ))
        .await;
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(forged["body"].as_str().unwrap().contains("Form refused"));
    app.saw(forged.to_string().into_bytes());

    // A key the provider refuses: its reason is shown, the key is not.
    browser.goto("/docks").await;
    browser.select("#d-provider", "digitalocean").await;
    browser.fill("#d-name", DOCK).await;
    let wrong_key = format!("dop_v1_wrong{:016x}", rand::random::<u64>());
    browser.fill("#d-key", &wrong_key).await;
    browser.fill("#d-url", &app.sandbox.base_url()).await;
    browser
        .click("form[action='/docks'] button[type=submit]")
        .await;
    let refusal = browser.text("#dock-error").await;
    assert!(
        refusal.contains("refused the API key") && refusal.contains("Unable to authenticate you"),
        "{refusal}"
    );
    let page = browser.source(&app).await;
    assert!(
        !page.contains(&wrong_key),
        "a refused key is not shown back"
    );
    assert_eq!(
        browser
            .find("#d-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        "",
        "the key field starts empty again"
    );
    assert_eq!(
        app.get("/api/v1/docks").await.body["items"],
        json!([]),
        "no dock was saved"
    );

    // The right key connects the dock.
    browser.fill("#d-name", DOCK).await;
    browser.fill("#d-key", &app.canary).await;
    browser.fill("#d-url", &app.sandbox.base_url()).await;
    browser
        .click("form[action='/docks'] button[type=submit]")
        .await;
    browser.wait_path(|p| p == "/docks").await;
    browser.wait_text("#docks tbody tr td", DOCK).await;
    browser.source(&app).await;

    // The form the dock's schema makes: a bad field's error stands next to that field.
    browser
        .goto("/provision?collection=servers&dock=do-test")
        .await;
    for field in [
        "name",
        "region",
        "size",
        "image",
        "user_data",
        "tags",
        "ipv6",
    ] {
        browser.find(&format!("[name='f.{field}']")).await;
    }
    browser.screenshot("provision-form").await;
    browser.fill("[name='f.name']", "Not A Hostname!").await;
    browser.fill("[name='f.region']", "nyc3").await;
    browser.fill("[name='f.size']", "s-1vcpu-1gb").await;
    browser.fill("[name='f.image']", "ubuntu-24-04-x64").await;
    browser.click("#provision-form button[type=submit]").await;
    let error = browser.text(".field[data-field='name'] .field-error").await;
    assert!(!error.is_empty(), "the name's error is at the name");
    assert_eq!(
        browser.run("return document.activeElement.name;").await,
        json!("f.name"),
        "the field in error has the focus"
    );
    assert_eq!(
        browser.count(".field-error").await,
        1,
        "only the bad field has an error"
    );
    assert_eq!(
        browser
            .find("[name='f.size']")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("s-1vcpu-1gb"),
        "what was typed stays"
    );
    assert!(app.sandbox.droplets().is_empty(), "nothing was made");

    browser.fill("[name='f.name']", "web-1").await;
    let user_data = format!("#!/bin/sh\nexport API_TOKEN={}\n", app.init_canary);
    browser.fill("[name='f.user_data']", &user_data).await;
    browser.click("#provision-form button[type=submit]").await;
    let at = browser.wait_path(|p| p.starts_with("/resources/")).await;
    let id = at.trim_start_matches("/resources/").to_string();

    // The dashboard opens with the row provisioning, and the row turns provisioned in place.
    browser.goto("/").await;
    let row = format!("#r-{id} [data-field='state']");
    assert_eq!(browser.text(&row).await, "provisioning");
    browser.run("window.stayedOnThisPage = true;").await;
    browser.wait_text(&row, "provisioned").await;
    assert_eq!(
        browser
            .run("return window.stayedOnThisPage === true;")
            .await,
        Value::Bool(true),
        "the row changed without a reload"
    );
    browser.screenshot("dashboard").await;
    browser.source(&app).await;

    // At phone width the page does not scroll sideways (a wide table scrolls in its box).
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    let fits = browser
        .run("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(
        fits,
        Value::Bool(true),
        "the dashboard fits a phone's width"
    );
    browser
        .client
        .set_window_size(1280, 1000)
        .await
        .expect("resize");

    // A resource made elsewhere (here, through the API) while the dashboard is open is
    // announced on it without a reload, with a link that shows it.
    let other = app.provision("made-elsewhere", "s-1vcpu-1gb").await;
    let other = other["id"].as_str().expect("id").to_string();
    browser
        .wait_text("#new-rows-link", "1 new resource: show it")
        .await;
    assert_eq!(
        browser
            .run("return window.stayedOnThisPage === true;")
            .await,
        Value::Bool(true),
        "announced without a reload"
    );
    browser.click("#new-rows-link").await;
    browser
        .wait_text(&format!("#r-{other} td a"), "made-elsewhere")
        .await;

    // The resource page: its state and the provider calls made for it.
    browser.click(&format!("#r-{id} a")).await;
    browser.wait_text("#state", "provisioned").await;
    let calls = browser.text("#timeline tbody").await;
    assert!(
        calls.contains("POST") && calls.contains("/v2/droplets"),
        "{calls}"
    );
    assert!(calls.contains("202") && calls.contains(" ms"), "{calls}");
    browser.screenshot("resource").await;
    browser.source(&app).await;

    // Deprovision: the state goes on to deprovisioned on the page, live.
    browser.click("#action-deprovision").await;
    browser.wait_path(|p| p == at).await;
    browser.wait_text("#state", "deprovisioned").await;
    let calls = browser.text("#timeline tbody").await;
    assert!(
        calls.contains("DELETE"),
        "the delete call appeared: {calls}"
    );
    let left: Vec<Value> = app.sandbox.droplets();
    assert!(
        left.len() == 1 && left[0]["name"] == "made-elsewhere",
        "the droplet is gone, and only the one made elsewhere is left: {left:?}"
    );
    browser.source(&app).await;

    // Sign out: the session is over.
    browser.click("form[action='/sign-out'] button").await;
    browser.wait_path(|p| p == "/sign-in").await;
    browser.goto("/").await;
    browser.wait_path(|p| p == "/sign-in").await;
    browser.close().await;
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_button_they_cannot_use_and_their_forged_posts_get_403() {
    let app = spawn_app_with(Options::default()).await;
    let Some(browser) = Browser::start(&app).await else {
        return app.finish();
    };
    let created = app.provision("kept-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "provisioned").await;

    // The owner adds a viewer on the members page and hands on the invitation it shows once.
    let owner_pw = format!("pw-{:016x}-long", rand::random::<u64>());
    let owner = owner_password(&app, &owner_pw).await;
    browser.sign_in(&owner, &owner_pw).await;
    browser.goto("/members").await;
    let email = "viewer@example.test";
    browser.fill("#m-email", email).await;
    browser.select("#m-role", "viewer").await;
    browser
        .click("form[action='/members'] button[type=submit]")
        .await;
    let invitation = browser.text(".notice code.secret").await;
    assert!(invitation.starts_with("sdt_"), "{invitation}");
    browser.source(&app).await;

    // A token made on the tokens page is shown once, works, and is revoked there.
    browser.goto("/tokens").await;
    browser.fill("#t-name", "from-the-ui").await;
    browser
        .click("form[action='/tokens'] button[type=submit]")
        .await;
    let token = browser.text("#new-token").await;
    let me = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&token))
        .await;
    assert_eq!(me.status, 200, "the new token works: {}", me.body);
    browser.goto("/tokens").await;
    assert!(
        !browser.source(&app).await.contains(&token),
        "the token's text is shown only once"
    );
    browser
        .click("#tokens tr[data-name='from-the-ui'] form[action$='/revoke'] button")
        .await;
    browser
        .wait_text(
            "#tokens tr[data-name='from-the-ui'] td:last-child",
            "revoked",
        )
        .await;
    let me = app
        .request_as(Method::GET, "/api/v1/me", None, Some(&token))
        .await;
    assert_eq!(me.status, 401, "the revoked token is refused");
    browser.click("form[action='/sign-out'] button").await;
    browser.wait_path(|p| p == "/sign-in").await;

    // The viewer takes it up: a used invitation is refused in words, and they are signed in.
    let password = format!("pw-{:016x}-long", rand::random::<u64>());
    browser.goto("/invitation").await;
    browser.fill("#invitation", &invitation).await;
    browser.fill("#password", &password).await;
    browser.click("form[action='/invitation'] button").await;
    browser.wait_path(|p| p == "/").await;
    assert!(browser.text("header").await.contains("(viewer)"));
    let viewer_id = app
        .all("/api/v1/members")
        .await
        .into_iter()
        .find(|m| m["email"] == email)
        .expect("the viewer is a member")["user_id"]
        .clone();
    browser.click("form[action='/sign-out'] button").await;
    // Signed out before the next page is asked for: otherwise the sign-out's redirect can
    // land after it and replace it.
    browser.wait_path(|p| p == "/sign-in").await;
    browser.goto("/invitation").await;
    browser.fill("#invitation", &invitation).await;
    browser.fill("#password", &password).await;
    browser.click("form[action='/invitation'] button").await;
    assert!(
        browser
            .text("#invitation-error")
            .await
            .contains("unknown, used or expired")
    );

    browser.sign_in(email, &password).await;
    browser.find(&format!("#r-{id}")).await;
    assert_eq!(browser.count("#provision").await, 0, "no provision button");
    assert_eq!(
        browser.count("a[href='/provision']").await,
        0,
        "no provision link"
    );
    assert_eq!(browser.count("a[href='/audit']").await, 0, "no audit link");
    browser.goto(&format!("/resources/{id}")).await;
    browser.wait_text("#state", "provisioned").await;
    assert_eq!(
        browser.count("form[action^='/resources/']").await,
        0,
        "no actions"
    );
    browser.goto("/members").await;
    assert_eq!(
        browser.count("form[action='/members']").await,
        0,
        "no add form"
    );
    browser.source(&app).await;

    // The provision page itself is refused, as a page that says why.
    browser.goto("/provision").await;
    assert_eq!(browser.text("h1").await, "Not allowed");
    assert!(browser.text("main").await.contains("provisioning:full"));

    // A forged post with the viewer's own valid CSRF token: refused by role, and audited.
    let forged = browser
        .run_async(&post_from_page(
            "/provision",
            "'csrf=' + encodeURIComponent(document.querySelector(\"form[action='/sign-out'] input[name=csrf]\").value) + '&collection=servers&dock=do-test&f.name=forged&f.region=nyc3&f.size=s-1vcpu-1gb&f.image=ubuntu-24-04-x64'",
        ))
        .await;
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(forged["body"].as_str().unwrap().contains("Not allowed"));
    let deprovision = browser
        .run_async(&post_from_page(
            &format!("/resources/{id}/deprovision"),
            "'csrf=' + encodeURIComponent(document.querySelector(\"form[action='/sign-out'] input[name=csrf]\").value)",
        ))
        .await;
    assert_eq!(deprovision["status"], 403, "{deprovision}");
    app.saw(forged.to_string().into_bytes());
    let denied: Vec<Value> = app
        .all("/api/v1/audit?outcome=denied")
        .await
        .into_iter()
        .filter(|a| a["actor"] == viewer_id)
        .collect();
    let actions: Vec<&str> = denied.iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"POST /provision"), "{actions:?}");
    assert!(
        actions.contains(&"POST /resources/{id}/{action}"),
        "{actions:?}"
    );
    let servers = app.all("/api/v1/servers").await;
    assert_eq!(servers.len(), 1, "nothing was provisioned");
    assert_eq!(
        app.get(&format!("/api/v1/servers/{id}")).await.body["provisioning_state"],
        "provisioned"
    );

    // The owner reads the refusals in the audit log, then changes the viewer's role and
    // removes them on the members page.
    browser.click("form[action='/sign-out'] button").await;
    browser.wait_path(|p| p == "/sign-in").await;
    browser.sign_in(&owner, &owner_pw).await;
    browser.goto("/audit?outcome=denied").await;
    let log = browser.text("#audit tbody").await;
    assert!(
        log.contains(email) && log.contains("POST /provision"),
        "{log}"
    );
    browser.goto("/members").await;
    let row = format!(
        "form[action='/members/{}/role']",
        viewer_id.as_str().unwrap()
    );
    browser.select(&format!("{row} select"), "developer").await;
    browser.click(&format!("{row} button")).await;
    browser
        .wait_text(&format!("{row} option[selected]"), "developer")
        .await;
    let role = app
        .all("/api/v1/members")
        .await
        .into_iter()
        .find(|m| m["email"] == email)
        .expect("still a member")["role"]
        .clone();
    assert_eq!(role, "developer");
    browser
        .click(&format!(
            "form[action='/members/{}/remove'] button",
            viewer_id.as_str().unwrap()
        ))
        .await;
    browser.wait_path(|p| p == "/members").await;
    let deadline = std::time::Instant::now() + crate::support::DEADLINE;
    while browser.source(&app).await.contains(email) {
        assert!(
            std::time::Instant::now() < deadline,
            "the viewer stayed listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !app.all("/api/v1/members")
            .await
            .iter()
            .any(|m| m["email"] == email),
        "removed"
    );

    // A page that does not exist is a page that says so.
    browser.goto("/no-such-page").await;
    assert_eq!(browser.text("h1").await, "Page not found");
    let resp = app
        .http
        .get(format!("{}/no-such-page", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let api = app.get("/api/v1/no-such-route").await;
    assert_eq!(api.status, 404);
    assert_eq!(
        api.body["error"]["code"], "not_found",
        "the API's 404 stays JSON"
    );
    browser.close().await;
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_resource_shows_the_providers_error_and_is_retried_from_its_page() {
    let app = spawn_app_with(Options::default()).await;
    let Some(browser) = Browser::start(&app).await else {
        return app.finish();
    };
    app.sandbox.inject(Fault::error_with(
        Some("POST"),
        "/v2/droplets",
        403,
        "forbidden",
        "You do not have access for the attempted action.",
        1,
    ));
    let password = format!("pw-{:016x}-long", rand::random::<u64>());
    let email = owner_password(&app, &password).await;
    browser.sign_in(&email, &password).await;
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap().to_string();

    // The provider's refusal, with its code, and only the buttons that fit a failed resource.
    browser.goto(&format!("/resources/{id}")).await;
    browser.wait_text("#state", "failed").await;
    assert_eq!(browser.text("#error-code").await, "forbidden");
    assert!(
        browser
            .text("#error-message")
            .await
            .contains("You do not have access")
    );
    let shown = |css: &'static str| {
        let browser = &browser;
        async move { browser.find(css).await.is_displayed().await.expect("shown") }
    };
    assert!(shown("#action-retry").await);
    assert!(shown("#action-deprovision").await);
    assert!(!shown("#action-cancel").await);

    // Retry: the page follows it to provisioned, and the error and the retry button go.
    browser.click("#action-retry").await;
    browser.wait_text("#state", "provisioned").await;
    assert!(!shown("#error").await, "the error is cleared");
    assert!(!shown("#action-retry").await);
    assert!(shown("#action-deprovision").await);
    let calls = browser.text("#timeline tbody").await;
    assert_eq!(
        calls.matches("POST").count(),
        2,
        "both creates are in the timeline: {calls}"
    );
    assert!(calls.contains("403") && calls.contains("202"), "{calls}");
    browser.source(&app).await;
    browser.close().await;
    app.finish();
}
