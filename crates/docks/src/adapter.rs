//! The contract between the engine and a provider's adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use stackdock_core::{
    ApiCall, DockId, Marker, OperationId, OrgId, Provider, ResourceDetails, ResourceId,
    ResourceKind, SecretString, Step,
};

use crate::config::ConfigSchema;
use crate::error::DockError;
use crate::retry::RetryPolicy;

/// A dock opened for one operation: its API key decrypted, in memory only.
#[derive(Clone, Debug)]
pub struct DockAccess {
    pub id: DockId,
    pub org_id: OrgId,
    pub provider: Provider,
    pub name: String,
    pub api_key: SecretString,
    /// Overrides the provider's public base URL (sandbox, tests, regional endpoints).
    pub base_url: Option<String>,
    pub settings: Value,
}

/// Where progress goes. The engine implements it on top of the store; tests can implement it
/// in memory.
#[async_trait]
pub trait Recorder: Send + Sync {
    /// Journals one provider call. Never fails the call: a journal that cannot be written is
    /// logged by the implementation.
    async fn journal(&self, call: ApiCall);
    /// Records a completed step of the current operation, keyed by its name, before the
    /// adapter goes on. An error means the adapter must stop.
    async fn checkpoint(&self, step: Step) -> Result<(), DockError>;
    /// Reports what the provider shows while the adapter waits on it, each time its status
    /// changes, so watchers see progress. Best effort: it cannot fail the operation.
    async fn progress(&self, _observed: &Observed) {}
}

/// What a journal entry is about. Cheap to clone into each API client.
#[derive(Clone)]
pub struct CallScope {
    pub org_id: OrgId,
    pub dock_id: DockId,
    pub resource_id: Option<ResourceId>,
    pub operation_id: Option<OperationId>,
    pub recorder: Arc<dyn Recorder>,
}

/// How often and how long to wait for a provider to report a resource ready.
#[derive(Clone, Copy, Debug)]
pub struct PollPolicy {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
    }
}

/// Everything an adapter may know about the operation it is running.
pub struct Ctx {
    pub scope: CallScope,
    /// The marker to tag what this operation creates with.
    pub marker: Option<Marker>,
    /// Which run of the operation this is; above 1, an earlier run may have created things
    /// whose record was lost, so look them up by marker before creating.
    pub attempt: u32,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
    steps: Vec<Step>,
}

impl Ctx {
    pub fn new(scope: CallScope, marker: Option<Marker>, attempt: u32, steps: Vec<Step>) -> Self {
        Self {
            scope,
            marker,
            attempt,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            steps,
        }
    }

    /// Whether an earlier run of this operation may have acted.
    pub fn resumed(&self) -> bool {
        self.attempt > 1
    }

    /// The output of an already completed step, so a resumed operation skips it.
    pub fn step(&self, name: &str) -> Option<&Value> {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.output)
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Records step `name` as done with its output and what undoing it needs. Recording a step
    /// that is already recorded is a no-op, so a step can be retried safely.
    ///
    /// An output with a `provider_resource_id` string tells the engine the provider's id for
    /// the resource, which it writes onto the resource row in the same transaction: from then
    /// on the row tracks what exists at the provider.
    pub async fn checkpoint(
        &mut self,
        name: &str,
        output: Value,
        undo: Value,
    ) -> Result<(), DockError> {
        if self.step(name).is_some() {
            return Ok(());
        }
        let operation_id = self
            .scope
            .operation_id
            .ok_or_else(|| DockError::Checkpoint("a checkpoint needs an operation".into()))?;
        let step = Step {
            operation_id,
            index: self.steps.len() as i64,
            name: name.to_string(),
            status: stackdock_core::StepStatus::Done,
            output,
            undo,
            at: chrono::Utc::now(),
        };
        self.scope.recorder.checkpoint(step.clone()).await?;
        self.steps.push(step);
        Ok(())
    }

    pub fn marker(&self) -> Result<&Marker, DockError> {
        self.marker
            .as_ref()
            .ok_or_else(|| DockError::Checkpoint("a create needs the resource's marker".into()))
    }
}

