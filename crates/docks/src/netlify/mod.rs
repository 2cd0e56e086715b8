//! Netlify: web services (a site and a file-digest deploy) and domains (a DNS zone with its
//! records), on Netlify's API.
//!
//! Written against Netlify's published Swagger 2.0 description (`/sites`, `/deploys`,
//! `/dns_zones`, errors as `{code, message}`, bare arrays paged with `page`/`per_page`).
//! Netlify documents no rate limit: the dock's budget starts from the guess in `budget.rs`.

mod adapter;
pub mod api;
mod domain;

pub use adapter::{ASYNC_ABOVE, NetlifyAdapter, NetlifyStep, WebServiceConfig, site_name};
pub use domain::{DomainConfig, MARKER_RECORD, ZoneStep};

/// Netlify's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.netlify.com/api/v1";
