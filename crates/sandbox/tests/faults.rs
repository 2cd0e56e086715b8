//! Fault injection, rate limiting, latency, the request log and shutdown, seen
//! through real HTTP.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackdock_sandbox::{BucketLimit, DigitalOceanSandbox, DoSandboxConfig, Fault, FaultResponse};

const TOKEN: &str = "dop_v1_sandbox_faults";

async fn sandbox_with(config: DoSandboxConfig) -> DigitalOceanSandbox {
    DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        ..config
    })
    .await
    .expect("sandbox starts")
}

async fn sandbox() -> DigitalOceanSandbox {
    sandbox_with(DoSandboxConfig::default()).await
}

async fn send(
    sb: &DigitalOceanSandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{}", sb.base_url(), path))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request reaches the sandbox")
}

fn create_body(name: &str) -> Value {
    json!({"name": name, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"})
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn error_fault_skips_the_work_then_creates_normally() {
    let sb = sandbox().await;
    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 500, 1));

    let failed = send(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("web-1")),
    )
    .await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = header(&failed, "x-request-id");
    let body: Value = failed.json().await.unwrap();
    assert_eq!(body["id"], "server_error");
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(sb.droplets().is_empty(), "an Error fault does no work");

    let ok = send(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("web-1")),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    assert_eq!(sb.droplets().len(), 1);
}

#[tokio::test]
async fn error_fault_with_custom_wording_and_method_filter() {
    let sb = sandbox().await;
    sb.inject(Fault {
        method: Some("DELETE".into()),
        path_prefix: "/v2/droplets".into(),
        times: 2,
        skip: 0,
        response: FaultResponse::Error {
            status: 503,
            id: "service_unavailable".into(),
            message: "Try again later.".into(),
        },
    });
    let droplet =
        sb.create_droplet_directly("keep-me", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[]);
    let id = droplet["id"].as_u64().unwrap();

    let get = send(&sb, Method::GET, &format!("/v2/droplets/{id}"), None).await;
    assert_eq!(
        get.status(),
        StatusCode::OK,
        "GET is not matched by a DELETE fault"
    );
    for _ in 0..2 {
        let delete = send(&sb, Method::DELETE, &format!("/v2/droplets/{id}"), None).await;
        assert_eq!(delete.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = delete.json().await.unwrap();
        assert_eq!(body["message"], "Try again later.");
    }
    assert_eq!(sb.droplets().len(), 1);
    let delete = send(&sb, Method::DELETE, &format!("/v2/droplets/{id}"), None).await;
    assert_eq!(
        delete.status(),
        StatusCode::NO_CONTENT,
        "fault used up after `times`"
    );
    assert!(sb.droplets().is_empty());
}

#[tokio::test]
async fn lost_response_creates_the_droplet_but_answers_500() {
    let sb = sandbox().await;
    sb.inject(Fault::lose_response(Some("POST"), "/v2/droplets", 1));

    let lost = send(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("ghost-1")),
    )
    .await;
    assert_eq!(lost.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = lost.json().await.unwrap();
    assert_eq!(body["id"], "server_error");

    let inventory = sb.droplets();
    assert_eq!(inventory.len(), 1, "the work happened");
    assert_eq!(inventory[0]["name"], "ghost-1");

    let listed = send(&sb, Method::GET, "/v2/droplets?name=ghost-1", None).await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["meta"]["total"], 1, "a client can find what it lost");
}

#[tokio::test]
async fn truncate_fault_sends_a_short_body_with_a_matching_length() {
    let sb = sandbox().await;
    let droplet = sb.create_droplet_directly("cut", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[]);
    let path = format!("/v2/droplets/{}", droplet["id"]);
    let whole = send(&sb, Method::GET, &path, None)
        .await
        .bytes()
        .await
        .unwrap();
    sb.inject(Fault::truncate(Some("GET"), "/v2/droplets/", 1));

    let cut = send(&sb, Method::GET, &path, None).await;
    assert_eq!(cut.status(), StatusCode::OK);
    let length: usize = header(&cut, "content-length").parse().unwrap();
    let body = cut
        .bytes()
        .await
        .expect("the short body arrives whole, no hang");
    assert_eq!(body.len(), length, "Content-Length matches what is sent");
    assert!(!body.is_empty() && body.len() < whole.len());
    assert_eq!(body[..], whole[..body.len()], "a prefix of the real answer");
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    let again = send(&sb, Method::GET, &path, None).await;
    assert_eq!(again.bytes().await.unwrap(), whole, "used up after one");
    assert_eq!(sb.requests()[1].status, 200);
}

