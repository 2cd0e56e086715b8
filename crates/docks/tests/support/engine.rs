//! The engine's part around an adapter, in miniature: a `Pending` provision or deprovision is
//! checked through `observe_many` until the provider is done, and a failed operation is
//! unwound by handing its recorded steps back to `undo`, newest first.

use std::time::{Duration, Instant};

use stackdock_core::{Step, StepStatus};
use stackdock_docks::{Ctx, DockAccess, DockAdapter, DockError, Observed, Progress, Tracked};

use super::DEADLINE;

/// The longest a test waits between checks, whatever `check_in` the adapter asked for: the
/// sandboxes are ready in milliseconds and the engine's own spacing is not under test here.
const CHECK_AT_MOST_EVERY: Duration = Duration::from_millis(20);

/// Checks `target` until the provider shows it ready, starting from what the provision
/// answered. Panics at [`DEADLINE`], or if the provider reports the resource failed.
pub async fn until_ready(
    adapter: &dyn DockAdapter,
    ctx: &mut Ctx,
    dock: &DockAccess,
    target: &Tracked,
    first: Progress,
) -> Observed {
    let mut check_in = match first {
        Progress::Done(Some(observed)) => return *observed,
        Progress::Done(None) => panic!("a provision that is done must show the resource"),
        Progress::Pending { check_in, .. } => check_in,
    };
    let started = Instant::now();
    loop {
        tokio::time::sleep(check_in.min(CHECK_AT_MOST_EVERY)).await;
        let seen = adapter
            .observe_many(ctx, dock, target.kind, std::slice::from_ref(target))
            .await
            .expect("observe_many answers");
        assert_eq!(seen.len(), 1, "one answer per target");
        if let Some(observed) = seen.into_iter().next().flatten() {
            assert_eq!(observed.failure, None, "the provider reports it failed");
            if observed.ready {
                return observed;
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{target:?} not ready within {DEADLINE:?}"
        );
        check_in = CHECK_AT_MOST_EVERY;
    }
}

/// Checks `target` until the provider no longer shows it, starting from what the deprovision
/// answered. Panics at [`DEADLINE`].
pub async fn until_gone(
    adapter: &dyn DockAdapter,
    ctx: &mut Ctx,
    dock: &DockAccess,
    target: &Tracked,
    first: Progress,
) {
    let mut check_in = match first {
        Progress::Done(_) => Duration::ZERO,
        Progress::Pending { check_in, .. } => check_in,
    };
    let started = Instant::now();
    loop {
        tokio::time::sleep(check_in.min(CHECK_AT_MOST_EVERY)).await;
        let seen = adapter
            .observe_many(ctx, dock, target.kind, std::slice::from_ref(target))
            .await
            .expect("observe_many answers");
        assert_eq!(seen.len(), 1, "one answer per target");
        if seen[0].is_none() {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{target:?} still there after {DEADLINE:?}"
        );
        check_in = CHECK_AT_MOST_EVERY;
    }
}

/// Undoes every done step, newest first, as the engine unwinds a failed operation.
pub async fn unwind(
    adapter: &dyn DockAdapter,
    ctx: &mut Ctx,
    dock: &DockAccess,
    steps: &[Step],
) -> Result<(), DockError> {
    for step in steps.iter().rev().filter(|s| s.status == StepStatus::Done) {
        adapter.undo(ctx, dock, step).await?;
    }
    Ok(())
}
