//! The conformance suite of the [`Store`] trait: every implementation runs these bodies, each
//! against a fresh, empty store (`tests/sqlite.rs` for SQLite; PostgreSQL's runner reuses
//! them). Bodies use only the trait, so they hold for any backend.
//!
//! Conventions: a body panics on failure; timing-dependent checks wait for a condition with a
//! deadline instead of sleeping a fixed time.

pub mod fixtures;
mod paging;

pub use paging::*;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stackdock_core::{
    ApiCall, AuditEntry, Dock, DockId, DockName, Marker, OpKind, OpState, Operation, OperationId,
    Outcome, ProvisioningSource, ProvisioningState, ResourceId, ResourceKind, Role, Step,
    StepStatus,
};
use stackdock_store::{
    Batch, Change, DeployLogLine, IdempotentRequest, Lease, PageRequest, Principal, ResourceFilter,
    Store, StoreError, Write,
};

use fixtures::*;

const LONG_LEASE: Duration = Duration::from_secs(600);

fn lease_of(op: &stackdock_core::Operation) -> Lease {
    Lease {
        operation_id: op.id,
        owner: op
            .lease_owner
            .clone()
            .expect("claimed operation has an owner"),
        generation: op.generation,
    }
}

async fn audit_count(store: &dyn Store, org: stackdock_core::OrgId) -> usize {
    store
        .list_audit(org, 1000, None)
        .await
        .expect("list audit")
        .len()
}

// ---- organisations and tokens ----

