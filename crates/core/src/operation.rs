//! Operations: the unit of work the engine's workers claim. An operation is recorded in the
//! same transaction as the intent it carries out, and its steps are recorded as they complete,
//! so a worker that dies mid-way leaves enough behind for another to finish the job.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DockId, OperationId, OrgId, ResourceId, ResourceKind, Timestamp, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Provision,
    Deprovision,
    /// Discover what exists in a dock's account.
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    Queued,
    Running,
    /// Parked until its next check: the provider is working (a droplet booting, a resource
    /// being deleted). Holds no worker; the engine checks waiting operations of one dock
    /// together and waiting never counts as a run.
    Waiting,
    Succeeded,
    Failed,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$v),)*
                    _ => Err(format!(concat!("unknown ", stringify!($t), " {:?}"), s)),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(OpKind { Provision => "provision", Deprovision => "deprovision", Sync => "sync" });
text_enum!(OpState { Queued => "queued", Running => "running", Waiting => "waiting", Succeeded => "succeeded", Failed => "failed" });
text_enum!(StepStatus { Done => "done", Undone => "undone" });

impl OpState {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: OperationId,
    pub org_id: OrgId,
    pub kind: OpKind,
    pub dock_id: DockId,
    /// The resource acted on; `None` for a sync.
    pub resource_id: Option<ResourceId>,
    pub resource_kind: Option<ResourceKind>,
    /// Who asked, for the audit rows the engine writes later on their behalf.
    pub requested_by: Option<UserId>,
    pub state: OpState,
    /// Runs started so far; a resumed operation has `attempt > 1`.
    pub attempt: u32,
    pub next_run_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    /// Bumped on every claim. A worker writes only while the generation it claimed is current,
    /// so a worker whose lease expired cannot overwrite its successor's progress (fencing).
    pub generation: i64,
    pub input: serde_json::Value,
    pub last_error: Option<String>,
    /// A user asked to stop it: the next step boundary unwinds instead of going on.
    pub cancel_requested: bool,
    /// Set once the operation has failed for good and is undoing what it created; it settles
    /// `failed` with this error only when the undoing is complete.
    pub unwind: Option<Failure>,
    /// When it first started waiting on the provider; bounds how long it may wait in all.
    pub waiting_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why an operation failed, as the resource's `error` will show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl Operation {
    pub fn new(
        org_id: OrgId,
        kind: OpKind,
        dock_id: DockId,
        resource: Option<(ResourceId, ResourceKind)>,
        requested_by: Option<UserId>,
        input: serde_json::Value,
    ) -> Self {
        let now = chrono::Utc::now();
        Self {
            id: OperationId::new(),
            org_id,
            kind,
            dock_id,
            resource_id: resource.map(|r| r.0),
            resource_kind: resource.map(|r| r.1),
            requested_by,
            state: OpState::Queued,
            attempt: 0,
            next_run_at: now,
            lease_owner: None,
            lease_expires_at: None,
            generation: 0,
            input,
            last_error: None,
            cancel_requested: false,
            unwind: None,
            waiting_since: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    /// Its effect was reversed while unwinding a failed operation.
    Undone,
}

/// A completed step of an operation, keyed by (operation, index) so recording it twice is a
/// no-op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub operation_id: OperationId,
    pub index: i64,
    pub name: String,
    pub status: StepStatus,
    pub output: serde_json::Value,
    /// What undoing this step needs (e.g. the provider id to delete).
    pub undo: serde_json::Value,
    pub at: Timestamp,
}
