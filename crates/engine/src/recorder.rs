//! Where an adapter's progress goes while a worker runs an operation: provider calls into the
//! journal, completed steps into `operation_steps` (fenced by the worker's lease).

use std::sync::Arc;

use async_trait::async_trait;
use stackdock_core::{ApiCall, OrgId, ResourceId, Step};
use stackdock_docks::{DockError, Observed, Recorder};
use stackdock_store::{Batch, Lease, Store, Write};

use crate::failpoint::{CRASH_BEFORE_CREATE_CHECKPOINT, Failpoints};

pub(crate) struct StoreRecorder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lease: Lease,
    pub(crate) org_id: OrgId,
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

    async fn progress(&self, observed: &Observed) {
        let Some(rid) = self.resource_id else {
            return;
        };
        let result = async {
            let mut row = self.store.get_resource(self.org_id, rid).await?;
            if row.status == observed.status {
                return Ok(());
            }
            let expected_version = row.version;
            crate::worker::apply_observed(&mut row, observed.clone());
            let write = Write::UpdateResource {
                resource: row,
                expected_version,
            };
            self.store
                .apply(Batch::fenced(&self.lease).push(write))
                .await
                .map(|_| ())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(resource = %rid, error = %e, "could not record progress");
        }
    }

    async fn checkpoint(&self, step: Step) -> Result<(), DockError> {
        if step.name == "create" {
            self.failpoints.crash_if_set(CRASH_BEFORE_CREATE_CHECKPOINT);
        }
        let mut batch = Batch::fenced(&self.lease);
        let provider_id = step.output["provider_resource_id"]
            .as_str()
            .map(str::to_string);
        if let (Some(pid), Some(rid)) = (provider_id, self.resource_id) {
            let mut resource = self
                .store
                .get_resource(self.org_id, rid)
                .await
                .map_err(|e| DockError::Checkpoint(Box::new(e)))?;
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
            .map(|_| ())
            .map_err(|e| DockError::Checkpoint(Box::new(e)))
    }
}
