//! The Vultr simulator seen through real HTTP: chaos in Vultr's words, lost creates that
//! did their work, storms of 429s with `Retry-After`, and the gate that holds an instance in
//! its in-between state until a test releases it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stackdock_sandbox::{Chaos, Storm, VultrSandbox, VultrSandboxConfig};

const KEY: &str = "vultr-sandbox-key";

async fn sandbox(chaos: Option<Chaos>) -> VultrSandbox {
    VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![KEY.into()],
        ready_after: Duration::from_millis(20),
        chaos,
        ..VultrSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn chaos(error_rate: f64, lose_rate: f64, storm: Option<Storm>) -> Chaos {
    Chaos {
        seed: 7,
        error_rate,
        lose_rate,
        truncate_rate: 0.0,
        storm,
    }
}

fn instance() -> Value {
    json!({"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284, "label": "web"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_errors_come_in_vultrs_envelope_and_do_no_work() {
    let sb = sandbox(Some(chaos(1.0, 0.0, None))).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/instances", sb.base_url()))
        .bearer_auth(KEY)
        .json(&instance())
        .send()
        .await
        .expect("answered");
    let status = answer.status().as_u16();
    assert!((500..=503).contains(&status), "{status}");
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["status"], status);
    assert!(body["error"].is_string(), "{body}");
    assert!(sb.instances().is_empty(), "an error does no work");
    assert_eq!(sb.chaos_counts().errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_did_its_work() {
    let sb = sandbox(Some(chaos(0.0, 1.0, None))).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/instances", sb.base_url()))
        .bearer_auth(KEY)
        .json(&instance())
        .send()
        .await;
    assert!(
        answer.as_ref().map_or(true, |a| a.status() == 500),
        "{answer:?}"
    );
    assert_eq!(sb.instances().len(), 1, "the instance exists all the same");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_answers_429_with_retry_after() {
    let storm = Storm {
        every: Duration::from_secs(60),
        lasts: Duration::from_secs(60),
    };
    let sb = sandbox(Some(chaos(0.0, 0.0, Some(storm)))).await;
    let answer = reqwest::Client::new()
        .get(format!("{}/account", sb.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "1");
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["status"], 429);
    assert_eq!(sb.request_counts().rate_limited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_instance_stays_pending_until_released() {
    let sb = sandbox(None).await;
    sb.hold(true);
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/instances", sb.base_url()))
        .bearer_auth(KEY)
        .json(&instance())
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let id = created["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let status = || async {
        let seen: Value = http
            .get(format!("{}/instances/{id}", sb.base_url()))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        let i = &seen["instance"];
        (
            i["status"].as_str().unwrap_or_default().to_string(),
            i["server_status"].as_str().unwrap_or_default().to_string(),
        )
    };
    // Well past `ready_after`, still held.
    let held_since = Instant::now();
    while held_since.elapsed() < Duration::from_millis(60) {
        assert_eq!(status().await, ("pending".into(), "none".into()));
    }
    sb.hold(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status().await != ("active".to_string(), "ok".to_string()) {
        assert!(Instant::now() < deadline, "never ready after release");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
