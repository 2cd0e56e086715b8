//! The contract between the engine and a provider's adapter (v2).
//!
//! An adapter does its calls and returns; it never sleeps on the provider. A provision or a
//! deprovision answers [`Progress::Done`] when the provider is finished, or
//! [`Progress::Pending`] when the provider is still working: the engine then parks the
//! operation (it holds no worker while it waits) and checks every parked operation of one dock
//! together through [`DockAdapter::observe_many`], one list call where the provider's API
//! allows it.
//!
//! Steps are the adapter's own typed enum ([`AdapterStep`]), recorded through [`Ctx::record`]
//! as they complete; the engine unwinds a failed operation newest step first by handing each
//! recorded step back to [`DockAdapter::undo`]. Before a create is sent, the adapter records a
//! step saying so: from then on a resource carrying the marker may exist, and nothing settles
//! until it has been found or shown absent ([`DockAdapter::find_by_marker`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use stackdock_core::{
    ApiCall, DockId, Marker, OperationId, OrgId, Provider, ResourceDetails, ResourceId,
    ResourceKind, SealedSecret, SecretString, Step, StepStatus,
};

use crate::budget::Budget;
use crate::config::ConfigSchema;
use crate::error::DockError;
use crate::files::{FileEntry, FileError, FileSource};
use crate::retry::RetryPolicy;

/// A dock opened for one run: its API key decrypted, in memory only.
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
    /// The account's rate budget, shared by every call on this dock in this process.
    pub budget: Arc<Budget>,
}

/// Where progress goes. The engine implements it on top of the store; tests can implement it
/// in memory.
#[async_trait]
pub trait Recorder: Send + Sync {
    /// Journals one provider call. Never fails the call: a journal that cannot be written is
    /// logged by the implementation.
    async fn journal(&self, call: ApiCall);
    /// Records a completed step of the current operation before the adapter goes on, and
    /// with it the provider id the step establishes for the resource, if any. An error means
    /// the adapter must stop: [`DockError::Cancelled`] after the step was recorded (a user
    /// asked to stop), [`DockError::Checkpoint`] when it could not be.
    async fn checkpoint(&self, step: Step, tracks: Option<String>) -> Result<(), DockError>;
    /// Seals a secret the provider handed out for the current resource (a database's access
    /// token), the way dock API keys are sealed: what comes back is ciphertext bound to the
    /// resource, safe to keep in a step. A recorder that holds no sealing key refuses, and
    /// the adapter must stop rather than keep the secret in the clear.
    fn seal(&self, _secret: &SecretString) -> Result<SealedSecret, DockError> {
        Err(DockError::Checkpoint(
            "this recorder cannot seal secrets".into(),
        ))
    }
    /// Keeps one line of the current operation's deploy log (a build's output), already
    /// scrubbed of the run's secrets, and shows it to whoever follows the resource. Never
    /// fails the run: a line that cannot be kept is logged by the implementation. The
    /// default keeps nothing.
    async fn log(&self, _line: String) {}
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

/// A step of an adapter's operation: the adapter's own enum, serialized into the step record.
pub trait AdapterStep: Serialize + DeserializeOwned + Send + Sync {
    /// The step's name, unique within one operation: recording a name twice is a no-op.
    fn name(&self) -> &'static str;
    /// The provider id this step establishes for the resource (a create's answer), which the
    /// engine writes onto the resource row in the same transaction as the step.
    fn tracks(&self) -> Option<&str> {
        None
    }
}

/// Everything an adapter may know about the run it is part of.
pub struct Ctx {
    pub scope: CallScope,
    /// The marker to tag what this operation creates with.
    pub marker: Option<Marker>,
    /// Which run of the operation this is (waiting does not count).
    pub attempt: u32,
    pub retry: RetryPolicy,
    /// The calls serve many resources at once (the engine's batched check of a dock's
    /// waiting resources): they take the dock's budget ahead of every other call waiting
    /// for it ([`crate::budget::Budget::acquire_first`]).
    pub first_in_line: bool,
    steps: Vec<Step>,
    /// A step not written yet: it is written when the run's next provider call has its turn
    /// in the dock's budget ([`Ctx::record_before_sending`]).
    due: Arc<DueStep>,
    /// Where the contents of a web service's files are read from; see [`Ctx::file`].
    files: Option<Arc<dyn FileSource>>,
}

/// The step of a run that waits to be written until the run's next call may go, with the
/// provider id it establishes, and the same step once written, until the run's [`Ctx`] takes
/// it into its list. Shared with the run's HTTP sessions, which write it ([`write_due`]).
#[derive(Default)]
pub(crate) struct DueStep {
    /// Held while the due step is written, so no call of the run goes out before it is.
    writing: tokio::sync::Mutex<()>,
    slot: std::sync::Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    due: Option<(Step, Option<String>)>,
    written: Option<Step>,
}

impl DueStep {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes the run's due step, if any, through `recorder`: called once a call has its turn in
/// the budget, before it is sent, and before any later step is recorded. An error means the
/// call must not go out ([`DockError::Cancelled`] after the step was written, as from
/// [`Recorder::checkpoint`]); a step that could not be written stays due.
pub(crate) async fn write_due(due: &DueStep, recorder: &dyn Recorder) -> Result<(), DockError> {
    let _writing = due.writing.lock().await;
    let Some((record, tracks)) = due.slot().due.take() else {
        return Ok(());
    };
    let written = recorder.checkpoint(record.clone(), tracks.clone()).await;
    let mut slot = due.slot();
    if matches!(written, Err(DockError::Checkpoint(_))) {
        slot.due = Some((record, tracks));
    } else {
        slot.written = Some(record);
    }
    written
}

impl Ctx {
    pub fn new(scope: CallScope, marker: Option<Marker>, attempt: u32, steps: Vec<Step>) -> Self {
        Self {
            scope,
            marker,
            attempt,
            retry: RetryPolicy::default(),
            first_in_line: false,
            steps,
            due: Arc::default(),
            files: None,
        }
    }

