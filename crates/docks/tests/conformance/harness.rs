//! What the suite needs from an adapter and its sandbox. An adapter joins the suite by
//! implementing [`Harness`] (see `digitalocean.rs`) and adding one line to `tests/adapters.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use stackdock_core::{Marker, ResourceKind, Step};
use stackdock_docks::{DockAccess, DockAdapter};

/// How a create's answer is lost after the provider did the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostAnswer {
    /// A 5xx instead of the answer.
    ServerError,
    /// A success whose body is cut off halfway.
    CutOff,
    /// The connection closes before any of the answer is sent.
    Dropped,
    /// The answer is held longer than [`Harness::lost_answer_timeout`], the request timeout
    /// the suite sets for that check.
    TimedOut,
}

/// The request timeout of a run whose create answer is [`LostAnswer::TimedOut`], unless the
/// harness says otherwise. Every other run keeps a timeout long enough never to fire on
/// loopback, even on a busy machine.
pub const LOST_ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// A resource as the sandbox holds it, read behind the adapter's back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub provider_resource_id: String,
    /// StackDock's marker, if the resource carries one.
    pub marker: Option<Marker>,
}

/// One adapter on a fresh sandbox of its provider, with a dock opened on it. The suite makes
/// one per check, so a check may assume it starts from an empty account.
#[allow(async_fn_in_trait)] // Used generically within this test binary, never as `dyn`.
pub trait Harness: Sized {
    /// Whether the provider can be reached for `check` at all (the machine's Docker Engine);
    /// a check without it says so on one line and passes. Sandboxes always can.
    fn available(_check: &str) -> bool {
        true
    }

    /// Starts a sandbox with no latency and resources ready within tens of milliseconds.
    async fn start() -> Self;

    fn adapter(&self) -> Arc<dyn DockAdapter>;

    /// The dock the engine would hand the adapter: key opened, base URL on the sandbox, its
    /// own budget.
    fn dock(&self) -> DockAccess;

    /// A config for `kind` that the adapter's schema and the sandbox both accept, naming the
    /// resource `name` (lowercase letters, digits and dashes). It should set every sensitive
    /// field, so that they are exercised too.
    fn sample_config(&self, kind: ResourceKind, name: &str) -> Map<String, Value>;

    /// The top-level config fields of `kind` that may carry secrets.
    fn sensitive_fields(&self, kind: ResourceKind) -> Vec<&'static str>;

    /// Every resource of `kind` the sandbox holds right now, StackDock's or not.
    async fn inventory(&self, kind: ResourceKind) -> Vec<Held>;

    /// How many resources of `kind` carrying `marker` were ever created, deleted ones
    /// included: a duplicate shows here even after it was cleaned up.
    fn creates_with_marker(&self, kind: ResourceKind, marker: &Marker) -> usize;

    /// How many creates one provision of `kind` sends, each of which can lose its answer.
    fn creates_per_provision(&self, _kind: ResourceKind) -> usize {
        1
    }

    /// The request timeout of a run whose create answer is [`LostAnswer::TimedOut`]: every
    /// call of that provision must answer within it, so a sandbox in front of something
    /// slower than a sandbox (a real Docker Engine, on a busy machine) needs a longer one.
    fn lost_answer_timeout(&self) -> Duration {
        LOST_ANSWER_TIMEOUT
    }

    /// Makes the `nth` create (from 0) of the next provision of `kind` do its work at the
    /// provider and then lose its answer as `how` says.
    fn lose_create_answer(&self, kind: ResourceKind, nth: usize, how: LostAnswer);

    /// Whether a provision's recorded `steps` say that its `nth` create was found by the
    /// marker (adopted) rather than read from the create's own answer.
    fn adopted(&self, kind: ResourceKind, nth: usize, steps: &[Step]) -> bool;

    /// Makes a resource of `kind` as a user would in the provider's console, outside
    /// StackDock and without a marker; returns its provider id.
    async fn create_outside(&self, kind: ResourceKind, name: &str) -> String;

    /// How many requests the sandbox has received.
    fn requests_received(&self) -> u64;

    /// Whether the adapter's calls wait for the dock's budget (a hosted provider's API); a
    /// local engine with no documented limit may not.
    fn calls_wait_for_the_budget(&self) -> bool {
        true
    }
}
