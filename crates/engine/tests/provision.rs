//! Provision operations run by the engine against the DigitalOcean sandbox: how failures after
//! the create unwind, and how transient failures are rescheduled, resumed and finally given up.

mod support;

use std::time::Duration;

use stackdock_core::{OpState, Operation, Outcome, ProvisioningState, StepStatus};
use stackdock_engine::EngineError;
use stackdock_sandbox::Fault;
use stackdock_store::{Batch, PageRequest, Store, Write};
use support::{Options, assert_one_create_step, ipv4, spawn_engine, spawn_engine_with};

/// Runs a provision whose droplet is never ready in time, with `prepare` applied first, and
/// checks the unwind: droplet deleted, both steps undone, row and audit failed `not_ready`.
async fn assert_unwinds_after_create(t: &support::TestEngine) -> String {
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    let error = row.error.as_ref().expect("a failed row says why");
    assert_eq!(error.code, "not_ready");
    assert_eq!(row.provider_resource_id, None, "what it tracked is gone");

    // The droplet made by the create was deleted before the row settled.
    let steps = t.steps(op.id).await;
    let droplet = steps[1].output["droplet_id"]
        .as_str()
        .expect("the create was recorded")
        .to_string();
    assert_one_create_step(&steps, StepStatus::Undone, &droplet);
    assert!(
        t.sandbox.droplets().is_empty(),
        "{:?}",
        t.sandbox.droplets()
    );
    let deletes = t.requests("DELETE", &format!("/v2/droplets/{droplet}"));
    assert_eq!(deletes.last().map(|r| r.status), Some(204));
    // The delete is journaled for the resource like every other call.
    let calls = t
        .store
        .api_calls(t.actor.org_id, requested.id, &PageRequest::first(1000))
        .await
        .unwrap()
        .items;
    assert!(
        calls
            .iter()
            .any(|c| c.method == "DELETE" && c.status == Some(204)),
        "{calls:?}"
    );

    let audit = t.audit_of(&row).await;
    let outcomes: Vec<(&str, Outcome)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("server.provision", Outcome::Requested),
            ("server.provision", Outcome::Failure)
        ]
    );
    assert_eq!(audit[1].details["code"], "not_ready");
    droplet
}

