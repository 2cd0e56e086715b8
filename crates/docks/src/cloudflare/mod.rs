//! Cloudflare: domains (a zone with its DNS records), on Cloudflare's API.
//!
//! Written against Cloudflare's published OpenAPI document (`/zones`,
//! `/zones/{zone_id}/dns_records`, `/user/tokens/verify`; every answer in the `{success,
//! errors, messages, result}` envelope; listings paged with `page`/`per_page` and described
//! by `result_info`). The rate limit is not in the document: Cloudflare's API docs give 1,200
//! requests per five minutes per user, which seeds the dock's budget (`budget.rs`); a 429
//! comes with `Retry-After`.

mod adapter;
pub mod api;
mod domain;

pub use adapter::{CloudflareAdapter, DockSettings};
pub use domain::{DomainConfig, MARKER_RECORD, ZoneStep};

/// Cloudflare's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
