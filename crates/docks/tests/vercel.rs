//! The Vercel adapter against the Vercel sandbox, where the conformance suite cannot look:
//! every content uploaded before the deployment, and one Vercel answers `missing_files` for
//! uploaded again; a deployment held at `BUILDING`, one ending in `ERROR`, one cancelled by the
//! unwind; a team's dock working in the team's scope; discovery over several pages; and
//! Vercel's error body.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::ResourceKind;
use stackdock_docks::vercel::VercelAdapter;
use stackdock_docks::{
    DockAccess, DockAdapter, DockError, MemoryFiles, Progress, Tracked, sha1_hex,
};
use stackdock_sandbox::vercel::TEAM_ID;
use support::{Run, canary, manifest, vercel_dock, vercel_sandbox};

fn adapter() -> VercelAdapter {
    VercelAdapter::new(reqwest::Client::new())
}

/// A sandbox taking a fresh key, a dock on it with no files, and the adapter.
async fn vercel() -> (stackdock_sandbox::VercelSandbox, DockAccess, VercelAdapter) {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let dock = vercel_dock(&sb, &key, Arc::new(MemoryFiles::default()));
    (sb, dock, adapter())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn target(run: &Run) -> Tracked {
    run.tracked(ResourceKind::WebService)
        .expect("a step named the project")
}

/// Observes the project of `run` once.
async fn observe(
    adapter: &VercelAdapter,
    run: &mut Run,
    dock: &stackdock_docks::DockAccess,
) -> stackdock_docks::Observed {
    let t = target(run);
    adapter
        .observe_many(&mut run.ctx, dock, ResourceKind::WebService, &[t])
        .await
        .expect("observed")
        .remove(0)
        .expect("the project is there")
}

/// Checks the project of `run` until `done` holds of what Vercel shows.
async fn observe_until(
    adapter: &VercelAdapter,
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

/// The `POST /v13/deployments` the sandbox received.
fn deployment_creates(sb: &stackdock_sandbox::VercelSandbox) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v13/deployments")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_content_is_uploaded_before_the_deployment_and_what_vercel_lacks_goes_up_again() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(&sb, &key, files.clone());
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
    // The same contents under two paths are uploaded once, by their SHA-1, and all of them
    // before the deployment is asked for (Vercel's order): it is made at the first ask.
    let mut uploaded = sb.uploads();
    uploaded.sort();
    let mut expected = vec![sha1_hex(b"<h1>one</h1>"), sha1_hex(b"shared")];
    expected.sort();
    assert_eq!(uploaded, expected);
    let order: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && (r.path == "/v2/files" || r.path == "/v13/deployments"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(order, ["/v2/files", "/v2/files", "/v13/deployments"]);

    // Contents Vercel took and then dropped: the deployment is refused `missing_files`, and
    // only what it lists goes up again before the second ask.
    sb.drop_uploads(1);
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
    let two = sha1_hex(b"<h1>two</h1>");
    assert_eq!(sb.uploads()[2..], [two.clone(), sha1_hex(b"shared"), two]);
    assert_eq!(
        deployment_creates(&sb),
        3,
        "one, then two refused once and made"
    );

    let queued = observe(&a, &mut second, &dock).await;
    assert!(!queued.ready);
    let seen = observe_until(&a, &mut second, &dock, |o| o.ready).await;
    assert_eq!(seen.status.as_deref(), Some("READY"));
    assert_eq!(seen.marker.as_ref(), Some(&second.marker));
    let stackdock_core::ResourceDetails::WebService(details) = &seen.details else {
        panic!("a web service: {:?}", seen.details);
    };
    let url = details.production_url.as_deref().expect("a URL");
    assert!(
        url.starts_with("https://") && url.ends_with(".vercel.app"),
        "{url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_held_building_is_not_ready_and_one_in_error_fails_and_unwinds() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(&sb, &key, files.clone());
    let a = adapter();
    sb.hold_deployments_building(true);
    let mut run = Run::new(&dock);
    a.provision_web_service(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "held", "files": manifest(&files, &[("index.html", b"held")])})),
    )
    .await
    .expect("provisioned");
    let held = observe_until(&a, &mut run, &dock, |o| {
        o.status.as_deref() == Some("BUILDING")
    })
    .await;
    assert!(!held.ready && held.failure.is_none());

    sb.fail_deployments(Some("Command \"npm run build\" exited with 1"));
    sb.hold_deployments_building(false);
    let failed = observe_until(&a, &mut run, &dock, |o| o.failure.is_some()).await;
    assert!(!failed.ready);
    assert_eq!(failed.status.as_deref(), Some("ERROR"));
    let failure = failed.failure.expect("a failure");
    assert_eq!(failure.code, "deployment_error");
    assert_eq!(failure.message, "Command \"npm run build\" exited with 1");

    // A resumed run sees the failure as the provision's own.
    let mut again = run.resume(&dock, &run.recorder.recorded());
    let err = a
        .provision_web_service(
            &mut again.ctx,
            &dock,
            &config(json!({"name": "held", "files": manifest(&files, &[("index.html", b"held")])})),
        )
        .await
        .expect_err("failed");
    assert!(
        matches!(&err, DockError::ResourceFailed { code, .. } if code == "deployment_error"),
        "{err:?}"
    );

    // The engine unwinds a failed provision: nothing is left at Vercel.
    let steps = run.recorder.steps();
    support::engine::unwind(&a, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.projects().is_empty() && sb.deployments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_a_building_deployment_cancels_it() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(&sb, &key, files.clone());
    let a = adapter();
    sb.hold_deployments_building(true);
    let mut run = Run::new(&dock);
    a.provision_web_service(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "c", "files": manifest(&files, &[("index.html", b"c")])})),
    )
    .await
    .expect("provisioned");
    let steps = run.recorder.steps();
    let deployment = steps
        .iter()
        .find(|s| s.name == "deployment_created")
        .expect("a deployment step");
    a.undo(&mut run.ctx, &dock, deployment)
        .await
        .expect("cancelled");
    let d = &sb.deployments()[0];
    assert_eq!(d["readyState"], "CANCELED", "{d}");
    let seen = observe(&a, &mut run, &dock).await;
    assert_eq!(
        seen.failure.map(|f| f.code).as_deref(),
        Some("deployment_canceled")
    );
    // Cancelling again (Vercel refuses: it is over) counts as done.
    a.undo(&mut run.ctx, &dock, deployment)
        .await
        .expect("nothing to cancel");
    sb.hold_deployments_building(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_dock_works_in_the_team_and_a_stranger_team_is_refused() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let mut dock = vercel_dock(&sb, &key, files.clone());
    dock.settings = json!({"team_id": TEAM_ID});
    let a = adapter();
    // A personal project of the same kind stays out of the team's view.
    sb.create_project_directly("personal");
    let mut run = Run::new(&dock);
    a.provision_web_service(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "t", "files": manifest(&files, &[("index.html", b"team")])})),
    )
    .await
    .expect("provisioned");
    let projects = sb.projects();
    let made = projects
        .iter()
        .find(|p| p["name"] == run.marker.as_str())
        .expect("the project");
    assert_eq!(made["accountId"], TEAM_ID);
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert_eq!(found.len(), 1, "only the team's project: {found:?}");
    assert!(
        sb.requests()
            .iter()
            // The user is the same in every scope: its check names no team.
            .filter(|r| r.path != "/v11/projects" && r.path != "/v2/user")
            .all(|r| r.query.as_deref().is_some_and(|q| q.contains("teamId="))),
        "every call names the team"
    );

    let mut stranger = dock.clone();
    stranger.settings = json!({"team_id": "team_someoneelse"});
    let err = a
        .verify_credentials(&mut Run::new(&stranger).ctx, &stranger)
        .await
        .expect_err("refused");
    let DockError::Provider(p) = err else {
        panic!("Vercel's refusal: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_pagination_and_a_bad_key_is_refused_in_vercels_words() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(&sb, &key, files);
    let a = adapter();
    let count = stackdock_docks::vercel::api::PAGE_LIMIT + 3;
    for i in 0..count {
        sb.create_project_directly(&format!("hand-made-{i}"));
    }
    let mut run = Run::new(&dock);
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert_eq!(found.len(), count);
    let mut names: Vec<&str> = found.iter().map(|o| o.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "nothing listed twice");
    assert!(
        found.iter().all(|o| o.marker.is_none()),
        "none is StackDock's"
    );
    let pages: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/v10/projects")
        .filter_map(|r| r.query.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("from="), "{pages:?}");

    let mut bad = dock.clone();
    bad.api_key = stackdock_core::SecretString::new("not-a-vercel-key");
    let err = a
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("refused");
    let DockError::Provider(p) = err else {
        panic!("Vercel's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (
            401,
            "forbidden",
            "The request is missing an authentication token"
        )
    );
}

/// A web service provisioned on `sb` whose project create is first refused with a 429
/// asking for `secs` seconds.
async fn provisioned_through_a_429(
    sb: &stackdock_sandbox::VercelSandbox,
    key: &str,
    secs: u64,
) -> Run {
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(sb, key, files.clone());
    sb.inject(stackdock_sandbox::Fault::rate_limited(
        Some("POST"),
        "/v11/projects",
        secs,
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
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_that_says_its_wait_only_in_its_body_is_waited_out() {
    let key = canary();
    // A 429 whose headers say nothing: its wait, 3 s, is only in `error.limit.resetMs`.
    let sb = stackdock_sandbox::VercelSandbox::start(stackdock_sandbox::VercelSandboxConfig {
        tokens: vec![key.clone()],
        queue_after: std::time::Duration::from_millis(30),
        build_after: std::time::Duration::from_millis(30),
        retry_after: std::time::Duration::from_secs(3),
        ..stackdock_sandbox::VercelSandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    sb.rate_limit_headers(false);
    let run = provisioned_through_a_429(&sb, &key, 3).await;
    let creates: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v11/projects")
        .collect();
    assert_eq!(creates.len(), 2, "refused once, then made");
    assert_eq!(creates[0].status, 429);
    assert!(
        creates[0].response_body.as_ref().expect("a body")["error"]["limit"]["resetMs"].is_number()
    );
    // Sent again only once the body's wait had passed (a blind backoff starts at 1 s).
    let waited = creates[1].at.duration_since(creates[0].at);
    assert!(
        waited >= std::time::Duration::from_millis(2500),
        "sent again after {waited:?}"
    );
    assert_eq!(sb.project_creates(run.marker.as_str()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_project_create_is_sent_again_and_makes_one_project() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let run = provisioned_through_a_429(&sb, &key, 1).await;
    assert_eq!(sb.request_counts().rate_limited, 1);
    assert_eq!(sb.project_creates(run.marker.as_str()), 1);
    let limited = sb
        .requests()
        .into_iter()
        .find(|r| r.status == 429)
        .expect("the 429");
    let body = limited.response_body.expect("a body");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["limit"]["reset"].is_number(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_provision_leaves_nothing_and_unknown_contents_are_refused() {
    let key = canary();
    let sb = vercel_sandbox(&key).await;
    let files = Arc::new(MemoryFiles::default());
    let dock = vercel_dock(&sb, &key, files.clone());
    let a = adapter();
    // Contents never uploaded to StackDock: refused before anything is made.
    let other = MemoryFiles::default();
    let err = a
        .provision_web_service(
            &mut Run::new(&dock).ctx,
            &dock,
            &config(json!({"name": "x", "files": manifest(&other, &[("lost.html", b"lost")])})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("a request fault: {err:?}");
    };
    assert_eq!(e.field, "files[lost.html]");
    assert!(sb.projects().is_empty(), "nothing was made at Vercel");

    // Vercel refusing the deployment: the unwind deletes the project.
    sb.inject(stackdock_sandbox::Fault::error(
        Some("POST"),
        "/v13/deployments",
        400,
        1,
    ));
    let mut run = Run::new(&dock);
    a.provision_web_service(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "refused", "files": manifest(&files, &[("i.html", b"i")])})),
    )
    .await
    .expect_err("refused");
    assert_eq!(sb.projects().len(), 1, "the project was made first");
    let steps = run.recorder.steps();
    support::engine::unwind(&a, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.projects().is_empty() && sb.deployments().is_empty());
}

/// Under seeded chaos (5xx answers, lost answers to creates, cut-off reads), a provision run
/// again as the engine would after each transient failure ends with one project, live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_a_rerun_provision_makes_one_live_project() {
    let mut struck = 0;
    let mut reruns = 0;
    for seed in 1..=6 {
        let key = canary();
        let sb = vercel_sandbox(&key).await;
        let files = Arc::new(MemoryFiles::default());
        let dock = vercel_dock(&sb, &key, files.clone());
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
        assert_eq!(sb.project_creates(run.marker.as_str()), 1, "seed {seed}");
        assert_eq!(sb.projects().len(), 1, "seed {seed}");
    }
    assert!(
        struck > 0 && reruns > 0,
        "chaos struck {struck} times, {reruns} reruns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_shows_its_verification_until_vercel_has_verified_it() {
    let (sb, dock, a) = vercel().await;
    let mut run = Run::new(&dock);
    let Progress::Done(Some(added)) = a
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "www.example.com"})),
        )
        .await
        .expect("provisioned")
    else {
        panic!("a domain is usable once added");
    };
    assert_eq!(added.status.as_deref(), Some("unverified"));
    assert_eq!(added.marker.as_ref(), Some(&run.marker), "its own project");
    let stackdock_core::ResourceDetails::Domain(details) = &added.details else {
        panic!("a domain: {:?}", added.details);
    };
    assert_eq!(details.records[0]["type"], "TXT");
    assert_eq!(details.records[0]["domain"], "_vercel.example.com");
    // Vercel was asked to check it, and said its challenge is unmet.
    let verifies = || {
        sb.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/domains/www.example.com/verify"))
            .count()
    };
    assert_eq!(verifies(), 1);

    // Once the TXT record is in place, Vercel verifies the domain only when asked: the check
    // asks, and the domain Vercel holds is verified from then on.
    sb.verify_dns("example.com");
    assert_eq!(sb.domains()[0]["verified"], false, "not until asked");
    let target = run.tracked(ResourceKind::Domain).expect("tracked");
    let seen = a
        .observe_many(
            &mut run.ctx,
            &dock,
            ResourceKind::Domain,
            std::slice::from_ref(&target),
        )
        .await
        .expect("observed")
        .remove(0)
        .expect("there");
    assert_eq!(seen.status.as_deref(), Some("verified"));
    assert_eq!(sb.domains()[0]["verified"], true);
    assert_eq!(verifies(), 2);
    // A verified domain is not asked again.
    a.observe_many(
        &mut run.ctx,
        &dock,
        ResourceKind::Domain,
        std::slice::from_ref(&target),
    )
    .await
    .expect("observed");
    assert_eq!(verifies(), 2);

    // Deprovision removes the domain and the project that was its own.
    a.deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("deleted");
    assert!(sb.domains().is_empty() && sb.projects().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_add_answered_already_on_the_project_after_a_lost_answer_is_adopted() {
    let (sb, dock, a) = vercel().await;
    let site = sb.create_project_directly("site");
    let id = site["id"].as_str().expect("an id");
    // The add's answer is lost after the domain was added; the read that looks for it
    // misses it (the first read, before the add, is let through); the add sent again is
    // answered 400, which the document gives for a domain already on the project.
    sb.inject(stackdock_sandbox::Fault::lose_response(
        Some("POST"),
        "/v10/projects/",
        1,
    ));
    sb.inject(
        stackdock_sandbox::Fault::error(
            Some("GET"),
            &format!("/v9/projects/{id}/domains/shop.example.com"),
            404,
            1,
        )
        .after(1),
    );
    let mut run = Run::new(&dock);
    a.provision_domain(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "shop.example.com", "project": "site"})),
    )
    .await
    .expect("the domain the lost add made is adopted");
    let adds = sb
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v10/projects/"))
        .count();
    assert_eq!(adds, 2, "lost, then answered 400");
    assert_eq!(sb.domains().len(), 1);
    let target = run.tracked(ResourceKind::Domain).expect("tracked");
    assert_eq!(
        target.provider_resource_id,
        format!("{id}/shop.example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_for_a_named_project_leaves_the_project_and_a_taken_one_is_refused_by_name() {
    let (sb, dock, a) = vercel().await;
    let site = sb.create_project_directly("site");
    let mut run = Run::new(&dock);
    a.provision_domain(
        &mut run.ctx,
        &dock,
        &config(json!({"name": "shop.example.com", "project": "site"})),
    )
    .await
    .expect("provisioned");
    assert_eq!(sb.domains()[0]["projectId"], site["id"]);
    assert_eq!(sb.projects().len(), 1, "no project of its own");

    // The same domain again, on that project or another: the user's to settle.
    for project in [json!("site"), Value::Null] {
        let mut again = Run::new(&dock);
        let mut cfg = json!({"name": "shop.example.com"});
        if !project.is_null() {
            cfg["project"] = project;
        }
        let err = a
            .provision_domain(&mut again.ctx, &dock, &config(cfg))
            .await
            .expect_err("taken");
        let DockError::InvalidConfig(e) = &err else {
            panic!("the user's error: {err:?}");
        };
        assert_eq!(e.field, "name");
        support::engine::unwind(&a, &mut again.ctx, &dock, &again.recorder.steps())
            .await
            .expect("unwound");
    }
    let err = a
        .provision_domain(
            &mut Run::new(&dock).ctx,
            &dock,
            &config(json!({"name": "a.example.com", "project": "nowhere"})),
        )
        .await
        .expect_err("no such project");
    assert!(
        matches!(&err, DockError::InvalidConfig(e) if e.field == "project"),
        "{err:?}"
    );

    let target = run.tracked(ResourceKind::Domain).expect("tracked");
    a.deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("deleted");
    assert!(sb.domains().is_empty(), "the domain is removed");
    assert_eq!(sb.projects().len(), 1, "the user's project stays");
}
