//! Dock adapters: how StackDock talks to each provider.
//!
//! `docks` depends only on `core`. The engine hands an adapter an opened dock (its API key in
//! memory only), a [`Ctx`] through which every call is journaled and every completed step is
//! checkpointed, and the user's validated config.
//!
//! - [`adapter`]: the [`DockAdapter`] trait every provider implements, [`Ctx`], [`Observed`].
//! - [`config`]: the config schema an adapter publishes per resource kind; it drives request
//!   validation (and, later, the web UI's forms).
//! - [`http`] and [`retry`]: the plumbing every adapter's `api.rs` uses — bearer auth, JSON,
//!   typed provider errors that keep the provider's code and message, retries with jittered
//!   backoff honouring `Retry-After` and rate-limit headers, one journal entry per call.
//! - [`registry`]: provider -> adapter, where an ejected adapter replaces a built-in one.
//! - one folder per provider (`digitalocean/`), each `api.rs` (a thin typed client of the
//!   provider's HTTP API) and `adapter.rs` (the provisioning logic). A folder is written to be
//!   read top to bottom and copied out whole.
//!
//! **Architecture invariant:** only `docks` knows provider HTTP. Nothing here touches the
//! store; progress leaves through [`Ctx`].

pub mod adapter;
pub mod adopt;
pub mod config;
pub mod digitalocean;
pub mod error;
pub mod http;
pub mod registry;
pub mod retry;

pub use adapter::{CallScope, Ctx, DockAccess, DockAdapter, Observed, PollPolicy, Recorder};
pub use config::{ConfigError, ConfigSchema, Field, FieldType};
pub use error::{DockError, ProviderError};
pub use registry::Registry;
pub use retry::RetryPolicy;