pub async fn bootstrap_and_principal_for_token(store: &dyn Store) {
    assert_eq!(store.first_org().await.expect("first org"), None);

    let t = new_tenant();
    store
        .bootstrap(&bootstrap_of(&t), audit(t.org, "org.bootstrap"))
        .await
        .expect("bootstrap");

    let principal = store
        .principal_for_token(&t.token_hash)
        .await
        .expect("lookup");
    assert_eq!(
        principal,
        Some(Principal {
            user_id: t.user,
            email: t.email.clone(),
            org_id: t.org,
            role: Role::Owner,
            token_id: t.token_id,
        })
    );
    assert_eq!(
        store
            .principal_for_token("no-such-hash")
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(store.first_org().await.expect("first org"), Some(t.org));

    let rows = store.list_audit(t.org, 10, None).await.expect("audit");
    assert_eq!(rows.len(), 1, "bootstrap writes its audit row");
    assert_eq!(rows[0].action, "org.bootstrap");

    // A second org is not the first one.
    let other = tenant(store).await;
    assert_ne!(other.org, t.org);
    assert_eq!(store.first_org().await.expect("first org"), Some(t.org));

    // Same email again: refused, and nothing of that bootstrap is left behind.
    let mut again = new_tenant();
    again.email = t.email.clone();
    let err = store
        .bootstrap(&bootstrap_of(&again), audit(again.org, "org.bootstrap"))
        .await
        .expect_err("duplicate email");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        store
            .principal_for_token(&again.token_hash)
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(audit_count(store, again.org).await, 0);
}

// ---- docks ----

pub async fn docks_insert_get_find_list(store: &dyn Store) {
    let t = tenant(store).await;
    let b = add_dock(store, t.org, "zeta").await;
    let a = add_dock(store, t.org, "alpha").await;

    let got = store.get_dock(t.org, a.id).await.expect("get");
    assert_eq!(got.id, a.id);
    assert_eq!(got.org_id, t.org);
    assert_eq!(got.provider, a.provider);
    assert_eq!(got.name, a.name);
    assert_eq!(got.sealed_api_key, a.sealed_api_key);
    assert_eq!(got.api_base_url, a.api_base_url);
    assert_eq!(got.settings, a.settings);
    assert_eq!(got.created_at, a.created_at);

    let found = store
        .find_dock_by_name(t.org, &a.name)
        .await
        .expect("find")
        .expect("dock by name");
    assert_eq!(found.id, a.id);
    let missing = DockName::try_from("missing".to_string()).expect("name");
    assert!(
        store
            .find_dock_by_name(t.org, &missing)
            .await
            .expect("find")
            .is_none()
    );

    let names: Vec<String> = store
        .list_docks(t.org, &PageRequest::first(10))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|d| d.name.to_string())
        .collect();
    let mut expected = vec![a.name.to_string(), b.name.to_string()];
    expected.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, expected);

    // Docks are scoped to their org.
    let other = tenant(store).await;
    assert!(
        store
            .list_docks(other.org, &PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let err = store
        .get_dock(other.org, a.id)
        .await
        .expect_err("other org");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(
        store
            .find_dock_by_name(other.org, &a.name)
            .await
            .expect("find")
            .is_none()
    );
    let err = store
        .get_dock(t.org, DockId::new())
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn duplicate_dock_name_is_already_exists(store: &dyn Store) {
    let t = tenant(store).await;
    add_dock(store, t.org, "do-main").await;
    let err = store
        .apply(Batch::new().push(Write::InsertDock(dock(t.org, "do-main"))))
        .await
        .expect_err("duplicate name");
    match err {
        StoreError::AlreadyExists { what } => assert!(what.contains("do-main"), "{what}"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The same name in another org is another dock.
    let other = tenant(store).await;
    add_dock(store, other.org, "do-main").await;
}

pub async fn update_dock_replaces_key_url_and_settings(store: &dyn Store) {
    let t = tenant(store).await;
    let mut d = add_dock(store, t.org, "edit-me").await;
    d.sealed_api_key = sealed("fedcba9876543210");
    d.api_base_url = None;
    d.settings = json!({"changed": true});
    store
        .apply(Batch::new().push(Write::UpdateDock(d.clone())))
        .await
        .expect("update dock");
    let got = store.get_dock(t.org, d.id).await.expect("get");
    assert_eq!(got.sealed_api_key, d.sealed_api_key);
    assert_eq!(got.api_base_url, None);
    assert_eq!(got.settings, json!({"changed": true}));

    let err = store
        .apply(Batch::new().push(Write::UpdateDock(dock(t.org, "never-added"))))
        .await
        .expect_err("unknown dock");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn remove_dock_waits_for_deprovisioning(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "to-remove").await;
    let keep = add_dock(store, t.org, "to-keep").await;
    let live = insert(store, resource(&d, ResourceKind::Server)).await;
    let live = move_to(store, &live, ProvisioningState::Provisioned).await;
    let found = insert(store, discovered(&d, ResourceKind::Domain, "example.test")).await;
    let elsewhere = insert(store, resource(&keep, ResourceKind::Server)).await;

    let before = audit_count(store, t.org).await;
    let err = store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect_err("live api resource blocks removal");
    match err {
        StoreError::Refused { message } => {
            assert!(message.contains('1'), "names how many: {message}");
            assert!(
                message.contains("deprovision"),
                "says what to do: {message}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(
        store.get_dock(t.org, d.id).await.is_ok(),
        "dock still there"
    );
    assert_eq!(
        audit_count(store, t.org).await,
        before,
        "refusal writes no audit row"
    );

    deprovision_fully(store, &live).await;
    store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect("removal once deprovisioned");

    let err = store.get_dock(t.org, d.id).await.expect_err("gone");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .get_resource(t.org, found.id)
        .await
        .expect_err("discovered rows go");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let left = store
        .list_resources(
            t.org,
            &ResourceFilter {
                dock_id: Some(d.id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .expect("list")
        .items;
    assert!(left.is_empty(), "no row of a removed dock stays: {left:?}");
    assert_eq!(
        store
            .get_resource(t.org, elsewhere.id)
            .await
            .expect("other dock untouched")
            .id,
        elsewhere.id
    );
    let rows = store.list_audit(t.org, 1, None).await.expect("audit");
    assert_eq!(rows[0].action, "dock.remove");

    let err = store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect_err("already removed");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn remove_dock_waits_for_operations(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "busy").await;
    let mut op = insert_operation(store, operation(&d, None)).await;
    let err = store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect_err("queued operation blocks removal");
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");

    op.state = OpState::Succeeded;
    store
        .apply(Batch::new().push(Write::UpdateOperation(op.clone())))
        .await
        .expect("finish op");
    store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect("removal once finished");
}

pub async fn remove_unknown_dock_is_not_found(store: &dyn Store) {
    let t = tenant(store).await;
    let err = store
        .remove_dock(t.org, DockId::new(), audit(t.org, "dock.remove"))
        .await
        .expect_err("unknown dock");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    // A dock of another org is unknown here too.
    let other = tenant(store).await;
    let d = add_dock(store, other.org, "theirs").await;
    let err = store
        .remove_dock(t.org, d.id, audit(t.org, "dock.remove"))
        .await
        .expect_err("other org's dock");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(store.get_dock(other.org, d.id).await.is_ok());
}

// ---- resources ----

pub async fn resources_round_trip_every_kind(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "kinds").await;
    for kind in ResourceKind::ALL {
        for r in [fully_populated(&d, kind), resource(&d, kind)] {
            let written = insert(store, r.clone()).await;
            assert_eq!(written, r, "{kind}: insert returns the row as given");
            let got = store.get_resource(t.org, r.id).await.expect("get");
            assert_eq!(got, r, "{kind}: every column round-trips");
            assert_eq!(got.kind(), kind);
        }
    }
}

pub async fn list_resources_honours_every_filter(store: &dyn Store) {
    let t = tenant(store).await;
    let d1 = add_dock(store, t.org, "one").await;
    let d2 = add_dock(store, t.org, "two").await;
    let base = now() - chrono::TimeDelta::hours(1);
    let mut made = Vec::new();
    let specs = [
        (
            &d1,
            ResourceKind::Server,
            ProvisioningSource::Api,
            ProvisioningState::Provisioning,
        ),
        (
            &d1,
            ResourceKind::Domain,
            ProvisioningSource::Manual,
            ProvisioningState::Provisioned,
        ),
        (
            &d2,
            ResourceKind::Database,
            ProvisioningSource::Api,
            ProvisioningState::Failed,
        ),
        (
            &d2,
            ResourceKind::WebService,
            ProvisioningSource::Api,
            ProvisioningState::Provisioned,
        ),
        (
            &d1,
            ResourceKind::Server,
            ProvisioningSource::Manual,
            ProvisioningState::Provisioned,
        ),
    ];
    for (i, (dock, kind, source, state)) in specs.into_iter().enumerate() {
        let mut r = resource(dock, kind);
        r.provisioning_source = source;
        r.provisioning_state = state;
        r.name = if i == 3 {
            "Shop_50%".into()
        } else {
            format!("node-{i}")
        };
        if i == 2 {
            r.provider = "vultr".into();
        }
        r.created_at = base + chrono::TimeDelta::seconds(i as i64);
        r.updated_at = r.created_at;
        made.push(insert(store, r).await);
    }
    let other = tenant(store).await;
    let od = add_dock(store, other.org, "one").await;
    insert(store, resource(&od, ResourceKind::Server)).await;

    let ids = |rs: Vec<stackdock_core::Resource>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let newest_first = |idx: &[usize]| {
        let mut v: Vec<ResourceId> = idx.iter().map(|&i| made[i].id).collect();
        v.reverse();
        v
    };
    let list = |f: ResourceFilter| async move {
        store
            .list_resources(t.org, &f, &PageRequest::first(100))
            .await
            .expect("list")
            .items
    };

    assert_eq!(
        ids(list(ResourceFilter::default()).await),
        newest_first(&[0, 1, 2, 3, 4])
    );
    assert_eq!(
        ids(list(ResourceFilter {
            kind: Some(ResourceKind::Server),
            ..Default::default()
        })
        .await),
        newest_first(&[0, 4])
    );
    for kind in [
        ResourceKind::Domain,
        ResourceKind::Database,
        ResourceKind::WebService,
    ] {
        let got = list(ResourceFilter {
            kind: Some(kind),
            ..Default::default()
        })
        .await;
        assert_eq!(got.len(), 1, "{kind}");
        assert_eq!(got[0].kind(), kind);
    }
    assert_eq!(
        ids(list(ResourceFilter {
            dock_id: Some(d2.id),
            ..Default::default()
        })
        .await),
        newest_first(&[2, 3])
    );
    assert_eq!(
        ids(list(ResourceFilter {
            state: Some(ProvisioningState::Provisioned),
            ..Default::default()
        })
        .await),
        newest_first(&[1, 3, 4])
    );
    assert_eq!(
        ids(list(ResourceFilter {
            source: Some(ProvisioningSource::Manual),
            ..Default::default()
        })
        .await),
        newest_first(&[1, 4])
    );
    assert_eq!(
        ids(list(ResourceFilter {
            kind: Some(ResourceKind::Server),
            dock_id: Some(d1.id),
            state: Some(ProvisioningState::Provisioned),
            source: Some(ProvisioningSource::Manual),
            provider: None,
            name: None,
        })
        .await),
        newest_first(&[4])
    );
    // A search by name ignores ASCII case, and its `%` and `_` match only themselves.
    let named = |text: &str| ResourceFilter {
        name: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(ids(list(named("shop_50%")).await), newest_first(&[3]));
    assert_eq!(ids(list(named("_")).await), newest_first(&[3]));
    assert_eq!(ids(list(named("NODE")).await), newest_first(&[0, 1, 2, 4]));
    assert!(list(named("%%")).await.is_empty());
    let of = |provider: &str| ResourceFilter {
        provider: Some(provider.into()),
        ..Default::default()
    };
    assert_eq!(ids(list(of("vultr")).await), newest_first(&[2]));
    assert_eq!(
        ids(list(of(d1.provider.as_str())).await),
        newest_first(&[0, 1, 3, 4])
    );
    assert!(
        list(ResourceFilter {
            dock_id: Some(od.id),
            ..Default::default()
        })
        .await
        .is_empty(),
        "another org's dock shows nothing"
    );
}

pub async fn get_resource_is_scoped_to_org(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "scoped").await;
    let r = insert(store, resource(&d, ResourceKind::Database)).await;
    let other = tenant(store).await;
    for (org, id) in [(other.org, r.id), (t.org, ResourceId::new())] {
        match store.get_resource(org, id).await {
            Err(StoreError::NotFound { what }) => assert!(what.contains(&id.to_string()), "{what}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

pub async fn resource_in_unknown_dock_is_refused(store: &dyn Store) {
    let t = tenant(store).await;
    let other = tenant(store).await;
    let theirs = add_dock(store, other.org, "theirs").await;
    // A resource of org t pointing at org other's dock.
    let mut r = resource(&theirs, ResourceKind::Server);
    r.org_id = t.org;
    let err = store
        .apply(Batch::new().push(Write::InsertResource(r)))
        .await
        .expect_err("dock of another org");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn second_writer_from_the_same_read_loses(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "race").await;
    let read = insert(store, resource(&d, ResourceKind::Server)).await;

    let mut first = read.clone();
    first.status = Some("first".into());
    first.provisioning_state = ProvisioningState::Provisioned;
    let mut second = read.clone();
    second.status = Some("second".into());

    let written = store
        .apply(Batch::new().push(update(first, read.version)))
        .await
        .expect("first writer");
    assert_eq!(written[0].version, read.version + 1);
    assert!(written[0].updated_at >= read.updated_at);
    assert_eq!(written[0].created_at, read.created_at);

    let err = store
        .apply(Batch::new().push(update(second, read.version)))
        .await
        .expect_err("second writer");
    match err {
        StoreError::VersionConflict { id, expected } => {
            assert_eq!((id, expected), (read.id, read.version));
        }
        other => panic!("expected VersionConflict, got {other:?}"),
    }
    let stored = store.get_resource(t.org, read.id).await.expect("get");
    assert_eq!(stored, written[0], "the row holds the first writer's data");
    assert_eq!(stored.status.as_deref(), Some("first"));
}

pub async fn illegal_transition_writes_nothing(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "strict").await;
    let r = insert(store, resource(&d, ResourceKind::WebService)).await;
    let audits = audit_count(store, t.org).await;
    let seq = store.latest_change().await.expect("latest");

    let mut bad = r.clone();
    bad.provisioning_state = ProvisioningState::Deprovisioned;
    let err = store
        .apply(
            Batch::new()
                .push(Write::Audit(audit(t.org, "web_service.deprovision")))
                .push(update(bad, r.version)),
        )
        .await
        .expect_err("provisioning -> deprovisioned is illegal");
    match err {
        StoreError::IllegalTransition(e) => {
            assert_eq!(
                (e.from, e.to),
                (
                    ProvisioningState::Provisioning,
                    ProvisioningState::Deprovisioned
                )
            );
        }
        other => panic!("expected IllegalTransition, got {other:?}"),
    }
    assert_eq!(
        audit_count(store, t.org).await,
        audits,
        "the batch's audit row was not kept"
    );
    assert_eq!(store.get_resource(t.org, r.id).await.expect("get"), r);
    assert_eq!(store.latest_change().await.expect("latest"), seq);

    // Staying in the same state is an update, not a transition.
    let mut same = r.clone();
    same.status = Some("building".into());
    store
        .apply(Batch::new().push(update(same, r.version)))
        .await
        .expect("same-state update");
}

pub async fn batch_is_all_or_nothing(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "atomic").await;
    let r = resource(&d, ResourceKind::Server);
    let op = operation(&d, Some(&r));
    let audits = audit_count(store, t.org).await;
    let seq = store.latest_change().await.expect("latest");

    let err = store
        .apply(
            Batch::new()
                .push(Write::InsertResource(r.clone()))
                .push(Write::InsertOperation(op.clone()))
                .push(Write::Audit(audit(t.org, "server.provision")))
                .push(Write::InsertDock(dock(t.org, "atomic"))),
        )
        .await
        .expect_err("the last write fails");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");

    assert!(matches!(
        store.get_resource(t.org, r.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_operation(t.org, op.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(audit_count(store, t.org).await, audits);
    assert_eq!(store.latest_change().await.expect("latest"), seq);
    assert!(
        store
            .find_by_marker(t.org, r.marker.as_ref().expect("marker"))
            .await
            .expect("find")
            .is_none()
    );

    // The same intent without the bad write lands whole.
    let written = store
        .apply(
            Batch::new()
                .push(Write::InsertResource(r.clone()))
                .push(Write::InsertOperation(op.clone()))
                .push(Write::Audit(audit(t.org, "server.provision"))),
        )
        .await
        .expect("intent");
    assert_eq!(written, vec![r.clone()]);
    assert_eq!(
        store.get_operation(t.org, op.id).await.expect("op").id,
        op.id
    );
}

pub async fn duplicates_of_live_resources_are_refused(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "dups").await;
    let first = insert(store, discovered(&d, ResourceKind::Server, "droplet-1")).await;

    let expect_exists =
        |res: Result<Vec<stackdock_core::Resource>, StoreError>, what: &str| match res {
            Err(StoreError::AlreadyExists { .. }) => {}
            other => panic!("{what}: expected AlreadyExists, got {other:?}"),
        };
    // Same id.
    expect_exists(
        store
            .apply(Batch::new().push(Write::InsertResource(first.clone())))
            .await,
        "same id",
    );
    // Same provider id, same dock and kind, while the first is live.
    let twin = discovered(&d, ResourceKind::Server, "droplet-1");
    expect_exists(
        store
            .apply(Batch::new().push(Write::InsertResource(twin.clone())))
            .await,
        "same provider id",
    );
    // Same marker, even in another kind's table.
    let api = insert(store, resource(&d, ResourceKind::Server)).await;
    let mut copy = resource(&d, ResourceKind::Database);
    copy.marker = api.marker.clone();
    expect_exists(
        store
            .apply(Batch::new().push(Write::InsertResource(copy)))
            .await,
        "same marker",
    );
    // The same id in another kind's table.
    let mut elsewhere = resource(&d, ResourceKind::Domain);
    elsewhere.id = api.id;
    elsewhere.marker = None;
    expect_exists(
        store
            .apply(Batch::new().push(Write::InsertResource(elsewhere)))
            .await,
        "same id, another kind",
    );
    // An update that would take another row's marker.
    let other = insert(store, resource(&d, ResourceKind::Database)).await;
    let mut thief = other.clone();
    thief.marker = api.marker.clone();
    expect_exists(
        store
            .apply(Batch::new().push(update(thief, other.version)))
            .await,
        "an update taking a marker",
    );
    // The same provider id in another dock is another resource.
    let d2 = add_dock(store, t.org, "dups-two").await;
    insert(store, discovered(&d2, ResourceKind::Server, "droplet-1")).await;

    // Once the first is deprovisioned, the provider id may be tracked again.
    let mut leaving = first.clone();
    leaving.provisioning_state = ProvisioningState::Deprovisioning;
    let leaving = store
        .apply(Batch::new().push(update(leaving, first.version)))
        .await
        .expect("deprovisioning")
        .remove(0);
    move_to(store, &leaving, ProvisioningState::Deprovisioned).await;
    let again = insert(store, twin).await;
    let found = store
        .find_by_provider_id(t.org, d.id, ResourceKind::Server, "droplet-1")
        .await
        .expect("find")
        .expect("live row");
    assert_eq!(found.id, again.id);
}

pub async fn find_by_provider_id_ignores_deprovisioned(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "finder").await;
    let mut r = resource(&d, ResourceKind::Domain);
    r.provider_resource_id = Some("zone-9".into());
    let r = insert(store, r).await;

    let found = store
        .find_by_provider_id(t.org, d.id, ResourceKind::Domain, "zone-9")
        .await
        .expect("find");
    assert_eq!(found.map(|f| f.id), Some(r.id));
    // Kind, dock and id must all match.
    for (dock, kind, pid) in [
        (d.id, ResourceKind::Server, "zone-9"),
        (DockId::new(), ResourceKind::Domain, "zone-9"),
        (d.id, ResourceKind::Domain, "zone-10"),
    ] {
        assert!(
            store
                .find_by_provider_id(t.org, dock, kind, pid)
                .await
                .expect("find")
                .is_none()
        );
    }

    deprovision_fully(store, &r).await;
    assert!(
        store
            .find_by_provider_id(t.org, d.id, ResourceKind::Domain, "zone-9")
            .await
            .expect("find")
            .is_none(),
        "a deprovisioned row is history, not a live resource"
    );
}

pub async fn find_by_marker_across_kinds(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "markers").await;
    for kind in ResourceKind::ALL {
        let r = insert(store, resource(&d, kind)).await;
        let marker = r.marker.clone().expect("api rows carry a marker");
        let found = store
            .find_by_marker(t.org, &marker)
            .await
            .expect("find")
            .expect("by marker");
        assert_eq!(found, r);
    }
    let unknown = Marker::for_resource(&ResourceId::new());
    assert!(
        store
            .find_by_marker(t.org, &unknown)
            .await
            .expect("find")
            .is_none()
    );
}

// ---- operations and leases ----

pub async fn fencing_stops_a_stale_worker(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "fence").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let op = insert_operation(store, operation(&d, Some(&r))).await;

    let a = store
        .claim_operation("worker-a", Duration::from_millis(50))
        .await
        .expect("claim")
        .expect("queued op is claimed");
    assert_eq!(
        (a.id, a.state, a.generation, a.attempt),
        (op.id, OpState::Running, 1, 1)
    );
    assert_eq!(a.lease_owner.as_deref(), Some("worker-a"));
    let a_expires = a.lease_expires_at.expect("lease expiry");
    assert!(a_expires > a.updated_at);
    let stale = lease_of(&a);

    let b = claim_within(store, "worker-b", LONG_LEASE, Duration::from_secs(10))
        .await
        .expect("the expired lease is claimed again");
    assert_eq!(b.id, op.id);
    assert_eq!(b.generation, 2);
    assert_eq!(b.attempt, 2);
    assert_eq!(b.lease_owner.as_deref(), Some("worker-b"));
    let fresh = lease_of(&b);

    let audits = audit_count(store, t.org).await;
    let mut progress = r.clone();
    progress.provisioning_state = ProvisioningState::Provisioned;
    let stale_write = Batch::fenced(&stale)
        .push(update(progress.clone(), r.version))
        .push(Write::RecordStep(Step {
            operation_id: op.id,
            index: 0,
            name: "create".into(),
            status: StepStatus::Done,
            output: json!({"id": "stale"}),
            undo: json!(null),
            at: now(),
        }))
        .push(Write::Audit(audit(t.org, "server.provision")));
    match store.apply(stale_write).await {
        Err(StoreError::Fenced(id)) => assert_eq!(id, op.id),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(store.get_resource(t.org, r.id).await.expect("get"), r);
    assert!(store.steps(t.org, op.id).await.expect("steps").is_empty());
    assert_eq!(audit_count(store, t.org).await, audits);

    match store.renew_lease(&stale, LONG_LEASE).await {
        Err(StoreError::Fenced(id)) => assert_eq!(id, op.id),
        other => panic!("expected Fenced, got {other:?}"),
    }

    store
        .renew_lease(&fresh, LONG_LEASE)
        .await
        .expect("current lease renews");
    let written = store
        .apply(Batch::fenced(&fresh).push(update(progress, r.version)))
        .await
        .expect("current lease writes");
    assert_eq!(
        written[0].provisioning_state,
        ProvisioningState::Provisioned
    );
}

pub async fn expire_leases_frees_only_the_named_workers(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "expire").await;
    for _ in 0..3 {
        insert_operation(store, operation(&d, None)).await;
    }
    let mine = store
        .claim_operation("node-a-0", LONG_LEASE)
        .await
        .expect("claim")
        .expect("claimed");
    let sibling = store
        .claim_operation("node-a-1", LONG_LEASE)
        .await
        .expect("claim")
        .expect("claimed");
    let other = store
        .claim_operation("node-b-0", LONG_LEASE)
        .await
        .expect("claim")
        .expect("claimed");
    // A prefix is matched as text: `_` and `%` are not wildcards.
    assert_eq!(store.expire_leases("node_").await.expect("expire"), 0);
    assert_eq!(store.expire_leases("node-a-").await.expect("expire"), 2);

    // Both of node a's operations can be claimed again at once; node b's cannot.
    let mut reclaimed = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reclaimed.len() < 2 {
        match store
            .claim_operation("node-c-0", LONG_LEASE)
            .await
            .expect("claim")
        {
            Some(op) => reclaimed.push(op.id),
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "expired leases not claimable"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    reclaimed.sort();
    let mut expected = vec![mine.id, sibling.id];
    expected.sort();
    assert_eq!(reclaimed, expected);
    assert!(
        store
            .claim_operation("node-c-0", LONG_LEASE)
            .await
            .expect("claim")
            .is_none(),
        "node b's lease was ended too"
    );
    let still = store.get_operation(t.org, other.id).await.expect("get");
    assert_eq!(still.lease_owner.as_deref(), Some("node-b-0"));
}

pub async fn renew_lease_only_while_held(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "renew").await;
    insert_operation(store, operation(&d, None)).await;
    let op = store
        .claim_operation("worker", Duration::from_secs(1))
        .await
        .expect("claim")
        .expect("claimed");
    let lease = lease_of(&op);
    store.renew_lease(&lease, LONG_LEASE).await.expect("renew");
    let renewed = store.get_operation(t.org, op.id).await.expect("get");
    assert!(
        renewed.lease_expires_at > op.lease_expires_at,
        "the lease moved forward"
    );
    assert_eq!(renewed.generation, op.generation, "renewal is not a claim");

    let wrong_owner = Lease {
        owner: "someone-else".into(),
        ..lease.clone()
    };
    assert!(matches!(
        store.renew_lease(&wrong_owner, LONG_LEASE).await,
        Err(StoreError::Fenced(_))
    ));

    let mut done = renewed.clone();
    done.state = OpState::Succeeded;
    store
        .apply(Batch::fenced(&lease).push(Write::UpdateOperation(done)))
        .await
        .expect("finish under the lease");
    assert!(
        matches!(
            store.renew_lease(&lease, LONG_LEASE).await,
            Err(StoreError::Fenced(_))
        ),
        "a finished operation holds no lease"
    );
    assert!(
        store
            .claim_operation("worker", LONG_LEASE)
            .await
            .expect("claim")
            .is_none(),
        "a finished operation is never claimed"
    );
}

/// Takes the store shared, to claim from several tasks at once.
pub async fn claims_are_exclusive(store: Arc<dyn Store>) {
    let t = tenant(&*store).await;
    let d = add_dock(&*store, t.org, "crowd").await;
    let mut expected = Vec::new();
    for _ in 0..20 {
        expected.push(insert_operation(&*store, operation(&d, None)).await.id);
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(op) = store
                .claim_operation(&format!("worker-{w}"), LONG_LEASE)
                .await
                .expect("claim")
            {
                assert_eq!(
                    op.lease_owner.as_deref(),
                    Some(format!("worker-{w}").as_str())
                );
                mine.push(op.id);
            }
            mine
        }));
    }
    let mut seen: HashMap<OperationId, usize> = HashMap::new();
    for w in workers {
        for id in w.await.expect("worker task") {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), expected.len(), "every operation was claimed");
    for id in expected {
        assert_eq!(seen.get(&id), Some(&1), "operation {id} claimed once");
    }
    for op in store
        .list_operations(t.org, None, &PageRequest::first(100))
        .await
        .expect("list")
        .items
    {
        assert_eq!((op.generation, op.attempt), (1, 1));
    }
}

pub async fn future_operations_are_not_claimed(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "later").await;
    let mut later = operation(&d, None);
    later.next_run_at = now() + chrono::TimeDelta::hours(1);
    insert_operation(store, later.clone()).await;
    assert!(
        store
            .claim_operation("w", LONG_LEASE)
            .await
            .expect("claim")
            .is_none()
    );

    let due = insert_operation(store, operation(&d, None)).await;
    let claimed = store
        .claim_operation("w", LONG_LEASE)
        .await
        .expect("claim")
        .expect("due op");
    assert_eq!(claimed.id, due.id);
    assert!(
        store
            .claim_operation("w", LONG_LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    let still = store.get_operation(t.org, later.id).await.expect("get");
    assert_eq!((still.state, still.generation), (OpState::Queued, 0));
}

pub async fn claims_take_the_oldest_first(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "fifo").await;
    let base = now() - chrono::TimeDelta::minutes(10);
    let mut ops = Vec::new();
    // Inserted newest first, so insertion order cannot pass for age.
    for minutes in [3, 2, 1] {
        let mut op = operation(&d, None);
        op.next_run_at = base + chrono::TimeDelta::minutes(minutes);
        ops.push(insert_operation(store, op).await);
    }
    for expected in [&ops[2], &ops[1], &ops[0]] {
        let got = store
            .claim_operation("w", LONG_LEASE)
            .await
            .expect("claim")
            .expect("op");
        assert_eq!(got.id, expected.id);
    }
}

pub async fn claims_pass_over_the_docks_asked_to_skip(store: &dyn Store) {
    let t = tenant(store).await;
    let busy = add_dock(store, t.org, "busy").await;
    let free = add_dock(store, t.org, "free").await;
    let mut of_busy = Vec::new();
    for _ in 0..3 {
        of_busy.push(insert_operation(store, operation(&busy, None)).await.id);
        insert_operation(store, operation(&free, None)).await;
    }
    let got = store
        .claim_operations("w", LONG_LEASE, 10, &[busy.id])
        .await
        .expect("claim");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|o| o.dock_id == free.id), "{got:?}");
    for id in &of_busy {
        let left = store.get_operation(t.org, *id).await.expect("get");
        assert_eq!((left.state, left.generation), (OpState::Queued, 0));
    }
    // Skipping nothing, the rest are claimed.
    let rest = store
        .claim_operations("w", LONG_LEASE, 10, &[])
        .await
        .expect("claim");
    let mut ids: Vec<_> = rest.iter().map(|o| o.id).collect();
    ids.sort();
    of_busy.sort();
    assert_eq!(ids, of_busy);
}

pub async fn record_step_twice_leaves_one_row(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "steps").await;
    let op = insert_operation(store, operation(&d, None)).await;
    let step = |index: i64, status: StepStatus, output: serde_json::Value| Step {
        operation_id: op.id,
        index,
        name: format!("step-{index}"),
        status,
        output,
        undo: json!({"delete": "droplet-1"}),
        at: now(),
    };
    store
        .apply(Batch::new().push(Write::RecordStep(step(
            0,
            StepStatus::Done,
            json!({"id": 1}),
        ))))
        .await
        .expect("record");
    let replay = step(0, StepStatus::Undone, json!({"id": 1, "again": true}));
    store
        .apply(Batch::new().push(Write::RecordStep(replay.clone())))
        .await
        .expect("record again");
    let second = step(1, StepStatus::Done, json!(null));
    store
        .apply(Batch::new().push(Write::RecordStep(second.clone())))
        .await
        .expect("record next");
    assert_eq!(
        store.steps(t.org, op.id).await.expect("steps"),
        vec![replay, second]
    );
    assert!(
        store
            .steps(t.org, OperationId::new())
            .await
            .expect("steps")
            .is_empty()
    );
}

pub async fn operations_get_list_and_active(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "ops").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let base = now() - chrono::TimeDelta::minutes(5);
    let mut first = operation(&d, Some(&r));
    first.created_at = base;
    first.requested_by = Some(t.user);
    let first = insert_operation(store, first).await;
    let mut sync = operation(&d, None);
    sync.kind = OpKind::Sync;
    sync.created_at = base + chrono::TimeDelta::minutes(1);
    let sync = insert_operation(store, sync).await;

    assert_eq!(
        store.get_operation(t.org, first.id).await.expect("get"),
        first
    );
    let other = tenant(store).await;
    assert!(matches!(
        store.get_operation(other.org, first.id).await,
        Err(StoreError::NotFound { .. })
    ));
    let all: Vec<OperationId> = store
        .list_operations(t.org, None, &PageRequest::first(10))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(all, vec![sync.id, first.id], "newest first");
    assert_eq!(
        store
            .list_operations(t.org, None, &PageRequest::first(1))
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let of_r = store
        .list_operations(t.org, Some(r.id), &PageRequest::first(10))
        .await
        .expect("list")
        .items;
    assert_eq!(
        of_r.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![first.id]
    );
    assert!(
        store
            .list_operations(other.org, None, &PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    assert_eq!(
        store
            .active_operation_for(t.org, r.id)
            .await
            .expect("active")
            .map(|o| o.id),
        Some(first.id)
    );
    let mut failed = first.clone();
    failed.state = OpState::Failed;
    failed.last_error = Some("quota exceeded".into());
    failed.attempt = 3;
    store
        .apply(Batch::new().push(Write::UpdateOperation(failed.clone())))
        .await
        .expect("update op");
    assert!(
        store
            .active_operation_for(t.org, r.id)
            .await
            .expect("active")
            .is_none()
    );
    let stored = store.get_operation(t.org, first.id).await.expect("get");
    assert_eq!(stored.state, OpState::Failed);
    assert_eq!(stored.last_error.as_deref(), Some("quota exceeded"));
    assert_eq!(stored.attempt, 3);

    let err = store
        .apply(Batch::new().push(Write::UpdateOperation(operation(&d, None))))
        .await
        .expect_err("unknown operation");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

// ---- journal, audit, feed ----

pub async fn change_feed_follows_every_write(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "feed").await;
    let other = tenant(store).await;
    let od = add_dock(store, other.org, "feed").await;
    let start = store.latest_change().await.expect("latest");

    let mut written = Vec::new();
    let a = insert(store, resource(&d, ResourceKind::Server)).await;
    written.push(a.clone());
    insert(store, resource(&od, ResourceKind::Server)).await;
    let b = insert(store, resource(&d, ResourceKind::Domain)).await;
    written.push(b);
    let a2 = move_to(store, &a, ProvisioningState::Provisioned).await;
    written.push(a2.clone());
    let a3 = move_to(store, &a2, ProvisioningState::Deprovisioning).await;
    written.push(a3);

    let changes = store
        .changes_since(t.org, start, 100)
        .await
        .expect("changes");
    assert_eq!(
        changes.len(),
        written.len(),
        "one change per write, none of the other org"
    );
    for (change, resource) in changes.iter().zip(&written) {
        assert_eq!(
            &change.resource, resource,
            "the snapshot is the row as written"
        );
        assert_eq!(change.org_id, t.org);
    }
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "oldest first"
    );
    let last = changes.last().expect("changes").seq;
    assert!(store.latest_change().await.expect("latest") >= last);

    let rest = store
        .changes_since(t.org, changes[1].seq, 100)
        .await
        .expect("changes");
    assert_eq!(
        rest.iter().map(|c| c.seq).collect::<Vec<_>>(),
        changes[2..].iter().map(|c| c.seq).collect::<Vec<_>>()
    );
    let first_two = store.changes_since(t.org, start, 2).await.expect("changes");
    assert_eq!(first_two, changes[..2].to_vec());
    let theirs = store
        .changes_since(other.org, start, 100)
        .await
        .expect("changes");
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].org_id, other.org);

    // Every org's, in one order: the fan-out reads this and filters by org itself.
    let all = store.all_changes_since(start, 100).await.expect("changes");
    let mut merged: Vec<&Change> = changes.iter().chain(&theirs).collect();
    merged.sort_by_key(|c| c.seq);
    assert_eq!(all.iter().collect::<Vec<_>>(), merged);
    assert_eq!(
        store.all_changes_since(start, 2).await.expect("changes"),
        all[..2].to_vec()
    );
    assert_eq!(
        store
            .all_changes_since(all[2].seq, 100)
            .await
            .expect("changes"),
        all[3..].to_vec()
    );
}

pub async fn change_signal_sees_new_seq(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "signal").await;
    let mut rx = store.change_signal();
    let before = *rx.borrow_and_update();
    assert_eq!(before, store.latest_change().await.expect("latest"));

    insert(store, resource(&d, ResourceKind::Server)).await;
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("signalled in time")
        .expect("sender alive");
    let seen = *rx.borrow_and_update();
    assert!(seen > before);
    assert_eq!(seen, store.latest_change().await.expect("latest"));

    // Writes that touch no resource do not wake subscribers.
    store
        .apply(Batch::new().push(Write::Audit(audit(t.org, "noop"))))
        .await
        .expect("audit");
    assert!(!rx.has_changed().expect("sender alive"));
}

pub async fn journal_is_per_resource_and_operation_in_order(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "journal").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let op = insert_operation(store, operation(&d, Some(&r))).await;
    let call = |path: &str, resource: Option<ResourceId>, operation: Option<OperationId>| ApiCall {
        id: 0,
        org_id: t.org,
        dock_id: d.id,
        resource_id: resource,
        operation_id: operation,
        method: "POST".into(),
        path: path.into(),
        status: Some(202),
        duration_ms: 123,
        request_id: Some("req-1".into()),
        attempt: 1,
        error: None,
        at: now(),
        worker: Some("node-a-3".into()),
    };
    let mut timeout = call("/v2/droplets/1", Some(r.id), Some(op.id));
    // A call made outside an operation's lease names no worker.
    timeout.worker = None;
    timeout.status = None;
    timeout.error = Some("timed out after 30s".into());
    timeout.attempt = 2;
    timeout.method = "GET".into();
    let calls = [
        call("/v2/droplets", Some(r.id), Some(op.id)),
        timeout,
        call("/v2/account", None, Some(op.id)),
        call("/v2/droplets/1/actions", Some(r.id), None),
    ];
    for c in &calls {
        store.record_api_call(c.clone()).await.expect("record");
    }
    let strip = |mut c: ApiCall| {
        assert!(c.id > 0, "the store assigns ids");
        c.id = 0;
        c
    };
    let by_resource: Vec<ApiCall> = store
        .api_calls(t.org, r.id, &PageRequest::first(10))
        .await
        .expect("by resource")
        .items
        .into_iter()
        .map(strip)
        .collect();
    assert_eq!(
        by_resource,
        vec![calls[0].clone(), calls[1].clone(), calls[3].clone()]
    );
    let by_op: Vec<ApiCall> = store
        .api_calls_for_operation(t.org, op.id)
        .await
        .expect("by op")
        .into_iter()
        .map(strip)
        .collect();
    assert_eq!(by_op, calls[..3].to_vec());

    let other = tenant(store).await;
    assert!(
        store
            .api_calls(other.org, r.id, &PageRequest::first(10))
            .await
            .expect("scoped")
            .items
            .is_empty()
    );
    assert!(
        store
            .api_calls_for_operation(other.org, op.id)
            .await
            .expect("scoped")
            .is_empty()
    );
}

pub async fn deploy_logs_are_per_resource_in_order_from_a_position(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "logs").await;
    let r = insert(store, resource(&d, ResourceKind::WebService)).await;
    let other = insert(store, resource(&d, ResourceKind::WebService)).await;
    let op = insert_operation(store, operation(&d, Some(&r))).await;
    let line = |resource: ResourceId, text: &str| DeployLogLine {
        seq: 0,
        org_id: t.org,
        resource_id: resource,
        operation_id: op.id,
        line: text.into(),
        at: now(),
    };
    let mut rx = store.deploy_log_signal();
    let before = store.latest_deploy_log().await.expect("latest");
    store
        .append_deploy_log(vec![
            line(r.id, "Step 1/3 : FROM scratch"),
            line(other.id, "elsewhere"),
        ])
        .await
        .expect("append");
    store
        .append_deploy_log(vec![line(r.id, "Step 2/3 : COPY . /")])
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("signalled in time")
        .expect("sender alive");

    let texts =
        |lines: Vec<DeployLogLine>| -> Vec<String> { lines.into_iter().map(|l| l.line).collect() };
    let mine = store
        .deploy_log_since(t.org, Some(r.id), 0, 100)
        .await
        .expect("read");
    assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    let first_seq = mine[0].seq;
    assert_eq!(
        texts(mine),
        ["Step 1/3 : FROM scratch", "Step 2/3 : COPY . /"],
        "the other resource's line is left out"
    );
    assert_eq!(
        texts(
            store
                .deploy_log_since(t.org, Some(r.id), first_seq, 100)
                .await
                .expect("read")
        ),
        ["Step 2/3 : COPY . /"],
        "only after the position"
    );
    assert_eq!(
        texts(
            store
                .deploy_log_since(t.org, None, before, 1)
                .await
                .expect("read")
        ),
        ["Step 1/3 : FROM scratch"],
        "the org's, at most the limit"
    );
    let latest = store.latest_deploy_log().await.expect("latest");
    assert_eq!(*rx.borrow_and_update(), latest);
    assert!(latest >= first_seq + 2);

    let stranger = tenant(store).await;
    assert!(
        store
            .deploy_log_since(stranger.org, Some(r.id), 0, 100)
            .await
            .expect("scoped")
            .is_empty()
    );

    // Every org's lines after a position, oldest first, at most the limit.
    let mut theirs = line(r.id, "another org's line");
    theirs.org_id = stranger.org;
    store.append_deploy_log(vec![theirs]).await.expect("append");
    let all = store
        .all_deploy_log_since(first_seq, 100)
        .await
        .expect("read");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    assert!(
        all.iter()
            .any(|l| l.org_id == t.org && l.line == "Step 2/3 : COPY . /")
    );
    assert!(all.iter().any(|l| l.org_id == stranger.org));
    assert!(
        all.iter().all(|l| l.seq > first_seq),
        "only after the position"
    );
    assert_eq!(
        store
            .all_deploy_log_since(first_seq, 1)
            .await
            .expect("read"),
        all[..1].to_vec()
    );
}

pub async fn audit_is_newest_first_and_pages(store: &dyn Store) {
    let t = tenant(store).await;
    let other = tenant(store).await;
    for i in 0..5 {
        let entry = audit(t.org, &format!("action.{i}"))
            .resource(format!("servers/{i}"))
            .provider("digitalocean")
            .details(json!({"i": i}));
        store
            .apply(Batch::new().push(Write::Audit(entry)))
            .await
            .expect("audit");
    }
    let mut failure = audit(t.org, "action.5");
    failure.at = now();
    failure.outcome = Outcome::Failure;
    failure.actor = Some(t.user);
    store
        .apply(Batch::new().push(Write::Audit(failure.clone())))
        .await
        .expect("audit");

    let all = store.list_audit(t.org, 100, None).await.expect("audit");
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "action.5",
            "action.4",
            "action.3",
            "action.2",
            "action.1",
            "action.0",
            "org.bootstrap"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let newest = &all[0];
    assert_eq!(newest.outcome, Outcome::Failure);
    assert_eq!(newest.actor, Some(t.user));
    assert_eq!(newest.at, failure.at);
    assert_eq!(all[1].resource.as_deref(), Some("servers/4"));
    assert_eq!(all[1].provider.as_deref(), Some("digitalocean"));
    assert_eq!(all[1].details, json!({"i": 4}));

    let page = store
        .list_audit(t.org, 2, Some(all[1].id))
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[2].id, all[3].id]
    );
    let theirs = store.list_audit(other.org, 100, None).await.expect("audit");
    assert_eq!(theirs.len(), 1, "only their bootstrap row");
}

