//! A create whose answer is lost after the provider did the work is adopted by its marker,
//! never made twice.

use stackdock_core::ResourceKind;
use stackdock_docks::adapter::provision;

use super::{Harness, LostAnswer, deprovision_gone, held_with, tracked};
use crate::support::{Run, engine};

pub async fn a_create_answered_with_a_5xx_after_the_work_is_adopted(h: &impl Harness) {
    every_create_adopted_after(h, LostAnswer::ServerError).await;
}

pub async fn a_create_whose_answer_is_cut_off_is_adopted(h: &impl Harness) {
    every_create_adopted_after(h, LostAnswer::CutOff).await;
}

pub async fn a_create_whose_connection_drops_is_adopted(h: &impl Harness) {
    every_create_adopted_after(h, LostAnswer::Dropped).await;
}

pub async fn a_create_that_times_out_is_adopted(h: &impl Harness) {
    every_create_adopted_after(h, LostAnswer::TimedOut).await;
}

async fn every_create_adopted_after(h: &impl Harness, how: LostAnswer) {
    for &kind in h.adapter().kinds() {
        for nth in 0..h.creates_per_provision(kind) {
            adopted_after(h, kind, nth, how).await;
        }
    }
}

async fn adopted_after(h: &impl Harness, kind: ResourceKind, nth: usize, how: LostAnswer) {
    let adapter = h.adapter();
    let dock = h.dock();
    let when = format!("create {nth} lost its answer ({how:?})");
    let mut run = Run::new(&dock);
    if how == LostAnswer::TimedOut {
        run.ctx.retry.request_timeout = h.lost_answer_timeout();
    }
    h.lose_create_answer(kind, nth, how);

    let progress = provision(
        &*adapter,
        kind,
        &mut run.ctx,
        &dock,
        &h.sample_config(kind, &format!("lost-{nth}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: {when}: provision failed: {e:?}"));
    let target = tracked(&run, kind);
    engine::until_ready(&*adapter, &mut run.ctx, &dock, &target, progress).await;

    assert_eq!(
        held_with(h, kind, &run.marker).await,
        std::slice::from_ref(&target.provider_resource_id),
        "{kind}: {when}"
    );
    assert_eq!(
        h.creates_with_marker(kind, &run.marker),
        1,
        "{kind}: {when}: created twice"
    );
    assert!(
        h.adopted(kind, nth, &run.recorder.steps()),
        "{kind}: {when}: not recorded as adopted: {:?}",
        run.recorder.steps()
    );
    deprovision_gone(&*adapter, &dock, &target).await;
}
