//! Turso in the suite: databases, on the Turso sandbox. A database is named after its marker
//! (Turso has no tags), so the marker is read back from the name.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::turso::{TursoAdapter, database_name};
use stackdock_docks::{DockAccess, DockAdapter};
use stackdock_sandbox::{Fault, TursoSandbox};

use super::{Harness, Held, LostAnswer};
use crate::support::{TURSO_ORG, canary, turso_dock, turso_sandbox};

pub struct Turso {
    sandbox: TursoSandbox,
    dock: DockAccess,
    adapter: Arc<TursoAdapter>,
}

impl Turso {
    fn databases_only(kind: ResourceKind) {
        assert_eq!(kind, ResourceKind::Database, "Turso has only databases");
    }

    /// Where databases are created.
    fn databases_path() -> String {
        format!("/v1/organizations/{TURSO_ORG}/databases")
    }
}

impl Harness for Turso {
    async fn start() -> Self {
        let key = canary();
        let sandbox = turso_sandbox(&key).await;
        let dock = turso_dock(&sandbox, &key);
        Self {
            sandbox,
            dock,
            adapter: Arc::new(TursoAdapter::new(reqwest::Client::new())),
        }
    }

    fn adapter(&self) -> Arc<dyn DockAdapter> {
        self.adapter.clone()
    }

    fn dock(&self) -> DockAccess {
        self.dock.clone()
    }

    fn sample_config(&self, kind: ResourceKind, name: &str) -> Map<String, Value> {
        Self::databases_only(kind);
        let config = json!({
            "name": name,
            "group": "default",
            "location": "aws-eu-west-1",
            "size_limit": "256mb",
        });
        config.as_object().cloned().expect("an object")
    }

    fn sensitive_fields(&self, kind: ResourceKind) -> Vec<&'static str> {
        Self::databases_only(kind);
        Vec::new()
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        Self::databases_only(kind);
        self.sandbox
            .databases()
            .into_iter()
            .map(|d| {
                let name = d["Name"].as_str().unwrap_or_default().to_string();
                Held {
                    marker: Marker::try_from(name.clone()).ok(),
                    provider_resource_id: name,
                }
            })
            .collect()
    }

    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize {
        Self::databases_only(kind);
        self.sandbox.creates_of(&database_name(marker))
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        Self::databases_only(kind);
        assert_eq!(nth, 0, "a database takes one create");
        let post = Some("POST");
        let path = Self::databases_path();
        // Only the create itself: token paths lie under the same prefix but come later.
        self.sandbox.inject(match how {
            LostAnswer::ServerError => Fault::lose_response(post, &path, 1),
            LostAnswer::CutOff => Fault::truncate(post, &path, 1),
            LostAnswer::Dropped => Fault::disconnect(post, &path, 1),
            LostAnswer::TimedOut => Fault::delay(post, &path, Duration::from_secs(3), 1),
        });
    }

    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool {
        Self::databases_only(kind);
        assert_eq!(nth, 0, "a database takes one create");
        steps
            .iter()
            .find(|s| s.name == "created")
            .and_then(|s| s.output["adopted"].as_bool())
            .unwrap_or_else(|| panic!("no `created` step saying whether it adopted: {steps:?}"))
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        Self::databases_only(kind);
        self.sandbox
            .create_database_directly(name, "hand-made", "aws-us-west-2")["Name"]
            .as_str()
            .expect("a name")
            .to_string()
    }

    fn requests_received(&self) -> u64 {
        self.sandbox.request_counts().total
    }
}
