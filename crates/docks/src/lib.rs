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
//! - [`budget`]: one rate budget per dock (provider account), shared by every call on it:
//!   calls wait for it instead of bouncing off 429s, and it is corrected by what the provider
//!   says (rate-limit headers, `Retry-After`, a 429 pauses the whole dock).
//! - [`registry`]: provider -> adapter, where an ejected adapter replaces a built-in one.
//! - one folder per provider (`cloudflare/`, `digitalocean/`, `docker/`, `netlify/`, `turso/`,
//!   `vercel/`, `vultr/`), each `api.rs` (a thin typed client of the provider's HTTP API) and
//!   `adapter.rs` (the provisioning logic). A folder is written to be read top to bottom and
//!   copied out whole.
//!
//! **Architecture invariant:** only `docks` knows provider HTTP. Nothing here touches the
//! store; progress leaves through [`Ctx`].

// Lets adapter folders say `stackdock_docks::prelude::*` here as they would in a crate of
// their own, so a folder copies out unchanged.
extern crate self as stackdock_docks;

pub mod adapter;
pub mod adopt;
pub mod budget;
pub mod cloudflare;
pub mod config;
pub mod digitalocean;
pub mod docker;
pub mod error;
pub mod files;
pub mod http;
pub mod netlify;
pub mod registry;
pub mod retry;
pub mod turso;
pub mod vercel;
pub mod vultr;

pub use adapter::{
    AdapterStep, CallScope, Ctx, DockAccess, DockAdapter, Observed, Progress, ProviderFailure,
    Recorder, Tracked,
};
pub use budget::{Budget, Budgets, Permit, RateLimit, RateLimitError, Window, documented_limit};
pub use config::{ConfigError, ConfigSchema};
pub use error::{DockError, ProviderError};
pub use files::{
    FileEntry, FileError, FileSource, Files, MemoryFiles, Sha256Hex, SitePath, sha1_hex,
};
pub use registry::Registry;
pub use retry::RetryPolicy;

/// Everything an adapter folder needs from this crate, in one import. An adapter imports
/// only this and its own files, so its folder can be copied into another crate whole and
/// registered in place of the built-in one.
pub mod prelude {
    pub use crate::adapter::{
        AdapterStep, CallScope, Ctx, DockAccess, DockAdapter, Observed, Progress, ProviderFailure,
        Recorder, Tracked, decode_step, provision,
    };
    pub use crate::adopt::{Created, create_or_adopt};
    pub use crate::config::{
        self, ConfigError, ConfigSchema, DomainName, Hostname, RecordName, SENSITIVE, Slug, Text,
    };
    pub use crate::error::{DockError, ProviderError};
    pub use crate::files::{FileEntry, FileSource, Files, Sha256Hex, SitePath, sha1_hex};
    pub use crate::http::{ApiResponse, ErrorBodyReader, HttpSession, Idempotence};
    pub use crate::retry::RetryPolicy;
    pub use async_trait::async_trait;
    pub use chrono::{DateTime, Utc};
    pub use serde_json::{Map, Value, json};
    pub use stackdock_core::{
        ApiCall, DatabaseDetails, DomainDetails, Marker, Provider, ResourceDetails, ResourceKind,
        SealedSecret, SecretString, ServerDetails, Step, WebServiceDetails, redact,
    };
}