#[tokio::test]
async fn disconnect_fault_does_the_work_and_answers_nothing() {
    let sb = sandbox().await;
    // One client throughout, so the cut connection is a pooled, reused one: the
    // client must not quietly retry the create on a fresh connection.
    let client = reqwest::Client::new();
    let warm = client
        .get(format!("{}/v2/account", sb.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    sb.inject(Fault::disconnect(Some("POST"), "/v2/droplets", 1));

    let cut = client
        .post(format!("{}/v2/droplets", sb.base_url()))
        .bearer_auth(TOKEN)
        .json(&create_body("dropped-1"))
        .send()
        .await;
    let error = cut.expect_err("no status reaches the client");
    assert!(error.status().is_none(), "{error:?}");
    assert!(
        !error.is_timeout(),
        "an error at once, not a hang: {error:?}"
    );

    let inventory = sb.droplets();
    assert_eq!(inventory.len(), 1, "the work happened exactly once");
    assert_eq!(inventory[0]["name"], "dropped-1");
    let entry = sb.requests().pop().unwrap();
    assert_eq!((entry.method.as_str(), entry.status), ("POST", 202));
    assert!(entry.disconnected);
    let counts = sb.request_counts();
    assert_eq!(counts.disconnected, 1);
    assert_eq!(counts.by_status.get(&202), None, "no 202 was ever sent");

    // The next request finds a working sandbox.
    let id = inventory[0]["id"].as_u64().unwrap();
    let get = client
        .get(format!("{}/v2/droplets/{id}", sb.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(!sb.requests().last().unwrap().disconnected);
}

#[tokio::test]
async fn disconnect_fault_on_delete_deletes() {
    let sb = sandbox().await;
    let droplet = sb.create_droplet_directly("doomed", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[]);
    sb.inject(Fault::disconnect(Some("DELETE"), "/v2/droplets", 1));
    let url = format!("{}/v2/droplets/{}", sb.base_url(), droplet["id"]);
    let cut = reqwest::Client::new()
        .delete(&url)
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(cut.is_err(), "{cut:?}");
    assert!(sb.droplets().is_empty());
}

#[tokio::test]
async fn rate_limited_fault_answers_429_with_retry_after() {
    let sb = sandbox().await;
    sb.inject(Fault::rate_limited(None, "/v2/account", 7, 1));

    let limited = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "7");
    assert_eq!(header(&limited, "ratelimit-remaining"), "0");
    header(&limited, "ratelimit-limit");
    header(&limited, "ratelimit-reset");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["id"], "too_many_requests");
    assert_eq!(body["message"], "API Rate limit exceeded.");

    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_budget_is_enforced_and_can_be_lifted() {
    let sb = sandbox_with(DoSandboxConfig {
        rate_limit: Some(3),
        retry_after: Duration::from_secs(2),
        ..DoSandboxConfig::default()
    })
    .await;
    let now_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    for expected_remaining in ["2", "1", "0"] {
        let ok = send(&sb, Method::GET, "/v2/account", None).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(header(&ok, "ratelimit-limit"), "3");
        assert_eq!(header(&ok, "ratelimit-remaining"), expected_remaining);
        let reset: u64 = header(&ok, "ratelimit-reset").parse().unwrap();
        assert!(
            reset >= now_epoch + 59,
            "reset is when the oldest request expires"
        );
    }

    let limited = send(&sb, Method::GET, "/v2/droplets", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "2");
    assert_eq!(header(&limited, "ratelimit-remaining"), "0");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["id"], "too_many_requests");

    // A spent budget refuses even work that would otherwise fail differently.
    let limited_create = send(&sb, Method::POST, "/v2/droplets", Some(create_body("x"))).await;
    assert_eq!(limited_create.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sb.droplets().is_empty());

    sb.set_rate_limit(None);
    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn token_bucket_600_a_minute_burst_10() {
    let sb = sandbox_with(DoSandboxConfig {
        bucket: Some(BucketLimit {
            per_minute: 600,
            burst: 10,
        }),
        ..DoSandboxConfig::default()
    })
    .await;
    // The bucket starts full, so the burst always gets through.
    for _ in 0..10 {
        let ok = send(&sb, Method::GET, "/v2/account", None).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(header(&ok, "ratelimit-limit"), "600");
    }
    // It refills a token every 100 ms; back-to-back requests outrun that soon.
    let mut limited = None;
    for _ in 0..50 {
        let answer = send(&sb, Method::GET, "/v2/account", None).await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("an empty bucket answers 429");
    let before = epoch_now();
    assert_eq!(header(&limited, "retry-after"), "1");
    assert_eq!(header(&limited, "ratelimit-limit"), "600");
    assert_eq!(header(&limited, "ratelimit-remaining"), "0");
    let reset: u64 = header(&limited, "ratelimit-reset").parse().unwrap();
    assert!(
        (before..=before + 2).contains(&reset),
        "reset {reset}, now {before}"
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["id"], "too_many_requests");
    assert_eq!(body["message"], "API Rate limit exceeded.");
}

#[tokio::test]
async fn token_bucket_refuses_without_spending_and_can_be_set_at_runtime() {
    let sb = sandbox().await;
    // One token a second, one at a time.
    sb.set_bucket(Some(BucketLimit {
        per_minute: 60,
        burst: 1,
    }));
    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(header(&ok, "ratelimit-remaining"), "0");
    let mut refused_at = Instant::now();
    for _ in 0..5 {
        refused_at = Instant::now();
        let refused = send(&sb, Method::POST, "/v2/droplets", Some(create_body("x"))).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&refused, "retry-after"), "1");
    }
    assert!(sb.droplets().is_empty(), "a refused create does no work");
    // Had the refusals spent tokens, the bucket would still be in debt a second on.
    tokio::time::sleep_until((refused_at + Duration::from_millis(1100)).into()).await;
    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status(), StatusCode::OK, "refusals took no tokens");

    // A slow bucket: the next token is ten seconds away.
    sb.set_bucket(Some(BucketLimit {
        per_minute: 6,
        burst: 2,
    }));
    for remaining in ["1", "0"] {
        let ok = send(&sb, Method::GET, "/v2/account", None).await;
        assert_eq!(ok.status(), StatusCode::OK, "a new bucket starts full");
        assert_eq!(header(&ok, "ratelimit-limit"), "6");
        assert_eq!(header(&ok, "ratelimit-remaining"), remaining);
    }
    let before = epoch_now();
    let limited = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&limited, "retry-after").parse().unwrap();
    assert!((9..=10).contains(&retry), "retry-after {retry}");
    let reset: u64 = header(&limited, "ratelimit-reset").parse().unwrap();
    assert!(
        (before + 9..=before + 11).contains(&reset),
        "reset {reset}, now {before}"
    );

    sb.set_rate_limit(None);
    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "set_rate_limit(None) lifts the bucket too"
    );
}

