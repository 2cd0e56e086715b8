//! The Turso adapter against the Turso sandbox, where the conformance suite cannot look: the
//! group made sure of first, the minted token kept sealed and nowhere else, a failed
//! provision leaving nothing at Turso, discovery, Turso's error body, and key checks.

mod support;

use serde_json::{Value, json};
use stackdock_core::redact::encoded_forms;
use stackdock_core::{ResourceDetails, ResourceKind};
use stackdock_docks::adapter::decode_step;
use stackdock_docks::turso::{TursoAdapter, TursoStep, database_name};
use stackdock_docks::{DockAdapter, DockError, Progress};
use stackdock_sandbox::Fault;
use support::{MemRecorder, Run, TURSO_ORG, canary, engine, turso_dock, turso_sandbox};

fn adapter() -> TursoAdapter {
    TursoAdapter::new(reqwest::Client::new())
}

fn config(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn databases_path() -> String {
    format!("/v1/organizations/{TURSO_ORG}/databases")
}

/// Whether `text` holds `secret` as it is or in any encoded form it travels in.
fn holds(text: &str, secret: &str) -> bool {
    encoded_forms(secret).iter().any(|f| text.contains(f))
}

/// The `field` of each item, as the sandbox shows them.
fn names(what: &[Value], field: &str) -> Vec<String> {
    what.iter()
        .filter_map(|v| v[field].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provision_makes_the_group_the_database_and_a_sealed_token() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let mut run = Run::new(&dock);

    // Nothing but the name: group and location take their defaults.
    let progress = adapter()
        .provision_database(&mut run.ctx, &dock, &config(json!({"name": "orders"})))
        .await
        .expect("provisioned");

    let Progress::Done(Some(observed)) = progress else {
        panic!("a Turso database is ready once it exists: {progress:?}");
    };
    let name = database_name(&run.marker);
    assert_eq!(observed.provider_resource_id, name);
    assert_eq!(observed.marker.as_ref(), Some(&run.marker));
    assert!(observed.ready);
    let ResourceDetails::Database(details) = &observed.details else {
        panic!("database details: {:?}", observed.details);
    };
    let host = format!("{name}-{TURSO_ORG}.turso.io");
    assert_eq!(details.host.as_deref(), Some(host.as_str()));
    assert_eq!(details.region.as_deref(), Some("aws-us-east-1"));
    assert_eq!(details.engine.as_deref(), Some("libsql"));

    assert_eq!(names(&sb.groups(), "name"), ["default"]);
    assert_eq!(sb.groups()[0]["primary"], "aws-us-east-1");
    assert_eq!(names(&sb.databases(), "Name"), std::slice::from_ref(&name));
    assert_eq!(sb.databases()[0]["group"], "default");

    let steps = run.recorder.steps();
    let step_names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        step_names,
        [
            "group_checked",
            "create_sent",
            "created",
            "token_mint_sent",
            "token_minted"
        ]
    );
    assert_eq!(run.recorder.tracks().as_deref(), Some(name.as_str()));

    // The one token Turso minted is kept, sealed: it opens to the token, and nothing else the
    // adapter handed over holds it in any form.
    let minted = sb.minted_tokens();
    assert_eq!(minted.len(), 1);
    let token = &minted[0];
    let TursoStep::TokenMinted { sealed, database } = decode_step(&steps[4]).expect("a step")
    else {
        panic!("the last step keeps the token: {:?}", steps[4]);
    };
    assert_eq!(database, name);
    assert_eq!(run.recorder.open(&sealed).expose(), token);
    for step in &steps {
        assert!(!holds(&step.output.to_string(), token), "{step:?}");
    }
    assert!(!holds(&observed.full_api_data.to_string(), token));
    assert!(!holds(&format!("{observed:?}"), token));
    for call in run.recorder.calls() {
        assert!(!holds(&format!("{call:?}"), token), "{call:?}");
    }
}

/// A token whose answer is lost still works at Turso, and nobody holds it: before minting
/// again, the adapter revokes the database's tokens, so the one it keeps is the only one
/// that works, however the answer was lost and whether the same run or a later one mints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_answer_is_lost_is_revoked_before_another_is_minted() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let tokens = |database: &str| format!("{}/{database}/auth/tokens", databases_path());
    for how in ["lose-response", "truncate", "disconnect"] {
        let mut run = Run::new(&dock);
        let name = database_name(&run.marker);
        let path = tokens(&name);
        sb.inject(match how {
            "lose-response" => Fault::lose_response(Some("POST"), &path, 1),
            "truncate" => Fault::truncate(Some("POST"), &path, 1),
            _ => Fault::disconnect(Some("POST"), &path, 1),
        });
        adapter()
            .provision_database(&mut run.ctx, &dock, &config(json!({"name": how})))
            .await
            .unwrap_or_else(|e| panic!("{how}: {e:?}"));
        kept_token_is_the_only_working_one(&sb, &run, &name, how);
    }

    // A run that ends while the mint's answer is lost (every try of it lost); the next run
    // of the operation, given the steps kept, mints once more after revoking.
    let mut first = Run::new(&dock);
    let name = database_name(&first.marker);
    let tries = first.ctx.retry.max_attempts;
    sb.inject(Fault::lose_response(Some("POST"), &tokens(&name), tries));
    let minted_before = sb.minted_tokens().len();
    let e = adapter()
        .provision_database(&mut first.ctx, &dock, &config(json!({"name": "later"})))
        .await
        .expect_err("every mint lost its answer");
    assert!(e.outcome_unknown(), "{e:?}");
    assert_eq!(sb.minted_tokens().len() - minted_before, tries as usize);
    assert!(
        sb.working_tokens(&name).is_empty(),
        "a token whose answer was lost still works"
    );
    let mut again = first.resume(&dock, &first.recorder.recorded());
    adapter()
        .provision_database(&mut again.ctx, &dock, &config(json!({"name": "later"})))
        .await
        .expect("provisioned on the next run");
    kept_token_is_the_only_working_one(&sb, &again, &name, "a later run");
}