// ---- waiting, cancelling, batches, idempotency (adapter contract v2) ----

pub async fn batch_claims_take_each_due_operation_once(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "batch").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(insert_operation(store, operation(&d, None)).await.id);
    }
    let mut later = operation(&d, None);
    later.next_run_at = now() + chrono::TimeDelta::hours(1);
    insert_operation(store, later).await;

    let first = store
        .claim_operations("w", LONG_LEASE, 3, &[])
        .await
        .expect("claim");
    let second = store
        .claim_operations("w", LONG_LEASE, 10, &[])
        .await
        .expect("claim");
    assert_eq!((first.len(), second.len()), (3, 2), "the future one stays");
    let mut got: Vec<_> = first.iter().chain(&second).map(|o| o.id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    for op in first.iter().chain(&second) {
        assert_eq!(
            (op.state, op.attempt, op.generation),
            (OpState::Running, 1, 1)
        );
    }
}

/// An operation parked `waiting`, due now.
async fn parked(store: &dyn Store, dock: &Dock) -> Operation {
    let mut op = operation(dock, None);
    op.state = OpState::Waiting;
    op.attempt = 1;
    op.waiting_since = Some(now());
    insert_operation(store, op).await
}

pub async fn a_round_takes_the_checks_due_before_its_next_one(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "ahead").await;
    let due_now = parked(store, &d).await;
    let due_in = |op: Operation, secs: i64| async move {
        let mut later = op.clone();
        later.next_run_at = now() + chrono::Duration::seconds(secs);
        store
            .apply(Batch::new().push(Write::UpdateOperation(later)))
            .await
            .expect("reschedule");
        op.id
    };
    let soon = due_in(parked(store, &d).await, 30).await;
    let later = due_in(parked(store, &d).await, 600).await;

    // Nothing due within no time but the one due now.
    let taken = store
        .claim_waiting("observer", LONG_LEASE, Duration::ZERO, 10, None)
        .await
        .expect("take");
    let ids: Vec<OperationId> = taken.iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![due_now.id]);

    let before = store.get_operation(t.org, later).await.expect("read");
    // With a minute ahead, the one due in 30 s comes along; the one due in 10 minutes stays.
    let taken = store
        .claim_waiting("observer", LONG_LEASE, Duration::from_secs(60), 10, None)
        .await
        .expect("take ahead");
    let ids: Vec<OperationId> = taken.iter().map(|o| o.id).collect();
    assert_eq!(
        ids,
        vec![soon],
        "the one held already and the later one stay"
    );
    let left = store.get_operation(t.org, later).await.expect("read");
    assert_eq!(left.generation, before.generation, "not taken");
    assert_eq!(left.next_run_at, before.next_run_at);
    assert!(left.lease_owner.is_none());

    // Held by an observer for 30 s (a round that may still be under way): another owner takes
    // it only once the hold is over, however far it looks ahead; its own holder takes it early.
    let held = store
        .claim_waiting("observer", LONG_LEASE, Duration::from_secs(3600), 10, None)
        .await
        .expect("take the rest");
    let ids: Vec<OperationId> = held.iter().map(|o| o.id).collect();
    assert!(ids.contains(&later), "{ids:?}");
    let mut shortened = held.iter().find(|o| o.id == later).expect("later").clone();
    shortened.next_run_at = now() + chrono::Duration::seconds(30);
    shortened.lease_expires_at = Some(shortened.next_run_at);
    store
        .apply(Batch::new().push(Write::UpdateOperation(shortened.clone())))
        .await
        .expect("shorten the hold");
    assert!(
        store
            .claim_waiting("other", LONG_LEASE, Duration::from_secs(60), 10, None)
            .await
            .expect("take as another")
            .is_empty(),
        "another owner leaves a held check alone"
    );
    let again = store
        .claim_waiting("observer", LONG_LEASE, Duration::from_secs(60), 10, None)
        .await
        .expect("take as its holder");
    let ids: Vec<OperationId> = again.iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![later]);
    assert_eq!(again[0].generation, shortened.generation + 1);
}

