//! DigitalOcean in the suite: droplets as servers, on the DigitalOcean sandbox.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::digitalocean::DigitalOceanAdapter;
use stackdock_docks::{DockAccess, DockAdapter};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig, Fault};

use super::{Harness, Held, LostAnswer};
use crate::support::{canary, dock};

/// Where droplets are created.
const DROPLETS: &str = "/v2/droplets";

pub struct DigitalOcean {
    sandbox: DigitalOceanSandbox,
    dock: DockAccess,
    adapter: Arc<DigitalOceanAdapter>,
}

impl DigitalOcean {
    fn servers_only(kind: ResourceKind) {
        assert_eq!(kind, ResourceKind::Server, "DigitalOcean has only servers");
    }
}

impl Harness for DigitalOcean {
    async fn start() -> Self {
        let key = canary();
        let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
            tokens: vec![key.clone()],
            ready_after: Duration::from_millis(50),
            latency: Duration::ZERO,
            ..DoSandboxConfig::default()
        })
        .await
        .expect("sandbox starts on a free port");
        let dock = dock(&sandbox, &key);
        Self {
            sandbox,
            dock,
            adapter: Arc::new(DigitalOceanAdapter::new(reqwest::Client::new())),
        }
    }

    fn adapter(&self) -> Arc<dyn DockAdapter> {
        self.adapter.clone()
    }

    fn dock(&self) -> DockAccess {
        self.dock.clone()
    }

    fn sample_config(&self, kind: ResourceKind, name: &str) -> Map<String, Value> {
        Self::servers_only(kind);
        let config = json!({
            "name": name,
            "region": "nyc3",
            "size": "s-1vcpu-1gb",
            "image": "ubuntu-24-04-x64",
            "ipv6": true,
            "user_data": "#cloud-config\npassword: not-a-real-one\n",
            "tags": ["web"],
        });
        config.as_object().cloned().expect("an object")
    }

    fn sensitive_fields(&self, kind: ResourceKind) -> Vec<&'static str> {
        Self::servers_only(kind);
        vec!["user_data"]
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        Self::servers_only(kind);
        self.sandbox
            .droplets()
            .into_iter()
            .map(|d| Held {
                provider_resource_id: d["id"].to_string(),
                marker: d["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .find_map(|t| Marker::try_from(t.to_string()).ok()),
            })
            .collect()
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        Self::servers_only(kind);
        self.sandbox.creates_by_tag(marker.as_str())
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        Self::servers_only(kind);
        assert_eq!(nth, 0, "a droplet takes one create");
        let post = Some("POST");
        self.sandbox.inject(match how {
            LostAnswer::ServerError => Fault::lose_response(post, DROPLETS, 1),
            LostAnswer::CutOff => Fault::truncate(post, DROPLETS, 1),
            LostAnswer::Dropped => Fault::disconnect(post, DROPLETS, 1),
            LostAnswer::TimedOut => Fault::delay(post, DROPLETS, Duration::from_secs(3), 1),
        });
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        Self::servers_only(kind);
        assert_eq!(nth, 0, "a droplet takes one create");
        steps
            .iter()
            .find(|s| s.name == "created")
            .and_then(|s| s.output["adopted"].as_bool())
            .unwrap_or_else(|| panic!("no `created` step saying whether it adopted: {steps:?}"))
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        Self::servers_only(kind);
        self.sandbox
            .create_droplet_directly(name, "fra1", "s-1vcpu-2gb", "debian-12-x64", &["db"])["id"]
            .to_string()
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
