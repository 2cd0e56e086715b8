//! Waiting: the engine, not the adapter, waits on providers.
//!
//! A provision or deprovision whose provider is still working is parked `waiting` with its
//! next check time, which is its dock's next round of checks (see `Engine::next_check`). One
//! observer per process finds the docks with operations due, and for each dock takes them all
//! until the dock's following round and asks its adapter about them at once (`observe_many`:
//! for DigitalOcean one listing of up to 200 droplets a page). Then, in one transaction, the
//! operations the round settles are settled (ready, or gone), those it hands back to a worker
//! are handed back (the provider reported a failure, the user cancelled, it waited too long),
//! and a row whose provider status changed is updated. An operation still waiting with nothing
//! new costs no write at all: taking it already moved its check to the next round.
//!
//! Rounds of one dock are at least its check interval apart, spaced so they use a small share
//! of its rate budget; waiting is never a run and never holds a worker.
//!
//! A batched call serves many resources; it is journaled once for each, so every resource's
//! journal shows the checks made for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use stackdock_core::{
    ApiCall, Dock, DockId, Failure, OpKind, OpState, Operation, OperationId, ProvisioningState,
    Resource, ResourceId, ResourceKind, Step,
};
use stackdock_docks::{CallScope, Ctx, DockAccess, DockError, Observed, Recorder, Tracked};
use stackdock_store::{Batch, Lease, Store, StoreError, Write};
use tokio::sync::watch;

use crate::provision::{cancelled, provisioned_batch};
use crate::worker::apply_observed;
use crate::{Engine, EngineError};

/// The most waiting operations of one dock a round takes.
const TAKE: u32 = 2000;
/// The most docks one pass looks at.
const DOCKS: u32 = 256;
/// How long a dock whose round could not start waits before the next try.
const SETBACK: Duration = Duration::from_secs(30);

/// Docks whose round is under way in this process, so a round is never doubled.
#[derive(Default)]
pub(crate) struct InRound(Mutex<HashSet<DockId>>);

