//! Workers: claim an operation with a lease, keep the lease alive while running it, and run
//! it. Any number of workers, in any number of processes sharing a store, can run side by side;
//! the store's claim hands each operation to one of them at a time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stackdock_core::{
    AuditEntry, Marker, OpKind, OpState, Operation, Outcome, ProvisioningState, Resource,
    ResourceError, ResourceId, Step, redact,
};
use stackdock_docks::{CallScope, Ctx, Observed};
use stackdock_store::{Batch, Lease, StoreError, Write};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::recorder::StoreRecorder;
use crate::{Engine, EngineError, deprovision, provision, sync};

impl Engine {
    /// Starts the configured number of workers. They stop when `shutdown` turns true; an
    /// operation in flight is then abandoned mid-way and resumed by whichever worker next
    /// claims it once its lease has expired — the same path as a crash.
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        (0..self.inner.config.workers.max(1))
            .map(|n| {
                let engine = self.clone();
                let shutdown = shutdown.clone();
                let owner = format!("{}-{n}", self.inner.config.worker_id);
                tokio::spawn(async move { engine.worker_loop(owner, shutdown).await })
            })
            .collect()
    }

    async fn worker_loop(self, owner: String, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let ran = tokio::select! {
                r = self.run_next(&owner) => r,
                _ = shutdown.changed() => return,
            };
            match ran {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "worker could not claim an operation"),
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(self.inner.config.idle_poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Claims and runs one operation; `false` if none was runnable.
    pub async fn run_next(&self, owner: &str) -> Result<bool, EngineError> {
        let store = &self.inner.store;
        let lease_len = self.inner.config.lease;
        let Some(op) = store.claim_operation(owner, lease_len).await? else {
            return Ok(false);
        };
        let lease = Lease {
            operation_id: op.id,
            owner: owner.to_string(),
            generation: op.generation,
        };
        tracing::info!(operation = %op.id, kind = %op.kind, attempt = op.attempt, "running operation");
        let heartbeat = {
            let store = store.clone();
            let lease = lease.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease_len / 3).await;
                    if let Err(e) = store.renew_lease(&lease, lease_len).await {
                        tracing::warn!(operation = %lease.operation_id, error = %e, "lease lost");
                        return;
                    }
                }
            })
        };
        let result = match op.kind {
            OpKind::Provision => provision::run(self, &op, &lease).await,
            OpKind::Deprovision => deprovision::run(self, &op, &lease).await,
            OpKind::Sync => sync::run(self, &op, &lease).await,
        };
        heartbeat.abort();
        match result {
            Ok(()) => {}
            Err(EngineError::Store(StoreError::Fenced(id))) => {
                tracing::warn!(operation = %id, "another worker took this operation over; stopped");
            }
            // The run ended without settling (a store failure, say). It counts as a run:
            // re-queued with backoff, so a failure that repeats ends at `max_attempts` instead
            // of recurring at every lease expiry. If even that write fails, the lease runs out
            // and the operation is resumed all the same.
            Err(e) => {
                let why = stackdock_core::report::error_chain(&e);
                tracing::error!(operation = %op.id, error = %why, "operation interrupted");
                if let Err(e) = self
                    .reschedule(&op, &lease, format!("interrupted: {why}"))
                    .await
                {
                    tracing::warn!(operation = %op.id, error = %e, "could not re-queue; the lease will expire");
                }
            }
        }
        Ok(true)
    }

    /// The adapter context for one run of `op`.
    pub(crate) fn ctx(
        &self,
        op: &Operation,
        lease: &Lease,
        resource_id: Option<ResourceId>,
        marker: Option<Marker>,
        steps: Vec<Step>,
    ) -> Ctx {
        let recorder = Arc::new(StoreRecorder {
            store: self.inner.store.clone(),
            lease: lease.clone(),
            org_id: op.org_id,
            resource_id,
            failpoints: self.inner.config.failpoints.clone(),
        });
        let scope = CallScope {
            org_id: op.org_id,
            dock_id: op.dock_id,
            resource_id,
            operation_id: Some(op.id),
            recorder,
        };
        let mut ctx = Ctx::new(scope, marker, op.attempt, steps);
        ctx.retry = self.inner.config.retry;
        ctx.poll = self.inner.config.poll;
        ctx
    }

    /// Writes the end of an operation — its state, the resource row and the audit row —
    /// in one fenced transaction.
    pub(crate) async fn settle(
        &self,
        op: &Operation,
        lease: &Lease,
        state: OpState,
        last_error: Option<String>,
        mut writes: Vec<Write>,
        audit: AuditEntry,
    ) -> Result<(), EngineError> {
        let mut done = op.clone();
        done.state = state;
        done.last_error = last_error;
        done.lease_owner = None;
        done.lease_expires_at = None;
        done.updated_at = chrono::Utc::now();
        writes.push(Write::UpdateOperation(done));
        writes.push(Write::Audit(audit));
        let mut batch = Batch::fenced(lease);
        batch.writes = writes;
        self.inner.store.apply(batch).await?;
        Ok(())
    }

    /// Settles an operation on a resource. `Ok(details)`: the caller has already set the row's
    /// new state. `Err((code, message))`: the row becomes `failed` with that error.
    pub(crate) async fn settle_resource(
        &self,
        op: &Operation,
        lease: &Lease,
        mut row: Resource,
        result: Result<Value, (String, String)>,
    ) -> Result<(), EngineError> {
        let expected_version = row.version;
        let (state, last_error, outcome, details) = match result {
            Ok(details) => {
                row.error = None;
                (OpState::Succeeded, None, Outcome::Success, details)
            }
            Err((code, message)) => {
                row.provisioning_state = ProvisioningState::Failed;
                row.error = Some(ResourceError {
                    message: message.clone(),
                    code: code.clone(),
                    timestamp: chrono::Utc::now(),
                });
                let last = format!("{code}: {message}");
                (
                    OpState::Failed,
                    Some(last),
                    Outcome::Failure,
                    json!({"code": code, "message": message}),
                )
            }
        };
        let audit = outcome_audit(op, &row, outcome, details);
        let write = Write::UpdateResource {
            resource: row,
            expected_version,
        };
        self.settle(op, lease, state, last_error, vec![write], audit)
            .await
    }

    /// Puts an operation that failed transiently back in the queue, later.
    pub(crate) async fn reschedule(
        &self,
        op: &Operation,
        lease: &Lease,
        error: String,
    ) -> Result<(), EngineError> {
        let base = self.inner.config.reschedule_base;
        let wait = base
            .saturating_mul(1u32 << op.attempt.saturating_sub(1).min(8))
            .min(Duration::from_secs(300));
        tracing::warn!(operation = %op.id, attempt = op.attempt, ?wait, "transient failure, rescheduled: {error}");
        let mut again = op.clone();
        again.state = OpState::Queued;
        again.last_error = Some(error);
        again.next_run_at =
            chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        again.lease_owner = None;
        again.lease_expires_at = None;
        again.updated_at = chrono::Utc::now();
        self.inner
            .store
            .apply(Batch::fenced(lease).push(Write::UpdateOperation(again)))
            .await?;
        Ok(())
    }
}

