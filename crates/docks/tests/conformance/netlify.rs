//! Netlify in the suite: web services (a site and its deploy) and domains (a DNS zone with
//! records), on the Netlify sandbox. A site is named after its marker (Netlify has no tags); a
//! zone carries its marker in a `_stackdock` TXT record.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::netlify::{MARKER_RECORD, NetlifyAdapter, site_name};
use stackdock_docks::{DockAccess, DockAdapter, MemoryFiles};
use stackdock_sandbox::{Fault, NetlifySandbox};

use super::{Harness, Held, LostAnswer};
use crate::support::{canary, manifest, netlify_dock, netlify_sandbox};

pub struct Netlify {
    sandbox: NetlifySandbox,
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    adapter: Arc<NetlifyAdapter>,
}

/// The marker a zone's `_stackdock` record holds, if any.
fn zone_marker(zone: &Value) -> Option<Marker> {
    let name = format!("{MARKER_RECORD}.{}", zone["name"].as_str()?);
    zone["records"]
        .as_array()?
        .iter()
        .filter(|r| r["type"] == "TXT" && r["hostname"] == name.as_str())
        .find_map(|r| Marker::try_from(r["value"].as_str()?.to_string()).ok())
}

impl Harness for Netlify {
    async fn start() -> Self {
        let key = canary();
        let sandbox = netlify_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = netlify_dock(&sandbox, &key, files.clone());
        Self {
            sandbox,
            dock,
            files,
            adapter: Arc::new(NetlifyAdapter::new(reqwest::Client::new())),
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
                    // The same contents as the stylesheet: Netlify asks for them once.
                    ("css/copy.css", b"body { margin: 0 }"),
                ]),
            }),
            ResourceKind::Domain => json!({
                "name": format!("{name}.example.com"),
                "records": [{"type": "A", "name": "www", "value": "192.0.2.10"}],
            }),
            other => panic!("Netlify has no {other}"),
        };
        config.as_object().cloned().expect("an object")
    }

    fn sensitive_fields(&self, _kind: ResourceKind) -> Vec<&'static str> {
        Vec::new()
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        match kind {
            ResourceKind::WebService => self
                .sandbox
                .sites()
                .into_iter()
                .map(|s| Held {
                    provider_resource_id: s["id"].as_str().unwrap_or_default().to_string(),
                    marker: Marker::try_from(s["name"].as_str().unwrap_or_default().to_string())
                        .ok(),
                })
                .collect(),
            ResourceKind::Domain => self
                .sandbox
                .zones()
                .into_iter()
                .map(|z| Held {
                    provider_resource_id: z["id"].as_str().unwrap_or_default().to_string(),
                    marker: zone_marker(&z),
                })
                .collect(),
            other => panic!("Netlify has no {other}"),
        }
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        match kind {
            // The site and its deploy, each made once: the deploys still on the site are
            // every one made for it.
            ResourceKind::WebService => {
                let name = site_name(marker);
                let deploys = self.sandbox.deploys();
                let deployed = deploys.iter().filter(|d| d["name"] == name).count();
                self.sandbox.site_creates(&name).max(deployed)
            }
            // A zone's name is unique, so a zone is never doubled; its marker record is
            // counted among the zone's records.
            ResourceKind::Domain => self
                .sandbox
                .records()
                .iter()
                .filter(|r| r["type"] == "TXT" && r["value"] == marker.as_str())
                .count(),
            other => panic!("Netlify has no {other}"),
        }
    }

    fn creates_per_provision(&self, kind: ResourceKind) -> usize {
        match kind {
            // The zone, its marker record and the sample's one record.
            ResourceKind::Domain => 3,
            // The site, then its deploy.
            _ => 2,
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
            // The site's create is the first POST under /sites (its deploy comes after).
            (ResourceKind::WebService, 0) => fault("/api/v1/sites"),
            // The deploy's create is the POST under the site.
            (ResourceKind::WebService, 1) => fault("/api/v1/sites/"),
            (ResourceKind::Domain, 0) => fault("/api/v1/dns_zones"),
            // The records' creates are the POSTs under /dns_zones/, in order.
            (ResourceKind::Domain, n) if n < 3 => fault("/api/v1/dns_zones/").after(n as u32 - 1),
            _ => panic!("{kind}: no create number {nth}"),
        };
        self.sandbox.inject(fault);
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        let step = match (kind, nth) {
            (ResourceKind::WebService, 0) => "site_created",
            (ResourceKind::WebService, 1) => "deploy_created",
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
        let made = match kind {
            ResourceKind::WebService => self.sandbox.create_site_directly(name),
            ResourceKind::Domain => self
                .sandbox
                .create_zone_directly(&format!("{name}.example.org")),
            other => panic!("Netlify has no {other}"),
        };
        made["id"].as_str().expect("an id").to_string()
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
