//! The web UI: server-rendered HTML at `/`, for a person signed in with a password.
//!
//! Pages are askama templates (`templates/`), compiled into the binary with the one stylesheet
//! and the one small script (`assets/`); no page needs JavaScript except for live updates,
//! which the script takes from the API's event stream (`/api/v1/events`, on the session
//! cookie). Every route is declared here with the same [`Access`] as the API's routes, and the
//! same guard logic stands in front of each: the session is looked up, a form's CSRF token is
//! checked against the session's (a hidden field, since forms send no headers), and a role
//! without the permission is refused with a 403 page and an audit row, as the API refuses.
//! Handlers call the functions the API's handlers call; only the shapes differ (forms in,
//! pages out).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use stackdock_core::{Permission, RequestId, Role};

use crate::AppState;
use crate::auth::{Caller, Token, session_secret};
use crate::error::ApiError;
use crate::routes::Access;

mod form;
mod pages;
mod templates;

use templates::{Chrome, ErrorPage};

/// The cookie that holds the session's CSRF token for the pages to put in their forms. It is
/// `HttpOnly`: only the server reads it, to render the token into the forms it serves.
pub(crate) const CSRF_COOKIE: &str = "sd_csrf";
/// The cookie of the sign-in form's own CSRF token, before there is a session.
const SIGN_IN_COOKIE: &str = "sd_sign_in";
/// The form field every form carries its CSRF token in.
const CSRF_FIELD: &str = "csrf";
/// The largest form body read (a provision form with a long cloud-init script).
const FORM_LIMIT: usize = 1 << 20;

type UiEntry = (Method, &'static str, Access, MethodRouter<AppState>);

/// Every page and form target, with the access it needs.
fn table() -> Vec<UiEntry> {
    use Access::{Member, Needs, Public};
    use Permission::*;
    vec![
        (
            Method::GET,
            "/",
            Needs(ProvisioningRead),
            get(pages::dashboard),
        ),
        (Method::GET, "/sign-in", Public, get(pages::sign_in_form)),
        (Method::POST, "/sign-in", Public, post(pages::sign_in)),
        (Method::POST, "/sign-out", Member, post(pages::sign_out)),
        (
            Method::GET,
            "/invitation",
            Public,
            get(pages::invitation_form),
        ),
        (
            Method::POST,
            "/invitation",
            Public,
            post(pages::take_up_invitation),
        ),
        (Method::GET, "/docks", Needs(DocksRead), get(pages::docks)),
        (
            Method::POST,
            "/docks",
            Needs(DocksFull),
            post(pages::connect_dock),
        ),
        (
            Method::GET,
            "/provision",
            Needs(ProvisioningFull),
            get(pages::provision_form),
        ),
        (
            Method::POST,
            "/provision",
            Needs(ProvisioningFull),
            post(pages::provision),
        ),
        (
            Method::GET,
            "/resources/{id}",
            Needs(ProvisioningRead),
            get(pages::resource),
        ),
        (
            Method::POST,
            "/resources/{id}/{action}",
            Needs(ProvisioningFull),
            post(pages::act),
        ),
        (Method::GET, "/audit", Needs(AuditRead), get(pages::audit)),
        (Method::GET, "/members", Member, get(pages::members)),
        (
            Method::POST,
            "/members",
            Needs(MembersFull),
            post(pages::add_member),
        ),
        (
            Method::POST,
            "/members/{user}/role",
            Needs(MembersFull),
            post(pages::member_role),
        ),
        (
            Method::POST,
            "/members/{user}/remove",
            Needs(MembersFull),
            post(pages::remove_member),
        ),
        (Method::GET, "/tokens", Member, get(pages::tokens)),
        (Method::POST, "/tokens", Member, post(pages::create_token)),
        (
            Method::POST,
            "/tokens/{id}/revoke",
            Member,
            post(pages::revoke_token),
        ),
        (Method::GET, "/assets/app.css", Public, get(stylesheet)),
        (Method::GET, "/assets/app.js", Public, get(script)),
    ]
}

/// The UI's routes, each behind [`guard`]. Outside `/api/v1`, so not in the API document.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (_, path, access, handler) in table() {
        let guard = axum::middleware::from_fn_with_state((state.clone(), access), guard);
        router = router.route(path, handler.route_layer(guard));
    }
    // Only the UI's routes: the layer wraps what is routed so far.
    router.layer(axum::middleware::map_response(page_headers))
}

/// What every page says to the browser: load nothing from elsewhere and run no inline script,
/// be framed by no one, post forms only here.
async fn page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// The signed-in person a page is for: who they are, and the CSRF token its forms carry.
#[derive(Clone)]
pub(crate) struct Visit {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
}

