//! Chaos profiles seen through real HTTP: seeded replay, what each fault does to the
//! work and the answer, storms, and where chaos sits among auth, limits and faults.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackdock_sandbox::{Chaos, ChaosCounts, DigitalOceanSandbox, DoSandboxConfig, Fault, Storm};

const TOKEN: &str = "dop_v1_sandbox_chaos";

async fn sandbox_with(chaos: Option<Chaos>) -> DigitalOceanSandbox {
    DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        chaos,
        ..DoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn create_body(name: &str) -> Value {
    json!({"name": name, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"})
}

/// What a client made of one exchange.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    /// A status and a body that parsed as JSON (or was empty).
    Answer(u16),
    /// A status whose body did not parse: a truncated answer.
    Garbled(u16),
    /// No status at all: the connection was closed.
    Disconnected,
}

async fn exchange(
    client: &reqwest::Client,
    sb: &DigitalOceanSandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Seen {
    let mut request = client
        .request(method, format!("{}{path}", sb.base_url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
            return Seen::Disconnected;
        }
    };
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body as long as announced");
    if bytes.is_empty() || serde_json::from_slice::<Value>(&bytes).is_ok() {
        Seen::Answer(status)
    } else {
        Seen::Garbled(status)
    }
}

fn mixed(seed: u64) -> Chaos {
    Chaos {
        seed,
        error_rate: 0.15,
        lose_rate: 0.3,
        truncate_rate: 0.3,
        storm: None,
    }
}

/// A fixed script of creates, reads, lists and deletes, sent one at a time.
async fn run_script(sb: &DigitalOceanSandbox) -> Vec<Seen> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for i in 0..40 {
        let step = match i % 4 {
            0 => {
                exchange(
                    &client,
                    sb,
                    Method::POST,
                    "/v2/droplets",
                    Some(create_body(&format!("c-{i}"))),
                )
                .await
            }
            1 => exchange(&client, sb, Method::GET, "/v2/droplets?per_page=5", None).await,
            2 => exchange(&client, sb, Method::GET, "/v2/account", None).await,
            _ => {
                let path = match sb.droplets().first() {
                    Some(d) => format!("/v2/droplets/{}", d["id"]),
                    None => "/v2/droplets/1".to_owned(),
                };
                exchange(&client, sb, Method::DELETE, &path, None).await
            }
        };
        seen.push(step);
    }
    seen
}

#[tokio::test]
async fn a_seed_replays_the_same_run() {
    let first = sandbox_with(Some(mixed(2024))).await;
    let first_run = run_script(&first).await;
    let replay = sandbox_with(Some(mixed(2024))).await;
    let replay_run = run_script(&replay).await;
    assert_eq!(first_run, replay_run);
    assert_eq!(first.chaos_counts(), replay.chaos_counts());
    assert_eq!(first.droplets().len(), replay.droplets().len());

    // The script met every kind of trouble, and the counts tally with what was seen.
    let counts = first.chaos_counts();
    assert!(counts.errors > 0 && counts.lost_with_500 > 0, "{counts:?}");
    assert!(counts.disconnects > 0 && counts.truncated > 0, "{counts:?}");
    let garbled = first_run
        .iter()
        .filter(|s| matches!(s, Seen::Garbled(_)))
        .count();
    let disconnected = first_run
        .iter()
        .filter(|s| **s == Seen::Disconnected)
        .count();
    assert_eq!(counts.truncated, garbled as u64);
    assert_eq!(counts.disconnects, disconnected as u64);
    assert_eq!(first.request_counts().disconnected, counts.disconnects);

    // The same profile set at runtime replays too.
    let again = sandbox_with(None).await;
    again.set_chaos(Some(mixed(2024)));
    assert_eq!(run_script(&again).await, first_run);

    let other = sandbox_with(Some(mixed(7))).await;
    assert_ne!(
        run_script(&other).await,
        first_run,
        "another seed, another run"
    );
}

#[tokio::test]
async fn errors_skip_the_work_with_500_502_and_503() {
    let sb = sandbox_with(Some(Chaos {
        seed: 1,
        error_rate: 1.0,
        ..Chaos::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let response = client
            .post(format!("{}/v2/droplets", sb.base_url()))
            .bearer_auth(TOKEN)
            .json(&create_body(&format!("e-{i}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let id = match status {
            500 => "server_error",
            502 => "bad_gateway",
            503 => "service_unavailable",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(body["id"], id);
        assert!(body["request_id"].is_string());
        statuses.push(status);
    }
    for wanted in [500, 502, 503] {
        assert!(statuses.contains(&wanted), "{statuses:?}");
    }
    assert!(sb.droplets().is_empty(), "an error does no work");
    assert_eq!(sb.chaos_counts().errors, 30);
}

#[tokio::test]
async fn lost_answers_still_do_the_work_and_only_for_post_and_delete() {
    let sb = sandbox_with(Some(Chaos {
        seed: 3,
        lose_rate: 1.0,
        ..Chaos::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for i in 0..20 {
        let body = Some(create_body(&format!("l-{i}")));
        seen.push(exchange(&client, &sb, Method::POST, "/v2/droplets", body).await);
    }
    assert!(seen.contains(&Seen::Answer(500)), "{seen:?}");
    assert!(seen.contains(&Seen::Disconnected), "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| matches!(s, Seen::Answer(500) | Seen::Disconnected)),
        "{seen:?}"
    );
    assert_eq!(sb.droplets().len(), 20, "every create happened");
    let counts = sb.chaos_counts();
    assert_eq!(counts.lost_with_500 + counts.disconnects, 20);

    // GETs are never lost.
    let list = exchange(&client, &sb, Method::GET, "/v2/droplets?per_page=200", None).await;
    assert_eq!(list, Seen::Answer(200));

    let id = sb.droplets()[0]["id"].clone();
    let deleted = exchange(
        &client,
        &sb,
        Method::DELETE,
        &format!("/v2/droplets/{id}"),
        None,
    )
    .await;
    assert!(matches!(deleted, Seen::Answer(500) | Seen::Disconnected));
    assert_eq!(sb.droplets().len(), 19, "the delete happened");
}

#[tokio::test]
async fn truncation_cuts_successful_gets_only() {
    let sb = sandbox_with(Some(Chaos {
        seed: 5,
        truncate_rate: 1.0,
        ..Chaos::default()
    }))
    .await;
    sb.create_droplet_directly("t", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[]);
    let client = reqwest::Client::new();
    let mut lengths = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let response = client
            .get(format!("{}/v2/droplets", sb.base_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let announced: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.bytes().await.unwrap();
        assert_eq!(body.len(), announced);
        assert!(serde_json::from_slice::<Value>(&body).is_err());
        lengths.insert(body.len());
    }
    assert!(lengths.len() > 1, "cut at random bytes: {lengths:?}");
    // A 404 goes out whole, and a POST is not a GET.
    let missing = exchange(&client, &sb, Method::GET, "/v2/droplets/1", None).await;
    assert_eq!(missing, Seen::Answer(404));
    let created = exchange(
        &client,
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("p")),
    )
    .await;
    assert_eq!(created, Seen::Answer(202));
    assert_eq!(
        sb.chaos_counts(),
        ChaosCounts {
            truncated: 10,
            ..ChaosCounts::default()
        }
    );
}

#[tokio::test]
async fn storms_answer_429_for_a_while_then_pass() {
    let sb = sandbox_with(None).await;
    let set_at = Instant::now();
    sb.set_chaos(Some(Chaos {
        storm: Some(Storm {
            every: Duration::from_secs(4),
            lasts: Duration::from_secs(2),
        }),
        ..Chaos::default()
    }));
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client
            .post(format!("{}/v2/droplets", sb.base_url()))
            .bearer_auth(TOKEN)
            .json(&create_body("s"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["ratelimit-remaining"], "0");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "too_many_requests");
    }
    assert!(sb.droplets().is_empty(), "a storm does no work");

    tokio::time::sleep_until((set_at + Duration::from_millis(2300)).into()).await;
    let calm = exchange(
        &client,
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("s")),
    )
    .await;
    assert_eq!(calm, Seen::Answer(202), "the storm has passed");
    assert_eq!(sb.chaos_counts().storm_429s, 3);
    assert_eq!(sb.request_counts().rate_limited, 3);
}

#[tokio::test]
async fn chaos_comes_after_auth_limits_and_queued_faults() {
    let sb = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        rate_limit: Some(3),
        chaos: Some(Chaos {
            seed: 11,
            error_rate: 1.0,
            ..Chaos::default()
        }),
        ..DoSandboxConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v2/account", sb.base_url());

    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "chaos never hides a 401"
    );

    sb.inject(Fault::error(Some("GET"), "/v2/account", 409, 1));
    let queued = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        queued.status(),
        StatusCode::CONFLICT,
        "a queued fault wins over the dice"
    );
    for _ in 0..2 {
        let rolled = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert!(rolled.status().is_server_error());
    }
    let limited = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the limiter's 429 first"
    );
    assert_eq!(sb.chaos_counts().errors, 2, "refused requests roll nothing");

    // A storm keeps queued faults for later, like the rate limit does.
    sb.set_rate_limit(None);
    sb.set_chaos(Some(Chaos {
        storm: Some(Storm {
            every: Duration::from_secs(60),
            lasts: Duration::from_secs(60),
        }),
        ..Chaos::default()
    }));
    sb.inject(Fault::error(Some("GET"), "/v2/account", 409, 1));
    let stormy = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(stormy.status(), StatusCode::TOO_MANY_REQUESTS);
    sb.set_chaos(None);
    let fault = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        fault.status(),
        StatusCode::CONFLICT,
        "the fault waited out the storm"
    );
    let calm = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(calm.status(), StatusCode::OK, "set_chaos(None) stops chaos");
    assert_eq!(sb.chaos_counts().errors, 2);
    assert_eq!(sb.chaos_counts().storm_429s, 1);
}
