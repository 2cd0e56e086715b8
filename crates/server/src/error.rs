//! The one place where errors become HTTP answers: `{"error": {"code", "message"}}` with a
//! fitting status. The message names the field or the thing that is wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stackdock_engine::EngineError;
use stackdock_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            StoreError::Refused { .. } => Self::new(StatusCode::CONFLICT, "refused", e.to_string()),
            StoreError::VersionConflict { .. } | StoreError::IllegalTransition(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Fenced(_) | StoreError::Corrupt(_) | StoreError::Database(_) => {
                tracing::error!(error = ?e, "store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store failed; see the server log",
                )
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::InvalidConfig(c) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_config",
                format!("{}: {}", c.field, c.message),
            ),
            e @ (EngineError::NoAdapter(_) | EngineError::UnsupportedKind { .. }) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported",
                e.to_string(),
            ),
            e @ EngineError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            e @ EngineError::KeyRefused { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "key_refused",
                e.to_string(),
            ),
            e @ EngineError::KeyUnchecked { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "key_unchecked",
                format!("{e}; try again, or connect without checking (--no-verify)"),
            ),
            e @ EngineError::DockKey { .. } => {
                tracing::error!(error = ?e, "dock key");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "dock_key", e.to_string())
            }
            e @ EngineError::SealedConfig { .. } => {
                tracing::error!(error = ?e, "sealed config");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sealed_config",
                    e.to_string(),
                )
            }
        }
    }
}
