//! `/api/v1/{servers,web-services,domains,databases}`: the four universal collections.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_core::{ProvisioningSource, ProvisioningState, Resource, ResourceId, ResourceKind};
use stackdock_store::{Page, ResourceFilter, ResourceKey};

use super::body::JsonObject;
use super::page::{Listing, PageQuery};
use super::{path_error, query_error};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view;

pub(crate) fn kind_of(collection: &str) -> Result<ResourceKind, ApiError> {
    ResourceKind::from_collection(collection).ok_or_else(|| {
        ApiError::not_found(format!(
            "no collection {collection:?}; expected servers, web-services, domains or databases"
        ))
    })
}

pub(crate) fn parse_id(text: &str) -> Result<ResourceId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a resource id (a UUID)")))
}

/// The row, if it exists in the caller's org (and in this collection, when one is named).
pub(crate) async fn load(
    state: &AppState,
    org: stackdock_core::OrgId,
    kind: Option<ResourceKind>,
    id: &str,
) -> Result<Resource, ApiError> {
    let id = parse_id(id)?;
    let r = state.store.get_resource(org, id).await?;
    match kind {
        Some(k) if r.kind() != k => Err(ApiError::not_found(format!(
            "{} {id} not found",
            k.as_str()
        ))),
        _ => Ok(r),
    }
}

/// The body of `POST /api/v1/{collection}`, for the API document: the dock, and the config
/// that dock's schema for the kind describes (`GET /api/v1/docks/{dock}/schema/{collection}`).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub(crate) struct CreateBody {
    /// The dock's id or name.
    dock: String,
    /// The config fields, as the dock's schema for the kind describes them.
    #[schemars(flatten)]
    config: serde_json::Map<String, serde_json::Value>,
}

#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    pub(crate) kind: Option<String>,
    pub(crate) dock: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) source: Option<String>,
    /// Rows of this provider (`digitalocean`, ...), whichever of its docks.
    pub(crate) provider: Option<String>,
    /// Rows whose name contains this text (ignoring ASCII case).
    pub(crate) name: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    pub(crate) limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    pub(crate) cursor: Option<String>,
}

/// `GET /api/v1/{collection}`: a page of one collection, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(collection) = path.map_err(path_error)?;
    let kind = kind_of(&collection)?;
    list_filtered(state, caller, &uri, Some(kind), query).await
}

/// `GET /api/v1/resources`: a page of all four collections at once, newest first, `?kind=` to
/// narrow.
pub(crate) async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    list_filtered(state, caller, &uri, None, query).await
}

async fn list_filtered(
    state: AppState,
    caller: Caller,
    uri: &Uri,
    collection: Option<ResourceKind>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let (listing, rows) = list_page(&state, caller.0.org_id, collection, &q).await?;
    Ok(listing.answer(uri, &rows, view::ResourceView::from))
}

