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
use crate::view::*;
use doc::Doc;
pub use doc::ERROR_CODES;

pub(crate) mod audit;
mod body;
mod doc;
pub(crate) mod docks;
mod events;
pub(crate) mod files;
mod keys;
pub(crate) mod members;
mod operations;
pub(crate) mod page;
pub(crate) mod resources;
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

type Entry = (Method, &'static str, Access, Doc, MethodRouter<AppState>);

/// Every route: its method, path, the access it needs, what the API document says of it and its
/// handler.
fn table() -> Vec<Entry> {
    use Access::{Member, Needs, Public};
    use Permission::*;
    vec![
        (
            Method::GET,
            "/api/v1/openapi.json",
            Public,
            Doc::new("This document: the API in OpenAPI 3.1").ok::<serde_json::Value>(),
            get(serve_openapi),
        ),
        (
            Method::GET,
            "/api/v1/docs",
            Public,
            Doc::new("The API reference as a web page, rendered from this document").html(),
            get(reference_page),
        ),
                (
            Method::GET,
            "/api/v1/health",
            Public,
            Doc::new("Health check").ok::<HealthView>(),
            get(health),
        ),
                (
            Method::GET,
            "/api/v1/me",
            Member,
            Doc::new("Who am I: the caller's member, role and permissions").ok::<MeView>(),
            get(docks::me),
        ),
                (
            Method::PUT,
            "/api/v1/me/password",
            Member,
            Doc::new("Set one's own password").body::<sessions::SetPassword>().no_content().errors(&[422]),
            put(sessions::set_password),
        ),
                (
            Method::POST,
            "/api/v1/sessions",
            Public,
            Doc::new("Sign in with email and password: a session cookie and its CSRF token").about("Sets the `sd_session` cookie (HttpOnly, SameSite=Strict). Repeated failures from one address are refused for a while.").body::<sessions::SignIn>().created::<SessionView>().errors(&[401, 429]),
            post(sessions::sign_in),
        ),
                (
            Method::POST,
            "/api/v1/invitations/accept",
            Public,
            Doc::new("Take up an invitation: set a password and sign in").body::<sessions::Accept>().created::<SessionView>().errors(&[401, 422]),
            post(sessions::accept_invitation),
        ),
                (
            Method::DELETE,
            "/api/v1/sessions",
            Member,
            Doc::new("Sign out: end the session").no_content(),
            delete(sessions::sign_out),
        ),
                (
            Method::GET,
            "/api/v1/docks",
            Needs(DocksRead),
            Doc::new("List docks, by name").query::<page::PageQuery>().page::<DockView>(),
            get(docks::list),
        ),
                (
            Method::POST,
            "/api/v1/docks",
            Needs(DocksFull),
            Doc::new("Connect a dock (a provider account)").about("The API key is checked with the provider unless `verify` is false; it is sealed and never shown again.").body::<docks::NewDockBody>().created::<DockView>().errors(&[409, 422, 502]),
            post(docks::add),
        ),
                (
            Method::GET,
            "/api/v1/docks/{dock}",
            Needs(DocksRead),
            Doc::new("Get a dock").ok::<DockView>().errors(&[404]),
            get(docks::get),
        ),
                (
            Method::PATCH,
            "/api/v1/docks/{dock}",
            Needs(DocksFull),
            Doc::new("Change a dock's API key, base URL or rate limit").about("`null` goes back to the provider's own URL or documented limits.").body::<docks::DockPatch>().ok::<DockView>().errors(&[404, 422, 502]),
            patch(docks::update),
        ),
                (
            Method::DELETE,
            "/api/v1/docks/{dock}",
            Needs(DocksFull),
            Doc::new("Remove a dock").no_content().errors(&[404, 409]),
            delete(docks::remove),
        ),
                (
            Method::POST,
            "/api/v1/docks/{dock}/sync",
            Needs(ProvisioningFull),
            Doc::new("Sync a dock: find what the provider holds").accepted::<OperationView>().errors(&[404]),
            post(docks::sync),
        ),
                (
            Method::GET,
            "/api/v1/docks/{dock}/schema/{collection}",
            Needs(DocksRead),
            Doc::new("The config a dock accepts for a kind").ok::<ConfigSchemaView>().errors(&[404, 422]),
            get(docks::schema),
        ),
                (
            Method::GET,
            "/api/v1/operations",
            Needs(ProvisioningRead),
            Doc::new("List operations, newest first").query::<operations::ListQuery>().page::<OperationView>(),
            get(operations::list),
        ),
                (
            Method::GET,
            "/api/v1/operations/{id}",
            Needs(ProvisioningRead),
            Doc::new("Get an operation with its steps and provider calls").ok::<OperationDetailView>().errors(&[404]),
            get(operations::get),
        ),
                (
            Method::GET,
            "/api/v1/audit",
            Needs(AuditRead),
            Doc::new("List the audit log, newest first").query::<audit::AuditQuery>().page::<AuditView>(),
            get(audit::list),
        ),
                (
            Method::POST,
            "/api/v1/files/missing",
            Needs(ProvisioningFull),
            Doc::new("Which of these files the server does not hold yet").body::<files::MissingQuestion>().ok::<MissingFilesView>().errors(&[422]),
            post(files::missing),
        ),
        // The upload route enforces its own size limit, with an answer that says so.
                (
            Method::PUT,
            "/api/v1/files/{sha256}",
            Needs(ProvisioningFull),
            Doc::new("Upload a file's contents, checked against its digest").query::<files::UploadQuery>().raw_body().no_content().errors(&[413, 422]),
            put(files::upload).layer(DefaultBodyLimit::disable()),
        ),
                (
            Method::GET,
            "/api/v1/keys",
            Needs(KeysFull),
            Doc::new("List the master keys, the current one first").about("Only the owners and admins of the installation's first organisation.").query::<page::PageQuery>().page::<KeyView>(),
            get(keys::list),
        ),
                (
            Method::POST,
            "/api/v1/keys/rotate",
            Needs(KeysFull),
            Doc::new("Rotate the master key and reseal every sealed value").about("Only the owners and admins of the installation's first organisation.").created::<RotationView>().errors(&[409]),
            post(keys::rotate),
        ),
                (
            Method::POST,
            "/api/v1/keys/reseal",
            Needs(KeysFull),
            Doc::new("Reseal every sealed value under the current master key").about("Makes no new key: after a new key was put first in STACKDOCK_MASTER_KEY and every node restarted, this moves every value onto it. Only the owners and admins of the installation's first organisation.").ok::<ResealView>(),
            post(keys::reseal),
        ),
                (
            Method::DELETE,
            "/api/v1/keys/{key}",
            Needs(KeysFull),
            Doc::new("Retire a master key nothing is sealed under").about("Only the owners and admins of the installation's first organisation.").no_content().errors(&[404, 409]),
            delete(keys::retire),
        ),
                (
            Method::GET,
            "/api/v1/events",
            Needs(ProvisioningRead),
            Doc::new("Stream resource changes as server-sent events").about("Each event is `resource` with the change as JSON; `after` resumes after a journal id (one beyond the newest is refused); `resource_id` follows one resource, which must exist.").query::<events::EventsQuery>().events().errors(&[404]),
            get(events::stream),
        ),
                (
            Method::GET,
            "/api/v1/members",
            Member,
            Doc::new("List the organisation's members").query::<page::PageQuery>().page::<MemberView>(),
            get(members::list),
        ),
                (
            Method::POST,
            "/api/v1/members",
            Needs(MembersFull),
            Doc::new("Add a member, with a one-time invitation when asked").body::<members::AddMember>().created::<AddedMemberView>().errors(&[409]),
            post(members::add),
        ),
                (
            Method::PATCH,
            "/api/v1/members/{user}",
            Needs(MembersFull),
            Doc::new("Change a member's role").body::<members::SetRole>().ok::<MemberView>().errors(&[404, 409]),
            patch(members::set_role),
        ),
                (
            Method::DELETE,
            "/api/v1/members/{user}",
            Needs(MembersFull),
            Doc::new("Remove a member").no_content().errors(&[404, 409]),
            delete(members::remove),
        ),
                (
            Method::GET,
            "/api/v1/tokens",
            Member,
            Doc::new("List one's API tokens (or every member's, with `all`)").query::<members::TokensQuery>().page::<TokenView>().errors(&[403]),
            get(members::list_tokens),
        ),
                (
            Method::POST,
            "/api/v1/tokens",
            Member,
            Doc::new("Make an API token: its text is shown this once").body::<members::CreateToken>().created::<CreatedTokenView>().errors(&[404]),
            post(members::create_token),
        ),
                (
            Method::DELETE,
            "/api/v1/tokens/{id}",
            Member,
            Doc::new("Revoke an API token").ok::<TokenView>().errors(&[404, 409]),
            delete(members::revoke_token),
        ),
                (
            Method::GET,
            "/api/v1/resources",
            Needs(ProvisioningRead),
            Doc::new("List resources of every kind, newest first").query::<resources::ListQuery>().page::<ResourceView>().errors(&[404]),
            get(resources::list_all),
        ),
                (
            Method::GET,
            "/api/v1/resources/{id}",
            Needs(ProvisioningRead),
            Doc::new("Get a resource of any kind").ok::<ResourceView>().errors(&[404]),
            get(resources::get_any),
        ),
                (
            Method::DELETE,
            "/api/v1/resources/{id}",
            Needs(ProvisioningFull),
            Doc::new("Delete a resource of any kind: queues its deletion").accepted::<ResourceView>().errors(&[404, 409]),
            delete(resources::delete_any),
        ),
        (
            Method::GET,
            "/api/v1/resources/{id}/logs",
            Needs(ProvisioningRead),
            Doc::new("Read a resource's deploy log")
                .about(
                    "What the provider printed while the resource was provisioned (a container \
                     image's build and push), oldest first, scrubbed of secrets, kept after the \
                     resource is gone, a page at a time. A follower reads on with `after`, the \
                     `seq` of the last line it has (an empty page means nothing newer yet), \
                     since the last page of a log still being written has no `next`. New lines \
                     also arrive as `log` events on `/events`.",
                )
                .query::<resources::LogQuery>()
                .page::<DeployLogView>()
                .errors(&[404]),
            get(resources::deploy_log),
        ),
        (
            Method::POST,
            "/api/v1/resources/{id}/retry",
            Needs(ProvisioningFull),
            Doc::new("Retry a failed resource of any kind").accepted::<ResourceView>().errors(&[404, 409]),
            post(resources::retry_any),
        ),
                (
            Method::POST,
            "/api/v1/resources/{id}/cancel",
            Needs(ProvisioningFull),
            Doc::new("Cancel a resource's operation in flight").accepted::<ResourceView>().errors(&[404, 409]),
            post(resources::cancel_any),
        ),
                (
            Method::GET,
            "/api/v1/{collection}",
            Needs(ProvisioningRead),
            Doc::new("List one collection, newest first").query::<resources::ListQuery>().page::<ResourceView>().errors(&[404]),
            get(resources::list),
        ),
                (
            Method::POST,
            "/api/v1/{collection}",
            Needs(ProvisioningFull),
            Doc::new("Provision a resource: queues its creation").about("The body is `dock` and the config the dock's schema for the kind describes (`GET /api/v1/docks/{dock}/schema/{collection}`). With an `Idempotency-Key` header, a repeat of the same request answers the first row with `Idempotent-Replayed: true`.").header("Idempotency-Key", "Makes a repeat of this request answer the first row.").body::<resources::CreateBody>().accepted::<ResourceView>().errors(&[404, 409, 422]),
            post(resources::create),
        ),
                (
            Method::GET,
            "/api/v1/{collection}/{id}",
            Needs(ProvisioningRead),
            Doc::new("Get a resource").ok::<ResourceView>().errors(&[404]),
            get(resources::get),
        ),
                (
            Method::DELETE,
            "/api/v1/{collection}/{id}",
            Needs(ProvisioningFull),
            Doc::new("Delete a resource: queues its deletion").accepted::<ResourceView>().errors(&[404, 409]),
            delete(resources::delete),
        ),
                (
            Method::GET,
            "/api/v1/{collection}/{id}/api-calls",
            Needs(ProvisioningRead),
            Doc::new("List the provider calls made for a resource").query::<page::PageQuery>().page::<ApiCallView>().errors(&[404]),
            get(resources::api_calls),
        ),
                (
            Method::POST,
            "/api/v1/{collection}/{id}/retry",
            Needs(ProvisioningFull),
            Doc::new("Retry a failed resource").accepted::<ResourceView>().errors(&[404, 409]),
            post(resources::retry),
        ),
                (
            Method::POST,
            "/api/v1/{collection}/{id}/cancel",
            Needs(ProvisioningFull),
            Doc::new("Cancel a resource's operation in flight").accepted::<ResourceView>().errors(&[404, 409]),
            post(resources::cancel),
        ),
    ]
}

/// The routes as declared: what a test walks to check every route against every role.
pub fn routes() -> Vec<RouteSpec> {
    table()
        .into_iter()
        .map(|(method, path, access, _, _)| RouteSpec {
            method,
            path,
            access,
        })
        .collect()
}

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let mut router = crate::ui::router(state).merge(crate::probes::router(
        state.store.clone(),
        state.node.clone(),
    ));
    for (_, path, access, _, handler) in table() {
        let guard = axum::middleware::from_fn_with_state((state.clone(), access), guard);
        router = router.route(path, handler.route_layer(guard));
    }
    // Both in our error shape: a path no route has is 404 (a page for a person outside the
    // API); a route asked with a method it does not take is 405, and axum adds the `Allow`
    // header listing the ones it does.
    router
        .fallback(|method: Method, uri: Uri| async move {
            if uri.path().starts_with("/api/") {
                ApiError::not_found(format!("no route {method} {}", uri.path())).into_response()
            } else {
                crate::ui::not_found(uri.path())
            }
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} does not take {method}", uri.path()),
            )
        })
}

