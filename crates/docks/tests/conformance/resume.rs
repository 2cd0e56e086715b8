//! Every step runs twice: a run resumed after any step ends where an uninterrupted one does,
//! with exactly one resource at the provider.

use stackdock_core::ResourceKind;
use stackdock_docks::adapter::provision;

use super::{Harness, deprovision_gone, held_with, provision_ready, step_names, tracked};
use crate::support::{MemRecorder, Run, Stop, engine};

/// A first run provisions to ready; then, for every k, a run resumed with only the first k
/// steps kept by the store (the work after step k done or not: here it was done) must find
/// the same resource, record the same steps, and leave one resource at the provider.
pub async fn every_step_runs_twice_into_one_resource(h: &impl Harness) {
    for &kind in h.adapter().kinds() {
        every_step_twice(h, kind).await;
    }
}

async fn every_step_twice(h: &impl Harness, kind: ResourceKind) {
    let adapter = h.adapter();
    let dock = h.dock();
    let config = h.sample_config(kind, "twice-1");
    let (first, target, ready) = provision_ready(h, kind, "twice-1").await;
    let recorded = first.recorder.recorded();
    let names = step_names(&first);

    for kept in 1..=recorded.len() {
        let mut again = first.resume(&dock, &recorded[..kept]);
        let progress = provision(&*adapter, kind, &mut again.ctx, &dock, &config)
            .await
            .unwrap_or_else(|e| panic!("{kind}: resumed after step {kept}: {e:?}"));
        let resumed = tracked(&again, kind);
        assert_eq!(
            resumed, target,
            "{kind}: resumed after step {kept}, it tracks another resource"
        );
        let seen = engine::until_ready(&*adapter, &mut again.ctx, &dock, &resumed, progress).await;
        assert_eq!(seen.provider_resource_id, ready.provider_resource_id);
        assert_eq!(seen.name, ready.name);
        assert_eq!(seen.marker, ready.marker);
        assert_eq!(
            step_names(&again),
            names,
            "{kind}: resumed after step {kept}, it recorded other steps"
        );
        assert_eq!(
            held_with(h, kind, &first.marker).await,
            std::slice::from_ref(&target.provider_resource_id),
            "{kind}: resumed after step {kept}"
        );
        assert_eq!(
            h.creates_with_marker(kind, &first.marker),
            1,
            "{kind}: resumed after step {kept}, it created again"
        );
    }
    deprovision_gone(&*adapter, &dock, &target).await;
}

/// For every k and every way of stopping (the step refused, kept but its answer lost, kept
/// and cancelled), a first run is stopped at step k; a later run of the same operation,
/// given what the store kept, ends ready with exactly one resource at the provider.
pub async fn a_run_stopped_after_any_step_resumes_into_one_resource(h: &impl Harness) {
    for &kind in h.adapter().kinds() {
        let steps = {
            let (run, target, _) = provision_ready(h, kind, "count-1").await;
            deprovision_gone(&*h.adapter(), &h.dock(), &target).await;
            run.recorder.recorded().len()
        };
        for k in 1..=steps {
            for how in Stop::ALL {
                stopped_then_resumed(h, kind, k, how).await;
            }
        }
    }
}

async fn stopped_then_resumed(h: &impl Harness, kind: ResourceKind, k: usize, how: Stop) {
    let adapter = h.adapter();
    let dock = h.dock();
    let config = h.sample_config(kind, &format!("resumed-{k}"));
    let mut first = Run::with(&dock, MemRecorder::stopping_at(k, how));
    let err = provision(&*adapter, kind, &mut first.ctx, &dock, &config)
        .await
        .expect_err("the recorder stopped it");
    assert!(
        how.expected(&err),
        "{kind}: stopped at step {k} ({how:?}): {err:?}"
    );

    let mut again = first.resume(&dock, &first.recorder.recorded());
    let progress = provision(&*adapter, kind, &mut again.ctx, &dock, &config)
        .await
        .unwrap_or_else(|e| panic!("{kind}: resumed after a stop at step {k} ({how:?}): {e:?}"));
    let target = tracked(&again, kind);
    engine::until_ready(&*adapter, &mut again.ctx, &dock, &target, progress).await;
    assert_eq!(
        held_with(h, kind, &first.marker).await,
        std::slice::from_ref(&target.provider_resource_id),
        "{kind}: stopped at step {k} ({how:?}), then resumed"
    );
    assert_eq!(
        h.creates_with_marker(kind, &first.marker),
        1,
        "{kind}: stopped at step {k} ({how:?}), then resumed: created twice"
    );
    deprovision_gone(&*adapter, &dock, &target).await;
}
