//! Running operations: a dispatcher claims runnable operations in batches and runs each in a
//! task of its own, as many at once as `max_in_flight` allows. How many provider calls are in
//! flight is bounded per dock by the dock's rate budget, not by a count of workers; a task
//! that waits on the provider parks its operation and ends, holding nothing.
//!
//! Any number of processes can run dispatchers on one store: the store's claim hands each
//! operation to one of them at a time, with a lease that the task renews while it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use stackdock_core::{
    AuditEntry, DockId, Failure, Marker, OpKind, OpState, Operation, OrgId, Outcome,
    ProvisioningState, Resource, ResourceError, ResourceId, Step, redact,
};
use stackdock_docks::{CallScope, Ctx, Observed};
use stackdock_store::{Batch, Lease, Store, StoreError, Write};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::recorder::StoreRecorder;
use crate::{Engine, EngineError, deprovision, provision, sync};

/// How long a heartbeat keeps a node counted; a node beats four times in it, so one that
/// misses three beats in a row is forgotten. Not tied to the lease (30 s by default): the
/// survivors of a node that died would run at their old part of every dock's budget all that
/// time, with queued work the dead node's part could serve. The dead node's own operations
/// still come back when their leases run out.
const NODE_TTL: Duration = Duration::from_secs(2);

/// A node runs at once no more of one dock's operations than its part of the dock's budget
/// serves in this time. The rest wait in the database, where any node with room in its own
/// part takes them: a node that claimed everything would otherwise run it all at its part
/// of the budget while the other nodes' parts went unused. What a node holds is also what
/// its death strands until the leases run out, each create that recorded "create sent"
/// then looked up by marker: a node killed in bench f left 40 of them at 5 s, 16 at 2 s and
/// 8 at 1 s. Now that a claim takes only what there is room for, refilling a node one
/// operation at a time costs one claim each, so a second keeps its part of the budget busy.
const HORIZON: Duration = Duration::from_secs(1);
/// ... and at least this many, however small the budget.
const MIN_RUNS: usize = 8;
/// The most operations one claim takes.
const MAX_CLAIM: usize = 256;

/// The runs of each dock under way in this process.
#[derive(Default)]
struct Runs(Mutex<HashMap<DockId, usize>>);

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DockId, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more run of `dock` unless `cap` are under way.
    fn start(&self, dock: DockId, cap: Option<usize>) -> bool {
        let mut runs = self.lock();
        let n = runs.entry(dock).or_insert(0);
        if cap.is_some_and(|cap| *n >= cap) {
            return false;
        }
        *n += 1;
        true
    }

    /// A run of `dock` ended; whether the dock was at its cap until now.
    fn end(&self, dock: DockId, cap: Option<usize>) -> bool {
        let mut runs = self.lock();
        let n = runs.entry(dock).or_insert(1);
        let was_full = cap.is_some_and(|cap| *n >= cap);
        *n = n.saturating_sub(1);
        if *n == 0 {
            runs.remove(&dock);
        }
        was_full
    }

    fn counts(&self) -> Vec<(DockId, usize)> {
        self.lock().iter().map(|(d, n)| (*d, *n)).collect()
    }
}

