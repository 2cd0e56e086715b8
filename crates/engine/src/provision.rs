//! Provision: create the resource at the provider, wait until it is ready, record it.
//!
//! Steps (each recorded before the next begins, so a resumed run skips what is done):
//! 1. `create` — the provider's create call, tagged with the resource's marker; its output
//!    carries the provider id, written onto the row at once. On a resumed run the marker is
//!    looked up first and a resource found by it is adopted, never created twice.
//! 2. wait until the provider reports the resource ready, then settle `provisioned`.
//!
//! A permanent failure undoes what was created (deletes it at the provider) and settles
//! `failed` with the provider's own message and code. A transient one re-queues the run, until
//! the last run allowed (`max_attempts`), whose transient failure is final and unwinds the same
//! way. Runs that end without settling count too: the run after the last allowed one gives up,
//! deleting the recorded steps' resources and then anything still carrying the marker.

use serde_json::json;
use stackdock_core::{Operation, ProvisioningState, ResourceKind, StepStatus};
use stackdock_docks::{Ctx, DockAccess, DockAdapter, DockError, adapter};
use stackdock_store::{Batch, Lease, StoreError, Write};

use crate::worker::{apply_observed, out_of_runs};
use crate::{Engine, EngineError};

fn corrupt(what: &str) -> EngineError {
    EngineError::Store(StoreError::Corrupt(what.into()))
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
    let steps = store.steps(op.id).await?;
    let mut ctx = engine.ctx(op, lease, Some(rid), resource.marker.clone(), steps);

    // Whether a failed run deleted what it had created, so the row no longer points at it.
    let mut unwound = false;
    let outcome = match (
        engine.open_dock(&dock),
        engine.registry().get(dock.provider),
        out_of_runs(engine, op),
    ) {
        (Ok(access), Some(adapter), Some((code, message))) => {
            // Earlier runs ended without settling as often as allowed. Whatever they created,
            // recorded or not, is removed before the row settles `failed`.
            let mut cleanup = undo(engine, lease, &mut ctx, &*adapter, &access, kind).await;
            if cleanup.is_none() {
                cleanup = sweep(&mut ctx, &*adapter, &access, kind).await;
            }
            unwound = cleanup.is_none();
            Err((code, with_cleanup(message, cleanup)))
        }
        (Ok(access), Some(adapter), None) => {
            let result = adapter::provision(&*adapter, kind, &mut ctx, &access, &config).await;
            match result {
                Err(DockError::Checkpoint(source)) => {
                    // Lost lease or a store failure: stop without touching anything else.
                    return Err(EngineError::from_checkpoint(source));
                }
                Err(e) if e.is_transient() && op.attempt < engine.config().max_attempts => {
                    return engine.reschedule(op, lease, e.to_string()).await;
                }
                // Permanent, or transient on the last run allowed: either way the operation
                // ends here, so what it created is deleted before the row settles `failed`.
                Err(e) => {
                    let cleanup = undo(engine, lease, &mut ctx, &*adapter, &access, kind).await;
                    unwound = cleanup.is_none();
                    Err((e.code(), with_cleanup(e.message(), cleanup)))
                }
                Ok(observed) => Ok(observed),
            }
        }
        (Err(e), _, _) => Err(("dock_key_unavailable".into(), e.to_string())),
        (_, None, _) => Err((
            "no_adapter".into(),
            EngineError::NoAdapter(dock.provider).to_string(),
        )),
    };

    // Re-read: the create checkpoint may have written the provider id since.
    let mut row = store.get_resource(op.org_id, rid).await?;
    if unwound {
        row.provider_resource_id = None;
    }
    let result = outcome.map(|observed| {
        apply_observed(&mut row, observed);
        row.provisioning_state = ProvisioningState::Provisioned;
        row.provisioned_at = Some(chrono::Utc::now());
        json!({"provider_resource_id": row.provider_resource_id, "attempt": op.attempt})
    });
    engine.settle_resource(op, lease, row, result).await
}

/// Reverses the completed steps, newest first. Returns why cleanup failed, if it did; the row
/// then keeps its provider id so the user can deprovision it.
async fn undo(
    engine: &Engine,
    lease: &Lease,
    ctx: &mut Ctx,
    adapter: &dyn DockAdapter,
    access: &DockAccess,
    kind: ResourceKind,
) -> Option<String> {
    let done: Vec<_> = ctx
        .steps()
        .iter()
        .rev()
        .filter(|s| s.status == StepStatus::Done)
        .cloned()
        .collect();
    for mut step in done {
        let Some(pid) = step.output["provider_resource_id"]
            .as_str()
            .map(str::to_string)
        else {
            continue;
        };
        if let Err(e) = adapter.deprovision(ctx, access, kind, &pid).await {
            return Some(e.to_string());
        }
        step.status = StepStatus::Undone;
        step.at = chrono::Utc::now();
        let marked = engine
            .store()
            .apply(Batch::fenced(lease).push(Write::RecordStep(step)))
            .await;
        if let Err(e) = marked {
            return Some(format!("could not record the cleanup: {e}"));
        }
    }
    None
}

/// Deletes every resource of `kind` at the provider that carries this operation's marker:
/// the cleanup for creates whose record was lost. Returns why it failed, if it did.
async fn sweep(
    ctx: &mut Ctx,
    adapter: &dyn DockAdapter,
    access: &DockAccess,
    kind: ResourceKind,
) -> Option<String> {
    let marker = ctx.marker.clone()?;
    let found = match adapter.discover(ctx, access).await {
        Ok(found) => found,
        Err(e) => return Some(e.to_string()),
    };
    for o in found {
        let ours = o.marker.as_ref() == Some(&marker) && o.details.kind() == kind;
        if ours
            && let Err(e) = adapter
                .deprovision(ctx, access, kind, &o.provider_resource_id)
                .await
        {
            return Some(e.to_string());
        }
    }
    None
}

fn with_cleanup(message: String, cleanup_error: Option<String>) -> String {
    match cleanup_error {
        None => message,
        Some(e) => format!(
            "{message} (cleaning up what was created failed: {e}; deprovision this resource to retry)"
        ),
    }
}
