//! Following a resource live: subscribe to the event stream first, then read the resource, so
//! no change can fall between the two.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::client::{CliError, Client, error_from};

/// States after which nothing more happens without a new request.
pub(crate) fn is_settled(state: &str) -> bool {
    matches!(state, "provisioned" | "failed" | "deprovisioned")
}

/// Prints progress lines as a resource changes.
pub(crate) struct Progress {
    human: bool,
    last: Option<(String, Option<String>, Option<String>)>,
}

impl Progress {
    pub(crate) fn new(human: bool) -> Self {
        Self { human, last: None }
    }

    pub(crate) fn show(&mut self, r: &Value) {
        let state = r["provisioning_state"].as_str().unwrap_or("?").to_string();
        let status = r["status"].as_str().map(str::to_string);
        let pid = r["provider_resource_id"].as_str().map(str::to_string);
        let now = (state.clone(), status.clone(), pid.clone());
        if self.last.as_ref() == Some(&now) || !self.human {
            self.last = Some(now);
            return;
        }
        let first = self.last.is_none();
        let prev = self.last.replace(now);
        let (kind, name, provider) = (
            r["kind"].as_str().unwrap_or("resource"),
            r["name"].as_str().unwrap_or("?"),
            r["provider"].as_str().unwrap_or("provider"),
        );
        if first {
            eprintln!(
                "{kind} {name} ({}): {state}",
                r["id"].as_str().unwrap_or("?")
            );
        }
        // What the provider shows first, then the state it led to.
        if let Some(pid) = &pid
            && prev.as_ref().and_then(|p| p.2.as_ref()) != Some(pid)
        {
            eprintln!("  {provider} id: {pid}");
        }
        if let Some(status) = &status
            && prev.as_ref().and_then(|p| p.1.as_ref()) != Some(status)
        {
            eprintln!("  {provider} status: {status}");
        }
        if !first && prev.as_ref().map(|p| &p.0) != Some(&state) {
            eprintln!("  {state}");
        }
    }
}

/// Follows resource `id` until it settles; returns it as it settled.
pub(crate) async fn follow(client: &Client, id: &str, human: bool) -> Result<Value, CliError> {
    let events = client
        .request(Method::GET, &format!("/api/v1/events?resource_id={id}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| client.unreachable(e))?;
    if !events.status().is_success() {
        let status = events.status();
        let body = events.json::<Value>().await.unwrap_or(Value::Null);
        return Err(error_from(status, &body));
    }
    let mut progress = Progress::new(human);
    let current = client.get(&format!("/api/v1/resources/{id}")).await?;
    progress.show(&current);
    if is_settled(current["provisioning_state"].as_str().unwrap_or_default()) {
        return Ok(current);
    }
    let mut stream = events.bytes_stream();
    let mut buf = String::new();
    loop {
        let chunk = match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
            // Keep-alive comments arrive every 15 s; a minute of silence is a dead server.
            Err(_) => return Err(CliError::Unreachable("the event stream went silent".into())),
            Ok(None) => {
                return Err(CliError::Unreachable(
                    "the server closed the event stream".into(),
                ));
            }
            Ok(Some(Err(e))) => return Err(client.unreachable(e)),
            Ok(Some(Ok(c))) => c,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let is_log = event.lines().any(|l| l.trim_end() == "event: log");
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            let Ok(doc) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            // The provider's output (a build's steps), as it comes.
            if is_log {
                if human {
                    eprintln!("  | {}", doc["line"].as_str().unwrap_or_default());
                }
                continue;
            }
            let resource = &doc["resource"];
            progress.show(resource);
            if is_settled(resource["provisioning_state"].as_str().unwrap_or_default()) {
                return Ok(resource.clone());
            }
        }
    }
}
