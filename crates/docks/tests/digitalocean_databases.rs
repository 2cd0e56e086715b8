//! DigitalOcean database clusters against the sandbox, where the conformance suite cannot
//! look: `doctl`'s defaults, readiness at `online` through one listing, credentials that
//! never leave the client, and bad config refused naming the field.

mod support;

use std::time::Duration;

use serde_json::{Map, Value, json};
use stackdock_core::redact::encoded_forms;
use stackdock_core::{ResourceDetails, ResourceKind, StepStatus};
use stackdock_docks::{DockAdapter, DockError, Progress, Tracked};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig};
use support::{Run, adapter, canary, dock, requests_to, sandbox_with};

/// A sandbox whose clusters are online as soon as they are made, unless held.
async fn sandbox(key: &str) -> DigitalOceanSandbox {
    sandbox_with(DoSandboxConfig {
        tokens: vec![key.to_string()],
        database_ready_after: Duration::ZERO,
        ..DoSandboxConfig::default()
    })
    .await
}

fn config(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_needs_only_a_name_and_is_ready_when_online() {
    let key = canary();
    let sb = sandbox(&key).await;
    sb.hold_databases_creating(true);
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    let progress = ado
        .provision_database(&mut run.ctx, &dock, &config(json!({"name": "orders"})))
        .await
        .expect("provisioned");
    let Progress::Pending { status, .. } = progress else {
        panic!("a new cluster is still creating: {progress:?}")
    };
    assert_eq!(status.as_deref(), Some("creating"));

    // The defaults `doctl databases create` uses.
    let sent = requests_to(&sb, "POST", "/v2/databases");
    let body = sent[0].body.as_ref().expect("a JSON body");
    assert_eq!(body["engine"], "pg");
    assert_eq!(body["size"], "db-s-1vcpu-1gb");
    assert_eq!(body["region"], "nyc1");
    assert_eq!(body["num_nodes"], 1);
    assert_eq!(
        body["tags"],
        json!(["stackdock", run.marker.as_str()]),
        "the shared tag and the marker"
    );

    let target = run.tracked(ResourceKind::Database).expect("tracks the id");
    let check = async |ctx: &mut stackdock_docks::Ctx| {
        ado.observe_many(
            ctx,
            &dock,
            ResourceKind::Database,
            std::slice::from_ref(&target),
        )
        .await
        .expect("observed")
        .pop()
        .flatten()
        .expect("shown")
    };
    let held = check(&mut run.ctx).await;
    assert!(!held.ready, "creating is not ready");
    assert_eq!(held.status.as_deref(), Some("creating"));
    sb.hold_databases_creating(false);
    let online = check(&mut run.ctx).await;
    assert!(online.ready);
    assert_eq!(online.status.as_deref(), Some("online"));
    assert_eq!(online.marker.as_ref(), Some(&run.marker));
    let ResourceDetails::Database(details) = &online.details else {
        panic!("{:?}", online.details)
    };
    assert_eq!(details.engine.as_deref(), Some("pg"));
    assert_eq!(details.region.as_deref(), Some("nyc1"));
    assert!(
        details
            .host
            .as_deref()
            .is_some_and(|h| h.starts_with("orders-"))
    );
    // Both checks were one listing by the shared tag each, no read by id.
    let lists = requests_to(&sb, "GET", "/v2/databases");
    assert_eq!(lists.len(), 2);
    assert!(
        lists
            .iter()
            .all(|r| r.query.as_deref() == Some("tag_name=stackdock"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_credentials_never_leave_the_client() {
    let key = canary();
    let sb = sandbox(&key).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    let progress = ado
        .provision_database(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "secrets", "num_nodes": 2})),
        )
        .await
        .expect("provisioned");
    let target = run.tracked(ResourceKind::Database).expect("tracked");
    let seen = support::engine::until_ready(&ado, &mut run.ctx, &dock, &target, progress).await;
    let found = ado
        .find_by_marker(&mut run.ctx, &dock, ResourceKind::Database, &run.marker)
        .await
        .expect("looked up")
        .expect("found");
    let discovered = ado.discover(&mut run.ctx, &dock).await.expect("discovered");

    let cluster = sb.databases().pop().expect("the cluster");
    let password = cluster["connection"]["password"]
        .as_str()
        .expect("the sandbox shows it")
        .to_string();
    let uri = cluster["connection"]["uri"]
        .as_str()
        .expect("uri")
        .to_string();
    assert!(uri.contains(&password));

    let everything = format!(
        "{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}",
        seen.full_api_data,
        found.full_api_data,
        discovered,
        seen,
        run.recorder.steps(),
        run.recorder.calls()
    );
    for form in encoded_forms(&password) {
        assert!(
            !everything.contains(&form),
            "the cluster's password ({form}) left the client"
        );
    }
    // What is not a credential is kept.
    assert_eq!(
        seen.full_api_data["connection"]["host"],
        cluster["connection"]["host"]
    );
    assert_eq!(seen.full_api_data["users"][0]["name"], "doadmin");
    assert!(seen.full_api_data["standby_connection"]["port"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cluster_leaves_nothing_to_look_for() {
    let key = canary();
    let sb = sandbox(&key).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_database(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "big", "size": "db-s-99vcpu"})),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, DockError::Provider(p) if p.status == 422),
        "{err:?}"
    );
    let records = run.ctx.records();
    let sent = records
        .iter()
        .find(|s| s.name == "cluster_create_sent")
        .expect("recorded");
    assert_eq!(sent.status, StepStatus::Undone);
    assert!(sb.databases().is_empty());
    assert_eq!(sb.database_creates_by_tag(run.marker.as_str()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_cluster_without_the_shared_tag_is_read_by_id() {
    let key = canary();
    let sb = sandbox(&key).await;
    let dock = dock(&sb, &key);
    let theirs = sb.create_database_directly("theirs", "mysql", "fra1", "db-s-1vcpu-1gb", &[]);
    let target = Tracked {
        kind: ResourceKind::Database,
        provider_resource_id: theirs["id"].as_str().expect("id").to_string(),
        marker: None,
        last_seen: theirs.clone(),
    };
    let mut run = Run::new(&dock);
    let seen = adapter()
        .observe_many(&mut run.ctx, &dock, ResourceKind::Database, &[target])
        .await
        .expect("observed");
    assert_eq!(seen[0].as_ref().map(|o| o.name.as_str()), Some("theirs"));
    assert_eq!(
        requests_to(
            &sb,
            "GET",
            &format!("/v2/databases/{}", theirs["id"].as_str().unwrap())
        )
        .len(),
        1
    );
}

#[tokio::test]
async fn bad_database_config_is_refused_naming_the_field() {
    let schema = adapter()
        .config_schema(ResourceKind::Database)
        .expect("databases are supported");
    for (bad, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "Orders"}), "name"),
        (json!({"name": "db", "engine": "postgres"}), "engine"),
        (json!({"name": "db", "engine": "redis"}), "engine"),
        (json!({"name": "db", "num_nodes": 4}), "num_nodes"),
        (json!({"name": "db", "num_nodes": 0}), "num_nodes"),
        (json!({"name": "db", "region": "NYC1"}), "region"),
        (json!({"name": "db", "tags": ["ok", ""]}), "tags[1]"),
        (json!({"name": "db", "password": "x"}), "password"),
    ] {
        let err = schema.validate(&config(bad.clone())).expect_err("refused");
        assert_eq!(err.field, field, "{bad}: {err}");
    }
    let json = schema.json();
    assert_eq!(json["required"], json!(["name"]));
    assert_eq!(json["properties"]["engine"]["default"], "pg");
    assert_eq!(json["properties"]["size"]["default"], "db-s-1vcpu-1gb");
    assert_eq!(json["properties"]["region"]["default"], "nyc1");
    assert_eq!(json["properties"]["num_nodes"]["default"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_create_is_sent_again_within_the_docks_budget() {
    let key = canary();
    let sb = sandbox(&key).await;
    let dock = dock(&sb, &key);
    sb.inject(stackdock_sandbox::Fault::rate_limited(
        Some("POST"),
        "/v2/databases",
        1,
        1,
    ));
    let mut run = Run::new(&dock);
    adapter()
        .provision_database(&mut run.ctx, &dock, &config(json!({"name": "busy"})))
        .await
        .expect("provisioned");
    let posts = requests_to(&sb, "POST", "/v2/databases");
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 201]
    );
    assert!(posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(900));
    assert!(
        requests_to(&sb, "GET", "/v2/databases").is_empty(),
        "a 429 did nothing: no look-up by marker"
    );
    assert_eq!(sb.database_creates_by_tag(run.marker.as_str()), 1);
}
