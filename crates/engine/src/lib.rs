//! The engine: turns recorded intent into provider calls, and provider answers into recorded
//! state.
//!
//! `engine` depends on `core`, `store` and `docks`. The server calls [`Engine`]'s `request_*`
//! methods, which validate and record intent — resource row, operation and audit row in one
//! transaction — and return at once. Workers ([`worker`]) claim operations with a lease, run
//! them ([`provision`], [`deprovision`], [`sync`]) through the dock's adapter, record each
//! completed step as they go ([`recorder`]), and settle the resource and the operation
//! together with an audit row.
//!
//! [`blobs`] is the content-addressed store of web services' files in the data directory;
//! runs read it through `stackdock_docks::FileSource` (see [`Engine::set_blobs`]).
//!
//! **Architecture invariants**
//! - Intent before action: no provider is called for an operation that is not recorded.
//! - A dock's API key is opened in memory for one run of one operation and never written.
//! - Every write a worker makes is fenced by its lease: after its lease is taken over, a
//!   worker cannot change anything.
//! - A resumed operation (attempt > 1) looks up what an earlier run may have created by its
//!   marker before creating anything (see `docks::adopt`).

use std::sync::Arc;
use std::time::Duration;

use stackdock_core::{Dock, Keyring, Provider, crypto::CryptoError};
use stackdock_docks::budget::{Budgets, RateLimit, documented_limit};
use stackdock_docks::{ConfigError, DockAccess, Registry, RetryPolicy};
use stackdock_store::{Store, StoreError};

pub mod blobs;
pub mod deprovision;
pub mod failpoint;
pub mod intent;
pub mod keys;
pub mod observe;
pub mod provision;
pub mod recorder;
pub mod sealed;
pub mod sync;
pub mod worker;

pub use failpoint::Failpoints;
pub use intent::Actor;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid config: {0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("no adapter is registered for provider {0}")]
    NoAdapter(Provider),
    #[error("{provider} docks cannot provision {kind} resources; they provision: {supported}")]
    UnsupportedKind {
        provider: Provider,
        kind: String,
        supported: String,
    },
    /// The request conflicts with the resource's current state.
    #[error("{0}")]
    Conflict(String),
    /// The provider refused the key a dock was being connected with.
    #[error("{provider} refused the API key ({code}): {message}")]
    KeyRefused {
        provider: Provider,
        code: String,
        message: String,
    },
    /// The key could not be checked: the provider did not answer usefully.
    #[error("the API key could not be checked with {provider}: {detail}")]
    KeyUnchecked { provider: Provider, detail: String },
    #[error("the API key of dock {dock} cannot be opened")]
    DockKey {
        dock: String,
        #[source]
        source: CryptoError,
    },
    /// A sealed config value of the operation cannot be opened (its master key is gone, or it
    /// was tampered with): the run stops rather than go on without it.
    #[error("the sealed config field {field:?} cannot be opened: {source}")]
    SealedConfig {
        field: String,
        #[source]
        source: CryptoError,
    },
}

/// How the engine waits on providers.
#[derive(Clone, Debug)]
pub struct WaitPolicy {
    /// The shortest time between two checks of one dock's waiting operations.
    pub min_interval: Duration,
    /// The share of a dock's rate budget its checks may use; checks are spaced to fit it.
    pub check_share: f64,
    /// How long an operation may wait on the provider in all before it fails.
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(100),
            check_share: 0.2,
            timeout: Duration::from_secs(1800),
        }
    }
}

/// How the engine behaves; the defaults suit production, tests shorten the waits.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Names this process in operation leases.
    pub worker_id: String,
    /// Operations run at once in this process. Provider calls are bounded per dock by its
    /// rate budget; this bounds memory.
    pub max_in_flight: usize,
    /// How long a claimed operation stays ours without a renewal.
    pub lease: Duration,
    /// How often an idle dispatcher or observer looks for work when nothing wakes it.
    pub idle_poll: Duration,
    /// Provider call retries within one run.
    pub retry: RetryPolicy,
    /// Waiting on providers.
    pub wait: WaitPolicy,
    /// Runs of one operation before a transient failure becomes permanent.
    pub max_attempts: u32,
    /// The first wait before re-running an operation that failed transiently; doubles per run.
    pub reschedule_base: Duration,
    pub failpoints: Failpoints,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            max_in_flight: 512,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            wait: WaitPolicy::default(),
            max_attempts: 8,
            reschedule_base: Duration::from_secs(2),
            failpoints: Failpoints::default(),
        }
    }
}

