//! DigitalOcean: droplets as servers, domains with their records, managed database
//! clusters as databases.
//!
//! Written against DigitalOcean's published OpenAPI description (`/v2/droplets`,
//! `/v2/domains`, `/v2/databases`, errors as `{id, message, request_id}`, pagination
//! through `links.pages`, rate limits in `ratelimit-*` headers). `api.rs` is the client,
//! `adapter.rs` the adapter and the droplets' provisioning, `domain.rs` and `database.rs`
//! the provisioning of the other two kinds.

mod adapter;
pub mod api;
mod database;
mod domain;

pub use adapter::DigitalOceanAdapter;

/// DigitalOcean's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.digitalocean.com";
