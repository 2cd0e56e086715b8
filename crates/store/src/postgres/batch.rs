//! [`Batch`]es: the writes of one transaction, run in order, checked against the lease first.
//!
//! A batch's resource writes only collect their feed entries ([`feed::Pending`]); whoever
//! owns the transaction numbers them with [`feed::publish`] as its last step, so the feed's
//! order is commit order (see `feed`).

use sqlx::PgConnection;
use stackdock_core::Resource;

use super::codec::now;
use super::feed::Pending;
use super::{audit, docks, operations, resources};
use crate::{Batch, Result, Write};

pub(crate) struct Applied {
    /// The resource rows as stored, in the order the batch wrote them.
    pub(crate) resources: Vec<Resource>,
    /// The feed entries the batch wrote, to number before commit.
    pub(crate) changes: Vec<Pending>,
    /// For a fenced batch: whether its operation had a cancel requested.
    pub(crate) cancel_requested: bool,
}

/// Runs inside the caller's transaction (or savepoint); any error leaves it to roll back.
pub(crate) async fn apply(c: &mut PgConnection, batch: &Batch) -> Result<Applied> {
    let cancel_requested = match &batch.fence {
        Some(lease) => operations::check_fence(c, lease).await?,
        None => false,
    };
    let mut applied = Applied {
        resources: Vec::new(),
        changes: Vec::new(),
        cancel_requested,
    };
    for write in &batch.writes {
        match write {
            Write::InsertResource(r) => {
                let stored = resources::insert(c, r).await?;
                applied.changes.push(Pending {
                    resource: stored.clone(),
                    at: now(),
                });
                applied.resources.push(stored);
            }
            Write::UpdateResource {
                resource,
                expected_version,
            } => {
                let stored = resources::update(c, resource, *expected_version).await?;
                applied.changes.push(Pending {
                    resource: stored.clone(),
                    at: stored.updated_at,
                });
                applied.resources.push(stored);
            }
            Write::SetProviderId {
                org_id,
                kind,
                resource_id,
                provider_resource_id,
            } => {
                let mut row = resources::get_for_update(c, *org_id, *kind, *resource_id).await?;
                let expected_version = row.version;
                row.provider_resource_id = Some(provider_resource_id.clone());
                let stored = resources::update(c, &row, expected_version).await?;
                applied.changes.push(Pending {
                    resource: stored.clone(),
                    at: stored.updated_at,
                });
                applied.resources.push(stored);
            }
            Write::InsertOperation(op) => operations::insert(c, op).await?,
            Write::UpdateOperation(op) => operations::update(c, op).await?,
            Write::RecordStep(step) => operations::record_step(c, step).await?,
            Write::Audit(entry) => {
                audit::append(c, entry).await?;
            }
            Write::InsertDock(dock) => docks::insert(c, dock).await?,
            Write::UpdateDock(dock) => docks::update(c, dock).await?,
            Write::IdempotencyKey(req) => resources::insert_idempotency_key(c, req).await?,
            Write::Reseal(r) => operations::reseal(c, r).await?,
        }
    }
    Ok(applied)
}