/// A resource as the provider shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub provider_resource_id: String,
    pub name: String,
    /// The provider's own status word.
    pub status: Option<String>,
    /// Whether the provider reports it ready for use (provider-specific readiness).
    pub ready: bool,
    /// StackDock's marker, if the resource carries one.
    pub marker: Option<Marker>,
    /// The provider's full answer; the engine redacts it before storing.
    pub full_api_data: Value,
    pub details: ResourceDetails,
}

/// One provider's adapter. Methods for kinds it does not support answer
/// [`DockError::Unsupported`] (the defaults below), never panic.
#[async_trait]
pub trait DockAdapter: Send + Sync {
    fn provider(&self) -> Provider;
    fn kinds(&self) -> &[ResourceKind];
    /// The config this adapter accepts for `kind`; `None` if it does not support the kind.
    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema>;

    async fn provision_web_service(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Observed, DockError> {
        Err(self.unsupported(ResourceKind::WebService))
    }

    async fn provision_server(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Observed, DockError> {
        Err(self.unsupported(ResourceKind::Server))
    }

    async fn provision_domain(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Observed, DockError> {
        Err(self.unsupported(ResourceKind::Domain))
    }

    async fn provision_database(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Observed, DockError> {
        Err(self.unsupported(ResourceKind::Database))
    }

    /// The resource as the provider shows it now; `None` if it no longer exists.
    async fn refresh(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Observed>, DockError>;

    /// Deletes the resource. Deleting one that is already gone succeeds.
    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<(), DockError>;

    /// Everything of the kinds this adapter supports that exists in the account. The engine
    /// turns what it does not already track into `manual` rows.
    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError>;

    fn unsupported(&self, kind: ResourceKind) -> DockError {
        DockError::Unsupported {
            provider: self.provider(),
            kind,
        }
    }
}

/// Dispatches to the `provision_<kind>` method for `kind`.
pub async fn provision(
    adapter: &dyn DockAdapter,
    kind: ResourceKind,
    ctx: &mut Ctx,
    dock: &DockAccess,
    config: &Map<String, Value>,
) -> Result<Observed, DockError> {
    match kind {
        ResourceKind::Server => adapter.provision_server(ctx, dock, config).await,
        ResourceKind::WebService => adapter.provision_web_service(ctx, dock, config).await,
        ResourceKind::Domain => adapter.provision_domain(ctx, dock, config).await,
        ResourceKind::Database => adapter.provision_database(ctx, dock, config).await,
    }
}

/// Waits until `observe` reports the resource ready, polling at `ctx.poll.interval`, for at
/// most `ctx.poll.timeout`. `None` from `observe` means the resource vanished.
pub async fn wait_until_ready<F, Fut>(
    ctx: &Ctx,
    provider: Provider,
    observe: F,
) -> Result<Observed, DockError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Observed>, DockError>>,
{
    poll(ctx, provider, observe, |seen| match seen {
        Some(o) if o.ready => Ok(Some(o)),
        Some(_) => Ok(None),
        None => Err(DockError::ResourceFailed {
            provider,
            code: "vanished".into(),
            message: "the resource disappeared while it was being created".into(),
        }),
    })
    .await
}

/// Waits until `observe` finds the resource gone, polling like [`wait_until_ready`].
pub async fn wait_until_gone<F, Fut>(
    ctx: &Ctx,
    provider: Provider,
    observe: F,
) -> Result<(), DockError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Observed>, DockError>>,
{
    poll(ctx, provider, observe, |seen| {
        Ok(seen.is_none().then_some(()))
    })
    .await
}

/// Observes until `settled` says the wait is over (`Some`), fails, or the poll timeout passes.
async fn poll<F, Fut, T>(
    ctx: &Ctx,
    provider: Provider,
    mut observe: F,
    mut settled: impl FnMut(Option<Observed>) -> Result<Option<T>, DockError>,
) -> Result<T, DockError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Observed>, DockError>>,
{
    let started = tokio::time::Instant::now();
    let mut last_status = None;
    loop {
        let seen = observe().await?;
        if let Some(o) = &seen
            && last_status.as_ref() != Some(&o.status)
        {
            last_status = Some(o.status.clone());
            ctx.scope.recorder.progress(o).await;
        }
        if let Some(done) = settled(seen)? {
            return Ok(done);
        }
        if started.elapsed() >= ctx.poll.timeout {
            return Err(DockError::NotReady {
                provider,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(ctx.poll.interval).await;
    }
}
