//! Waiting: the engine, not the adapter, waits on providers.
//!
//! A provision or deprovision whose provider is still working is parked `waiting` with its
//! next check time. One observer per process takes the waiting operations that are due, groups
//! them by dock and kind, and asks each dock's adapter about all of a group at once
//! (`observe_many`: for DigitalOcean one listing of up to 200 droplets a page). Then, in one
//! transaction, every operation of the group settles (ready, or gone), is parked again, or is
//! handed back to a worker (the provider reported a failure, the user cancelled, it waited too
//! long). Checks of one dock are spaced so they use a small share of its rate budget; waiting
//! is never a run and never holds a worker.
//!
//! A batched call serves many resources; it is journaled once for each, so every resource's
//! journal shows the checks made for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use stackdock_core::{
    ApiCall, DockId, Failure, OpKind, OpState, Operation, OperationId, ProvisioningState, Resource,
    ResourceId, ResourceKind, Step,
};
use stackdock_docks::{CallScope, Ctx, DockError, Observed, Recorder, Tracked};
use stackdock_store::{Batch, Lease, Store, Write};
use tokio::sync::watch;

use crate::provision::{cancelled, provisioned_batch};
use crate::{Engine, EngineError};

/// The most waiting operations one observer pass takes.
const TAKE: u32 = 2000;

impl Engine {
    /// Tells the observer an operation was parked, so it looks again at when the next check
    /// is due instead of sleeping through it.
    pub(crate) fn parked(&self) {
        // `notify_one` keeps the wake-up for an observer that is not sleeping yet.
        self.inner.wake_observer.notify_one();
    }

