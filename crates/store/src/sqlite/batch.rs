//! [`Batch`]es: the writes of one transaction, run in order, checked against the lease first.

use sqlx::SqliteConnection;
use stackdock_core::Resource;

use super::codec::now;
use super::{audit, docks, feed, operations, resources};
use crate::{Batch, Result, Write};

pub(crate) struct Applied {
    /// The resource rows as stored, in the order the batch wrote them.
    pub(crate) resources: Vec<Resource>,
    /// The feed's newest seq after the batch, if it wrote a resource.
    pub(crate) last_seq: Option<i64>,
}

/// Runs inside the caller's write transaction; any error leaves the caller to roll back.
pub(crate) async fn apply(conn: &mut SqliteConnection, batch: &Batch) -> Result<Applied> {
    if let Some(lease) = &batch.fence {
        operations::check_fence(&mut *conn, lease).await?;
    }
    let mut applied = Applied {
        resources: Vec::new(),
        last_seq: None,
    };
    for write in &batch.writes {
        match write {
            Write::InsertResource(r) => {
                let stored = resources::insert(&mut *conn, r).await?;
                applied.last_seq = Some(feed::append(&mut *conn, &stored, &now()).await?);
                applied.resources.push(stored);
            }
            Write::UpdateResource {
                resource,
                expected_version,
            } => {
                let stored = resources::update(&mut *conn, resource, *expected_version).await?;
                applied.last_seq =
                    Some(feed::append(&mut *conn, &stored, &stored.updated_at).await?);
                applied.resources.push(stored);
            }
            Write::InsertOperation(op) => operations::insert(&mut *conn, op).await?,
            Write::UpdateOperation(op) => operations::update(&mut *conn, op).await?,
            Write::RecordStep(step) => operations::record_step(&mut *conn, step).await?,
            Write::Audit(entry) => {
                audit::append(&mut *conn, entry).await?;
            }
            Write::InsertDock(dock) => docks::insert(&mut *conn, dock).await?,
            Write::UpdateDock(dock) => docks::update(&mut *conn, dock).await?,
            Write::IdempotencyKey(req) => {
                resources::insert_idempotency_key(&mut *conn, req).await?
            }
        }
    }
    Ok(applied)
}
