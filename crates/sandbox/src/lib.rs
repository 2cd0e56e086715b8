//! Simulators of the cloud providers' HTTP APIs, served for real on loopback.
//!
//! Each sandbox is an HTTP server that answers like the provider's public API does:
//! the same paths, bodies, status codes, error envelopes, pagination and rate-limit
//! headers, as written down in the provider's own OpenAPI document. Tests can read
//! the sandbox's inventory, queue faults (errors, lost responses, delays, 429s) and
//! look at every request it received.
//!
//! Who uses it: the integration tests of the other crates, the benchmarks, and
//! `stackdock up --sandbox`. Production code paths never depend on this crate; a
//! provider client talks to a sandbox only because it was handed the sandbox's
//! `base_url()` instead of the provider's.
//!
//! Layout: provider-independent machinery lives in [`fault`] (fault queue),
//! `ratelimit` (per-token sliding window), `front_door` (the middleware that
//! authenticates, limits, logs, injects faults and adds latency), and `server`
//! (bind/serve/shutdown). Each provider gets its own module, e.g. [`digitalocean`].

pub mod digitalocean;
pub mod fault;
mod front_door;
mod ratelimit;
mod server;

pub use digitalocean::{DigitalOceanSandbox, DoSandboxConfig};
pub use fault::{Fault, FaultResponse};
pub use ratelimit::BucketLimit;

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
    pub status: u16,
}