impl InRound {
    fn enter(&self, dock: DockId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dock)
    }

    fn leave(&self, dock: DockId) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&dock);
    }
}

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
            match self.start_rounds(&owner).await {
                Ok(rounds) => {
                    for round in rounds {
                        let engine = self.clone();
                        tokio::spawn(async move { engine.finish_round(round).await });
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not take waiting operations"),
            }
            let next = match self.inner.store.next_waiting().await {
                Ok(Some(at)) => (at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .clamp(
                        self.inner.config.wait.min_interval / 4,
                        self.inner.config.idle_poll,
                    ),
                _ => self.inner.config.idle_poll,
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = self.inner.wake_observer.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Checks the waiting operations that are due, in this task; how many it took. For tests
    /// that step the engine by hand.
    pub async fn observe_due(&self, owner: &str) -> Result<usize, EngineError> {
        let rounds = self.start_rounds(owner).await?;
        let taken = rounds.iter().map(|r| r.ops.len()).sum();
        futures::future::join_all(rounds.into_iter().map(|r| self.finish_round(r))).await;
        Ok(taken)
    }

    /// For every dock with operations due (and no round under way here), takes them until the
    /// dock's next round.
    async fn start_rounds(&self, owner: &str) -> Result<Vec<Round>, EngineError> {
        let store = &self.inner.store;
        let mut rounds = Vec::new();
        for (org, dock_id) in store.due_waiting_docks(DOCKS).await? {
            if !self.inner.in_round.enter(dock_id) {
                continue;
            }
            let taken = async {
                let dock = store.get_dock(org, dock_id).await?;
                let access = self.open_dock(&dock)?;
                let interval = self.check_interval(dock_id, &access.budget);
                let hold = self.next_check(dock_id, &access.budget, interval);
                // The round's listing serves every operation of the dock: those due before
                // its next round come along now. Left for that round, they made a second
                // group that a round running longer than the interval never caught up with,
                // so the dock was listed twice as often, each time for half its operations.
                let ops = store
                    .claim_waiting(owner, hold, interval, TAKE, Some(dock_id))
                    .await?;
                Ok::<_, EngineError>((dock, access, ops, hold))
            }
            .await;
            match taken {
                Ok((dock, access, ops, hold)) if !ops.is_empty() => rounds.push(Round {
                    calls: Arc::default(),
                    taken_at: tokio::time::Instant::now(),
                    owner: owner.to_string(),
                    dock,
                    access,
                    ops,
                    hold,
                }),
                Ok(_) => self.inner.in_round.leave(dock_id),
                Err(e) => {
                    // The dock cannot be checked now (its key cannot be opened, say): its
                    // operations wait a while instead of being retried at every pass.
                    let _ = store
                        .claim_waiting(owner, SETBACK, Duration::ZERO, TAKE, Some(dock_id))
                        .await;
                    self.inner.in_round.leave(dock_id);
                    tracing::warn!(dock = %dock_id, error = %e, "could not start a round of checks; trying again in {SETBACK:?}");
                }
            }
        }
        Ok(rounds)
    }

    async fn finish_round(&self, round: Round) {
        let dock_id = round.dock.id;
        let mut by_kind: HashMap<ResourceKind, Vec<Operation>> = HashMap::new();
        for op in &round.ops {
            if let Some(kind) = op.resource_kind {
                by_kind.entry(kind).or_default().push(op.clone());
            }
        }
        for (kind, ops) in by_kind {
            if let Err(e) = self.observe_group(&round, kind, &ops).await {
                // Their checks already moved to the next round: they are looked at again then.
                tracing::warn!(dock = %dock_id, error = %e, "checking waiting operations failed");
            }
        }
        let calls = round.calls.load(Ordering::Relaxed);
        if calls > 0 {
            self.inner
                .round_calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(dock_id, calls);
        }
        self.inner.in_round.leave(dock_id);
    }

    /// Checks one dock's waiting operations of one kind together and writes what follows.
    async fn observe_group(
        &self,
        round: &Round,
        kind: ResourceKind,
        ops: &[Operation],
    ) -> Result<(), EngineError> {
        let store = &self.inner.store;
        let dock = &round.dock;
        let lease = |op: &Operation| Lease {
            operation_id: op.id,
            owner: round.owner.clone(),
            generation: op.generation,
        };
        let ids: Vec<ResourceId> = ops.iter().filter_map(|op| op.resource_id).collect();
        let mut rows: HashMap<ResourceId, Resource> = store
            .get_resources(dock.org_id, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();

        let timeout = self.inner.config.wait.timeout;
        let mut batches = Vec::new();
        let mut checked: Vec<(&Operation, Resource)> = Vec::new();
        for op in ops {
            let Some(row) = op.resource_id.and_then(|rid| rows.remove(&rid)) else {
                return Err(EngineError::Store(StoreError::Corrupt(format!(
                    "waiting operation {} has no resource row",
                    op.id
                ))));
            };
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
            let access = &round.access;
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
            let mut ctx = batch_ctx(self, round, &checked);
            let observed = self
                .holding(
                    round,
                    adapter.observe_many(&mut ctx, access, kind, &targets),
                )
                .await;
            match observed {
                Ok(seen) if seen.len() == checked.len() => {
                    for ((op, row), seen) in checked.into_iter().zip(seen) {
                        // The provider waits on the provision's next step (Netlify's deploy is
                        // prepared and waits for its files): a worker runs it again.
                        let resume = seen
                            .as_ref()
                            .is_some_and(|o| adapter.continues_provision(kind, o));
                        if resume && op.kind == OpKind::Provision {
                            batches.push(handoff_batch(op, &lease(op), None));
                            continue;
                        }
                        batches.extend(verdict(op, &lease(op), row, seen));
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
                    batches.extend(repark_all(&checked, &lease, round.hold, &e));
                }
                Err(e) => {
                    // Waiting on: a later check may get through. Not a run, so no attempt is
                    // spent; the wait timeout still bounds it.
                    let backoff = round.hold.saturating_mul(4).max(Duration::from_secs(1));
                    batches.extend(repark_all(&checked, &lease, backoff, &e));
                }
            }
        }

        if batches.is_empty() {
            return Ok(());
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

/// One dock's due operations, taken until its next round.
struct Round {
    /// When they were taken: the hold counts from here.
    taken_at: tokio::time::Instant,
    owner: String,
    dock: Dock,
    /// The dock opened for this round (its key decrypted once).
    access: DockAccess,
    ops: Vec<Operation>,
    /// Until when they are held: the dock's next round.
    hold: Duration,
    /// The provider calls the round made (a listing may take several pages).
    calls: Arc<AtomicU32>,
}

/// The adapter context for a batched check: calls are journaled for every resource checked.
fn batch_ctx(engine: &Engine, round: &Round, checked: &[(&Operation, Resource)]) -> Ctx {
    let dock = &round.dock;
    let covers = checked
        .iter()
        .map(|(op, row)| (row.id, op.id, op.lease_owner.clone()))
        .collect();
    let scope = CallScope {
        org_id: dock.org_id,
        dock_id: dock.id,
        resource_id: None,
        operation_id: None,
        recorder: Arc::new(BatchRecorder {
            store: engine.inner.store.clone(),
            covers,
            calls: round.calls.clone(),
        }),
    };
    let mut ctx = Ctx::new(scope, None, 1, Vec::new());
    ctx.retry = engine.inner.config.retry;
    // One listing answers for every operation of the round: queued behind the dock's runs
    // (seconds of creates, when the budget is the limit) it kept resources that were ready
    // showing `provisioning` for as long.
    ctx.first_in_line = true;
    ctx
}

/// What one observation means for its operation; `None` when nothing needs writing (still
/// waiting, nothing new: taking it already moved its check to the next round).
fn verdict(
    op: &Operation,
    lease: &Lease,
    mut row: Resource,
    seen: Option<Observed>,
) -> Option<Batch> {
    match (op.kind, seen) {
        (
            OpKind::Provision,
            Some(Observed {
                failure: Some(f), ..
            }),
        ) => Some(handoff_batch(
            op,
            lease,
            Some(Failure::new(f.code, f.message)),
        )),
        (OpKind::Provision, Some(o)) if o.ready => Some(provisioned_batch(op, lease, row, Some(o))),
        // Gone: deleted, as a deprovision waits for.
        (OpKind::Deprovision, None) => {
            row.provisioning_state = ProvisioningState::Deprovisioned;
            Some(Engine::settle_resource_batch(op, lease, row, Ok(json!({}))))
        }
        // Still at it. Watchers see the provider's status when it changes.
        (_, Some(o)) if o.status.is_some() && o.status != row.status => {
            let expected_version = row.version;
            apply_observed(&mut row, o);
            Some(Batch::fenced(lease).push(Write::UpdateResource {
                resource: row,
                expected_version,
            }))
        }
        // Not ready yet, or (just created) not listed yet.
        _ => None,
    }
}

impl Engine {
    /// Runs `work` (a round's provider call) while keeping the round's operations held: each
    /// time half the hold has passed, it is extended by a whole one. A call slower than the
    /// round planned would otherwise let another node take the same operations and check them
    /// at the same time, spending the dock's budget twice. Extending never touches an
    /// operation settled meanwhile (see [`Store::extend_waiting`]).
    async fn holding<T>(&self, round: &Round, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        let step = (round.hold / 2).max(Duration::from_millis(5));
        let mut next = round.taken_at + step;
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep_until(next) => {
                    let leases: Vec<Lease> = round
                        .ops
                        .iter()
                        .map(|op| Lease {
                            operation_id: op.id,
                            owner: round.owner.clone(),
                            generation: op.generation,
                        })
                        .collect();
                    if let Err(e) = self.inner.store.extend_waiting(&leases, round.hold).await {
                        tracing::warn!(dock = %round.dock.id, error = %e, "could not extend a round's hold");
                    }
                    next = tokio::time::Instant::now() + step;
                }
            }
        }
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
    /// Each resource checked, its operation and the worker holding that operation.
    covers: Vec<(ResourceId, OperationId, Option<String>)>,
    /// Counts the round's calls.
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl Recorder for BatchRecorder {
    async fn journal(&self, call: ApiCall) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let calls = self
            .covers
            .iter()
            .map(|(rid, op, worker)| ApiCall {
                resource_id: Some(*rid),
                operation_id: Some(*op),
                worker: worker.clone(),
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
