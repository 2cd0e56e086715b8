//! Contract tests against Docker's published Engine API document (Swagger 2.0): every request
//! the Docker adapter sends while it builds, pushes, runs, finds, discovers and removes a web
//! service must be an operation of the document and validate against its schemas, and every
//! answer of the machine's real engine must validate against the response documented for its
//! status. Docker has no simulator: the exchanges are recorded by a front door
//! ([`EngineFront::recording`]) between the adapter and the engine.
//!
//! The document is read from `../shared/provider-specs/docker/swagger.yaml` at test time; the
//! tests are named `provider_spec_contract_*` so the test command can skip them where the specs
//! are missing. Without an engine they say so on one line and pass (under `CI=true` they fail).

mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use stackdock_core::{
    DockId, Marker, OperationId, OrgId, Provider, ResourceId, ResourceKind, SecretString,
};
use stackdock_docks::docker::{DockerAdapter, LABEL_DOCK, LABEL_MARKER};
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, MemoryFiles, Progress, RateLimit, Tracked,
};
use stackdock_sandbox::RecordedRequest;
use stackdock_sandbox::docker::{BUSYBOX, EngineFront, Leftovers, Registry, engine_or_skip};

use spec::{Fix, Recording, Spec, config, unwind};

const SPEC_FILE: &str = "docker/swagger.yaml";
/// How long a build, a push and a container's start may take together here.
const SETTLE: Duration = Duration::from_secs(120);

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
    ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

fn load() -> Spec {
    // Requests are recorded without the version prefix (`/v1.47/containers/create` as
    // `/containers/create`): the adapter speaks the version the engine negotiated, which may
    // be older than the document's `basePath` (`/v1.56`); the paths are the same.
    let spec = Spec::load_fixed("Docker", SPEC_FILE, Vec::new(), fixes()).with_base_path("");
    assert!(
        spec.operation("POST", "/containers/create").is_some(),
        "{SPEC_FILE} does not look like Docker's Engine API"
    );
    spec
}

/// What Docker's document gets wrong about its own engine's answers, in one place.
fn fixes() -> Vec<Fix> {
    vec![Fix {
        reason: "the engine is written in Go, which encodes an empty list or map as null \
                 (`\"Cmd\": null`, `\"Binds\": null`, `\"Links\": null`) and an unset \
                 `MemorySwappiness` as null; the document marks none of them nullable. Only the \
                 list, map and number fields of the four definitions a container is shown with \
                 (HostConfig, Resources, ContainerConfig, EndpointSettings) are made nullable",
        apply: |doc| {
            for definition in [
                "HostConfig",
                "Resources",
                "ContainerConfig",
                "EndpointSettings",
            ] {
                nullable_containers(&mut doc["definitions"][definition]);
            }
        },
    }]
}

/// Marks the array, object and integer properties of `schema` (and of its `allOf` parts)
/// nullable.
fn nullable_containers(schema: &mut Value) {
    if let Some(parts) = schema.get_mut("allOf").and_then(Value::as_array_mut) {
        parts.iter_mut().for_each(nullable_containers);
    }
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for property in properties.values_mut() {
        let kind = property["type"].as_str().unwrap_or_default();
        if matches!(kind, "array" | "object" | "integer")
            && let Some(property) = property.as_object_mut()
        {
            property.insert("x-nullable".into(), Value::Bool(true));
        }
    }
}

struct Setup {
    front: EngineFront,
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    label: String,
    leftovers: Leftovers,
}

async fn setup(registry: &Registry, password: &str) -> Setup {
    let front = EngineFront::recording().await;
    let id = DockId::new();
    let tail = id.to_string().replace('-', "");
    let dock = DockAccess {
        id,
        org_id: OrgId::new(),
        provider: Provider::Docker,
        name: "contract".into(),
        api_key: SecretString::new(password),
        base_url: None,
        settings: json!({
            "host": front.host(),
            "network": format!("stackdock-contract-{}", &tail[tail.len() - 12..]),
            "registry": registry.addr,
            "registry_user": registry.user,
        }),
        budget: Arc::new(Budget::new(RateLimit::None)),
    };
    let label = format!("{LABEL_DOCK}={}", dock.id);
    Setup {
        front,
        dock,
        files: Arc::new(MemoryFiles::default()),
        leftovers: Leftovers::new(label.clone(), LABEL_MARKER),
        label,
    }
}

impl Setup {
    fn ctx(&self) -> Ctx {
        let resource_id = ResourceId::new();
        let scope = CallScope {
            org_id: self.dock.org_id,
            dock_id: self.dock.id,
            resource_id: Some(resource_id),
            operation_id: Some(OperationId::new()),
            recorder: Arc::new(Recording),
        };
        let marker = Marker::for_resource(&resource_id);
        self.leftovers.watch(marker.as_str());
        Ctx::new(scope, Some(marker), 1, Vec::new()).with_files(self.files.clone())
    }

    fn config(&self, dockerfile: &str) -> Map<String, Value> {
        let busybox = std::fs::read(BUSYBOX).expect("a static busybox");
        let files: Vec<Value> = [
            ("Dockerfile", dockerfile.as_bytes(), false),
            ("busybox", busybox.as_slice(), true),
            ("www/index.html", b"<h1>contract</h1>".as_slice(), false),
        ]
        .into_iter()
        .map(|(path, bytes, executable)| {
            json!({"path": path, "sha256": self.files.put(bytes), "size": bytes.len(),
                   "executable": executable})
        })
        .collect();
        config(json!({"name": "contract", "files": files, "memory": "64m",
                      "env": {"GREETING": "hello"}}))
    }
}

