//! A failure after any step stops the adapter there, and undoing what was kept, newest first,
//! leaves nothing at the provider.

use stackdock_core::ResourceKind;
use stackdock_docks::adapter::provision;

use super::{Harness, provision_ready};
use crate::support::{MemRecorder, Run, Stop, engine};

pub async fn a_failure_after_any_step_unwinds_to_nothing(h: &impl Harness) {
    let adapter = h.adapter();
    for &kind in adapter.kinds() {
        // The whole provision, then a failure the engine saw afterwards (the resource broke,
        // a user cancelled while it was parked): everything is undone.
        let (run, _, _) = provision_ready(h, kind, "unwind-all").await;
        let steps = run.recorder.recorded();
        assert!(!steps.is_empty(), "{kind}: a provision records its steps");
        unwind_and_check(h, kind, &run, "after the provision answered").await;

        for k in 1..=steps.len() {
            for how in Stop::ALL {
                stopped_at(h, kind, k, how).await;
            }
        }
    }
}

async fn stopped_at(h: &impl Harness, kind: ResourceKind, k: usize, how: Stop) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut run = Run::with(&dock, MemRecorder::stopping_at(k, how));
    let config = h.sample_config(kind, &format!("unwind-{k}"));
    let err = provision(&*adapter, kind, &mut run.ctx, &dock, &config)
        .await
        .expect_err("the recorder stopped it");
    let when = format!("stopped at step {k} ({how:?})");
    assert!(how.expected(&err), "{kind}: {when}: answered {err:?}");

    // It stopped where it was told: no call after the step it could not go past.
    let stopped = run
        .recorder
        .stopped_after_calls()
        .unwrap_or_else(|| panic!("{kind}: {when}: the adapter never reached step {k}"));
    let calls = run.recorder.calls();
    assert_eq!(
        calls.len(),
        stopped,
        "{kind}: {when}: the adapter went on without its record: {:?}",
        &calls[stopped..]
    );
    let kept = run.recorder.recorded().len();
    let expected = if how.keeps_the_step() { k } else { k - 1 };
    assert_eq!(kept, expected, "{kind}: {when}: steps kept");
    // What the adapter itself remembers matches: a cancelled step is kept, a failed one not.
    let remembered = run.ctx.records().len();
    let expected = if how == Stop::Cancel { k } else { k - 1 };
    assert_eq!(remembered, expected, "{kind}: {when}: steps in the context");

    unwind_and_check(h, kind, &run, &when).await;
}

/// Unwinds the steps the store kept for `run`, in a later run as the engine would, and checks
/// that nothing is left at the provider; then unwinds again, which must change nothing.
async fn unwind_and_check(h: &impl Harness, kind: ResourceKind, run: &Run, when: &str) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut later = run.resume(&dock, &run.recorder.recorded());
    let steps = later.recorder.steps();
    for pass in ["undo", "undo again"] {
        engine::unwind(&*adapter, &mut later.ctx, &dock, &steps)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {when}: {pass} failed: {e:?}"));
        let left = h.inventory(kind).await;
        assert!(
            left.is_empty(),
            "{kind}: {when}: left after {pass}: {left:?}"
        );
    }
}