pub async fn waiting_operations_are_taken_for_a_hold_without_a_run(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "waiting").await;
    let op = parked(store, &d).await;
    assert!(
        store
            .claim_operation("worker", LONG_LEASE)
            .await
            .expect("claim")
            .is_none(),
        "a waiting operation is not a worker's"
    );
    assert!(store.next_waiting().await.expect("next").is_some());

    let taken = store
        .claim_waiting("observer", LONG_LEASE, Duration::ZERO, 10, None)
        .await
        .expect("take");
    assert_eq!(taken.len(), 1);
    let held = &taken[0];
    assert_eq!(held.id, op.id);
    assert_eq!(held.state, OpState::Waiting);
    assert_eq!(held.attempt, 1, "waiting is not a run");
    assert_eq!(held.generation, op.generation + 1);
    assert!(held.next_run_at > now(), "held until the hold ends");
    assert!(
        store
            .claim_waiting("other", LONG_LEASE, Duration::ZERO, 10, None)
            .await
            .expect("take")
            .is_empty(),
        "held: nobody else takes it meanwhile"
    );
    // The taker's writes are fenced by the generation it took.
    let lease = Lease {
        operation_id: op.id,
        owner: "observer".into(),
        generation: held.generation,
    };
    let mut done = held.clone();
    done.state = OpState::Succeeded;
    store
        .apply(Batch::fenced(&lease).push(Write::UpdateOperation(done)))
        .await
        .expect("the holder writes");
    let stale = Lease {
        generation: op.generation,
        ..lease
    };
    let refused = store
        .apply(Batch::fenced(&stale).push(Write::Audit(audit(t.org, "x"))))
        .await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
}

