//! Recovery: a run that dies at any point leaves an operation another worker finishes with the
//! same result and one droplet; a worker whose lease was taken over cannot write; workers side
//! by side run each operation once; a dispatcher claims no more of a dock than its budget
//! serves soon and leaves the rest queued, untouched, for others.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use stackdock_core::{AuditEntry, OpState, Outcome, ProvisioningState, Step, StepStatus};
use stackdock_sandbox::Fault;
use stackdock_store::{Batch, Lease, Store, StoreError, Write};
use support::{
    DEADLINE, Mode, Point, TestEngine, assert_one_create_step, spawn_engine, spawn_engine_with,
};

/// Tells the workers to stop and waits until each has, without panicking.
async fn stop_workers(
    stop: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
) {
    stop.send(true).unwrap();
    for w in workers {
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("a worker stops when told")
            .expect("a worker ends without panicking");
    }
}

/// Provisions one server with the store failing once at `point` in `mode`, and checks that
/// the operation still ends `provisioned` with exactly one droplet and one create call.
/// Returns the engine and the finished operation for the caller's own checks.
async fn provision_through(point: Point, mode: Mode) -> (TestEngine, stackdock_core::Operation) {
    let t = spawn_engine().await;
    t.store.arm(point, mode);
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(
        t.store.fired(),
        [(point, mode)],
        "the failure never happened"
    );
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
    assert_eq!(row.error, None);
    let droplets = t.droplet_ids();
    assert_eq!(droplets.len(), 1, "a second droplet was created");
    assert_eq!(
        row.provider_resource_id.as_deref(),
        Some(droplets[0].as_str())
    );
    assert_eq!(
        t.requests("POST", "/v2/droplets").len(),
        1,
        "the create was sent twice"
    );
    assert_one_create_step(&t.steps(op.id).await, StepStatus::Done, &droplets[0]);
    let outcomes: Vec<Outcome> = t.audit_of(&row).await.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::Requested, Outcome::Success]);
    (t, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_record_is_adopted_by_the_next_run() {
    let (t, done) = provision_through(Point::CreateCheckpoint, Mode::LoseWrite).await;
    // Run 1 created the droplet and could not say so; run 2 found it by its marker.
    assert_eq!(done.attempt, 2);
    let steps = t.steps(done.id).await;
    assert_eq!(steps[1].output["adopted"], true);
    let row = t.resource(done.resource_id.unwrap()).await;
    assert_eq!(t.marker_lookups(&row), 1, "one lookup by marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_recorded_without_acknowledgement_is_not_redone() {
    let (t, done) = provision_through(Point::CreateCheckpoint, Mode::LoseAck).await;
    // Run 2 found the step recorded, so it neither looked up nor created: it only parked.
    assert_eq!(done.attempt, 2);
    assert_eq!(t.steps(done.id).await[1].output["adopted"], false);
    let row = t.resource(done.resource_id.unwrap()).await;
    assert_eq!(t.marker_lookups(&row), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_could_not_settle_is_checked_again_to_the_same_end() {
    let (t, done) = provision_through(Point::Settle, Mode::LoseWrite).await;
    // The check that saw it ready could not write; once its hold ran out the operation was
    // checked again and settled. Checks are not runs, and nothing was created twice.
    assert_eq!(done.attempt, 1);
    assert_eq!(t.steps(done.id).await[1].output["adopted"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_committed_without_acknowledgement_is_not_rerun() {
    let (_t, done) = provision_through(Point::Settle, Mode::LoseAck).await;
    assert_eq!(done.attempt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_over_cannot_write() {
    let t = spawn_engine().await;
    let (requested, op) = t.provision("web-1").await;
    // Worker A claims, then stalls (a pause, a partition) past its lease.
    let a = t
        .store
        .claim_operation("A", Duration::from_millis(200))
        .await
        .unwrap()
        .expect("A claims the operation");
    let lease_a = Lease {
        operation_id: op.id,
        owner: "A".into(),
        generation: a.generation,
    };

    // Another worker takes it over once A's lease has run out, and finishes it.
    let done = t.run_until_finished(op.id).await;
    assert_eq!(done.state, OpState::Succeeded);
    assert!(done.generation > a.generation, "{done:?}");
    assert_eq!(done.attempt, 2);

    // A wakes up and writes what it would have written: its step, its end, its audit row.
    // None of these writes checks anything but the fence, so only the fence stops them.
    let mut stale = a.clone();
    stale.state = OpState::Failed;
    stale.last_error = Some("A gave up".into());
    let step = Step {
        operation_id: op.id,
        index: 0,
        name: "created".into(),
        status: StepStatus::Done,
        output: json!({"step": "created", "droplet_id": "999", "adopted": false}),
        undo: json!(null),
        at: chrono::Utc::now(),
    };
    let audit = AuditEntry::new(t.actor.org_id, None, "server.provision", Outcome::Failure)
        .resource(format!("servers/{}", requested.id));
    let refused = t
        .store
        .apply(
            Batch::fenced(&lease_a)
                .push(Write::RecordStep(step))
                .push(Write::UpdateOperation(stale))
                .push(Write::Audit(audit)),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced(id)) if id == op.id),
        "{refused:?}"
    );
    let renewed = t.store.renew_lease(&lease_a, Duration::from_secs(30)).await;
    assert!(matches!(renewed, Err(StoreError::Fenced(_))), "{renewed:?}");

    // The successor's result stands, untouched.
    let after = t.operation(op.id).await;
    assert_eq!(after.state, OpState::Succeeded);
    assert_eq!(after.last_error, None);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
    let droplets = t.droplet_ids();
    assert_one_create_step(&t.steps(op.id).await, StepStatus::Done, &droplets[0]);
    let outcomes: Vec<Outcome> = t.audit_of(&row).await.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::Requested, Outcome::Success]);
}

/// A run whose lease renewals fail stops before the lease can run out, wherever it stands,
/// instead of going on (as it did, renewals given up after the first failure) to send calls
/// for an operation another node may take over meanwhile. Here it stands in a lookup by
/// marker that takes longer than the lease, after its create was refused; the next run
/// finishes with one droplet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_cannot_be_renewed_stops_before_the_lease_runs_out() {
    let lease = Duration::from_millis(600);
    let t = spawn_engine_with(support::Options {
        lease,
        ..support::Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;
    t.sandbox
        .inject(Fault::error(Some("POST"), "/v2/droplets", 503, 1));
    t.sandbox.inject(Fault::delay(
        Some("GET"),
        "/v2/droplets",
        Duration::from_secs(4),
        1,
    ));
    t.store.fail_renewals(true);
    let started = Instant::now();
    assert!(t.run_one().await);
    let ran = started.elapsed();
    assert!(
        ran < Duration::from_secs(3),
        "the run went on for {ran:?} with a lease of {lease:?} it could not renew"
    );
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 1);

    t.store.fail_renewals(false);
    let done = t.run_until_finished(op.id).await;
    assert_eq!(done.state, OpState::Succeeded);
    assert_eq!(t.droplet_ids().len(), 1);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
}

/// A sync while a provision is under way and its row names no provider resource yet (its
/// create's answer lost, its run killed, a domain whose marker record is not made yet) does
/// not import what may be that resource as a second, `manual` row: it is left to its run.
/// What does not match is imported as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_leaves_alone_what_a_provision_under_way_may_be_making() {
    let t = spawn_engine().await;
    let (_, op) = t.provision("web-1").await;
    // A worker holds the provision, its create sent for all anyone knows.
    t.store
        .claim_operation("A", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("A claims the provision");
    for name in ["web-1", "other-1"] {
        t.sandbox
            .create_droplet_directly(name, "nyc3", "s-1vcpu-1gb", "ubuntu-24-04-x64", &[]);
    }

    let sync = t.engine.request_sync(t.actor, &t.dock).await.unwrap();
    assert!(t.run_one().await);
    let done = t.operation(sync.id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    let rows = t
        .store
        .list_resources(
            t.actor.org_id,
            &stackdock_store::ResourceFilter::default(),
            &stackdock_store::PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    let mut names: Vec<(&str, ProvisioningState)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.provisioning_state))
        .collect();
    names.sort_by_key(|(n, _)| *n);
    assert_eq!(
        names,
        [
            ("other-1", ProvisioningState::Provisioned),
            ("web-1", ProvisioningState::Provisioning),
        ],
        "web-1 is left to its provision {}",
        op.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_side_by_side_run_each_operation_once() {
    let t = spawn_engine_with(support::Options {
        max_in_flight: 3,
        ..support::Options::default()
    })
    .await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Two dispatchers and two observers on one store, as two processes would run.
    let mut workers = t.engine.spawn_workers(stopped.clone());
    workers.extend(t.engine.spawn_workers(stopped));
    let mut ops = Vec::new();
    for n in 0..5 {
        ops.push(t.provision(&format!("web-{n}")).await);
    }

    let started = Instant::now();
    for (_, op) in &ops {
        loop {
            if t.operation(op.id).await.state.is_finished() {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "workers did not finish {op:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut tracked = Vec::new();
    for (requested, op) in &ops {
        let done = t.operation(op.id).await;
        assert_eq!(
            (done.state, done.attempt),
            (OpState::Succeeded, 1),
            "{done:?}"
        );
        let row = t.resource(requested.id).await;
        assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
        tracked.push(row.provider_resource_id.expect("provider id"));
    }
    tracked.sort();
    assert_eq!(tracked, t.droplet_ids(), "each row tracks its own droplet");
    assert_eq!(t.requests("POST", "/v2/droplets").len(), ops.len());

    stop_workers(stop, workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_can_never_be_recorded_gives_up_and_removes_the_droplet() {
    let t = spawn_engine_with(support::Options {
        max_attempts: 3,
        ..Default::default()
    })
    .await;
    // Every run creates or adopts the droplet and then fails to record it.
    t.store.arm_always(Point::CreateCheckpoint, Mode::LoseWrite);
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed, "{done:?}");
    assert_eq!(done.attempt, 4, "three runs, then the one that gives up");
    assert_eq!(t.store.fired().len(), 3);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    let error = row.error.expect("an error");
    assert_eq!(error.code, "gave_up");
    assert!(
        error.message.contains("injected failure"),
        "{}",
        error.message
    );
    assert_eq!(row.provider_resource_id, None);
    // One create; the later runs adopted it; giving up found it by marker and deleted it.
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 1);
    assert!(
        t.droplet_ids().is_empty(),
        "the droplet was left behind untracked"
    );
    let outcomes: Vec<Outcome> = t
        .audit_of(&requested)
        .await
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Outcome::Requested, Outcome::Failure]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_claims_only_what_its_budget_serves_soon_and_leaves_the_rest_to_others() {
    // One call a minute: the first create goes out, every other run waits on the budget, so
    // the runs stay under way for as long as the test looks.
    let t = spawn_engine_with(support::Options {
        max_in_flight: 64,
        rate_limit: "1/min".parse().expect("a rate limit"),
        ..support::Options::default()
    })
    .await;
    // All queued before the dispatcher starts, with room for every one in its slots.
    let mut ops = Vec::new();
    for n in 0..20 {
        ops.push(t.provision(&format!("web-{n}")).await.1);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = t.engine.spawn_workers(stopped);

    // The budget serves the fewest runs a dock is allowed at once (8) within the horizon;
    // the one create the budget let out parks its operation, which frees a run for another.
    let started = Instant::now();
    let (running, parked, queued) = loop {
        let (mut running, mut parked, mut queued) = (Vec::new(), Vec::new(), Vec::new());
        for op in &ops {
            let now = t.operation(op.id).await;
            match now.state {
                OpState::Running => running.push(now),
                OpState::Waiting => parked.push(now),
                _ => queued.push(now),
            }
        }
        if running.len() == 8 {
            break (running, parked, queued);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{} running of the 8 the budget serves",
            running.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for op in &running {
        assert_eq!(op.attempt, 1, "{op:?}");
        assert!(
            op.lease_owner
                .as_deref()
                .is_some_and(|o| o.starts_with("test")),
            "{op:?}"
        );
    }
    assert!(parked.len() <= 1, "one call a minute: {parked:?}");
    // Never claimed: a claim holds what it takes from every other node until it is put
    // back, so the dispatcher takes no more than it has room to run.
    assert_eq!(queued.len(), 20 - 8 - parked.len());
    for op in &queued {
        assert_eq!(
            (
                op.state,
                op.attempt,
                op.generation,
                op.lease_owner.as_deref()
            ),
            (OpState::Queued, 0, 0, None),
            "{op:?}"
        );
    }

    stop_workers(stop, workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_stops_counting_in_seconds_whatever_its_lease() {
    // Leases as long as the default: a dead node's operations come back after 30 s, but its
    // part of every dock's budget must come back to the others long before.
    let t = spawn_engine_with(support::Options {
        lease: Duration::from_secs(30),
        ..support::Options::default()
    })
    .await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let workers = t.engine.spawn_workers(stopped);
    // Another node's view: its own heartbeat (gone at once) counts every node alive.
    let live = || t.store.heartbeat("observer", Duration::from_millis(1));
    let started = Instant::now();
    while live().await.unwrap() != 2 {
        assert!(started.elapsed() < DEADLINE, "the node never beat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killed: its tasks end without saying goodbye.
    for w in &workers {
        w.abort();
    }
    let died = Instant::now();
    while live().await.unwrap() != 1 {
        assert!(
            died.elapsed() < Duration::from_secs(15),
            "a dead node still counted after {:?}",
            died.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