fn never_ready() -> Options {
    Options {
        ready_after: Duration::from_secs(3600),
        wait_timeout: Duration::from_millis(300),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_droplet_never_ready_in_time_is_deleted_before_the_row_fails() {
    let t = spawn_engine_with(never_ready()).await;
    assert_unwinds_after_create(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_the_provider_refuses_keeps_unwinding_and_the_row_waits_for_it() {
    let t = spawn_engine_with(never_ready()).await;
    // The first two deletes are refused: the row must not settle while the droplet exists.
    t.sandbox.inject(Fault::error_with(
        Some("DELETE"),
        "/v2/droplets/",
        403,
        "forbidden",
        "You are not allowed to delete droplets.",
        2,
    ));
    let (requested, op) = t.provision("web-1").await;
    let started = std::time::Instant::now();
    let unwinding = loop {
        let current = t.operation(op.id).await;
        if current.unwind.is_some() && current.last_error.is_some() {
            break current;
        }
        assert!(started.elapsed() < support::DEADLINE, "{current:?}");
        if !t.run_one().await && t.observe_one().await == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    assert_eq!(unwinding.state, OpState::Queued);
    assert!(
        unwinding
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("not allowed to delete")),
        "{unwinding:?}"
    );
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioning);
    assert_eq!(t.droplet_ids().len(), 1, "the refused delete left it");

    // The provider lets the next delete through; the unwind finishes.
    let droplet = assert_unwinds_after_create_of(&t, requested.id, op.id).await;
    assert_eq!(
        t.requests("DELETE", &format!("/v2/droplets/{droplet}"))
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [403, 403, 204]
    );
}

/// Finishes an operation already under way and checks it unwound; the droplet's id.
async fn assert_unwinds_after_create_of(
    t: &support::TestEngine,
    rid: stackdock_core::ResourceId,
    op: stackdock_core::OperationId,
) -> String {
    let done = t.run_until_finished(op).await;
    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(rid).await;
    assert_eq!(row.error.map(|e| e.code).as_deref(), Some("not_ready"));
    let steps = t.steps(op).await;
    let droplet = steps[1].output["droplet_id"].as_str().unwrap().to_string();
    assert_one_create_step(&steps, StepStatus::Undone, &droplet);
    assert!(t.sandbox.droplets().is_empty());
    droplet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_fails_in_the_providers_words_with_nothing_to_look_for() {
    let t = spawn_engine().await;
    t.sandbox.inject(Fault::error_with(
        Some("POST"),
        "/v2/droplets",
        422,
        "unprocessable_entity",
        "Size is not available in this region.",
        1,
    ));
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    assert_eq!(done.attempt, 1, "a refusal is not retried");
    let row = t.resource(requested.id).await;
    let error = row.error.clone().expect("error");
    assert_eq!(error.code, "unprocessable_entity");
    assert_eq!(error.message, "Size is not available in this region.");
    // The provider refused the create outright, so nothing can carry the marker: the step
    // saying a create was sent is undone without a lookup.
    let steps = t.steps(op.id).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        (steps[0].name.as_str(), steps[0].status),
        ("create_sent", StepStatus::Undone)
    );
    let marker = row.marker.clone().unwrap();
    let lookups = t
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.query.as_deref().unwrap_or("").contains(marker.as_str()))
        .count();
    assert_eq!(lookups, 0);
    assert!(t.sandbox.droplets().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_provision_removes_what_it_created() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;
    assert!(t.run_one().await);
    assert_eq!(t.operation(op.id).await.state, OpState::Waiting);
    assert_eq!(t.droplet_ids().len(), 1);

    let (_, cancelled) = t
        .engine
        .request_cancel(t.actor, requested.id)
        .await
        .expect("a provision under way can be cancelled");
    assert_eq!(cancelled.id, op.id);
    // Woken at once: a worker can take it now, without waiting for its next check.
    assert_eq!(t.operation(op.id).await.state, OpState::Queued);

    let done = t.run_until_finished(op.id).await;
    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    assert_eq!(row.error.map(|e| e.code).as_deref(), Some("cancelled"));
    assert!(t.sandbox.droplets().is_empty());
    let actions: Vec<(String, Outcome)> = t
        .audit_of(&t.resource(requested.id).await)
        .await
        .into_iter()
        .map(|a| (a.action, a.outcome))
        .collect();
    assert!(
        actions.contains(&("server.cancel".to_string(), Outcome::Requested)),
        "{actions:?}"
    );
    // Nothing is under way any more, so there is nothing to cancel.
    let again = t.engine.request_cancel(t.actor, requested.id).await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_holds_no_worker_and_one_listing_checks_every_droplet() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let mut ops = Vec::new();
    for n in 0..5 {
        ops.push(t.provision(&format!("web-{n}")).await);
    }
    // One worker, run five times: each run creates a droplet and parks, so none waits on
    // another's droplet.
    for _ in 0..5 {
        assert!(t.run_one().await);
    }
    for (_, op) in &ops {
        let op = t.operation(op.id).await;
        assert_eq!((op.state, op.attempt), (OpState::Waiting, 1), "{op:?}");
        assert_eq!(op.lease_owner, None);
    }
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 5);

    for (_, op) in &ops {
        t.run_until_finished(op.id).await;
    }
    let lists: Vec<_> = t
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v2/droplets")
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists.len() < 5 * 2,
        "five droplets were checked together, not each on its own: {} listings",
        lists.len()
    );
    assert!(
        lists.iter().all(|r| r
            .query
            .as_deref()
            .unwrap_or("")
            .contains("tag_name=stackdock&")
            || r.query
                .as_deref()
                .unwrap_or("")
                .ends_with("tag_name=stackdock")),
        "checks list by the shared tag: {lists:?}"
    );
    assert_eq!(
        t.sandbox
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/v2/droplets/"))
            .count(),
        0,
        "no droplet was read one by one"
    );
    // Each resource's journal shows the listings that checked it.
    for (requested, op) in &ops {
        let done = t.operation(op.id).await;
        assert_eq!((done.state, done.attempt), (OpState::Succeeded, 1));
        let calls = t
            .store
            .api_calls(t.actor.org_id, requested.id, &PageRequest::first(1000))
            .await
            .unwrap()
            .items;
        let checks = calls
            .iter()
            .filter(|c| c.method == "GET" && c.path.contains("tag_name=stackdock"))
            .count();
        assert!(checks >= 1, "{calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_checks_the_droplets_due_before_the_next_round_with_those_due_now() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::ZERO,
        min_interval: Duration::from_secs(10),
        ..Options::default()
    })
    .await;
    let (_, due) = t.provision("web-due").await;
    let (_, soon) = t.provision("web-soon").await;
    assert!(t.run_one().await);
    assert!(t.run_one().await);
    // One check due now, the other in 5 s: before the dock's next round, 10 s away.
    let at = |op: Operation, from_now: chrono::Duration| {
        let mut op = op;
        op.next_run_at = chrono::Utc::now() + from_now;
        op
    };
    let parked = [
        at(t.operation(due.id).await, chrono::Duration::seconds(-1)),
        at(t.operation(soon.id).await, chrono::Duration::seconds(5)),
    ];
    for op in parked {
        assert_eq!(op.state, OpState::Waiting);
        t.store
            .apply(Batch::new().push(Write::UpdateOperation(op)))
            .await
            .unwrap();
    }

    assert_eq!(t.observe_one().await, 2, "both taken by one round");
    let lists = t.requests("GET", "/v2/droplets");
    assert_eq!(lists.len(), 1, "one listing served both: {lists:?}");
    for op in [due.id, soon.id] {
        assert_eq!(t.operation(op).await.state, OpState::Succeeded);
    }
}

/// A round's listing answers for every resource waiting on the dock: it takes the dock's
/// budget ahead of the creates queued for it, so what is ready is seen without waiting for
/// every create before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rounds_listing_goes_before_the_creates_queued_for_the_budget() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_secs(60),
        wait_timeout: Duration::from_secs(60),
        rate_limit: "2/s".parse().expect("a rate limit"),
        ..Options::default()
    })
    .await;
    let (_, waiting) = t.provision("web-waiting").await;
    assert!(t.run_one().await);
    for i in 0..5 {
        t.provision(&format!("web-{i}")).await;
    }
    let creates = || t.requests("POST", "/v2/droplets").len();
    let runs = futures::future::join_all((0..5).map(|_| t.run_one()));
    let check = async {
        // The bucket (2 at once, 2 a second) has let two of the five through: three wait.
        let deadline = std::time::Instant::now() + support::DEADLINE;
        while creates() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the creates never went"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut due = t.operation(waiting.id).await;
        due.next_run_at = chrono::Utc::now() - chrono::Duration::seconds(1);
        t.store
            .apply(Batch::new().push(Write::UpdateOperation(due)))
            .await
            .unwrap();
        // With it, those created so far that are due before the dock's next round.
        assert!(t.observe_one().await >= 1);
    };
    let (ran, ()) = tokio::join!(runs, check);
    assert!(ran.into_iter().all(|r| r), "every create ran");
    let order: Vec<String> = t
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/droplets")
        .map(|r| r.method)
        .collect();
    let listing = order
        .iter()
        .position(|m| m == "GET")
        .expect("the round listed the droplets");
    assert!(
        listing <= 4,
        "the listing went after {listing} creates, behind those queued before it: {order:?}"
    );
}