pub async fn a_held_check_is_extended_only_while_still_held(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "extended").await;
    let kept = parked(store, &d).await;
    let settled = parked(store, &d).await;
    // Held for no time at all: both are due again at once, unless the hold is extended.
    let taken = store
        .claim_waiting("observer", Duration::ZERO, Duration::ZERO, 10, None)
        .await
        .expect("take");
    assert_eq!(taken.len(), 2);
    let lease_of_taken = |id| {
        let op = taken.iter().find(|o| o.id == id).expect("taken");
        Lease {
            operation_id: op.id,
            owner: "observer".into(),
            generation: op.generation,
        }
    };
    // One is settled by its round before the extension comes.
    let mut done = taken
        .iter()
        .find(|o| o.id == settled.id)
        .expect("taken")
        .clone();
    done.state = OpState::Succeeded;
    store
        .apply(Batch::fenced(&lease_of_taken(settled.id)).push(Write::UpdateOperation(done)))
        .await
        .expect("settle");

    let leases = [lease_of_taken(kept.id), lease_of_taken(settled.id)];
    let moved = store
        .extend_waiting(&leases, LONG_LEASE)
        .await
        .expect("extend");
    assert_eq!(moved, 1, "only the operation still waiting and held moves");
    assert_eq!(
        store
            .get_operation(t.org, settled.id)
            .await
            .expect("get")
            .state,
        OpState::Succeeded,
        "an extension never undoes a settlement"
    );
    assert!(
        store
            .claim_waiting("other", LONG_LEASE, Duration::ZERO, 10, None)
            .await
            .expect("take")
            .is_empty(),
        "the extended hold keeps another taker off"
    );
    let held = store.get_operation(t.org, kept.id).await.expect("get");
    assert!(
        held.next_run_at > now() + chrono::Duration::seconds(60),
        "{held:?}"
    );

    // A lease that is no longer current moves nothing.
    let stale = Lease {
        owner: "someone-else".into(),
        ..lease_of_taken(kept.id)
    };
    assert_eq!(
        store
            .extend_waiting(&[stale], Duration::ZERO)
            .await
            .expect("extend"),
        0
    );
}

pub async fn heartbeats_count_the_live_nodes(store: &dyn Store) {
    let alive = |node: &'static str, ttl: Duration| async move {
        store.heartbeat(node, ttl).await.expect("heartbeat")
    };
    assert_eq!(alive("node-a", LONG_LEASE).await, 1);
    assert_eq!(alive("node-b", LONG_LEASE).await, 2);
    assert_eq!(
        alive("node-a", LONG_LEASE).await,
        2,
        "a node beating twice is one node"
    );
    // A node whose heartbeat runs out at once counts until the next beat looks.
    assert_eq!(alive("node-c", Duration::ZERO).await, 3);
    assert_eq!(
        alive("node-a", LONG_LEASE).await,
        2,
        "a lapsed node is forgotten"
    );
    store.leave("node-b").await.expect("leave");
    assert_eq!(
        alive("node-a", LONG_LEASE).await,
        1,
        "a node that left is gone at once"
    );
}

pub async fn expire_leases_frees_waiting_operations_a_dead_observer_held(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "held").await;
    parked(store, &d).await;
    parked(store, &d).await;
    assert_eq!(
        store
            .claim_waiting("node-a-observer", LONG_LEASE, Duration::ZERO, 1, None)
            .await
            .expect("take")
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_waiting("node-b-observer", LONG_LEASE, Duration::ZERO, 1, None)
            .await
            .expect("take")
            .len(),
        1
    );
    // Node a restarted: what its observer held is due again; node b's hold stands.
    assert_eq!(store.expire_leases("node-a-").await.expect("expire"), 1);
    let again = store
        .claim_waiting("node-a-observer", LONG_LEASE, Duration::ZERO, 10, None)
        .await
        .expect("take");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].state, OpState::Waiting);
    assert_eq!(again[0].attempt, 1, "a released hold is not a run");
}

pub async fn a_cancel_wakes_a_waiting_operation_and_is_refused_once_finished(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "cancel").await;
    let mut op = parked(store, &d).await;
    op.next_run_at = now() + chrono::TimeDelta::hours(1);
    store
        .apply(Batch::new().push(Write::UpdateOperation(op.clone())))
        .await
        .expect("park for an hour");

    let audit = |what: &str| AuditEntry::new(t.org, None, what, Outcome::Requested);
    let cancelled = store
        .request_cancel(t.org, op.id, audit("server.cancel"))
        .await
        .expect("cancel");
    assert!(cancelled.cancel_requested);
    // Its audit row came with it, in the same transaction.
    let audited = store.list_audit(t.org, 10, None).await.expect("audit");
    assert_eq!(
        audited
            .iter()
            .filter(|a| a.action == "server.cancel")
            .count(),
        1,
        "{audited:?}"
    );
    assert_eq!(cancelled.state, OpState::Queued, "runnable at once");
    let claimed = store
        .claim_operation("w", LONG_LEASE)
        .await
        .expect("claim")
        .expect("the cancelled operation is due now");
    assert_eq!(claimed.id, op.id);
    assert!(claimed.cancel_requested);

    // A worker's update written from an older read does not clear the request.
    let mut from_before = op.clone();
    from_before.state = OpState::Running;
    store
        .apply(Batch::new().push(Write::UpdateOperation(from_before)))
        .await
        .expect("update");
    assert!(
        store
            .get_operation(t.org, op.id)
            .await
            .expect("get")
            .cancel_requested
    );

    let mut done = claimed.clone();
    done.state = OpState::Failed;
    store
        .apply(Batch::new().push(Write::UpdateOperation(done)))
        .await
        .expect("finish");
    let late = store
        .request_cancel(t.org, op.id, audit("server.cancel.late"))
        .await;
    assert!(matches!(late, Err(StoreError::Refused { .. })), "{late:?}");
    let audited = store.list_audit(t.org, 10, None).await.expect("audit");
    assert!(
        audited.iter().all(|a| a.action != "server.cancel.late"),
        "a refused cancel writes no audit row: {audited:?}"
    );
    let other_org = tenant(store).await;
    let hidden = store
        .request_cancel(
            other_org.org,
            op.id,
            AuditEntry::new(other_org.org, None, "server.cancel", Outcome::Requested),
        )
        .await;
    assert!(
        matches!(hidden, Err(StoreError::NotFound { .. })),
        "{hidden:?}"
    );
}

pub async fn apply_each_keeps_each_batch_whole_and_alone(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "each").await;
    let a = insert(store, resource(&d, ResourceKind::Server)).await;
    let b = insert(store, resource(&d, ResourceKind::Server)).await;
    let mut a2 = a.clone();
    a2.name = "renamed".into();
    let mut b2 = b.clone();
    b2.name = "also".into();
    let results = store
        .apply_each(vec![
            Batch::new()
                .push(update(a2, a.version))
                .push(Write::Audit(audit(t.org, "a"))),
            // A stale version: this batch fails, and only this one.
            Batch::new()
                .push(Write::Audit(audit(t.org, "b")))
                .push(update(b2.clone(), b.version + 7)),
            Batch::new().push(update(b2, b.version)),
        ])
        .await
        .expect("apply_each");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::VersionConflict { .. })),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert_eq!(
        store.get_resource(t.org, a.id).await.unwrap().name,
        "renamed"
    );
    assert_eq!(store.get_resource(t.org, b.id).await.unwrap().name, "also");
    let actions: Vec<String> = store
        .list_audit(t.org, 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"a".to_string()));
    assert!(
        !actions.contains(&"b".to_string()),
        "the failed batch's audit row went with it"
    );
}

pub async fn idempotency_keys_are_unique_per_org(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "keys").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let key = IdempotentRequest {
        org_id: t.org,
        key: "k-1".into(),
        request_hash: "h".into(),
        resource_id: r.id,
    };
    assert_eq!(
        store.find_idempotency_key(t.org, "k-1").await.unwrap(),
        None
    );
    store
        .apply(Batch::new().push(Write::IdempotencyKey(key.clone())))
        .await
        .expect("first use");
    assert_eq!(
        store.find_idempotency_key(t.org, "k-1").await.unwrap(),
        Some(key.clone())
    );
    let again = store
        .apply(Batch::new().push(Write::IdempotencyKey(key.clone())))
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    // Another org may use the same key.
    let other = tenant(store).await;
    assert_eq!(
        store.find_idempotency_key(other.org, "k-1").await.unwrap(),
        None
    );
}