#[tokio::test]
async fn delay_fault_does_the_work_and_outlasts_a_client_timeout() {
    let sb = sandbox().await;
    sb.inject(Fault::delay(
        Some("POST"),
        "/v2/droplets",
        Duration::from_millis(800),
        1,
    ));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let timed_out = client
        .post(format!("{}/v2/droplets", sb.base_url()))
        .bearer_auth(TOKEN)
        .json(&create_body("slow-1"))
        .send()
        .await;
    let error = timed_out.expect_err("the client gives up first");
    assert!(error.is_timeout(), "{error}");
    // On a loaded machine the client may give up before the server has even read the
    // request, so wait (with a deadline) for the work instead of asserting at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.droplets().is_empty() || sb.requests().last().map(|r| r.status) != Some(202) {
        assert!(
            Instant::now() < deadline,
            "the delayed create never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sb.droplets().len(), 1, "the work was done anyway");

    let quick = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(quick.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added_to_every_response() {
    let sb = sandbox_with(DoSandboxConfig {
        latency: Duration::from_millis(120),
        ..DoSandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    let ok = send(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(120));

    let started = Instant::now();
    let unauthorized = reqwest::get(format!("{}/v2/account", sb.base_url()))
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn request_log_keeps_order_query_and_status() {
    let sb = sandbox().await;
    let before = Instant::now();
    send(&sb, Method::GET, "/v2/droplets?page=2&per_page=5", None).await;
    send(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("logged")),
    )
    .await;
    send(&sb, Method::GET, "/v2/droplets/1", None).await;

    let log = sb.requests();
    let seen: Vec<(&str, &str, Option<&str>, u16)> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.query.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/v2/droplets", Some("page=2&per_page=5"), 200),
            ("POST", "/v2/droplets", None, 202),
            ("GET", "/v2/droplets/1", None, 404),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(log[0].at >= before);
}

#[tokio::test]
async fn request_counts_add_up_by_method_and_429() {
    let sb = sandbox_with(DoSandboxConfig {
        rate_limit: Some(4),
        ..DoSandboxConfig::default()
    })
    .await;
    sb.inject(Fault::rate_limited(Some("GET"), "/v2/account", 1, 1));
    send(&sb, Method::GET, "/v2/account", None).await; // 429 from the fault
    send(&sb, Method::POST, "/v2/droplets", Some(create_body("a"))).await; // 202
    send(&sb, Method::GET, "/v2/droplets/1", None).await; // 404
    send(&sb, Method::DELETE, "/v2/droplets/1", None).await; // 404
    for _ in 0..2 {
        send(&sb, Method::GET, "/v2/account", None).await; // 429 from the budget
    }
    reqwest::get(format!("{}/v2/account", sb.base_url()))
        .await
        .unwrap(); // 401

    let counts = sb.request_counts();
    assert_eq!(counts.total, 7);
    assert_eq!(counts.method("GET"), 5);
    assert_eq!(counts.method("POST"), 1);
    assert_eq!(counts.method("DELETE"), 1);
    assert_eq!(counts.method("PUT"), 0);
    assert_eq!(counts.rate_limited, 3);
    assert_eq!(counts.by_status[&202], 1);
    assert_eq!(counts.by_status[&404], 2);
    assert_eq!(counts.by_status[&401], 1);
    assert!((counts.rate_limited_share() - 3.0 / 7.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_request_log_can_be_off_while_counts_go_on() {
    let sb = sandbox_with(DoSandboxConfig {
        request_log: false,
        ..DoSandboxConfig::default()
    })
    .await;
    for _ in 0..3 {
        send(&sb, Method::GET, "/v2/account", None).await;
    }
    assert!(sb.requests().is_empty(), "nothing logged while off");
    assert_eq!(sb.request_counts().total, 3);

    sb.set_request_log(true);
    send(&sb, Method::GET, "/v2/regions", None).await;
    let log = sb.requests();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].path.as_str(), log[0].status), ("/v2/regions", 200));

    sb.set_request_log(false);
    send(&sb, Method::GET, "/v2/sizes", None).await;
    assert_eq!(sb.requests().len(), 1, "what was logged is kept");
    assert_eq!(sb.request_counts().total, 5);
    assert_eq!(sb.request_counts().by_status[&200], 5);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sb = sandbox().await;
    let base = sb.base_url();
    assert_eq!(
        send(&sb, Method::GET, "/v2/account", None).await.status(),
        StatusCode::OK
    );
    sb.shutdown().await;
    let refused = reqwest::Client::new()
        .get(format!("{base}/v2/account"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "nothing listens after shutdown");
}
