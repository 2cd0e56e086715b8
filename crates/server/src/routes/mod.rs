//! The route table: every route with the access it needs, in one place ([`table`]). The router
//! is built from the table and nothing else, so a route cannot exist without a declared access,
//! and the guard in front of each handler authenticates the caller, checks the permission and
//! writes an audit row for every refusal before the handler runs.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use stackdock_core::{Outcome, Permission, RequestId};
use stackdock_store::Write;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

mod audit;
mod body;
mod docks;
mod events;
mod files;
mod keys;
mod members;
mod operations;
mod resources;
pub(crate) mod sessions;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (the health check).
    Public,
    /// Any member of the organisation, whatever their role (who am I; one's own tokens).
    Member,
    /// A member whose role grants the permission.
    Needs(Permission),
}

/// One route of the API as the table declares it.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

type Entry = (Method, &'static str, Access, MethodRouter<AppState>);

/// Every route, its method and the access it needs.
fn table() -> Vec<Entry> {
    use Access::{Member, Needs, Public};
    use Permission::*;
    vec![
        (Method::GET, "/api/v1/health", Public, get(health)),
        (Method::GET, "/api/v1/me", Member, get(docks::me)),
        (
            Method::PUT,
            "/api/v1/me/password",
            Member,
            put(sessions::set_password),
        ),
        (
            Method::POST,
            "/api/v1/sessions",
            Public,
            post(sessions::sign_in),
        ),
        (
            Method::POST,
            "/api/v1/invitations/accept",
            Public,
            post(sessions::accept_invitation),
        ),
        (
            Method::DELETE,
            "/api/v1/sessions",
            Member,
            delete(sessions::sign_out),
        ),
        (
            Method::GET,
            "/api/v1/docks",
            Needs(DocksRead),
            get(docks::list),
        ),
        (
            Method::POST,
            "/api/v1/docks",
            Needs(DocksFull),
            post(docks::add),
        ),
        (
            Method::GET,
            "/api/v1/docks/{dock}",
            Needs(DocksRead),
            get(docks::get),
        ),
        (
            Method::PATCH,
            "/api/v1/docks/{dock}",
            Needs(DocksFull),
            patch(docks::update),
        ),
        (
            Method::DELETE,
            "/api/v1/docks/{dock}",
            Needs(DocksFull),
            delete(docks::remove),
        ),
        (
            Method::POST,
            "/api/v1/docks/{dock}/sync",
            Needs(ProvisioningFull),
            post(docks::sync),
        ),
        (
            Method::GET,
            "/api/v1/docks/{dock}/schema/{collection}",
            Needs(DocksRead),
            get(docks::schema),
        ),
        (
            Method::GET,
            "/api/v1/operations",
            Needs(ProvisioningRead),
            get(operations::list),
        ),
        (
            Method::GET,
            "/api/v1/operations/{id}",
            Needs(ProvisioningRead),
            get(operations::get),
        ),
        (
            Method::GET,
            "/api/v1/audit",
            Needs(AuditRead),
            get(audit::list),
        ),
        (
            Method::POST,
            "/api/v1/files/missing",
            Needs(ProvisioningFull),
            post(files::missing),
        ),
        // The upload route enforces its own size limit, with an answer that says so.
        (
            Method::PUT,
            "/api/v1/files/{sha256}",
            Needs(ProvisioningFull),
            put(files::upload).layer(DefaultBodyLimit::disable()),
        ),
        (
            Method::GET,
            "/api/v1/keys",
            Needs(KeysFull),
            get(keys::list),
        ),
        (
            Method::POST,
            "/api/v1/keys/rotate",
            Needs(KeysFull),
            post(keys::rotate),
        ),
        (
            Method::DELETE,
            "/api/v1/keys/{key}",
            Needs(KeysFull),
            delete(keys::retire),
        ),
        (
            Method::GET,
            "/api/v1/events",
            Needs(ProvisioningRead),
            get(events::stream),
        ),
        (Method::GET, "/api/v1/members", Member, get(members::list)),
        (
            Method::POST,
            "/api/v1/members",
            Needs(MembersFull),
            post(members::add),
        ),
        (
            Method::PATCH,
            "/api/v1/members/{user}",
            Needs(MembersFull),
            patch(members::set_role),
        ),
        (
            Method::DELETE,
            "/api/v1/members/{user}",
            Needs(MembersFull),
            delete(members::remove),
        ),
        (
            Method::GET,
            "/api/v1/tokens",
            Member,
            get(members::list_tokens),
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            Member,
            post(members::create_token),
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/{id}",
            Member,
            delete(members::revoke_token),
        ),
        (
            Method::GET,
            "/api/v1/resources",
            Needs(ProvisioningRead),
            get(resources::list_all),
        ),
        (
            Method::GET,
            "/api/v1/resources/{id}",
            Needs(ProvisioningRead),
            get(resources::get_any),
        ),
        (
            Method::DELETE,
            "/api/v1/resources/{id}",
            Needs(ProvisioningFull),
            delete(resources::delete_any),
        ),
        (
            Method::GET,
            "/api/v1/resources/{id}/logs",
            Needs(ProvisioningRead),
            get(resources::deploy_log),
        ),
        (
            Method::POST,
            "/api/v1/resources/{id}/retry",
            Needs(ProvisioningFull),
            post(resources::retry_any),
        ),
        (
            Method::POST,
            "/api/v1/resources/{id}/cancel",
            Needs(ProvisioningFull),
            post(resources::cancel_any),
        ),
        (
            Method::GET,
            "/api/v1/{collection}",
            Needs(ProvisioningRead),
            get(resources::list),
        ),
        (
            Method::POST,
            "/api/v1/{collection}",
            Needs(ProvisioningFull),
            post(resources::create),
        ),
        (
            Method::GET,
            "/api/v1/{collection}/{id}",
            Needs(ProvisioningRead),
            get(resources::get),
        ),
        (
            Method::DELETE,
            "/api/v1/{collection}/{id}",
            Needs(ProvisioningFull),
            delete(resources::delete),
        ),
        (
            Method::GET,
            "/api/v1/{collection}/{id}/api-calls",
            Needs(ProvisioningRead),
            get(resources::api_calls),
        ),
        (
            Method::POST,
            "/api/v1/{collection}/{id}/retry",
            Needs(ProvisioningFull),
            post(resources::retry),
        ),
        (
            Method::POST,
            "/api/v1/{collection}/{id}/cancel",
            Needs(ProvisioningFull),
            post(resources::cancel),
        ),
    ]
}

/// The routes as declared: what a test walks to check every route against every role.
pub fn routes() -> Vec<RouteSpec> {
    table()
        .into_iter()
        .map(|(method, path, access, _)| RouteSpec {
            method,
            path,
            access,
        })
        .collect()
}

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (_, path, access, handler) in table() {
        let guard = axum::middleware::from_fn_with_state((state.clone(), access), guard);
        router = router.route(path, handler.route_layer(guard));
    }
    // Both in our error shape: a path no route has is 404; a route asked with a method it
    // does not take is 405, and axum adds the `Allow` header listing the ones it does.
    router
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::not_found(format!("no route {method} {}", uri.path()))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} does not take {method}", uri.path()),
            )
        })
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Authenticates the caller and checks the route's access before its handler runs; a refusal
/// is answered 403 naming the permission and written to the audit log as `denied`. Every answer
/// carries the request's id in `X-Request-Id`, the id its audit rows are written with.
async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let (request_id, mut response) = checked(&state, access, req, next).await;
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn checked(
    state: &AppState,
    access: Access,
    mut req: Request,
    next: Next,
) -> (RequestId, Response) {
    let permission = match access {
        Access::Public => return (RequestId::new(), next.run(req).await),
        Access::Member => None,
        Access::Needs(p) => Some(p),
    };
    let caller = match Caller::authenticate(state, req.headers(), req.method()).await {
        Ok(c) => c,
        Err(e) => return (RequestId::new(), e.into_response()),
    };
    let request_id = caller.1;
    if let Some(p) = permission
        && !caller.0.role.allows(p)
    {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
        let entry = caller
            .actor()
            .audit(format!("{} {route}", req.method()), Outcome::Denied)
            .details(serde_json::json!({"permission": p, "role": caller.0.role}));
        if let Err(e) = state
            .store
            .apply(stackdock_store::Batch::new().push(Write::Audit(entry)))
            .await
        {
            // The refusal stands either way; a request is never let through for want of a row.
            tracing::error!(error = %e, "could not write the audit row of a refused request");
        }
        let refused = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} lacks permission {p}", caller.0.role),
        );
        return (request_id, refused.into_response());
    }
    req.extensions_mut().insert(caller);
    (request_id, next.run(req).await)
}

/// Turns extractor rejections into our error shape, naming what was wrong.
pub(crate) fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("invalid path: {}", e.body_text()))
}

pub(crate) fn body_error(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::bad_request(format!("invalid body: {}", e.body_text()))
}

pub(crate) fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query: {}", e.body_text()))
}
