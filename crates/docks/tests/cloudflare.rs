//! The Cloudflare adapter against the Cloudflare sandbox, where the conformance suite cannot
//! look. Domains: a zone that existed before is refused, a dock naming no account, a record
//! Cloudflare refuses and the unwind after it, the zone's own status, a 429 on the create,
//! discovery over several pages, and Cloudflare's error body. Web services: a static site
//! deployed with wrangler's hashes, a second deploy uploading only what Cloudflare lacks, a
//! site's `_headers` and `_redirects` sent as wrangler sends them, a deployment held in its
//! build then released, one failing and the unwind after it, a 429 on
//! the project's create, a project name already taken, the upload token kept out of what is
//! stored, discovery over several pages, and reruns under chaos.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::redact::encoded_forms;
use stackdock_core::{ResourceDetails, ResourceKind, SecretString};
use stackdock_docks::cloudflare::api::{PROJECTS_PER_PAGE, ZONES_PER_PAGE};
use stackdock_docks::cloudflare::{CloudflareAdapter, asset_hash};
use stackdock_docks::{DockAccess, DockAdapter, DockError, MemoryFiles, Observed, Progress};
use stackdock_sandbox::cloudflare::ACCOUNT_ID;
use stackdock_sandbox::{CloudflareSandbox, Fault};
use support::{Run, canary, cloudflare_dock, cloudflare_sandbox, manifest};

fn adapter() -> CloudflareAdapter {
    CloudflareAdapter::new(reqwest::Client::new())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// The chaos both kinds are provisioned under: a third of the calls failing, losing their
/// answer or cut off.
fn chaos(seed: u64) -> stackdock_sandbox::Chaos {
    stackdock_sandbox::Chaos {
        seed,
        error_rate: 0.35,
        lose_rate: 0.3,
        truncate_rate: 0.3,
        storm: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_that_existed_before_is_refused_naming_name_and_left_alone() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    let theirs = sb.create_zone_directly("theirs.example.com");
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "Theirs.Example.com"})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "name");
    assert!(run.recorder.steps().is_empty(), "no step was recorded");
    assert_eq!(sb.zones(), vec![theirs], "their zone is untouched");
    assert!(sb.records().is_empty(), "and has no record of ours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_naming_no_account_is_refused_naming_account_id_without_a_call() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let mut dock = cloudflare_dock(&sb, &key, Default::default());
    dock.settings = Value::Null;
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "a.example.com"})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "account_id");
    assert!(e.message.contains("--setting account_id="), "{}", e.message);
    assert_eq!(sb.request_counts().total, 0, "Cloudflare was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_fails_the_provision_and_the_unwind_leaves_nothing() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    // The first POST under /zones/ is the marker record's; the second, the config's record.
    sb.inject(
        Fault::error_with(
            Some("POST"),
            "/client/v4/zones/",
            400,
            "9005",
            "Content for A record is invalid",
            1,
        )
        .after(1),
    );
    let a = adapter();
    let mut run = Run::new(&dock);
    let err = a
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "refused.example.com", "records": [
                {"type": "A", "value": "192.0.2.1"},
            ]})),
        )
        .await
        .expect_err("the record is refused");
    let DockError::Provider(p) = &err else {
        panic!("Cloudflare's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (400, "9005", "Content for A record is invalid")
    );
    assert_eq!(sb.zones().len(), 1, "the zone was made before the refusal");
    let steps = run.recorder.steps();
    support::engine::unwind(&a, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.zones().is_empty() && sb.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zones_status_is_shown_and_it_is_usable_while_pending() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    let a = adapter();
    let mut run = Run::new(&dock);
    let Progress::Done(Some(made)) = a
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "new.example.com"})),
        )
        .await
        .expect("provisioned")
    else {
        panic!("a zone is usable once made");
    };
    assert!(made.ready);
    assert_eq!(made.status.as_deref(), Some("pending"));
    assert_eq!(made.marker.as_ref(), Some(&run.marker));
    assert!(sb.set_zone_status(&made.provider_resource_id, "active"));
    let target = run.tracked(ResourceKind::Domain).expect("tracked");
    let seen = a
        .observe_many(&mut run.ctx, &dock, ResourceKind::Domain, &[target])
        .await
        .expect("observed")
        .remove(0)
        .expect("there");
    assert_eq!(seen.status.as_deref(), Some("active"));
}