/// The OpenAPI document, read from the route table.
pub fn openapi() -> serde_json::Value {
    let routes: Vec<_> = table()
        .into_iter()
        .map(|(method, path, access, doc, _)| (method, path, access, doc))
        .collect();
    doc::document(&routes)
}

async fn serve_openapi() -> axum::Json<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(self::openapi).clone())
}

async fn reference_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("reference.html"))
}

async fn health() -> axum::Json<crate::view::HealthView> {
    axum::Json(crate::view::HealthView { status: "ok" })
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
        let refused = refuse(state, &caller, req.method(), &route, p).await;
        return (request_id, refused.into_response());
    }
    req.extensions_mut().insert(caller);
    (request_id, next.run(req).await)
}

/// Writes the audit row of a request refused for want of `permission` (outcome `denied`, the
/// action `<METHOD> <route>`) and answers the 403 naming it: the API's guard and the web UI's
/// refuse alike.
pub(crate) async fn refuse(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    route: &str,
    permission: Permission,
) -> ApiError {
    let entry = caller
        .actor()
        .audit(format!("{method} {route}"), Outcome::Denied)
        .details(serde_json::json!({"permission": permission, "role": caller.0.role}));
    if let Err(e) = state
        .store
        .apply(stackdock_store::Batch::new().push(Write::Audit(entry)))
        .await
    {
        // The refusal stands either way; a request is never let through for want of a row.
        tracing::error!(error = %e, "could not write the audit row of a refused request");
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("role {} lacks permission {permission}", caller.0.role),
    )
}

