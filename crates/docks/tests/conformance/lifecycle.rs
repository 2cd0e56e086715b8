//! A provision reaches ready and a deprovision reaches gone, the way the engine drives them.

use stackdock_core::ResourceKind;
use stackdock_docks::adapter::provision;

use super::{Harness, deprovision_gone, held_with, tracked};
use crate::support::{Run, engine};

/// Calls that only read; anything else asks the provider to act.
fn acts(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

pub async fn provisions_and_deprovisions_every_kind(h: &impl Harness) {
    let adapter = h.adapter();
    let dock = h.dock();
    assert_eq!(adapter.provider(), dock.provider);
    assert!(!adapter.kinds().is_empty(), "an adapter supports some kind");
    for &kind in adapter.kinds() {
        provisions_and_deprovisions(h, kind).await;
    }
}

async fn provisions_and_deprovisions(h: &impl Harness, kind: ResourceKind) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut run = Run::new(&dock);
    let progress = provision(
        &*adapter,
        kind,
        &mut run.ctx,
        &dock,
        &h.sample_config(kind, "life-1"),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: provision failed: {e:?}"));

    // Intent is recorded before the provider is asked to act, so a crash in between leaves a
    // record to find the resource by.
    let recorded = run.recorder.recorded();
    assert!(
        !recorded.is_empty(),
        "{kind}: a provision records its steps"
    );
    let calls = run.recorder.calls();
    let first_act = calls
        .iter()
        .position(|c| acts(&c.method))
        .unwrap_or_else(|| panic!("{kind}: nothing asked the provider to create: {calls:?}"));
    assert!(
        recorded[0].after_calls <= first_act,
        "{kind}: {} was sent before any step was recorded",
        calls[first_act].path
    );
    let indexes: Vec<i64> = recorded.iter().map(|r| r.step.index).collect();
    let expected: Vec<i64> = (0..recorded.len() as i64).collect();
    assert_eq!(indexes, expected, "{kind}: steps are numbered in order");

    let target = tracked(&run, kind);
    assert_eq!(target.marker.as_ref(), Some(&run.marker));
    let observed = engine::until_ready(&*adapter, &mut run.ctx, &dock, &target, progress).await;
    assert!(observed.ready);
    assert_eq!(observed.failure, None);
    assert_eq!(observed.provider_resource_id, target.provider_resource_id);
    assert_eq!(
        observed.marker.as_ref(),
        Some(&run.marker),
        "{kind}: the resource carries its marker"
    );
    assert_eq!(observed.details.kind(), kind);
    assert!(
        !observed.full_api_data.is_null(),
        "{kind}: the provider's answer is kept"
    );
    assert_eq!(
        held_with(h, kind, &run.marker).await,
        std::slice::from_ref(&target.provider_resource_id),
        "{kind}: the provider holds exactly the tracked resource"
    );
    assert!(
        !h.adopted(kind, 0, &run.recorder.steps()),
        "{kind}: a create that answered was not adopted"
    );

    deprovision_gone(&*adapter, &dock, &target).await;
    assert!(
        h.inventory(kind).await.is_empty(),
        "{kind}: deprovisioned but still held: {:?}",
        h.inventory(kind).await
    );
    // A resumed deprovision deletes again: what is gone counts as deleted.
    deprovision_gone(&*adapter, &dock, &target).await;
    assert!(h.inventory(kind).await.is_empty());
}
