//! The DigitalOcean adapter against the DigitalOcean sandbox, where the generic conformance
//! suite (`tests/adapters.rs`) cannot look: the exact calls, steps and journal entries behind
//! a provision, batched checks by the shared tag, discovery across pages, the
//! create-exactly-once rules for each way a create's answer can go wrong, and GPU droplets,
//! which only their own listing shows.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stackdock_core::{Provider, ResourceDetails, ResourceKind, StepStatus};
use stackdock_docks::adapter::provision;
use stackdock_docks::{DockAdapter, DockError, Progress, Tracked};
use stackdock_sandbox::Fault;
use support::{
    MemRecorder, Run, Stop, adapter, canary, dock, engine, marker_lookups, requests_to, sandbox,
    server_config,
};

const READY_AFTER: Duration = Duration::from_millis(150);

/// What one check of `target` shows; `None` if it is taken for gone.
async fn observe_one(
    run: &mut Run,
    dock: &stackdock_docks::DockAccess,
    target: &Tracked,
) -> Option<stackdock_docks::Observed> {
    adapter()
        .observe_many(
            &mut run.ctx,
            dock,
            target.kind,
            std::slice::from_ref(target),
        )
        .await
        .expect("observed")
        .remove(0)
}

fn tags(droplet: &Value) -> Vec<&str> {
    droplet["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provision_records_create_sent_then_created_and_is_checked_until_active() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);

    let progress = ado
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    // It does not wait for the droplet: the engine's checks do.
    let Progress::Pending { status, check_in } = &progress else {
        panic!("a new droplet is not ready at once: {progress:?}");
    };
    assert_eq!(status.as_deref(), Some("new"));
    assert!(*check_in > Duration::ZERO);

    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1);
    let id = droplets[0]["id"].to_string();
    let droplet_tags = tags(&droplets[0]);
    assert!(
        droplet_tags.contains(&run.marker.as_str()),
        "{droplet_tags:?}"
    );
    assert!(droplet_tags.contains(&"stackdock"), "{droplet_tags:?}");

    // Two steps, the first before the create went out, the second naming the droplet.
    let recorded = run.recorder.recorded();
    let steps: Vec<_> = recorded.iter().map(|r| &r.step).collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        steps[0].output,
        json!({"step": "create_sent", "marker": run.marker})
    );
    assert_eq!(
        steps[1].output,
        json!({"step": "created", "droplet_id": id, "adopted": false})
    );
    for (index, step) in steps.iter().enumerate() {
        assert_eq!(step.index, index as i64);
        assert_eq!(step.status, StepStatus::Done);
        assert_eq!(step.operation_id, run.operation_id);
    }
    assert_eq!(
        (steps[0].name.as_str(), steps[1].name.as_str()),
        ("create_sent", "created")
    );
    assert_eq!(
        recorded[0].after_calls, 0,
        "create_sent precedes every call"
    );
    assert_eq!(recorded[0].tracks, None);
    assert_eq!(recorded[1].tracks.as_deref(), Some(id.as_str()));
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);

    let target = run.tracked(ResourceKind::Server).expect("tracked");
    let observed = engine::until_ready(&ado, &mut run.ctx, &dock, &target, progress).await;
    assert!(observed.ready);
    assert_eq!(observed.provider_resource_id, id);
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
    assert_eq!(details.image.as_deref(), Some("ubuntu-24-04-x64"));
    assert_eq!(observed.full_api_data["id"], droplets[0]["id"]);

    // Every check was one listing by the shared tag, never a read per droplet.
    let checks = requests_to(&sb, "GET", "/v2/droplets");
    assert!(!checks.is_empty());
    for check in &checks {
        assert_eq!(
            check.query.as_deref(),
            Some("page=1&per_page=200&tag_name=stackdock")
        );
    }
    assert!(requests_to(&sb, "GET", &format!("/v2/droplets/{id}")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_key_given_by_id_are_sent_as_numbers() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    // An image's id, as a snapshot or custom image (which have no slug) is named.
    let other = sb.create_droplet_directly("other", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[]);
    let image_id = other["image"]["id"].as_u64().expect("image id");
    let mut config = server_config("web-1");
    config.insert("image".into(), json!(image_id.to_string()));
    config.insert(
        "ssh_keys".into(),
        json!(["512190", "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]),
    );

    adapter()
        .provision_server(&mut run.ctx, &dock, &config)
        .await
        .expect("provisioned");

    let sent = requests_to(&sb, "POST", "/v2/droplets");
    let body = sent[0].body.as_ref().expect("a JSON body");
    assert_eq!(body["image"], json!(image_id));
    assert_eq!(
        body["ssh_keys"],
        json!([512190, "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"])
    );
    let made = sb
        .droplets()
        .into_iter()
        .find(|d| d["name"] == "web-1")
        .expect("made");
    assert_eq!(made["image"]["slug"], "debian-12-x64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_many_answers_in_the_order_asked_from_one_listing() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut ours = Vec::new();
    for name in ["web-1", "web-2"] {
        let mut run = Run::new(&dock);
        ado.provision_server(&mut run.ctx, &dock, &server_config(name))
            .await
            .expect("provisioned");
        ours.push(run.tracked(ResourceKind::Server).expect("tracked"));
    }
    let outside = sb.create_droplet_directly("db-1", "fra1", "s-1vcpu-2gb", "debian-12-x64", &[]);
    let manual = |id: String| Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: id,
        marker: None,
        last_seen: serde_json::Value::Null,
    };
    // Last seen carrying the shared tag, as every droplet StackDock made is once checked.
    let gone_ours = Tracked {
        provider_resource_id: "990001".into(),
        last_seen: json!({"tags": ["stackdock"]}),
        ..ours[0].clone()
    };
    let targets = [
        ours[1].clone(),
        manual(outside["id"].to_string()),
        gone_ours,
        ours[0].clone(),
        manual("990002".into()),
    ];
    let before = sb.requests().len();
    let mut run = Run::new(&dock);

    let seen = ado
        .observe_many(&mut run.ctx, &dock, ResourceKind::Server, &targets)
        .await
        .expect("observed");

    let ids: Vec<Option<&str>> = seen
        .iter()
        .map(|o| o.as_ref().map(|o| o.provider_resource_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            Some(targets[0].provider_resource_id.as_str()),
            Some(targets[1].provider_resource_id.as_str()),
            None,
            Some(targets[3].provider_resource_id.as_str()),
            None,
        ]
    );
    assert_eq!(seen[1].as_ref().unwrap().marker, None);
    // One listing for what StackDock made; a read each for the others (one of them gone).
    let calls: Vec<(String, String)> = sb.requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let get = |p: &str| ("GET".to_string(), p.to_string());
    assert_eq!(
        calls,
        [
            get("/v2/droplets"),
            get(&format!("/v2/droplets/{}", outside["id"])),
            get("/v2/droplets/990002"),
        ]
    );
    assert!(
        ado.observe_many(&mut run.ctx, &dock, ResourceKind::Server, &[])
            .await
            .expect("nothing to observe")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_deletes_and_deleting_twice_succeeds() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let droplet = sb.create_droplet_directly("db-1", "fra1", "s-1vcpu-2gb", "debian-12-x64", &[]);
    let id = droplet["id"].to_string();
    let ado = adapter();
    let mut run = Run::new(&dock);
    let target = Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: id.clone(),
        marker: None,
        last_seen: serde_json::Value::Null,
    };

    let progress = ado
        .deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("first delete");
    engine::until_gone(&ado, &mut run.ctx, &dock, &target, progress).await;
    assert!(sb.droplets().is_empty());
    // A resumed deprovision deletes again; DigitalOcean's 404 means the work is done.
    ado.deprovision(&mut run.ctx, &dock, &target)
        .await
        .expect("deleting what is gone succeeds");
    let deletes = requests_to(&sb, "DELETE", &format!("/v2/droplets/{id}"));
    assert_eq!(
        deletes.iter().map(|r| r.status).collect::<Vec<_>>(),
        [204, 404]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_every_droplet_across_pages() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
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
        &["stackdock", run.marker.as_str()],
    );

    // Paged by the listing's total, and by its links alone when its `meta.total` counts
    // only the page (one reading of the spec's words for it).
    for total_counts_page in [false, true] {
        sb.set_total_counts_page(total_counts_page);
        let asked_before = requests_to(&sb, "GET", "/v2/droplets").len();
        let found = adapter()
            .discover(&mut run.ctx, &dock)
            .await
            .expect("discover");

        assert_eq!(
            found.len(),
            205,
            "total counts the page: {total_counts_page}"
        );
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
        let mut pages: Vec<Option<String>> = requests_to(&sb, "GET", "/v2/droplets")
            .into_iter()
            .skip(asked_before)
            .map(|r| r.query)
            .collect();
        pages.sort();
        // Two pages of the plain listing, and the GPU droplets' own (none here).
        assert_eq!(
            pages,
            [
                Some("page=1&per_page=200".to_string()),
                Some("page=1&per_page=200&type=gpus".to_string()),
                Some("page=2&per_page=200".to_string())
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_domains_and_databases_are_supported_and_web_services_answer_unsupported() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    assert_eq!(ado.provider(), Provider::DigitalOcean);
    assert_eq!(
        ado.kinds(),
        [
            ResourceKind::Server,
            ResourceKind::Domain,
            ResourceKind::Database
        ]
    );

    let schema = ado
        .config_schema(ResourceKind::Server)
        .expect("servers have a schema");
    let required: Vec<&str> = schema.json()["required"]
        .as_array()
        .expect("required fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["name", "region", "size", "image"]);
    assert_eq!(schema.sensitive(), ["user_data"]);
    assert!(schema.validate(&server_config("web-1")).is_ok());
    let mut bad = server_config("web_1");
    assert_eq!(schema.validate(&bad).unwrap_err().field, "name");
    bad.remove("name");
    assert_eq!(schema.validate(&bad).unwrap_err().field, "name");

    let mut run = Run::new(&dock);
    let elsewhere = Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: "1".into(),
        marker: Some(run.marker.clone()),
        last_seen: serde_json::Value::Null,
    };
    for kind in [ResourceKind::WebService] {
        let unsupported = |r: Result<_, DockError>| matches!(r, Err(DockError::Unsupported { provider: Provider::DigitalOcean, kind: k }) if k == kind);
        assert!(ado.config_schema(kind).is_none(), "{kind}");
        let err = provision(&ado, kind, &mut run.ctx, &dock, &server_config("x"))
            .await
            .expect_err("unsupported");
        assert_eq!(err.code(), "unsupported");
        assert!(unsupported(Err(err)));
        let target = Tracked {
            kind,
            ..elsewhere.clone()
        };
        let observed = ado
            .observe_many(&mut run.ctx, &dock, kind, std::slice::from_ref(&target))
            .await;
        assert!(unsupported(observed.map(drop)));
        let found = ado
            .find_by_marker(&mut run.ctx, &dock, kind, &run.marker)
            .await;
        assert!(unsupported(found.map(drop)));
        let deleted = ado.deprovision(&mut run.ctx, &dock, &target).await;
        assert!(unsupported(deleted.map(drop)));
    }
    // Nothing reached the provider for a kind it was never going to handle.
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    assert!(run.recorder.steps().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_adopts_the_droplet_a_lost_record_left_behind() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();

    // Run 1 creates the droplet, then cannot record it (the store refused, the worker died).
    let mut first = Run::with(&dock, MemRecorder::stopping_at(2, Stop::Refuse));
    let err = ado
        .provision_server(&mut first.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("the checkpoint was refused");
    assert!(matches!(err, DockError::Checkpoint(_)), "{err:?}");
    assert_eq!(sb.droplets().len(), 1);

    // Run 2 of the same operation knows only that the create was sent.
    let kept = first.recorder.recorded();
    assert_eq!(kept.len(), 1);
    let mut second = first.resume(&dock, &kept);
    ado.provision_server(&mut second.ctx, &dock, &server_config("web-1"))
        .await
        .expect("adopted");

    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1, "a second droplet was created");
    let id = droplets[0]["id"].to_string();
    assert_eq!(
        requests_to(&sb, "POST", "/v2/droplets").len(),
        1,
        "run 2 must not POST"
    );
    let steps = second.recorder.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[1].output,
        json!({"step": "created", "droplet_id": id, "adopted": true})
    );
    assert_eq!(steps[1].index, 1);
    assert_eq!(second.recorder.tracks(), Some(id));
    // The lookup was by the marker's tag, journaled with its query.
    let lookup = format!(
        "/v2/droplets?page=1&per_page=200&tag_name={}",
        second.marker
    );
    let calls = second.recorder.calls();
    assert!(
        calls.iter().any(|c| c.method == "GET" && c.path == lookup),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_that_sent_the_create_but_finds_nothing_creates_once() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    // Run 1 recorded that it would send the create, then died before sending it.
    let mut first = Run::with(&dock, MemRecorder::stopping_at(1, Stop::FailAfterRecording));
    ado.provision_server(&mut first.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("stopped");
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());

    let mut second = first.resume(&dock, &first.recorder.recorded());
    ado.provision_server(&mut second.ctx, &dock, &server_config("web-1"))
        .await
        .expect("created");

    assert_eq!(marker_lookups(&sb, &second.marker).len(), 1);
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    assert_eq!(sb.creates_by_tag(second.marker.as_str()), 1);
    assert_eq!(second.recorder.steps()[1].output["adopted"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_with_the_droplet_recorded_calls_nothing() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut first = Run::new(&dock);
    ado.provision_server(&mut first.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");
    let before = sb.requests().len();

    let mut second = first.resume(&dock, &first.recorder.recorded());
    let progress = ado
        .provision_server(&mut second.ctx, &dock, &server_config("web-1"))
        .await
        .expect("resumed");

    assert!(matches!(progress, Progress::Pending { .. }), "{progress:?}");
    assert_eq!(
        sb.requests().len(),
        before,
        "{:?}",
        &sb.requests()[before..]
    );
    assert_eq!(second.recorder.steps().len(), 2, "nothing new recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_create_failures_are_retried_into_one_droplet() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    // Two failures fit in the three tries of the retry policy.
    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 503, 2));

    adapter()
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
    assert_eq!(marker_lookups(&sb, &run.marker).len(), 2);
    let steps = run.recorder.steps();
    assert_eq!(steps[1].output["adopted"], false);
    assert_eq!(
        steps[1].output["droplet_id"].as_str(),
        Some(sb.droplets()[0]["id"].to_string().as_str())
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

/// Provisions a droplet whose create's answer goes wrong as `fault` says, and checks that the
/// droplet the create made was adopted: one create, found by its marker, recorded as adopted.
async fn adopted_after(fault: impl FnOnce(&str) -> Fault, request_timeout: Option<Duration>) {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    if let Some(timeout) = request_timeout {
        run.ctx.retry.request_timeout = timeout;
    }
    sb.inject(fault("/v2/droplets"));

    adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    let droplets = sb.droplets();
    assert_eq!(droplets.len(), 1, "{droplets:?}");
    assert_eq!(sb.creates_by_tag(run.marker.as_str()), 1, "created twice");
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    assert_eq!(marker_lookups(&sb, &run.marker).len(), 1);
    let step = &run.recorder.steps()[1];
    assert_eq!(
        step.output,
        json!({"step": "created", "droplet_id": droplets[0]["id"].to_string(), "adopted": true})
    );
    let post = run
        .recorder
        .calls()
        .into_iter()
        .find(|c| c.method == "POST")
        .expect("the create is journaled");
    assert!(post.error.is_some(), "{post:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_droplet_that_listings_by_tag_leave_out_is_adopted_checked_discovered_and_unwound() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let a = adapter();
    let mut config = server_config("gpu-1");
    config.insert("size".into(), json!("gpu-h100x1-80gb"));
    // The create's answer is lost: the droplet must be found by its marker, which no listing
    // by tag shows (only `type=gpus` lists GPU droplets), not made a second time.
    sb.inject(Fault::lose_response(Some("POST"), "/v2/droplets", 1));
    let mut run = Run::new(&dock);
    a.provision_server(&mut run.ctx, &dock, &config)
        .await
        .expect("provisioned");
    assert_eq!(sb.droplets().len(), 1, "{:?}", sb.droplets());
    assert_eq!(sb.creates_by_tag(run.marker.as_str()), 1, "created twice");

    // A check of it as last seen (carrying the shared tag, whose listing leaves it out)
    // finds it rather than taking it for gone.
    let droplet = sb.droplets()[0].clone();
    let target = Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: droplet["id"].to_string(),
        marker: Some(run.marker.clone()),
        last_seen: droplet,
    };
    let seen = observe_one(&mut run, &dock, &target)
        .await
        .expect("a GPU droplet is not taken for gone");
    assert_eq!(seen.provider_resource_id, target.provider_resource_id);
    // Discovery lists it.
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert!(
        found
            .iter()
            .any(|o| o.provider_resource_id == target.provider_resource_id),
        "{found:?}"
    );
    // Undoing the create whose answer was lost deletes it.
    let sent = run.recorder.steps()[0].clone();
    assert_eq!(sent.name, "create_sent");
    a.undo(&mut run.ctx, &dock, &sent).await.expect("undone");
    assert!(sb.droplets().is_empty(), "{:?}", sb.droplets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_500_after_the_work_is_adopted() {
    adopted_after(|p| Fault::lose_response(Some("POST"), p, 1), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_cut_off_is_adopted() {
    adopted_after(|p| Fault::truncate(Some("POST"), p, 1), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_connection_drops_before_the_answer_is_adopted() {
    adopted_after(|p| Fault::disconnect(Some("POST"), p, 1), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_never_answers_is_adopted_after_the_request_timeout() {
    adopted_after(
        |p| Fault::delay(Some("POST"), p, Duration::from_secs(3), 1),
        Some(Duration::from_millis(300)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_a_create_is_sent_again_without_a_marker_lookup() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    // A 429 says DigitalOcean did nothing; there is nothing to look for.
    sb.inject(Fault::rate_limited(Some("POST"), "/v2/droplets", 1, 1));

    adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");

    let posts = requests_to(&sb, "POST", "/v2/droplets");
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 202]
    );
    let waited = posts[1].at.duration_since(posts[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "sent again after {waited:?}"
    );
    let lookups: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == "/v2/droplets"
                && r.query.as_deref().is_some_and(|q| q.contains("tag_name="))
        })
        .collect();
    assert!(lookups.is_empty(), "looked up after a 429: {lookups:?}");
    assert_eq!(sb.droplets().len(), 1);
    assert_eq!(run.recorder.steps()[1].output["adopted"], false);
    let journaled: Vec<(u32, Option<u16>)> = run
        .recorder
        .calls()
        .iter()
        .map(|c| (c.attempt, c.status))
        .collect();
    assert_eq!(journaled, [(1, Some(429)), (2, Some(202))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_still_failing_after_every_try_is_unavailable_and_creates_nothing() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
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
    // What is recorded says a droplet may exist: an unwind or a later run looks for it.
    let steps = run.recorder.steps();
    assert_eq!(
        steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["create_sent"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_checkpoint_stops_the_adapter_where_it_is() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);

    // Refused before the create: the create is never sent.
    let mut run = Run::with(&dock, MemRecorder::refusing());
    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("the checkpoint was refused");
    assert!(matches!(err, DockError::Checkpoint(_)), "{err:?}");
    assert!(!err.is_transient());
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    assert!(run.ctx.records().is_empty());

    // Refused after the create: nothing more is sent.
    let mut run = Run::with(&dock, MemRecorder::stopping_at(2, Stop::Refuse));
    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-2"))
        .await
        .expect_err("the checkpoint was refused");
    assert!(matches!(err, DockError::Checkpoint(_)), "{err:?}");
    let requests = sb.requests();
    assert_eq!(
        requests.len(),
        1,
        "the adapter went on without a record: {requests:?}"
    );
    assert_eq!(requests[0].method, "POST");
    let records = run.ctx.records();
    let names: Vec<&str> = records.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["create_sent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_the_adapter_after_the_step_is_recorded() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);

    // Cancelled as it recorded that it would create: kept, and nothing is created.
    let mut run = Run::with(&dock, MemRecorder::stopping_at(1, Stop::Cancel));
    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DockError::Cancelled), "{err:?}");
    assert_eq!(err.code(), "cancelled");
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    let records = run.ctx.records();
    let kept: Vec<&str> = records.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        kept,
        ["create_sent"],
        "the engine unwinds from the recorded step"
    );
    assert_eq!(run.recorder.steps().len(), 1);

    // Cancelled as it recorded the droplet: kept, and nothing more is called.
    let mut run = Run::with(&dock, MemRecorder::stopping_at(2, Stop::Cancel));
    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-2"))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DockError::Cancelled), "{err:?}");
    assert_eq!(sb.requests().len(), 1, "{:?}", sb.requests());
    let records = run.ctx.records();
    let kept: Vec<&str> = records.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(kept, ["create_sent", "created"]);
    assert_eq!(
        run.recorder.tracks(),
        Some(sb.droplets()[0]["id"].to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_deletes_what_each_step_made_and_only_that() {
    let key = canary();
    let sb = sandbox(&key, Duration::ZERO).await;
    let dock = dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    ado.provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect("provisioned");
    // Two more carrying the marker (as lost answers could leave), and one of someone else's.
    for name in ["web-1-a", "web-1-b"] {
        sb.create_droplet_directly(
            name,
            "nyc3",
            "s-1vcpu-1gb",
            "ubuntu-24-04-x64",
            &[run.marker.as_str()],
        );
    }
    let theirs = sb.create_droplet_directly(
        "theirs",
        "nyc3",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &["web"],
    );
    let steps = run.recorder.steps();

    // `created` deletes its droplet by id.
    ado.undo(&mut run.ctx, &dock, &steps[1])
        .await
        .expect("undone");
    assert_eq!(sb.droplets().len(), 3);
    // `create_sent` deletes whatever carries the marker.
    ado.undo(&mut run.ctx, &dock, &steps[0])
        .await
        .expect("undone");
    let left = sb.droplets();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], theirs["id"]);
    // Undoing again succeeds and changes nothing.
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("undone twice");
    assert_eq!(sb.droplets().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_refusal_of_the_create_is_permanent_and_in_its_own_words() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
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
    // A 4xx is not retried, and not looked up: DigitalOcean said what it did.
    assert_eq!(requests_to(&sb, "POST", "/v2/droplets").len(), 1);
    assert!(marker_lookups(&sb, &run.marker).is_empty());
    assert!(sb.droplets().is_empty());
}

#[tokio::test]
async fn a_create_refused_outright_leaves_nothing_to_look_for() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    sb.inject(Fault::error_with(
        Some("POST"),
        "/v2/droplets",
        422,
        "unprocessable_entity",
        "Size is not available in this region.",
        1,
    ));
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_server(&mut run.ctx, &dock, &server_config("web-1"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "unprocessable_entity");
    // The provider answered with a refusal, so no droplet can exist: the step that said one
    // might is recorded undone, and unwinding will not look for one.
    // The store keeps one record per step index, the last written.
    let steps = run.recorder.steps();
    assert!(steps.iter().all(|s| s.index == 0), "{steps:?}");
    let last = steps.last().expect("recorded");
    assert_eq!(
        (last.name.as_str(), last.status),
        ("create_sent", StepStatus::Undone)
    );
    assert!(marker_lookups(&sb, &run.marker).is_empty());
    assert!(sb.droplets().is_empty());
}

#[tokio::test]
async fn a_droplet_without_the_shared_tag_is_read_by_id_not_taken_for_gone() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let mut run = Run::new(&dock);
    // Tagged with its marker only, as droplets were before the shared tag: a listing by the
    // shared tag does not show it.
    let marker = run.marker.to_string();
    let old =
        sb.create_droplet_directly("web-1", "nyc3", "s-1vcpu-1gb", "debian-12-x64", &[&marker]);
    let target = Tracked {
        kind: ResourceKind::Server,
        provider_resource_id: old["id"].to_string(),
        marker: Some(run.marker.clone()),
        last_seen: old.clone(),
    };
    let seen = observe_one(&mut run, &dock, &target).await;
    assert!(
        seen.is_some(),
        "an existing droplet was taken for gone: {old} {:?}",
        sb.requests()
    );
    let reads = sb
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/v2/droplets/{}", old["id"]))
        .count();
    assert_eq!(reads, 1, "read by id once");

    // Last seen with the shared tag and no longer listed: gone, without a read per droplet.
    let mut tagged = old.clone();
    tagged["tags"] = json!([marker, "stackdock"]);
    let gone = Tracked {
        provider_resource_id: "990003".into(),
        last_seen: tagged,
        ..target
    };
    let before = sb.requests().len();
    let seen = adapter()
        .observe_many(&mut run.ctx, &dock, ResourceKind::Server, &[gone])
        .await
        .expect("observed");
    assert_eq!(seen, [None]);
    let after: Vec<String> = sb.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(after, ["/v2/droplets"], "one listing, no read by id");
}

/// A create DigitalOcean accepted and then could not carry out shows only in its create
/// action: the droplet stays `new`. Once it has been `new` for the adapter's limit, its
/// create action is asked about and an errored one fails the droplet in DigitalOcean's
/// terms, while a droplet on its way to `active` in the same check is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_droplet_whose_create_action_errored_fails_once_it_has_been_new_too_long() {
    let key = canary();
    let sb = sandbox(&key, READY_AFTER).await;
    let dock = dock(&sb, &key);
    let provision_one =
        |name: &'static str, ado: stackdock_docks::digitalocean::DigitalOceanAdapter| {
            let dock = dock.clone();
            async move {
                let mut run = Run::new(&dock);
                ado.provision_server(&mut run.ctx, &dock, &server_config(name))
                    .await
                    .expect("accepted");
                run.tracked(ResourceKind::Server).expect("tracked")
            }
        };
    sb.fail_droplet_creates(true);
    let failing = provision_one("web-errored", adapter()).await;
    sb.fail_droplet_creates(false);
    let healthy = provision_one("web-fine", adapter()).await;
    let targets = [failing.clone(), healthy.clone()];

    let observe = |ado: stackdock_docks::digitalocean::DigitalOceanAdapter| {
        let (dock, targets) = (dock.clone(), targets.clone());
        async move {
            ado.observe_many(
                &mut Run::new(&dock).ctx,
                &dock,
                ResourceKind::Server,
                &targets,
            )
            .await
            .expect("observed")
        }
    };

    // Under the default limit nobody asks: moments after the create is not long.
    let before = sb.requests().len();
    let seen = observe(adapter()).await;
    assert!(
        seen.iter().flatten().all(|o| o.failure.is_none()),
        "{seen:?}"
    );
    assert!(
        sb.requests()[before..]
            .iter()
            .all(|r| !r.path.ends_with("/actions")),
        "the create action was asked about too soon"
    );

    // With a limit already passed, the errored create fails its droplet once its action
    // has ended; the other turns ready and is left as it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = observe(adapter().with_stuck_after(Duration::ZERO)).await;
        let settled = seen[1].as_ref().is_some_and(|o| o.ready)
            && seen[0].as_ref().is_some_and(|o| o.failure.is_some());
        if settled {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled in time: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errored = seen[0].as_ref().expect("still there");
    assert_eq!(errored.status.as_deref(), Some("new"));
    let failure = errored.failure.as_ref().expect("failed");
    assert_eq!(failure.code, "create_errored");
    assert!(
        failure.message.contains(&failing.provider_resource_id),
        "{failure:?}"
    );
    let fine = seen[1].as_ref().expect("there");
    assert!(fine.ready && fine.failure.is_none(), "{fine:?}");
}