    /// The run's due step, for its HTTP sessions to write before their next call goes out.
    pub(crate) fn due_step(&self) -> Arc<DueStep> {
        self.due.clone()
    }

    /// Takes the due step into the list once a call has written it.
    fn absorb(&mut self) {
        let written = self.due.slot().written.take();
        self.steps.extend(written);
    }

    /// Hands the run the source of its files' contents (the engine's file store).
    pub fn with_files(mut self, files: Arc<dyn FileSource>) -> Self {
        self.files = Some(files);
        self
    }

    /// The contents of one file of a web service's manifest, checked against its size. A
    /// file whose contents were never uploaded is the request's fault: permanent, naming the
    /// path.
    pub async fn file(&self, entry: &FileEntry) -> Result<Vec<u8>, DockError> {
        let refused = |message: String| {
            DockError::InvalidConfig(crate::config::ConfigError::new(
                format!("files[{}]", entry.path),
                message,
            ))
        };
        let source = self
            .files
            .as_ref()
            .ok_or_else(|| refused("this run was given no file store to read from".into()))?;
        let bytes = match source.read(&entry.sha256).await {
            Ok(bytes) => bytes,
            Err(e @ FileError::Missing(_)) => return Err(refused(e.to_string())),
            Err(FileError::Store(detail)) => {
                return Err(DockError::Checkpoint(
                    format!("reading {}: {detail}", entry.path).into(),
                ));
            }
        };
        if bytes.len() as u64 != entry.size {
            return Err(refused(format!(
                "the manifest says {} bytes, the uploaded content has {}",
                entry.size,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// The recorded steps, oldest first, undone ones included.
    pub fn records(&self) -> Vec<Step> {
        let mut steps = self.steps.clone();
        steps.extend(self.due.slot().written.clone());
        steps
    }

    /// The completed (not undone) step named `name`, decoded as the adapter's step type.
    pub fn step<S: AdapterStep>(&self, name: &str) -> Result<Option<S>, DockError> {
        let written = self.due.slot().written.clone();
        self.steps
            .iter()
            .chain(&written)
            .find(|s| s.name == name && s.status == StepStatus::Done)
            .map(|s| decode_step(s))
            .transpose()
    }

    /// Records `step` as done before the adapter goes on. Recording a name that is already
    /// recorded is a no-op, so a resumed run can replay its steps safely.
    pub async fn record<S: AdapterStep>(&mut self, step: &S) -> Result<(), DockError> {
        let Some((record, tracks)) = self.next_record(step).await? else {
            return Ok(());
        };
        // Kept locally even when the recorder answers `Cancelled`: the step was recorded.
        let recorded = self.scope.recorder.checkpoint(record.clone(), tracks).await;
        if !matches!(recorded, Err(DockError::Checkpoint(_))) {
            self.steps.push(record);
        }
        recorded
    }

    /// As [`Ctx::record`], for the step that says a create is about to be sent: it is
    /// written (and counts as recorded) only when the run's next provider call, the create,
    /// has its turn in the dock's budget, just before that call goes out. A run
    /// that ends while its create still waits for the budget (a node that dies with a queue
    /// of creates) has written nothing, so whoever runs the operation next sends the create
    /// without first looking for what it might have made. A later [`Ctx::record`] writes it
    /// first; an error writing it comes back from the call, which is then not sent.
    pub async fn record_before_sending<S: AdapterStep>(
        &mut self,
        step: &S,
    ) -> Result<(), DockError> {
        if let Some(due) = self.next_record(step).await? {
            self.due.slot().due = Some(due);
        }
        Ok(())
    }

    /// The record of `step`, done now, next in this run's order, with the provider id it
    /// establishes; `None` if a step of that name is recorded already. The due step, if any,
    /// is written first, so steps are written in their order.
    async fn next_record<S: AdapterStep>(
        &mut self,
        step: &S,
    ) -> Result<Option<(Step, Option<String>)>, DockError> {
        write_due(&self.due, &*self.scope.recorder).await?;
        self.absorb();
        if self.steps.iter().any(|s| s.name == step.name()) {
            return Ok(None);
        }
        let operation_id = self.scope.operation_id.ok_or_else(|| {
            DockError::Checkpoint("a step can only be recorded within an operation".into())
        })?;
        let output = serde_json::to_value(step)
            .map_err(|e| DockError::Checkpoint(format!("step {}: {e}", step.name()).into()))?;
        let record = Step {
            operation_id,
            index: self.steps.len() as i64,
            name: step.name().to_string(),
            status: StepStatus::Done,
            output,
            undo: Value::Null,
            at: chrono::Utc::now(),
        };
        Ok(Some((record, step.tracks().map(str::to_string))))
    }

    /// Records that a completed step turned out to have had no effect at the provider (a
    /// create the provider refused outright), so unwinding has nothing to undo for it.
    pub async fn mark_undone(&mut self, name: &str) -> Result<(), DockError> {
        {
            let _writing = self.due.writing.lock().await;
            let mut slot = self.due.slot();
            if slot.due.as_ref().is_some_and(|(s, _)| s.name == name) {
                // Never written, so no call went out after it: there is nothing to undo.
                slot.due = None;
                return Ok(());
            }
        }
        self.absorb();
        let Some(step) = self
            .steps
            .iter_mut()
            .find(|s| s.name == name && s.status == StepStatus::Done)
        else {
            return Ok(());
        };
        let mut undone = step.clone();
        undone.status = StepStatus::Undone;
        undone.at = chrono::Utc::now();
        self.scope.recorder.checkpoint(undone.clone(), None).await?;
        *step = undone;
        Ok(())
    }

    /// Adds `line` to the operation's deploy log, with every one of `secrets` (and its base64,
    /// hex and percent-encoded forms) scrubbed out and the line cut at [`MAX_LOG_LINE`] bytes.
    pub async fn log(&self, line: &str, secrets: &[&str]) {
        let mut line = stackdock_core::redact::scrub(line, secrets);
        if line.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [cut]");
        }
        self.scope.recorder.log(line).await;
    }

    /// Seals a secret minted for this operation's resource; see [`Recorder::seal`]. The
    /// plaintext goes no further than this call.
    pub fn seal(&self, secret: &SecretString) -> Result<SealedSecret, DockError> {
        self.scope.recorder.seal(secret)
    }

    pub fn marker(&self) -> Result<&Marker, DockError> {
        self.marker
            .as_ref()
            .ok_or_else(|| DockError::Checkpoint("a create needs the resource's marker".into()))
    }
}

/// The longest deploy log line kept, in bytes.
pub const MAX_LOG_LINE: usize = 4096;

/// Decodes a recorded step as the adapter's step type.
pub fn decode_step<S: DeserializeOwned>(step: &Step) -> Result<S, DockError> {
    serde_json::from_value(step.output.clone()).map_err(|e| {
        DockError::Checkpoint(format!("recorded step {:?} cannot be read: {e}", step.name).into())
    })
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
    /// Set when the provider reports that the resource itself failed (a build errored): it
    /// will never become ready.
    pub failure: Option<ProviderFailure>,
    /// StackDock's marker, if the resource carries one.
    pub marker: Option<Marker>,
    /// The provider's full answer; the engine redacts it before storing.
    pub full_api_data: Value,
    pub details: ResourceDetails,
}

/// The provider's own words for a resource that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderFailure {
    pub code: String,
    pub message: String,
}

/// What a provision or a deprovision left the provider doing.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Finished: for a provision, the resource as the provider shows it, ready; for a
    /// deprovision, the provider confirmed it gone (the value is ignored).
    Done(Option<Box<Observed>>),
    /// The provider is still working. The engine parks the operation and checks again,
    /// no sooner than `check_in`, through [`DockAdapter::observe_many`].
    Pending {
        status: Option<String>,
        check_in: Duration,
    },
}

/// A resource StackDock tracks, as an adapter needs to find it at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub kind: ResourceKind,
    pub provider_resource_id: String,
    /// Present on resources StackDock created; they carry it at the provider too.
    pub marker: Option<Marker>,
    /// The provider's data as last stored for it (`null` if never seen): lets an adapter
    /// tell, say, whether a resource carries the tag its listings go by.
    pub last_seen: Value,
}

/// One provider's adapter. Kinds it does not support answer [`DockError::Unsupported`] (the
/// defaults below), never panic.
#[async_trait]
pub trait DockAdapter: Send + Sync {
    fn provider(&self) -> Provider;
    fn kinds(&self) -> &[ResourceKind];
    /// The config this adapter accepts for `kind`, derived from its typed config; `None` if
    /// it does not support the kind.
    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema>;

