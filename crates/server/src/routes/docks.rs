//! `/api/v1/docks`: connect, list, inspect, remove and sync provider accounts.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde_json::Value;
use stackdock_core::{Dock, DockId, DockName, OrgId, Provider, SecretString};
use stackdock_docks::RateLimit;
use stackdock_engine::intent::{DockUpdate, NewDock};
use stackdock_store::StoreError;

use super::body::JsonObject;
use super::page::{Listing, PageQuery};
use super::{path_error, query_error};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view::{ConfigSchemaView, DockView, MeView, OperationView};

/// Finds a dock by id or by name, as every `--dock` accepts either.
pub(crate) async fn resolve(state: &AppState, org: OrgId, text: &str) -> Result<Dock, ApiError> {
    if let Ok(id) = text.parse::<DockId>() {
        // Only "not there" is a 404: a store that cannot answer says so as itself.
        return state.store.get_dock(org, id).await.map_err(|e| match e {
            StoreError::NotFound { .. } => ApiError::not_found(format!("dock {text} not found")),
            other => ApiError::from(other),
        });
    }
    let name = DockName::try_from(text.to_string())
        .map_err(|_| ApiError::not_found(format!("dock {text:?} not found")))?;
    state
        .store
        .find_dock_by_name(org, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dock {text:?} not found")))
}

pub(crate) async fn me(caller: Caller) -> Json<MeView> {
    let p = &caller.0;
    Json(MeView {
        user_id: p.user_id,
        email: p.email.clone(),
        org_id: p.org_id,
        role: p.role,
        permissions: p.role.permissions().to_vec(),
    })
}

/// `GET /api/v1/docks`: a page of the org's docks, by name.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
    let listing = Listing::new("docks");
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let docks = state.store.list_docks(actor.org_id, &page).await?;
    Ok(listing.answer(&uri, &docks, DockView::from))
}

/// The body of `POST /api/v1/docks`, for the API document: [`add`] reads these fields one by
/// one from the object so each error names its field.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewDockBody {
    /// `digitalocean`, `vultr`, `cloudflare`, `vercel`, `netlify`, `turso`, ...
    provider: String,
    name: String,
    /// Sealed at once; never shown again.
    api_key: String,
    /// Another base URL for the provider's API (http or https).
    api_url: Option<String>,
    /// Calls per period, e.g. `250/min`; the provider's documented limit when left out.
    rate_limit: Option<String>,
    /// The provider's own dock settings (a Turso organization).
    settings: Option<serde_json::Map<String, Value>>,
    /// Check the key with the provider first (default true).
    verify: Option<bool>,
}

/// The body of `PATCH /api/v1/docks/{dock}`, for the API document: [`update`] reads these
/// fields one by one; at least one is given.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct DockPatch {
    /// A new API key; it cannot be removed.
    api_key: Option<String>,
    /// `null` goes back to the provider's own URL.
    api_url: Option<Option<String>>,
    /// `null` goes back to the provider's documented limits.
    rate_limit: Option<Option<String>>,
    /// Check a new key or URL with the provider before saving it (default true).
    verify: Option<bool>,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    mut body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor();
    let provider: Provider = body
        .take_string("provider")?
        .parse()
        .map_err(|e: String| ApiError::invalid(format!("provider: {e}")))?;
    let name = DockName::try_from(body.take_string("name")?)
        .map_err(|e| ApiError::invalid(format!("name: {e}")))?;
    // Whether the provider needs one is the adapter's to say (a Docker dock without a
    // registry has none); the engine refuses a missing one where it does.
    let api_key = SecretString::new(body.take_optional_string("api_key")?.unwrap_or_default());
    let api_url = body.take_optional_string("api_url")?;
    if let Some(u) = &api_url {
        check_url(u)?;
    }
    let rate_limit = body
        .take_optional_string("rate_limit")?
        .map(|t| parse_rate_limit(&t))
        .transpose()?;
    let settings = body.take_optional_object("settings")?;
    // A key is checked with the provider unless the caller says not to (`--no-verify`).
    let verify = body.take_bool_or("verify", true)?;
    body.no_more_fields()?;
    let dock = state
        .engine
        .add_dock(
            actor,
            NewDock {
                provider,
                name,
                api_key,
                api_base_url: api_url,
                rate_limit,
                settings,
                verify,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(DockView::from(&dock))))
}

