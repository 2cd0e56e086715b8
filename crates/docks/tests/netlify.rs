//! The Netlify adapter against the Netlify sandbox, where the conformance suite cannot look:
//! only the contents Netlify lacks are uploaded (its `required` SHA-1s mapped back to paths),
//! a large deploy prepared in the background and resumed once `prepared`, a deploy listing
//! what it lacks under a state name of its own, a deploy held at
//! `processing`, one ending in `error`, contents never uploaded to StackDock, discovery over
//! several pages, and Netlify's error body.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::ResourceKind;
use stackdock_docks::netlify::{ASYNC_ABOVE, NetlifyAdapter};
use stackdock_docks::{DockAdapter, DockError, MemoryFiles, Progress, Tracked, sha1_hex};
use support::{Run, canary, manifest, netlify_dock, netlify_sandbox, wait_until};

fn adapter() -> NetlifyAdapter {
    NetlifyAdapter::new(reqwest::Client::new())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn target(run: &Run) -> Tracked {
    run.tracked(ResourceKind::WebService)
        .expect("a step named the site")
}

/// Observes the site of `run` once.
async fn observe(
    adapter: &NetlifyAdapter,
    run: &mut Run,
    dock: &stackdock_docks::DockAccess,
) -> stackdock_docks::Observed {
    let t = target(run);
    adapter
        .observe_many(&mut run.ctx, dock, ResourceKind::WebService, &[t])
        .await
        .expect("observed")
        .remove(0)
        .expect("the site is there")
}

/// Checks the site of `run` until `done` holds of what Netlify shows.
async fn observe_until(
    adapter: &NetlifyAdapter,
    run: &mut Run,
    dock: &stackdock_docks::DockAccess,
    done: impl Fn(&stackdock_docks::Observed) -> bool,
) -> stackdock_docks::Observed {
    let started = std::time::Instant::now();
    loop {
        let seen = observe(adapter, run, dock).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_contents_netlify_lacks_are_uploaded_by_path() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    let a = adapter();

    let mut first = Run::new(&dock);
    let progress = a
        .provision_web_service(
            &mut first.ctx,
            &dock,
            &config(json!({"name": "one", "files": manifest(&files, &[
                ("index.html", b"<h1>one</h1>"),
                ("a.css", b"shared"),
                ("b.css", b"shared"),
            ])})),
        )
        .await
        .expect("provisioned");
    assert!(matches!(progress, Progress::Pending { .. }), "{progress:?}");
    // The same contents under two paths are uploaded once.
    let uploaded: Vec<String> = sb.uploads().into_iter().map(|(_, p)| p).collect();
    assert_eq!(uploaded.len(), 2, "{uploaded:?}");
    assert!(uploaded.contains(&"/index.html".to_string()));

    // A second site sharing contents with the first uploads only what is new to Netlify.
    let mut second = Run::new(&dock);
    a.provision_web_service(
        &mut second.ctx,
        &dock,
        &config(json!({"name": "two", "files": manifest(&files, &[
            ("index.html", b"<h1>two</h1>"),
            ("css/site.css", b"shared"),
        ])})),
    )
    .await
    .expect("provisioned");
    let later: Vec<String> = sb.uploads().into_iter().skip(2).map(|(_, p)| p).collect();
    assert_eq!(later, ["/index.html"], "only the new index is sent");
    let deploy = sb
        .deploys()
        .into_iter()
        .find(|d| d["site_id"] == target(&second).provider_resource_id.as_str())
        .expect("a deploy");
    assert_eq!(
        deploy["state"], "processing",
        "every required file arrived: {deploy}"
    );

    let seen = observe_until(&a, &mut second, &dock, |o| o.ready).await;
    assert_eq!(seen.status.as_deref(), Some("ready"));
    assert_eq!(seen.marker.as_ref(), Some(&second.marker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_deploy_waits_for_prepared_before_uploading() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    let a = adapter();
    let contents: Vec<(String, Vec<u8>)> = (0..=ASYNC_ABOVE)
        .map(|i| (format!("pages/{i}.html"), format!("page {i}").into_bytes()))
        .collect();
    let listed: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let config = config(json!({"name": "big", "files": manifest(&files, &listed)}));

    let mut run = Run::new(&dock);
    let progress = a
        .provision_web_service(&mut run.ctx, &dock, &config)
        .await
        .expect("asked");
    let Progress::Pending { status, .. } = progress else {
        panic!("a large deploy is prepared in the background: {progress:?}");
    };
    assert_eq!(
        status.as_deref(),
        Some("new"),
        "answered before Netlify picked it up"
    );
    assert!(sb.uploads().is_empty(), "nothing is sent before prepared");
    let created = sb
        .requests()
        .iter()
        .find(|r| r.path.ends_with("/deploys") && r.method == "POST")
        .and_then(|r| r.body.clone())
        .expect("the deploy's body");
    assert_eq!(created["async"], true);
    assert_eq!(created["files"]["/pages/0.html"], sha1_hex(b"page 0"));

    // The engine's check sees it prepared and hands the provision back to run again.
    let prepared = observe_until(&a, &mut run, &dock, |o| {
        o.status.as_deref() == Some("prepared")
    })
    .await;
    assert!(a.continues_provision(ResourceKind::WebService, &prepared));
    let mut again = run.resume(&dock, &run.recorder.recorded());
    a.provision_web_service(&mut again.ctx, &dock, &config)
        .await
        .expect("uploaded");
    assert_eq!(sb.uploads().len(), ASYNC_ABOVE + 1);
    assert_eq!(
        sb.deploys().len(),
        1,
        "the resumed run used the same deploy"
    );
    let ready = observe_until(&a, &mut again, &dock, |o| o.ready).await;
    assert!(!a.continues_provision(ResourceKind::WebService, &ready));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_listing_required_contents_gets_them_once_whatever_its_state_is_called() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    let a = adapter();
    // A deploy waiting for files is shown `enqueued`, not Netlify's `prepared`.
    sb.show_waiting_deploys_as(Some("enqueued"));
    sb.hold_deploys_processing(true);
    let config = config(json!({"name": "site", "files": manifest(&files, &[
        ("index.html", b"<h1>enqueued</h1>"),
        ("app.js", b"run()"),
    ])}));
    let mut run = Run::new(&dock);
    let progress = a
        .provision_web_service(&mut run.ctx, &dock, &config)
        .await
        .expect("provisioned");
    assert!(matches!(progress, Progress::Pending { .. }), "{progress:?}");
    assert_eq!(sb.uploads().len(), 2, "what it listed went up at once");

    // A check that sees a deploy still listing contents in a state short of the uploads
    // hands the provision back; one past them does not.
    let mut waiting = observe(&a, &mut run, &dock).await;
    assert_eq!(waiting.status.as_deref(), Some("processing"));
    assert!(!a.continues_provision(ResourceKind::WebService, &waiting));
    waiting.status = Some("new".into());
    waiting.full_api_data["deploy"]["required"] = json!([sha1_hex(b"run()")]);
    assert!(a.continues_provision(ResourceKind::WebService, &waiting));
    waiting.full_api_data["deploy"]["required"] = json!([]);
    assert!(!a.continues_provision(ResourceKind::WebService, &waiting));

    // A run resumed after the uploads sends nothing again: the deploy lacks nothing now.
    let mut again = run.resume(&dock, &run.recorder.recorded());
    a.provision_web_service(&mut again.ctx, &dock, &config)
        .await
        .expect("resumed");
    assert_eq!(sb.uploads().len(), 2);
    sb.hold_deploys_processing(false);
    let ready = observe_until(&a, &mut again, &dock, |o| o.ready).await;
    assert_eq!(ready.status.as_deref(), Some("ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_held_processing_is_not_ready_and_one_in_error_fails() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    let a = adapter();
    sb.hold_deploys_processing(true);
    let mut run = Run::new(&dock);
    a.provision_web_service(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "held", "files": manifest(&files, &[("index.html", b"held")])})),
    )
    .await
    .expect("provisioned");
    let held = observe(&a, &mut run, &dock).await;
    assert_eq!(held.status.as_deref(), Some("processing"));
    assert!(!held.ready && held.failure.is_none());

    sb.fail_deploys(Some("Build script returned non-zero exit code: 2"));
    sb.hold_deploys_processing(false);
    let failed = observe_until(&a, &mut run, &dock, |o| o.failure.is_some()).await;
    assert!(!failed.ready);
    let failure = failed.failure.expect("a failure");
    assert_eq!(
        failure.message,
        "Build script returned non-zero exit code: 2"
    );

    // The engine unwinds a failed provision: nothing is left at Netlify.
    let steps = run.recorder.steps();
    support::engine::unwind(&a, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.sites().is_empty() && sb.deploys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_site_create_is_sent_again_and_makes_one_site() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    sb.inject(stackdock_sandbox::Fault::rate_limited(
        Some("POST"),
        "/api/v1/sites",
        1,
        1,
    ));
    let mut run = Run::new(&dock);
    adapter()
        .provision_web_service(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "busy", "files": manifest(&files, &[("index.html", b"busy")])})),
        )
        .await
        .expect("provisioned after the 429");
    assert_eq!(sb.request_counts().rate_limited, 1);
    assert_eq!(sb.site_creates(&run.marker.to_string()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_never_uploaded_to_stackdock_are_refused_naming_the_path() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files.clone());
    let other = MemoryFiles::default();
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_web_service(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "x", "files": manifest(&other, &[("lost.html", b"lost")])})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("a request fault: {err:?}");
    };
    assert_eq!(e.field, "files[lost.html]");
    assert!(sb.sites().is_empty(), "nothing was made at Netlify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_every_page_and_a_bad_key_is_refused_in_netlifys_words() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = netlify_dock(&sb, &key, files);
    let a = adapter();
    let count = stackdock_docks::netlify::api::PER_PAGE + 3;
    for i in 0..count {
        sb.create_site_directly(&format!("hand-made-{i}"));
    }
    sb.create_zone_directly("hand-made.example.net");
    let mut run = Run::new(&dock);
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    let sites = found
        .iter()
        .filter(|o| matches!(o.details, stackdock_core::ResourceDetails::WebService(_)))
        .count();
    assert_eq!(sites, count);
    assert_eq!(found.len(), count + 1, "and the zone");
    assert!(
        found.iter().all(|o| o.marker.is_none()),
        "none is StackDock's"
    );
    let pages: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/sites" && r.method == "GET")
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(pages.iter().any(|q| q.contains("page=2")), "{pages:?}");

    let mut bad = dock.clone();
    bad.api_key = stackdock_core::SecretString::new("not-a-netlify-key");
    let err = a
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("refused");
    let DockError::Provider(p) = err else {
        panic!("Netlify's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (401, "401", "Access Denied")
    );
    wait_until("nothing left over", || sb.deploys().is_empty()).await;
}

/// The document leaves open whether `GET /dns_zones` fills each zone's `records`: a listing
/// answering `records: []` still lets a zone be found by the marker record it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_is_found_by_its_marker_when_the_listing_leaves_its_records_out() {
    let key = canary();
    let sb = netlify_sandbox(&key).await;
    let dock = netlify_dock(&sb, &key, Arc::new(MemoryFiles::default()));
    let a = adapter();
    let mut run = Run::new(&dock);
    a.provision_domain(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "ours.example.com"})),
    )
    .await
    .expect("provisioned");
    let zone_id = sb.zones()[0]["id"].as_str().expect("zone id").to_string();

    sb.list_zones_without_records(true);
    let found = a
        .find_by_marker(&mut run.ctx, &dock, ResourceKind::Domain, &run.marker)
        .await
        .expect("asked")
        .expect("found by its marker");
    assert_eq!(found.provider_resource_id, zone_id);
    assert_eq!(found.marker.as_ref(), Some(&run.marker));
    let discovered = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert_eq!(discovered.len(), 1);
    assert_eq!(discovered[0].marker.as_ref(), Some(&run.marker));
}