fn kept_token_is_the_only_working_one(
    sb: &stackdock_sandbox::TursoSandbox,
    run: &Run,
    name: &str,
    how: &str,
) {
    let steps = run.recorder.steps();
    let kept = steps
        .iter()
        .find_map(|s| match decode_step::<TursoStep>(s) {
            Ok(TursoStep::TokenMinted { sealed, .. }) => Some(sealed),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{how}: no token kept: {steps:?}"));
    let kept = run.recorder.open(&kept).expose().to_string();
    assert_eq!(sb.working_tokens(name), [kept], "{how}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_group_is_used_as_it_is() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    sb.create_database_directly("theirs", "eu", "aws-eu-west-1");
    let dock = turso_dock(&sb, &key);
    let mut run = Run::new(&dock);

    let progress = adapter()
        .provision_database(
            &mut run.ctx,
            &dock,
            &config(json!({"name": "orders", "group": "eu", "location": "aws-us-west-2"})),
        )
        .await
        .expect("provisioned");

    assert!(matches!(progress, Progress::Done(Some(_))), "{progress:?}");
    // No group was created, so none is moved to the location asked for a new one.
    assert_eq!(names(&sb.groups(), "name"), ["eu"]);
    assert_eq!(sb.groups()[0]["primary"], "aws-eu-west-1");
    let group_creates = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/groups"))
        .count();
    assert_eq!(group_creates, 0);
    assert_eq!(
        run.recorder.steps()[0].output,
        json!({"step": "group_checked", "group": "eu", "existed": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_provision_unwinds_to_nothing_at_turso() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    let name = database_name(&run.marker);
    // Turso refuses to mint the token: a permanent failure after group and database exist.
    sb.inject(Fault::error(
        Some("POST"),
        &format!("{}/{name}/auth/tokens", databases_path()),
        400,
        1,
    ));

    let err = ado
        .provision_database(&mut run.ctx, &dock, &config(json!({"name": "orders"})))
        .await
        .expect_err("the token was refused");
    let DockError::Provider(p) = &err else {
        panic!("a refusal in Turso's words: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (400, "bad_request"));
    assert!(!sb.databases().is_empty(), "the database was made first");

    let steps = run.recorder.steps();
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound");
    assert_eq!(sb.databases(), Vec::<Value>::new());
    assert_eq!(
        sb.groups(),
        Vec::<Value>::new(),
        "the group it made is gone too"
    );
    // Undoing again is harmless.
    engine::unwind(&ado, &mut run.ctx, &dock, &steps)
        .await
        .expect("unwound twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_a_group_it_made_spares_databases_added_since() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::with(&dock, MemRecorder::stopping_at(2, support::Stop::Cancel));

    let err = ado
        .provision_database(&mut run.ctx, &dock, &config(json!({"name": "orders"})))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DockError::Cancelled), "{err:?}");
    // Someone puts a database of their own in the group meanwhile.
    sb.create_database_directly("theirs", "default", "aws-us-east-1");

    engine::unwind(&ado, &mut run.ctx, &dock, &run.recorder.steps())
        .await
        .expect("unwound");
    assert_eq!(names(&sb.databases(), "Name"), ["theirs"]);
    assert_eq!(names(&sb.groups(), "name"), ["default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_each_database_once_with_its_marker_if_any() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    ado.provision_database(&mut run.ctx, &dock, &config(json!({"name": "ours"})))
        .await
        .expect("provisioned");
    sb.create_database_directly("theirs", "other", "aws-eu-west-1");

    let found = ado
        .discover(&mut Run::new(&dock).ctx, &dock)
        .await
        .expect("discovered");
    let mut seen: Vec<(String, Option<String>)> = found
        .iter()
        .map(|o| {
            (
                o.provider_resource_id.clone(),
                o.marker.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    seen.sort();
    let ours = database_name(&run.marker);
    let mut expected = vec![
        (ours.clone(), Some(run.marker.to_string())),
        ("theirs".to_string(), None),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    // One listing: Turso does not paginate.
    let lists = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == databases_path())
        .count();
    assert_eq!(lists, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_without_an_organization_is_refused_by_name_without_a_call() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let mut dock = turso_dock(&sb, &key);
    dock.settings = json!({});

    let err = adapter()
        .provision_database(
            &mut Run::new(&dock).ctx,
            &dock,
            &config(json!({"name": "orders"})),
        )
        .await
        .expect_err("no organization");
    let DockError::InvalidConfig(c) = &err else {
        panic!("a config error: {err:?}");
    };
    assert_eq!(c.field, "organization");
    assert!(c.message.contains("turso-test"), "{c}");
    assert_eq!(sb.request_counts().total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_defaults_and_bad_fields_are_named() {
    let schema = adapter()
        .config_schema(ResourceKind::Database)
        .expect("databases");
    assert_eq!(schema.validate(&config(json!({"name": "n"}))), Ok(()));
    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n", "group": "Not A Slug"}), "group"),
        (json!({"name": "n", "location": 3}), "location"),
        (json!({"name": "n", "region": "x"}), "region"),
        (json!({"group": "g"}), "name"),
    ] {
        let err = schema.validate(&config(bad.clone())).expect_err("refused");
        assert_eq!(err.field, field, "{bad}");
    }
    let settings = adapter().dock_settings_schema().expect("dock settings");
    assert_eq!(
        settings.validate(&config(json!({}))).unwrap_err().field,
        "organization"
    );
    assert_eq!(
        settings
            .validate(&config(json!({"organization": "acme", "team": "x"})))
            .unwrap_err()
            .field,
        "team"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_and_turso_errors_keep_its_words() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let ado = adapter();

    let good = turso_dock(&sb, &key);
    ado.verify_credentials(&mut Run::new(&good).ctx, &good)
        .await
        .expect("a good key");

    let bad = turso_dock(&sb, "not-the-key");
    let err = ado
        .verify_credentials(&mut Run::new(&bad).ctx, &bad)
        .await
        .expect_err("a bad key");
    let DockError::Provider(p) = &err else {
        panic!("Turso's refusal: {err:?}");
    };
    assert_eq!((p.status, p.code.as_str()), (401, "unauthorized"));
    assert_eq!(p.message, "token is invalid or expired");

    let mut elsewhere = turso_dock(&sb, &key);
    elsewhere.settings = json!({"organization": "someone-else"});
    let err = ado
        .verify_credentials(&mut Run::new(&elsewhere).ctx, &elsewhere)
        .await
        .expect_err("another organization");
    let DockError::Provider(p) = &err else {
        panic!("Turso's refusal: {err:?}");
    };
    assert_eq!(
        (p.status, p.message.as_str()),
        (404, "organization not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_deletes_at_once_and_twice_is_fine() {
    let key = canary();
    let sb = turso_sandbox(&key).await;
    let dock = turso_dock(&sb, &key);
    let ado = adapter();
    let mut run = Run::new(&dock);
    ado.provision_database(&mut run.ctx, &dock, &config(json!({"name": "orders"})))
        .await
        .expect("provisioned");
    let target = run.tracked(ResourceKind::Database).expect("tracked");

    for _ in 0..2 {
        let progress = ado
            .deprovision(&mut Run::new(&dock).ctx, &dock, &target)
            .await
            .expect("deleted");
        assert_eq!(progress, Progress::Done(None));
        assert_eq!(sb.databases(), Vec::<Value>::new());
    }
}
