//! Provision operations run by the engine against the DigitalOcean sandbox: how failures after
//! the create unwind, and how transient failures are rescheduled, resumed and finally given up.

mod support;

use std::time::Duration;

use stackdock_core::{OpState, Outcome, ProvisioningState, StepStatus};
use stackdock_engine::EngineError;
use stackdock_sandbox::Fault;
use stackdock_store::Store;
use support::{Options, assert_one_create_step, ipv4, spawn_engine, spawn_engine_with};

/// Runs a provision that fails permanently after its create, with `fault` injected, and checks
/// the unwind: droplet deleted, step undone, row and audit failed with `code`.
async fn assert_unwinds_after_create(fault: Fault, code: &str, message: &str) {
    let t = spawn_engine().await;
    t.sandbox.inject(fault);
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    assert_eq!(done.attempt, 1, "a permanent failure is not retried");
    let last_error = done.last_error.as_deref().unwrap_or_default();
    assert!(last_error.starts_with(code), "{last_error}");
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    let error = row.error.as_ref().expect("a failed row says why");
    assert_eq!(error.code, code);
    assert_eq!(error.message, message);

    // The droplet made by the create was deleted before the row settled.
    let steps = t.steps(op.id).await;
    let droplet = steps[0].output["provider_resource_id"]
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
    assert_eq!(deletes.iter().map(|r| r.status).collect::<Vec<_>>(), [204]);
    // The delete is journaled for the resource like every other call.
    let calls = t
        .store
        .api_calls(t.actor.org_id, requested.id)
        .await
        .unwrap();
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
    assert_eq!(audit[1].details["code"], code);
    assert_eq!(audit[1].details["message"], message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_droplet_vanishing_while_polled_fails_and_unwinds() {
    // A 404 on the poll: DigitalOcean no longer knows the droplet.
    assert_unwinds_after_create(
        Fault::error(Some("GET"), "/v2/droplets/", 404, 1),
        "vanished",
        "the resource disappeared while it was being created",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_refusal_while_polling_fails_in_its_words_and_unwinds() {
    assert_unwinds_after_create(
        Fault::error_with(
            Some("GET"),
            "/v2/droplets/",
            403,
            "forbidden",
            "You are not allowed to read droplets.",
            1,
        ),
        "forbidden",
        "You are not allowed to read droplets.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cleanup_keeps_the_droplet_tracked_so_deprovision_can_remove_it() {
    let t = spawn_engine().await;
    t.sandbox
        .inject(Fault::error(Some("GET"), "/v2/droplets/", 404, 1));
    t.sandbox
        .inject(Fault::error(Some("DELETE"), "/v2/droplets/", 403, 1));
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(requested.id).await;
    let error = row.error.clone().expect("error");
    assert_eq!(error.code, "vanished");
    assert!(
        error
            .message
            .contains("cleaning up what was created failed"),
        "{}",
        error.message
    );
    let droplets = t.droplet_ids();
    assert_eq!(droplets.len(), 1, "the delete was refused");
    assert_eq!(
        row.provider_resource_id.as_deref(),
        Some(droplets[0].as_str())
    );
    assert_one_create_step(&t.steps(op.id).await, StepStatus::Done, &droplets[0]);

    // A retry would make a second droplet beside the one still tracked: refused.
    let retry = t.engine.request_retry(t.actor, requested.id).await;
    assert!(
        matches!(&retry, Err(EngineError::Conflict(m)) if m.contains("deprovision it first")),
        "{retry:?}"
    );

    // The user's way out: deprovision the failed row.
    let (_, deprovision) = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .expect("a failed resource can be deprovisioned");
    let done = t.run_until_finished(deprovision.id).await;
    assert_eq!(done.state, OpState::Succeeded);
    assert_eq!(
        t.resource(requested.id).await.provisioning_state,
        ProvisioningState::Deprovisioned
    );
    assert!(t.sandbox.droplets().is_empty());
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
    assert!(t.steps(op.id).await.is_empty());
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
async fn a_droplet_slow_to_start_is_polled_again_by_the_next_run_not_created_again() {
    let t = spawn_engine_with(Options {
        // Each run gives up polling after 150ms; the droplet needs several runs.
        ready_after: Duration::from_millis(500),
        poll_timeout: Duration::from_millis(150),
        ..Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Succeeded);
    assert!(done.attempt >= 2, "ready within one run: {done:?}");
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Provisioned);
    assert!(ipv4(&row).is_some(), "{row:?}");
    assert_eq!(t.requests("POST", "/v2/droplets").len(), 1);
    let droplets = t.droplet_ids();
    assert_eq!(droplets.len(), 1);
    assert_one_create_step(&t.steps(op.id).await, StepStatus::Done, &droplets[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provision_out_of_attempts_after_its_create_deletes_what_it_created() {
    let t = spawn_engine_with(Options {
        // Never ready in time: every run ends NotReady, a transient failure.
        ready_after: Duration::from_secs(3600),
        poll_timeout: Duration::from_millis(100),
        max_attempts: 2,
        ..Options::default()
    })
    .await;
    let (requested, op) = t.provision("web-1").await;

    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Failed);
    assert_eq!(done.attempt, 2);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    assert_eq!(
        row.error.as_ref().map(|e| e.code.as_str()),
        Some("not_ready")
    );
    // Failing for good after creating something must unwind like any permanent failure;
    // otherwise a droplet is left running (and billed) under a row that says `failed`.
    assert!(
        t.sandbox.droplets().is_empty(),
        "the droplet was left behind: {:?}",
        t.droplet_ids()
    );
    let steps = t.steps(op.id).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].status, StepStatus::Undone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_shows_the_provider_status_before_the_row_settles() {
    let t = spawn_engine_with(Options {
        // Long enough that the first polls see `new` whatever the machine's load.
        ready_after: Duration::from_millis(400),
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
            // Progress while polling, once per status change, however many polls.
            (Provisioning, Some("new".into()), true),
            (Provisioning, Some("active".into()), true),
            // Settled.
            (Provisioned, Some("active".into()), true),
        ]
    );
    assert!(
        t.requests("GET", &format!("/v2/droplets/{}", t.droplet_ids()[0]))
            .len()
            > 2
    );
}
