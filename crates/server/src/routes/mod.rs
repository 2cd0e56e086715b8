//! The route table. Each handler names the permission it needs as its first line.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::routing::{get, post, put};

use crate::AppState;
use crate::error::ApiError;

mod audit;
mod body;
mod docks;
mod events;
mod files;
mod operations;
mod resources;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/api/v1/me", get(docks::me))
        .route("/api/v1/docks", get(docks::list).post(docks::add))
        .route(
            "/api/v1/docks/{dock}",
            get(docks::get).patch(docks::update).delete(docks::remove),
        )
        .route("/api/v1/docks/{dock}/sync", post(docks::sync))
        .route(
            "/api/v1/docks/{dock}/schema/{collection}",
            get(docks::schema),
        )
        .route("/api/v1/operations", get(operations::list))
        .route("/api/v1/operations/{id}", get(operations::get))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/files/missing", post(files::missing))
        // The upload route enforces its own limit, with an answer that says so.
        .route(
            "/api/v1/files/{sha256}",
            put(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/resources", get(resources::list_all))
        .route(
            "/api/v1/resources/{id}",
            get(resources::get_any).delete(resources::delete_any),
        )
        .route("/api/v1/resources/{id}/retry", post(resources::retry_any))
        .route("/api/v1/resources/{id}/cancel", post(resources::cancel_any))
        .route(
            "/api/v1/{collection}",
            get(resources::list).post(resources::create),
        )
        .route(
            "/api/v1/{collection}/{id}",
            get(resources::get).delete(resources::delete),
        )
        .route(
            "/api/v1/{collection}/{id}/api-calls",
            get(resources::api_calls),
        )
        .route("/api/v1/{collection}/{id}/retry", post(resources::retry))
        .route("/api/v1/{collection}/{id}/cancel", post(resources::cancel))
        .fallback(|| async { ApiError::not_found("no such route") })
}

/// Turns extractor rejections into our error shape, naming what was wrong.
pub(crate) fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("invalid path: {}", e.body_text()))
}

pub(crate) fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query: {}", e.body_text()))
}