impl Visit {
    pub(crate) fn can(&self, p: Permission) -> bool {
        self.caller.0.role.allows(p)
    }

    pub(crate) fn role(&self) -> Role {
        self.caller.0.role
    }

    pub(crate) fn chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome::signed_in(self, title.into())
    }
}

async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let permission = match access {
        Access::Public => return next.run(req).await,
        Access::Member => None,
        Access::Needs(p) => Some(p),
    };
    let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let Some(visit) = signed_in(&state, req.headers()).await else {
        return if is_get {
            Redirect::to("/sign-in").into_response()
        } else {
            error_page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended. Sign in again, then repeat what you were doing.",
            )
        };
    };
    let (parts, body) = req.into_parts();
    let mut req = if is_get {
        Request::from_parts(parts, body)
    } else {
        let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
            Ok(b) => b,
            Err(_) => {
                return error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much to send",
                    "The form was larger than this server takes.",
                );
            }
        };
        if !csrf_matches(&bytes, &visit.csrf) {
            return error_page(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form did not carry this session's security token, so it was not \
                 acted on. Reload the page and try again.",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    if let Some(p) = permission
        && !visit.can(p)
    {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
        let refused = crate::routes::refuse(&state, &visit.caller, req.method(), &route, p).await;
        return with_chrome(forbidden(&refused.message), &visit);
    }
    req.extensions_mut().insert(visit.clone());
    with_chrome(next.run(req).await, &visit)
}

/// An error page rendered again with the signed-in person's navigation, so they can go on
/// from it.
fn with_chrome(resp: Response, visit: &Visit) -> Response {
    let Some(e) = resp.extensions().get::<PageError>() else {
        return resp;
    };
    let page = ErrorPage {
        chrome: visit.chrome(e.title.clone()),
        status: e.status.as_u16(),
        message: e.message.clone(),
    };
    (e.status, templates::render(&page)).into_response()
}

/// What an error page says, kept on its response for [`with_chrome`].
#[derive(Clone)]
struct PageError {
    status: StatusCode,
    title: String,
    message: String,
}

/// The session a request's cookies stand for, with its CSRF token; `None` when there is no
/// session, it has ended, or its CSRF cookie is not the session's (a session opened through
/// the JSON API, whose token the browser holds in script).
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<Visit> {
    let secret = session_secret(headers)?;
    let (principal, csrf_hash) = state
        .store
        .principal_for_session(&Token::hash(&secret))
        .await
        .ok()??;
    let csrf = cookie(headers, CSRF_COOKIE)?;
    (Token::hash(&csrf) == csrf_hash).then(|| Visit {
        caller: Caller(principal, RequestId::new()),
        csrf,
    })
}

/// Whether the urlencoded form `body` carries `expected` as its CSRF field.
fn csrf_matches(body: &Bytes, expected: &str) -> bool {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == CSRF_FIELD)
        .is_some_and(|(_, v)| same(v.as_bytes(), expected.as_bytes()))
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// An error as a page a person can read: what happened, in words, and the way back.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        chrome: Chrome::anonymous(title.to_string()),
        status: status.as_u16(),
        message: message.to_string(),
    };
    let mut resp = (status, templates::render(&page)).into_response();
    resp.extensions_mut().insert(PageError {
        status,
        title: title.to_string(),
        message: message.to_string(),
    });
    resp
}

/// The 403 page: the role does not allow this.
fn forbidden(detail: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        &format!(
            "Your role does not allow this ({detail}). Ask an owner or admin of the \
             organisation if you need it."
        ),
    )
}

/// The 404 page, for any path outside the API that nothing serves.
pub(crate) fn not_found(path: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        &format!("There is no page at {path}. It may have been removed, or the address mistyped."),
    )
}

/// What a handler fails with: an API error, shown as a page.
pub(crate) struct UiError(pub(crate) ApiError);

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => return forbidden(&e.message),
            StatusCode::CONFLICT => "Not possible now",
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "Check what you entered",
            s if s.is_server_error() => "Something went wrong",
            _ => "Could not do that",
        };
        error_page(e.status, title, &e.message)
    }
}

pub(crate) type UiResult = Result<Response, UiError>;

/// Answers the rendered page.
pub(crate) fn page(html: String) -> UiResult {
    Ok(Html(html).into_response())
}

/// After a form that changed something: see the result with a GET (post/redirect/get).
pub(crate) fn see_other(to: &str) -> UiResult {
    Ok(Redirect::to(to).into_response())
}

/// A `Set-Cookie` value for the UI's cookies: `HttpOnly`, `SameSite=Strict`.
pub(crate) fn set_cookie(resp: &mut Response, name: &str, value: &str, path: &str, max_age: i64) {
    let text = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&text) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}
