//! Deprovision: have the adapter delete the resource, park the operation until a check finds
//! it gone (see `observe`), settle `deprovisioned`.
//!
//! A row with no provider id but a marker (a provision whose create may have happened but was
//! never recorded) is looked up by its marker first: a row never settles `deprovisioned` while
//! something carrying its marker may still exist. Deleting what is already gone succeeds, so
//! a resumed run simply deletes again.

use serde_json::json;
use stackdock_core::{Failure, Operation, ProvisioningSource, ProvisioningState};
use stackdock_docks::{DockError, Progress, Tracked};
use stackdock_store::{Batch, Lease, StoreError, Write};

use crate::worker::out_of_runs;
use crate::{Engine, EngineError};

pub(crate) async fn run(engine: &Engine, op: &Operation, lease: &Lease) -> Result<(), EngineError> {
    let store = engine.store();
    let rid = op.resource_id.ok_or_else(|| {
        EngineError::Store(StoreError::Corrupt("deprovision without a resource".into()))
    })?;
    let mut resource = store.get_resource(op.org_id, rid).await?;
    let kind = resource.kind();
    let dock = store.get_dock(op.org_id, op.dock_id).await?;
    let mut ctx = engine.ctx(op, lease, Some(rid), resource.marker.clone(), Vec::new());

    if let Some(gave_up) = out_of_runs(engine, op) {
        return engine
            .settle_resource(op, lease, resource, Err(gave_up))
            .await;
    }
    let adapter = engine
        .registry()
        .get(dock.provider)
        .ok_or(EngineError::NoAdapter(dock.provider))?;
    let access = engine.open_dock(&dock)?;

    let outcome = async {
        let pid = match (&resource.provider_resource_id, &resource.marker) {
            (Some(pid), _) => pid.clone(),
            (None, Some(marker)) if resource.provisioning_source == ProvisioningSource::Api => {
                match adapter
                    .find_by_marker(&mut ctx, &access, kind, marker)
                    .await?
                {
                    Some(found) => found.provider_resource_id,
                    None => return Ok(None),
                }
            }
            // Nothing was ever created at the provider (e.g. the create was refused).
            _ => return Ok(None),
        };
        let target = Tracked {
            kind,
            provider_resource_id: pid,
            marker: resource.marker.clone(),
            last_seen: resource.full_api_data.clone(),
        };
        adapter
            .deprovision(&mut ctx, &access, &target)
            .await
            .map(|p| Some((target.provider_resource_id, p)))
    }
    .await;

    match outcome {
        Ok(None) | Ok(Some((_, Progress::Done(_)))) => {
            resource.provisioning_state = ProvisioningState::Deprovisioned;
            engine
                .settle_resource(op, lease, resource, Ok(json!({})))
                .await
        }
        Ok(Some((pid, Progress::Pending { status, check_in }))) => {
            let mut row = store.get_resource(op.org_id, rid).await?;
            // Found by marker: the row tracks it from now on.
            if row.provider_resource_id.is_none() {
                let expected_version = row.version;
                row.provider_resource_id = Some(pid);
                row = store
                    .apply(Batch::fenced(lease).push(Write::UpdateResource {
                        resource: row,
                        expected_version,
                    }))
                    .await?
                    .pop()
                    .ok_or_else(|| {
                        EngineError::Store(StoreError::Corrupt("no row written".into()))
                    })?;
            }
            let check_in = engine.next_check(dock.id, &access.budget, check_in);
            let batch = Engine::park_batch(op, lease, check_in, Some((row, None, status)));
            store.apply(batch).await?;
            engine.parked();
            Ok(())
        }
        Err(DockError::Checkpoint(e)) => Err(EngineError::from_checkpoint(e)),
        Err(e) if e.is_transient() && op.attempt < engine.config().max_attempts => {
            engine.reschedule(op, lease, e.to_string()).await
        }
        Err(e) => {
            let row = store.get_resource(op.org_id, rid).await?;
            let f = Failure::new(e.code(), e.message());
            engine.settle_resource(op, lease, row, Err(f)).await
        }
    }
}
