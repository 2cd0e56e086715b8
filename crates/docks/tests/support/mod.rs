//! What the docks test binaries share: an in-memory [`Recorder`](recorder::MemRecorder), a
//! sandbox with a canary key, a dock with its own rate budget, and a [`Ctx`] with waits short
//! enough for tests.
//!
//! Each test binary uses a different subset of this module, so unused items are expected.
#![allow(dead_code)]

pub mod engine;
pub mod recorder;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use stackdock_core::{DockId, Marker, OperationId, OrgId, Provider, ResourceId, SecretString};
use stackdock_docks::digitalocean::DigitalOceanAdapter;
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, FileSource, MemoryFiles, RateLimit, RetryPolicy, Tracked,
};
use stackdock_sandbox::{
    CloudflareSandbox, CloudflareSandboxConfig, DigitalOceanSandbox, DoSandboxConfig,
    NetlifySandbox, NetlifySandboxConfig, RecordedRequest, TursoSandbox, TursoSandboxConfig,
    VercelSandbox, VercelSandboxConfig, VultrSandbox, VultrSandboxConfig,
};

// Re-exported for the binaries that use them; the others would warn.
#[allow(unused_imports)]
pub use recorder::{MemRecorder, Recorded, Stop};

/// Long enough that a test's waits are seconds, never minutes.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A random API key that a test can search for in everything StackDock produced.
pub fn canary() -> String {
    let bits: u64 = rand::random();
    format!("dop_v1_canary{bits:016x}")
}

/// A sandbox accepting `key`, with droplets ready after `ready_after`.
pub async fn sandbox(key: &str, ready_after: Duration) -> DigitalOceanSandbox {
    sandbox_with(DoSandboxConfig {
        tokens: vec![key.to_string()],
        ready_after,
        ..DoSandboxConfig::default()
    })
    .await
}

pub async fn sandbox_with(config: DoSandboxConfig) -> DigitalOceanSandbox {
    DigitalOceanSandbox::start(config)
        .await
        .expect("sandbox starts on a free port")
}

pub fn adapter() -> DigitalOceanAdapter {
    DigitalOceanAdapter::new(reqwest::Client::new())
}

/// The dock as the engine would hand it over: key opened, base URL pointed at the sandbox,
/// no rate limit configured (the budget learns the sandbox's from its headers).
pub fn dock(sandbox: &DigitalOceanSandbox, key: &str) -> DockAccess {
    dock_at(&sandbox.base_url(), key)
}

pub fn dock_at(base_url: &str, key: &str) -> DockAccess {
    dock_limited(base_url, key, RateLimit::None)
}

pub fn dock_limited(base_url: &str, key: &str, limit: RateLimit) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::DigitalOcean,
        name: "do-test".into(),
        api_key: SecretString::new(key),
        base_url: Some(base_url.to_string()),
        settings: serde_json::Value::Null,
        budget: Arc::new(Budget::new(limit)),
    }
}

/// The organization the Turso sandboxes of these tests serve.
pub const TURSO_ORG: &str = "acme";

