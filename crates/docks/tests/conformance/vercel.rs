//! Vercel in the suite: web services (a project and its deployment) and domains (a project
//! domain, on a project of its own), on the Vercel sandbox. A project is named after its
//! marker (Vercel has no tags); a domain's own project carries its marker.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::vercel::{VercelAdapter, project_name};
use stackdock_docks::{DockAccess, DockAdapter, MemoryFiles};
use stackdock_sandbox::{Fault, VercelSandbox};

use super::{Harness, Held, LostAnswer};
use crate::support::{canary, manifest, vercel_dock, vercel_sandbox};

pub struct Vercel {
    sandbox: VercelSandbox,
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    adapter: Arc<VercelAdapter>,
}

impl Harness for Vercel {
    async fn start() -> Self {
        let key = canary();
        let sandbox = vercel_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = vercel_dock(&sandbox, &key, files.clone());
        Self {
            sandbox,
            dock,
            files,
            adapter: Arc::new(VercelAdapter::new(reqwest::Client::new())),
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
                    // The same contents as the stylesheet: Vercel asks for them once.
                    ("css/copy.css", b"body { margin: 0 }"),
                ]),
            }),
            ResourceKind::Domain => json!({"name": format!("{name}.example.com")}),
            other => panic!("Vercel has no {other}"),
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
                .projects()
                .into_iter()
                .map(|p| Held {
                    provider_resource_id: p["id"].as_str().unwrap_or_default().to_string(),
                    marker: Marker::try_from(p["name"].as_str().unwrap_or_default().to_string())
                        .ok(),
                })
                .collect(),
            ResourceKind::Domain => {
                let names: std::collections::HashMap<String, String> = self
                    .sandbox
                    .projects()
                    .into_iter()
                    .map(|p| {
                        let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                        (text("id"), text("name"))
                    })
                    .collect();
                self.sandbox
                    .domains()
                    .into_iter()
                    .map(|d| {
                        let project = d["projectId"].as_str().unwrap_or_default();
                        let name = d["name"].as_str().unwrap_or_default();
                        Held {
                            provider_resource_id: format!("{project}/{name}"),
                            marker: names
                                .get(project)
                                .and_then(|n| Marker::try_from(n.clone()).ok()),
                        }
                    })
                    .collect()
            }
            other => panic!("Vercel has no {other}"),
        }
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        match kind {
            // The project and its deployment, each made once: the deployments still in the
            // project are every one made for it.
            ResourceKind::WebService => {
                let name = project_name(marker);
                let deployments = self.sandbox.deployments();
                let deployed = deployments.iter().filter(|d| d["name"] == name).count();
                self.sandbox.project_creates(&name).max(deployed)
            }
            // A domain is on one project at most, so it is never doubled; its own project
            // could be, which shows as a second project of the marker's name adding it.
            ResourceKind::Domain => self.sandbox.domain_adds(&project_name(marker)),
            other => panic!("Vercel has no {other}"),
        }
    }

    fn creates_per_provision(&self, _kind: ResourceKind) -> usize {
        // A domain's own project, then the domain; a web service's project, then its
        // deployment.
        2
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        let post = Some("POST");
        let (path, skip) = match (kind, nth) {
            (ResourceKind::WebService | ResourceKind::Domain, 0) => ("/v11/projects", 0),
            (ResourceKind::Domain, 1) => ("/v10/projects/", 0),
            (ResourceKind::WebService, 1) => ("/v13/deployments", 0),
            _ => panic!("{kind}: no create number {nth}"),
        };
        let fault = match how {
            LostAnswer::ServerError => Fault::lose_response(post, path, 1),
            LostAnswer::CutOff => Fault::truncate(post, path, 1),
            LostAnswer::Dropped => Fault::disconnect(post, path, 1),
            LostAnswer::TimedOut => Fault::delay(post, path, Duration::from_secs(3), 1),
        };
        self.sandbox.inject(fault.after(skip));
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        let step = match (kind, nth) {
            (ResourceKind::WebService | ResourceKind::Domain, 0) => "project_created",
            (ResourceKind::Domain, 1) => "domain_added",
            (ResourceKind::WebService, 1) => "deployment_created",
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
            ResourceKind::WebService => self.sandbox.create_project_directly(name),
            ResourceKind::Domain => {
                // A project of its own name, apart from the web services made outside.
                let project = self
                    .sandbox
                    .create_project_directly(&format!("{name}-with-domain"));
                let id = project["id"].as_str().expect("an id");
                let domain = self
                    .sandbox
                    .add_domain_directly(id, &format!("{name}.example.org"));
                return format!("{id}/{}", domain["name"].as_str().expect("a name"));
            }
            other => panic!("Vercel has no {other}"),
        };
        made["id"].as_str().expect("an id").to_string()
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
