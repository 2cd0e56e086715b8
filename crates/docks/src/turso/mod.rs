//! Turso: databases, on Turso's Platform API.
//!
//! Written against Turso's published OpenAPI description (`/v1/organizations/{org}/groups`
//! and `/databases`, errors as `{"error": "<message>"}`, no pagination). Every call names the
//! organization, which a Turso dock carries in its settings (`organization`). Turso documents
//! no rate limit: the dock's budget starts from the guess in `budget.rs`.

mod adapter;
pub mod api;

pub use adapter::{DatabaseConfig, DockSettings, TursoAdapter, TursoStep, database_name};

/// Turso's public Platform API root.
pub const DEFAULT_BASE_URL: &str = "https://api.turso.tech";
