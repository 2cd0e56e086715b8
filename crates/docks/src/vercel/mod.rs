//! Vercel: web services (a project and a deployment from files) and domains (a project
//! domain with its verification state), on Vercel's REST API.
//!
//! Written against the OpenAPI document Vercel publishes (`/v11/projects`, `/v13/deployments`,
//! `/v2/files`), with errors read as Vercel's REST docs describe them
//! (`{"error": {"code", "message"}}`). Vercel documents no rate limit in the spec: the dock's
//! budget starts from the guess in `budget.rs`, tightened by the `X-RateLimit-*` headers.

mod adapter;
pub mod api;
mod domain;

pub use adapter::{DockSettings, VercelAdapter, VercelStep, WebServiceConfig, project_name};
pub use domain::{DomainConfig, DomainStep};

/// Vercel's public API root.
pub const DEFAULT_BASE_URL: &str = "https://api.vercel.com";
