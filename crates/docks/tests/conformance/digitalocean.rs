//! DigitalOcean in the suite: droplets as servers, domains with records, and database
//! clusters, on the DigitalOcean sandbox.

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
/// Where domains are created; records are created under `/v2/domains/{name}/records`.
const DOMAINS: &str = "/v2/domains";
/// Where database clusters are created.
const DATABASES: &str = "/v2/databases";
/// The records the sample domain asks for, besides the marker's.
const SAMPLE_RECORDS: usize = 2;

/// The domain the suite's `name` stands for. Made outside StackDock, a domain lives under
/// another suffix, so the two never collide.
fn domain_name(name: &str) -> String {
    format!("{name}.example.com")
}

pub struct DigitalOcean {
    sandbox: DigitalOceanSandbox,
    dock: DockAccess,
    adapter: Arc<DigitalOceanAdapter>,
}

fn marker_in(tags: &Value) -> Option<Marker> {
    tags.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|t| Marker::try_from(t.to_string()).ok())
}

fn step_adopted(steps: &[Step], name: &str) -> bool {
    steps
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.output["adopted"].as_bool())
        .unwrap_or_else(|| panic!("no `{name}` step saying whether it adopted: {steps:?}"))
}

impl DigitalOcean {
    /// The marker a domain's `_stackdock` TXT record holds, read from the sandbox.
    fn domain_marker(&self, domain: &str) -> Option<Marker> {
        self.sandbox
            .domain_records(domain)
            .into_iter()
            .filter(|r| r["type"] == "TXT" && r["name"] == "_stackdock")
            .find_map(|r| Marker::try_from(r["data"].as_str()?.to_string()).ok())
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
        let config = match kind {
            ResourceKind::Server => json!({
                "name": name,
                "region": "nyc3",
                "size": "s-1vcpu-1gb",
                "image": "ubuntu-24-04-x64",
                "ipv6": true,
                "user_data": "#cloud-config\npassword: not-a-real-one\n",
                "tags": ["web"],
            }),
            ResourceKind::Domain => {
                let domain = domain_name(name);
                json!({
                    "name": domain,
                    "ip_address": "192.0.2.10",
                    "records": [
                        {"type": "A", "name": "www", "data": "192.0.2.11", "ttl": 300},
                        {"type": "MX", "data": format!("mail.{domain}"), "priority": 10},
                    ],
                })
            }
            ResourceKind::Database => json!({
                "name": name,
                "engine": "pg",
                "version": "16",
                "size": "db-s-1vcpu-2gb",
                "region": "ams3",
                "num_nodes": 2,
                "tags": ["reporting"],
            }),
            other => panic!("DigitalOcean has no {other} resources"),
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
                .droplets()
                .into_iter()
                .map(|d| Held {
                    provider_resource_id: d["id"].to_string(),
                    marker: marker_in(&d["tags"]),
                })
                .collect(),
            ResourceKind::Domain => self
                .sandbox
                .domains()
                .into_iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .map(|name| Held {
                    marker: self.domain_marker(&name),
                    provider_resource_id: name,
                })
                .collect(),
            ResourceKind::Database => self
                .sandbox
                .databases()
                .into_iter()
                .map(|d| Held {
                    provider_resource_id: d["id"].as_str().unwrap_or_default().to_string(),
                    marker: marker_in(&d["tags"]),
                })
                .collect(),
            other => panic!("DigitalOcean has no {other} resources"),
        }
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        match kind {
            ResourceKind::Server => self.sandbox.creates_by_tag(marker.as_str()),
            ResourceKind::Domain => self.sandbox.domain_creates_holding(marker.as_str()),
            ResourceKind::Database => self.sandbox.database_creates_by_tag(marker.as_str()),
            other => panic!("DigitalOcean has no {other} resources"),
        }
    }

    fn creates_per_provision(&self, kind: ResourceKind) -> usize {
        match kind {
            // The domain, its marker record, the sample's records.
            ResourceKind::Domain => 2 + SAMPLE_RECORDS,
            _ => 1,
        }
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        let fault = |path: &str| {
            let post = Some("POST");
            match how {
                LostAnswer::ServerError => Fault::lose_response(post, path, 1),
                LostAnswer::CutOff => Fault::truncate(post, path, 1),
                LostAnswer::Dropped => Fault::disconnect(post, path, 1),
                LostAnswer::TimedOut => Fault::delay(post, path, Duration::from_secs(3), 1),
            }
        };
        let fault = match (kind, nth) {
            (ResourceKind::Server, 0) => fault(DROPLETS),
            (ResourceKind::Database, 0) => fault(DATABASES),
            // The domain's create is the first POST under /v2/domains.
            (ResourceKind::Domain, 0) => fault(DOMAINS),
            // Its records' creates are the POSTs under /v2/domains/, in order.
            (ResourceKind::Domain, n) if n < self.creates_per_provision(kind) => {
                fault("/v2/domains/").after(n as u32 - 1)
            }
            _ => panic!("{kind}: no create number {nth}"),
        };
        self.sandbox.inject(fault);
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        match (kind, nth) {
            (ResourceKind::Server, 0) => step_adopted(steps, "created"),
            (ResourceKind::Database, 0) => step_adopted(steps, "cluster_created"),
            (ResourceKind::Domain, 0) => step_adopted(steps, "domain_created"),
            (ResourceKind::Domain, 1) => step_adopted(steps, "marker_record_created"),
            (ResourceKind::Domain, n) => step_adopted(steps, &format!("record_{}_created", n - 1)),
            _ => panic!("{kind}: no create number {nth}"),
        }
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        match kind {
            ResourceKind::Server => self.sandbox.create_droplet_directly(
                name,
                "fra1",
                "s-1vcpu-2gb",
                "debian-12-x64",
                &["db"],
            )["id"]
                .to_string(),
            ResourceKind::Domain => {
                let domain = format!("{name}.example.net");
                self.sandbox.create_domain_directly(&domain);
                domain
            }
            ResourceKind::Database => self.sandbox.create_database_directly(
                name,
                "mysql",
                "fra1",
                "db-s-1vcpu-1gb",
                &["db"],
            )["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            other => panic!("DigitalOcean has no {other} resources"),
        }
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