pub async fn journal_batches_are_written_whole(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "journal-batch").await;
    let rs = [
        insert(store, resource(&d, ResourceKind::Server)).await,
        insert(store, resource(&d, ResourceKind::Server)).await,
    ];
    let calls = rs
        .iter()
        .map(|r| ApiCall {
            id: 0,
            org_id: t.org,
            dock_id: d.id,
            resource_id: Some(r.id),
            operation_id: None,
            method: "GET".into(),
            path: "/v2/droplets?tag_name=stackdock".into(),
            status: Some(429),
            duration_ms: 3,
            request_id: Some("req-1".into()),
            attempt: 2,
            error: Some("too_many_requests: slow down".into()),
            at: now(),
            worker: None,
        })
        .collect::<Vec<_>>();
    store
        .record_api_calls(calls.clone())
        .await
        .expect("journal");
    for (r, sent) in rs.iter().zip(&calls) {
        let got = store
            .api_calls(t.org, r.id, &PageRequest::first(10))
            .await
            .unwrap()
            .items;
        assert_eq!(got.len(), 1);
        let mut got = got[0].clone();
        got.id = 0;
        assert_eq!(&got, sent, "every field of every entry is kept");
    }
}

/// Many batches written at once (they may share a transaction): each stands or falls alone.
pub async fn concurrent_batches_fail_alone(store: Arc<dyn Store>) {
    let t = tenant(&*store).await;
    let d = add_dock(&*store, t.org, "together").await;
    let r = insert(&*store, resource(&d, ResourceKind::Server)).await;
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            let org = t.org;
            tokio::spawn(async move {
                let batch = if i % 4 == 0 {
                    // A stale version: refused, with its audit row.
                    let mut stale = r.clone();
                    stale.name = format!("stale-{i}");
                    Batch::new()
                        .push(Write::Audit(audit(org, &format!("refused-{i}"))))
                        .push(update(stale, r.version + 100))
                } else {
                    Batch::new().push(Write::Audit(audit(org, &format!("kept-{i}"))))
                };
                (i, store.apply(batch).await)
            })
        })
        .collect();
    for w in writers {
        let (i, result) = w.await.expect("writer");
        if i % 4 == 0 {
            assert!(
                matches!(result, Err(StoreError::VersionConflict { .. })),
                "{i}: {result:?}"
            );
        } else {
            assert!(result.is_ok(), "{i}: {result:?}");
        }
    }
    let actions: Vec<String> = store
        .list_audit(t.org, 1000, None)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| a.starts_with("kept-")).count(),
        30
    );
    assert_eq!(
        actions.iter().filter(|a| a.starts_with("refused-")).count(),
        0
    );
    assert_eq!(store.get_resource(t.org, r.id).await.unwrap().name, r.name);
}

pub async fn waiting_operations_are_found_and_taken_per_dock(store: &dyn Store) {
    let t = tenant(store).await;
    let a = add_dock(store, t.org, "dock-a").await;
    let b = add_dock(store, t.org, "dock-b").await;
    let in_a = parked(store, &a).await;
    parked(store, &b).await;
    let mut docks = store.due_waiting_docks(10).await.expect("due docks");
    docks.sort();
    let mut expected = vec![(t.org, a.id), (t.org, b.id)];
    expected.sort();
    assert_eq!(docks, expected);
    let taken = store
        .claim_waiting("observer", LONG_LEASE, Duration::ZERO, 10, Some(a.id))
        .await
        .expect("take");
    assert_eq!(taken.iter().map(|o| o.id).collect::<Vec<_>>(), [in_a.id]);
    assert_eq!(
        store.due_waiting_docks(10).await.expect("due docks"),
        [(t.org, b.id)],
        "a's operation is held, b's is still due"
    );

    // While the observer's round of a is under way, another node's observer takes none of
    // a's checks that fall due: they wait for a round of their own, not a second listing
    // beside this one. Other docks are not held up.
    let late = parked(store, &a).await;
    let other = |dock: &Dock| {
        store.claim_waiting(
            "node-b-observer",
            LONG_LEASE,
            Duration::ZERO,
            10,
            Some(dock.id),
        )
    };
    assert!(
        other(&a).await.expect("take").is_empty(),
        "a's round is under way"
    );
    assert_eq!(other(&b).await.expect("take").len(), 1, "b is not held up");
    // Once the round's hold has lapsed (its observer gone), a's checks are anyone's.
    assert_eq!(store.expire_leases("observer").await.expect("expire"), 1);
    let mut taken: Vec<_> = other(&a)
        .await
        .expect("take")
        .iter()
        .map(|o| o.id)
        .collect();
    taken.sort();
    let mut want = vec![in_a.id, late.id];
    want.sort();
    assert_eq!(taken, want);
}

pub async fn get_resources_reads_many_rows_of_the_org_at_once(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "many").await;
    let mut ids = Vec::new();
    for kind in ResourceKind::ALL {
        ids.push(insert(store, resource(&d, kind)).await.id);
    }
    let mut got: Vec<_> = store
        .get_resources(t.org, &ids)
        .await
        .expect("read")
        .into_iter()
        .map(|r| r.id)
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "every kind's table is read");
    let other = tenant(store).await;
    assert!(
        store
            .get_resources(other.org, &ids)
            .await
            .expect("read")
            .is_empty(),
        "another org's rows are not shown"
    );
    assert!(
        store
            .get_resources(t.org, &[])
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn a_fenced_step_sets_the_provider_id_and_reports_a_cancel(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "step").await;
    let r = insert(store, resource(&d, ResourceKind::Database)).await;
    let other = insert(store, resource(&d, ResourceKind::Database)).await;
    insert_operation(store, operation(&d, Some(&r))).await;
    let op = store
        .claim_operation("w", LONG_LEASE)
        .await
        .expect("claim")
        .expect("queued op is claimed");
    let lease = lease_of(&op);
    let step = |index: i64, name: &str| Step {
        operation_id: op.id,
        index,
        name: name.into(),
        status: StepStatus::Done,
        output: json!({}),
        undo: json!({}),
        at: now(),
    };
    let seq_before = store.latest_change().await.expect("latest");

    let set = Write::SetProviderId {
        org_id: t.org,
        kind: ResourceKind::Database,
        resource_id: r.id,
        provider_resource_id: "db-1".into(),
    };
    let done = store
        .apply_fenced(
            t.org,
            Batch::fenced(&lease)
                .push(set)
                .push(Write::RecordStep(step(0, "created"))),
        )
        .await
        .expect("fenced step");
    assert!(!done.cancel_requested, "no cancel was asked for");
    let [written] = done.resources.as_slice() else {
        panic!("one row written: {:?}", done.resources);
    };
    assert_eq!(written.provider_resource_id.as_deref(), Some("db-1"));
    assert_eq!(written.version, r.version + 1);
    let stored = store.get_resource(t.org, r.id).await.expect("get");
    assert_eq!(&stored, written, "the row returned is the row stored");
    assert_eq!(
        store
            .get_resource(t.org, other.id)
            .await
            .expect("other")
            .provider_resource_id,
        None,
        "only the named row changes"
    );
    let changes = store
        .changes_since(t.org, seq_before, 10)
        .await
        .expect("feed");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].resource, stored);

    store
        .request_cancel(
            t.org,
            op.id,
            AuditEntry::new(t.org, None, "server.cancel", Outcome::Requested),
        )
        .await
        .expect("cancel");
    let done = store
        .apply_fenced(
            t.org,
            Batch::fenced(&lease).push(Write::RecordStep(step(1, "next"))),
        )
        .await
        .expect("a step after the cancel is still recorded");
    assert!(done.cancel_requested);
    assert_eq!(store.steps(t.org, op.id).await.expect("steps").len(), 2);

    // A row of another org, or one that is not there, is not found; nothing is written.
    let stranger = tenant(store).await;
    let foreign = Write::SetProviderId {
        org_id: stranger.org,
        kind: ResourceKind::Database,
        resource_id: other.id,
        provider_resource_id: "db-2".into(),
    };
    let refused = store
        .apply_fenced(
            t.org,
            Batch::fenced(&lease)
                .push(Write::RecordStep(step(2, "lost")))
                .push(foreign),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    assert_eq!(store.steps(t.org, op.id).await.expect("steps").len(), 2);

    let unfenced = store
        .apply_fenced(t.org, Batch::new().push(Write::RecordStep(step(3, "free"))))
        .await;
    assert!(
        matches!(unfenced, Err(StoreError::Refused { .. })),
        "{unfenced:?}"
    );
}

// ---- members and tokens ----

