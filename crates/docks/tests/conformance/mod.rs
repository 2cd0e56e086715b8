//! The conformance suite of the [`DockAdapter`] contract: every adapter runs these checks
//! against its own sandbox (`tests/adapters.rs` lists them). The checks use only the trait and
//! a [`Harness`], so they hold for any provider, and they drive an adapter the way the engine
//! does (`support::engine`): `Pending` is checked through `observe_many`, a failed operation is
//! unwound newest step first through `undo`, and the store is the in-memory recorder
//! (`support::recorder`), which can stop the adapter at any step.
//!
//! What every adapter must show, for every kind it supports:
//!
//! - [`lifecycle`]: a provision reaches ready through `Progress` and `observe_many`, its intent
//!   recorded before the provider is asked to act; a deprovision reaches gone, and twice is
//!   fine.
//! - [`resume`]: every step runs twice — a run resumed after any step, with the steps its store
//!   kept, ends on the same resource, and the provider holds exactly one.
//! - [`unwind`]: a failure after any step (a refused checkpoint, one lost after it was kept, a
//!   cancel) stops the adapter there, and undoing the kept steps newest first leaves nothing
//!   at the provider; undoing again is harmless.
//! - [`lost_answers`]: a create whose answer is lost (5xx, cut off, dropped, timed out) after
//!   the provider did the work is adopted by its marker, never doubled.
//! - [`lookup`]: `find_by_marker` finds exactly its own; `discover` lists what was made outside
//!   StackDock; `observe_many` answers in the order asked, `None` for what is gone.
//! - [`budget`]: a run whose first call waits for the dock's budget has recorded nothing, so a
//!   create that never went out leaves nothing to look for.
//! - [`config`]: each kind's config schema is derived from a strict type, refuses unknown and
//!   missing fields by name, and lists its sensitive fields; unsupported kinds are refused
//!   without a call.
//!
//! Conventions: a check panics on failure, naming the kind and the step; waits are for a
//! condition with a deadline, never a fixed sleep.
//!
//! [`DockAdapter`]: stackdock_docks::DockAdapter

pub mod budget;
pub mod cloudflare;
pub mod config;
pub mod digitalocean;
pub mod docker;
pub mod harness;
pub mod lifecycle;
pub mod lookup;
pub mod lost_answers;
pub mod netlify;
pub mod resume;
pub mod turso;
pub mod unwind;
pub mod vercel;
pub mod vultr;

use stackdock_core::{Marker, ResourceKind, StepStatus};
use stackdock_docks::{DockAccess, DockAdapter, Observed, Tracked, adapter::provision};

use crate::support::{Run, engine};
pub use harness::{Harness, Held, LostAnswer};

/// The ids of the resources of `kind` at the provider that carry `marker`.
pub async fn held_with(h: &impl Harness, kind: ResourceKind, marker: &Marker) -> Vec<String> {
    h.inventory(kind)
        .await
        .into_iter()
        .filter(|held| held.marker.as_ref() == Some(marker))
        .map(|held| held.provider_resource_id)
        .collect()
}

/// Provisions one resource of `kind` named `name` in a first run and drives it to ready.
/// Returns the run (its recorder holds the steps) and what the provider shows.
pub async fn provision_ready(
    h: &impl Harness,
    kind: ResourceKind,
    name: &str,
) -> (Run, Tracked, Observed) {
    let adapter = h.adapter();
    let dock = h.dock();
    let mut run = Run::new(&dock);
    let progress = provision(
        &*adapter,
        kind,
        &mut run.ctx,
        &dock,
        &h.sample_config(kind, name),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: provision failed: {e:?}"));
    let target = tracked(&run, kind);
    let observed = engine::until_ready(&*adapter, &mut run.ctx, &dock, &target, progress).await;
    (run, target, observed)
}

/// The resource as the engine tracks it after `run`: the provider id its steps named.
pub fn tracked(run: &Run, kind: ResourceKind) -> Tracked {
    run.tracked(kind).unwrap_or_else(|| {
        panic!(
            "{kind}: no recorded step named the provider id: {:?}",
            run.recorder.steps()
        )
    })
}

/// Deprovisions `target` in a run of its own and waits until the provider no longer shows
/// it.
pub async fn deprovision_gone(adapter: &dyn DockAdapter, dock: &DockAccess, target: &Tracked) {
    let mut run = Run::new(dock);
    let progress = adapter
        .deprovision(&mut run.ctx, dock, target)
        .await
        .unwrap_or_else(|e| panic!("{target:?}: deprovision failed: {e:?}"));
    engine::until_gone(adapter, &mut run.ctx, dock, target, progress).await;
}

/// The names of the done steps, oldest first.
pub fn step_names(run: &Run) -> Vec<String> {
    run.recorder
        .steps()
        .into_iter()
        .filter(|s| s.status == StepStatus::Done)
        .map(|s| s.name)
        .collect()
}

/// Declares one test per check for an adapter: `suite!(digitalocean, DigitalOcean)` gives
/// `digitalocean::provisions_and_deprovisions_every_kind` and the rest, each on a fresh
/// harness.
macro_rules! suite {
    ($adapter:ident, $harness:ty) => {
        $crate::conformance::checks!(
            $adapter,
            $harness,
            lifecycle::provisions_and_deprovisions_every_kind,
            resume::every_step_runs_twice_into_one_resource,
            resume::a_run_stopped_after_any_step_resumes_into_one_resource,
            unwind::a_failure_after_any_step_unwinds_to_nothing,
            lost_answers::a_create_answered_with_a_5xx_after_the_work_is_adopted,
            lost_answers::a_create_whose_answer_is_cut_off_is_adopted,
            lost_answers::a_create_whose_connection_drops_is_adopted,
            lost_answers::a_create_that_times_out_is_adopted,
            lookup::find_by_marker_finds_its_own_and_nothing_else,
            lookup::discover_lists_what_was_made_outside_stackdock,
            lookup::observe_many_answers_in_order_and_none_for_gone,
            budget::a_run_waiting_for_the_budget_has_recorded_nothing,
            config::config_schemas_are_derived_strict_and_mark_secrets,
            config::unsupported_kinds_are_refused_without_a_call,
        );
    };
}
pub(crate) use suite;

macro_rules! checks {
    ($adapter:ident, $harness:ty, $($module:ident :: $check:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if !<$harness as $crate::conformance::Harness>::available(stringify!($check)) {
                        return;
                    }
                    let harness = <$harness as $crate::conformance::Harness>::start().await;
                    $crate::conformance::$module::$check(&harness).await;
                }
            )*
        }
    };
}
pub(crate) use checks;
