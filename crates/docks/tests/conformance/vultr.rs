//! Vultr in the suite: instances as servers, DNS domains and managed databases, on the Vultr
//! sandbox. An instance carries its marker among its tags, a database as its one tag, a
//! domain in a `TXT` record of its zone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::vultr::{MARKER_RECORD, VultrAdapter};
use stackdock_docks::{DockAccess, DockAdapter};
use stackdock_sandbox::{Fault, VultrSandbox};

use super::{Harness, Held, LostAnswer};
use crate::support::{canary, vultr_dock, vultr_sandbox};

/// Where instances are created.
const INSTANCES: &str = "/instances";
/// Where domains are created (records are created under it too, but only after).
const DOMAINS: &str = "/domains";
/// Where managed databases are created.
const DATABASES: &str = "/databases";

pub struct Vultr {
    sandbox: VultrSandbox,
    dock: DockAccess,
    adapter: Arc<VultrAdapter>,
}

/// The marker among an answer's `tags`, if any.
fn marker_in(tags: &Value) -> Option<Marker> {
    tags.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|t| Marker::try_from(t.to_string()).ok())
}

/// The marker a zone's `_stackdock` record holds, if any.
fn zone_marker(records: &[Value]) -> Option<Marker> {
    records
        .iter()
        .filter(|r| r["type"] == "TXT" && r["name"] == MARKER_RECORD)
        .find_map(|r| {
            let text = r["data"].as_str()?.trim_matches('"');
            Marker::try_from(text.to_string()).ok()
        })
}

/// Whether the step recording the `nth` create says it adopted.
fn adopted_in(steps: &[Step], name: &str) -> bool {
    steps
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.output["adopted"].as_bool())
        .unwrap_or_else(|| panic!("no `{name}` step saying whether it adopted: {steps:?}"))
}

impl Harness for Vultr {
    async fn start() -> Self {
        let key = canary();
        let sandbox = vultr_sandbox(&key).await;
        let dock = vultr_dock(&sandbox, &key);
        Self {
            sandbox,
            dock,
            adapter: Arc::new(VultrAdapter::new(reqwest::Client::new())),
        }
    }

    fn adapter(&self) -> Arc<dyn DockAdapter> {
        self.adapter.clone()
    }

    fn dock(&self) -> DockAccess {
        self.dock.clone()
    }

    fn sample_config(&self, kind: ResourceKind, name: &str) -> Map<String, Value> {
        let config = match kind {
            ResourceKind::Server => json!({
                "name": name,
                "region": "ewr",
                "plan": "vc2-1c-1gb",
                "os_id": 2284,
                "ipv6": true,
                "user_data": "#cloud-config\npassword: not-a-real-one\n",
                "tags": ["web"],
            }),
            ResourceKind::Domain => json!({
                "name": format!("{name}.example.com"),
                "ip": "203.0.113.10",
                "records": [
                    {"type": "A", "name": "api", "data": "203.0.113.11", "ttl": 600},
                    {"type": "MX", "data": "mail.example.com", "priority": 10},
                ],
            }),
            ResourceKind::Database => json!({
                "name": name,
                "engine": "pg",
                "engine_version": "16",
                "region": "ewr",
                "plan": "vultr-dbaas-hobbyist-cc-1-25-1",
                "maintenance_dow": "sunday",
                "trusted_ips": ["203.0.113.0/24"],
            }),
            other => panic!("Vultr has no {other} here"),
        };
        config.as_object().cloned().expect("an object")
    }

    fn sensitive_fields(&self, kind: ResourceKind) -> Vec<&'static str> {
        match kind {
            ResourceKind::Server => vec!["user_data"],
            _ => Vec::new(),
        }
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        match kind {
            ResourceKind::Server => self
                .sandbox
                .instances()
                .into_iter()
                .map(|i| Held {
                    provider_resource_id: i["id"].as_str().unwrap_or_default().to_string(),
                    marker: marker_in(&i["tags"]),
                })
                .collect(),
            ResourceKind::Domain => self
                .sandbox
                .domains()
                .into_iter()
                .map(|d| {
                    let name = d["domain"].as_str().unwrap_or_default().to_string();
                    Held {
                        marker: zone_marker(&self.sandbox.records(&name)),
                        provider_resource_id: name,
                    }
                })
                .collect(),
            ResourceKind::Database => self
                .sandbox
                .databases()
                .into_iter()
                .map(|d| Held {
                    provider_resource_id: d["id"].as_str().unwrap_or_default().to_string(),
                    marker: d["tag"]
                        .as_str()
                        .and_then(|t| Marker::try_from(t.to_string()).ok()),
                })
                .collect(),
            other => panic!("Vultr has no {other} here"),
        }
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        match kind {
            ResourceKind::Server => self.sandbox.creates_by_tag(marker.as_str()),
            // A domain's name cannot be made twice; its marker record can.
            ResourceKind::Domain => self.sandbox.txt_records_created(marker.as_str()),
            ResourceKind::Database => self.sandbox.database_creates_by_tag(marker.as_str()),
            other => panic!("Vultr has no {other} here"),
        }
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        assert_eq!(nth, 0, "a {kind} takes one create");
        let path = match kind {
            ResourceKind::Server => INSTANCES,
            ResourceKind::Domain => DOMAINS,
            ResourceKind::Database => DATABASES,
            other => panic!("Vultr has no {other} here"),
        };
        let post = Some("POST");
        self.sandbox.inject(match how {
            LostAnswer::ServerError => Fault::lose_response(post, path, 1),
            LostAnswer::CutOff => Fault::truncate(post, path, 1),
            LostAnswer::Dropped => Fault::disconnect(post, path, 1),
            LostAnswer::TimedOut => Fault::delay(post, path, Duration::from_secs(3), 1),
        });
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        assert_eq!(nth, 0, "a {kind} takes one create");
        match kind {
            ResourceKind::Server => adopted_in(steps, "instance_created"),
            ResourceKind::Domain => adopted_in(steps, "domain_created"),
            ResourceKind::Database => adopted_in(steps, "database_created"),
            other => panic!("Vultr has no {other} here"),
        }
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        match kind {
            ResourceKind::Server => {
                self.sandbox
                    .create_instance_directly(name, "ams", "vc2-1c-2gb", &["db"])["id"]
                    .as_str()
                    .expect("an id")
                    .to_string()
            }
            ResourceKind::Domain => self
                .sandbox
                .create_domain_directly(&format!("{name}.example.org"))["domain"]
                .as_str()
                .expect("a name")
                .to_string(),
            ResourceKind::Database => self.sandbox.create_database_directly(
                name,
                "mysql",
                "8",
                "ams",
                "vultr-dbaas-startup-cc-1-55-2",
            )["id"]
                .as_str()
                .expect("an id")
                .to_string(),
            other => panic!("Vultr has no {other} here"),
        }
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