pub(crate) fn check_url(u: &str) -> Result<(), ApiError> {
    let ok = url::Url::parse(u)
        .map(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "api_url: {u:?} is not an http(s) URL"
        )))
    }
}

fn parse_rate_limit(text: &str) -> Result<RateLimit, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid(format!("rate_limit: {e}")))
}

/// `PATCH /api/v1/docks/{dock}`: a new API key, base URL or rate limit (`null` goes back to
/// the provider's own URL or documented limits).
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    mut body: JsonObject,
) -> Result<Json<DockView>, ApiError> {
    let actor = caller.actor();
    let Path(text) = path.map_err(path_error)?;
    let dock = resolve(&state, actor.org_id, &text).await?;
    let api_key = match body.take_patch_string("api_key")? {
        None => None,
        Some(Some(key)) => Some(SecretString::new(key)),
        Some(None) => {
            return Err(ApiError::invalid(
                "api_key: cannot be removed, only replaced",
            ));
        }
    };
    let api_base_url = body.take_patch_string("api_url")?;
    if let Some(Some(u)) = &api_base_url {
        check_url(u)?;
    }
    let rate_limit = body
        .take_patch_string("rate_limit")?
        .map(|t| t.map(|t| parse_rate_limit(&t)).transpose())
        .transpose()?;
    let verify = body.take_bool_or("verify", true)?;
    body.no_more_fields()?;
    if api_key.is_none() && api_base_url.is_none() && rate_limit.is_none() {
        return Err(ApiError::invalid(
            "nothing to change: give api_key, api_url or rate_limit",
        ));
    }
    let update = DockUpdate {
        api_base_url,
        api_key,
        rate_limit,
        verify,
    };
    let dock = state.engine.update_dock(actor, dock, update).await?;
    Ok(Json(DockView::from(&dock)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DockView>, ApiError> {
    let actor = caller.actor();
    let Path(text) = path.map_err(path_error)?;
    let dock = resolve(&state, actor.org_id, &text).await?;
    Ok(Json(DockView::from(&dock)))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let actor = caller.actor();
    let Path(text) = path.map_err(path_error)?;
    let dock = resolve(&state, actor.org_id, &text).await?;
    state.engine.remove_dock(actor, &dock).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor();
    let Path(text) = path.map_err(path_error)?;
    let dock = resolve(&state, actor.org_id, &text).await?;
    let op = state.engine.request_sync(actor, &dock).await?;
    Ok((StatusCode::ACCEPTED, Json(OperationView::from(&op))))
}

/// The config a dock accepts for a kind: what the CLI and the web UI build forms from.
pub(crate) async fn schema(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<ConfigSchemaView>, ApiError> {
    let actor = caller.actor();
    let Path((text, collection)) = path.map_err(path_error)?;
    let dock = resolve(&state, actor.org_id, &text).await?;
    let kind = super::resources::kind_of(&collection)?;
    let adapter = state
        .engine
        .registry()
        .get(dock.provider)
        .ok_or_else(|| ApiError::invalid(format!("no adapter for {}", dock.provider)))?;
    let schema = adapter.config_schema(kind).ok_or_else(|| {
        ApiError::invalid(format!(
            "{} docks cannot provision {}",
            dock.provider,
            kind.collection()
        ))
    })?;
    Ok(Json(ConfigSchemaView {
        kind,
        provider: dock.provider.to_string(),
        schema: schema.json().clone(),
        sensitive: schema.sensitive().to_vec(),
    }))
}
