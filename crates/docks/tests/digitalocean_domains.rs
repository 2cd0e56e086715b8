//! DigitalOcean domains against the sandbox, where the conformance suite cannot look: a
//! domain is known by its name, so adoption must never take over one the user already had;
//! records are steps of their own; and bad config is refused naming the field.

mod support;

use serde_json::{Map, Value, json};
use stackdock_core::{ResourceDetails, StepStatus};
use stackdock_docks::{DockAdapter, DockError, Progress};
use stackdock_sandbox::Fault;
use support::{Run, adapter, canary, dock, engine, requests_to, sandbox};

fn config(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

/// A first run provisioning the domain `config` describes.
async fn provision(
    dock: &stackdock_docks::DockAccess,
    config: Value,
) -> (Run, Result<Progress, DockError>) {
    let mut run = Run::new(dock);
    let progress = adapter()
        .provision_domain(&mut run.ctx, dock, &self::config(config))
        .await;
    (run, progress)
}

/// The step named `name` the run recorded.
fn step(run: &Run, name: &str) -> stackdock_core::Step {
    run.recorder
        .steps()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} step"))
}

fn domain_posts(sb: &stackdock_sandbox::DigitalOceanSandbox) -> usize {
    requests_to(sb, "POST", "/v2/domains").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_is_made_with_its_marker_and_records_each_a_step() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let (run, progress) = provision(
        &dock,
        json!({
            "name": "shop.example.com",
            "ip_address": "192.0.2.10",
            "records": [
                {"type": "A", "name": "www", "data": "192.0.2.11"},
                {"type": "TXT", "name": "_dmarc", "data": "v=DMARC1; p=none"},
            ],
        }),
    )
    .await;
    let progress = progress.expect("provisioned");

    // Usable once it exists: done at once, with its marker and records as the zone shows them.
    let Progress::Done(Some(seen)) = progress else {
        panic!("a domain is done when made: {progress:?}")
    };
    assert!(seen.ready);
    assert_eq!(seen.provider_resource_id, "shop.example.com");
    assert_eq!(seen.marker.as_ref(), Some(&run.marker));
    let ResourceDetails::Domain(details) = &seen.details else {
        panic!("{:?}", seen.details)
    };
    let records = details.records.as_array().expect("records");
    let has = |kind: &str, name: &str, data: &str| {
        records
            .iter()
            .any(|r| r["type"] == kind && r["name"] == name && r["data"] == data)
    };
    assert!(has("A", "@", "192.0.2.10"), "{records:?}");
    assert!(has("A", "www", "192.0.2.11"), "{records:?}");
    assert!(has("TXT", "_dmarc", "v=DMARC1; p=none"), "{records:?}");
    assert!(has("TXT", "_stackdock", run.marker.as_str()), "{records:?}");

    let names: Vec<String> = run.recorder.steps().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "domain_create_sent",
            "domain_created",
            "marker_record_sent",
            "marker_record_created",
            "record_1_sent",
            "record_1_created",
            "record_2_sent",
            "record_2_created",
        ]
    );
    assert_eq!(run.recorder.tracks().as_deref(), Some("shop.example.com"));
    // Each record is looked for before it is made, and made once.
    assert_eq!(
        requests_to(&sb, "POST", "/v2/domains/shop.example.com/records").len(),
        3
    );
    assert_eq!(sb.domain_records("shop.example.com").len(), 3 + 1 + 3);
}

/// The spec makes a domain's `zone_file` nullable: a listing that shows none still lets the
/// domain be found by its marker, through the marker record asked for by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_listed_without_its_zone_file_is_found_by_its_marker_record() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let (mut run, progress) = provision(&dock, json!({"name": "shop.example.com"})).await;
    progress.expect("provisioned");
    sb.create_domain_directly("theirs.example.com");

    sb.set_listed_zone_files_null(true);
    let found = adapter()
        .find_by_marker(
            &mut run.ctx,
            &dock,
            stackdock_core::ResourceKind::Domain,
            &run.marker,
        )
        .await
        .expect("asked")
        .expect("found by its marker record");
    assert_eq!(found.provider_resource_id, "shop.example.com");
    assert_eq!(found.marker.as_ref(), Some(&run.marker));
    let other = Run::new(&dock);
    let none = adapter()
        .find_by_marker(
            &mut run.ctx,
            &dock,
            stackdock_core::ResourceKind::Domain,
            &other.marker,
        )
        .await
        .expect("asked");
    assert!(none.is_none(), "another marker finds nothing: {none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_that_exists_before_the_provision_is_refused_never_adopted() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    sb.create_domain_directly("theirs.example.com");
    let (run, err) = provision(&dock, json!({"name": "theirs.example.com"})).await;
    let err = err.expect_err("the name is taken");
    let DockError::InvalidConfig(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.field, "name");
    assert!(e.message.contains("already exists"), "{e}");
    assert_eq!(domain_posts(&sb), 0, "no create was sent");
    assert!(run.recorder.steps().is_empty(), "nothing to unwind");
    assert_eq!(sb.domains().len(), 1, "the user's domain is untouched");
}