    pub(crate) async fn observe_loop(self, mut shutdown: watch::Receiver<bool>) {
        let owner = format!("{}-observer", self.inner.config.worker_id);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.take_due(&owner).await {
                Ok(groups) if !groups.is_empty() => {
                    // A group per task: a slow provider does not hold up the others.
                    for ((dock, kind), ops) in groups {
                        let engine = self.clone();
                        let owner = owner.clone();
                        tokio::spawn(async move {
                            engine.observe_logged(&owner, dock, kind, &ops).await;
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not take waiting operations"),
            }
            let next = match self.inner.store.next_waiting().await {
                Ok(Some(at)) => (at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(self.inner.config.idle_poll),
                _ => self.inner.config.idle_poll,
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = self.inner.wake_observer.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Takes the waiting operations that are due and checks them, in this task; how many it
    /// took. For tests that step the engine by hand.
    pub async fn observe_due(&self, owner: &str) -> Result<usize, EngineError> {
        let groups = self.take_due(owner).await?;
        let taken = groups.values().map(Vec::len).sum();
        futures::future::join_all(groups.into_iter().map(|((dock, kind), ops)| async move {
            self.observe_logged(owner, dock, kind, &ops).await
        }))
        .await;
        Ok(taken)
    }

    /// The due waiting operations, grouped by dock and kind.
    async fn take_due(
        &self,
        owner: &str,
    ) -> Result<HashMap<(DockId, ResourceKind), Vec<Operation>>, EngineError> {
        let ops = self
            .inner
            .store
            .claim_waiting(owner, self.inner.config.wait.hold, TAKE)
            .await?;
        let mut groups: HashMap<(DockId, ResourceKind), Vec<Operation>> = HashMap::new();
        for op in ops {
            if let Some(kind) = op.resource_kind {
                groups.entry((op.dock_id, kind)).or_default().push(op);
            }
        }
        Ok(groups)
    }

    async fn observe_logged(
        &self,
        owner: &str,
        dock: DockId,
        kind: ResourceKind,
        ops: &[Operation],
    ) {
        if let Err(e) = self.observe_group(owner, dock, kind, ops).await {
            // The hold runs out and a later pass takes them again.
            tracing::warn!(dock = %dock, error = %e, "checking waiting operations failed");
        }
    }

    /// Checks one dock's waiting operations of one kind together and writes what follows.
    async fn observe_group(
        &self,
        owner: &str,
        dock_id: DockId,
        kind: ResourceKind,
        ops: &[Operation],
    ) -> Result<(), EngineError> {
        let store = &self.inner.store;
        let org = ops[0].org_id;
        let dock = store.get_dock(org, dock_id).await?;
        let lease = |op: &Operation| Lease {
            operation_id: op.id,
            owner: owner.to_string(),
            generation: op.generation,
        };
        let mut rows = Vec::with_capacity(ops.len());
        for op in ops {
            let rid = op.resource_id.ok_or_else(|| {
                EngineError::Store(stackdock_store::StoreError::Corrupt(
                    "a waiting operation without a resource".into(),
                ))
            })?;
            rows.push(store.get_resource(op.org_id, rid).await?);
        }

        let timeout = self.inner.config.wait.timeout;
        let mut batches = Vec::new();
        let mut checked: Vec<(&Operation, Resource)> = Vec::new();
        for (op, row) in ops.iter().zip(rows) {
            let waited = op
                .waiting_since
                .map(|since| (chrono::Utc::now() - since).to_std().unwrap_or_default())
                .unwrap_or_default();
            let handoff = if op.cancel_requested && op.kind == OpKind::Provision {
                Some(Some(cancelled()))
            } else if waited > timeout {
                Some(Some(Failure::new(
                    "not_ready",
                    format!(
                        "{} did not finish within {}s",
                        dock.provider,
                        timeout.as_secs()
                    ),
                )))
            } else if row.provider_resource_id.is_none() {
                // Nothing to look at: let a run sort it out.
                Some(None)
            } else {
                None
            };
            match handoff {
                Some(unwind) => batches.push(handoff_batch(op, &lease(op), unwind)),
                None => checked.push((op, row)),
            }
        }

        if !checked.is_empty() {
            let access = self.open_dock(&dock)?;
            let adapter = self
                .registry()
                .get(dock.provider)
                .ok_or(EngineError::NoAdapter(dock.provider))?;
            let targets: Vec<Tracked> = checked
                .iter()
                .map(|(_, row)| Tracked {
                    kind,
                    provider_resource_id: row.provider_resource_id.clone().unwrap_or_default(),
                    marker: row.marker.clone(),
                    last_seen: row.full_api_data.clone(),
                })
                .collect();
            let covers = checked
                .iter()
                .map(|(op, row)| (row.id, op.id))
                .collect::<Vec<_>>();
            let mut ctx = Ctx::new(
                CallScope {
                    org_id: org,
                    dock_id,
                    resource_id: None,
                    operation_id: None,
                    recorder: Arc::new(BatchRecorder {
                        store: store.clone(),
                        covers,
                    }),
                },
                None,
                1,
                Vec::new(),
            );
            ctx.retry = self.inner.config.retry;
            // This round's operations go to the dock's next round, an interval from now.
            let interval = self.check_interval(&access.budget);
            let interval = self.next_check(dock_id, &access.budget, interval);
            match adapter
                .observe_many(&mut ctx, &access, kind, &targets)
                .await
            {
                Ok(seen) if seen.len() == checked.len() => {
                    for ((op, row), seen) in checked.into_iter().zip(seen) {
                        batches.push(verdict(op, &lease(op), row, seen, interval));
                    }
                }
                Ok(seen) => {
                    let e = DockError::Protocol {
                        provider: dock.provider,
                        detail: format!(
                            "the adapter answered {} observations for {} resources",
                            seen.len(),
                            checked.len()
                        ),
                    };
                    batches.extend(repark_all(&checked, &lease, interval, &e));
                }
                Err(e) => {
                    // Waiting on: the next check may get through. Not a run, so no attempt
                    // is spent; the wait timeout still bounds it.
                    let backoff = interval.saturating_mul(4).max(Duration::from_secs(1));
                    batches.extend(repark_all(&checked, &lease, backoff, &e));
                }
            }
        }

        let handed_back = batches.iter().any(|b| {
            b.writes
                .iter()
                .any(|w| matches!(w, Write::UpdateOperation(o) if o.state == OpState::Queued))
        });
        for result in store.apply_each(batches).await? {
            if let Err(e) = result {
                tracing::debug!(error = %e, "a checked operation moved on meanwhile");
            }
        }
        if handed_back {
            self.inner.wake.notify_one();
        }
        self.parked();
        Ok(())
    }
}

/// What one observation means for its operation.
fn verdict(
    op: &Operation,
    lease: &Lease,
    mut row: Resource,
    seen: Option<Observed>,
    interval: Duration,
) -> Batch {
    match (op.kind, seen) {
        (
            OpKind::Provision,
            Some(Observed {
                failure: Some(f), ..
            }),
        ) => handoff_batch(op, lease, Some(Failure::new(f.code, f.message))),
        (OpKind::Provision, Some(o)) if o.ready => provisioned_batch(op, lease, row, Some(o)),
        (OpKind::Provision, seen) => {
            // Not ready, or (just created) not listed yet.
            Engine::park_batch(op, lease, interval, Some((row, seen, None)))
        }
        (_, None) => {
            row.provisioning_state = ProvisioningState::Deprovisioned;
            Engine::settle_resource_batch(op, lease, row, Ok(json!({})))
        }
        (_, Some(o)) => Engine::park_batch(op, lease, interval, Some((row, Some(o), None))),
    }
}

/// Every checked operation parked again for `wait`, with why the check failed.
fn repark_all(
    checked: &[(&Operation, Resource)],
    lease: &dyn Fn(&Operation) -> Lease,
    wait: Duration,
    error: &DockError,
) -> Vec<Batch> {
    checked
        .iter()
        .map(|(op, _)| {
            let mut op = (*op).clone();
            op.last_error = Some(format!("checking: {error}"));
            Engine::park_batch(&op, &lease(&op), wait, None)
        })
        .collect()
}

/// Hands a waiting operation back to the workers now, unwinding with `unwind` if given.
fn handoff_batch(op: &Operation, lease: &Lease, unwind: Option<Failure>) -> Batch {
    let mut next = op.clone();
    next.state = OpState::Queued;
    next.next_run_at = chrono::Utc::now();
    next.lease_owner = None;
    next.lease_expires_at = None;
    if unwind.is_some() {
        next.unwind = unwind;
    }
    Batch::fenced(lease).push(Write::UpdateOperation(next))
}

/// Journals one batched provider call once for each resource it served.
struct BatchRecorder {
    store: Arc<dyn Store>,
    covers: Vec<(ResourceId, OperationId)>,
}

#[async_trait]
impl Recorder for BatchRecorder {
    async fn journal(&self, call: ApiCall) {
        let calls = self
            .covers
            .iter()
            .map(|(rid, op)| ApiCall {
                resource_id: Some(*rid),
                operation_id: Some(*op),
                ..call.clone()
            })
            .collect();
        if let Err(e) = self.store.record_api_calls(calls).await {
            tracing::warn!(error = %e, "could not journal a provider call");
        }
    }

    async fn checkpoint(&self, step: Step, _tracks: Option<String>) -> Result<(), DockError> {
        Err(DockError::Checkpoint(
            format!("a check cannot record steps (got {:?})", step.name).into(),
        ))
    }
}