pub async fn a_member_and_the_invitation_asked_for_are_added_together(store: &dyn Store) {
    use stackdock_core::{OrgId, TokenId};
    use stackdock_store::NewInvitation;

    let t = tenant(store).await;
    let invitation = |id: TokenId, hash: &str| NewInvitation {
        id,
        token_hash: hash.into(),
        expires_at: now() + chrono::TimeDelta::days(1),
        audit: audit(t.org, "member.invite"),
    };
    let taken = TokenId::new();
    let dev = store
        .add_member_invited(
            t.org,
            "with@example.test",
            Role::Developer,
            audit(t.org, "member.add"),
            Some(invitation(taken, "inv-with")),
        )
        .await
        .expect("add a member with an invitation");
    let placeholder = || AuditEntry::new(OrgId::new(), None, "user.password", Outcome::Success);
    let login = store
        .accept_invitation("inv-with", "$argon2id$set".into(), placeholder())
        .await
        .expect("taken")
        .expect("the invitation made with the member");
    assert_eq!((login.org_id, login.user_id), (t.org, dev.user_id));
    let audited = store.list_audit(t.org, 10, None).await.expect("audit");
    let invited = audited
        .iter()
        .find(|a| a.action == "member.invite")
        .expect("the invitation's audit row");
    assert_eq!(
        invited.resource.as_deref(),
        Some(format!("members/{}", dev.user_id).as_str())
    );

    // An invitation that cannot be recorded (its id is taken) adds no member either.
    let failed = store
        .add_member_invited(
            t.org,
            "without@example.test",
            Role::Viewer,
            audit(t.org, "member.add"),
            Some(invitation(taken, "inv-without")),
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let members = store
        .list_members(t.org, &PageRequest::first(10))
        .await
        .expect("members")
        .items;
    assert!(
        members.iter().all(|m| m.email != "without@example.test"),
        "{members:?}"
    );
    let adds = store.list_audit(t.org, 10, None).await.expect("audit");
    assert_eq!(
        adds.iter().filter(|a| a.action == "member.add").count(),
        1,
        "{adds:?}"
    );
    // Asked again, it is added with its invitation.
    store
        .add_member_invited(
            t.org,
            "without@example.test",
            Role::Viewer,
            audit(t.org, "member.add"),
            Some(invitation(TokenId::new(), "inv-without")),
        )
        .await
        .expect("added on the second ask");
    assert!(
        store
            .accept_invitation("inv-without", "$argon2id$x".into(), placeholder())
            .await
            .expect("asked")
            .is_some()
    );
}

pub async fn an_invitation_is_taken_once_with_the_password_it_sets(store: &dyn Store) {
    use stackdock_core::{OrgId, TokenId};
    use stackdock_store::NewToken;

    let t = tenant(store).await;
    let dev = store
        .add_member(
            t.org,
            "invited@example.test",
            Role::Developer,
            audit(t.org, "member.add"),
        )
        .await
        .expect("add a member");
    store
        .create_token(
            NewToken {
                id: TokenId::new(),
                org_id: t.org,
                user_id: dev.user_id,
                token_hash: "inv-hash".into(),
                name: Some("invitation".into()),
                role: None,
                expires_at: Some(now() + chrono::TimeDelta::days(1)),
                invitation: true,
            },
            audit(t.org, "member.invite"),
        )
        .await
        .expect("invite");
    let placeholder = || AuditEntry::new(OrgId::new(), None, "user.password", Outcome::Success);

    let unknown = store
        .accept_invitation("not-an-invitation", "$argon2id$x".into(), placeholder())
        .await
        .expect("asked");
    assert!(unknown.is_none());
    let login = store
        .accept_invitation("inv-hash", "$argon2id$set".into(), placeholder())
        .await
        .expect("taken")
        .expect("an invitation");
    assert_eq!((login.org_id, login.user_id), (t.org, dev.user_id));
    // Its password is set with it, audited as the member in the invitation's org.
    let signs_in = store
        .login("invited@example.test")
        .await
        .expect("login")
        .expect("a member");
    assert_eq!(signs_in.password_hash.as_deref(), Some("$argon2id$set"));
    let audited = store.list_audit(t.org, 10, None).await.expect("audit");
    let set = audited
        .iter()
        .find(|a| a.action == "user.password")
        .expect("the password's audit row");
    assert_eq!(set.actor, Some(dev.user_id));
    // Taken once: a second use changes nothing.
    let again = store
        .accept_invitation("inv-hash", "$argon2id$other".into(), placeholder())
        .await
        .expect("asked");
    assert!(again.is_none());
    let still = store
        .login("invited@example.test")
        .await
        .expect("login")
        .expect("a member");
    assert_eq!(still.password_hash.as_deref(), Some("$argon2id$set"));
}

pub async fn tokens_carry_a_capped_role_expire_and_revoke(store: &dyn Store) {
    use stackdock_core::{TokenId, UserId};
    use stackdock_store::NewToken;

    let t = tenant(store).await;
    let other = tenant(store).await;
    let dev = store
        .add_member(
            t.org,
            "dev@example.test",
            Role::Developer,
            audit(t.org, "member.add"),
        )
        .await
        .expect("add a developer");
    assert_eq!(dev.role, Role::Developer);
    let again = store
        .add_member(
            t.org,
            "dev@example.test",
            Role::Viewer,
            audit(t.org, "member.add"),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    let members = store
        .list_members(t.org, &PageRequest::first(10))
        .await
        .expect("members")
        .items;
    assert_eq!(
        members
            .iter()
            .map(|m| (m.email.as_str(), m.role))
            .collect::<Vec<_>>(),
        [
            (t.email.as_str(), Role::Owner),
            ("dev@example.test", Role::Developer)
        ]
    );
    assert_eq!(
        store
            .list_members(other.org, &PageRequest::first(10))
            .await
            .expect("members")
            .items
            .len(),
        1
    );

    let new = |user: UserId, role: Option<Role>, hash: &str| NewToken {
        id: TokenId::new(),
        org_id: t.org,
        user_id: user,
        token_hash: hash.into(),
        name: Some(format!("{hash}-name")),
        role,
        expires_at: None,
        invitation: false,
    };
    // No stronger than its member.
    let too_strong = store
        .create_token(
            new(dev.user_id, Some(Role::Admin), "h-strong"),
            audit(t.org, "token.create"),
        )
        .await;
    assert!(
        matches!(too_strong, Err(StoreError::Refused { .. })),
        "{too_strong:?}"
    );
    // Only for a member of the org.
    let stranger = store
        .create_token(
            new(other.user, None, "h-stranger"),
            audit(t.org, "token.create"),
        )
        .await;
    assert!(
        matches!(stranger, Err(StoreError::NotFound { .. })),
        "{stranger:?}"
    );

    let viewer_token = store
        .create_token(
            new(dev.user_id, Some(Role::Viewer), "h-viewer"),
            audit(t.org, "token.create"),
        )
        .await
        .expect("a viewer token for the developer");
    assert_eq!(viewer_token.role, Some(Role::Viewer));
    assert_eq!(viewer_token.email, "dev@example.test");
    let p = store
        .principal_for_token("h-viewer")
        .await
        .expect("lookup")
        .expect("known");
    assert_eq!(
        (p.user_id, p.role, p.org_id),
        (dev.user_id, Role::Viewer, t.org)
    );

    let mut expired = new(dev.user_id, None, "h-expired");
    expired.expires_at = Some(now() - chrono::TimeDelta::seconds(1));
    store
        .create_token(expired, audit(t.org, "token.create"))
        .await
        .expect("an expired token is recorded");
    assert_eq!(
        store
            .principal_for_token("h-expired")
            .await
            .expect("lookup"),
        None
    );
    let mut later = new(dev.user_id, None, "h-later");
    later.expires_at = Some(now() + chrono::TimeDelta::hours(1));
    store
        .create_token(later, audit(t.org, "token.create"))
        .await
        .expect("create");
    let p = store
        .principal_for_token("h-later")
        .await
        .expect("lookup")
        .expect("not yet expired");
    assert_eq!(p.role, Role::Developer, "no role of its own: the member's");

    // Listing: the org's, or one member's; never another org's.
    let tokens = |user: Option<UserId>| async move {
        store
            .list_tokens(t.org, user, &PageRequest::first(100))
            .await
            .expect("list")
            .items
    };
    let all = tokens(None).await;
    assert_eq!(
        all.len(),
        4,
        "the owner's and the developer's three: {all:?}"
    );
    let devs = tokens(Some(dev.user_id)).await;
    assert_eq!(devs.len(), 3);
    assert!(devs.iter().all(|k| k.user_id == dev.user_id));
    assert!(
        store
            .list_tokens(other.org, None, &PageRequest::first(100))
            .await
            .expect("list")
            .items
            .iter()
            .all(|k| k.org_id == other.org)
    );

    // Revoking: only one's own when limited to a user; once.
    let owners = tokens(Some(t.user)).await;
    let hidden = store
        .revoke_token(
            t.org,
            owners[0].id,
            Some(dev.user_id),
            audit(t.org, "token.revoke"),
        )
        .await;
    assert!(
        matches!(hidden, Err(StoreError::NotFound { .. })),
        "{hidden:?}"
    );
    let from_elsewhere = store
        .revoke_token(
            other.org,
            viewer_token.id,
            None,
            audit(other.org, "token.revoke"),
        )
        .await;
    assert!(
        matches!(from_elsewhere, Err(StoreError::NotFound { .. })),
        "{from_elsewhere:?}"
    );
    let revoked = store
        .revoke_token(
            t.org,
            viewer_token.id,
            Some(dev.user_id),
            audit(t.org, "token.revoke"),
        )
        .await
        .expect("revoke one's own");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        store.principal_for_token("h-viewer").await.expect("lookup"),
        None
    );
    let twice = store
        .revoke_token(t.org, viewer_token.id, None, audit(t.org, "token.revoke"))
        .await;
    assert!(
        matches!(twice, Err(StoreError::Refused { .. })),
        "{twice:?}"
    );

    // Every change wrote its audit row, and a refused request's row reads back as denied.
    let denied = stackdock_core::AuditEntry::new(
        t.org,
        Some(dev.user_id),
        "DELETE /api/v1/docks/{dock}",
        Outcome::Denied,
    );
    store
        .apply(Batch::new().push(Write::Audit(denied)))
        .await
        .expect("a denied row");
    let rows = store.list_audit(t.org, 100, None).await.expect("audit");
    let count = |action: &str| rows.iter().filter(|r| r.action == action).count();
    assert_eq!(
        (
            count("member.add"),
            count("token.create"),
            count("token.revoke")
        ),
        (1, 3, 1)
    );
    assert_eq!(rows[0].outcome, Outcome::Denied);
}

pub async fn the_last_owner_stays(store: &dyn Store) {
    let t = tenant(store).await;
    let other = tenant(store).await;
    let demote = store
        .set_member_role(t.org, t.user, Role::Admin, audit(t.org, "member.role"))
        .await;
    assert!(
        matches!(demote, Err(StoreError::Refused { .. })),
        "{demote:?}"
    );
    let remove = store
        .remove_member(t.org, t.user, audit(t.org, "member.remove"))
        .await;
    assert!(
        matches!(remove, Err(StoreError::Refused { .. })),
        "{remove:?}"
    );
    assert!(
        store
            .principal_for_token(&t.token_hash)
            .await
            .expect("lookup")
            .is_some()
    );

    // With a second owner, the first may step down, and then leave.
    let second = store
        .add_member(
            t.org,
            "second@example.test",
            Role::Owner,
            audit(t.org, "member.add"),
        )
        .await
        .expect("a second owner");
    let stepped = store
        .set_member_role(t.org, t.user, Role::Viewer, audit(t.org, "member.role"))
        .await
        .expect("no longer the last owner");
    assert_eq!(stepped.role, Role::Viewer);
    let p = store
        .principal_for_token(&t.token_hash)
        .await
        .expect("lookup")
        .expect("still a member");
    assert_eq!(
        p.role,
        Role::Viewer,
        "a demoted member's token loses what they lost"
    );
    let last = store
        .set_member_role(
            t.org,
            second.user_id,
            Role::Developer,
            audit(t.org, "member.role"),
        )
        .await;
    assert!(
        matches!(last, Err(StoreError::Refused { .. })),
        "now the last owner: {last:?}"
    );
    store
        .remove_member(t.org, t.user, audit(t.org, "member.remove"))
        .await
        .expect("remove the viewer");
    assert_eq!(
        store
            .principal_for_token(&t.token_hash)
            .await
            .expect("lookup"),
        None
    );
    // Another org's member is not found here.
    let stranger = store
        .set_member_role(t.org, other.user, Role::Viewer, audit(t.org, "member.role"))
        .await;
    assert!(
        matches!(stranger, Err(StoreError::NotFound { .. })),
        "{stranger:?}"
    );
    let rows = store.list_audit(t.org, 100, None).await.expect("audit");
    let count = |a: &str| rows.iter().filter(|r| r.action == a).count();
    assert_eq!(
        (count("member.role"), count("member.remove")),
        (1, 1),
        "refusals write nothing"
    );
}

pub async fn audit_is_searched_by_every_filter_a_page_at_a_time(store: &dyn Store) {
    use stackdock_core::{AuditEntry, RequestId, TokenId, UserId};
    use stackdock_store::AuditFilter;

    let t = tenant(store).await;
    let other = tenant(store).await;
    let alice = UserId::new();
    let (token, request) = (TokenId::new(), RequestId::new());
    let rows = [
        (
            "server.provision",
            Outcome::Requested,
            Some(alice),
            Some("servers/1"),
        ),
        (
            "server.provision",
            Outcome::Success,
            None,
            Some("servers/1"),
        ),
        ("POST /api/v1/docks", Outcome::Denied, Some(alice), None),
        (
            "server.deprovision",
            Outcome::Requested,
            Some(t.user),
            Some("servers/2"),
        ),
        ("POST /api/v1/docks", Outcome::Denied, Some(t.user), None),
    ];
    for (action, outcome, actor, resource) in rows {
        let mut e =
            AuditEntry::new(t.org, actor, action, outcome).through(Some(token), Some(request));
        e.resource = resource.map(String::from);
        store
            .apply(Batch::new().push(Write::Audit(e)))
            .await
            .expect("append");
    }
    // Another org's row that matches every filter but the org.
    let theirs = AuditEntry::new(
        other.org,
        Some(alice),
        "POST /api/v1/docks",
        Outcome::Denied,
    );
    store
        .apply(Batch::new().push(Write::Audit(theirs)))
        .await
        .expect("append");

    let search = |f: AuditFilter| async move {
        store
            .search_audit(t.org, &f, &PageRequest::first(100))
            .await
            .expect("search")
            .items
    };
    let all = search(AuditFilter::default()).await;
    assert_eq!(all.len(), 6, "five rows and the bootstrap's");
    assert_eq!(
        (all[0].token_id, all[0].request_id),
        (Some(token), Some(request))
    );

    let denied = search(AuditFilter {
        outcome: Some(Outcome::Denied),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(denied.len(), 2);
    assert!(
        denied
            .iter()
            .all(|r| r.outcome == Outcome::Denied && r.org_id == t.org)
    );
    let alices = search(AuditFilter {
        actor: Some(alice),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(
        alices.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["POST /api/v1/docks", "server.provision"]
    );
    let by_action = search(AuditFilter {
        action: Some("server.provision".into()),
        resource: Some("servers/1".into()),
        outcome: Some(Outcome::Success),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_action.len(), 1);
    assert_eq!(by_action[0].actor, None);

    // Pages: newest first, each page continuing below the last id of the one before.
    let page = |after| async move {
        store
            .search_audit(
                t.org,
                &AuditFilter::default(),
                &PageRequest { limit: 4, after },
            )
            .await
            .expect("page")
    };
    let first = page(None).await;
    assert_eq!(first.next, first.items.last().map(|r| r.id));
    let second = page(first.next).await;
    assert_eq!(
        (first.items.len(), second.items.len(), second.next),
        (4, 2, None)
    );
    let ids: Vec<i64> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|r| r.id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(ids, all.iter().map(|r| r.id).collect::<Vec<_>>());
}

pub async fn a_reseal_replaces_only_what_it_read_and_updates_leave_input_alone(store: &dyn Store) {
    use stackdock_store::Reseal;

    let t = tenant(store).await;
    let d = add_dock(store, t.org, "reseal").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let mut op = operation(&d, Some(&r));
    op.input = json!({"config": {"user_data": {"$sealed": "v1:old:bm9uY2U:Y3Q"}}});
    let op = insert_operation(store, op).await;

    // A worker's update never writes the input, whatever its copy holds.
    let mut stale = op.clone();
    stale.input = json!({"config": {}});
    stale.attempt = 3;
    store
        .apply(Batch::new().push(Write::UpdateOperation(stale)))
        .await
        .expect("update");
    let now = store.get_operation(t.org, op.id).await.expect("get");
    assert_eq!((now.attempt, &now.input), (3, &op.input));

    let to = json!({"config": {"user_data": {"$sealed": "v1:new:bm9uY2U:Y3Q"}}});
    let from_elsewhere = Reseal::OperationInput {
        org_id: t.org,
        id: op.id,
        from: json!({"config": {"user_data": "not what is stored"}}),
        to: to.clone(),
    };
    let refused = store
        .apply(Batch::new().push(Write::Reseal(from_elsewhere)))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused { .. })),
        "{refused:?}"
    );
    store
        .apply(Batch::new().push(Write::Reseal(Reseal::OperationInput {
            org_id: t.org,
            id: op.id,
            from: op.input.clone(),
            to: to.clone(),
        })))
        .await
        .expect("reseal");
    assert_eq!(
        store.get_operation(t.org, op.id).await.expect("get").input,
        to
    );

    // The dock key likewise, and the rows to go through list it and the input.
    let new_key = sealed("1111222233334444");
    let stale_dock = Reseal::DockKey {
        org_id: t.org,
        id: d.id,
        from: new_key.clone(),
        to: new_key.clone(),
    };
    let refused = store
        .apply(Batch::new().push(Write::Reseal(stale_dock)))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused { .. })),
        "{refused:?}"
    );
    store
        .apply(Batch::new().push(Write::Reseal(Reseal::DockKey {
            org_id: t.org,
            id: d.id,
            from: d.sealed_api_key.clone(),
            to: new_key.clone(),
        })))
        .await
        .expect("reseal the dock key");
    assert_eq!(
        store
            .get_dock(t.org, d.id)
            .await
            .expect("dock")
            .sealed_api_key,
        new_key
    );
    let rows = store.sealed_rows().await.expect("sealed rows");
    assert!(rows.docks.iter().any(|x| x.id == d.id));
    assert!(rows.operations.iter().any(|o| o.id == op.id));
}

