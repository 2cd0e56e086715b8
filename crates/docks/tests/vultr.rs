//! The Vultr adapter against its sandbox, beyond the conformance suite: Vultr's readiness
//! (three fields together), its cursor pagination, its error body, its documented rate limit,
//! a refusal after a lost answer, and a failed or cancelled provision leaving nothing behind.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::redact::encoded_forms;
use stackdock_core::{Provider, ResourceDetails, ResourceKind, StepStatus};
use stackdock_docks::vultr::{MARKER_RECORD, SHARED_TAG, VultrAdapter};
use stackdock_docks::{
    Budget, DockAccess, DockAdapter, DockError, Progress, Tracked, documented_limit,
};
use stackdock_sandbox::{BucketLimit, Fault, VultrSandbox, VultrSandboxConfig};
use support::{MemRecorder, Run, Stop, canary, engine, vultr_dock, vultr_sandbox};

fn adapter() -> VultrAdapter {
    VultrAdapter::new(reqwest::Client::new())
}

/// A sandbox taking a fresh key, a dock on it and the adapter.
async fn vultr() -> (VultrSandbox, DockAccess, VultrAdapter) {
    let key = canary();
    let sb = vultr_sandbox(&key).await;
    let dock = vultr_dock(&sb, &key);
    (sb, dock, adapter())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn server(name: &str) -> serde_json::Map<String, Value> {
    config(json!({"name": name, "region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_ready_only_once_active_running_and_ok() {
    let (sb, dock, ado) = vultr().await;
    sb.hold(true);
    let mut run = Run::new(&dock);
    let progress = ado
        .provision_server(
            &mut run.ctx,
            &dock,
            &config(
                json!({"name": "web-1", "region": "ewr", "plan": "vc2-1c-1gb",
                           "os_id": 2284, "user_data": "#cloud-config\n"}),
            ),
        )
        .await
        .expect("provisioned");
    assert!(
        matches!(&progress, Progress::Pending { status: Some(s), .. } if s == "pending"),
        "{progress:?}"
    );
    let target = run.tracked(ResourceKind::Server).expect("tracked");
    // Held: however often it is looked at, it is not ready.
    for _ in 0..3 {
        let seen = ado
            .observe_many(
                &mut run.ctx,
                &dock,
                ResourceKind::Server,
                std::slice::from_ref(&target),
            )
            .await
            .expect("observed");
        let seen = seen[0].as_ref().expect("listed by the shared tag");
        assert!(!seen.ready);
        assert_eq!(seen.status.as_deref(), Some("pending"));
    }
    sb.hold(false);
    let ready = engine::until_ready(&ado, &mut run.ctx, &dock, &target, progress).await;
    let raw = &ready.full_api_data;
    assert_eq!(
        (&raw["status"], &raw["power_status"], &raw["server_status"]),
        (&json!("active"), &json!("running"), &json!("ok"))
    );
    let ResourceDetails::Server(details) = &ready.details else {
        panic!("a server: {ready:?}");
    };
    assert!(details.ipv4.is_some(), "an address once active");
    assert_eq!(ready.marker.as_ref(), Some(&run.marker));

    // What was sent: both tags, the CLI's backups default, user data in base64.
    let create = sb
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/instances")
        .and_then(|r| r.body)
        .expect("a create with a body");
    assert_eq!(create["tags"], json!([SHARED_TAG, run.marker.as_str()]));
    assert_eq!(create["backups"], "disabled");
    assert_eq!(create["label"], "web-1");
    assert_eq!(create["user_data"], "I2Nsb3VkLWNvbmZpZwo=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_leaves_nothing_and_keeps_vultrs_words() {
    let (sb, dock, ado) = vultr().await;
    let mut run = Run::new(&dock);
    let err = ado
        .provision_server(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "web-1", "region": "ewr", "plan": "vc2-1c-1gb", "os_id": 9})),
        )
        .await
        .expect_err("an unknown operating system");
    let DockError::Provider(p) = &err else {
        panic!("Vultr's refusal: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (400, "bad_request"));
    assert_eq!(p.message, "Invalid os_id: 9.");
    assert!(sb.instances().is_empty());
    // Vultr made nothing, so unwinding has nothing to look for: the step is kept undone.
    let steps = run.ctx.records().to_vec();
    assert!(
        steps
            .iter()
            .all(|s| s.name == "instance_create_sent" && s.status == StepStatus::Undone),
        "{steps:?}"
    );
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_after_a_lost_answer_adopts_what_the_lost_try_made() {
    let (sb, dock, ado) = vultr().await;
    // The first create makes the instance and its answer is lost; the listing looked at
    // next has not caught up; the second create is refused (a quota that first instance
    // used up, say) without making anything.
    sb.inject(Fault::lose_response(Some("POST"), "/instances", 1));
    sb.inject(Fault::error(Some("POST"), "/instances", 400, 1));
    sb.lag_listings(1);
    let mut run = Run::new(&dock);
    ado.provision_server(&mut run.ctx, &dock, &server("web-1"))
        .await
        .expect("the instance the lost try made is adopted");
    assert_eq!(sb.instances().len(), 1, "{:?}", sb.instances());
    let tracked = run
        .tracked(ResourceKind::Server)
        .expect("a step tracks the instance");
    assert_eq!(
        tracked.provider_resource_id,
        sb.instances()[0]["id"].as_str().expect("an id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_provision_unwinds_to_nothing_at_vultr() {
    let (sb, dock, ado) = vultr().await;
    sb.hold(true);
    // Cancelled as the instance's id is recorded: it exists, still pending.
    let mut run = Run::with(&dock, MemRecorder::stopping_at(2, Stop::Cancel));
    let err = ado
        .provision_server(&mut run.ctx, &dock, &server("web-1"))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DockError::Cancelled), "{err:?}");
    assert_eq!(sb.instances().len(), 1);

    let steps = run.recorder.steps();
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(sb.instances(), Vec::<Value>::new());
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refused_with_a_4xx_is_done_only_if_the_instance_is_gone() {
    let (sb, dock, ado) = vultr().await;
    let made = sb.create_instance_directly("web-1", "ewr", "vc2-1c-1gb", &[]);
    let id = made["id"].as_str().expect("id").to_string();
    let target = Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: id.clone(),
        marker: None,
        last_seen: Value::Null,
    };
    let path = format!("/instances/{id}");
    let mut run = Run::new(&dock);

    // Refused while the instance is there: the refusal stands.
    sb.inject(Fault::error(Some("DELETE"), &path, 400, 1));
    let err = ado
        .deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, DockError::Provider(p) if p.status == 400),
        "{err:?}"
    );
    assert_eq!(sb.instances().len(), 1);

    // Deleted, and the delete sent again (its answer lost) refused with a 400 rather than
    // a 404, as Vultr's document allows: the instance is gone, so the delete is done.
    ado.deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("deleted");
    assert!(sb.instances().is_empty());
    sb.inject(Fault::error(Some("DELETE"), &path, 400, 1));
    ado.deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("a delete of what is gone is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_the_cursor_across_pages_and_list_each_once() {
    let (sb, dock, ado) = vultr().await;
    // More than one page of 500, some of them carrying the shared tag.
    for n in 0..620 {
        let tags: &[&str] = if n % 2 == 0 { &[SHARED_TAG] } else { &[] };
        sb.create_instance_directly(&format!("made-{n}"), "ewr", "vc2-1c-1gb", tags);
    }
    let mut run = Run::new(&dock);
    let found = ado.discover(&mut run.ctx, &dock).await.expect("discovered");
    let mut ids: Vec<&str> = found
        .iter()
        .map(|o| o.provider_resource_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((found.len(), ids.len()), (620, 620));
    let pages: Vec<Option<String>> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/instances")
        .map(|r| r.query)
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].as_deref().unwrap_or_default().contains("cursor="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_with_the_account() {
    let key = canary();
    let sb = vultr_sandbox(&key).await;
    let ado = adapter();
    let good = vultr_dock(&sb, &key);
    ado.verify_credentials(&mut Run::new(&good).ctx, &good)
        .await
        .expect("a good key");
    let bad = vultr_dock(&sb, "not-the-key");
    let err = ado
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("a bad key");
    let DockError::Provider(p) = &err else {
        panic!("Vultr's refusal: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (401, "unauthorized"));
    assert!(p.message.starts_with("Invalid API token"), "{}", p.message);
    let paths: Vec<String> = sb.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/account", "/account"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_limit_keeps_a_burst_under_vultrs_429() {
    let key = canary();
    let sb = VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![key.clone()],
        // Vultr's documented 30 requests a second, as a bucket refilling at that rate, with
        // two of slack for calls that leave paced but arrive bunched on a busy machine.
        bucket: Some(BucketLimit {
            per_minute: 30 * 60,
            burst: 32,
        }),
        ..VultrSandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let mut dock = vultr_dock(&sb, &key);
    dock.budget = Arc::new(Budget::new(documented_limit(Provider::Vultr)));
    let ado = Arc::new(adapter());
    let calls = (0..75).map(|_| {
        let (ado, dock) = (Arc::clone(&ado), dock.clone());
        tokio::spawn(async move {
            ado.verify_credentials(&mut Run::new(&dock).ctx, &dock)
                .await
        })
    });
    for call in futures::future::join_all(calls).await {
        call.expect("joined").expect("answered");
    }
    let counts = sb.request_counts();
    assert_eq!(counts.total, 75);
    assert_eq!(counts.rate_limited, 0, "the budget paced the burst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_for_the_rate_limit_is_sent_again() {
    let (sb, dock, ado) = vultr().await;
    sb.inject(Fault::rate_limited(Some("POST"), "/instances", 1, 1));
    let mut run = Run::new(&dock);
    ado.provision_server(&mut run.ctx, &dock, &server("web-1"))
        .await
        .expect("provisioned after the 429");
    let statuses: Vec<u16> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 202]);
    assert_eq!(sb.creates_by_tag(run.marker.as_str()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_config_requires_region_plan_and_os_by_name() {
    let schema = adapter()
        .config_schema(ResourceKind::Server)
        .expect("servers");
    assert_eq!(schema.validate(&server("web-1")), Ok(()));
    assert_eq!(schema.sensitive(), ["user_data"]);
    for (bad, field) in [
        (
            json!({"name": "w", "plan": "vc2-1c-1gb", "os_id": 1}),
            "region",
        ),
        (json!({"name": "w", "region": "ewr", "os_id": 1}), "plan"),
        (
            json!({"name": "w", "region": "ewr", "plan": "vc2-1c-1gb"}),
            "os_id",
        ),
        (
            json!({"name": "", "region": "ewr", "plan": "p", "os_id": 1}),
            "name",
        ),
        (
            json!({"name": "w", "region": "EWR", "plan": "p", "os_id": 1}),
            "region",
        ),
        (
            json!({"name": "w", "region": "ewr", "plan": "p", "os_id": -1}),
            "os_id",
        ),
        (
            json!({"name": "w", "region": "ewr", "plan": "p", "os_id": 1, "size": "x"}),
            "size",
        ),
    ] {
        let err = schema.validate(&config(bad.clone())).expect_err("refused");
        assert_eq!(err.field, field, "{bad}: {err}");
    }
}

fn domain(name: &str) -> serde_json::Map<String, Value> {
    config(json!({
        "name": name,
        "records": [
            {"type": "A", "name": "api", "data": "203.0.113.11"},
            {"type": "MX", "data": "mail.example.com", "priority": 10},
        ],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_is_made_with_its_records_and_its_marker_in_the_zone() {
    let (sb, dock, ado) = vultr().await;
    let mut run = Run::new(&dock);
    let Progress::Done(Some(made)) = ado
        .provision_domain(&mut run.ctx, &dock, &domain("example.com"))
        .await
        .expect("provisioned")
    else {
        panic!("a domain is usable once made");
    };
    assert_eq!(made.provider_resource_id, "example.com");
    assert_eq!(made.marker.as_ref(), Some(&run.marker));
    let records: Vec<(String, String, String)> = sb
        .records("example.com")
        .into_iter()
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap_or_default().to_string();
            (text("type"), text("name"), text("data"))
        })
        .collect();
    for wanted in [
        ("TXT", MARKER_RECORD, format!("\"{}\"", run.marker)),
        ("A", "api", "203.0.113.11".to_string()),
        ("MX", "", "mail.example.com".to_string()),
    ] {
        let wanted = (wanted.0.to_string(), wanted.1.to_string(), wanted.2);
        assert_eq!(
            records.iter().filter(|r| **r == wanted).count(),
            1,
            "{wanted:?} in {records:?}"
        );
    }
    // Run again from its recorded steps: nothing is made twice.
    let mut again = run.resume(&dock, &run.recorder.recorded());
    ado.provision_domain(&mut again.ctx, &dock, &domain("example.com"))
        .await
        .expect("provisioned again");
    assert_eq!(sb.records("example.com").len(), records.len());
    assert_eq!(sb.domain_creates("example.com"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_that_exists_is_refused_by_name_and_never_adopted() {
    let (sb, dock, ado) = vultr().await;
    sb.create_domain_directly("example.com");
    let mut run = Run::new(&dock);
    let err = ado
        .provision_domain(&mut run.ctx, &dock, &domain("example.com"))
        .await
        .expect_err("the user's own domain");
    let DockError::InvalidConfig(c) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(c.field, "name");
    assert!(c.message.contains("already exists"), "{c}");
    assert!(run.recorder.steps().is_empty(), "nothing was sent");
    assert_eq!(sb.domain_creates("example.com"), 1);
    assert_eq!(sb.txt_records_created(run.marker.as_str()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_taken_after_the_read_is_refused_and_the_unwind_leaves_it_be() {
    let (sb, dock, ado) = vultr().await;
    // The user's domain appears between the read (answered as if it were not there yet) and
    // the create, which Vultr refuses on its first try.
    sb.create_domain_directly("example.com");
    sb.inject(Fault::error(Some("GET"), "/domains/example.com", 404, 1));
    let mut run = Run::new(&dock);
    let err = ado
        .provision_domain(&mut run.ctx, &dock, &domain("example.com"))
        .await
        .expect_err("taken");
    let DockError::InvalidConfig(c) = &err else {
        panic!("the user's error, not an adoption: {err:?}");
    };
    assert_eq!(c.field, "name");
    // As the store keeps them: the create marked undone in place.
    let steps = run.ctx.records().to_vec();
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(
        sb.domains().len(),
        1,
        "the user's domain is still there after the unwind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_domain_provision_unwinds_to_nothing_at_vultr() {
    let (sb, dock, ado) = vultr().await;
    // The domain is made, then Vultr refuses a record: a permanent failure.
    sb.inject(Fault::error(
        Some("POST"),
        "/domains/example.com/records",
        400,
        1,
    ));
    let mut run = Run::new(&dock);
    let err = ado
        .provision_domain(&mut run.ctx, &dock, &domain("example.com"))
        .await
        .expect_err("a record was refused");
    assert!(
        matches!(&err, DockError::Provider(p) if p.status == 400),
        "{err:?}"
    );
    assert_eq!(sb.domains().len(), 1, "the domain was made first");
    let steps = run.recorder.steps();
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(sb.domains(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_config_needs_only_a_name_and_names_a_bad_record() {
    let schema = adapter()
        .config_schema(ResourceKind::Domain)
        .expect("domains");
    assert_eq!(
        schema.validate(&config(json!({"name": "example.com"}))),
        Ok(())
    );
    assert_eq!(schema.json()["properties"]["records"]["maxItems"], 20);
    let record = |r: Value| json!({"name": "example.com", "records": [r]});
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"type": "TXT", "name": format!("t{i}"), "data": "x"}))
        .collect();
    for (bad, field) in [
        (json!({"name": "localhost"}), "name"),
        (json!({"name": "example.com", "ip": "not-an-ip"}), "ip"),
        (
            record(json!({"type": "A", "data": "example.com"})),
            "records[0]",
        ),
        (
            record(json!({"type": "MX", "data": "mail.example.com"})),
            "records[0]",
        ),
        (
            record(json!({"type": "SPF", "data": "x"})),
            "records[0].type",
        ),
        (json!({"name": "example.com", "records": many}), "records"),
        (json!({"name": "example.com", "zone": "x"}), "zone"),
    ] {
        let err = schema.validate(&config(bad.clone())).expect_err("refused");
        assert_eq!(err.field, field, "{bad}: {err}");
    }
}

fn database(name: &str) -> serde_json::Map<String, Value> {
    config(
        json!({"name": name, "engine": "pg", "engine_version": "16", "region": "ewr",
                  "plan": "vultr-dbaas-hobbyist-cc-1-25-1"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_is_ready_at_running_and_its_password_is_found_nowhere() {
    let (sb, dock, ado) = vultr().await;
    sb.hold(true);
    let mut run = Run::new(&dock);
    let progress = ado
        .provision_database(&mut run.ctx, &dock, &database("orders"))
        .await
        .expect("provisioned");
    assert!(
        matches!(&progress, Progress::Pending { status: Some(s), .. } if s == "Rebuilding"),
        "{progress:?}"
    );
    let target = run.tracked(ResourceKind::Database).expect("tracked");
    let mut seen = Vec::new();
    let held = ado
        .observe_many(
            &mut run.ctx,
            &dock,
            ResourceKind::Database,
            std::slice::from_ref(&target),
        )
        .await
        .expect("observed");
    let held = held[0].clone().expect("listed");
    assert!(!held.ready);
    seen.push(held);
    sb.hold(false);
    let ready = engine::until_ready(&ado, &mut run.ctx, &dock, &target, progress).await;
    assert_eq!(ready.status.as_deref(), Some("Running"));
    assert_eq!(ready.marker.as_ref(), Some(&run.marker));
    let ResourceDetails::Database(details) = &ready.details else {
        panic!("a database: {ready:?}");
    };
    assert_eq!(details.engine.as_deref(), Some("pg"));
    assert!(details.host.is_some());
    seen.push(ready);
    let mut look = Run::new(&dock);
    seen.extend(
        ado.discover(&mut look.ctx, &dock)
            .await
            .expect("discovered"),
    );
    seen.extend(
        ado.find_by_marker(&mut look.ctx, &dock, ResourceKind::Database, &run.marker)
            .await
            .expect("looked up"),
    );

    // The password Vultr handed out is kept sealed in the step, and nowhere in the clear.
    let passwords = sb.database_passwords();
    assert_eq!(passwords.len(), 1);
    let sealed = run
        .ctx
        .records()
        .iter()
        .find(|s| s.name == "database_created")
        .and_then(|s| s.output["sealed_password"].as_str().map(str::to_string))
        .expect("a sealed password");
    assert_eq!(run.recorder.open(&sealed).expose(), passwords[0]);
    let everything = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}",
        seen,
        run.ctx.records(),
        run.recorder.calls(),
        look.recorder.calls(),
        serde_json::to_string(&seen.iter().map(|o| &o.full_api_data).collect::<Vec<_>>())
            .expect("json"),
    );
    for form in encoded_forms(&passwords[0]) {
        assert!(
            !everything.contains(&form),
            "the password leaked as {form:?}"
        );
    }
    assert!(
        seen.iter()
            .all(|o| o.full_api_data.get("password").is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_database_leaves_nothing_and_keeps_vultrs_words() {
    let (sb, dock, ado) = vultr().await;
    let mut run = Run::new(&dock);
    let err = ado
        .provision_database(
            &mut run.ctx,
            &dock,
            &config(
                json!({"name": "orders", "engine": "pg", "engine_version": "9",
                           "region": "ewr", "plan": "vultr-dbaas-hobbyist-cc-1-25-1"}),
            ),
        )
        .await
        .expect_err("an engine version Vultr does not run");
    let DockError::Provider(p) = &err else {
        panic!("Vultr's refusal: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (400, "bad_request"));
    assert_eq!(p.message, "Invalid database_engine_version 9 for pg.");
    let steps = run.ctx.records().to_vec();
    assert!(
        steps.iter().all(|s| s.status == StepStatus::Undone),
        "{steps:?}"
    );
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(sb.databases(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_database_provision_unwinds_to_nothing_at_vultr() {
    let (sb, dock, ado) = vultr().await;
    sb.hold(true);
    let mut run = Run::with(&dock, MemRecorder::stopping_at(2, Stop::Cancel));
    let err = ado
        .provision_database(&mut run.ctx, &dock, &database("orders"))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DockError::Cancelled), "{err:?}");
    assert_eq!(sb.databases().len(), 1, "made, still rebuilding");
    let steps = run.ctx.records().to_vec();
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(sb.databases(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_marker_asks_for_the_tag_and_leaves_other_databases_out() {
    let (sb, dock, ado) = vultr().await;
    sb.create_database_directly(
        "theirs",
        "mysql",
        "8",
        "ams",
        "vultr-dbaas-startup-cc-1-55-2",
    );
    let mut run = Run::new(&dock);
    ado.provision_database(&mut run.ctx, &dock, &database("orders"))
        .await
        .expect("provisioned");
    let mut other = Run::new(&dock);
    ado.provision_database(&mut other.ctx, &dock, &database("audit"))
        .await
        .expect("provisioned");
    let found = ado
        .find_by_marker(&mut run.ctx, &dock, ResourceKind::Database, &run.marker)
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(found.name, "orders");
    let lookup = sb
        .requests()
        .into_iter()
        .rfind(|r| r.method == "GET" && r.path == "/databases")
        .expect("a listing");
    assert_eq!(
        lookup.query.as_deref(),
        Some(format!("tag={}", run.marker).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_config_requires_engine_version_region_and_plan_by_name() {
    let schema = adapter()
        .config_schema(ResourceKind::Database)
        .expect("databases");
    assert_eq!(schema.validate(&database("orders")), Ok(()));
    let full = database("orders");
    for field in ["name", "engine", "engine_version", "region", "plan"] {
        let mut missing = full.clone();
        missing.remove(field);
        let err = schema.validate(&missing).expect_err("refused");
        assert_eq!(err.field, field, "{err}");
    }
    let mut unknown = full.clone();
    unknown.insert("tag".into(), json!("mine"));
    assert_eq!(schema.validate(&unknown).unwrap_err().field, "tag");
    let mut number = full.clone();
    number.insert("engine_version".into(), json!(16));
    assert_eq!(
        schema.validate(&number),
        Ok(()),
        "a version typed as a number"
    );
    let mut empty = full.clone();
    empty.insert("engine_version".into(), json!(" "));
    assert_eq!(schema.validate(&empty).unwrap_err().field, "engine_version");
    let mut bad = full;
    bad.insert("trusted_ips".into(), json!(["10.0.0.1", ""]));
    assert_eq!(schema.validate(&bad).unwrap_err().field, "trusted_ips[1]");
}
