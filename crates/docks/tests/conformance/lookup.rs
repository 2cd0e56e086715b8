//! Finding resources again: by marker, by listing the account, and in batches by id.

use std::time::{Duration, Instant};

use stackdock_core::{Marker, ResourceId, ResourceKind};
use stackdock_docks::Tracked;

use super::{Harness, deprovision_gone, provision_ready};
use crate::support::{DEADLINE, Run};

pub async fn find_by_marker_finds_its_own_and_nothing_else(h: &impl Harness) {
    let adapter = h.adapter();
    let dock = h.dock();
    for &kind in adapter.kinds() {
        let (run, target, _) = provision_ready(h, kind, "found-1").await;
        let (other, _, _) = provision_ready(h, kind, "found-2").await;
        h.create_outside(kind, "found-3").await;
        let mut ctx = Run::new(&dock).ctx;

        for (marker, id) in [
            (&run.marker, &target.provider_resource_id),
            (
                &other.marker,
                &super::tracked(&other, kind).provider_resource_id,
            ),
        ] {
            let found = adapter
                .find_by_marker(&mut ctx, &dock, kind, marker)
                .await
                .unwrap_or_else(|e| panic!("{kind}: find_by_marker failed: {e:?}"))
                .unwrap_or_else(|| panic!("{kind}: {marker} not found"));
            assert_eq!(&found.provider_resource_id, id, "{kind}: {marker}");
            assert_eq!(found.marker.as_ref(), Some(marker));
        }
        let unknown = Marker::for_resource(&ResourceId::new());
        let found = adapter
            .find_by_marker(&mut ctx, &dock, kind, &unknown)
            .await
            .unwrap_or_else(|e| panic!("{kind}: find_by_marker failed: {e:?}"));
        assert_eq!(
            found, None,
            "{kind}: found something for a marker nothing carries"
        );
    }
}

pub async fn discover_lists_what_was_made_outside_stackdock(h: &impl Harness) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut expected = Vec::new();
    for &kind in adapter.kinds() {
        let (run, target, _) = provision_ready(h, kind, "ours-1").await;
        let theirs = h.create_outside(kind, "theirs-1").await;
        expected.push((kind, target.provider_resource_id, Some(run.marker)));
        expected.push((kind, theirs, None));
    }
    let mut ctx = Run::new(&dock).ctx;

    let found = adapter
        .discover(&mut ctx, &dock)
        .await
        .unwrap_or_else(|e| panic!("discover failed: {e:?}"));

    let mut seen: Vec<(ResourceKind, String, Option<Marker>)> = found
        .into_iter()
        .map(|o| (o.details.kind(), o.provider_resource_id, o.marker))
        .collect();
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        seen, expected,
        "discover lists each resource once, with its marker if any"
    );
}

pub async fn observe_many_answers_in_order_and_none_for_gone(h: &impl Harness) {
    let adapter = h.adapter();
    let dock = h.dock();
    for &kind in adapter.kinds() {
        let (_, a, _) = provision_ready(h, kind, "order-a").await;
        let (_, b, _) = provision_ready(h, kind, "order-b").await;
        let (_, gone, _) = provision_ready(h, kind, "order-gone").await;
        let manual = |provider_resource_id: String| Tracked {
            kind,
            provider_resource_id,
            marker: None,
            last_seen: serde_json::Value::Null,
        };
        let theirs = manual(h.create_outside(kind, "order-theirs").await);
        let theirs_gone = manual(h.create_outside(kind, "order-theirs-gone").await);
        for target in [&gone, &theirs_gone] {
            deprovision_gone(&*adapter, &dock, target).await;
            until_not_held(h, target).await;
        }
        let mut ctx = Run::new(&dock).ctx;

        // Neither the provider's order nor the order of creation.
        let targets = [
            b.clone(),
            theirs.clone(),
            gone.clone(),
            a.clone(),
            theirs_gone.clone(),
        ];
        let seen = adapter
            .observe_many(&mut ctx, &dock, kind, &targets)
            .await
            .unwrap_or_else(|e| panic!("{kind}: observe_many failed: {e:?}"));

        let ids: Vec<Option<&str>> = seen
            .iter()
            .map(|o| o.as_ref().map(|o| o.provider_resource_id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                Some(b.provider_resource_id.as_str()),
                Some(theirs.provider_resource_id.as_str()),
                None,
                Some(a.provider_resource_id.as_str()),
                None,
            ],
            "{kind}: one answer per target, in the order given"
        );
        assert_eq!(seen[0].as_ref().unwrap().marker, b.marker);
        assert_eq!(seen[1].as_ref().unwrap().marker, None);
        for observed in seen.iter().flatten() {
            assert_eq!(observed.details.kind(), kind);
        }
        let none = adapter
            .observe_many(&mut ctx, &dock, kind, &[])
            .await
            .unwrap_or_else(|e| panic!("{kind}: observe_many of nothing failed: {e:?}"));
        assert!(none.is_empty());
    }
}

/// Waits until the sandbox itself no longer holds `target`, so that what `observe_many` says
/// of it is checked against the provider rather than against itself.
async fn until_not_held(h: &impl Harness, target: &Tracked) {
    let started = Instant::now();
    while h
        .inventory(target.kind)
        .await
        .iter()
        .any(|held| held.provider_resource_id == target.provider_resource_id)
    {
        assert!(
            started.elapsed() < DEADLINE,
            "{target:?} still held after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
