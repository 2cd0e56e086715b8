//! Cloudflare in the suite: web services (a Pages project and its direct-upload deployment)
//! and domains (a zone with DNS records), on the Cloudflare sandbox. A project is named after
//! its marker (Pages has no tags); a zone carries its marker in a `_stackdock` TXT record.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::cloudflare::{CloudflareAdapter, MARKER_RECORD, project_name};
use stackdock_docks::{DockAccess, DockAdapter, MemoryFiles};
use stackdock_sandbox::cloudflare::ACCOUNT_ID;
use stackdock_sandbox::{CloudflareSandbox, Fault};

use super::{Harness, Held, LostAnswer};
use crate::support::{canary, cloudflare_dock, cloudflare_sandbox, manifest};

pub struct Cloudflare {
    sandbox: CloudflareSandbox,
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    adapter: Arc<CloudflareAdapter>,
}

/// The marker the `_stackdock` record of the zone `zone` holds, if any.
fn zone_marker(records: &[Value], zone: &Value) -> Option<Marker> {
    let name = format!("{MARKER_RECORD}.{}", zone["name"].as_str()?);
    records
        .iter()
        .filter(|r| r["zone_id"] == zone["id"] && r["type"] == "TXT" && r["name"] == name.as_str())
        .find_map(|r| Marker::try_from(r["content"].as_str()?.to_string()).ok())
}

impl Harness for Cloudflare {
    async fn start() -> Self {
        let key = canary();
        let sandbox = cloudflare_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = cloudflare_dock(&sandbox, &key, files.clone());
        Self {
            sandbox,
            dock,
            files,
            adapter: Arc::new(CloudflareAdapter::new(reqwest::Client::new())),
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
            ResourceKind::WebService => json!({
                "name": name,
                "files": manifest(&self.files, &[
                    ("index.html", format!("<h1>{name}</h1>").as_bytes()),
                    ("css/site.css", b"body { margin: 0 }"),
                    // The same contents and extension: Cloudflare asks for them once.
                    ("css/copy.css", b"body { margin: 0 }"),
                ]),
            }),
            ResourceKind::Domain => json!({
                "name": format!("{name}.example.com"),
                "records": [{"type": "A", "name": "www", "value": "192.0.2.10"}],
            }),
            other => panic!("Cloudflare has no {other}"),
        };
        config.as_object().cloned().expect("an object")
    }

    fn sensitive_fields(&self, _kind: ResourceKind) -> Vec<&'static str> {
        Vec::new()
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        if kind == ResourceKind::WebService {
            return self
                .sandbox
                .pages_projects()
                .into_iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    Held {
                        marker: Marker::try_from(name.clone()).ok(),
                        // The row tracks a project by its name, which every path holds.
                        provider_resource_id: name,
                    }
                })
                .collect();
        }
        assert_eq!(kind, ResourceKind::Domain, "Cloudflare has no {kind}");
        let records = self.sandbox.records();
        self.sandbox
            .zones()
            .into_iter()
            .map(|z| Held {
                provider_resource_id: z["id"].as_str().unwrap_or_default().to_string(),
                marker: zone_marker(&records, &z),
            })
            .collect()
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        if kind == ResourceKind::WebService {
            // The project and its deployment, each made once.
            let name = project_name(marker);
            return self
                .sandbox
                .project_creates(&name)
                .max(self.sandbox.deployment_creates(&name));
        }
        assert_eq!(kind, ResourceKind::Domain, "Cloudflare has no {kind}");
        // A zone's name is unique, so a zone is never doubled; its marker record is counted
        // among the zone's records.
        self.sandbox
            .records()
            .iter()
            .filter(|r| r["type"] == "TXT" && r["content"] == marker.as_str())
            .count()
    }

    fn creates_per_provision(&self, kind: ResourceKind) -> usize {
        match kind {
            // The project, then its deployment.
            ResourceKind::WebService => 2,
            // The zone, its marker record and the sample's one record.
            _ => 3,
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
        let projects = format!("/client/v4/accounts/{ACCOUNT_ID}/pages/projects");
        let fault = match (kind, nth) {
            // The project's create is the first POST there; the deployment's is under it.
            (ResourceKind::WebService, 0) => fault(&projects),
            (ResourceKind::WebService, 1) => fault(&format!("{projects}/")),
            // The zone's create is the first POST under /zones; the records' come after it.
            (ResourceKind::Domain, 0) => fault("/client/v4/zones"),
            (ResourceKind::Domain, n) if n < 3 => fault("/client/v4/zones/").after(n as u32 - 1),
            _ => panic!("{kind}: no create number {nth}"),
        };
        self.sandbox.inject(fault);
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        let step = match (kind, nth) {
            (ResourceKind::WebService, 0) => "project_created",
            (ResourceKind::WebService, 1) => "deployment_created",
            (ResourceKind::Domain, 0) => "zone_created",
            (ResourceKind::Domain, 1) => "marker_record_created",
            (ResourceKind::Domain, 2) => "zone_record_1_created",
            _ => panic!("{kind}: no create number {nth}"),
        };
        steps
            .iter()
            .find(|s| s.name == step)
            .and_then(|s| s.output["adopted"].as_bool())
            .unwrap_or_else(|| panic!("no `{step}` step saying whether it adopted: {steps:?}"))
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        if kind == ResourceKind::WebService {
            let made = self.sandbox.create_project_directly(name);
            return made["name"].as_str().expect("a name").to_string();
        }
        assert_eq!(kind, ResourceKind::Domain, "Cloudflare has no {kind}");
        let made = self
            .sandbox
            .create_zone_directly(&format!("{name}.example.org"));
        made["id"].as_str().expect("an id").to_string()
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
