//! Web services from a folder, through the real binary: `provision web-service --dir` uploads
//! to StackDock only the contents it lacks, Netlify receives only the files it asks for, a
//! link out of the folder is refused saying why, and the server refuses an upload that does
//! not match its digest and a manifest naming contents never uploaded, each naming the path.

use std::path::PathBuf;

use serde_json::{Value, json};
use stackdock_docks::Sha256Hex;
use stackdock_sandbox::{NetlifySandbox, NetlifySandboxConfig};

use crate::support::{TestApp, spawn_app};

const NETLIFY_DOCK: &str = "netlify";

/// The example site of the README's quick start.
fn example_site() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/site")
}

async fn netlify_for(app: &TestApp) -> NetlifySandbox {
    let netlify = NetlifySandbox::start(NetlifySandboxConfig {
        tokens: vec![app.canary.clone()],
        ..Default::default()
    })
    .await
    .expect("netlify sandbox");
    let added = app
        .post(
            "/api/v1/docks",
            json!({"provider": "netlify", "name": NETLIFY_DOCK, "api_key": app.canary,
                   "api_url": netlify.api_url()}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    netlify
}

fn deploy(dir: &str, name: &str) -> Vec<String> {
    [
        "provision",
        "web-service",
        "--dock",
        NETLIFY_DOCK,
        "--name",
        name,
        "--dir",
        dir,
    ]
    .map(str::to_string)
    .to_vec()
}

async fn run(app: &TestApp, args: &[String]) -> (i32, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    app.cli(&args).await
}

fn blobs_kept(app: &TestApp) -> usize {
    walk(&app.data_dir.path().join("blobs"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { walk(&p) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deploys_to_netlify_uploading_only_what_is_missing() {
    let app = spawn_app().await;
    let netlify = netlify_for(&app).await;
    let site = example_site();
    let dir = site.to_str().expect("a UTF-8 path");

    let (code, out, err) = run(&app, &deploy(dir, "example")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("provisioned") && out.contains(".netlify.app"),
        "{out}"
    );
    // The site's credentials (its hooks' token) never reach StackDock's rows.
    let rows = app.get("/api/v1/web-services").await.body.to_string();
    assert!(
        rows.contains("netlify.app") && !rows.contains("hooks-"),
        "{rows}"
    );
    assert_eq!(
        blobs_kept(&app),
        2,
        "the two files' contents are kept once each"
    );
    let mut uploaded: Vec<String> = netlify.uploads().into_iter().map(|(_, p)| p).collect();
    uploaded.sort();
    assert_eq!(uploaded, ["/assets/style.css", "/index.html"]);

    // The same folder again: StackDock has every content and Netlify has seen every SHA-1, so
    // nothing is uploaded anywhere, and a second site is live all the same.
    let asked: Vec<String> = ["index.html", "assets/style.css"]
        .iter()
        .map(|f| Sha256Hex::of(&std::fs::read(site.join(f)).unwrap()).to_string())
        .collect();
    let missing = app
        .post("/api/v1/files/missing", json!({ "sha256": asked }))
        .await;
    assert_eq!(missing.status, 200, "{}", missing.body);
    assert_eq!(missing.body["missing"], json!([]));
    let (code, out, err) = run(&app, &deploy(dir, "again")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(netlify.uploads().len(), 2, "Netlify asked for nothing new");
    assert_eq!(netlify.sites().len(), 2);
    let live: Vec<Value> = netlify
        .sites()
        .into_iter()
        .filter(|s| s["published_deploy"]["state"] == "ready")
        .collect();
    assert_eq!(live.len(), 2);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_folders_uploads_and_manifests_are_refused_naming_the_path() {
    let app = spawn_app().await;
    let netlify = netlify_for(&app).await;

    // A link leading out of the folder stops the command before anything is sent.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not for the web").unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("index.html"), "<p>hi</p>").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        folder.path().join("leak.txt"),
    )
    .unwrap();
    let dir = folder.path().to_str().unwrap();
    let (code, out, err) = run(&app, &deploy(dir, "leaky")).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("leak.txt") && err.contains("outside the folder"),
        "{err}"
    );
    assert_eq!(blobs_kept(&app), 0, "nothing was uploaded");
    assert!(netlify.sites().is_empty());

    // Contents that do not hash to the digest they are sent under.
    let claimed = Sha256Hex::of(b"what was promised");
    let wrong = app
        .http
        .put(format!(
            "{}/api/v1/files/{claimed}?path=css/site.css",
            app.url
        ))
        .bearer_auth(&app.token)
        .body("something else")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "digest_mismatch");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("css/site.css:"),
        "{body}"
    );

    // A file above the limit is refused from its announced length, before it is read.
    let too_large = app
        .put_announcing(&claimed.to_string(), 60 * 1024 * 1024)
        .await;
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    assert!(too_large.contains("at most 50 MiB"), "{too_large}");

    // A manifest naming contents never uploaded is refused before anything is recorded.
    let refused = app
        .post(
            "/api/v1/web-services",
            json!({"dock": NETLIFY_DOCK, "name": "ghost",
                   "files": [{"path": "index.html", "sha256": claimed, "size": 17}]}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("files[0]: the contents of index.html"),
        "{}",
        refused.body
    );
    // And a path that climbs out of the site, by the adapter's typed config.
    let good = Sha256Hex::of(b"ok");
    let put = app
        .http
        .put(format!("{}/api/v1/files/{good}", app.url))
        .bearer_auth(&app.token)
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let climbing = app
        .post(
            "/api/v1/web-services",
            json!({"dock": NETLIFY_DOCK, "name": "climb",
                   "files": [{"path": "../etc/passwd", "sha256": good, "size": 2}]}),
        )
        .await;
    assert_eq!(climbing.status, 422, "{}", climbing.body);
    let message = climbing.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("files") && message.contains(".."),
        "{message}"
    );
    let listed = app.get("/api/v1/web-services").await;
    assert_eq!(
        listed.body,
        json!({"items": [], "next": null}),
        "nothing was recorded"
    );
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_folder_is_prepared_by_netlify_then_uploaded_by_a_second_run() {
    let app = spawn_app().await;
    let netlify = netlify_for(&app).await;
    let folder = tempfile::tempdir().unwrap();
    let count = stackdock_docks::netlify::ASYNC_ABOVE + 5;
    for i in 0..count {
        let dir = folder.path().join(format!("section-{}", i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{i}.html")), format!("<p>{i}</p>")).unwrap();
    }
    let dir = folder.path().to_str().unwrap();
    let (code, out, err) = run(&app, &deploy(dir, "large")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned"), "{out}");
    // The deploy was asked for in the background (`new`, then `preparing`); its files went up
    // only once Netlify had prepared it, each once.
    assert!(err.contains("netlify status: new"), "{err}");
    assert_eq!(netlify.deploys().len(), 1);
    assert_eq!(netlify.uploads().len(), count);
    app.finish();
}

/// `(name, source)` of each row of a collection, sorted.
async fn rows(app: &TestApp, collection: &str) -> Vec<(String, String)> {
    let body = app.get(&format!("/api/v1/{collection}")).await.body;
    let mut seen: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("provisioning_source"))
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_adds_netlify_sites_and_zones_made_elsewhere_once() {
    let app = spawn_app().await;
    let netlify = netlify_for(&app).await;
    // A key Netlify does not take is refused in Netlify's words, and no dock is saved.
    let refused = app
        .post(
            "/api/v1/docks",
            json!({"provider": "netlify", "name": "netlify-bad", "api_key": "not-a-netlify-key",
                   "api_url": netlify.api_url()}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "key_refused");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Access Denied"),
        "{}",
        refused.body
    );
    let site = example_site();
    let (code, out, err) = run(&app, &deploy(site.to_str().unwrap(), "ours")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    netlify.create_site_directly("made-by-hand");
    netlify.create_zone_directly("by-hand.example.org");

    for added in [2, 0] {
        let op = app.sync(NETLIFY_DOCK).await;
        assert_eq!(op["state"], "succeeded", "{op}");
        assert_eq!(
            op["steps"][0]["output"],
            json!({"found": 3, "added": added})
        );
    }
    assert_eq!(
        rows(&app, "web-services").await,
        [
            ("made-by-hand".to_string(), "manual".to_string()),
            ("ours".to_string(), "api".to_string()),
        ]
    );
    assert_eq!(
        rows(&app, "domains").await,
        [("by-hand.example.org".to_string(), "manual".to_string())]
    );
    app.finish();
}
