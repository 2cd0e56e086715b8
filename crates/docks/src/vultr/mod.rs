//! Vultr: instances as servers, DNS domains as domains, managed databases as databases.
//!
//! Written against Vultr's published OpenAPI description (paths relative to
//! `https://api.vultr.com/v2`, errors as `{"error": "<message>", "status": N}`, cursor
//! pagination through `meta.links.next`). Vultr documents 30 requests a second per source IP,
//! which seeds the dock's budget (`budget.rs`, `documented_limit`).

mod adapter;
pub mod api;
mod database;
mod domain;
mod instance;

pub use adapter::{VultrAdapter, VultrStep};
pub use database::DatabaseConfig;
pub use domain::{DomainConfig, MARKER_RECORD};
pub use instance::{SHARED_TAG, ServerConfig};

/// Vultr's public API root; every path of its spec is relative to it.
pub const DEFAULT_BASE_URL: &str = "https://api.vultr.com/v2";
