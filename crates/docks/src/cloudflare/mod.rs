//! Cloudflare: web services (a Pages project and a direct-upload deployment) and domains (a
//! zone with its DNS records), on Cloudflare's API.
//!
//! Written against Cloudflare's published OpenAPI document (`/accounts/{account_id}/pages/
//! projects`, their `deployments`, `/zones`, `/zones/{zone_id}/dns_records`,
//! `/user/tokens/verify`; every answer in the `{success, errors, messages, result}`
//! envelope; listings paged with `page`/`per_page` and described by `result_info`). The
//! direct upload of a deployment's files, which the document leaves out, follows Cloudflare's
//! own CLI, wrangler (see `api.rs` and `pages.rs`). The rate limit is not in the document: Cloudflare's API docs give 1,200
//! requests per five minutes per user, which seeds the dock's budget (`budget.rs`); a 429
//! comes with `Retry-After`.

mod adapter;
pub mod api;
mod domain;
mod pages;

pub use adapter::{CloudflareAdapter, DockSettings};
pub use domain::{DomainConfig, MARKER_RECORD, ZoneStep};
pub use pages::{
    MAX_ASSET_SIZE, PRODUCTION_BRANCH, PagesStep, WebServiceConfig, asset_hash, content_type,
    project_name,
};

/// Cloudflare's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