pub async fn lookups_by_marker_provider_id_active_operation_and_steps_stay_in_their_org(
    store: &dyn Store,
) {
    let t = tenant(store).await;
    let other = tenant(store).await;
    let d = add_dock(store, t.org, "scoped").await;
    let mut r = resource(&d, ResourceKind::Server);
    r.provider_resource_id = Some("droplet-scoped".into());
    let r = insert(store, r).await;
    let op = insert_operation(store, operation(&d, Some(&r))).await;
    let step = Step {
        operation_id: op.id,
        index: 0,
        name: "created".into(),
        status: StepStatus::Done,
        output: json!({}),
        undo: json!({}),
        at: now(),
    };
    store
        .apply(Batch::new().push(Write::RecordStep(step)))
        .await
        .expect("step");
    let marker = r.marker.clone().expect("marker");

    // Found in the org...
    assert!(
        store
            .find_by_marker(t.org, &marker)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_by_provider_id(t.org, d.id, ResourceKind::Server, "droplet-scoped")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .active_operation_for(t.org, r.id)
            .await
            .unwrap()
            .map(|o| o.id),
        Some(op.id)
    );
    assert_eq!(store.steps(t.org, op.id).await.unwrap().len(), 1);
    // ...and nothing of it from another org, exactly like what does not exist.
    assert!(
        store
            .find_by_marker(other.org, &marker)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_by_provider_id(other.org, d.id, ResourceKind::Server, "droplet-scoped")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .active_operation_for(other.org, r.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.steps(other.org, op.id).await.unwrap().is_empty());
}

/// `s` with every NUL as `nul`.
fn nul_as(s: &str, nul: &str) -> String {
    s.replace('\0', nul)
}

/// `v` with every NUL in its strings and keys as `nul`.
fn json_nul_as(v: &serde_json::Value, nul: &str) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(nul_as(s, nul)),
        Value::Array(items) => Value::Array(items.iter().map(|i| json_nul_as(i, nul)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (nul_as(k, nul), json_nul_as(v, nul)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A NUL in what a provider answers (a status, an id, its JSON, an error) or in a build's
/// output is written and read back: as it was, or, where the database keeps no NUL
/// (PostgreSQL), as U+FFFD, in every place alike. A write refused for it would leave the
/// operation unable to ever settle its row.
pub async fn nul_characters_from_a_provider_are_written(store: &dyn Store) {
    use stackdock_core::{ResourceDetails, ResourceError};
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "nul").await;
    let mut r = fully_populated(&d, ResourceKind::Server);
    r.provider_resource_id = Some("id\0x".into());
    r.status = Some("new\0".into());
    r.full_api_data = json!({"name\0": "a\0b", "list": ["\0", {"k": "\0"}], "n": 1});
    r.error = Some(ResourceError {
        message: "bad\0 answer".into(),
        code: "odd\0".into(),
        timestamp: now(),
    });
    if let ResourceDetails::Server(s) = &mut r.details {
        s.region = Some("nyc\0".into());
        s.image = Some("\0".into());
    }
    insert(store, r.clone()).await;
    let got = store.get_resource(t.org, r.id).await.expect("get");

    // Which of the two this store keeps, from one column; every other must agree.
    let nul = match got.status.as_deref() {
        Some("new\0") => "\0",
        Some("new\u{FFFD}") => "\u{FFFD}",
        other => panic!("status read back as {other:?}"),
    };
    let kept = |s: &str| nul_as(s, nul);
    let mut want = r.clone();
    want.provider_resource_id = Some(kept("id\0x"));
    want.status = Some(kept("new\0"));
    want.full_api_data = json_nul_as(&r.full_api_data, nul);
    want.error = r.error.as_ref().map(|e| ResourceError {
        message: kept(&e.message),
        code: kept(&e.code),
        timestamp: e.timestamp,
    });
    if let ResourceDetails::Server(s) = &mut want.details {
        s.region = Some(kept("nyc\0"));
        s.image = Some(kept("\0"));
    }
    assert_eq!(got, want, "every column keeps its NULs the same way");
    let changes = store.changes_since(t.org, 0, 100).await.expect("feed");
    let snapshot = changes
        .iter()
        .rev()
        .find(|c| c.resource.id == r.id)
        .expect("the insert is in the feed");
    assert_eq!(snapshot.resource, want, "the feed's snapshot too");

    let op = insert_operation(store, operation(&d, Some(&r))).await;
    store
        .append_deploy_log(vec![DeployLogLine {
            seq: 0,
            org_id: t.org,
            resource_id: r.id,
            operation_id: op.id,
            line: "step 1\0done".into(),
            at: now(),
        }])
        .await
        .expect("a line with a NUL is written");
    let lines = store
        .deploy_log_since(t.org, Some(r.id), 0, 10)
        .await
        .expect("log");
    let lines: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(lines, [kept("step 1\0done")]);

    store
        .record_api_call(ApiCall {
            id: 0,
            org_id: t.org,
            dock_id: d.id,
            resource_id: Some(r.id),
            operation_id: Some(op.id),
            method: "GET".into(),
            path: "/v2/droplets/\0".into(),
            status: None,
            duration_ms: 5,
            request_id: Some("req\0".into()),
            attempt: 1,
            error: Some("reset\0".into()),
            at: now(),
            worker: None,
        })
        .await
        .expect("a call with a NUL is journalled");
    let calls = store
        .api_calls(
            t.org,
            r.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("journal");
    let call = calls.items.first().expect("the call");
    assert_eq!(call.path, kept("/v2/droplets/\0"));
    assert_eq!(call.request_id.as_deref(), Some(kept("req\0").as_str()));
    assert_eq!(call.error.as_deref(), Some(kept("reset\0").as_str()));
}

/// Every test above, named once for every store's runner: `every_test!(runner)` expands to
/// `runner!(name, …)`, and each runner turns a name into a test on its own fresh store.
macro_rules! every_test {
    ($runner:ident) => {
        $runner!(
            bootstrap_and_principal_for_token,
            a_member_and_the_invitation_asked_for_are_added_together,
            docks_insert_get_find_list,
            duplicate_dock_name_is_already_exists,
            update_dock_replaces_key_url_and_settings,
            remove_dock_waits_for_deprovisioning,
            remove_dock_waits_for_operations,
            remove_unknown_dock_is_not_found,
            resources_round_trip_every_kind,
            list_resources_honours_every_filter,
            resources_page_newest_first_as_rows_come_and_go,
            operations_and_the_journal_page_as_rows_come,
            docks_members_tokens_and_audit_page,
            get_resource_is_scoped_to_org,
            resource_in_unknown_dock_is_refused,
            second_writer_from_the_same_read_loses,
            illegal_transition_writes_nothing,
            batch_is_all_or_nothing,
            duplicates_of_live_resources_are_refused,
            find_by_provider_id_ignores_deprovisioned,
            find_by_marker_across_kinds,
            fencing_stops_a_stale_worker,
            renew_lease_only_while_held,
            expire_leases_frees_only_the_named_workers,
            future_operations_are_not_claimed,
            claims_take_the_oldest_first,
            claims_pass_over_the_docks_asked_to_skip,
            record_step_twice_leaves_one_row,
            operations_get_list_and_active,
            change_feed_follows_every_write,
            change_signal_sees_new_seq,
            journal_is_per_resource_and_operation_in_order,
            deploy_logs_are_per_resource_in_order_from_a_position,
            audit_is_newest_first_and_pages,
            batch_claims_take_each_due_operation_once,
            waiting_operations_are_taken_for_a_hold_without_a_run,
            a_round_takes_the_checks_due_before_its_next_one,
            a_held_check_is_extended_only_while_still_held,
            heartbeats_count_the_live_nodes,
            a_cancel_wakes_a_waiting_operation_and_is_refused_once_finished,
            expire_leases_frees_waiting_operations_a_dead_observer_held,
            waiting_operations_are_found_and_taken_per_dock,
            get_resources_reads_many_rows_of_the_org_at_once,
            apply_each_keeps_each_batch_whole_and_alone,
            idempotency_keys_are_unique_per_org,
            journal_batches_are_written_whole,
            a_fenced_step_sets_the_provider_id_and_reports_a_cancel,
            tokens_carry_a_capped_role_expire_and_revoke,
            an_invitation_is_taken_once_with_the_password_it_sets,
            the_last_owner_stays,
            audit_is_searched_by_every_filter_a_page_at_a_time,
            a_reseal_replaces_only_what_it_read_and_updates_leave_input_alone,
            lookups_by_marker_provider_id_active_operation_and_steps_stay_in_their_org,
            nul_characters_from_a_provider_are_written,
        );
    };
}