/// The user makes the domain between StackDock's read and its create: the create is refused
/// on its first try, which is the user's error, and unwinding leaves their domain alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_on_its_first_try_is_the_users_error_not_an_adoption() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    sb.create_domain_directly("race.example.com");
    // The read before the create does not see it yet.
    sb.inject(Fault::error(
        Some("GET"),
        "/v2/domains/race.example.com",
        404,
        1,
    ));
    let (mut run, err) = provision(&dock, json!({"name": "race.example.com"})).await;
    let err = err.expect_err("refused");
    let DockError::Provider(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((p.status, p.code.as_str()), (422, "unprocessable_entity"));
    assert_eq!(domain_posts(&sb), 1, "sent once, not again");
    let records = run.ctx.records();
    let sent = records
        .iter()
        .find(|s| s.name == "domain_create_sent")
        .expect("recorded before the create");
    assert_eq!(
        sent.status,
        StepStatus::Undone,
        "nothing of ours to look for"
    );
    assert!(
        !run.recorder
            .steps()
            .iter()
            .any(|s| s.name == "domain_created"),
        "not adopted"
    );

    let steps = run.ctx.records().to_vec();
    engine::unwind(&adapter(), &mut run.ctx, &dock, &steps)
        .await
        .expect("unwinds");
    assert_eq!(
        sb.domains().len(),
        1,
        "unwinding left the user's domain alone"
    );
}

/// The first create made the domain but its answer was lost, and the look-up after it missed
/// it: the second try is refused because the name is taken — by that first try. The refusal
/// is looked into and the domain adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_a_lost_answer_is_looked_into_and_adopted() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    sb.inject(Fault::lose_response(Some("POST"), "/v2/domains", 1));
    // The read before the create goes through; the look-up after the lost answer misses.
    sb.inject(Fault::error(Some("GET"), "/v2/domains/lost.example.com", 404, 1).after(1));
    let (run, progress) = provision(&dock, json!({"name": "lost.example.com"})).await;
    let progress = progress.expect("adopted");
    assert!(matches!(progress, Progress::Done(Some(_))), "{progress:?}");
    assert_eq!(domain_posts(&sb), 2, "the second try was refused");
    let created = step(&run, "domain_created");
    assert_eq!(created.output["adopted"], true);
    assert_eq!(sb.domain_creates_holding(run.marker.as_str()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_unwinds_to_nothing() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    // The marker's record goes through; the first of the config's is refused.
    sb.inject(
        Fault::error_with(
            Some("POST"),
            "/v2/domains/",
            422,
            "unprocessable_entity",
            "Data is invalid.",
            1,
        )
        .after(1),
    );
    let (mut run, err) = provision(
        &dock,
        json!({"name": "half.example.com", "records": [
            {"type": "A", "name": "www", "data": "192.0.2.1"},
        ]}),
    )
    .await;
    let err = err.expect_err("refused");
    assert!(
        matches!(&err, DockError::Provider(p) if p.status == 422),
        "{err:?}"
    );
    let steps = run.ctx.records().to_vec();
    engine::unwind(&adapter(), &mut run.ctx, &dock, &steps)
        .await
        .expect("unwinds");
    assert!(sb.domains().is_empty(), "left behind: {:?}", sb.domains());
}

#[tokio::test]
async fn bad_domain_config_is_refused_naming_the_field() {
    let schema = adapter()
        .config_schema(stackdock_core::ResourceKind::Domain)
        .expect("domains are supported");
    let twenty_one: Vec<Value> = (0..21)
        .map(|i| json!({"type": "A", "name": format!("h{i}"), "data": "192.0.2.1"}))
        .collect();
    for (bad, field) in [
        (json!({"name": "localhost"}), "name"),
        (json!({"name": "exa mple.com"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({}), "name"),
        (
            json!({"name": "a.com", "ip_address": "1.2.3"}),
            "ip_address",
        ),
        (
            json!({"name": "a.com", "records": [{"type": "MX", "data": "mail.a.com"}]}),
            "records[0]",
        ),
        (
            json!({"name": "a.com", "records": [{"type": "PTR", "data": "x"}]}),
            "records[0].type",
        ),
        (
            json!({"name": "a.com", "records": [{"type": "A", "name": "a b", "data": "192.0.2.1"}]}),
            "records[0].name",
        ),
        (json!({"name": "a.com", "records": twenty_one}), "records"),
        (json!({"name": "a.com", "zone": "x"}), "zone"),
    ] {
        let err = schema.validate(&config(bad.clone())).expect_err("refused");
        assert_eq!(err.field, field, "{bad}: {err}");
    }
    let json = schema.json();
    assert_eq!(json["required"], json!(["name"]));
    assert_eq!(json["properties"]["records"]["maxItems"], 20);
    // Only the name is needed.
    assert_eq!(
        schema.validate(&config(json!({"name": "example.com"}))),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_create_is_sent_again_within_the_docks_budget() {
    let key = canary();
    let sb = sandbox(&key, std::time::Duration::ZERO).await;
    let dock = dock(&sb, &key);
    sb.inject(Fault::rate_limited(Some("POST"), "/v2/domains", 1, 1));
    let mut run = Run::new(&dock);
    adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "busy.example.com"})),
        )
        .await
        .expect("provisioned");
    let posts = requests_to(&sb, "POST", "/v2/domains");
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 201]
    );
    // The second try waited for the dock's budget, which the 429 paused.
    assert!(posts[1].at.duration_since(posts[0].at) >= std::time::Duration::from_millis(900));
    let created = step(&run, "domain_created");
    assert_eq!(
        created.output["adopted"], false,
        "a 429 did nothing: no look-up"
    );
    assert_eq!(sb.domains().len(), 1);
}