/// Whether earlier runs of `op` have all ended without settling, as many times as allowed:
/// this run stops the operation instead of trying again.
pub(crate) fn out_of_runs(engine: &Engine, op: &Operation) -> Option<(String, String)> {
    let max = engine.inner.config.max_attempts;
    (op.attempt > max).then(|| {
        let last = op.last_error.as_deref().unwrap_or("no error recorded");
        (
            "gave_up".to_string(),
            format!("gave up after {max} runs; the last ended: {last}"),
        )
    })
}

/// Copies what the provider shows onto a row, redacting the provider's data.
pub(crate) fn apply_observed(resource: &mut Resource, observed: Observed) {
    let mut data = observed.full_api_data;
    redact::redact_json(&mut data);
    resource.provider_resource_id = Some(observed.provider_resource_id);
    resource.status = observed.status;
    resource.full_api_data = data;
    resource.details = observed.details;
}

/// The audit entry for the end of an operation on a resource.
fn outcome_audit(
    op: &Operation,
    resource: &Resource,
    outcome: Outcome,
    details: Value,
) -> AuditEntry {
    let kind = resource.kind();
    AuditEntry::new(
        op.org_id,
        op.requested_by,
        format!("{kind}.{}", op.kind),
        outcome,
    )
    .resource(crate::intent::audit_ref(kind, resource.id))
    .provider(resource.provider.clone())
    .details(merge(
        json!({"operation_id": op.id, "name": resource.name}),
        details,
    ))
}

/// `base` with the fields of `extra` added (both JSON objects).
pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}
