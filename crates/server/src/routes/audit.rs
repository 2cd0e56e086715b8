//! `/api/v1/audit`: the organisation's audit log, newest first, searched by action, outcome,
//! actor and resource, a page at a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_core::Outcome;
use stackdock_store::AuditFilter;

use super::page::Listing;
use super::query_error;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view::AuditView;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    cursor: Option<String>,
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
    uri: Uri,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
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
        action: q.action,
        outcome,
        actor: by,
        resource: q.resource,
    };
    let listing = Listing::new("audit")
        .filter("action", filter.action.as_deref())
        .filter("outcome", filter.outcome.map(Outcome::as_str))
        .filter("actor", filter.actor)
        .filter("resource", filter.resource.as_deref());
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let rows = state
        .store
        .search_audit(actor.org_id, &filter, &page)
        .await?;
    Ok(listing.answer(&uri, &rows, AuditView::from))
}