impl Engine {
    /// Starts the dispatcher, the observer of waiting operations and the node's heartbeat
    /// (which shares each dock's rate limit among the live nodes). They stop when
    /// `shutdown` turns true; an operation in flight is then abandoned mid-way and resumed by
    /// whoever next claims it once its lease has expired — the same path as a crash.
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let dispatcher = {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { engine.dispatch_loop(shutdown).await })
        };
        let observer = {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { engine.observe_loop(shutdown).await })
        };
        let heartbeat = {
            let engine = self.clone();
            tokio::spawn(async move { engine.heartbeat_loop(shutdown).await })
        };
        vec![dispatcher, observer, heartbeat]
    }

    /// Tells the database this node is alive, and learns how many nodes are: each dock's rate
    /// limit is shared among them, so that together they keep to it. A node that dies is
    /// forgotten when its heartbeat runs out (then the others take its share back); one that
    /// stops says so at once.
    async fn heartbeat_loop(self, mut shutdown: watch::Receiver<bool>) {
        let node = self.inner.config.worker_id.clone();
        let ttl = NODE_TTL;
        loop {
            match self.inner.store.heartbeat(&node, ttl).await {
                Ok(nodes) => {
                    if self.inner.budgets.set_nodes(nodes) {
                        tracing::info!(nodes, "nodes sharing each dock's rate limit");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not record this node's heartbeat"),
            }
            tokio::select! {
                () = tokio::time::sleep(ttl / 4) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if let Err(e) = self.inner.store.leave(&node).await {
            tracing::debug!(error = %e, "could not say this node is leaving");
        }
    }

    async fn dispatch_loop(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.inner.config.max_in_flight.max(1)));
        let owner = format!("{}-run", self.inner.config.worker_id);
        let runs = Arc::new(Runs::default());
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Claim only what there is room to run, so a claimed operation never waits on a
            // slot while its lease runs down, and nothing of a dock this node already runs as
            // much of as its budget serves soon.
            let free = slots.available_permits();
            let (limit, full) = self.claim_plan(free, &runs);
            let claimed = if limit == 0 {
                Ok(Vec::new())
            } else {
                self.inner
                    .store
                    .claim_operations(&owner, self.inner.config.lease, limit as u32, &full)
                    .await
            };
            let got = match claimed {
                Ok(ops) => {
                    let n = ops.len();
                    let mut back = Vec::new();
                    for op in ops {
                        let cap = self.cap(op.org_id, op.dock_id).await;
                        if !runs.start(op.dock_id, cap) {
                            back.push(op);
                            continue;
                        }
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            runs.end(op.dock_id, cap);
                            back.push(op);
                            continue;
                        };
                        let engine = self.clone();
                        let owner = owner.clone();
                        let runs = runs.clone();
                        tokio::spawn(async move {
                            let dock = op.dock_id;
                            engine.run_claimed(&owner, op).await;
                            drop(slot);
                            if runs.end(dock, cap) {
                                // Room again for the dock's operations this node passed over.
                                engine.inner.wake.notify_one();
                            }
                        });
                    }
                    self.release(&owner, back).await;
                    n
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not claim operations");
                    0
                }
            };
            if got > 0 {
                continue;
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                // When full, a finished task frees a slot; look again then too.
                _ = slots.clone().acquire_owned(), if free == 0 => {}
                _ = tokio::time::sleep(self.inner.config.idle_poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// What the next claim may take: how many operations, and which docks it passes over
    /// because this node already runs as many of them as its part of their budget serves
    /// soon. How many: no more than there are free slots, nor than the room left in whichever
    /// dock with a known cap has least (the claim cannot choose the docks of what it takes).
    /// What a claim takes is held from every other node until it runs or is put back: taking
    /// the whole queue to run a few kept three nodes passing hundreds of operations among
    /// themselves while two of them sent nothing for seconds. A node that knows no dock yet
    /// takes [`MIN_RUNS`] to learn them.
    fn claim_plan(&self, free: usize, runs: &Runs) -> (usize, Vec<DockId>) {
        let known = self.inner.budgets.known_docks();
        if known.is_empty() {
            return (free.min(MIN_RUNS), Vec::new());
        }
        let running: HashMap<DockId, usize> = runs.counts().into_iter().collect();
        let mut full = Vec::new();
        let mut room = MAX_CLAIM;
        for dock in known {
            let Some(cap) = self.known_cap(dock) else {
                continue;
            };
            match cap.checked_sub(running.get(&dock).copied().unwrap_or(0)) {
                Some(left) if left > 0 => room = room.min(left),
                _ => full.push(dock),
            }
        }
        (free.min(room), full)
    }

    /// How many of a dock's operations this node runs at once: what its part of the dock's
    /// limit serves in [`HORIZON`] (at least [`MIN_RUNS`]); `None` for a dock set to no
    /// limit. A dock not called yet here is read once to learn its budget.
    async fn cap(&self, org: OrgId, dock: DockId) -> Option<usize> {
        if self.inner.budgets.known(dock).is_none() {
            // A dock that cannot be read is left to the run, which reports it.
            let read = self.inner.store.get_dock(org, dock).await.ok()?;
            self.inner
                .budgets
                .for_dock(dock, crate::rate_limit_of(&read));
        }
        self.known_cap(dock)
    }

    /// [`Engine::cap`] of a dock whose budget is known here; `None` otherwise. It follows
    /// the limit the dock is set to (this node's part of it), not what answers taught the
    /// budget: those change from one answer to the next.
    fn known_cap(&self, dock: DockId) -> Option<usize> {
        let rate = self.inner.budgets.known(dock)?.limit().steady_rate()?;
        Some(((rate * HORIZON.as_secs_f64()).ceil() as usize).max(MIN_RUNS))
    }

    /// Puts back operations claimed but not run here, as they were before the claim (the
    /// claim counted no run for them), for whichever node has room first. If that fails
    /// their leases run out and they are claimed again all the same.
    async fn release(&self, owner: &str, ops: Vec<Operation>) {
        if ops.is_empty() {
            return;
        }
        let now = chrono::Utc::now();
        let batches = ops
            .into_iter()
            .map(|op| {
                let lease = Lease {
                    operation_id: op.id,
                    owner: owner.to_string(),
                    generation: op.generation,
                };
                let mut back = op;
                back.state = OpState::Queued;
                back.attempt = back.attempt.saturating_sub(1);
                back.lease_owner = None;
                back.lease_expires_at = None;
                back.updated_at = now;
                Batch::fenced(&lease).push(Write::UpdateOperation(back))
            })
            .collect();
        if let Err(e) = self.inner.store.apply_each(batches).await {
            tracing::warn!(error = %e, "could not put back operations this node has no room for; their leases will expire");
        }
    }

    /// Claims and runs one operation in this task; `false` if none was runnable. For tests
    /// that step the engine by hand.
    pub async fn run_next(&self, owner: &str) -> Result<bool, EngineError> {
        let lease = self.inner.config.lease;
        let Some(op) = self.inner.store.claim_operation(owner, lease).await? else {
            return Ok(false);
        };
        self.run_claimed(owner, op).await;
        Ok(true)
    }

    /// Runs a claimed operation to its next resting point: settled, parked or re-queued.
    async fn run_claimed(&self, owner: &str, op: Operation) {
        let store = &self.inner.store;
        let lease_len = self.inner.config.lease;
        let lease = Lease {
            operation_id: op.id,
            owner: owner.to_string(),
            generation: op.generation,
        };
        tracing::debug!(operation = %op.id, kind = %op.kind, attempt = op.attempt, "running operation");
        let run = async {
            match op.kind {
                OpKind::Provision => provision::run(self, &op, &lease).await,
                OpKind::Deprovision => deprovision::run(self, &op, &lease).await,
                OpKind::Sync => sync::run(self, &op, &lease).await,
            }
        };
        // The run goes on only while its lease is surely held: once it may have run out,
        // another node may take the operation and, finding a create sent but nothing by its
        // marker yet, send one of its own while this run sends its next try. The run is then
        // dropped where it stands, as a crash would leave it, which every step is made to
        // survive.
        let result = tokio::select! {
            result = run => result,
            () = keep_lease(store.as_ref(), &lease, lease_len) => {
                Err(EngineError::Store(StoreError::Fenced(op.id)))
            }
        };
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
        self.ctx_recorded(op, lease, resource_id, marker, steps).0
    }

    /// [`Engine::ctx`], with the recorder behind it, which knows the row as the run's
    /// checkpoints last wrote it.
    pub(crate) fn ctx_recorded(
        &self,
        op: &Operation,
        lease: &Lease,
        resource_id: Option<ResourceId>,
        marker: Option<Marker>,
        steps: Vec<Step>,
    ) -> (Ctx, Arc<StoreRecorder>) {
        let recorder = Arc::new(StoreRecorder {
            store: self.inner.store.clone(),
            lease: lease.clone(),
            org_id: op.org_id,
            resource_id,
            resource_kind: op.resource_kind,
            failpoints: self.inner.config.failpoints.clone(),
            written: Default::default(),
            keyring: self.inner.keyring.clone(),
            log: Default::default(),
        });
        let scope = CallScope {
            org_id: op.org_id,
            dock_id: op.dock_id,
            resource_id,
            operation_id: Some(op.id),
            recorder: recorder.clone(),
        };
        let mut ctx = Ctx::new(scope, marker, op.attempt, steps);
        if let Some(blobs) = self.inner.blobs.get() {
            ctx = ctx.with_files(blobs.clone());
        }
        ctx.retry = self.inner.config.retry;
        (ctx, recorder)
    }

    /// The end of an operation — its state, the writes that go with it and the audit row —
    /// as one fenced batch.
    pub(crate) fn settle_batch(
        op: &Operation,
        lease: &Lease,
        state: OpState,
        last_error: Option<String>,
        mut writes: Vec<Write>,
        audit: AuditEntry,
    ) -> Batch {
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
        batch
    }

    /// [`Engine::settle_batch`], applied.
    pub(crate) async fn settle(
        &self,
        op: &Operation,
        lease: &Lease,
        state: OpState,
        last_error: Option<String>,
        writes: Vec<Write>,
        audit: AuditEntry,
    ) -> Result<(), EngineError> {
        let batch = Self::settle_batch(op, lease, state, last_error, writes, audit);
        self.inner.store.apply(batch).await?;
        Ok(())
    }

    /// The batch that settles an operation on a resource. `Ok(details)`: the caller has set
    /// the row's new state. `Err(failure)`: the row becomes `failed` with that error.
    pub(crate) fn settle_resource_batch(
        op: &Operation,
        lease: &Lease,
        mut row: Resource,
        result: Result<Value, Failure>,
    ) -> Batch {
        let expected_version = row.version;
        let (state, last_error, outcome, details) = match result {
            Ok(details) => {
                row.error = None;
                (OpState::Succeeded, None, Outcome::Success, details)
            }
            Err(f) => {
                row.provisioning_state = ProvisioningState::Failed;
                row.error = Some(ResourceError {
                    message: f.message.clone(),
                    code: f.code.clone(),
                    timestamp: chrono::Utc::now(),
                });
                let last = format!("{}: {}", f.code, f.message);
                let details = json!({"code": f.code, "message": f.message});
                (OpState::Failed, Some(last), Outcome::Failure, details)
            }
        };
        let audit = outcome_audit(op, &row, outcome, details);
        let write = Write::UpdateResource {
            resource: row,
            expected_version,
        };
        Self::settle_batch(op, lease, state, last_error, vec![write], audit)
    }

    pub(crate) async fn settle_resource(
        &self,
        op: &Operation,
        lease: &Lease,
        row: Resource,
        result: Result<Value, Failure>,
    ) -> Result<(), EngineError> {
        let batch = Self::settle_resource_batch(op, lease, row, result);
        self.inner.store.apply(batch).await?;
        Ok(())
    }

    /// The wait before re-running an operation whose run `attempt` failed transiently.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.inner
            .config
            .reschedule_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(8))
            .min(Duration::from_secs(300))
    }

    /// Puts an operation that failed transiently back in the queue, later.
    pub(crate) async fn reschedule(
        &self,
        op: &Operation,
        lease: &Lease,
        error: String,
    ) -> Result<(), EngineError> {
        let wait = self.backoff(op.attempt);
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

    /// The batch that parks an operation until its next check, with what the provider shows
    /// on the row when that changed. Parking holds no worker and is not a run.
    pub(crate) fn park_batch(
        op: &Operation,
        lease: &Lease,
        check_in: Duration,
        row: Option<(Resource, Option<Observed>, Option<String>)>,
    ) -> Batch {
        let now = chrono::Utc::now();
        let mut parked = op.clone();
        parked.state = OpState::Waiting;
        parked.next_run_at = now + chrono::Duration::from_std(check_in).unwrap_or_default();
        parked.waiting_since = op.waiting_since.or(Some(now));
        parked.lease_owner = None;
        parked.lease_expires_at = None;
        parked.updated_at = now;
        let mut batch = Batch::fenced(lease);
        if let Some((mut row, observed, status)) = row {
            // Written only when the provider's status changes: watchers see each change once,
            // and checks that see nothing new write nothing.
            let status = observed.as_ref().map_or(status, |o| o.status.clone());
            if status.is_some() && status != row.status {
                let expected_version = row.version;
                match observed {
                    Some(o) => apply_observed(&mut row, o),
                    None => row.status = status,
                }
                batch = batch.push(Write::UpdateResource {
                    resource: row,
                    expected_version,
                });
            }
        }
        batch.push(Write::UpdateOperation(parked))
    }

    /// When an operation parked on `dock` now, not to be looked at for `earliest`, is checked:
    /// at the dock's next planned round if that is late enough, else at a round planned for
    /// it, one interval after the previous. So every waiting operation of a dock is checked in
    /// the same round, and rounds are at least an interval apart. When several nodes share
    /// the dock, a round planned afresh is put on the interval's grid (whole intervals since
    /// the Unix epoch): they all plan on the same grid, so their rounds fall at the same
    /// instants and the first to take the operations due checks them all, instead of each
    /// node listing for its own.
    pub(crate) fn next_check(
        &self,
        dock: stackdock_core::DockId,
        budget: &stackdock_docks::Budget,
        earliest: Duration,
    ) -> Duration {
        let interval =
            chrono::Duration::from_std(self.check_interval(dock, budget)).unwrap_or_default();
        let now = chrono::Utc::now();
        let earliest = now + chrono::Duration::from_std(earliest).unwrap_or_default();
        let mut rounds = self
            .inner
            .rounds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = match rounds.get(&dock).copied() {
            Some(planned) if planned >= earliest => planned,
            // The first round after `earliest` in the series planned, planned + interval, ...
            Some(planned) if planned > now && interval > chrono::Duration::zero() => {
                let behind = (earliest - planned).num_microseconds().unwrap_or(0);
                let step = interval.num_microseconds().unwrap_or(1).max(1);
                let rounds_later = (behind + step - 1) / step;
                planned + interval * (rounds_later as i32)
            }
            _ if budget.nodes() > 1 => on_grid(earliest, interval),
            _ => earliest,
        };
        if rounds.get(&dock).is_none_or(|p| *p < at) {
            rounds.insert(dock, at);
        }
        (at - now).to_std().unwrap_or_default()
    }

    /// How long to wait between checks of a dock's waiting operations: at least the
    /// configured minimum, and spaced so the checks use at most `check_share` of the dock's
    /// budget: the whole dock's, not this node's part of it, since nodes sharing a dock plan
    /// their rounds on one grid and one round, taken by whichever node is first, checks the
    /// dock's waiting operations for all of them (spaced by a node's part, three nodes
    /// checked a third as often as one). A round is one listing, whatever the number of
    /// resources waiting, but a listing is a call per page: rounds are spaced by the calls
    /// the dock's last round made (a listing of 500 droplets is 3 pages, and rounds spaced as
    /// if each were one call took 60% of the budget from the creates), rounded up to a power
    /// of two. Nodes sharing a dock may each have seen a different number of pages last;
    /// spaced by 1, 2 or 4 times the same interval, their grids nest (see
    /// [`Engine::next_check`]) and their rounds still fall at the same instants.
    pub(crate) fn check_interval(
        &self,
        dock: stackdock_core::DockId,
        budget: &stackdock_docks::Budget,
    ) -> Duration {
        let wait = &self.inner.config.wait;
        match budget.dock_rate() {
            Some(rate) if rate > 0.0 => {
                let calls = self
                    .inner
                    .round_calls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&dock)
                    .map_or(1, |calls| calls.next_power_of_two());
                let spaced = Duration::from_secs_f64(f64::from(calls) / (rate * wait.check_share));
                spaced.max(wait.min_interval)
            }
            _ => wait.min_interval,
        }
    }
}

/// The first instant at or after `at` that is a whole number of `interval`s since the Unix
/// epoch; `at` itself for an interval of zero.
fn on_grid(
    at: chrono::DateTime<chrono::Utc>,
    interval: chrono::Duration,
) -> chrono::DateTime<chrono::Utc> {
    let step = interval.num_microseconds().unwrap_or(0);
    if step <= 0 {
        return at;
    }
    let t = at.timestamp_micros();
    let ahead = (step - t.rem_euclid(step)) % step;
    chrono::DateTime::from_timestamp_micros(t + ahead).unwrap_or(at)
}

/// Whether earlier runs of `op` have all ended without settling, as many times as allowed:
/// this run stops the operation instead of trying again.
pub(crate) fn out_of_runs(engine: &Engine, op: &Operation) -> Option<Failure> {
    let max = engine.inner.config.max_attempts;
    (op.attempt > max).then(|| {
        let last = op.last_error.as_deref().unwrap_or("no error recorded");
        Failure::new(
            "gave_up",
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

/// Renews `lease` every third of its length for as long as the run lasts; returns once it
/// may no longer be held. A refused renewal (another owner has it) ends it at once. A
/// renewal that fails otherwise (the database answered with an error) is tried again until
/// the lease would run out: a passing error must not end a run whose lease is still good
/// (it used to stop the renewals for good while the run went on), nor may a run carry on
/// past the time another node could take its operation. That time is counted from before
/// the last renewal that succeeded, less a margin for the clocks.
async fn keep_lease(store: &dyn Store, lease: &Lease, length: Duration) {
    let margin = length / 6;
    let mut held_until = tokio::time::Instant::now() + length;
    let mut next = tokio::time::Instant::now() + length / 3;
    loop {
        tokio::time::sleep_until(next.min(held_until - margin)).await;
        let asked = tokio::time::Instant::now();
        if asked + margin >= held_until {
            tracing::warn!(operation = %lease.operation_id, "the lease could not be renewed before it ran out; stopping the run");
            return;
        }
        // A renewal that is slow but goes through finds the lease still this run's (it is
        // refused otherwise), so only failures count against the deadline.
        match store.renew_lease(lease, length).await {
            Ok(()) => {
                held_until = asked + length;
                next = asked + length / 3;
            }
            Err(StoreError::Fenced(_)) => {
                tracing::warn!(operation = %lease.operation_id, "lease lost to another worker; stopping the run");
                return;
            }
            Err(e) => {
                tracing::warn!(operation = %lease.operation_id, error = %e, "could not renew the lease; trying again");
                next = tokio::time::Instant::now() + (length / 12).max(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::on_grid;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn rounds_planned_afresh_fall_on_one_grid() {
        let interval = Duration::milliseconds(625);
        // Two nodes parking at different moments of one interval plan the same round.
        let a = Utc.timestamp_micros(1_800_000_000_100_000).unwrap();
        let b = Utc.timestamp_micros(1_800_000_000_600_000).unwrap();
        assert_eq!(on_grid(a, interval), on_grid(b, interval));
        let round = on_grid(a, interval);
        assert!(round >= b && round - a < interval, "{a} -> {round}");
        assert_eq!(round.timestamp_micros() % 625_000, 0);
        // An instant on the grid stays; the next instant moves one interval on.
        assert_eq!(on_grid(round, interval), round);
        let next = round + Duration::microseconds(1);
        assert_eq!(on_grid(next, interval), round + interval);
        // No interval: no grid.
        assert_eq!(on_grid(a, Duration::zero()), a);
    }

    #[tokio::test]
    async fn nodes_sharing_a_dock_check_it_as_often_as_one_node() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stackdock_store::SqliteStore::open(&dir.path().join("stackdock.db"))
            .await
            .expect("open");
        let engine = crate::Engine::new(
            Arc::new(store),
            stackdock_docks::Registry::builtin(),
            stackdock_core::Keyring::new(stackdock_core::MasterKey::generate()),
            crate::EngineConfig::default(),
        );
        let dock = stackdock_core::DockId::new();
        let budgets = &engine.inner.budgets;
        let budget = budgets.for_dock(dock, "24/s".parse().expect("a limit"));
        let alone = engine.check_interval(dock, &budget);
        // One listing a round, a fifth of 24 calls a second.
        assert_eq!(
            alone,
            std::time::Duration::from_secs_f64(1.0 / (24.0 * 0.2))
        );
        // Three nodes each pace their calls by a third of the limit, but a round checks the
        // dock for all three: rounds stay as close together as for one node.
        budgets.set_nodes(3);
        assert_eq!(budget.steady_rate(), Some(8.0));
        assert_eq!(engine.check_interval(dock, &budget), alone);
    }
}