/// `find_by_marker` asks each zone only for its marker record and reads the records of the
/// zone that carries the marker alone; zones whose marker record holds another marker, or
/// that hold the marker in a record of another name, are left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_marker_reads_only_the_marked_zones_records() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    let a = adapter();
    // Zones made by hand first, so the one sought comes last in the listing.
    let http = reqwest::Client::new();
    let add_record = |zone: &Value, name: String, content: String| {
        let url = format!(
            "{}/zones/{}/dns_records",
            sb.api_url(),
            zone["id"].as_str().expect("an id")
        );
        let req = http
            .post(url)
            .bearer_auth(&key)
            .json(&json!({"type": "TXT", "name": name, "content": content}));
        async move {
            let answer = req.send().await.expect("the sandbox answers");
            assert!(answer.status().is_success(), "{:?}", answer.text().await);
        }
    };
    let mut run = Run::new(&dock);
    let marker = run.marker.to_string();
    let other = Run::new(&dock).marker.to_string();
    let decoys = [
        ("another-marker.example.net", "_stackdock", other),
        (
            "marker-elsewhere.example.net",
            "_not-stackdock",
            marker.clone(),
        ),
    ];
    for (zone_name, record, content) in decoys {
        let zone = sb.create_zone_directly(zone_name);
        add_record(&zone, format!("{record}.{zone_name}"), content).await;
        for i in 0..3 {
            add_record(&zone, format!("r{i}.{zone_name}"), format!("v{i}")).await;
        }
    }
    a.provision_domain(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "sought.example.com"})),
    )
    .await
    .expect("provisioned");
    let sought = sb
        .zones()
        .into_iter()
        .find(|z| z["name"] == "sought.example.com")
        .expect("the zone");
    let before = sb.requests().len();

    let found = a
        .find_by_marker(
            &mut Run::new(&dock).ctx,
            &dock,
            ResourceKind::Domain,
            &run.marker,
        )
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(found.provider_resource_id, sought["id"].as_str().unwrap());
    assert_eq!(found.marker.as_ref(), Some(&run.marker));
    let listings: Vec<(String, Option<String>)> = sb.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/dns_records"))
        .map(|r| (r.path.clone(), r.query.clone()))
        .collect();
    let unfiltered: Vec<&String> = listings
        .iter()
        .filter(|(_, q)| !q.as_deref().unwrap_or_default().contains("type=TXT"))
        .map(|(path, _)| path)
        .collect();
    let sought_path = format!(
        "/client/v4/zones/{}/dns_records",
        sought["id"].as_str().unwrap()
    );
    assert_eq!(unfiltered, [&sought_path], "{listings:?}");
    assert_eq!(
        listings.len(),
        4,
        "one filtered ask a zone, then the sought one's records"
    );

    // A marker no zone carries is not found.
    let stray = Run::new(&dock).marker;
    let none = a
        .find_by_marker(
            &mut Run::new(&dock).ctx,
            &dock,
            ResourceKind::Domain,
            &stray,
        )
        .await
        .expect("looked up");
    assert!(none.is_none(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_zone_create_is_sent_again_and_makes_one_zone() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    sb.inject(Fault::rate_limited(Some("POST"), "/client/v4/zones", 1, 1));
    let mut run = Run::new(&dock);
    adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "busy.example.com"})),
        )
        .await
        .expect("provisioned after the 429");
    assert_eq!(sb.request_counts().rate_limited, 1);
    assert_eq!(sb.zones().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_every_page_and_a_bad_token_is_refused_in_cloudflares_words() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    let a = adapter();
    let count = ZONES_PER_PAGE + 3;
    for i in 0..count {
        sb.create_zone_directly(&format!("hand-made-{i}.example.net"));
    }
    let mut run = Run::new(&dock);
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert_eq!(found.len(), count);
    assert!(
        found.iter().all(|o| o.marker.is_none()),
        "none is StackDock's"
    );
    let pages: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/client/v4/zones" && r.method == "GET")
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(pages.iter().any(|q| q.contains("page=2")), "{pages:?}");
    assert!(
        pages.iter().all(|q| q.contains("account.id=")),
        "listings are the dock's account's: {pages:?}"
    );

    let mut bad = dock.clone();
    bad.api_key = SecretString::new("not-a-cloudflare-token");
    let err = a
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("refused");
    let DockError::Provider(p) = err else {
        panic!("Cloudflare's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (401, "10000", "Authentication error")
    );
}

/// Under seeded chaos (5xx answers, lost answers to creates, cut-off reads), a provision run
/// again as the engine would after each transient failure ends with one zone holding one of
/// each record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_a_rerun_provision_makes_one_zone_with_its_records_once() {
    let mut struck = 0;
    let mut reruns = 0;
    for seed in 1..=6 {
        let key = canary();
        let sb = cloudflare_sandbox(&key).await;
        let dock = cloudflare_dock(&sb, &key, Default::default());
        let a = adapter();
        let config = config(
            json!({"name": format!("chaos-{seed}.example.com"), "records": [
                {"type": "A", "name": "www", "value": "192.0.2.1"},
                {"type": "TXT", "value": "v=spf1 -all"},
            ]}),
        );
        sb.set_chaos(Some(chaos(seed)));
        let mut run = Run::new(&dock);
        let mut runs = 0;
        let made = loop {
            runs += 1;
            assert!(runs < 50, "seed {seed}: no end to the runs");
            match a.provision_domain(&mut run.ctx, &dock, &config).await {
                Ok(Progress::Done(Some(made))) => break made,
                Ok(other) => panic!("seed {seed}: a zone is usable once made: {other:?}"),
                Err(e) if e.is_transient() => {
                    run = run.resume(&dock, &run.recorder.recorded());
                }
                Err(e) => panic!("seed {seed}: a permanent failure: {e:?}"),
            }
        };
        sb.set_chaos(None);
        struck += sb.chaos_counts().total();
        reruns += runs - 1;
        assert_eq!(made.marker.as_ref(), Some(&run.marker), "seed {seed}");
        assert_eq!(sb.zones().len(), 1, "seed {seed}");
        let mut records: Vec<String> = sb
            .records()
            .iter()
            .map(|r| format!("{} {}", r["type"], r["name"]))
            .collect();
        records.sort();
        let all = records.len();
        records.dedup();
        assert_eq!(
            (all, records.len()),
            (3, 3),
            "seed {seed}: the marker's and the two configured, once each: {records:?}"
        );
    }
    assert!(
        struck > 0 && reruns > 0,
        "chaos struck {struck} times, {reruns} reruns"
    );
}