fn tracked(ctx: &Ctx, id: &str) -> Tracked {
    Tracked {
        kind: ResourceKind::WebService,
        provider_resource_id: id.to_string(),
        marker: ctx.marker.clone(),
        last_seen: Value::Null,
    }
}

/// The container id the run's steps name.
fn container_of(ctx: &Ctx) -> String {
    ctx.records()
        .iter()
        .rev()
        .find_map(|s| s.output["container_id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no container among the steps: {:?}", ctx.records()))
}

/// Observes `target` until `done` says so, as the engine's observer would, within [`SETTLE`].
async fn observe_until(
    adapter: &DockerAdapter,
    ctx: &mut Ctx,
    dock: &DockAccess,
    target: &Tracked,
    done: impl Fn(Option<&stackdock_docks::Observed>) -> bool,
) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = adapter
            .observe_many(
                ctx,
                dock,
                ResourceKind::WebService,
                std::slice::from_ref(target),
            )
            .await
            .expect("observes")
            .pop()
            .flatten();
        if done(seen.as_ref()) {
            return;
        }
        assert!(Instant::now() < deadline, "not settled: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The adapter's whole life with one web service, a build that fails and a push the registry
/// refuses, through the recording front.
async fn adapter_at_work(s: &Setup, wrong_password: &Setup) -> Vec<RecordedRequest> {
    let adapter = DockerAdapter::new();
    let mut ctx = s.ctx();
    let config = s.config(DOCKERFILE);
    if let Progress::Pending { .. } = adapter
        .provision_web_service(&mut ctx, &s.dock, &config)
        .await
        .expect("provisions")
    {
        let target = tracked(&ctx, &container_of(&ctx));
        observe_until(&adapter, &mut ctx, &s.dock, &target, |seen| {
            seen.is_some_and(|o| o.ready || o.failure.is_some())
        })
        .await;
    }
    let id = container_of(&ctx);
    let marker = ctx.marker.clone().expect("a marker");
    let found = adapter
        .find_by_marker(&mut ctx, &s.dock, ResourceKind::WebService, &marker)
        .await
        .expect("looks up")
        .expect("found by its marker");
    assert_eq!(found.provider_resource_id, id);
    let listed = adapter
        .discover(&mut ctx, &s.dock)
        .await
        .expect("discovers");
    assert!(listed.iter().any(|o| o.provider_resource_id == id));
    let target = tracked(&ctx, &id);
    if let Progress::Pending { .. } = adapter
        .deprovision(&mut ctx, &s.dock, &target)
        .await
        .expect("deprovisions")
    {
        observe_until(&adapter, &mut ctx, &s.dock, &target, |seen| seen.is_none()).await;
    }
    // Gone: asked again, the engine answers 404, which the adapter takes as gone.
    let gone = adapter
        .observe_many(&mut ctx, &s.dock, ResourceKind::WebService, &[target])
        .await
        .expect("observes");
    assert!(gone[0].is_none(), "{gone:?}");
    unwind(&adapter, &mut ctx, &s.dock).await;

    // A build that fails: a file the context does not hold.
    let mut failed = s.ctx();
    let broken = s.config("FROM scratch\nCOPY missing.txt /missing.txt\n");
    adapter
        .provision_web_service(&mut failed, &s.dock, &broken)
        .await
        .expect_err("the build fails");
    unwind(&adapter, &mut failed, &s.dock).await;

    // A push the registry refuses.
    let mut refused = wrong_password.ctx();
    let config = wrong_password.config(DOCKERFILE);
    adapter
        .provision_web_service(&mut refused, &wrong_password.dock, &config)
        .await
        .expect_err("the push is refused");
    unwind(&adapter, &mut refused, &wrong_password.dock).await;

    let mut log = s.front.exchanges();
    log.extend(wrong_password.front.exchanges());
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_docker_adapter_requests_and_engine_answers() {
    if !engine_or_skip("provider_spec_contract_docker_adapter_requests_and_engine_answers") {
        return;
    }
    let spec = load();
    let registry = Registry::start(&format!("pw-{:016x}", rand::random::<u64>()));
    let s = setup(&registry, &registry.password).await;
    let wrong = setup(&registry, "not-the-password").await;
    let log = adapter_at_work(&s, &wrong).await;
    assert!(
        !stackdock_sandbox::docker::containers(&s.label)
            .iter()
            .any(|_| true),
        "the contract run left a container"
    );
    spec.check_covering(
        &log,
        &[
            "SystemPing",
            "ImageBuild",
            "ImagePush",
            "ContainerCreate",
            "ContainerStart",
            "ContainerInspect",
            "ContainerList",
            "ContainerStop",
            "ContainerDelete",
        ],
        &[200, 201, 204, 404],
    );
}

/// The checks bite: a request the document does not allow is reported, naming what is wrong.
#[test]
fn provider_spec_contract_docker_checker_reports_mismatches() {
    let spec = load();
    let bad = spec::entry(
        "POST",
        "/containers/create",
        Some("name=web&colour=red"),
        Some(json!({"Image": 5, "Labels": {"a": 1}})),
    );
    let errors = spec
        .check_request(&bad)
        .expect_err("a request the document refuses");
    let all = errors.join("\n");
    for expected in ["colour", "/Image", "/Labels/a"] {
        assert!(all.contains(expected), "{expected} not named in:\n{all}");
    }
    let unknown = spec::entry("POST", "/containers/abc/teleport", None, None);
    assert!(spec.check_request(&unknown).is_err());
    let good = spec::entry(
        "POST",
        "/containers/create",
        Some("name=web"),
        Some(json!({"Image": "hello:latest", "Labels": {"a": "b"}})),
    );
    assert!(
        spec.check_request(&good).is_ok(),
        "{:?}",
        spec.check_request(&good)
    );
}
