//! The Docker adapter against the real Docker Engine on this machine and a real registry
//! (Debian's `docker-registry`, on a free loopback port with htpasswd auth), never a fake.
//!
//! Test apps are built `FROM scratch` around a static busybox (`busybox-static`), since no
//! image can be pulled. Without a reachable engine each test says so on one line and passes,
//! except under `CI=true`, where a missing engine fails it. Everything a test makes carries
//! its dock's label and is removed by that label when the test ends, passed or failed.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use stackdock_core::{Provider, ResourceKind, SecretString};
use stackdock_docks::docker::{DockerAdapter, LABEL_DOCK, LABEL_MARKER};
use stackdock_docks::{
    DockAccess, DockAdapter, DockError, MemoryFiles, Observed, Progress, Tracked,
};
use stackdock_sandbox::docker::{
    BUSYBOX, EngineFront, Leftovers, Registry, containers, engine, engine_or_skip,
};
use support::{Run, dock_at, serve_files};

/// How long an image build, a push and a container start may take together here.
const SETTLE: Duration = Duration::from_secs(120);

/// The tags `registry` holds for `repository`, asked with its user's credentials.
async fn tags(registry: &Registry, repository: &str) -> Vec<String> {
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!(
            "http://{}/v2/{repository}/tags/list",
            registry.addr
        ))
        .basic_auth(&registry.user, Some(&registry.password))
        .send()
        .await
        .expect("the registry answers");
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// A test's dock: its own network and label, files served from memory.
struct Setup {
    dock: DockAccess,
    files: Arc<MemoryFiles>,
    label: String,
    leftovers: Leftovers,
}

fn setup(registry: Option<(&Registry, &str)>) -> Setup {
    let mut dock = dock_at("", "");
    dock.provider = Provider::Docker;
    dock.name = "docker-test".into();
    dock.base_url = None;
    // The id's end: its start is a timestamp, shared by tests starting together.
    let id = dock.id.to_string().replace('-', "");
    let network = format!("stackdock-test-{}", &id[id.len() - 12..]);
    let mut settings = json!({ "network": network });
    if let Some((r, password)) = registry {
        settings["registry"] = json!(r.addr);
        settings["registry_user"] = json!(r.user);
        dock.api_key = SecretString::new(password);
    }
    dock.settings = settings;
    let files = Arc::new(MemoryFiles::default());
    serve_files(&dock, files.clone());
    let label = format!("{LABEL_DOCK}={}", dock.id);
    Setup {
        dock,
        files,
        label: label.clone(),
        leftovers: Leftovers::new(label, LABEL_MARKER),
    }
}

impl Setup {
    /// A first run on the dock, whose images the cleanup removes.
    fn run(&self) -> Run {
        self.run_with(support::MemRecorder::default())
    }

    fn run_with(&self, recorder: support::MemRecorder) -> Run {
        let run = Run::with(&self.dock, recorder);
        self.leftovers.watch(run.marker.as_str());
        run
    }

    /// The images of this test's runs.
    fn images(&self) -> Vec<Value> {
        self.leftovers.images()
    }

    /// A config building `dockerfile` with busybox and `www/index.html` beside it.
    fn config(&self, dockerfile: &str, page: &str, extra: Value) -> Map<String, Value> {
        let busybox = std::fs::read(BUSYBOX).expect("busybox");
        let mut files = Vec::new();
        for (path, bytes, executable) in [
            ("Dockerfile", dockerfile.as_bytes().to_vec(), false),
            ("busybox", busybox, true),
            ("www/index.html", page.as_bytes().to_vec(), false),
            (".dockerignore", b"notes.txt\n".to_vec(), false),
            ("notes.txt", b"left out of the image".to_vec(), false),
        ] {
            files.push(json!({
                "path": path,
                "sha256": self.files.put(&bytes),
                "size": bytes.len(),
                "executable": executable,
            }));
        }
        let mut config = json!({ "name": "hello", "files": files });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            config[k] = v;
        }
        config.as_object().cloned().expect("object")
    }
}