// ---- web services: a Pages project and a direct-upload deployment ----

fn projects_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT_ID}/pages/projects")
}

/// Observes the project of `run` once.
async fn observe_site(run: &mut Run, dock: &DockAccess) -> Observed {
    let t = run
        .tracked(ResourceKind::WebService)
        .expect("a step named the project");
    adapter()
        .observe_many(&mut run.ctx, dock, ResourceKind::WebService, &[t])
        .await
        .expect("observed")
        .remove(0)
        .expect("the project is there")
}

/// Checks the project of `run` until `done` holds of what Cloudflare shows.
async fn observe_site_until(
    run: &mut Run,
    dock: &DockAccess,
    done: impl Fn(&Observed) -> bool,
) -> Observed {
    let started = std::time::Instant::now();
    loop {
        let seen = observe_site(run, dock).await;
        if done(&seen) {
            return seen;
        }
        assert!(
            started.elapsed() < support::DEADLINE,
            "never came: {:?}",
            seen.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn deploy(
    dock: &DockAccess,
    files: &MemoryFiles,
    name: &str,
    site: &[(&str, &[u8])],
) -> (Run, Result<Progress, DockError>) {
    let mut run = Run::new(dock);
    let progress = adapter()
        .provision_web_service(
            &mut run.ctx,
            dock,
            &config(json!({"name": name, "files": manifest(files, site)})),
        )
        .await;
    (run, progress)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_site_deploys_and_a_second_deploy_uploads_only_what_cloudflare_lacks() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    let site: [(&str, &[u8]); 4] = [
        ("index.html", b"<h1>hello</h1>"),
        ("css/site.css", b"body { margin: 0 }"),
        // The same contents and extension: one asset, uploaded once.
        ("css/copy.css", b"body { margin: 0 }"),
        ("about/index.html", b"<p>about</p>"),
    ];
    let (mut run, progress) = deploy(&dock, &files, "hello", &site).await;
    let progress = progress.expect("provisioned");
    assert!(matches!(progress, Progress::Pending { .. }), "{progress:?}");
    let expected = sorted(vec![
        asset_hash("index.html", b"<h1>hello</h1>"),
        asset_hash("css/site.css", b"body { margin: 0 }"),
        asset_hash("about/index.html", b"<p>about</p>"),
    ]);
    assert_eq!(sorted(sb.asset_uploads()), expected, "each content once");
    assert_eq!(sb.stored_assets(), expected);

    let seen = observe_site_until(&mut run, &dock, |o| o.ready).await;
    assert_eq!(seen.status.as_deref(), Some("deploy:success"));
    assert_eq!(seen.name, run.marker.as_str(), "named after its marker");
    assert_eq!(seen.marker.as_ref(), Some(&run.marker));
    let ResourceDetails::WebService(details) = &seen.details else {
        panic!("a web service: {:?}", seen.details);
    };
    let url = details.production_url.as_deref().expect("a URL");
    assert!(
        url.starts_with("https://") && url.ends_with(&format!(".{}.pages.dev", run.marker)),
        "{url}"
    );
    let deployment = &sb.pages_deployments()[0];
    assert_eq!(deployment["environment"], "production");
    // The manifest names every path, each by its own content's hash.
    let sent = sb
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/deployments"))
        .and_then(|r| r.body)
        .expect("the deployment's form");
    let manifest: Value =
        serde_json::from_str(sent["manifest"].as_str().expect("a manifest")).expect("JSON");
    assert_eq!(manifest.as_object().map(|m| m.len()), Some(4), "{manifest}");
    assert_eq!(
        manifest["/css/copy.css"],
        asset_hash("css/copy.css", b"body { margin: 0 }")
    );
    assert_eq!(sent["branch"], "main");

    // The same site again, as another resource: Cloudflare holds every content, so nothing
    // is uploaded and the deployment is made all the same.
    let (_, again) = deploy(&dock, &files, "again", &site).await;
    again.expect("provisioned");
    assert_eq!(sb.asset_uploads().len(), 3, "nothing uploaded twice");
    // One file changed: only it goes up.
    let mut changed = site;
    changed[0] = ("index.html", b"<h1>hello, again</h1>");
    let (_, third) = deploy(&dock, &files, "changed", &changed).await;
    third.expect("provisioned");
    assert_eq!(
        sb.asset_uploads()[3..],
        [asset_hash("index.html", b"<h1>hello, again</h1>")]
    );
    assert_eq!(sb.pages_projects().len(), 3);
    assert_eq!(sb.pages_deployments().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_headers_and_redirects_go_with_the_deployment_and_what_wrangler_leaves_is_left() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    let site: [(&str, &[u8]); 6] = [
        ("index.html", b"<h1>home</h1>"),
        ("_headers", b"/*\n  X-Frame-Options: DENY\n"),
        ("_redirects", b"/old /new 301\n"),
        ("node_modules/left/index.js", b"left()"),
        (".DS_Store", b"store"),
        ("functions/api.js", b"export function onRequest() {}"),
    ];
    let (run, progress) = deploy(&dock, &files, "configured", &site).await;
    progress.expect("provisioned");
    let contents = sb.pages_deployment_contents(run.marker.as_str());
    assert_eq!(contents.len(), 1);
    let (paths, config) = &contents[0];
    // Served: only the page. `_headers` and `_redirects` configure it, never served.
    assert_eq!(paths, &["/index.html".to_string()]);
    assert_eq!(
        config.get("_headers").map(String::as_str),
        Some("/*\n  X-Frame-Options: DENY\n")
    );
    assert_eq!(
        config.get("_redirects").map(String::as_str),
        Some("/old /new 301\n")
    );
    assert_eq!(
        sb.asset_uploads(),
        [asset_hash("index.html", b"<h1>home</h1>")]
    );

    // A Worker to bundle is refused, naming the file, before anything is made.
    let worker: [(&str, &[u8]); 2] = [("index.html", b"x"), ("_worker.js", b"export default {}")];
    let (_, refused) = deploy(&dock, &files, "worker", &worker).await;
    let err = refused.expect_err("refused");
    assert!(
        matches!(&err, DockError::InvalidConfig(e) if e.field == "files" && e.message.contains("_worker.js")),
        "{err:?}"
    );
    assert_eq!(sb.pages_projects().len(), 1, "nothing made for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_held_in_its_build_is_not_ready_until_released() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    sb.hold_deployments(true);
    let (mut run, progress) = deploy(&dock, &files, "held", &[("index.html", b"held")]).await;
    assert!(
        matches!(progress, Ok(Progress::Pending { .. })),
        "{progress:?}"
    );
    let held = observe_site_until(&mut run, &dock, |o| {
        o.status.as_deref() == Some("build:active")
    })
    .await;
    assert!(!held.ready && held.failure.is_none());
    // Held means held: seen again, it is still building.
    let still = observe_site(&mut run, &dock).await;
    assert_eq!(still.status.as_deref(), Some("build:active"));
    assert!(!still.ready);

    sb.hold_deployments(false);
    let seen = observe_site_until(&mut run, &dock, |o| o.ready).await;
    assert_eq!(seen.status.as_deref(), Some("deploy:success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_is_failed_and_the_unwind_removes_the_project() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    sb.fail_deployments(true);
    let site: [(&str, &[u8]); 1] = [("index.html", b"doomed")];
    let (mut run, progress) = deploy(&dock, &files, "doomed", &site).await;
    progress.expect("sent");
    let failed = observe_site_until(&mut run, &dock, |o| o.failure.is_some()).await;
    assert!(!failed.ready);
    assert_eq!(failed.status.as_deref(), Some("build:failure"));
    assert_eq!(
        failed.failure.expect("a failure").code,
        "deployment_failure"
    );

    // A resumed run sees the failure as the provision's own.
    let mut again = run.resume(&dock, &run.recorder.recorded());
    let err = adapter()
        .provision_web_service(
            &mut again.ctx,
            &dock,
            &config(json!({"name": "doomed", "files": manifest(&files, &site)})),
        )
        .await
        .expect_err("failed");
    assert!(
        matches!(&err, DockError::ResourceFailed { code, .. } if code == "deployment_failure"),
        "{err:?}"
    );

    let steps = run.recorder.steps();
    support::engine::unwind(&adapter(), &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.pages_projects().is_empty(), "the project is gone");
    assert!(sb.pages_deployments().is_empty(), "and its deployment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_project_create_is_sent_again_and_makes_one_project() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    sb.inject(Fault::rate_limited(Some("POST"), &projects_path(), 1, 1));
    let (run, progress) = deploy(&dock, &files, "busy", &[("index.html", b"busy")]).await;
    progress.expect("provisioned after the 429");
    assert_eq!(sb.request_counts().rate_limited, 1);
    assert_eq!(sb.project_creates(run.marker.as_str()), 1);
    assert_eq!(sb.pages_projects().len(), 1);
    let limited = sb
        .requests()
        .into_iter()
        .find(|r| r.status == 429)
        .expect("the 429");
    assert_eq!(limited.path, projects_path());
    let body = limited.response_body.expect("a body");
    assert_eq!(body["errors"][0]["code"], 1015);
    assert_eq!(body["success"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_project_name_and_a_file_too_large_are_refused_before_anything_is_made() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());

    // A project the user made under the name this resource's marker gives: not taken over.
    let mut run = Run::new(&dock);
    let theirs = sb.create_project_directly(run.marker.as_str());
    let err = adapter()
        .provision_web_service(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "x", "files": manifest(&files, &[("index.html", b"x")])})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "name");
    assert!(run.recorder.steps().is_empty(), "no step was recorded");
    assert_eq!(
        sb.pages_projects(),
        vec![theirs],
        "their project is untouched"
    );
    assert!(sb.asset_uploads().is_empty());

    // Pages serves files of 25 MiB at most: refused naming `files` and the path.
    let big = json!([{"path": "video.mp4", "sha256": files.put(b"big"),
                      "size": stackdock_docks::cloudflare::MAX_ASSET_SIZE + 1}]);
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_web_service(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "big", "files": big})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "files");
    assert!(e.message.contains("video.mp4"), "{}", e.message);
    assert_eq!(sb.pages_projects().len(), 1, "nothing more was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_discovery_reads_every_page_and_lists_projects_as_manual() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key, Default::default());
    let count = PROJECTS_PER_PAGE + 3;
    for i in 0..count {
        sb.create_project_directly(&format!("hand-made-{i}"));
    }
    let found = adapter()
        .discover(&mut Run::new(&dock).ctx, &dock)
        .await
        .expect("discovered");
    let mut names: Vec<&str> = found.iter().map(|o| o.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "each once: {names:?}");
    assert!(
        found.iter().all(|o| o.marker.is_none()),
        "none is StackDock's"
    );
    assert!(
        found
            .iter()
            .all(|o| matches!(o.details, ResourceDetails::WebService(_))),
        "web services"
    );
    let pages: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.path == projects_path())
        .filter_map(|r| r.query.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("page=2"), "{pages:?}");
    assert_eq!(found.len(), count, "none twice");

    // A listing that ignores `page` (the document gives it no paging parameters) answers
    // every project each time and reports no total: each project is still listed once, and
    // the walk ends at the page that adds nothing new.
    sb.list_projects_unpaged(true);
    let asked_before = pages.len();
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        adapter().discover(&mut Run::new(&dock).ctx, &dock),
    )
    .await
    .expect("the walk ends")
    .expect("discovered");
    assert_eq!(found.len(), count, "each once");
    let asked = sb
        .requests()
        .iter()
        .filter(|r| r.path == projects_path())
        .count();
    assert_eq!(asked - asked_before, 2, "the second page added nothing");
}

/// The asset calls are made with the project's upload token: the sandbox, like Cloudflare,
/// refuses the account's API token there, so a deploy that went through used the token. The
/// token is a credential: it is in no step, journal entry or observation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_calls_take_the_upload_token_not_the_api_key() {
    let key = canary();
    let sb: CloudflareSandbox = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    let (mut run, progress) = deploy(&dock, &files, "t", &[("index.html", b"t")]).await;
    progress.expect("provisioned");
    let seen = observe_site_until(&mut run, &dock, |o| o.ready).await;
    let tokens = sb.upload_tokens();
    assert_eq!(tokens.len(), 1, "one upload token for the deploy");
    let kept = [
        format!("{:?}", run.recorder.steps()),
        format!("{:?}", run.recorder.calls()),
        format!("{seen:?}"),
        seen.full_api_data.to_string(),
    ];
    for text in &kept {
        for form in encoded_forms(&tokens[0]) {
            assert!(!text.contains(&form), "the upload token leaked: {text}");
        }
    }
    assert!(
        run.recorder
            .calls()
            .iter()
            .any(|c| c.path == "/pages/assets/upload"),
        "the upload was journaled"
    );
    let asset_calls: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/client/v4/pages/assets/"))
        .collect();
    let paths: Vec<&str> = asset_calls.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/client/v4/pages/assets/check-missing",
            "/client/v4/pages/assets/upload",
            "/client/v4/pages/assets/upsert-hashes",
        ]
    );
    assert!(asset_calls.iter().all(|r| r.status == 200));
    let refused = reqwest::Client::new()
        .post(format!("{}/pages/assets/check-missing", sb.api_url()))
        .bearer_auth(&key)
        .json(&json!({"hashes": []}))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    // And the upload token is good for nothing else.
    let elsewhere = reqwest::Client::new()
        .get(format!(
            "{}/accounts/{ACCOUNT_ID}/pages/projects",
            sb.api_url()
        ))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .expect("answered");
    assert_eq!(elsewhere.status(), 401);
}

/// Under seeded chaos (5xx answers, lost answers to creates, cut-off reads), a provision run
/// again as the engine would after each transient failure ends with one project and one
/// deployment, live, every content stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_a_rerun_provision_makes_one_live_project_with_one_deployment() {
    let mut struck = 0;
    let mut reruns = 0;
    for seed in 1..=6 {
        let key = canary();
        let sb = cloudflare_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = cloudflare_dock(&sb, &key, files.clone());
        let a = adapter();
        let site: [(&str, &[u8]); 2] = [("index.html", b"<h1>chaos</h1>"), ("a.css", b"a{}")];
        let config = config(json!({"name": "chaos", "files": manifest(&files, &site)}));
        sb.set_chaos(Some(chaos(seed)));
        let mut run = Run::new(&dock);
        let mut runs = 0;
        loop {
            runs += 1;
            assert!(runs < 50, "seed {seed}: no end to the runs");
            match a.provision_web_service(&mut run.ctx, &dock, &config).await {
                Ok(_) => break,
                Err(e) if e.is_transient() => {
                    run = run.resume(&dock, &run.recorder.recorded());
                }
                Err(e) => panic!("seed {seed}: a permanent failure: {e:?}"),
            }
        }
        sb.set_chaos(None);
        struck += sb.chaos_counts().total();
        reruns += runs - 1;
        let seen = observe_site_until(&mut run, &dock, |o| o.ready).await;
        assert_eq!(seen.marker.as_ref(), Some(&run.marker), "seed {seed}");
        assert_eq!(sb.pages_projects().len(), 1, "seed {seed}");
        assert_eq!(sb.project_creates(run.marker.as_str()), 1, "seed {seed}");
        assert_eq!(sb.deployment_creates(run.marker.as_str()), 1, "seed {seed}");
        let expected = sorted(site.iter().map(|(p, b)| asset_hash(p, b)).collect());
        assert_eq!(sb.stored_assets(), expected, "seed {seed}");
    }
    assert!(
        struck > 0 && reruns > 0,
        "chaos struck {struck} times, {reruns} reruns"
    );
}

/// An upload token Cloudflare no longer takes (`8000013`, as wrangler's `pages/errors.ts` names
/// it) is fetched again, and the call made once more with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_token_refused_as_expired_is_fetched_again() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = cloudflare_dock(&sb, &key, files.clone());
    sb.inject(Fault::error_with(
        Some("POST"),
        "/client/v4/pages/assets/upload",
        401,
        "8000013",
        "Expired JWT",
        1,
    ));
    let site: [(&str, &[u8]); 1] = [("index.html", b"<h1>later</h1>")];
    let (_, progress) = deploy(&dock, &files, "later", &site).await;
    progress.expect("provisioned with a second token");
    let token_reads = sb
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/upload-token"))
        .count();
    assert_eq!(token_reads, 2, "the token was fetched again");
    assert_eq!(sb.upload_tokens().len(), 2);
    assert_eq!(
        sb.stored_assets(),
        [asset_hash("index.html", b"<h1>later</h1>")]
    );
}
