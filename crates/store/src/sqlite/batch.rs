//! [`Batch`]es: the writes of one transaction, run in order, checked against the lease first.

use rusqlite::Connection;
use stackdock_core::Resource;

use super::codec::now;
use super::{audit, docks, feed, operations, resources};
use crate::{Batch, Result, Write};

pub(crate) struct Applied {
    /// The resource rows as stored, in the order the batch wrote them.
    pub(crate) resources: Vec<Resource>,
    /// The feed's newest seq after the batch, if it wrote a resource.
    pub(crate) last_seq: Option<i64>,
    /// For a fenced batch: whether its operation had a cancel requested.
    pub(crate) cancel_requested: bool,
}

/// Runs on the writer, inside its transaction; any error leaves the writer to roll back.
pub(crate) fn apply(conn: &Connection, batch: &Batch) -> Result<Applied> {
    let cancel_requested = match &batch.fence {
        Some(lease) => operations::check_fence(conn, lease)?,
        None => false,
    };
    let mut applied = Applied {
        resources: Vec::new(),
        last_seq: None,
        cancel_requested,
    };
    for write in &batch.writes {
        match write {
            Write::InsertResource(r) => {
                let stored = resources::insert(conn, r)?;
                applied.last_seq = Some(feed::append(conn, &stored, &now())?);
                applied.resources.push(stored);
            }
            Write::UpdateResource {
                resource,
                expected_version,
            } => {
                let stored = resources::update(conn, resource, *expected_version)?;
                applied.last_seq = Some(feed::append(conn, &stored, &stored.updated_at)?);
                applied.resources.push(stored);
            }
            Write::SetProviderId {
                org_id,
                kind,
                resource_id,
                provider_resource_id,
            } => {
                let mut row = resources::get_for_update(conn, *org_id, *kind, *resource_id)?;
                let expected_version = row.version;
                row.provider_resource_id = Some(provider_resource_id.clone());
                let stored = resources::update(conn, &row, expected_version)?;
                applied.last_seq = Some(feed::append(conn, &stored, &stored.updated_at)?);
                applied.resources.push(stored);
            }
            Write::InsertOperation(op) => operations::insert(conn, op)?,
            Write::UpdateOperation(op) => operations::update(conn, op)?,
            Write::RecordStep(step) => operations::record_step(conn, step)?,
            Write::Audit(entry) => {
                audit::append(conn, entry)?;
            }
            Write::InsertDock(dock) => docks::insert(conn, dock)?,
            Write::UpdateDock(dock) => docks::update(conn, dock)?,
            Write::IdempotencyKey(req) => resources::insert_idempotency_key(conn, req)?,
            Write::Reseal(r) => operations::reseal(conn, r)?,
        }
    }
    Ok(applied)
}
