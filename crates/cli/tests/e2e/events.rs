//! The SSE change stream: a subscriber sees a new droplet go `provisioning` -> `provisioned`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use crate::support::{DEADLINE, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_provisioning_then_provisioned() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/api/v1/events", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap();

    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut states: Vec<String> = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut statuses: Vec<(String, Value)> = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while !states.iter().any(|s| s == "provisioned") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left.max(Duration::from_millis(1)), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no provisioned event; saw {states:?}"))
            .expect("stream open")
            .expect("chunk");
        app.saw(chunk.to_vec());
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let doc: Value = serde_json::from_str(data).unwrap();
            assert!(event.contains("event: resource"), "{event}");
            if doc["resource"]["id"] == id {
                let state = doc["resource"]["provisioning_state"]
                    .as_str()
                    .unwrap()
                    .to_string();
                statuses.push((state.clone(), doc["resource"]["status"].clone()));
                states.push(state);
                ids.push(doc["seq"].as_i64().unwrap());
            }
        }
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("provisioning"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("provisioned"),
        "{states:?}"
    );
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "event ids not increasing: {ids:?}"
    );
    // The provider's own progress shows while waiting: the droplet is `new` before `active`.
    assert!(
        statuses.contains(&("provisioning".into(), "new".into())),
        "no progress event while the droplet was new: {statuses:?}"
    );
    assert_eq!(statuses.last().unwrap().1, "active");

    // Resuming after the first event replays what followed it.
    let again = app
        .http
        .get(format!("{}/api/v1/events?resource_id={id}", app.url))
        .bearer_auth(&app.token)
        .header("last-event-id", ids[0].to_string())
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(DEADLINE, again.bytes_stream().next())
        .await
        .expect("replayed event")
        .unwrap()
        .unwrap();
    app.saw(first.to_vec());
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains(&format!("id: {}", ids[1])), "{text}");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_on_sigterm_while_a_client_follows_events() {
    let mut app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/api/v1/events", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(app.terminate().await, "the server did not exit cleanly");
    // The open stream ends instead of holding the shutdown.
    let mut stream = resp.bytes_stream();
    let end = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the event stream stayed open after shutdown");
    app.finish();
}
