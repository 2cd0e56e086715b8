//! `/api/v1/audit`: the organisation's audit log, newest first, searched by action, outcome,
//! actor and resource, a page at a time (`before` is the id of the last row of the page before).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use stackdock_core::Outcome;
use stackdock_store::AuditFilter;

use super::query_error;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view::AuditView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<u32>,
    /// Only entries older than this id: the cursor for the next page.
    before: Option<i64>,
    action: Option<String>,
    outcome: Option<String>,
    /// A user id.
    actor: Option<String>,
    /// As written on the rows, e.g. `servers/<id>` or `docks/<id>`.
    resource: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    let outcome = q
        .outcome
        .as_deref()
        .map(str::parse::<Outcome>)
        .transpose()
        .map_err(|e| {
            ApiError::bad_request(format!(
                "outcome: {e}; one of requested, success, failure, denied"
            ))
        })?;
    let by = q
        .actor
        .as_deref()
        .map(|a| {
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("actor: {a:?} is not a user id")))
        })
        .transpose()?;
    let filter = AuditFilter {
        limit,
        before: q.before,
        action: q.action,
        outcome,
        actor: by,
        resource: q.resource,
    };
    let rows = state.store.search_audit(actor.org_id, &filter).await?;
    Ok(Json(rows.iter().map(AuditView::from).collect()))
}