/// Under seeded chaos (5xx answers, lost answers to creates, cut-off reads), a provision run
/// again as the engine would after each transient failure ends with one site, live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_a_rerun_provision_makes_one_live_site() {
    let mut struck = 0;
    let mut reruns = 0;
    for seed in 1..=6 {
        let key = canary();
        let sb = netlify_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = netlify_dock(&sb, &key, files.clone());
        let a = adapter();
        let config = config(json!({"name": "chaos", "files": manifest(&files, &[
            ("index.html", format!("<p>{seed}</p>").as_bytes()),
            ("a.css", b"a"),
        ])}));
        sb.set_chaos(Some(stackdock_sandbox::Chaos {
            seed,
            error_rate: 0.35,
            lose_rate: 0.3,
            truncate_rate: 0.3,
            storm: None,
        }));
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
        let ready = observe_until(&a, &mut run, &dock, |o| o.ready).await;
        assert_eq!(ready.marker.as_ref(), Some(&run.marker), "seed {seed}");
        assert_eq!(sb.site_creates(&run.marker.to_string()), 1, "seed {seed}");
        assert_eq!(sb.sites().len(), 1, "seed {seed}");
    }
    assert!(
        struck > 0 && reruns > 0,
        "chaos struck {struck} times, {reruns} reruns"
    );
}
