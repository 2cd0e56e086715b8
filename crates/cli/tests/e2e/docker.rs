//! A container web service through the real binary, on the machine's Docker Engine and a
//! real registry: `docks add --provider docker` with the registry password on stdin,
//! `provision web-service --context` streaming the build's output live before the row turns
//! `provisioned`, the app answering on its URL, `logs` showing the build and push afterwards
//! (after the container is gone too), and neither the registry password nor an env value
//! anywhere StackDock wrote or answered; and a server killed between the container's create
//! and its record adopting that container after a restart instead of making a second.

use std::path::Path;

use serde_json::{Value, json};
use stackdock_sandbox::docker::{BUSYBOX, Leftovers, Registry, engine_or_skip};

use crate::support::{Options, TestApp, spawn_app, spawn_app_with};

const DOCK: &str = "local";

/// The example app, with a static busybox copied in (its `httpd` serves `www/`).
fn example_context(into: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-static");
    for file in ["Dockerfile", ".dockerignore", "README.md", "www/index.html"] {
        let to = into.join(file);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("folder");
        std::fs::copy(example.join(file), &to).expect("copy the example");
    }
    std::fs::copy(BUSYBOX, into.join("busybox")).expect("copy busybox");
}

/// `stackdock provision web-service` of `context` on the test's dock, with `extra` flags.
async fn provision(
    app: &TestApp,
    name: &str,
    context: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let context = context.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "provision",
        "web-service",
        "--dock",
        DOCK,
        "--name",
        name,
        "--context",
        context,
    ];
    args.extend_from_slice(extra);
    app.cli(&args).await
}

/// The dock's id, which every container StackDock makes on it carries as a label.
async fn dock_label(app: &TestApp) -> String {
    let docks = app.get("/api/v1/docks").await.body;
    let id = docks["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == DOCK)
        .and_then(|d| d["id"].as_str())
        .expect("the dock is listed")
        .to_string();
    format!("stackdock.dock={id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_is_built_pushed_run_and_answers_with_its_build_log_kept() {
    if !engine_or_skip("a_context_is_built_pushed_run_and_answers_with_its_build_log_kept") {
        return;
    }
    let app = spawn_app().await;
    // The registry password is the dock's key: the test's canary, searched for at the end.
    let registry = Registry::start(&app.canary);
    let context = tempfile::tempdir().expect("context folder");
    example_context(context.path());
    let network = format!("stackdock-e2e-{:08x}", rand::random::<u32>());

    let (code, out, err) = app
        .cli_with_stdin(
            &[
                "docks",
                "add",
                "--provider",
                "docker",
                "--name",
                DOCK,
                "--registry",
                &registry.addr,
                "--registry-user",
                &registry.user,
                "--registry-password-stdin",
                "--setting",
                &format!("network={network}"),
            ],
            &format!("{}\n", app.canary),
        )
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let leftovers = Leftovers::new(dock_label(&app).await, "stackdock.marker");

    let env_canary = format!("envcanary{:016x}", rand::random::<u64>());
    let env = format!("GREETING_TOKEN={env_canary}");
    let (code, out, err) = provision(
        &app,
        "hello",
        context.path(),
        &["--env", &env, "--memory", "64m", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let row: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(row["provisioning_state"], "provisioned", "{row}");
    let id = row["id"].as_str().expect("id").to_string();
    leftovers.watch(row["marker"].as_str().unwrap_or_default());
    let url = row["production_url"].as_str().expect("a URL").to_string();
    // The row names the container and the pushed image's digest.
    let container = row["provider_resource_id"]
        .as_str()
        .expect("the container id");
    assert_eq!(leftovers.containers()[0]["Id"], container);
    let seen = app.get(&format!("/api/v1/web-services/{id}")).await.body;
    let digest = seen["full_api_data"]["Config"]["Labels"]["stackdock.image-digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{seen}");
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(&url)
        .send()
        .await
        .expect("the app answers");
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("body");
    assert!(body.contains("hello from StackDock"), "{body}");
    assert_eq!(leftovers.containers().len(), 1);

    // Followed by a person, the build's steps stream before the row settles.
    let (code, out, err) = provision(&app, "hello-again", context.path(), &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let step = err
        .find("| Step 1/")
        .expect("the build's first step is shown");
    let settled = err.find("  provisioned").expect("the row settles");
    assert!(step < settled, "{err}");
    let again_id = out
        .split_whitespace()
        .next()
        .expect("the row's id")
        .to_string();
    let again = app.get(&format!("/api/v1/resources/{again_id}")).await.body;
    leftovers.watch(again["marker"].as_str().unwrap_or_default());

    let (code, log, err) = app.cli(&["logs", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("Step 1/") && log.contains("Pushed"), "{log}");
    assert!(
        !log.contains("README.md"),
        ".dockerignore left it out: {log}"
    );

    for rid in [&id, &again_id] {
        let (code, out, err) = app.cli(&["deprovision", rid]).await;
        assert_eq!(code, 0, "{out}\n{err}");
    }
    assert!(leftovers.containers().is_empty(), "no container is left");
    assert!(leftovers.images().is_empty(), "no image is left");
    // The log outlives the container.
    let (code, log, _) = app.cli(&["logs", &id]).await;
    assert_eq!(code, 0);
    assert!(log.contains("Step 1/"), "{log}");

    drop(leftovers);
    app.finish_keeping_secret(&[env_canary]);
}

/// The server dies (as a power cut would) after the engine created the container and before
/// that was recorded. After a restart the container is adopted by its marker label: exactly
/// one exists and the row is provisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_container_create_and_record_leaves_one_container_after_restart() {
    if !engine_or_skip(
        "a_crash_between_container_create_and_record_leaves_one_container_after_restart",
    ) {
        return;
    }
    let mut app = spawn_app_with(Options {
        failpoints: Some("crash-before-create-checkpoint"),
        // Far longer than the test: the restarted server must take its own leases back.
        env: vec![("STACKDOCK_LEASE_MS", "600000")],
        ..Default::default()
    })
    .await;
    let network = format!("stackdock-e2e-{:08x}", rand::random::<u32>());
    let added = app
        .post(
            "/api/v1/docks",
            json!({"provider": "docker", "name": DOCK, "settings": {"network": network}}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let leftovers = Leftovers::new(dock_label(&app).await, "stackdock.marker");
    let context = tempfile::tempdir().expect("context folder");
    example_context(context.path());

    let (code, out, err) = provision(&app, "hello", context.path(), &["--no-wait", "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let created: Value = serde_json::from_str(&out).expect("one JSON document");
    let id = created["id"].as_str().expect("id").to_string();
    leftovers.watch(created["marker"].as_str().unwrap_or_default());
    app.wait_for_crash().await;
    assert_eq!(
        leftovers.containers().len(),
        1,
        "the engine created the container before the crash"
    );

    app.restart(None);
    let ready = app.wait_resource("web-services", &id, "provisioned").await;
    let made = leftovers.containers();
    assert_eq!(made.len(), 1, "a second container was created: {made:?}");
    assert_eq!(ready["provider_resource_id"], made[0]["Id"]);
    let op = app
        .get(&format!(
            "/api/v1/operations/{}",
            created["operation_id"].as_str().expect("operation id")
        ))
        .await
        .body;
    let adopted = op["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == "container_created")
        .map(|s| s["output"]["adopted"].clone());
    assert_eq!(adopted, Some(json!(true)), "{op}");

    let (code, out, err) = app.cli(&["deprovision", &id]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(leftovers.containers().is_empty());
    drop(leftovers);
    app.finish();
}