/// A Turso sandbox accepting `key` for [`TURSO_ORG`].
pub async fn turso_sandbox(key: &str) -> TursoSandbox {
    TursoSandbox::start(TursoSandboxConfig {
        tokens: vec![key.to_string()],
        organization: TURSO_ORG.into(),
        ..TursoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port")
}

/// A Turso dock on `sandbox`, naming its organization in its settings as `docks add` would.
pub fn turso_dock(sandbox: &TursoSandbox, key: &str) -> DockAccess {
    DockAccess {
        provider: Provider::Turso,
        name: "turso-test".into(),
        settings: serde_json::json!({ "organization": sandbox.organization() }),
        ..dock_at(&sandbox.base_url(), key)
    }
}

/// A Netlify sandbox accepting `key`, deploys moving along in tens of milliseconds.
pub async fn netlify_sandbox(key: &str) -> NetlifySandbox {
    NetlifySandbox::start(NetlifySandboxConfig {
        tokens: vec![key.to_string()],
        prepare_after: Duration::from_millis(30),
        process_after: Duration::from_millis(30),
        ..NetlifySandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port")
}

/// A Vercel sandbox accepting `key`, deployments moving along in tens of milliseconds.
pub async fn vercel_sandbox(key: &str) -> VercelSandbox {
    VercelSandbox::start(VercelSandboxConfig {
        tokens: vec![key.to_string()],
        queue_after: Duration::from_millis(30),
        build_after: Duration::from_millis(30),
        ..VercelSandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port")
}

/// A Vercel dock on `sandbox`, whose runs read files from `files` (see [`serve_files`]).
pub fn vercel_dock(sandbox: &VercelSandbox, key: &str, files: Arc<MemoryFiles>) -> DockAccess {
    let dock = DockAccess {
        provider: Provider::Vercel,
        name: "vercel-test".into(),
        ..dock_at(&sandbox.api_url(), key)
    };
    serve_files(&dock, files);
    dock
}

/// A Vultr sandbox accepting `key`, with instances ready within tens of milliseconds.
pub async fn vultr_sandbox(key: &str) -> VultrSandbox {
    VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![key.to_string()],
        ready_after: Duration::from_millis(50),
        ..VultrSandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port")
}

/// A Cloudflare sandbox accepting `key`.
pub async fn cloudflare_sandbox(key: &str) -> CloudflareSandbox {
    CloudflareSandbox::start(CloudflareSandboxConfig {
        tokens: vec![key.to_string()],
        queue_after: Duration::from_millis(30),
        build_after: Duration::from_millis(30),
        ..CloudflareSandboxConfig::default()
    })
    .await
    .expect("sandbox starts on a free port")
}

/// A Cloudflare dock on `sandbox`, in the account the sandbox serves, whose runs read files
/// from `files` (see [`serve_files`]).
pub fn cloudflare_dock(
    sandbox: &CloudflareSandbox,
    key: &str,
    files: Arc<MemoryFiles>,
) -> DockAccess {
    let dock = DockAccess {
        provider: Provider::Cloudflare,
        name: "cloudflare-test".into(),
        settings: serde_json::json!({ "account_id": stackdock_sandbox::cloudflare::ACCOUNT_ID }),
        ..dock_at(&sandbox.api_url(), key)
    };
    serve_files(&dock, files);
    dock
}

/// A Netlify dock on `sandbox`, whose runs read files from `files` (see [`serve_files`]).
pub fn netlify_dock(sandbox: &NetlifySandbox, key: &str, files: Arc<MemoryFiles>) -> DockAccess {
    let dock = DockAccess {
        provider: Provider::Netlify,
        name: "netlify-test".into(),
        ..dock_at(&sandbox.api_url(), key)
    };
    serve_files(&dock, files);
    dock
}

type FileSources = Mutex<HashMap<DockId, Arc<dyn FileSource>>>;

fn file_sources() -> &'static FileSources {
    static SOURCES: OnceLock<FileSources> = OnceLock::new();
    SOURCES.get_or_init(Default::default)
}

/// Every run on `dock` reads web services' files from `files`, as the engine's runs read them
/// from its file store.
pub fn serve_files(dock: &DockAccess, files: Arc<dyn FileSource>) {
    file_sources()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(dock.id, files);
}

/// A manifest of `files` (path, contents), their contents kept in `store`.
pub fn manifest(store: &MemoryFiles, files: &[(&str, &[u8])]) -> serde_json::Value {
    serde_json::Value::Array(
        files
            .iter()
            .map(|(path, bytes)| {
                serde_json::json!({"path": path, "sha256": store.put(bytes), "size": bytes.len()})
            })
            .collect(),
    )
}

/// A Vultr dock on `sandbox`, whose base URL stands for `https://api.vultr.com/v2`.
pub fn vultr_dock(sandbox: &VultrSandbox, key: &str) -> DockAccess {
    DockAccess {
        provider: Provider::Vultr,
        name: "vultr-test".into(),
        ..dock_at(&sandbox.base_url(), key)
    }
}

/// Retries fast enough for tests; every other knob as in production.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

/// One run of an operation on one resource, as the engine would set it up.
pub struct Run {
    pub resource_id: ResourceId,
    pub operation_id: OperationId,
    pub marker: Marker,
    pub recorder: Arc<MemRecorder>,
    pub ctx: Ctx,
}

impl Run {
    /// The first run of a new operation on a new resource.
    pub fn new(dock: &DockAccess) -> Self {
        Self::with(dock, MemRecorder::default())
    }

    /// The first run of a new operation, recording into `recorder`.
    pub fn with(dock: &DockAccess, recorder: MemRecorder) -> Self {
        Self::build(
            dock,
            ResourceId::new(),
            OperationId::new(),
            1,
            Arc::new(recorder),
        )
    }

    /// A later run of the same operation (same resource, marker and operation), after the
    /// store kept `recorded` of the steps so far.
    pub fn resume(&self, dock: &DockAccess, recorded: &[Recorded]) -> Self {
        self.resume_into(dock, MemRecorder::holding(recorded))
    }

    /// A later run of the same operation recording into `recorder`.
    pub fn resume_into(&self, dock: &DockAccess, recorder: MemRecorder) -> Self {
        Self::build(
            dock,
            self.resource_id,
            self.operation_id,
            self.ctx.attempt + 1,
            Arc::new(recorder),
        )
    }

    fn build(
        dock: &DockAccess,
        resource_id: ResourceId,
        operation_id: OperationId,
        attempt: u32,
        recorder: Arc<MemRecorder>,
    ) -> Self {
        let scope = CallScope {
            org_id: dock.org_id,
            dock_id: dock.id,
            resource_id: Some(resource_id),
            operation_id: Some(operation_id),
            recorder: recorder.clone(),
        };
        let marker = Marker::for_resource(&resource_id);
        let mut ctx = Ctx::new(scope, Some(marker.clone()), attempt, recorder.steps());
        let files = file_sources()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dock.id)
            .cloned();
        if let Some(files) = files {
            ctx = ctx.with_files(files);
        }
        ctx.retry = fast_retry();
        Self {
            resource_id,
            operation_id,
            marker,
            recorder,
            ctx,
        }
    }

    /// The resource as the engine tracks it once its steps named a provider id.
    pub fn tracked(&self, kind: stackdock_core::ResourceKind) -> Option<Tracked> {
        Some(Tracked {
            kind,
            provider_resource_id: self.recorder.tracks()?,
            marker: Some(self.marker.clone()),
            last_seen: serde_json::Value::Null,
        })
    }
}

/// The config the server would have validated for a small droplet.
pub fn server_config(name: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "name": name,
        "region": "nyc3",
        "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64",
    })
    .as_object()
    .cloned()
    .expect("a JSON object")
}

pub fn requests_to(
    sandbox: &DigitalOceanSandbox,
    method: &str,
    path: &str,
) -> Vec<RecordedRequest> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

/// Marker lookups the sandbox received: listings filtered by a tag other than the shared one.
pub fn marker_lookups(sandbox: &DigitalOceanSandbox, marker: &Marker) -> Vec<RecordedRequest> {
    requests_to(sandbox, "GET", "/v2/droplets")
        .into_iter()
        .filter(|r| {
            r.query
                .as_deref()
                .is_some_and(|q| q.contains(&format!("tag_name={marker}")))
        })
        .collect()
}

/// Waits until `check` holds, failing the test at [`DEADLINE`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
