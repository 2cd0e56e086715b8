//! Simulators of the cloud providers' HTTP APIs, served for real on loopback.
//!
//! Each sandbox is an HTTP server that answers like the provider's public API does:
//! the same paths, bodies, status codes, error envelopes, pagination and rate-limit
//! headers, as written down in the provider's own OpenAPI document. Tests can read
//! the sandbox's inventory, queue faults (errors, lost responses, delays, 429s,
//! truncated bodies, dropped connections) and look at every request it received.
//!
//! Who uses it: the integration tests of the other crates, the benchmarks, and
//! `stackdock up --sandbox`. Production code paths never depend on this crate; a
//! provider client talks to a sandbox only because it was handed the sandbox's
//! `base_url()` instead of the provider's.
//!
//! What a test or benchmark can turn on, besides the provider's own behaviour:
//!
//! - **Rate limits**, per token: the provider's 60-second sliding window
//!   (`rate_limit`), or a token bucket ([`BucketLimit`], e.g. 600 a minute in bursts
//!   of 10). Both answer 429 with the provider's body, `Retry-After` and the
//!   `ratelimit-*` headers, and refused requests do not count.
//! - **Queued faults** ([`Fault`]): the next N matching requests fail in a chosen way.
//! - **Chaos** ([`Chaos`]): seeded random errors, lost answers, truncated bodies and
//!   429 storms, replayable from the seed and tallied in [`ChaosCounts`].
//! - **Latency** on every answer, and a delay before new resources are ready,
//!   counted from their create.
//!
//! And what it can read back: the inventory, `creates_by_tag` (duplicate creates,
//! even cleaned-up ones), the request log ([`RecordedRequest`], which a long
//! benchmark can switch off) and [`RequestCounts`] (by method and status, 429s),
//! kept whether or not the log is on.
//!
//! Layout: provider-independent machinery lives in [`fault`] (fault queue), `chaos`
//! (the seeded dice), `ratelimit` (per-token sliding window and token bucket),
//! `front_door` (the middleware that authenticates, limits, logs, counts, injects
//! faults and chaos, and adds latency), and `server` (bind/serve/shutdown, and the
//! listener that can hang up on a connection). Each provider gets its own module,
//! e.g. [`cloudflare`], [`digitalocean`], [`netlify`], [`turso`], [`vercel`], [`vultr`].
//! Docker has no simulator: [`docker`] holds what the tests against the real engine share
//! (a real registry on loopback, reading and cleaning up what a test made).
//!
//! API boundary: everything a caller configures or reads is re-exported here; the
//! machinery modules stay private so they can change shape freely.

use std::collections::BTreeMap;

mod chaos;
pub mod cloudflare;
mod controls;
pub mod digitalocean;
pub mod docker;
pub mod fault;
mod front_door;
mod multipart;
pub mod netlify;
mod ratelimit;
mod server;
pub mod turso;
pub mod vercel;
pub mod vultr;

pub use chaos::{Chaos, ChaosCounts, Storm};
pub use cloudflare::{CloudflareSandbox, CloudflareSandboxConfig};
pub use digitalocean::{DigitalOceanSandbox, DoSandboxConfig};
pub use fault::{Fault, FaultResponse};
pub use netlify::{NetlifySandbox, NetlifySandboxConfig};
pub use ratelimit::BucketLimit;
pub use turso::{TursoSandbox, TursoSandboxConfig};
pub use vercel::{VercelSandbox, VercelSandboxConfig};
pub use vultr::{VultrSandbox, VultrSandboxConfig};

/// Running totals of the requests a sandbox received, kept whether or not the request
/// log is on, so a long benchmark can report calls and 429s without a log to walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every request received, including ones still being answered.
    pub total: u64,
    /// Requests by HTTP method (`"GET"`, `"POST"`, ...).
    pub by_method: BTreeMap<String, u64>,
    /// Answers by status code, counted when the answer is ready (before any latency).
    pub by_status: BTreeMap<u16, u64>,
    /// Answers that were 429, whatever produced them: the rate limit, a queued fault
    /// or a chaos storm.
    pub rate_limited: u64,
    /// Requests whose connection was closed instead of answered (not in `by_status`).
    pub disconnected: u64,
    /// Answers a [`FaultResponse::Delay`] held, counted once the hold is over and the answer
    /// is handed to the connection.
    pub released: u64,
}

impl RequestCounts {
    /// The share of all requests received that were answered 429, from 0 to 1.
    pub fn rate_limited_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.rate_limited as f64 / self.total as f64
        }
    }

    /// How many requests used this method, e.g. `"POST"`.
    pub fn method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }

    pub(crate) fn arrived(&mut self, method: &str) {
        self.total += 1;
        *self.by_method.entry(method.to_owned()).or_default() += 1;
    }

    pub(crate) fn answered(&mut self, status: u16) {
        *self.by_status.entry(status).or_default() += 1;
        if status == 429 {
            self.rate_limited += 1;
        }
    }
}

/// One request as the sandbox received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without the leading `?`.
    pub query: Option<String>,
    /// When the request arrived (before any configured latency).
    pub at: std::time::Instant,
    /// The status the sandbox answered with. It is 0 while the answer is still being
    /// worked out, so a request seen mid-flight is not mistaken for a finished one.
    /// For a `disconnected` request it is the status of the work whose answer was
    /// never sent.
    pub status: u16,
    /// The work was done but the connection was closed instead of answered (a
    /// [`FaultResponse::Disconnect`] or chaos); the client saw no status at all.
    pub disconnected: bool,
    /// The request's body, when it was JSON, or the text fields of a `multipart/form-data`
    /// body as a JSON object: what contract tests check against the provider's request
    /// schemas.
    pub body: Option<serde_json::Value>,
    /// The answer's body as the sandbox worked it out, when it was JSON (before any
    /// injected cut): what contract tests check against the provider's response schemas.
    pub response_body: Option<serde_json::Value>,
}
