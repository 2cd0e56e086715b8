//! Recording intent and the dock's key: what a request writes (or refuses to write) before any
//! provider is called, deprovisioning what never reached the provider, and the API key kept
//! sealed in the database from start to end.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stackdock_core::{
    Keyring, MasterKey, OpKind, OpState, Outcome, ProvisioningState, ResourceKind,
};
use stackdock_docks::Registry;
use stackdock_engine::{Engine, EngineError};
use stackdock_store::{PageRequest, ResourceFilter, Store};
use support::{DEADLINE, server_config, spawn_engine, spawn_engine_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_resource_that_never_reached_the_provider_deprovisions_without_calling_it() {
    let t = spawn_engine().await;
    let mut config = server_config("web-1");
    // Valid for the schema; only DigitalOcean knows the size does not exist.
    config.insert("size".into(), "s-64vcpu-1tb".into());
    let (requested, op) = t
        .engine
        .request_provision(t.actor, &t.dock, ResourceKind::Server, config)
        .await
        .unwrap();
    let failed = t.run_until_finished(op.id).await;
    assert_eq!(failed.state, OpState::Failed);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    assert_eq!(row.provider_resource_id, None);
    assert_eq!(
        row.error.as_ref().map(|e| e.code.as_str()),
        Some("unprocessable_entity")
    );
    let calls_before = t.sandbox.requests().len();

    let (deprovisioning, op) = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .expect("a failed resource can be deprovisioned");
    assert_eq!(
        deprovisioning.provisioning_state,
        ProvisioningState::Deprovisioning
    );
    let done = t.run_until_finished(op.id).await;

    assert_eq!(done.state, OpState::Succeeded);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Deprovisioned);
    assert_eq!(row.error, None);
    // Nothing was recorded at the provider; before settling, a lookup by the row's marker
    // makes sure nothing carrying it exists (the droplets tagged with it, then the GPU
    // droplets, which no listing by tag shows), and nothing is deleted.
    let asked: Vec<_> = t.sandbox.requests()[calls_before..]
        .iter()
        .map(|r| (r.method.clone(), r.query.clone().unwrap_or_default()))
        .collect();
    let marker = row.marker.clone().expect("a marker");
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked.iter().all(|(method, _)| method == "GET"), "{asked:?}");
    assert!(asked[0].1.contains(marker.as_str()), "{asked:?}");
    assert!(asked[1].1.contains("type=gpus"), "{asked:?}");
    let audit = t.audit_of(&row).await;
    let last: Vec<(&str, Outcome)> = audit
        .iter()
        .rev()
        .take(2)
        .map(|a| (a.action.as_str(), a.outcome))
        .collect();
    assert_eq!(
        last,
        [
            ("server.deprovision", Outcome::Success),
            ("server.deprovision", Outcome::Requested)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_is_refused_while_an_operation_is_active_or_once_deprovisioned() {
    let t = spawn_engine().await;
    let (requested, provision) = t.provision("web-1").await;

    // The provision is queued, not run: the row must not change under it.
    let err = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .expect_err("conflict");
    let EngineError::Conflict(message) = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert!(
        message.contains(&provision.id.to_string()) && message.contains("provision"),
        "{message}"
    );
    assert_eq!(
        t.resource(requested.id).await.provisioning_state,
        ProvisioningState::Provisioning
    );
    let ops = t
        .store
        .list_operations(t.actor.org_id, Some(requested.id), &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(ops.len(), 1, "a refused request records nothing: {ops:?}");

    t.run_until_finished(provision.id).await;
    let (_, deprovision) = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .expect("a provisioned resource can be deprovisioned");
    assert!(matches!(
        t.engine.request_deprovision(t.actor, requested.id).await,
        Err(EngineError::Conflict(_))
    ));
    t.run_until_finished(deprovision.id).await;
    assert!(t.sandbox.droplets().is_empty());
    let err = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .expect_err("nothing left to deprovision");
    assert!(
        matches!(&err, EngineError::Conflict(m) if m.contains("deprovisioned")),
        "{err:?}"
    );
    let kinds: Vec<OpKind> = t
        .store
        .list_operations(t.actor.org_id, Some(requested.id), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.kind)
        .collect();
    assert_eq!(kinds, [OpKind::Deprovision, OpKind::Provision]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_request_names_the_field_and_writes_nothing() {
    let t = spawn_engine().await;
    let audit_before = t
        .store
        .list_audit(t.actor.org_id, 100, None)
        .await
        .unwrap()
        .len();
    let mut no_size = server_config("web-1");
    no_size.remove("size");
    let mut unknown = server_config("web-1");
    unknown.insert("colour".into(), "red".into());
    let mut wrong_type = server_config("web-1");
    wrong_type.insert("ipv6".into(), "yes".into());
    let cases = [
        (no_size, "size", "missing field"),
        (server_config("web_1"), "name", "not a valid hostname"),
        (unknown, "colour", "unknown field"),
        (wrong_type, "ipv6", "expected a boolean"),
    ];

    for (config, field, says) in cases {
        let err = t
            .engine
            .request_provision(t.actor, &t.dock, ResourceKind::Server, config)
            .await
            .expect_err("invalid");
        let EngineError::InvalidConfig(e) = &err else {
            panic!("expected invalid config, got {err:?}");
        };
        assert_eq!(e.field, field);
        assert!(e.message.contains(says), "{e:?}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = t
        .engine
        .request_provision(
            t.actor,
            &t.dock,
            ResourceKind::WebService,
            server_config("site"),
        )
        .await
        .expect_err("DigitalOcean docks make no web services");
    assert!(
        matches!(&err, EngineError::UnsupportedKind { supported, .. } if supported == "servers, domains, databases"),
        "{err:?}"
    );

    let rows = t
        .store
        .list_resources(
            t.actor.org_id,
            &ResourceFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap()
        .items;
    assert!(rows.is_empty(), "{rows:?}");
    let ops = t
        .store
        .list_operations(t.actor.org_id, None, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(ops.is_empty(), "{ops:?}");
    let audit_after = t.store.list_audit(t.actor.org_id, 100, None).await.unwrap();
    assert_eq!(audit_after.len(), audit_before, "{audit_after:?}");
    assert!(!t.run_one().await, "nothing was queued");
    assert!(t.sandbox.requests().is_empty());
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dock_key_is_sealed_and_never_written_in_plaintext() {
    let t = spawn_engine().await;
    let key = t.key.clone();
    assert!(!t.dock.sealed_api_key.as_str().contains(&key));
    let stored = t.store.get_dock(t.actor.org_id, t.dock.id).await.unwrap();
    assert_eq!(stored.sealed_api_key, t.dock.sealed_api_key);
    assert_eq!(
        t.engine
            .keyring()
            .open(&stored.sealed_api_key, &t.dock.id.to_string())
            .unwrap()
            .expose(),
        key
    );

    // A whole life, with failures along the way so error text is written too.
    t.sandbox.inject(stackdock_sandbox::Fault::error(
        Some("POST"),
        "/v2/droplets",
        500,
        1,
    ));
    let (requested, op) = t.provision("web-1").await;
    assert_eq!(t.run_until_finished(op.id).await.state, OpState::Succeeded);
    let (_, op) = t
        .engine
        .request_deprovision(t.actor, requested.id)
        .await
        .unwrap();
    assert_eq!(t.run_until_finished(op.id).await.state, OpState::Succeeded);
    let calls = t
        .store
        .api_calls(t.actor.org_id, requested.id, &PageRequest::first(1000))
        .await
        .unwrap()
        .items;
    assert!(calls.len() >= 4, "{calls:?}");
    t.store.close().await;

    // SQLite may still fold its WAL into the database and delete it just after the pools
    // close; a scan that lost a file to that starts over, so nothing is read half-moved.
    let deadline = Instant::now() + DEADLINE;
    let contents = loop {
        let files = files_under(t.dir.path());
        let read: Result<Vec<_>, _> = files
            .iter()
            .map(|f| std::fs::read(f).map(|bytes| (f.clone(), bytes)))
            .collect();
        match read {
            Ok(contents) => break contents,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot read the data dir: {e}"),
        }
    };
    assert!(
        contents
            .iter()
            .any(|(f, _)| f.extension().is_some_and(|e| e == "db")),
        "no database file in the data dir"
    );
    let forms = stackdock_core::redact::encoded_forms(&key);
    for (file, bytes) in contents {
        for form in &forms {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "{} holds the API key as {form:?}",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dock_sealed_under_another_master_key_fails_without_calling_the_provider() {
    let t = spawn_engine().await;
    // The same database opened with the wrong master key (a lost or swapped key file).
    let other = Engine::new(
        t.store.clone(),
        Registry::builtin(),
        Keyring::new(MasterKey::generate()),
        t.engine.config().clone(),
    );
    let (requested, op) = other
        .request_provision(
            t.actor,
            &t.dock,
            ResourceKind::Server,
            server_config("web-1"),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while !other.run_next("w-other").await.unwrap() {
        assert!(started.elapsed() < support::DEADLINE, "nothing to run");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let done = t.operation(op.id).await;
    assert_eq!(done.state, OpState::Failed);
    let row = t.resource(requested.id).await;
    assert_eq!(row.provisioning_state, ProvisioningState::Failed);
    let error = row.error.expect("error");
    assert_eq!(error.code, "dock_key_unavailable");
    assert!(error.message.contains("do-test"), "{}", error.message);
    assert!(t.sandbox.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_operations_of_a_dock_whose_key_cannot_be_opened_are_set_back() {
    let t = spawn_engine_with(support::Options {
        ready_after: std::time::Duration::from_secs(3600),
        ..support::Options::default()
    })
    .await;
    let (_, op) = t.provision("web-1").await;
    assert!(t.run_one().await);
    assert_eq!(t.operation(op.id).await.state, OpState::Waiting);
    let calls_before = t.sandbox.requests().len();

    // The same database opened with the wrong master key: the dock cannot be checked.
    let other = Engine::new(
        t.store.clone(),
        Registry::builtin(),
        Keyring::new(MasterKey::generate()),
        t.engine.config().clone(),
    );
    let due = t.operation(op.id).await.next_run_at;
    let wait = due - chrono::Utc::now();
    if let Ok(wait) = wait.to_std() {
        tokio::time::sleep(wait).await;
    }
    other.observe_due("observer-other").await.unwrap();

    // Not retried at every pass: its next check moved well ahead, and nothing was called.
    let after = t.operation(op.id).await;
    assert_eq!(after.state, OpState::Waiting);
    assert!(
        after.next_run_at > chrono::Utc::now() + chrono::Duration::seconds(20),
        "{after:?}"
    );
    assert_eq!(t.sandbox.requests().len(), calls_before);
}
