//! `/api/v1/audit`: the organisation's audit log, newest first.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use stackdock_core::AuditEntry;

use super::query_error;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<u32>,
    /// Only entries older than this id: the cursor for the next page.
    before: Option<i64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    Ok(Json(
        state
            .store
            .list_audit(actor.org_id, limit, q.before)
            .await?,
    ))
}