/// The example's Dockerfile: busybox httpd serving `www` on 8080.
fn serving_dockerfile() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-static/Dockerfile"),
    )
    .expect("examples/hello-static/Dockerfile")
}

fn busybox_running(command: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"{command}\"]\n"
    )
}

/// Provisions, then checks as the engine's observer would until the container is ready or
/// has failed. Answers what the last check saw.
async fn provision_until_settled(
    adapter: &DockerAdapter,
    run: &mut Run,
    dock: &DockAccess,
    config: &Map<String, Value>,
) -> Result<Observed, DockError> {
    let first = adapter
        .provision_web_service(&mut run.ctx, dock, config)
        .await?;
    if let Progress::Done(Some(seen)) = first {
        return Ok(*seen);
    }
    let id = run
        .recorder
        .tracks()
        .expect("the container's id is tracked");
    let target = Tracked {
        kind: ResourceKind::WebService,
        provider_resource_id: id,
        marker: Some(run.marker.clone()),
        last_seen: Value::Null,
    };
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = adapter
            .observe_many(
                &mut run.ctx,
                dock,
                ResourceKind::WebService,
                std::slice::from_ref(&target),
            )
            .await?
            .pop()
            .flatten()
            .expect("the container exists");
        if seen.ready || seen.failure.is_some() {
            return Ok(seen);
        }
        assert!(
            Instant::now() < deadline,
            "not settled within {SETTLE:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The web service's URL, and the page it answers there with `200`.
async fn served(seen: &Observed) -> (String, String) {
    let url = match &seen.details {
        stackdock_core::ResourceDetails::WebService(w) => w.production_url.clone(),
        other => panic!("{other:?}"),
    }
    .expect("a URL");
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the app answers at {url}: {e}"));
    assert_eq!(answer.status(), 200, "{url}");
    let page = answer.text().await.expect("body");
    (url, page)
}

/// What the engine would track for the container `seen` of `run`.
fn tracked(run: &Run, seen: &Observed) -> Tracked {
    Tracked {
        kind: ResourceKind::WebService,
        provider_resource_id: seen.provider_resource_id.clone(),
        marker: Some(run.marker.clone()),
        last_seen: Value::Null,
    }
}

/// Deprovisions `target`, which must be done at once.
async fn deprovision_done(
    adapter: &DockerAdapter,
    run: &mut Run,
    dock: &DockAccess,
    target: &Tracked,
) {
    let done = adapter
        .deprovision(&mut run.ctx, dock, target)
        .await
        .expect("deprovisions");
    assert_eq!(done, Progress::Done(None));
}

/// Undoes the recorded steps newest first, as the engine unwinds a failed provision.
async fn unwind(adapter: &DockerAdapter, run: &mut Run, dock: &DockAccess) {
    let steps = run.recorder.steps();
    for step in steps.iter().rev() {
        adapter
            .undo(&mut run.ctx, dock, step)
            .await
            .unwrap_or_else(|e| panic!("undo {}: {e}", step.name));
    }
}

/// Everything the run left where a secret could leak: journal, steps, deploy log.
fn run_text(run: &Run) -> String {
    format!(
        "{:?}\n{:?}\n{:?}",
        run.recorder.calls(),
        run.recorder.steps(),
        run.recorder.log()
    )
}

fn assert_no_canary(canary: &str, texts: &[&str]) {
    use base64::Engine as _;
    let forms = [
        canary.to_string(),
        base64::engine::general_purpose::STANDARD.encode(canary),
        base64::engine::general_purpose::URL_SAFE.encode(canary),
        canary
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        canary.replace('-', "%2D"),
    ];
    for text in texts {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "the canary leaked as {form}");
        }
    }
}

