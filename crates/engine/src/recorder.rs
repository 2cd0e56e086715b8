//! Where an adapter's progress goes while a worker runs an operation: provider calls into the
//! journal, completed steps into `operation_steps` (fenced by the worker's lease), and the
//! provider id a step establishes onto the resource row in the same transaction.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use stackdock_core::{ApiCall, OrgId, Resource, ResourceId, ResourceKind, Step};
use stackdock_docks::{DockError, Recorder};
use stackdock_store::{Batch, Lease, Store, Write};

use crate::failpoint::{CRASH_BEFORE_CREATE_CHECKPOINT, Failpoints};

pub(crate) struct StoreRecorder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lease: Lease,
    pub(crate) org_id: OrgId,
    /// The resource the operation acts on, whose row learns the provider id at once.
    pub(crate) resource_id: Option<ResourceId>,
    pub(crate) resource_kind: Option<ResourceKind>,
    pub(crate) failpoints: Failpoints,
    /// The resource row as the last checkpoint wrote it, if one did.
    pub(crate) written: Mutex<Option<Resource>>,
}

impl StoreRecorder {
    /// The row as this run's last checkpoint wrote it: current for as long as the run holds
    /// its lease, since only the lease holder writes the row of a resource being worked on.
    pub(crate) fn written_row(&self) -> Option<Resource> {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Recorder for StoreRecorder {
    async fn journal(&self, call: ApiCall) {
        if let Err(e) = self.store.record_api_call(call).await {
            // The call was made whatever happens here; losing its journal line must not undo
            // the work, so this is logged and not raised.
            tracing::warn!(error = %e, "could not journal a provider call");
        }
    }

    async fn checkpoint(&self, step: Step, tracks: Option<String>) -> Result<(), DockError> {
        let checkpoint_failed = |e| DockError::Checkpoint(Box::new(e));
        if tracks.is_some() {
            self.failpoints.crash_if_set(CRASH_BEFORE_CREATE_CHECKPOINT);
        }
        let mut batch = Batch::fenced(&self.lease);
        if let (Some(pid), Some(rid), Some(kind)) = (tracks, self.resource_id, self.resource_kind) {
            batch = batch.push(Write::SetProviderId {
                org_id: self.org_id,
                kind,
                resource_id: rid,
                provider_resource_id: pid,
            });
        }
        // The step is recorded and, in the same write, the store says whether a cancel came:
        // a step boundary is where stopping loses nothing.
        let done = self
            .store
            .apply_fenced(self.org_id, batch.push(Write::RecordStep(step)))
            .await
            .map_err(checkpoint_failed)?;
        if let Some(row) = done.resources.into_iter().last() {
            *self.written.lock().unwrap_or_else(PoisonError::into_inner) = Some(row);
        }
        if done.cancel_requested {
            return Err(DockError::Cancelled);
        }
        Ok(())
    }
}