/// The engine's shared state; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Registry,
    pub(crate) keyring: Keyring,
    pub(crate) config: EngineConfig,
    /// Wakes the dispatcher when this process queues an operation.
    pub(crate) wake: tokio::sync::Notify,
    /// Wakes the observer when this process parks an operation sooner than it would look.
    pub(crate) wake_observer: tokio::sync::Notify,
    /// One rate budget per dock, shared by every run on it in this process.
    pub(crate) budgets: Budgets,
    /// Per dock, when its next round of checks is planned: what parks joins that round, so
    /// one listing checks everything a dock has waiting.
    pub(crate) rounds: std::sync::Mutex<
        std::collections::HashMap<stackdock_core::DockId, stackdock_core::Timestamp>,
    >,
    /// Per dock, the provider calls its last round of checks made: the next rounds are
    /// spaced by it ([`Engine::check_interval`]).
    pub(crate) round_calls:
        std::sync::Mutex<std::collections::HashMap<stackdock_core::DockId, u32>>,
    /// Docks whose round of checks is under way in this process.
    pub(crate) in_round: observe::InRound,
    /// The store of web services' files, when the process keeps one (see [`Engine::set_blobs`]).
    pub(crate) blobs: std::sync::OnceLock<Arc<blobs::BlobStore>>,
}

impl EngineError {
    /// The error behind an adapter's failed checkpoint: usually the store's (a lost lease shows
    /// as [`StoreError::Fenced`]), kept as it was so the worker reports it truthfully.
    pub(crate) fn from_checkpoint(source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        match source.downcast::<StoreError>() {
            Ok(s) => EngineError::Store(*s),
            Err(other) => EngineError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        keyring: Keyring,
        config: EngineConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                registry,
                keyring,
                config,
                wake: tokio::sync::Notify::new(),
                wake_observer: tokio::sync::Notify::new(),
                budgets: Budgets::default(),
                rounds: Default::default(),
                round_calls: Default::default(),
                in_round: Default::default(),
                blobs: Default::default(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Gives the engine its file store: runs read web services' files from it. Set once, at
    /// start; a second call is ignored.
    pub fn set_blobs(&self, blobs: Arc<blobs::BlobStore>) {
        let _ = self.inner.blobs.set(blobs);
    }

    /// The file store, if the process keeps one.
    pub fn blobs(&self) -> Option<&Arc<blobs::BlobStore>> {
        self.inner.blobs.get()
    }

    /// The rate budget of a dock this process has called, if it has.
    pub fn budget_of(&self, dock: stackdock_core::DockId) -> Option<Arc<stackdock_docks::Budget>> {
        self.inner.budgets.known(dock)
    }

    /// Opens a dock's sealed key, in memory, for one run.
    pub(crate) fn open_dock(&self, dock: &Dock) -> Result<DockAccess, EngineError> {
        let api_key = self
            .inner
            .keyring
            .open(&dock.sealed_api_key, &dock.id.to_string())
            .map_err(|source| EngineError::DockKey {
                dock: dock.name.to_string(),
                source,
            })?;
        Ok(DockAccess {
            id: dock.id,
            org_id: dock.org_id,
            provider: dock.provider,
            name: dock.name.to_string(),
            api_key,
            base_url: dock.api_base_url.clone(),
            settings: dock.settings.clone(),
            budget: self.inner.budgets.for_dock(dock.id, rate_limit_of(dock)),
        })
    }
}

/// The rate limit a dock's owner set (`settings.rate_limit`), else the provider's documented
/// one. A setting that does not parse (it was checked when written) falls back the same way.
pub fn rate_limit_of(dock: &Dock) -> RateLimit {
    dock.settings["rate_limit"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| documented_limit(dock.provider))
}