#[tokio::test]
async fn build_push_run_answer_http_then_deprovision_leaves_nothing() {
    if !engine_or_skip("build_push_run_answer_http_then_deprovision_leaves_nothing") {
        return;
    }
    let registry = Registry::start(&format!("pw-{:016x}", rand::random::<u64>()));
    let s = setup(Some((&registry, &registry.password)));
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    let canary = format!("canary-{:016x}", rand::random::<u64>());
    let page = format!("hello from run {}", rand::random::<u32>());
    let config = s.config(
        &serving_dockerfile(),
        &page,
        json!({"env": {"GREETING_TOKEN": canary}, "memory": "64m", "cpus": 0.5}),
    );

    let seen = provision_until_settled(&adapter, &mut run, &s.dock, &config)
        .await
        .expect("provisions");
    assert!(seen.ready, "{seen:?}");
    let (url, answered) = served(&seen).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(answered, page);

    // Built and pushed: the registry holds the tag, the step the digest.
    let steps = run.recorder.steps();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build_sent",
            "image_built",
            "image_pushed",
            "container_create_sent",
            "container_created",
            "container_started"
        ]
    );
    assert!(
        steps[2].output["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{:?}",
        steps[2].output
    );
    assert_eq!(tags(&registry, run.marker.as_str()).await, ["latest"]);

    // The build's own steps were in the deploy log before the image was recorded built.
    let log = run.recorder.log();
    assert!(
        log.iter()
            .any(|(line, steps)| line.starts_with("Step 1/") && *steps == 1),
        "{log:?}"
    );
    assert!(
        log.iter().any(|(line, _)| line.contains("Pushed")),
        "{log:?}"
    );

    // The container runs as asked: labelled, limited, on the dock's network, with the env.
    let made = containers(&s.label);
    assert_eq!(made.len(), 1, "{made:?}");
    let id = made[0]["Id"].as_str().expect("id");
    let (_, inspected) = engine("GET", &format!("/containers/{id}/json"), None);
    let host = &inspected["HostConfig"];
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(host["RestartPolicy"]["Name"], "unless-stopped");
    assert_eq!(host["LogConfig"]["Config"]["max-size"], "10m");
    assert_eq!(host["NetworkMode"], s.dock.settings["network"]);
    // The dock's network outlives this container: it carries the dock's label, not the
    // resource's marker.
    let network = s.dock.settings["network"].as_str().expect("network");
    let (_, shown) = engine("GET", &format!("/networks/{network}"), None);
    assert_eq!(
        shown["Labels"][LABEL_DOCK],
        s.dock.id.to_string(),
        "{shown}"
    );
    assert!(shown["Labels"].get(LABEL_MARKER).is_none(), "{shown}");
    assert_eq!(
        inspected["Config"]["Labels"]["stackdock.marker"],
        run.marker.as_str()
    );
    assert_eq!(
        inspected["Config"]["Labels"]["stackdock.image-digest"], steps[2].output["digest"],
        "the container shows the pushed image's digest"
    );
    let env = inspected["Config"]["Env"].to_string();
    assert!(env.contains(&format!("GREETING_TOKEN={canary}")), "{env}");

    // The env went to the engine only: not into the journal, steps, log or what is stored.
    let observed_text = seen.full_api_data.to_string();
    assert_no_canary(&canary, &[&run_text(&run), &observed_text]);
    assert_no_canary(&registry.password, &[&run_text(&run), &observed_text]);

    let target = tracked(&run, &seen);
    deprovision_done(&adapter, &mut run, &s.dock, &target).await;
    assert!(containers(&s.label).is_empty(), "no container is left");
    assert!(s.images().is_empty(), "no image is left");
    // Gone is gone: a second deprovision succeeds too.
    adapter
        .deprovision(&mut run.ctx, &s.dock, &target)
        .await
        .expect("deprovisioning what is gone succeeds");
}

