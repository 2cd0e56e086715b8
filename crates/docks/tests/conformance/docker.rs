//! Docker in the suite, against the machine's real engine: web services (an image built from
//! a busybox context, a container answering HTTP), reached through a front door
//! ([`EngineFront`]) that can lose a create's answer after the engine carried it out. A
//! container carries its marker as a label; everything a check makes carries the harness's
//! dock label and is removed when the harness is dropped.
//!
//! Without an engine every check says so on one line and passes (under `CI=true` it fails):
//! the harness then stands for nothing and each check returns at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::{Marker, Provider, ResourceKind, SecretString, Step};
use stackdock_docks::docker::{DockerAdapter, LABEL_DOCK, LABEL_MARKER};
use stackdock_docks::{DockAccess, DockAdapter, MemoryFiles};
use stackdock_sandbox::docker::{self as engine, BUSYBOX, EngineFront, Leftovers};

use super::{Harness, Held, LostAnswer};
use crate::support::{dock_at, serve_files};

/// The app every sample config builds: busybox httpd serving a page on 8080.
const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
    ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

/// One harness at a time: every check sees the whole engine (`discover` lists all of its
/// containers), so checks running side by side would see each other's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Docker {
    front: EngineFront,
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    adapter: Arc<DockerAdapter>,
    label: String,
    // Dropped after the front: removes what the checks left, then lets the next check in.
    _leftovers: Leftovers,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Harness for Docker {
    fn available(check: &str) -> bool {
        engine::engine_or_skip(check)
    }

    async fn start() -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let front = EngineFront::start().await;
        let mut dock = dock_at("", "");
        dock.provider = Provider::Docker;
        dock.name = "docker-suite".into();
        dock.base_url = None;
        dock.api_key = SecretString::new("");
        let id = dock.id.to_string().replace('-', "");
        dock.settings = json!({
            "host": front.host(),
            "network": format!("stackdock-suite-{}", &id[id.len() - 12..]),
        });
        let files = Arc::new(MemoryFiles::default());
        serve_files(&dock, files.clone());
        let label = format!("{LABEL_DOCK}={}", dock.id);
        Self {
            front,
            dock,
            files,
            adapter: Arc::new(DockerAdapter::new()),
            _leftovers: Leftovers::new(label.clone(), LABEL_MARKER),
            _turn: turn,
            label,
        }
    }

    fn adapter(&self) -> Arc<dyn DockAdapter> {
        self.adapter.clone()
    }

    fn dock(&self) -> DockAccess {
        self.dock.clone()
    }

    fn sample_config(&self, kind: ResourceKind, name: &str) -> Map<String, Value> {
        assert_eq!(kind, ResourceKind::WebService, "Docker has no {kind}");
        let busybox = std::fs::read(BUSYBOX).expect("a static busybox");
        let page = format!("<h1>{name}</h1>");
        let files: Vec<Value> = [
            ("Dockerfile", DOCKERFILE.as_bytes(), false),
            ("busybox", busybox.as_slice(), true),
            ("www/index.html", page.as_bytes(), false),
        ]
        .into_iter()
        .map(|(path, bytes, executable)| {
            json!({"path": path, "sha256": self.files.put(bytes), "size": bytes.len(),
                   "executable": executable})
        })
        .collect();
        json!({"name": name, "files": files, "env": {"APP_SECRET": "suite-secret-value"}})
            .as_object()
            .cloned()
            .expect("an object")
    }

    fn sensitive_fields(&self, _kind: ResourceKind) -> Vec<&'static str> {
        vec!["env"]
    }

    async fn inventory(&self, kind: ResourceKind) -> Vec<Held> {
        assert_eq!(kind, ResourceKind::WebService, "Docker has no {kind}");
        engine::containers(&self.label)
            .into_iter()
            .map(|c| Held {
                provider_resource_id: c["Id"].as_str().unwrap_or_default().to_string(),
                marker: c["Labels"][LABEL_MARKER]
                    .as_str()
                    .and_then(|m| Marker::try_from(m.to_string()).ok()),
            })
            .collect()
    }

    fn creates_with_marker(&self, _kind: ResourceKind, marker: &Marker) -> usize {
        // The container is named after its marker.
        self.front.creates_named(marker.as_str())
    }

    fn lost_answer_timeout(&self) -> Duration {
        // Behind the front is a real Docker Engine: starting a container on a busy machine
        // can take longer than a sandbox's half second.
        Duration::from_secs(5)
    }

    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer) {
        assert!(
            kind == ResourceKind::WebService && nth == 0,
            "{kind}: no create number {nth}"
        );
        let how = match how {
            LostAnswer::ServerError => engine::LostAnswer::ServerError,
            LostAnswer::CutOff => engine::LostAnswer::CutOff,
            LostAnswer::Dropped => engine::LostAnswer::Dropped,
            LostAnswer::TimedOut => engine::LostAnswer::Delayed(self.lost_answer_timeout() * 3),
        };
        self.front.lose_next("POST", "/containers/create", how);
    }

    fn adopted(&self, _kind: ResourceKind, _nth: usize, steps: &[Step]) -> bool {
        steps
            .iter()
            .find(|s| s.name == "container_created")
            .and_then(|s| s.output["adopted"].as_bool())
            .unwrap_or_else(|| panic!("no container_created step saying so: {steps:?}"))
    }

    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String {
        assert_eq!(kind, ResourceKind::WebService, "Docker has no {kind}");
        // From an image of its own, built as a user would, carrying only the dock's label
        // (for the cleanup), never StackDock's marker.
        let tag = format!("stackdock-outside-{:08x}:latest", rand::random::<u32>());
        let image = build_outside(&tag, &self.label);
        let (key, value) = self.label.split_once('=').expect("k=v");
        let body = json!({"Image": image, "Labels": {key: value}});
        let (status, made) = engine::engine(
            "POST",
            &format!(
                "/containers/create?name={name}-{:08x}",
                rand::random::<u32>()
            ),
            Some(&body),
        );
        assert_eq!(status, 201, "{made}");
        made["Id"].as_str().expect("an id").to_string()
    }

    fn requests_received(&self) -> u64 {
        self.front.requests()
    }

    /// The engine documents no rate limit: its client is not paced by a budget.
    fn calls_wait_for_the_budget(&self) -> bool {
        false
    }
}

/// Builds an image tagged `tag` from busybox alone, labelled `label`; answers its id.
fn build_outside(tag: &str, label: &str) -> String {
    let busybox = std::fs::read(BUSYBOX).expect("a static busybox");
    let dockerfile =
        b"FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n";
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes, mode) in [
        ("Dockerfile", dockerfile.as_slice(), 0o644),
        ("busybox", busybox.as_slice(), 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes).expect("tar");
    }
    let context = tar.into_inner().expect("tar");
    let (key, value) = label.split_once('=').expect("k=v");
    let labels = json!({ key: value }).to_string();
    let query = format!("t={}&labels={}", percent(tag), percent(&labels));
    let (status, answer) = engine::engine_bytes(
        "POST",
        &format!("/build?{query}"),
        "application/x-tar",
        &context,
    );
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("errorDetail"), "{text}");
    tag.to_string()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
