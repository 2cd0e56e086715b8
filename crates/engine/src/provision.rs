//! Provision: have the adapter create the resource, park the operation while the provider
//! works, settle `provisioned` once a check finds it ready (see `observe`).
//!
//! The adapter records its steps as it goes (a "create sent" step before every create, then
//! what was created), so a resumed run skips what is done and a lost answer is adopted by
//! marker, never created twice.
//!
//! A permanent failure, a cancel, or giving up after `max_attempts` interrupted runs unwinds:
//! each recorded step is handed back to the adapter's `undo`, newest first, and only when
//! every step is undone does the row settle `failed`. An undo that cannot be done now (the
//! provider is down, the key was revoked) keeps the operation unwinding and tries again later:
//! a row never settles `failed` while something carrying its marker may still exist.

use serde_json::json;
use stackdock_core::{Failure, Operation, ProvisioningState, Resource, StepStatus};
use stackdock_docks::{Ctx, DockAccess, DockAdapter, DockError, Observed, Progress, adapter};
use stackdock_store::{Batch, Lease, StoreError, Write};

use crate::worker::{apply_observed, out_of_runs};
use crate::{Engine, EngineError};

fn corrupt(what: &str) -> EngineError {
    EngineError::Store(StoreError::Corrupt(what.into()))
}

pub(crate) fn cancelled() -> Failure {
    Failure::new("cancelled", "cancelled at the user's request")
}

pub(crate) async fn run(engine: &Engine, op: &Operation, lease: &Lease) -> Result<(), EngineError> {
    let store = engine.store();
    let rid = op
        .resource_id
        .ok_or_else(|| corrupt("provision without a resource"))?;
    let kind = op
        .resource_kind
        .ok_or_else(|| corrupt("provision without a kind"))?;
    let resource = store.get_resource(op.org_id, rid).await?;
    let dock = store.get_dock(op.org_id, op.dock_id).await?;
    let config = op.input["config"].as_object().cloned().unwrap_or_default();
    let steps = store.steps(op.org_id, op.id).await?;
    let acted = steps.iter().any(|s| s.status == StepStatus::Done);
    let (mut ctx, recorder) =
        engine.ctx_recorded(op, lease, Some(rid), resource.marker.clone(), steps);

    let Some(adapter) = engine.registry().get(dock.provider) else {
        let f = Failure::new(
            "no_adapter",
            EngineError::NoAdapter(dock.provider).to_string(),
        );
        return engine.settle_resource(op, lease, resource, Err(f)).await;
    };
    let access = match engine.open_dock(&dock) {
        Ok(access) => access,
        // Without the key nothing recorded can be undone: wait for the key to be fixed.
        Err(e) if acted => return engine.reschedule(op, lease, e.to_string()).await,
        Err(e) => {
            let f = Failure::new("dock_key_unavailable", e.to_string());
            return engine.settle_resource(op, lease, resource, Err(f)).await;
        }
    };

    let mut config = config;
    if let Err(e) = crate::sealed::open(engine.keyring(), rid, &mut config) {
        // Never run without a sealed value: wait for its key if something was done already.
        if acted {
            return engine.reschedule(op, lease, e.to_string()).await;
        }
        let f = Failure::new("sealed_config_unavailable", e.to_string());
        return engine.settle_resource(op, lease, resource, Err(f)).await;
    }
    recorder.keep_out_of_log(
        crate::sealed::opened_secrets(&op.input["config"], &config)
            .into_iter()
            .chain([access.api_key.clone()]),
    );

    let stop = op
        .unwind
        .clone()
        .or_else(|| op.cancel_requested.then(cancelled))
        .or_else(|| out_of_runs(engine, op));
    if let Some(failure) = stop {
        return unwind(engine, op, lease, &mut ctx, &*adapter, &access, failure).await;
    }

    match adapter::provision(&*adapter, kind, &mut ctx, &access, &config).await {
        Ok(Progress::Done(observed)) => {
            // The row as the create's step wrote it (with the provider id), else as read.
            let row = recorder.written_row().unwrap_or(resource);
            let batch = provisioned_batch(op, lease, row, observed.map(|o| *o));
            store.apply(batch).await?;
            Ok(())
        }
        Ok(Progress::Pending { status, check_in }) => {
            let row = recorder.written_row().unwrap_or(resource);
            let check_in = engine.next_check(dock.id, &access.budget, check_in);
            let batch = Engine::park_batch(op, lease, check_in, Some((row, None, status)));
            store.apply(batch).await?;
            engine.parked();
            Ok(())
        }
        Err(DockError::Checkpoint(source)) => Err(EngineError::from_checkpoint(source)),
        Err(DockError::Cancelled) => {
            unwind(engine, op, lease, &mut ctx, &*adapter, &access, cancelled()).await
        }
        Err(e) if e.is_transient() && op.attempt < engine.config().max_attempts => {
            engine.reschedule(op, lease, e.to_string()).await
        }
        // Permanent, or transient on the last run allowed: either way the operation ends
        // here, so what it created is undone before the row settles `failed`.
        Err(e) => {
            let failure = Failure::new(e.code(), e.message());
            unwind(engine, op, lease, &mut ctx, &*adapter, &access, failure).await
        }
    }
}

/// The batch that settles a provision `provisioned` with what the provider shows.
pub(crate) fn provisioned_batch(
    op: &Operation,
    lease: &Lease,
    mut row: Resource,
    observed: Option<Observed>,
) -> Batch {
    if let Some(o) = observed {
        apply_observed(&mut row, o);
    }
    row.provisioning_state = ProvisioningState::Provisioned;
    row.provisioned_at = Some(chrono::Utc::now());
    let details = json!({"provider_resource_id": row.provider_resource_id, "attempt": op.attempt});
    Engine::settle_resource_batch(op, lease, row, Ok(details))
}

/// Undoes the recorded steps newest first, then settles `failed` with `failure`. If a step
/// cannot be undone now, the operation stays unwinding and is run again later.
async fn unwind(
    engine: &Engine,
    op: &Operation,
    lease: &Lease,
    ctx: &mut Ctx,
    adapter: &dyn DockAdapter,
    access: &DockAccess,
    failure: Failure,
) -> Result<(), EngineError> {
    let store = engine.store();
    let done: Vec<_> = ctx
        .records()
        .iter()
        .rev()
        .filter(|s| s.status == StepStatus::Done)
        .cloned()
        .collect();
    for mut step in done {
        match adapter.undo(ctx, access, &step).await {
            Ok(()) => {
                step.status = StepStatus::Undone;
                step.at = chrono::Utc::now();
                store
                    .apply(Batch::fenced(lease).push(Write::RecordStep(step)))
                    .await?;
            }
            Err(DockError::Checkpoint(source)) => return Err(EngineError::from_checkpoint(source)),
            Err(e) => {
                // Re-queued still unwinding: the next run goes on undoing.
                let mut unwinding = op.clone();
                unwinding.unwind = Some(failure);
                let why = format!("undoing {}: {e}", step.name);
                return engine.reschedule(&unwinding, lease, why).await;
            }
        }
    }
    let rid = op
        .resource_id
        .ok_or_else(|| corrupt("provision without a resource"))?;
    let mut row = store.get_resource(op.org_id, rid).await?;
    // Everything it pointed at was deleted.
    row.provider_resource_id = None;
    engine.settle_resource(op, lease, row, Err(failure)).await
}
