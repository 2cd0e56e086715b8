//! DigitalOcean: droplets as servers.
//!
//! Written against DigitalOcean's published OpenAPI description (`/v2/droplets`, errors as
//! `{id, message, request_id}`, pagination through `links.pages`, rate limits in
//! `ratelimit-*` headers).

mod adapter;
pub mod api;

pub use adapter::DigitalOceanAdapter;

/// DigitalOcean's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.digitalocean.com";
