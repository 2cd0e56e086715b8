//! The Cloudflare adapter against the Cloudflare sandbox, where the conformance suite cannot
//! look: a zone that existed before is refused, a dock naming no account, a record Cloudflare
//! refuses and the unwind after it, the zone's own status, a 429 on the create, discovery over
//! several pages, and Cloudflare's error body.

mod support;

use serde_json::{Value, json};
use stackdock_core::{ResourceKind, SecretString};
use stackdock_docks::cloudflare::CloudflareAdapter;
use stackdock_docks::cloudflare::api::ZONES_PER_PAGE;
use stackdock_docks::{DockAdapter, DockError, Progress};
use stackdock_sandbox::Fault;
use support::{Run, canary, cloudflare_dock, cloudflare_sandbox};

fn adapter() -> CloudflareAdapter {
    CloudflareAdapter::new(reqwest::Client::new())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_that_existed_before_is_refused_naming_name_and_left_alone() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key);
    let theirs = sb.create_zone_directly("theirs.example.com");
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "Theirs.Example.com"})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "name");
    assert!(run.recorder.steps().is_empty(), "no step was recorded");
    assert_eq!(sb.zones(), vec![theirs], "their zone is untouched");
    assert!(sb.records().is_empty(), "and has no record of ours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_naming_no_account_is_refused_naming_account_id_without_a_call() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let mut dock = cloudflare_dock(&sb, &key);
    dock.settings = Value::Null;
    let mut run = Run::new(&dock);
    let err = adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "a.example.com"})),
        )
        .await
        .expect_err("refused");
    let DockError::InvalidConfig(e) = &err else {
        panic!("the user's error: {err:?}");
    };
    assert_eq!(e.field, "account_id");
    assert!(e.message.contains("--setting account_id="), "{}", e.message);
    assert_eq!(sb.request_counts().total, 0, "Cloudflare was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_fails_the_provision_and_the_unwind_leaves_nothing() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key);
    // The first POST under /zones/ is the marker record's; the second, the config's record.
    sb.inject(
        Fault::error_with(
            Some("POST"),
            "/client/v4/zones/",
            400,
            "9005",
            "Content for A record is invalid",
            1,
        )
        .after(1),
    );
    let a = adapter();
    let mut run = Run::new(&dock);
    let err = a
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "refused.example.com", "records": [
                {"type": "A", "value": "192.0.2.1"},
            ]})),
        )
        .await
        .expect_err("the record is refused");
    let DockError::Provider(p) = &err else {
        panic!("Cloudflare's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (400, "9005", "Content for A record is invalid")
    );
    assert_eq!(sb.zones().len(), 1, "the zone was made before the refusal");
    let steps = run.recorder.steps();
    support::engine::unwind(&a, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert!(sb.zones().is_empty() && sb.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zones_status_is_shown_and_it_is_usable_while_pending() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key);
    let a = adapter();
    let mut run = Run::new(&dock);
    let Progress::Done(Some(made)) = a
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "new.example.com"})),
        )
        .await
        .expect("provisioned")
    else {
        panic!("a zone is usable once made");
    };
    assert!(made.ready);
    assert_eq!(made.status.as_deref(), Some("pending"));
    assert_eq!(made.marker.as_ref(), Some(&run.marker));
    assert!(sb.set_zone_status(&made.provider_resource_id, "active"));
    let target = run.tracked(ResourceKind::Domain).expect("tracked");
    let seen = a
        .observe_many(&mut run.ctx, &dock, ResourceKind::Domain, &[target])
        .await
        .expect("observed")
        .remove(0)
        .expect("there");
    assert_eq!(seen.status.as_deref(), Some("active"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_the_zone_create_is_sent_again_and_makes_one_zone() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key);
    sb.inject(Fault::rate_limited(Some("POST"), "/client/v4/zones", 1, 1));
    let mut run = Run::new(&dock);
    adapter()
        .provision_domain(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "busy.example.com"})),
        )
        .await
        .expect("provisioned after the 429");
    assert_eq!(sb.request_counts().rate_limited, 1);
    assert_eq!(sb.zones().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_every_page_and_a_bad_token_is_refused_in_cloudflares_words() {
    let key = canary();
    let sb = cloudflare_sandbox(&key).await;
    let dock = cloudflare_dock(&sb, &key);
    let a = adapter();
    let count = ZONES_PER_PAGE + 3;
    for i in 0..count {
        sb.create_zone_directly(&format!("hand-made-{i}.example.net"));
    }
    let mut run = Run::new(&dock);
    let found = a.discover(&mut run.ctx, &dock).await.expect("discovered");
    assert_eq!(found.len(), count);
    assert!(
        found.iter().all(|o| o.marker.is_none()),
        "none is StackDock's"
    );
    let pages: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/client/v4/zones" && r.method == "GET")
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(pages.iter().any(|q| q.contains("page=2")), "{pages:?}");
    assert!(
        pages.iter().all(|q| q.contains("account.id=")),
        "listings are the dock's account's: {pages:?}"
    );

    let mut bad = dock.clone();
    bad.api_key = SecretString::new("not-a-cloudflare-token");
    let err = a
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("refused");
    let DockError::Provider(p) = err else {
        panic!("Cloudflare's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.code.as_str(), p.message.as_str()),
        (401, "10000", "Authentication error")
    );
}

/// Under seeded chaos (5xx answers, lost answers to creates, cut-off reads), a provision run
/// again as the engine would after each transient failure ends with one zone holding one of
/// each record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_a_rerun_provision_makes_one_zone_with_its_records_once() {
    let mut struck = 0;
    let mut reruns = 0;
    for seed in 1..=6 {
        let key = canary();
        let sb = cloudflare_sandbox(&key).await;
        let dock = cloudflare_dock(&sb, &key);
        let a = adapter();
        let config = config(
            json!({"name": format!("chaos-{seed}.example.com"), "records": [
                {"type": "A", "name": "www", "value": "192.0.2.1"},
                {"type": "TXT", "value": "v=spf1 -all"},
            ]}),
        );
        sb.set_chaos(Some(stackdock_sandbox::Chaos {
            seed,
            error_rate: 0.35,
            lose_rate: 0.3,
            truncate_rate: 0.3,
            storm: None,
        }));
        let mut run = Run::new(&dock);
        let mut runs = 0;
        let made = loop {
            runs += 1;
            assert!(runs < 50, "seed {seed}: no end to the runs");
            match a.provision_domain(&mut run.ctx, &dock, &config).await {
                Ok(Progress::Done(Some(made))) => break made,
                Ok(other) => panic!("seed {seed}: a zone is usable once made: {other:?}"),
                Err(e) if e.is_transient() => {
                    run = run.resume(&dock, &run.recorder.recorded());
                }
                Err(e) => panic!("seed {seed}: a permanent failure: {e:?}"),
            }
        };
        sb.set_chaos(None);
        struck += sb.chaos_counts().total();
        reruns += runs - 1;
        assert_eq!(made.marker.as_ref(), Some(&run.marker), "seed {seed}");
        assert_eq!(sb.zones().len(), 1, "seed {seed}");
        let mut records: Vec<String> = sb
            .records()
            .iter()
            .map(|r| format!("{} {}", r["type"], r["name"]))
            .collect();
        records.sort();
        let all = records.len();
        records.dedup();
        assert_eq!(
            (all, records.len()),
            (3, 3),
            "seed {seed}: the marker's and the two configured, once each: {records:?}"
        );
    }
    assert!(
        struck > 0 && reruns > 0,
        "chaos struck {struck} times, {reruns} reruns"
    );
}
