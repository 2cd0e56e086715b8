//! What the docks test binaries share: an in-memory [`Recorder`], a sandbox with a canary key,
//! and a [`Ctx`] with waits short enough for tests.
//!
//! Each test binary uses a different subset of this module, so unused items are expected.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use stackdock_core::{
    ApiCall, DockId, Marker, OperationId, OrgId, Provider, ResourceId, SecretString, Step,
};
use stackdock_docks::digitalocean::DigitalOceanAdapter;
use stackdock_docks::{
    CallScope, Ctx, DockAccess, DockError, Observed, PollPolicy, Recorder, RetryPolicy,
};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig, RecordedRequest};

/// Long enough that a test's waits are seconds, never minutes.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Journal and checkpoints kept in memory so a test can read exactly what an adapter reported.
#[derive(Default)]
pub struct MemRecorder {
    pub calls: Mutex<Vec<ApiCall>>,
    pub steps: Mutex<Vec<Step>>,
    /// The provider status of each progress report, in order.
    pub progress: Mutex<Vec<Option<String>>>,
    /// When set, every checkpoint is refused, as a store that lost the worker's lease would.
    pub refuse_checkpoints: bool,
}

impl MemRecorder {
    pub fn refusing() -> Self {
        Self {
            refuse_checkpoints: true,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().unwrap().clone()
    }

    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }

    pub fn progress(&self) -> Vec<Option<String>> {
        self.progress.lock().unwrap().clone()
    }
}

#[async_trait]
impl Recorder for MemRecorder {
    async fn journal(&self, call: ApiCall) {
        self.calls.lock().unwrap().push(call);
    }

    async fn checkpoint(&self, step: Step) -> Result<(), DockError> {
        if self.refuse_checkpoints {
            return Err(DockError::Checkpoint("the store refused the step".into()));
        }
        self.steps.lock().unwrap().push(step);
        Ok(())
    }

    async fn progress(&self, observed: &Observed) {
        self.progress.lock().unwrap().push(observed.status.clone());
    }
}

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

/// The dock as the engine would hand it over: key opened, base URL pointed at the sandbox.
pub fn dock(sandbox: &DigitalOceanSandbox, key: &str) -> DockAccess {
    dock_at(&sandbox.base_url(), key)
}

pub fn dock_at(base_url: &str, key: &str) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::DigitalOcean,
        name: "do-test".into(),
        api_key: SecretString::new(key),
        base_url: Some(base_url.to_string()),
        settings: serde_json::Value::Null,
    }
}

/// Retries and polls fast enough for tests; every other knob as in production.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

/// One operation on one resource, as the engine would set it up.
pub struct Run {
    pub resource_id: ResourceId,
    pub operation_id: OperationId,
    pub marker: Marker,
    pub recorder: Arc<MemRecorder>,
    pub ctx: Ctx,
}

impl Run {
    pub fn new(dock: &DockAccess, attempt: u32, steps: Vec<Step>) -> Self {
        Self::with(
            dock,
            ResourceId::new(),
            attempt,
            steps,
            MemRecorder::default(),
        )
    }

    /// A run of an operation on `resource_id` (so a second run shares the first's marker).
    pub fn with(
        dock: &DockAccess,
        resource_id: ResourceId,
        attempt: u32,
        steps: Vec<Step>,
        recorder: MemRecorder,
    ) -> Self {
        let recorder = Arc::new(recorder);
        // Recorded steps belong to an operation already; a first run gets a new one.
        let operation_id = steps
            .first()
            .map_or_else(OperationId::new, |s| s.operation_id);
        let scope = CallScope {
            org_id: dock.org_id,
            dock_id: dock.id,
            resource_id: Some(resource_id),
            operation_id: Some(operation_id),
            recorder: recorder.clone(),
        };
        let marker = Marker::for_resource(&resource_id);
        let mut ctx = Ctx::new(scope, Some(marker.clone()), attempt, steps);
        ctx.retry = fast_retry();
        ctx.poll = PollPolicy {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        };
        Self {
            resource_id,
            operation_id,
            marker,
            recorder,
            ctx,
        }
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

/// Waits until `check` holds, failing the test at [`DEADLINE`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