/// Turns extractor rejections into our error shape, naming what was wrong.
pub(crate) fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("invalid path: {}", e.body_text()))
}

pub(crate) fn body_error(e: axum::extract::rejection::JsonRejection) -> ApiError {
    rejected(e.status(), "invalid body", e.body_text())
}

/// A body the server would not take: too large is said as such (413, which a client
/// should not retry as it is); anything else (not JSON, unreadable) is a 400 naming it.
pub(crate) fn rejected(status: StatusCode, what: &str, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "too_large",
            format!("the request body is larger than this route takes: {text}"),
        ),
        _ => ApiError::bad_request(format!("{what}: {text}")),
    }
}

pub(crate) fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query: {}", e.body_text()))
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use axum::extract::{FromRequest, Request};
    use axum::http::StatusCode;

    use super::rejected;

    /// The body extractor's own refusals keep their meaning: one over the default limit is
    /// a 413 saying so, not a 400 that a client would read as its mistake of shape.
    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_a_broken_one_400() {
        let big = Request::builder()
            .method("POST")
            .uri("/api/v1/servers")
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; 3 << 20]))
            .expect("a request");
        let Err(e) = Bytes::from_request(big, &()).await else {
            panic!("a 3 MiB body was read whole");
        };
        let answer = rejected(e.status(), "could not read the body", e.body_text());
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.code, "too_large");
        assert!(answer.message.contains("larger"), "{}", answer.message);

        let other = rejected(StatusCode::BAD_REQUEST, "invalid body", "EOF".into());
        assert_eq!(
            (other.status, other.code),
            (StatusCode::BAD_REQUEST, "bad_request")
        );
    }
}