    /// The settings a dock of this provider takes beside its key (say, the organization its
    /// resources live in), checked when the dock is connected; `None` for a provider that
    /// takes none.
    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        None
    }

    /// Whether a dock of this provider needs an API key. A Docker dock's key is its
    /// registry's password, and a dock without a registry has none. The default: it does.
    fn key_required(&self) -> bool {
        true
    }

    /// Checks the dock's key with the provider before the dock is saved, so a bad key is
    /// refused when it is typed rather than at the first provision. A provider refusing the
    /// key answers [`DockError::Provider`] in its own words. The default checks nothing.
    async fn verify_credentials(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
    ) -> Result<(), DockError> {
        Ok(())
    }

    async fn provision_web_service(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        Err(self.unsupported(ResourceKind::WebService))
    }

    async fn provision_server(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        Err(self.unsupported(ResourceKind::Server))
    }

    async fn provision_domain(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        Err(self.unsupported(ResourceKind::Domain))
    }

    async fn provision_database(
        &self,
        _ctx: &mut Ctx,
        _dock: &DockAccess,
        _config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        Err(self.unsupported(ResourceKind::Database))
    }

    /// Starts deleting a tracked resource. Deleting one that is already gone succeeds.
    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError>;

    /// Reverses one recorded step of a failed provision (the adapter's own step type, in
    /// `step.output`). Undoing what is already undone succeeds. For a "create sent" step it
    /// finds whatever carries the marker and deletes it.
    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError>;

    /// The tracked resources of one kind as the provider shows them now, in the order given;
    /// `None` where the provider does not show it (gone, or for one just created, not listed
    /// yet). One list call where the API allows, one read per resource otherwise.
    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError>;

    /// Whether a waiting provision must be run again rather than waited on: the provider,
    /// as `observed`, waits for the provision's next step (a Netlify deploy `prepared`, which
    /// waits for its files). The engine then hands the operation back to a worker, which
    /// goes on from its recorded steps. The default: never.
    fn continues_provision(&self, _kind: ResourceKind, _observed: &Observed) -> bool {
        false
    }

    /// The resource of `kind` carrying `marker`, if the provider has one. A filtered lookup,
    /// never a listing of the whole account.
    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError>;

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
) -> Result<Progress, DockError> {
    match kind {
        ResourceKind::Server => adapter.provision_server(ctx, dock, config).await,
        ResourceKind::WebService => adapter.provision_web_service(ctx, dock, config).await,
        ResourceKind::Domain => adapter.provision_domain(ctx, dock, config).await,
        ResourceKind::Database => adapter.provision_database(ctx, dock, config).await,
    }
}
