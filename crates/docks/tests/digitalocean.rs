//! The DigitalOcean adapter against the DigitalOcean sandbox: provisioning, refresh, delete,
//! discovery, and the create-exactly-once rules (adopt by marker, skip a recorded create,
//! stop when a checkpoint cannot be written).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stackdock_core::{Provider, ResourceDetails, ResourceKind, Step, StepStatus};
use stackdock_docks::adapter::provision;
use stackdock_docks::{DockAdapter, DockError};
use stackdock_sandbox::Fault;
use support::{MemRecorder, Run, adapter, canary, dock, requests_to, sandbox, server_config};

const READY_AFTER: Duration = Duration::from_millis(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_server_waits_for_active_and_records_one_create_step() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    assert!(observed.ready);
    assert_eq!(observed.status.as_deref(), Some("active"));
    assert_eq!(observed.marker.as_ref(), Some(&run.marker));
    let ResourceDetails::Server(details) = &observed.details else {
        panic!("a droplet is a server: {:?}", observed.details);
    };
    let ipv4 = details
        .ipv4
        .as_deref()
        .expect("an active droplet has an IPv4");
    assert!(ipv4.parse::<std::net::Ipv4Addr>().is_ok(), "{ipv4}");
    assert_eq!(details.region.as_deref(), Some("nyc3"));
    assert_eq!(details.size.as_deref(), Some("s-1vcpu-1gb"));

    // The provider holds exactly one droplet, tagged with the marker so it can be found again.
    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1);
    assert_eq!(droplets[0]["id"].to_string(), observed.provider_resource_id);
    let tags: Vec<&str> = droplets[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&run.marker.as_str()), "{tags:?}");

    // Exactly one step, recorded before polling began, carrying the provider id and its undo.
    let steps = run.recorder.steps();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].name, "create");
    assert_eq!(steps[0].index, 0);
    assert_eq!(steps[0].status, StepStatus::Done);
    assert_eq!(steps[0].operation_id, run.operation_id);
    assert_eq!(
        steps[0].output,
        json!({"provider_resource_id": observed.provider_resource_id, "adopted": false})
    );
    assert_eq!(
        steps[0].undo,
        json!({"delete_droplet": observed.provider_resource_id})
    );
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);

    // Watchers were told of each status change while it polled, once per change.
    let reported = run.recorder.progress();
    let polls = requests_to(
        &sb,
        "GET",
        &format!("/v2/droplets/{}", observed.provider_resource_id),
    );
    assert!(!polls.is_empty());
    assert_eq!(reported.last(), Some(&Some("active".to_string())));
    assert!(
        reported.windows(2).all(|w| w[0] != w[1]),
        "reported without a change: {reported:?}"
    );
    assert!(reported.len() <= polls.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_sees_a_droplet_until_it_is_deleted_and_deleting_twice_succeeds() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let droplet = sb.create_droplet_directly("db-1", "fra1", "s-1vcpu-2gb", "debian-12-x64", &[]);
    let id = droplet["id"].to_string();
    let ado = adapter();
    let mut run = Run::new(&dock, 1, Vec::new());

    let seen = ado
        .refresh(&mut run.ctx, &dock, ResourceKind::Server, &id)
        .await
        .expect("refresh")
        .expect("the droplet exists");
    assert_eq!(seen.provider_resource_id, id);
    assert_eq!(seen.name, "db-1");
    assert!(seen.ready);
    assert_eq!(seen.marker, None, "made outside StackDock, so no marker");
    assert_eq!(seen.full_api_data["id"], droplet["id"]);

    ado.deprovision(&mut run.ctx, &dock, ResourceKind::Server, &id)
        .await
        .expect("first delete");
    assert!(sb.droplets().is_empty());
    // A resumed deprovision deletes again; DigitalOcean's 404 means the work is done.
    ado.deprovision(&mut run.ctx, &dock, ResourceKind::Server, &id)
        .await
        .expect("deleting what is gone succeeds");
    let deletes = requests_to(&sb, "DELETE", &format!("/v2/droplets/{id}"));
    assert_eq!(
        deletes.iter().map(|r| r.status).collect::<Vec<_>>(),
        [204, 404]
    );

    let after = ado
        .refresh(&mut run.ctx, &dock, ResourceKind::Server, &id)
        .await
        .expect("a 404 on refresh is an answer, not an error");
    assert_eq!(after, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_every_droplet_across_pages() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    // More than one page of 200, with one droplet StackDock made among them.
    for n in 0..204 {
        sb.create_droplet_directly(
            &format!("bulk-{n}"),
            "nyc3",
            "s-1vcpu-1gb",
            "ubuntu-24-04-x64",
            &[],
        );
    }
    sb.create_droplet_directly(
        "ours",
        "nyc3",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &[run.marker.as_str()],
    );

    let found = adapter()
        .discover(&mut run.ctx, &dock)
        .await
        .expect("discover");

    assert_eq!(found.len(), 205);
    let mut ids: Vec<&str> = found
        .iter()
        .map(|o| o.provider_resource_id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 205, "a droplet was listed twice");
    let ours: Vec<_> = found.iter().filter(|o| o.marker.is_some()).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].marker.as_ref(), Some(&run.marker));
    let pages: Vec<Option<String>> = requests_to(&sb, "GET", "/v2/droplets")
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(
        pages,
        [
            Some("page=1&per_page=200".to_string()),
            Some("page=2&per_page=200".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_servers_are_supported_and_other_kinds_answer_unsupported() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    assert_eq!(ado.provider(), Provider::DigitalOcean);
    assert_eq!(ado.kinds(), [ResourceKind::Server]);

    let schema = ado
        .config_schema(ResourceKind::Server)
        .expect("servers have a schema");
    let required: Vec<&str> = schema
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    assert_eq!(required, ["name", "region", "size", "image"]);
    assert!(schema.validate(&server_config("web-1")).is_ok());
    let mut bad = server_config("web_1");
    assert_eq!(schema.validate(&bad).unwrap_err().field, "name");
    bad.remove("name");
    assert_eq!(schema.validate(&bad).unwrap_err().field, "name");

    let mut run = Run::new(&dock, 1, Vec::new());
    for kind in [
        ResourceKind::WebService,
        ResourceKind::Domain,
        ResourceKind::Database,
    ] {
        assert!(ado.config_schema(kind).is_none(), "{kind}");
        let err = provision(&ado, kind, &mut run.ctx, &dock, &server_config("x"))
            .await
            .expect_err("unsupported");
        assert!(
            matches!(err, DockError::Unsupported { provider: Provider::DigitalOcean, kind: k } if k == kind),
            "{err:?}"
        );
        assert_eq!(err.code(), "unsupported");
        let refreshed = ado.refresh(&mut run.ctx, &dock, kind, "1").await;
        assert!(matches!(refreshed, Err(DockError::Unsupported { .. })));
        let deleted = ado.deprovision(&mut run.ctx, &dock, kind, "1").await;
        assert!(matches!(deleted, Err(DockError::Unsupported { .. })));
    }
    // Nothing reached the provider for a kind it was never going to handle.
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_adopts_the_droplet_a_lost_record_left_behind() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let resource = stackdock_core::ResourceId::new();

    // Run 1 creates the droplet, then cannot record it (the store refused, the worker died).
    let mut first = Run::with(&dock, resource, 1, Vec::new(), MemRecorder::refusing());
    let err = ado
        .provision_server(&mut first.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("the checkpoint was refused");
    assert!(matches!(err, DockError::Checkpoint(_)), "{err:?}");
    assert_eq!(sb.droplets().len(), 1);

    // Run 2 of the same operation knows nothing of it but the marker.
    let mut second = Run::with(&dock, resource, 2, Vec::new(), MemRecorder::default());
    let observed = ado
        .provision_server(&mut second.ctx, &dock, &server_config("web-1"))
        .await
        .expect("adopted");

    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1, "a second droplet was created");
    assert_eq!(observed.provider_resource_id, droplets[0]["id"].to_string());
    assert_eq!(
        requests_to(&sb, "POST", "/v2/droplets").len(),
        1,
        "run 2 must not POST"
    );
    let steps = second.recorder.steps();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        steps[0].output,
        json!({"provider_resource_id": observed.provider_resource_id, "adopted": true})
    );
    // The lookup was by the marker's tag, journaled with its query.
    assert!(
        second.recorder.calls().iter().any(|c| c.method == "GET"
            && c.path
                == format!(
                    "/v2/droplets?page=1&per_page=200&tag_name={}",
                    second.marker
                )),
        "{:?}",
        second.recorder.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_adopts_a_droplet_found_by_marker_without_posting() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 2, Vec::new());
    // Someone else's droplet must not be mistaken for ours.
    sb.create_droplet_directly("other", "nyc3", "s-1vcpu-1gb", "ubuntu-24-04-x64", &["web"]);
    let ours = sb.create_droplet_directly(
        "web-1",
        "nyc3",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &[run.marker.as_str()],
    );

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("adopted");

    assert_eq!(observed.provider_resource_id, ours["id"].to_string());
    assert!(requests_to(&sb, "POST", "/v2/droplets").is_empty());
    assert_eq!(sb.droplets().len(), 2);
    let steps = run.recorder.steps();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].output["adopted"], true);
    assert_eq!(
        steps[0].output["provider_resource_id"],
        observed.provider_resource_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_with_a_recorded_create_only_polls() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let existing =
        sb.create_droplet_directly("web-1", "nyc3", "s-1vcpu-1gb", "ubuntu-24-04-x64", &[]);
    let id = existing["id"].to_string();
    let op = stackdock_core::OperationId::new();
    let recorded = Step {
        operation_id: op,
        index: 0,
        name: "create".into(),
        status: StepStatus::Done,
        output: json!({"provider_resource_id": id, "adopted": false}),
        undo: json!({"delete_droplet": id}),
        at: chrono::Utc::now(),
    };
    let mut run = Run::new(&dock, 2, vec![recorded]);

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    assert_eq!(observed.provider_resource_id, id);
    let requests = sb.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.path == format!("/v2/droplets/{id}")),
        "only the poll may reach the provider: {requests:?}"
    );
    assert!(
        run.recorder.steps().is_empty(),
        "the create was already recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_create_failures_are_retried_into_one_droplet() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    // Two failures fit in the three tries of the retry policy.
    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 503, 2));

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned on the third try");

    assert_eq!(sb.droplets().len(), 1);
    let posts: Vec<u16> = requests_to(&sb, "POST", "/v2/droplets")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [503, 503, 202]);
    // Between tries the marker was looked up, in case a failed try had created it after all.
    let lookups = requests_to(&sb, "GET", "/v2/droplets");
    assert_eq!(lookups.len(), 2, "{lookups:?}");
    let steps = run.recorder.steps();
    assert_eq!(steps[0].output["adopted"], false);
    assert_eq!(
        steps[0].output["provider_resource_id"],
        observed.provider_resource_id
    );
    // The journal numbers the tries of the create.
    let post_attempts: Vec<(u32, Option<u16>)> = run
        .recorder
        .calls()
        .iter()
        .filter(|c| c.method == "POST")
        .map(|c| (c.attempt, c.status))
        .collect();
    assert_eq!(
        post_attempts,
        [(1, Some(503)), (2, Some(503)), (3, Some(202))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_is_adopted_without_a_second_post() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    // The droplet is made, the answer is a 500.
    sb.inject(Fault::lose_response(Some("POST"), "/v2/droplets", 1));

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1);
    assert_eq!(observed.provider_resource_id, droplets[0]["id"].to_string());
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    assert_eq!(run.recorder.steps()[0].output["adopted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_never_answers_is_adopted_after_the_request_timeout() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    run.ctx.retry.request_timeout = Duration::from_millis(300);
    // The droplet is made but its answer comes long after the client gave up.
    sb.inject(Fault::delay(
        Some("POST"),
        "/v2/droplets",
        Duration::from_secs(3),
        1,
    ));

    let observed = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    assert_eq!(sb.droplets().len(), 1);
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    let step = &run.recorder.steps()[0];
    assert_eq!(step.output["adopted"], true);
    assert_eq!(
        step.output["provider_resource_id"],
        observed.provider_resource_id
    );
    let post = run
        .recorder
        .calls()
        .into_iter()
        .find(|c| c.method == "POST")
        .expect("the create is journaled");
    assert_eq!(post.status, None, "no answer came: {post:?}");
    assert!(post.error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_still_failing_after_every_try_is_unavailable_and_creates_nothing() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 503, 100));

    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("unavailable");

    assert!(
        matches!(
            &err,
            DockError::Unavailable { provider: Provider::DigitalOcean, detail, .. }
                if detail.contains("503") && detail.contains("service_unavailable")
        ),
        "{err:?}"
    );
    assert!(err.is_transient(), "the engine must be free to retry later");
    assert_eq!(
        requests_to(&sb, "POST", "/v2/droplets").len(),
        run.ctx.retry.max_attempts as usize
    );
    assert!(sb.droplets().is_empty());
    assert!(run.recorder.steps().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_checkpoint_stops_the_adapter_before_it_polls() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::with(
        &dock,
        stackdock_core::ResourceId::new(),
        1,
        Vec::new(),
        MemRecorder::refusing(),
    );

    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("the checkpoint was refused");

    assert!(matches!(err, DockError::Checkpoint(_)), "{err:?}");
    assert!(!err.is_transient());
    let requests = sb.requests();
    let post = requests
        .iter()
        .position(|r| r.method == "POST")
        .expect("the create was sent");
    assert!(
        requests[post + 1..].is_empty(),
        "the adapter went on without a record: {requests:?}"
    );
    assert!(run.ctx.step("create").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_refusal_of_the_create_is_permanent_and_in_its_own_words() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock, 1, Vec::new());
    let mut config = server_config("web-1");
    // The schema accepts any slug; only DigitalOcean knows this size does not exist.
    config.insert("size".into(), json!("s-64vcpu-1tb"));

    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &config)
        .await
        .expect_err("refused");

    let DockError::Provider(p) = &err else {
        panic!("expected a provider error, got {err:?}");
    };
    assert_eq!(p.status, 422);
    assert_eq!(p.code, "unprocessable_entity");
    assert_eq!(
        p.message,
        "You specified an invalid size for Droplet creation."
    );
    assert!(!err.is_transient());
    assert_eq!(err.code(), "unprocessable_entity");
    // A 4xx is not retried.
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    assert!(sb.droplets().is_empty());
}