/// A round is one listing, but a listing is a call per page: the next rounds are spaced by
/// the pages the last one took, so checks keep to their share of the dock's budget however
/// many droplets the account holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_of_checks_are_spaced_by_the_pages_their_listing_takes() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_secs(60),
        wait_timeout: Duration::from_secs(60),
        rate_limit: "10/s".parse().expect("a rate limit"),
        ..Options::default()
    })
    .await;
    // More droplets under the shared tag than one page holds (200).
    for i in 0..250 {
        t.sandbox.create_droplet_directly(
            &format!("other-{i}"),
            "nyc3",
            "s-1vcpu-1gb",
            "ubuntu-24-04-x64",
            &["stackdock"],
        );
    }
    let (_, op) = t.provision("web-paged").await;
    assert!(t.run_one().await);
    let listings = || t.requests("GET", "/v2/droplets").len();

    // Round 1, made due now: spaced as one call (10/s, a fifth of it for checks: 500 ms).
    let mut due = t.operation(op.id).await;
    assert_eq!(due.state, OpState::Waiting);
    due.next_run_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    t.store
        .apply(Batch::new().push(Write::UpdateOperation(due)))
        .await
        .unwrap();
    assert_eq!(t.observe_one().await, 1);
    let pages = listings();
    assert!(pages >= 2, "250 droplets and ours take two pages: {pages}");

    // Once its hold has run out (no round planned any more), round 2 is spaced by the
    // pages round 1 took.
    let held_until = t.operation(op.id).await.next_run_at;
    let deadline = std::time::Instant::now() + support::DEADLINE;
    while chrono::Utc::now() <= held_until {
        assert!(
            std::time::Instant::now() < deadline,
            "the hold never ran out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = chrono::Utc::now();
    assert_eq!(t.observe_one().await, 1);
    let after = chrono::Utc::now();
    let next = t.operation(op.id).await.next_run_at;
    // Rounded up to a power of two, so that nodes that saw different numbers of pages
    // still plan their rounds on nesting grids.
    let spaced = chrono::Duration::milliseconds(500 * pages.next_power_of_two() as i64);
    assert!(
        next >= before + spaced && next <= after + spaced,
        "next round at {} after the round began, {pages} pages a round: {spaced} expected",
        next - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_unavailable_past_the_retry_budget_is_rescheduled_then_succeeds_once() {
    let t = spawn_engine_with(Options {
        call_attempts: 2,
        // Long enough to see that the operation is not runnable before it.
        reschedule_base: Duration::from_millis(400),
        ..Options::default()
    })
    .await;
    // Two 503s spend run 1's budget; the third is met by run 2, which then succeeds.
    t.sandbox
        .inject(Fault::error(Some("POST"), "/v2/droplets", 503, 3));
    let (requested, op) = t.provision("web-1").await;

    let before = chrono::Utc::now();
    assert!(t.run_one().await);

    let queued = t.operation(op.id).await;
    assert_eq!(queued.state, OpState::Queued);
    assert_eq!(queued.attempt, 1);
    assert_eq!(queued.lease_owner, None);
    assert!(
        queued.next_run_at >= before + chrono::Duration::milliseconds(400),
        "rescheduled for {} (run began {before})",
        queued.next_run_at
    );
    let last_error = queued.last_error.as_deref().unwrap_or_default();
    assert!(
        last_error.contains("503") && last_error.contains("unavailable"),
        "{last_error}"
    );
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioning);
    assert_eq!(
        row.error, None,
        "a transient failure is not the row's error"
    );
    let steps = t.steps(op.id).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        steps[0].name, "create_sent",
        "the create was sent, so it says so"
    );
    assert!(
        !t.run_one().await,
        "claimed before its next_run_at: {:?}",
        t.operation(op.id).await
    );

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Succeeded);
    assert_eq!(done.attempt, 2, "the next claim counts a second run");
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
    let droplets = t.droplet_ids();
    assert_eq!(droplets.len(), 1);
    assert_eq!(
        row.provider_resource_id.as_deref(),
        Some(droplets[0].as_str())
    );
    let posts: Vec<u16> = t
        .requests("POST", "/v2/droplets")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [503, 503, 503, 202]);
    let outcomes: Vec<Outcome> = t.audit_of(&row).await.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::Requested, Outcome::Success]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_unavailable_for_every_run_fails_after_max_attempts() {
    let t = spawn_engine_with(Options {
        max_attempts: 3,
        call_attempts: 1,
        ..Options::default()
    })
    .await;
    t.sandbox
        .inject(Fault::error(Some("POST"), "/v2/droplets", 503, 100));
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    assert_eq!(done.attempt, 3);
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 3);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    let error = row.error.clone().expect("error");
    assert_eq!(error.code, "provider_unavailable");
    assert!(error.message.contains("503"), "{}", error.message);
    assert!(t.sandbox.droplets().is_empty());
    let audit = t.audit_of(&row).await;
    assert_eq!(audit.last().map(|a| a.outcome), Some(Outcome::Failure));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_droplet_slow_to_start_is_checked_while_parked_and_never_created_again() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Succeeded);
    assert_eq!(done.attempt, 1, "waiting is not a run: {done:?}");
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
    assert!(ipv4(&row).is_some(), "{row:?}");
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 1);
    let droplets = t.droplet_ids();
    assert_eq!(droplets.len(), 1);
    assert_one_create_step(&t.steps(op.id).await, StepStatus::Done, &droplets[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_shows_the_provider_status_before_the_row_settles() {
    let t = spawn_engine_with(Options {
        // Longer than the first check's delay, so several checks see `new`.
        ready_after: Duration::from_millis(1000),
        ..Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;

    t.run_until_finished(op.id).await;

    let seen: Vec<(ProvisioningState, Option<String>, bool)> = t
        .store
        .changes_since(t.actor.org_id, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.resource.id == requested.id)
        .map(|c| {
            let r = c.resource;
            (
                r.provisioning_state,
                r.status,
                r.provider_resource_id.is_some(),
            )
        })
        .collect();
    use ProvisioningState::{Provisioned, Provisioning};
    assert_eq!(
        seen,
        [
            // Intent recorded.
            (Provisioning, None, false),
            // The create checkpoint: the row tracks the droplet from here on.
            (Provisioning, None, true),
            // Parked with the provider's status; checks that see no change write nothing.
            (Provisioning, Some("new".into()), true),
            // Settled by the check that saw it ready.
            (Provisioned, Some("active".into()), true),
        ]
    );
    let checks = t
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v2/droplets")
        .count();
    assert!(checks > 2, "several checks saw `new`: {checks}");
}

/// A sealed config value that does not open (here: one sealed for another resource, copied
/// over) stops the run before any provider call, naming the field; nothing is created.
#[tokio::test]
async fn a_sealed_value_that_does_not_open_stops_the_run_naming_the_field() {
    let t = spawn_engine().await;
    let with_init = |name: &str| {
        let mut c = support::server_config(name);
        c.insert("user_data".into(), "#!/bin/sh\necho canary-init\n".into());
        c
    };
    let provision = |name: &'static str| {
        t.engine.request_provision(
            t.actor,
            &t.dock,
            stackdock_core::ResourceKind::Server,
            with_init(name),
        )
    };
    let (row, op) = provision("target").await.expect("requested");
    let (_, donor) = provision("donor").await.expect("requested");
    let stored = serde_json::to_string(&op.input).unwrap();
    assert!(
        !stored.contains("canary-init"),
        "sealed before it is written: {stored}"
    );

    // Only a re-seal changes what is sealed in an input; it stands in for a hand edit here.
    let stored = t.operation(op.id).await;
    let mut swapped = stored.input.clone();
    swapped["config"]["user_data"] = donor.input["config"]["user_data"].clone();
    let reseal = stackdock_store::Reseal::OperationInput {
        org_id: stored.org_id,
        id: stored.id,
        from: stored.input.clone(),
        to: swapped,
    };
    t.store
        .apply(stackdock_store::Batch::new().push(stackdock_store::Write::Reseal(reseal)))
        .await
        .expect("swap the sealed value");

    let done = t.run_until_finished(op.id).await;
    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(row.id).await;
    let error = row.error.expect("a failed row says why");
    assert_eq!(error.code, "sealed_config_unavailable");
    assert!(error.message.contains("user_data"), "{}", error.message);
    let creates_of_target = t
        .requests("POST", "/v2/droplets")
        .into_iter()
        .filter(|r| r.body.as_ref().is_some_and(|b| b["name"] == "target"))
        .count();
    assert_eq!(creates_of_target, 0, "no create without the value");
}

/// "Create sent" is written when the create has its turn in the dock's budget: a run that
/// ends while its create waits (a node that dies with a queue of creates) leaves nothing to
/// look up by marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_waiting_for_the_budget_has_not_recorded_that_it_was_sent() {
    let t = spawn_engine_with(Options {
        ready_after: Duration::from_secs(60),
        wait_timeout: Duration::from_secs(60),
        // One call a minute: the first create goes, the others wait for the budget.
        rate_limit: "1/min".parse().expect("a rate limit"),
        ..Options::default()
    })
    .await;
    let mut ops = Vec::new();
    for i in 0..3 {
        ops.push(t.provision(&format!("web-{i}")).await.1);
    }
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let engine = t.engine.clone();
            tokio::spawn(async move { engine.run_next("test-run").await })
        })
        .collect();
    let deadline = std::time::Instant::now() + support::DEADLINE;
    loop {
        let waiting = t.engine.budget_of(t.dock.id).map_or(0, |b| b.waiting());
        if waiting == 2 && t.requests("POST", "/v2/droplets").len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} creates waiting for the budget"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sent = 0;
    for op in &ops {
        let names: Vec<String> = t.steps(op.id).await.into_iter().map(|s| s.name).collect();
        if names.iter().any(|n| n == "create_sent") {
            sent += 1;
        }
    }
    assert_eq!(sent, 1, "only the create that went says it was sent");
    // The node dies with two creates queued: their next runs have nothing to look for.
    for run in runs {
        run.abort();
    }
}
