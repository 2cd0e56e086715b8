//! Sync: discover what exists in a dock's account and track what is not tracked yet as
//! `manual` rows. Rows StackDock already tracks — by provider id, or by marker for a create
//! still in flight — are left alone, so a second sync adds nothing.

use serde_json::{Value, json};
use stackdock_core::{
    AuditEntry, OpState, Operation, Outcome, ProvisioningSource, ProvisioningState, Resource,
    ResourceId, Step, StepStatus,
};
use stackdock_docks::DockError;
use stackdock_store::{Lease, PageRequest, ResourceFilter, Write};

use crate::worker::{apply_observed, out_of_runs};
use crate::{Engine, EngineError};

pub(crate) async fn run(engine: &Engine, op: &Operation, lease: &Lease) -> Result<(), EngineError> {
    let store = engine.store();
    let dock = store.get_dock(op.org_id, op.dock_id).await?;
    let access = engine.open_dock(&dock)?;
    let adapter = engine
        .registry()
        .get(dock.provider)
        .ok_or(EngineError::NoAdapter(dock.provider))?;
    let mut ctx = engine.ctx(op, lease, None, None, Vec::new());
    let audit = |outcome, details: Value| {
        AuditEntry::new(op.org_id, op.requested_by, "dock.sync", outcome)
            .resource(format!("docks/{}", dock.id))
            .provider(dock.provider.as_str())
            .details(details)
    };

    if let Some(f) = out_of_runs(engine, op) {
        let details = json!({"operation_id": op.id, "code": f.code, "message": f.message});
        let last = format!("{}: {}", f.code, f.message);
        let audit = audit(Outcome::Failure, details);
        return engine
            .settle(op, lease, OpState::Failed, Some(last), Vec::new(), audit)
            .await;
    }

    let found = match adapter.discover(&mut ctx, &access).await {
        Ok(found) => found,
        Err(DockError::Checkpoint(e)) => {
            return Err(EngineError::from_checkpoint(e));
        }
        Err(e) if e.is_transient() && op.attempt < engine.config().max_attempts => {
            return engine.reschedule(op, lease, e.to_string()).await;
        }
        Err(e) => {
            let details = json!({"operation_id": op.id, "code": e.code(), "message": e.message()});
            return engine
                .settle(
                    op,
                    lease,
                    OpState::Failed,
                    Some(e.to_string()),
                    Vec::new(),
                    audit(Outcome::Failure, details),
                )
                .await;
        }
    };

    // Rows this dock is still provisioning that name no provider resource yet: one whose
    // create was sent, its answer lost or its run killed, is found here before the run
    // adopts it, and a domain's marker is a record made after the zone itself. Such a
    // resource is left to its own run; a sync after it shows what is still untracked.
    let mut in_flight = std::collections::HashSet::new();
    let mut page = PageRequest::first(500);
    loop {
        let rows = store
            .list_resources(
                op.org_id,
                &ResourceFilter {
                    dock_id: Some(dock.id),
                    state: Some(ProvisioningState::Provisioning),
                    ..ResourceFilter::default()
                },
                &page,
            )
            .await?;
        in_flight.extend(
            rows.items
                .iter()
                .filter(|r| r.provider_resource_id.is_none())
                .map(|r| (r.details.kind(), r.name.to_ascii_lowercase())),
        );
        match rows.next {
            Some(after) => {
                page = PageRequest {
                    limit: 500,
                    after: Some(after),
                }
            }
            None => break,
        }
    }

    let mut writes = Vec::new();
    let total = found.len();
    for observed in found {
        let kind = observed.details.kind();
        if in_flight.contains(&(kind, observed.name.to_ascii_lowercase())) {
            continue;
        }
        if store
            .find_by_provider_id(op.org_id, dock.id, kind, &observed.provider_resource_id)
            .await?
            .is_some()
        {
            continue;
        }
        if let Some(marker) = &observed.marker
            && store.find_by_marker(op.org_id, marker).await?.is_some()
        {
            continue;
        }
        let now = chrono::Utc::now();
        let mut row = Resource {
            id: ResourceId::new(),
            org_id: op.org_id,
            dock_id: dock.id,
            provider: dock.provider.as_str().into(),
            provider_resource_id: None,
            name: observed.name.clone(),
            status: None,
            provisioning_source: ProvisioningSource::Manual,
            provisioning_state: ProvisioningState::Provisioned,
            provisioned_at: Some(now),
            full_api_data: Value::Null,
            error: None,
            marker: None,
            created_at: now,
            updated_at: now,
            version: 0,
            details: observed.details.clone(),
        };
        apply_observed(&mut row, observed);
        writes.push(Write::InsertResource(row));
    }
    let added = writes.len();
    tracing::info!(dock = %dock.name, found = total, added, "sync finished");
    let details = json!({"operation_id": op.id, "found": total, "added": added});
    // The tally is kept as the operation's one step, so `GET /operations/{id}` shows it.
    writes.push(Write::RecordStep(Step {
        operation_id: op.id,
        index: 0,
        name: "discover".into(),
        status: StepStatus::Done,
        output: json!({"found": total, "added": added}),
        undo: Value::Null,
        at: chrono::Utc::now(),
    }));
    engine
        .settle(
            op,
            lease,
            OpState::Succeeded,
            None,
            writes,
            audit(Outcome::Success, details),
        )
        .await
}