/// A page of resources as `q` asks (of `collection` only, when given), and the listing its
/// cursors belong to: what the API's lists and the web UI's dashboard both read.
pub(crate) async fn list_page(
    state: &AppState,
    org: stackdock_core::OrgId,
    collection: Option<ResourceKind>,
    q: &ListQuery,
) -> Result<(Listing, Page<Resource, ResourceKey>), ApiError> {
    let kind = match (collection, &q.kind) {
        (Some(k), _) => Some(k),
        (None, Some(text)) => Some(
            text.parse::<ResourceKind>()
                .map_err(|e| ApiError::bad_request(format!("kind: {e}")))?,
        ),
        (None, None) => None,
    };
    let mut filter = ResourceFilter {
        kind,
        ..Default::default()
    };
    if let Some(d) = &q.dock {
        filter.dock_id = Some(super::docks::resolve(state, org, d).await?.id);
    }
    if let Some(s) = &q.state {
        filter.state = Some(
            s.parse::<ProvisioningState>()
                .map_err(|e| ApiError::bad_request(format!("state: {e}")))?,
        );
    }
    if let Some(s) = &q.source {
        filter.source = Some(
            s.parse::<ProvisioningSource>()
                .map_err(|e| ApiError::bad_request(format!("source: {e}")))?,
        );
    }
    if let Some(p) = &q.provider {
        let provider: stackdock_core::Provider = p
            .parse()
            .map_err(|e: String| ApiError::bad_request(format!("provider: {e}")))?;
        filter.provider = Some(provider.as_str().to_string());
    }
    if let Some(n) = &q.name {
        if n.len() > 200 {
            return Err(ApiError::bad_request("name: at most 200 characters"));
        }
        filter.name = Some(n.clone());
    }
    let listing = Listing::new(collection.map_or("resources", ResourceKind::collection))
        .filter("kind", filter.kind)
        .filter("dock", filter.dock_id)
        .filter("state", filter.state.map(ProvisioningState::as_str))
        .filter("source", filter.source.map(ProvisioningSource::as_str))
        .filter("provider", filter.provider.as_deref())
        .filter("name", filter.name.as_deref());
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let rows = state.store.list_resources(org, &filter, &page).await?;
    Ok((listing, rows))
}

/// Records the intent and answers 202 with the row in `provisioning`; the workers do the rest.
/// With an `Idempotency-Key` header, a repeat of the same request answers the first row (with
/// `Idempotent-Replayed: true`) instead of making a second resource.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    mut body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor();
    let Path(collection) = path.map_err(path_error)?;
    let kind = kind_of(&collection)?;
    let dock_ref = body.take_string("dock")?;
    // A dock the body names that is not there is a field error; any other failure to read
    // it is the server's, and answered as such.
    let dock = super::docks::resolve(&state, actor.org_id, &dock_ref)
        .await
        .map_err(|e| match e.status {
            StatusCode::NOT_FOUND => ApiError::invalid(format!("dock: {}", e.message)),
            _ => e,
        })?;
    if kind == ResourceKind::WebService {
        super::files::check_uploaded(&state, &body.0)?;
    }
    let key =
        match headers.get("idempotency-key") {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::invalid("Idempotency-Key: must be visible ASCII characters")
            })?),
        };
    let done = state
        .engine
        .request_provision_once(actor, &dock, kind, body.0, key)
        .await?;
    let replayed = [(
        "idempotent-replayed",
        if done.replayed { "true" } else { "false" },
    )];
    Ok((
        StatusCode::ACCEPTED,
        replayed,
        Json(view::resource(&done.resource, Some(&done.operation))),
    ))
}

/// `POST /api/v1/{collection}/{id}/cancel`: stops a provision at its next step boundary and
/// undoes what it made; 202 with the row (it settles `failed`, code `cancelled`).
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((collection, id)) = path.map_err(path_error)?;
    let kind = kind_of(&collection)?;
    act_on(state, caller, Some(kind), &id, Action::Cancel).await
}