#[tokio::test]
async fn a_dockerfile_that_fails_to_build_fails_with_the_build_error_line() {
    if !engine_or_skip("a_dockerfile_that_fails_to_build_fails_with_the_build_error_line") {
        return;
    }
    let s = setup(None);
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    // notes.txt is among the files, but the context's .dockerignore leaves it out: the build
    // cannot find it, which shows both the ignore file honoured and a build error reported.
    let config = s.config("FROM scratch\nCOPY notes.txt /x\n", "unused", json!({}));
    let err = adapter
        .provision_web_service(&mut run.ctx, &s.dock, &config)
        .await
        .expect_err("the build fails");
    match &err {
        DockError::ResourceFailed { code, message, .. } => {
            assert_eq!(code, "build_failed");
            assert!(message.contains("notes.txt"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let steps: Vec<String> = run.recorder.steps().into_iter().map(|s| s.name).collect();
    assert_eq!(steps, ["build_sent"], "nothing was built");
    let log = run.recorder.log();
    assert!(
        log.iter()
            .any(|(l, _)| l.starts_with("error:") && l.contains("notes.txt")),
        "{log:?}"
    );
    assert!(containers(&s.label).is_empty() && s.images().is_empty());
}

#[tokio::test]
async fn a_container_that_never_answers_fails_after_its_deadline_with_its_logs() {
    if !engine_or_skip("a_container_that_never_answers_fails_after_its_deadline_with_its_logs") {
        return;
    }
    let s = setup(None);
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    // A build argument reaches the image (an ENV made from it at build time).
    let dockerfile =
        busybox_running("echo listening-nowhere-$GREETING; exec /bin/busybox sleep 3600")
            .replace("ENTRYPOINT", "ARG WHO\nENV GREETING=from-$WHO\nENTRYPOINT");
    let config = s.config(
        &dockerfile,
        "unused",
        json!({"ready_timeout": 3, "build_args": {"WHO": "build-arg"}}),
    );
    let started = Instant::now();
    let seen = provision_until_settled(&adapter, &mut run, &s.dock, &config)
        .await
        .expect("checks");
    let failure = seen.failure.expect("failed");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before its deadline"
    );
    assert_eq!(failure.code, "not_ready");
    assert!(failure.message.contains("within 3s"), "{}", failure.message);
    assert!(
        failure.message.contains("listening-nowhere-from-build-arg"),
        "{}",
        failure.message
    );
    let running = containers(&s.label)
        .into_iter()
        .filter(|c| c["State"] == "running")
        .count();
    assert_eq!(running, 1, "running until unwound");
    unwind(&adapter, &mut run, &s.dock).await;
    assert!(containers(&s.label).is_empty(), "nothing left running");
    assert!(
        s.images().is_empty(),
        "its image is removed too: {:?}",
        s.images()
    );
}

#[tokio::test]
async fn a_container_over_its_memory_limit_fails_naming_it() {
    if !engine_or_skip("a_container_over_its_memory_limit_fails_naming_it") {
        return;
    }
    let s = setup(None);
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    let config = s.config(
        &busybox_running(
            "echo allocating; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=100M count=1",
        ),
        "unused",
        json!({"memory": "16m", "ready_timeout": 60}),
    );
    let seen = provision_until_settled(&adapter, &mut run, &s.dock, &config).await;
    let failure = match seen {
        Ok(seen) => seen.failure.expect("failed"),
        // The first check may already see it killed.
        Err(DockError::ResourceFailed { code, message, .. }) => {
            stackdock_docks::ProviderFailure { code, message }
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(failure.code, "out_of_memory", "{}", failure.message);
    assert!(
        failure.message.contains("memory limit"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("allocating"),
        "{}",
        failure.message
    );
    unwind(&adapter, &mut run, &s.dock).await;
    assert!(containers(&s.label).is_empty());
}

#[tokio::test]
async fn a_wrong_registry_password_fails_with_the_registrys_own_message() {
    if !engine_or_skip("a_wrong_registry_password_fails_with_the_registrys_own_message") {
        return;
    }
    let registry = Registry::start(&format!("pw-{:016x}", rand::random::<u64>()));
    let wrong = format!("wrong-{:08x}", rand::random::<u32>());
    let s = setup(Some((&registry, &wrong)));
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    let config = s.config(&serving_dockerfile(), "unused", json!({}));
    let err = adapter
        .provision_web_service(&mut run.ctx, &s.dock, &config)
        .await
        .expect_err("the push is refused");
    match &err {
        DockError::ResourceFailed { code, message, .. } => {
            assert_eq!(code, "push_failed");
            assert!(
                message.contains("unauthorized: authentication required"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_no_canary(&wrong, &[&run_text(&run), &err.to_string()]);
    // The built image is undone; nothing was run.
    unwind(&adapter, &mut run, &s.dock).await;
    assert!(s.images().is_empty() && containers(&s.label).is_empty());

    // Checking the dock's credentials answers the registry's refusal too.
    let mut check = s.run();
    let refused = adapter
        .verify_credentials(&mut check.ctx, &s.dock)
        .await
        .expect_err("a wrong password is refused");
    assert!(
        refused.to_string().contains("unauthorized") || refused.to_string().contains("401"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_lost_create_answer_resumes_without_a_second_container_and_discover_tells_ours_apart() {
    if !engine_or_skip("a_lost_create_answer_resumes_without_a_second_container") {
        return;
    }
    let s = setup(None);
    let adapter = DockerAdapter::new();
    // The container is created but the store refuses its record (the fourth checkpoint, after
    // "build sent", "image built" and "create sent"): the run stops there, as a crash would.
    let mut first = s.run_with(support::MemRecorder::stopping_at(4, support::Stop::Refuse));
    let config = s.config(&serving_dockerfile(), "resumed", json!({}));
    let stopped = adapter
        .provision_web_service(&mut first.ctx, &s.dock, &config)
        .await
        .expect_err("stops at the checkpoint");
    assert!(matches!(stopped, DockError::Checkpoint(_)), "{stopped}");
    assert_eq!(containers(&s.label).len(), 1, "the container was created");

    let mut again = first.resume(&s.dock, &first.recorder.recorded());
    let seen = provision_until_settled(&adapter, &mut again, &s.dock, &config)
        .await
        .expect("resumes");
    assert!(seen.ready, "{seen:?}");
    assert_eq!(containers(&s.label).len(), 1, "still exactly one container");
    let created = again
        .recorder
        .steps()
        .into_iter()
        .find(|s| s.name == "container_created")
        .expect("recorded");
    assert_eq!(created.output["adopted"], true);

    // A container StackDock did not start, beside ours: discover shows both, only ours
    // with a marker.
    let image = format!("{}:latest", first.marker.as_str());
    let foreign = create_foreign(&image, &s.label);
    let found = adapter
        .discover(&mut again.ctx, &s.dock)
        .await
        .expect("discovers");
    let ours = found
        .iter()
        .find(|o| o.provider_resource_id == seen.provider_resource_id)
        .expect("ours is listed");
    assert_eq!(ours.marker.as_ref(), Some(&first.marker));
    let theirs = found
        .iter()
        .find(|o| o.provider_resource_id == foreign)
        .expect("the foreign one is listed");
    assert_eq!(theirs.marker, None);
    let found_by_marker = adapter
        .find_by_marker(
            &mut again.ctx,
            &s.dock,
            ResourceKind::WebService,
            &first.marker,
        )
        .await
        .expect("looks up")
        .expect("found");
    assert_eq!(
        found_by_marker.provider_resource_id,
        seen.provider_resource_id
    );
}

#[tokio::test]
async fn an_image_a_container_of_the_users_still_runs_is_left_and_deprovision_succeeds() {
    if !engine_or_skip(
        "an_image_a_container_of_the_users_still_runs_is_left_and_deprovision_succeeds",
    ) {
        return;
    }
    let s = setup(None);
    let adapter = DockerAdapter::new();
    let mut run = s.run();
    let config = s.config(&serving_dockerfile(), "<h1>hello</h1>", json!({}));
    let seen = provision_until_settled(&adapter, &mut run, &s.dock, &config)
        .await
        .expect("provisions");
    assert!(seen.ready, "{seen:?}");

    // The user starts a container of their own from StackDock's image.
    let images = s.images();
    assert_eq!(images.len(), 1, "{images:?}");
    let image = images[0]["Id"].as_str().expect("image id");
    let theirs = create_foreign(image, &s.label);
    let (status, answer) = engine("POST", &format!("/containers/{theirs}/start"), None);
    assert_eq!(status, 204, "{answer}");

    // The engine refuses to remove an image a running container uses (409, which `force`
    // does not override); the resource is gone all the same and its deprovision succeeds.
    let target = tracked(&run, &seen);
    deprovision_done(&adapter, &mut run, &s.dock, &target).await;
    let left: Vec<String> = containers(&s.label)
        .iter()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(left, [theirs], "only the user's container is left");
    assert_eq!(
        s.images().len(),
        1,
        "the image stays for the user's container"
    );
    let refused = run
        .recorder
        .calls()
        .iter()
        .any(|c| c.method == "DELETE" && c.path.contains("/images/") && c.status == Some(409));
    assert!(
        refused,
        "the refusal is in the journal: {:?}",
        run.recorder.calls()
    );
}

/// A container made without StackDock (only the test's cleanup label), from `image`.
fn create_foreign(image: &str, label: &str) -> String {
    let (key, value) = label.split_once('=').expect("k=v");
    let body = json!({"Image": image, "Labels": {key: value}});
    let (status, made) = engine("POST", "/containers/create", Some(&body));
    assert_eq!(status, 201, "{made}");
    made["Id"].as_str().expect("created").to_string()
}

/// An engine reached over TCP at an address other than loopback (here a front on the gateway
/// of a network this test makes, standing in for another machine) publishes the app on every
/// interface: the readiness check and the URL reach it at the engine's address. Published on
/// the engine's loopback, as before, it never answered there and the provision ran out of
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_publishes_the_app_where_its_url_reaches_it() {
    if !engine_or_skip("a_remote_engine_publishes_the_app_where_its_url_reaches_it") {
        return;
    }
    let mut s = setup(None);
    // A network of this test's own (its label: removed with the rest), whose gateway is an
    // address of this machine that is not loopback.
    let dock_label = s.label.split_once('=').expect("label=value");
    let id = s.dock.id.to_string().replace('-', "");
    let (status, made) = engine(
        "POST",
        "/networks/create",
        Some(&json!({
            "Name": format!("stackdock-remote-{}", &id[id.len() - 12..]),
            "Labels": {dock_label.0: dock_label.1},
        })),
    );
    assert_eq!(status, 201, "{made}");
    let (_, network) = engine(
        "GET",
        &format!("/networks/{}", made["Id"].as_str().expect("an id")),
        None,
    );
    let gateway: std::net::IpAddr = network["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .expect("a gateway")
        .parse()
        .expect("an address");
    assert!(!gateway.is_loopback());
    let front = EngineFront::start_on(gateway).await;
    s.dock.settings["host"] = json!(front.host());

    let adapter = DockerAdapter::new();
    let mut run = s.run();
    let page = format!("remote {}", rand::random::<u32>());
    let config = s.config(&serving_dockerfile(), &page, json!({"ready_timeout": 20}));
    let seen = provision_until_settled(&adapter, &mut run, &s.dock, &config)
        .await
        .expect("provisions");
    assert!(seen.ready, "{seen:?}");
    let (url, answered) = served(&seen).await;
    assert!(url.starts_with(&format!("http://{gateway}:")), "{url}");
    assert_eq!(answered, page);
    let target = tracked(&run, &seen);
    deprovision_done(&adapter, &mut run, &s.dock, &target).await;
}
