//! Where an adapter's progress goes while a worker runs an operation: provider calls into the
//! journal, completed steps into `operation_steps` (fenced by the worker's lease), and the
//! provider id a step establishes onto the resource row in the same transaction.

use std::sync::Arc;

use async_trait::async_trait;
use stackdock_core::{ApiCall, OperationId, OrgId, ResourceId, Step};
use stackdock_docks::{DockError, Recorder};
use stackdock_store::{Batch, Lease, Store, Write};

use crate::failpoint::{CRASH_BEFORE_CREATE_CHECKPOINT, Failpoints};

pub(crate) struct StoreRecorder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lease: Lease,
    pub(crate) org_id: OrgId,
    pub(crate) operation_id: OperationId,
    /// The resource the operation acts on, whose row learns the provider id at once.
    pub(crate) resource_id: Option<ResourceId>,
    pub(crate) failpoints: Failpoints,
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
        if let (Some(pid), Some(rid)) = (tracks, self.resource_id) {
            let mut resource = self
                .store
                .get_resource(self.org_id, rid)
                .await
                .map_err(checkpoint_failed)?;
            let expected_version = resource.version;
            resource.provider_resource_id = Some(pid);
            batch = batch.push(Write::UpdateResource {
                resource,
                expected_version,
            });
        }
        self.store
            .apply(batch.push(Write::RecordStep(step)))
            .await
            .map_err(checkpoint_failed)?;
        // A step boundary: the step is recorded, so stopping here loses nothing.
        let op = self
            .store
            .get_operation(self.org_id, self.operation_id)
            .await
            .map_err(checkpoint_failed)?;
        if op.cancel_requested {
            return Err(DockError::Cancelled);
        }
        Ok(())
    }
}
