//! `/api/v1/operations`: what the engine did or is doing, step by step, call by call.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use stackdock_core::OperationId;

use super::page::Listing;
use super::{path_error, query_error};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view::{ApiCallView, OperationDetailView, OperationView, StepView};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    resource_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    cursor: Option<String>,
}

/// `GET /api/v1/operations`: a page of the org's operations (of one resource with
/// `resource_id`), newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
    let resource = q
        .resource_id
        .as_deref()
        .map(|id| {
            super::resources::parse_id(id)
                .map_err(|e| ApiError::bad_request(format!("resource_id: {}", e.message)))
        })
        .transpose()?;
    let listing = Listing::new("operations").filter("resource_id", resource);
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let ops = state
        .store
        .list_operations(actor.org_id, resource, &page)
        .await?;
    Ok(listing.answer(&uri, &ops, OperationView::from))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let actor = caller.actor();
    let Path(text) = path.map_err(path_error)?;
    let id: OperationId = text
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an operation id (a UUID)")))?;
    let op = state.store.get_operation(actor.org_id, id).await?;
    let steps = state.store.steps(actor.org_id, id).await?;
    let calls = state
        .store
        .api_calls_for_operation(actor.org_id, id)
        .await?;
    Ok(Json(json!(OperationDetailView {
        operation: OperationView::from(&op),
        steps: steps.iter().map(StepView::from).collect(),
        api_calls: calls.iter().map(ApiCallView::from).collect(),
    })))
}
