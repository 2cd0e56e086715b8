//! The HTTP plumbing every adapter is written on (`docks::http`), seen through the DigitalOcean
//! sandbox: which failures are retried and how long it waits, which are permanent and in whose
//! words, what each journal entry says, that the dock's budget paces the calls, and that the
//! API key never leaks into any of it.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use stackdock_core::{ApiCall, Provider, ResourceKind, SecretString};
use stackdock_docks::digitalocean::api::{self, DigitalOceanApi};
use stackdock_docks::digitalocean::{self, DigitalOceanAdapter};
use stackdock_docks::http::HttpSession;
use stackdock_docks::{Ctx, DockAccess, DockAdapter, DockError, RateLimit, RetryPolicy};
use stackdock_sandbox::{DoSandboxConfig, Fault};
use support::{
    Run, adapter, canary, dock, dock_at, dock_limited, engine, fast_retry, requests_to, sandbox,
    server_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A session on `dock` as the DigitalOcean adapter would build it, journaling into `run`.
fn session(dock: &DockAccess, run: &Run, retry: RetryPolicy) -> HttpSession {
    let mut ctx = Ctx::new(run.ctx.scope.clone(), None, 1, Vec::new());
    ctx.retry = retry;
    HttpSession::new(
        reqwest::Client::new(),
        dock,
        digitalocean::DEFAULT_BASE_URL,
        &ctx,
        api::read_error,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_on_a_get_is_retried_up_to_max_attempts_then_unavailable() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::error(Some("GET"), "/v2/account", 503, 100));
    let http = session(&dock, &run, fast_retry());

    let err = http
        .get("/v2/account", &[])
        .await
        .expect_err("still failing");

    let DockError::Unavailable {
        provider, detail, ..
    } = &err
    else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(*provider, Provider::DigitalOcean);
    assert!(detail.contains("503"), "{detail}");
    assert_eq!(requests_to(&sb, "GET", "/v2/account").len(), 3);
    let tries: Vec<(u32, Option<u16>)> = run
        .recorder
        .calls()
        .iter()
        .map(|c| (c.attempt, c.status))
        .collect();
    assert_eq!(tries, [(1, Some(503)), (2, Some(503)), (3, Some(503))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_that_clears_within_the_budget_is_invisible_to_the_caller() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::error(Some("GET"), "/v2/account", 500, 2));
    let http = session(&dock, &run, fast_retry());

    let resp = http.get("/v2/account", &[]).await.expect("third try");

    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["account"]["status"], "active");
    assert_eq!(requests_to(&sb, "GET", "/v2/account").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_at_least_retry_after_before_the_next_try() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::rate_limited(Some("GET"), "/v2/account", 1, 1));
    let http = session(&dock, &run, fast_retry());

    let resp = http.get("/v2/account", &[]).await.expect("second try");

    assert_eq!(resp.status, 200);
    let tries = requests_to(&sb, "GET", "/v2/account");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200]
    );
    // The backoff alone (20ms base) would retry far sooner; only Retry-After explains this.
    let waited = tries[1].at.duration_since(tries[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, Retry-After said 1s"
    );
    let journaled: Vec<Option<u16>> = run.recorder.calls().iter().map(|c| c.status).collect();
    assert_eq!(journaled, [Some(429), Some(200)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_max_wait_gives_up_at_once_and_so_do_calls_after_it() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    // An hour's wait must not hold a worker; the operation is rescheduled instead.
    sb.inject(Fault::rate_limited(Some("GET"), "/v2/account", 3600, 1));
    let http = session(&dock, &run, fast_retry());

    let started = Instant::now();
    let err = http.get("/v2/account", &[]).await.expect_err("gave up");

    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, DockError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert!(err.is_transient(), "the engine must be free to try later");
    assert_eq!(requests_to(&sb, "GET", "/v2/account").len(), 1);

    // The 429 paused the whole dock: the next call, a create included, does not wait out
    // the hour either, and does not go out into a provider that asked for quiet.
    let started = Instant::now();
    let create = http.post_once("/v2/droplets", &json!({}), 1).await;
    assert!(
        matches!(create, Err(DockError::RateLimited { retry_after: Some(d), .. }) if d > Duration::from_secs(3500)),
        "{create:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(requests_to(&sb, "POST", "/v2/droplets").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_permanent_and_keeps_digitaloceans_id_message_and_request_id() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let droplet =
        sb.create_droplet_directly("web-1", "nyc3", "s-1vcpu-1gb", "ubuntu-24-04-x64", &[]);
    let id = droplet["id"].to_string();
    let run = Run::new(&dock);
    sb.inject(Fault::error_with(
        Some("GET"),
        "/v2/droplets/",
        403,
        "forbidden",
        "You are not allowed to see droplet 42.",
        1,
    ));
    let api = DigitalOceanApi::new(session(&dock, &run, fast_retry()));

    let err = api.get_droplet(&id).await.expect_err("refused");

    let DockError::Provider(p) = &err else {
        panic!("expected a provider error, got {err:?}");
    };
    assert_eq!(p.provider, Provider::DigitalOcean);
    assert_eq!(p.status, 403);
    assert_eq!(p.code, "forbidden");
    assert_eq!(p.message, "You are not allowed to see droplet 42.");
    let calls = run.recorder.calls();
    assert_eq!(calls.len(), 1, "a 4xx is not retried: {calls:?}");
    let request_id = p
        .request_id
        .as_deref()
        .expect("DigitalOcean's x-request-id");
    assert_eq!(calls[0].request_id.as_deref(), Some(request_id));
    assert_eq!(
        calls[0].error.as_deref(),
        Some("forbidden: You are not allowed to see droplet 42.")
    );
    // What the engine stores on the failed row: DigitalOcean's own code and words.
    assert_eq!(err.code(), "forbidden");
    assert_eq!(err.message(), "You are not allowed to see droplet 42.");
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_an_answer_in_time_is_journaled_without_a_status() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::delay(
        Some("GET"),
        "/v2/account",
        Duration::from_secs(3),
        1,
    ));
    let retry = RetryPolicy {
        request_timeout: Duration::from_millis(250),
        ..fast_retry()
    };
    let http = session(&dock, &run, retry);

    let resp = http
        .get("/v2/account", &[])
        .await
        .expect("the second try answers");

    assert_eq!(resp.status, 200);
    let calls = run.recorder.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].status, None);
    assert_eq!(calls[0].request_id, None);
    let error = calls[0].error.as_deref().expect("why it failed");
    assert!(error.contains("no answer within"), "{error}");
    assert!(
        calls[0].duration_ms >= 250 && calls[0].duration_ms < 3000,
        "{calls:?}"
    );
    assert_eq!((calls[1].attempt, calls[1].status), (2, Some(200)));

    // With a single try, the timeout is the caller's answer.
    let once = session(
        &dock,
        &run,
        RetryPolicy {
            max_attempts: 1,
            ..retry
        },
    );
    sb.inject(Fault::delay(
        Some("GET"),
        "/v2/account",
        Duration::from_secs(3),
        1,
    ));
    let err = once.get("/v2/account", &[]).await.expect_err("timed out");
    assert!(
        matches!(&err, DockError::Unavailable { detail, .. } if detail.contains("no answer within")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_entries_say_what_was_called_for_whom_and_how_it_went() {
    let key = canary();
    let sb = support::sandbox_with(DoSandboxConfig {
        tokens: vec![key.clone()],
        ready_after: Duration::ZERO,
        latency: Duration::from_millis(30),
        ..DoSandboxConfig::default()
    })
    .await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    let api = DigitalOceanApi::new(session(&dock, &run, fast_retry()));

    api.list_droplets(Some(run.marker.as_str()))
        .await
        .expect("listed");
    api.delete_droplet("123").await.expect("404 is deleted");

    let calls = run.recorder.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let list = &calls[0];
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.path,
        format!("/v2/droplets?page=1&per_page=200&tag_name={}", run.marker)
    );
    assert_eq!(list.status, Some(200));
    assert_eq!(list.error, None);
    let delete = &calls[1];
    assert_eq!(
        (delete.method.as_str(), delete.path.as_str()),
        ("DELETE", "/v2/droplets/123")
    );
    assert_eq!(delete.status, Some(404));
    assert!(delete.error.as_deref().unwrap().starts_with("not_found: "));
    for c in &calls {
        assert_eq!(c.org_id, dock.org_id);
        assert_eq!(c.dock_id, dock.id);
        assert_eq!(c.resource_id, Some(run.resource_id));
        assert_eq!(c.operation_id, Some(run.operation_id));
        assert_eq!(c.attempt, 1);
        // The sandbox holds every answer 30ms; a duration that misses it is not measured.
        assert!(c.duration_ms >= 30, "{c:?}");
        let rid = c.request_id.as_deref().expect("x-request-id is kept");
        assert_eq!(rid.len(), 36, "{rid}");
    }
}

/// Everything that could carry text out of the plumbing, as one string.
fn everything_said(calls: &[ApiCall], errors: &[DockError]) -> String {
    let mut out = String::new();
    for c in calls {
        out.push_str(&format!("{c:?}\n"));
        out.push_str(&serde_json::to_string(c).unwrap());
    }
    for e in errors {
        out.push_str(&format!("{e}\n{e:?}\n{}\n{}\n", e.code(), e.message()));
    }
    out
}

/// Drives a provision to ready and a deprovision to gone, checking through `observe_many` as
/// the engine would.
async fn provision_and_deprovision(ado: &DigitalOceanAdapter, dock: &DockAccess, run: &mut Run) {
    let progress = ado
        .provision_server(&mut run.ctx, dock, &server_config("web-1"))
        .await
        .expect("provisioned");
    let target = run.tracked(ResourceKind::Server).expect("a droplet id");
    engine::until_ready(ado, &mut run.ctx, dock, &target, progress).await;
    let progress = ado
        .deprovision(&mut run.ctx, dock, &target)
        .await
        .expect("deleted");
    engine::until_gone(ado, &mut run.ctx, dock, &target, progress).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_appears_in_no_journal_entry_or_error() {
    let key = canary();
    let sb = sandbox(&key, Duration::from_millis(50)).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    let mut errors = Vec::new();

    // A full life: create (after a 500, a lost answer and a cut-off one), check, delete.
    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 500, 1));
    sb.inject(Fault::lose_response(Some("POST"), "/v2/droplets", 1));
    sb.inject(Fault::truncate(Some("GET"), "/v2/droplets", 1));
    provision_and_deprovision(&ado, &dock, &mut run).await;

    // And every way a call can fail.
    sb.inject(Fault::error(Some("GET"), "/v2/account", 503, 100));
    let http = session(&dock, &run, fast_retry());
    errors.push(http.get("/v2/account", &[]).await.unwrap_err());
    errors.push(http.get("/v2/nothing-here", &[]).await.unwrap_err());
    let slow = session(
        &dock,
        &run,
        RetryPolicy {
            max_attempts: 1,
            request_timeout: Duration::from_millis(100),
            ..fast_retry()
        },
    );
    sb.inject(Fault::delay(
        Some("GET"),
        "/v2/sizes",
        Duration::from_secs(2),
        1,
    ));
    errors.push(slow.get("/v2/sizes", &[]).await.unwrap_err());
    sb.inject(Fault::disconnect(Some("GET"), "/v2/regions", 1));
    let once = session(
        &dock,
        &run,
        RetryPolicy {
            max_attempts: 1,
            ..fast_retry()
        },
    );
    errors.push(once.get("/v2/regions", &[]).await.unwrap_err());
    // Nothing listens on port 1 of loopback: a connection error.
    let nowhere = session(&dock_at("http://127.0.0.1:1", &key), &run, fast_retry());
    errors.push(nowhere.get("/v2/account", &[]).await.unwrap_err());
    // A key the provider refuses (a 401) is a key too.
    let wrong = canary();
    let wrong_dock = DockAccess {
        api_key: SecretString::new(wrong.as_str()),
        ..dock.clone()
    };
    let refused = session(&wrong_dock, &run, fast_retry());
    errors.push(refused.get("/v2/account", &[]).await.unwrap_err());
    assert!(matches!(errors.last(), Some(DockError::Provider(p)) if p.status == 401));
    let mut other = Run::new(&dock);
    errors.push(
        ado.provision_server(&mut other.ctx, &wrong_dock, &server_config("web-2"))
            .await
            .unwrap_err(),
    );
    // Last, as it pauses the whole dock for an hour.
    sb.inject(Fault::rate_limited(Some("GET"), "/v2/droplets", 3600, 1));
    errors.push(http.get("/v2/droplets", &[]).await.unwrap_err());

    let mut calls = run.recorder.calls();
    calls.extend(other.recorder.calls());
    assert!(calls.len() >= 12, "too little was exercised: {calls:?}");
    let said = everything_said(&calls, &errors);
    for secret in [&key, &wrong] {
        assert!(!said.contains(secret.as_str()), "the key leaked:\n{said}");
    }
    assert!(!format!("{dock:?}").contains(&key));
}

/// Reads one request's head (up to the blank line); `None` if the client went away.
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&head).to_string())
}

