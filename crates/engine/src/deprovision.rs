//! Deprovision: delete the resource at the provider, wait until it is gone, record it.
//!
//! Deleting what is already gone succeeds, so a resumed run simply deletes again.

use serde_json::json;
use stackdock_core::{Operation, ProvisioningState};
use stackdock_docks::DockError;
use stackdock_store::{Lease, StoreError};

use crate::worker::out_of_runs;
use crate::{Engine, EngineError};

pub(crate) async fn run(engine: &Engine, op: &Operation, lease: &Lease) -> Result<(), EngineError> {
    let store = engine.store();
    let rid = op.resource_id.ok_or_else(|| {
        EngineError::Store(StoreError::Corrupt("deprovision without a resource".into()))
    })?;
    let resource = store.get_resource(op.org_id, rid).await?;
    let kind = resource.kind();
    let dock = store.get_dock(op.org_id, op.dock_id).await?;
    let steps = store.steps(op.id).await?;
    let mut ctx = engine.ctx(op, lease, Some(rid), resource.marker.clone(), steps);

    if let Some(gave_up) = out_of_runs(engine, op) {
        return engine
            .settle_resource(op, lease, resource, Err(gave_up))
            .await;
    }
    let outcome: Result<(), DockError> = match &resource.provider_resource_id {
        // Nothing was ever created at the provider (e.g. the create was refused).
        None => Ok(()),
        Some(pid) => {
            let access = engine.open_dock(&dock)?;
            let adapter = engine
                .registry()
                .get(dock.provider)
                .ok_or(EngineError::NoAdapter(dock.provider))?;
            match adapter.deprovision(&mut ctx, &access, kind, pid).await {
                Ok(()) => {
                    // Some providers delete asynchronously: gone means `refresh` finds nothing.
                    stackdock_docks::adapter::wait_until_gone(&ctx, dock.provider, || async {
                        let mut probe = engine.ctx(op, lease, Some(rid), None, Vec::new());
                        adapter.refresh(&mut probe, &access, kind, pid).await
                    })
                    .await
                }
                Err(e) => Err(e),
            }
        }
    };

    let mut row = store.get_resource(op.org_id, rid).await?;
    let result = match outcome {
        Ok(()) => {
            row.provisioning_state = ProvisioningState::Deprovisioned;
            Ok(json!({}))
        }
        Err(DockError::Checkpoint(e)) => {
            return Err(EngineError::from_checkpoint(e));
        }
        Err(e) if e.is_transient() && op.attempt < engine.config().max_attempts => {
            return engine.reschedule(op, lease, e.to_string()).await;
        }
        Err(e) => Err((e.code(), e.message())),
    };
    engine.settle_resource(op, lease, row, result).await
}