/// `POST /api/v1/resources/{id}/cancel`: the same, whatever the resource's kind.
pub(crate) async fn cancel_any(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = path.map_err(path_error)?;
    act_on(state, caller, None, &id, Action::Cancel).await
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<view::ResourceView>, ApiError> {
    let actor = caller.actor();
    let Path((collection, id)) = path.map_err(path_error)?;
    let r = load(&state, actor.org_id, Some(kind_of(&collection)?), &id).await?;
    Ok(Json(view::resource(&r, None)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor();
    let Path((collection, id)) = path.map_err(path_error)?;
    let r = load(&state, actor.org_id, Some(kind_of(&collection)?), &id).await?;
    let (resource, op) = state.engine.request_deprovision(actor, r.id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view::resource(&resource, Some(&op))),
    ))
}

/// Every provider call made for the resource, oldest first, a page at a time: the journal.
pub(crate) async fn api_calls(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Path((collection, id)) = path.map_err(path_error)?;
    let Query(q) = query.map_err(query_error)?;
    let r = load(&state, actor.org_id, Some(kind_of(&collection)?), &id).await?;
    let listing = Listing::new("api-calls").filter("resource", Some(r.id));
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let calls = state.store.api_calls(actor.org_id, r.id, &page).await?;
    Ok(listing.answer(&uri, &calls, view::ApiCallView::from))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    cursor: Option<String>,
    /// Read on after the line with this `seq` (the last line a follower has), instead of a
    /// `cursor`.
    #[schemars(range(min = 0))]
    after: Option<i64>,
}

/// `GET /api/v1/resources/{id}/logs`: the resource's deploy log, oldest first, a page at a
/// time. A follower reads on with `?after=` (the `seq` of the last line it has) rather than a
/// cursor, since the last page of a log in progress has no `next`. The log stays after the
/// resource is gone.
pub(crate) async fn deploy_log(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Path(id) = path.map_err(path_error)?;
    let Query(q) = query.map_err(query_error)?;
    let r = load(&state, actor.org_id, None, &id).await?;
    let listing = Listing::new("logs").filter("resource", Some(r.id));
    let mut page = listing.request::<i64>(q.limit.as_deref(), q.cursor.as_deref())?;
    match q.after {
        Some(_) if page.after.is_some() => {
            return Err(ApiError::bad_request(
                "after: give either `after` or `cursor`, not both",
            ));
        }
        Some(n) if n < 0 => return Err(ApiError::bad_request("after: must not be negative")),
        Some(n) => page.after = Some(n),
        None => {}
    }
    let rows = state
        .store
        .deploy_log_since(
            actor.org_id,
            Some(r.id),
            page.after.unwrap_or(0),
            page.limit.saturating_add(1),
        )
        .await?;
    let lines = Page::from_rows(rows, page.limit, |l| l.seq);
    Ok(listing.answer(&uri, &lines, view::DeployLogView::from))
}

/// `GET /api/v1/resources/{id}`: a resource whatever its kind.
pub(crate) async fn get_any(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<view::ResourceView>, ApiError> {
    let actor = caller.actor();
    let Path(id) = path.map_err(path_error)?;
    let r = load(&state, actor.org_id, None, &id).await?;
    Ok(Json(view::resource(&r, None)))
}

/// `DELETE /api/v1/resources/{id}`: deprovision a resource whatever its kind.
pub(crate) async fn delete_any(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor();
    let Path(id) = path.map_err(path_error)?;
    let r = load(&state, actor.org_id, None, &id).await?;
    let (resource, op) = state.engine.request_deprovision(actor, r.id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view::resource(&resource, Some(&op))),
    ))
}

/// `POST /api/v1/{collection}/{id}/retry`: provisions a failed resource again, 202.
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((collection, id)) = path.map_err(path_error)?;
    let kind = kind_of(&collection)?;
    act_on(state, caller, Some(kind), &id, Action::Retry).await
}

/// `POST /api/v1/resources/{id}/retry`: the same, whatever the resource's kind.
pub(crate) async fn retry_any(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = path.map_err(path_error)?;
    act_on(state, caller, None, &id, Action::Retry).await
}

/// What a `POST /{collection}/{id}/<action>` asks of a resource.
#[derive(Clone, Copy)]
enum Action {
    Retry,
    Cancel,
}

/// Loads the resource (of `kind`, if given) and asks the engine for `action`; 202 with the row.
async fn act_on(
    state: AppState,
    caller: Caller,
    kind: Option<ResourceKind>,
    id: &str,
    action: Action,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let actor = caller.actor();
    let r = load(&state, actor.org_id, kind, id).await?;
    let (resource, op) = match action {
        Action::Retry => state.engine.request_retry(actor, r.id).await?,
        Action::Cancel => state.engine.request_cancel(actor, r.id).await?,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(view::resource(&resource, Some(&op))),
    ))
}