/// Sends one whole answer and closes the connection.
async fn reply(conn: &mut tokio::net::TcpStream, status: u16, content_type: &str, body: &str) {
    let reply = format!(
        "HTTP/1.1 {status} Whatever\r\ncontent-type: {content_type}\r\nx-request-id: raw-1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// A provider on loopback that answers each request with `answer(n, head)`, `n` counting
/// requests from 1: for what the sandbox will not do (echo a key, answer HTML).
async fn raw_provider(
    answer: impl Fn(usize, &str) -> (u16, &'static str, String) + Send + Sync + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            n += 1;
            let answer = answer.clone();
            tokio::spawn(async move {
                if let Some(head) = read_head(&mut conn).await {
                    let (status, content_type, body) = answer(n, &head);
                    reply(&mut conn, status, content_type, &body).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A provider that repeats the caller's credential in its error bodies — some do ("token
/// dop_v1_... is invalid"). What it repeats must still not reach the journal or an error.
async fn echoing_provider(status: u16) -> String {
    raw_provider(move |_, head| {
        let token = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("authorization")
                    .then(|| value.trim().trim_start_matches("Bearer ").to_string())
            })
            .unwrap_or_default();
        let body = json!({
            "id": format!("bad_token_{token}"),
            "message": format!("token {token} is not valid"),
            "request_id": "echo-1",
        });
        (status, "application/json", body.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_echoing_the_key_in_its_error_body_does_not_leak_it() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    let mut errors = Vec::new();
    for status in [401, 500] {
        let url = echoing_provider(status).await;
        let http = session(&dock_at(&url, &key), &run, fast_retry());
        errors.push(http.get("/v2/account", &[]).await.unwrap_err());
    }
    assert!(matches!(&errors[0], DockError::Provider(p) if p.status == 401));
    assert!(matches!(&errors[1], DockError::Unavailable { .. }));

    let said = everything_said(&run.recorder.calls(), &errors);
    assert!(
        said.contains("bad_token_"),
        "the echo did not come back:\n{said}"
    );
    assert!(!said.contains(&key), "the key leaked:\n{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_answer_to_a_read_is_transient_and_read_again() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::truncate(Some("GET"), "/v2/account", 1));
    let http = session(&dock, &run, fast_retry());

    let resp = http.get("/v2/account", &[]).await.expect("the second try");

    assert_eq!(resp.body["account"]["status"], "active");
    let calls = run.recorder.calls();
    let tries: Vec<(u32, Option<u16>)> = calls.iter().map(|c| (c.attempt, c.status)).collect();
    assert_eq!(tries, [(1, Some(200)), (2, Some(200))]);
    let why = calls[0].error.as_deref().expect("the first try failed");
    assert!(why.contains("not the JSON"), "{why}");

    // Cut off every time: an unreadable answer, which the engine may try again later.
    sb.inject(Fault::truncate(Some("GET"), "/v2/account", 100));
    let err = http.get("/v2/account", &[]).await.expect_err("never whole");
    assert!(matches!(err, DockError::Protocol { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(requests_to(&sb, "GET", "/v2/account").len(), 2 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_that_is_not_json_is_transient_and_read_again() {
    let key = canary();
    // A proxy in front of the provider answering its own page once, with a 200.
    let url = raw_provider(|n, _| match n {
        1 => (200, "text/html", "<html>maintenance</html>".into()),
        _ => (
            200,
            "application/json",
            json!({"account": {"status": "active"}}).to_string(),
        ),
    })
    .await;
    let dock = dock_at(&url, &key);
    let run = Run::new(&dock);
    let http = session(&dock, &run, fast_retry());

    let resp = http.get("/v2/account", &[]).await.expect("the second try");

    assert_eq!(resp.body["account"]["status"], "active");
    let calls = run.recorder.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].error.as_deref().unwrap().contains("not the JSON"));
    assert_eq!(calls[1].error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_before_the_answer_is_retried_on_a_read() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let run = Run::new(&dock);
    sb.inject(Fault::disconnect(Some("GET"), "/v2/account", 1));
    let http = session(&dock, &run, fast_retry());

    http.get("/v2/account", &[]).await.expect("the second try");

    let calls = run.recorder.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].status, None, "no answer came: {calls:?}");
    assert!(calls[0].error.is_some());
    assert_eq!(sb.request_counts().disconnected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_budget_of_two_a_second_paces_the_calls() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let limit: RateLimit = "2/s".parse().expect("a rate limit");
    let dock = dock_limited(&sb.base_url(), &key, limit);
    let run = Run::new(&dock);
    let http = session(&dock, &run, fast_retry());

    // Six callers at once, as six operations on one dock would be.
    let calls = (0..6).map(|_| http.get("/v2/account", &[]));
    for answer in futures::future::join_all(calls).await {
        answer.expect("answered");
    }

    let at: Vec<Instant> = requests_to(&sb, "GET", "/v2/account")
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(at.len(), 6);
    // A burst of two, then one every 500ms: the n-th call (from 0) goes out no sooner than
    // (n - 1) * 500ms after the first. A little slack for the clocks of two tasks.
    let slack = Duration::from_millis(30);
    for (n, t) in at.iter().enumerate().skip(2) {
        let since = t.duration_since(at[0]);
        let due = Duration::from_millis(500) * (n as u32 - 1);
        assert!(
            since + slack >= due,
            "call {n} went out {since:?} after the first, due {due:?}"
        );
    }
    // And it paces, it does not stall: the sixth call is due at 2s.
    let all = at[5].duration_since(at[0]);
    assert!(all < Duration::from_secs(3), "six calls took {all:?}");
    assert_eq!(sb.request_counts().rate_limited, 0);
}
