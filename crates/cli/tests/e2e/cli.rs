//! The `stackdock` command against a running server: output, `--json` and exit statuses.

use serde_json::Value;

use crate::support::{DOCK, provision_args, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_provisions_lists_and_deprovisions_with_exit_statuses() {
    let app = spawn_app().await;

    let (code, out, err) = app.cli(&provision_args(DOCK, "web-1", "s-1vcpu-1gb")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("provisioning"), "no live progress: {err}");
    assert!(out.contains("provisioned") && out.contains("ipv4"), "{out}");
    // The id is told as soon as the request is recorded, before following it can fail.
    let listed = app.get("/api/v1/servers").await.body;
    let id = listed["items"][0]["id"]
        .as_str()
        .expect("the row")
        .to_string();
    assert!(err.contains(&format!("{id} requested")), "{err}");

    let mut json_args = provision_args(DOCK, "web-2", "s-1vcpu-1gb");
    json_args.push("--json");
    let (code, out, _) = app.cli(&json_args).await;
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).expect("exactly one JSON document");
    assert_eq!(doc["provisioning_state"], "provisioned");
    let id = doc["id"].as_str().unwrap().to_string();

    let mut bad = provision_args(DOCK, "web-3", "s-99vcpu-1gb");
    bad.push("--json");
    let (code, out, _) = app.cli(&bad).await;
    assert_eq!(code, 1, "a failed provision exits 1");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["error"]["code"], "unprocessable_entity");

    let (code, _, err) = app.cli(&provision_args(DOCK, "web 4", "s-1vcpu-1gb")).await;
    assert_eq!(code, 2, "bad input exits 2: {err}");
    assert!(err.contains("name"), "{err}");

    let (code, out, _) = app.cli(&["list", "--json", "--state", "provisioned"]).await;
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows["items"].as_array().unwrap().len(), 2);

    let (code, out, _) = app.cli(&["status", &id, "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["id"],
        id.as_str()
    );

    let (code, out, _) = app.cli(&["calls", &id, "--json"]).await;
    assert_eq!(code, 0);
    let calls: Value = serde_json::from_str(&out).unwrap();
    assert!(
        calls["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["method"] == "POST" && c["status"] == 202),
        "{calls}"
    );
    let (code, out, _) = app.cli(&["calls", &id]).await;
    assert_eq!(code, 0);
    assert!(out.contains("/v2/droplets"), "{out}");

    let (code, out, err) = app.cli(&["deprovision", &id]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("deprovisioned"), "{out}");

    let (code, out, _) = app.cli(&["docks", "list", "--json"]).await;
    assert_eq!(code, 0);
    let docks: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(docks["items"][0]["name"], DOCK);
    assert!(docks["items"][0].get("api_key").is_none());

    let (code, out, _) = app.cli(&["sync", DOCK, "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["added"], 0);

    let (code, out, _) = app.cli(&["audit", "--json"]).await;
    assert_eq!(code, 0);
    assert!(
        serde_json::from_str::<Value>(&out).unwrap()["items"]
            .as_array()
            .unwrap()
            .len()
            >= 8
    );

    let (code, _, _) = app.cli(&["list", "--token", "sdt_wrong"]).await;
    assert_eq!(code, 3, "a bad token exits 3");
    let (code, out, _) = app
        .cli(&["list", "--url", "http://127.0.0.1:9", "--json"])
        .await;
    assert_eq!(code, 4, "an unreachable server exits 4");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"]["code"],
        "unreachable"
    );
    // A URL without its scheme is bad input, said so.
    for url in ["127.0.0.1:7878", "localhost:7878", "ftp://127.0.0.1:7878"] {
        let (code, out, err) = app.cli(&["list", "--url", url]).await;
        assert_eq!(code, 2, "{url}: {out}{err}");
        assert!(err.contains("http://host:port"), "{url}: {err}");
    }
    let (code, _, _) = app
        .cli(&["provision", "boat", "--dock", DOCK, "--name", "x"])
        .await;
    assert_eq!(code, 2);
    app.finish();
}

/// `provision --idempotency-key`: the same key run again answers the first run's resource
/// instead of a second; a key the header cannot carry is bad input, and another request with
/// a key already used is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provision_run_again_with_its_idempotency_key_makes_no_second_resource() {
    let app = spawn_app().await;
    let client = &app;
    let run = |name: &'static str, key: &'static str| async move {
        let mut args = provision_args(DOCK, name, "s-1vcpu-1gb");
        args.extend(["--idempotency-key", key, "--no-wait", "--json"]);
        client.cli(&args).await
    };
    let (code, first, err) = run("keyed", "deploy-42").await;
    assert_eq!(code, 0, "{first}{err}");
    let first: Value = serde_json::from_str(&first).expect("JSON");
    let (code, again, err) = run("keyed", "deploy-42").await;
    assert_eq!(code, 0, "{again}{err}");
    let again: Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(again["id"], first["id"]);
    let servers = app.get("/api/v1/servers").await.body;
    assert_eq!(
        servers["items"].as_array().map(Vec::len),
        Some(1),
        "{servers}"
    );

    // Another request under the same key is not taken for the first.
    let (code, out, err) = run("other", "deploy-42").await;
    assert_eq!(code, 2, "the caller's mistake: {out}{err}");
    assert!(out.contains("already used"), "{out}");
    let servers = app.get("/api/v1/servers").await.body;
    assert_eq!(
        servers["items"].as_array().map(Vec::len),
        Some(1),
        "{servers}"
    );

    for bad in ["", "two words", "caf\u{e9}"] {
        let (code, out, err) = run("bad", bad).await;
        assert_eq!(code, 2, "{bad:?}: {out}{err}");
        // With --json the error is the JSON document on stdout.
        assert!(out.contains("--idempotency-key"), "{bad:?}: {out}{err}");
    }
    app.finish();
}

/// `--version` names the build: the package version and, built from a git checkout, the
/// commit and its date.
#[test]
fn the_version_names_the_build() {
    let out = std::process::Command::new(crate::support::binary())
        .arg("--version")
        .output()
        .expect("run stackdock --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    let prefix = format!("stackdock {version} (");
    assert!(text.starts_with(&prefix), "{text:?}");
    let build = &text[prefix.len()..text.len() - 1];
    let from_git = build.split(' ').collect::<Vec<_>>();
    let named_commit = from_git.len() == 2
        && from_git[0].len() == 12
        && from_git[0].bytes().all(|b| b.is_ascii_hexdigit())
        && from_git[1].len() == 10;
    assert!(
        named_commit || build == "not built from a git checkout",
        "{text:?}"
    );
}

/// `completions <shell>` prints a script that shell loads, naming the subcommands; an unknown
/// shell is refused naming the ones there are.
#[test]
fn completions_are_printed_for_each_shell() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::binary())
            .args(args)
            .output()
            .expect("run stackdock")
    };
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef stackdock"),
        ("fish", "complete -c stackdock"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in ["provision", "deprovision", "docks", "audit", "completions"] {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}
