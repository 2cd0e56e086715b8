//! The pages and the forms they post, each calling what the API's handler for the same thing
//! calls.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use stackdock_core::{
    AuditEntry, DockId, DockName, Outcome, Permission, Provider, ProvisioningState, ResourceKind,
    Role, SecretString, UserId,
};
use stackdock_engine::EngineError;
use stackdock_engine::intent::NewDock;
use stackdock_store::{AuditFilter, PageRequest};

use super::form::{self, Field};
use super::templates::*;
use super::{
    CSRF_COOKIE, CSRF_FIELD, SIGN_IN_COOKIE, UiError, UiResult, Visit, cookie, error_page, page,
    see_other, set_cookie, signed_in,
};
use crate::AppState;
use crate::auth::{Token, session_secret};
use crate::error::ApiError;
use crate::routes::page::Listing;
use crate::routes::resources::{ListQuery, list_page, load};
use crate::routes::{docks, members, sessions};

/// Rows a page of the dashboard, the audit log and the other lists shows.
const PAGE_ROWS: u32 = 50;
/// Docks read for the filters and forms that offer a choice of dock.
const DOCK_CHOICES: u32 = 500;
/// Provider calls shown on a resource page.
const CALLS_SHOWN: u32 = 500;
/// Deploy log lines shown on a resource page when it opens (more arrive live).
const LOG_SHOWN: u32 = 1000;

/// A form's or a query's answers, in order.
fn answers(text: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text).into_owned().collect()
}

/// The answer named `name`, or "" when there is none.
fn answer<'a>(answers: &'a [(String, String)], name: &str) -> &'a str {
    answers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The answer named `name`, `None` when absent or blank.
fn given(answers: &[(String, String)], name: &str) -> Option<String> {
    let v = answer(answers, name).trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The link to the next page of a list: the same query, the next cursor.
fn next_link(path: &str, query: &[(String, String)], next: Option<String>) -> Option<String> {
    let next = next?;
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(k, v)| k != "cursor" && !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.append_pair("cursor", &next);
    Some(format!("{path}?{}", q.finish()))
}

/// The org's docks, by name: for the choices of a filter or a form.
async fn dock_choices(
    state: &AppState,
    visit: &Visit,
) -> Result<Vec<stackdock_core::Dock>, UiError> {
    let page = state
        .store
        .list_docks(visit.caller.0.org_id, &PageRequest::first(DOCK_CHOICES))
        .await?;
    Ok(page.items)
}

fn provider_choices(state: &AppState, current: Option<&str>) -> Vec<Choice> {
    Choice::list(
        state
            .engine
            .registry()
            .providers()
            .into_iter()
            .map(|p| (p.as_str().to_string(), p.as_str().to_string())),
        current,
    )
}

fn with_any(mut choices: Vec<Choice>, label: &str) -> Vec<Choice> {
    let none_selected = !choices.iter().any(|c| c.selected);
    choices.insert(
        0,
        Choice {
            value: String::new(),
            label: label.to_string(),
            selected: none_selected,
        },
    );
    choices
}

// ---- signing in and out ----

pub(crate) async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await.is_some() {
        return Redirect::to("/").into_response();
    }
    let token = Token::generate().0;
    sign_in_page(StatusCode::OK, token, String::new(), None)
}

fn sign_in_page(
    status: StatusCode,
    token: String,
    email: String,
    error: Option<String>,
) -> Response {
    let page = SignInPage {
        chrome: Chrome::anonymous("Sign in".into()),
        token: token.clone(),
        email,
        error,
    };
    with_form_token((status, render(&page)).into_response(), &token)
}

/// Sets the cookie a form before sign-in carries its token in: a form posted from another
/// site cannot know it.
fn with_form_token(mut resp: Response, token: &str) -> Response {
    set_cookie(&mut resp, SIGN_IN_COOKIE, token, "/", 3600);
    resp
}

/// The form token of a form sent before sign-in, when it matches its cookie.
fn form_token(headers: &HeaderMap, form: &[(String, String)]) -> Option<String> {
    let token = cookie(headers, SIGN_IN_COOKIE).filter(|t| !t.is_empty())?;
    super::same(answer(form, CSRF_FIELD).as_bytes(), token.as_bytes()).then_some(token)
}

fn stale_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form did not come from this server's own page. Open the page again and retry.",
    )
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    let Some(token) = form_token(&headers, &form) else {
        return Ok(stale_form());
    };
    let email = answer(&form, "email").trim().to_string();
    let password = answer(&form, "password").to_string();
    let login = match sessions::check_password_sign_in(&state, &email, password, peer).await {
        Ok(login) => login,
        Err(sessions::SignInRefused::Limited(wait)) => {
            let message = format!("Too many failed sign-ins; {}.", sessions::retry_in(wait));
            return Ok(sign_in_page(
                StatusCode::TOO_MANY_REQUESTS,
                token,
                email,
                Some(message),
            ));
        }
        Err(sessions::SignInRefused::Error(e)) if e.status == StatusCode::UNAUTHORIZED => {
            let message = "Wrong email or password.".to_string();
            return Ok(sign_in_page(
                StatusCode::UNAUTHORIZED,
                token,
                email,
                Some(message),
            ));
        }
        Err(sessions::SignInRefused::Error(e)) => return Err(e.into()),
    };
    signed_in_as(&state, &login, peer).await
}

/// Opens a session for `login` and goes to the dashboard with its cookies.
async fn signed_in_as(
    state: &AppState,
    login: &stackdock_store::Login,
    peer: SocketAddr,
) -> UiResult {
    let opened = sessions::start_session(state, login, peer).await?;
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&sessions::session_cookie(&opened.secret.0)) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    set_cookie(
        &mut resp,
        CSRF_COOKIE,
        &opened.csrf.0,
        "/",
        sessions::SESSION_SECONDS,
    );
    set_cookie(&mut resp, SIGN_IN_COOKIE, "", "/", 0);
    Ok(resp)
}

pub(crate) async fn invitation_form() -> Response {
    invitation_page(StatusCode::OK, Token::generate().0, None)
}

fn invitation_page(status: StatusCode, token: String, error: Option<String>) -> Response {
    let page = InvitationPage {
        chrome: Chrome::anonymous("Take up an invitation".into()),
        token: token.clone(),
        error,
    };
    with_form_token((status, render(&page)).into_response(), &token)
}

/// Takes up an invitation as `POST /api/v1/invitations/accept` does, and signs in.
pub(crate) async fn take_up_invitation(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    let Some(token) = form_token(&headers, &form) else {
        return Ok(stale_form());
    };
    let invitation = answer(&form, "invitation").trim();
    let password = answer(&form, "password").to_string();
    match sessions::take_up_invitation(&state, invitation, password).await {
        Ok(login) => signed_in_as(&state, &login, peer).await,
        Err(e) if e.status.is_client_error() => {
            let message = match e.status {
                StatusCode::UNAUTHORIZED => {
                    "This invitation is unknown, used or expired; ask for a new one.".to_string()
                }
                _ => e.message,
            };
            Ok(invitation_page(e.status, token, Some(message)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> UiResult {
    if let Some(secret) = session_secret(&headers) {
        state.store.end_session(&Token::hash(&secret)).await?;
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&sessions::ended_session_cookie()) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    set_cookie(&mut resp, CSRF_COOKIE, "", "/", 0);
    Ok(resp)
}

// ---- the dashboard ----

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    let list = ListQuery {
        kind: given(&q, "kind"),
        provider: given(&q, "provider"),
        dock: given(&q, "dock"),
        state: given(&q, "state"),
        source: given(&q, "source"),
        name: given(&q, "name"),
        limit: Some(PAGE_ROWS.to_string()),
        cursor: given(&q, "cursor"),
    };
    let org = visit.caller.0.org_id;
    // The feed's position before the rows are read: the live script follows the feed from
    // there, so a change made between this read and its subscription is not missed.
    let after = state.store.latest_change().await?;
    let (listing, rows) = list_page(&state, org, None, &list).await?;
    let docks = dock_choices(&state, &visit).await?;
    let names: HashMap<DockId, String> = docks.iter().map(|d| (d.id, d.name.to_string())).collect();
    let page = DashboardPage {
        chrome: visit.chrome("Resources"),
        rows: rows
            .items
            .iter()
            .map(|r| {
                let dock = names
                    .get(&r.dock_id)
                    .cloned()
                    .unwrap_or_else(|| r.dock_id.to_string());
                Row::of(r, dock)
            })
            .collect(),
        kinds: with_any(
            Choice::list(
                ResourceKind::ALL.map(|k| (k.as_str().to_string(), k.as_str().replace('_', " "))),
                list.kind.as_deref(),
            ),
            "any kind",
        ),
        providers: with_any(
            provider_choices(&state, list.provider.as_deref()),
            "any provider",
        ),
        docks: with_any(
            Choice::list(
                docks
                    .iter()
                    .map(|d| (d.name.to_string(), d.name.to_string())),
                list.dock.as_deref(),
            ),
            "any dock",
        ),
        states: with_any(
            Choice::list(
                [
                    ProvisioningState::Provisioning,
                    ProvisioningState::Provisioned,
                    ProvisioningState::Failed,
                    ProvisioningState::Deprovisioning,
                    ProvisioningState::Deprovisioned,
                ]
                .map(|s| (s.as_str().to_string(), s.as_str().to_string())),
                list.state.as_deref(),
            ),
            "any state",
        ),
        sources: with_any(
            Choice::list(
                [
                    ("api", "made here (api)"),
                    ("manual", "found by sync (manual)"),
                ]
                .map(|(v, l)| (v.to_string(), l.to_string())),
                list.source.as_deref(),
            ),
            "any source",
        ),
        name: list.name.clone().unwrap_or_default(),
        next: next_link("/", &q, listing.next_cursor(&rows)),
        after,
        filtered: [
            &list.kind,
            &list.provider,
            &list.dock,
            &list.state,
            &list.source,
            &list.name,
        ]
        .iter()
        .any(|f| f.is_some()),
    };
    page_of(&page)
}

fn page_of(t: &impl askama::Template) -> UiResult {
    page(render(t).0)
}

// ---- docks ----

pub(crate) async fn docks(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    docks_page(&state, &visit, &q, StatusCode::OK, DockForm::default()).await
}

/// What the connect form is shown back with after a refusal: never the key.
#[derive(Default)]
struct DockForm {
    provider: String,
    name: String,
    api_url: String,
    settings: String,
    error: Option<String>,
}

async fn docks_page(
    state: &AppState,
    visit: &Visit,
    q: &[(String, String)],
    status: StatusCode,
    form: DockForm,
) -> UiResult {
    let listing = Listing::new("docks");
    let request = listing.request(Some(&PAGE_ROWS.to_string()), given(q, "cursor").as_deref())?;
    let docks = state
        .store
        .list_docks(visit.caller.0.org_id, &request)
        .await?;
    let page = DocksPage {
        chrome: visit.chrome("Docks"),
        docks: docks
            .items
            .iter()
            .map(|d| {
                let v = crate::view::DockView::from(d);
                DockRow {
                    name: v.name,
                    provider: v.provider,
                    api_url: v.api_url.unwrap_or_else(|| "the provider's own".into()),
                    rate_limit: v.rate_limit,
                    created: when(&v.created_at),
                }
            })
            .collect(),
        next: next_link("/docks", q, listing.next_cursor(&docks)),
        can_connect: visit.can(Permission::DocksFull),
        providers: provider_choices(state, Some(form.provider.as_str())),
        name: form.name,
        api_url: form.api_url,
        settings: form.settings,
        error: form.error,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn connect_dock(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    let shown = DockForm {
        provider: answer(&form, "provider").to_string(),
        name: answer(&form, "name").trim().to_string(),
        api_url: answer(&form, "api_url").trim().to_string(),
        settings: answer(&form, "settings").trim().to_string(),
        error: None,
    };
    match connect(&state, &visit, &form).await {
        Ok(()) => see_other("/docks"),
        Err(e) => {
            let status = e.status;
            let form = DockForm {
                error: Some(e.message),
                ..shown
            };
            docks_page(&state, &visit, &[], status, form).await
        }
    }
}

/// Connects the dock the form describes, as `POST /api/v1/docks` does.
async fn connect(
    state: &AppState,
    visit: &Visit,
    form: &[(String, String)],
) -> Result<(), ApiError> {
    let provider: Provider = answer(form, "provider")
        .parse()
        .map_err(|e: String| ApiError::invalid(format!("provider: {e}")))?;
    let name = DockName::try_from(answer(form, "name").trim().to_string())
        .map_err(|e| ApiError::invalid(format!("name: {e}")))?;
    let api_url = given(form, "api_url");
    if let Some(u) = &api_url {
        docks::check_url(u)?;
    }
    let settings = match given(form, "settings").map(|t| serde_json::from_str(&t)) {
        None => serde_json::Map::new(),
        Some(Ok(serde_json::Value::Object(map))) => map,
        Some(_) => {
            return Err(ApiError::invalid(
                "settings: must be a JSON object, e.g. {\"organization\": \"my-org\"}",
            ));
        }
    };
    let new = NewDock {
        provider,
        name,
        api_key: SecretString::new(answer(form, "api_key").trim().to_string()),
        api_base_url: api_url,
        rate_limit: None,
        settings,
        verify: answer(form, "verify") == "on",
    };
    state.engine.add_dock(visit.caller.actor(), new).await?;
    Ok(())
}

// ---- provisioning ----

pub(crate) async fn provision_form(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    let mut form = ProvisionForm::new(&state, &visit, &q).await?;
    form.idempotency = Token::generate().0;
    form.render(&visit, StatusCode::OK)
}

/// The provision form: the kind and the dock chosen, and the fields of that dock's schema for
/// the kind once both are.
struct ProvisionForm {
    kinds: Vec<Choice>,
    docks: Vec<Choice>,
    collection: String,
    dock: Option<stackdock_core::Dock>,
    kind: Option<ResourceKind>,
    fields: Vec<Field>,
    error: Option<String>,
    idempotency: String,
}

impl ProvisionForm {
    async fn new(state: &AppState, visit: &Visit, q: &[(String, String)]) -> Result<Self, UiError> {
        let collection = answer(q, "collection").to_string();
        let dock_name = answer(q, "dock").to_string();
        let all_docks = dock_choices(state, visit).await?;
        let mut form = Self {
            kinds: with_any(
                Choice::list(
                    ResourceKind::ALL
                        .map(|k| (k.collection().to_string(), k.collection().replace('-', " "))),
                    Some(collection.as_str()),
                ),
                "choose a kind",
            ),
            docks: with_any(
                Choice::list(
                    all_docks
                        .iter()
                        .map(|d| (d.name.to_string(), format!("{} ({})", d.name, d.provider))),
                    Some(dock_name.as_str()),
                ),
                "choose a dock",
            ),
            collection: collection.clone(),
            dock: None,
            kind: None,
            fields: Vec::new(),
            error: None,
            idempotency: answer(q, "idempotency").to_string(),
        };
        if collection.is_empty() || dock_name.is_empty() {
            return Ok(form);
        }
        let kind = crate::routes::resources::kind_of(&collection)?;
        let dock = docks::resolve(state, visit.caller.0.org_id, &dock_name).await?;
        let adapter = state
            .engine
            .registry()
            .get(dock.provider)
            .ok_or_else(|| ApiError::invalid(format!("no adapter for {}", dock.provider)))?;
        match adapter.config_schema(kind) {
            Some(schema) => form.fields = form::fields(schema.json(), schema.sensitive()),
            None => {
                form.error = Some(format!(
                    "{} docks cannot provision {}; choose another kind or dock.",
                    dock.provider,
                    kind.collection()
                ))
            }
        }
        form.kind = Some(kind);
        form.dock = Some(dock);
        Ok(form)
    }

    fn render(mut self, visit: &Visit, status: StatusCode) -> UiResult {
        form::focus_first_error(&mut self.fields);
        let page = ProvisionPage {
            chrome: visit.chrome("Provision"),
            kinds: self.kinds,
            docks: self.docks,
            collection: self.collection,
            dock: self.dock.map(|d| d.name.to_string()).unwrap_or_default(),
            fields: self.fields,
            error: self.error,
            idempotency: self.idempotency,
        };
        Ok((status, render(&page)).into_response())
    }
}

pub(crate) async fn provision(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    body: Bytes,
) -> UiResult {
    let answers = answers(&body);
    let mut form = ProvisionForm::new(&state, &visit, &answers).await?;
    let (Some(kind), Some(dock)) = (form.kind, form.dock.clone()) else {
        form.error = Some("Choose a kind and a dock first.".into());
        return form.render(&visit, StatusCode::UNPROCESSABLE_ENTITY);
    };
    if form.error.is_some() {
        return form.render(&visit, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let Ok(config) = form::config(&mut form.fields, &answers) else {
        return form.render(&visit, StatusCode::UNPROCESSABLE_ENTITY);
    };
    if kind == ResourceKind::WebService
        && let Err(e) = crate::routes::files::check_uploaded(&state, &config)
    {
        if !form::place_error(&mut form.fields, "files", &e.message) {
            form.error = Some(e.message);
        }
        return form.render(&visit, e.status);
    }
    let key = (!form.idempotency.is_empty()).then(|| form.idempotency.clone());
    let done = state
        .engine
        .request_provision_once(visit.caller.actor(), &dock, kind, config, key.as_deref())
        .await;
    match done {
        Ok(done) => see_other(&format!("/resources/{}", done.resource.id)),
        Err(EngineError::InvalidConfig(c)) => {
            if !form::place_error(&mut form.fields, &c.field, &c.message) {
                form.error = Some(format!("{}: {}", c.field, c.message));
            }
            form.render(&visit, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => {
            let e = ApiError::from(e);
            form.error = Some(e.message);
            form.render(&visit, e.status)
        }
    }
}

// ---- a resource ----

pub(crate) async fn resource(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    Path(id): Path<String>,
) -> UiResult {
    let org = visit.caller.0.org_id;
    let r = load(&state, org, None, &id).await?;
    let dock = state
        .store
        .get_dock(org, r.dock_id)
        .await
        .map(|d| d.name.to_string())
        .unwrap_or_else(|_| r.dock_id.to_string());
    let calls = state
        .store
        .api_calls(org, r.id, &PageRequest::first(CALLS_SHOWN))
        .await?;
    let has_log = r.kind() == ResourceKind::WebService && r.provider == Provider::Docker.as_str();
    let lines = if has_log {
        state
            .store
            .deploy_log_since(org, Some(r.id), 0, LOG_SHOWN)
            .await?
    } else {
        Vec::new()
    };
    // The live script skips the lines the page already shows.
    let log_seq = lines.last().map_or(0, |l| l.seq);
    let log = lines.into_iter().map(|l| l.line).collect();
    let current = r.provisioning_state.as_str();
    let actions = if visit.can(Permission::ProvisioningFull) {
        [
            ("retry", "Retry", "failed"),
            ("cancel", "Cancel", "provisioning"),
            ("deprovision", "Deprovision", "provisioned failed"),
        ]
        .into_iter()
        .map(|(action, label, states)| ActionButton {
            action,
            label,
            states,
            shown: states.split(' ').any(|s| s == current),
        })
        .collect()
    } else {
        Vec::new()
    };
    let error = r.error.clone();
    let page = ResourcePage {
        chrome: visit.chrome(r.name.clone()),
        id: r.id.to_string(),
        collection: r.kind().collection().to_string(),
        kind: r.kind().as_str().replace('_', " "),
        dock,
        provider: r.provider.clone(),
        provider_id: r.provider_resource_id.clone().unwrap_or_default(),
        state: current.to_string(),
        status: r.status.clone().unwrap_or_default(),
        source: r.provisioning_source.as_str().to_string(),
        error_message: error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default(),
        error_code: error.map(|e| e.code).unwrap_or_default(),
        created: when(&r.created_at),
        updated: when(&r.updated_at),
        actions,
        more_calls: calls.next.is_some(),
        calls: calls
            .items
            .iter()
            .map(|c| CallRow {
                method: c.method.clone(),
                path: c.path.clone(),
                status: c
                    .status
                    .map(|s| s.to_string())
                    .or_else(|| c.error.clone())
                    .unwrap_or_else(|| "no answer".into()),
                duration_ms: c.duration_ms,
                at: when(&c.at),
            })
            .collect(),
        has_log,
        log,
        log_seq,
    };
    page_of(&page)
}

/// Retry, cancel or deprovision, as the API's routes for them do; back to the resource.
pub(crate) async fn act(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    Path((id, action)): Path<(String, String)>,
) -> UiResult {
    let actor = visit.caller.actor();
    let r = load(&state, actor.org_id, None, &id).await?;
    match action.as_str() {
        "retry" => state.engine.request_retry(actor, r.id).await?,
        "cancel" => state.engine.request_cancel(actor, r.id).await?,
        "deprovision" => state.engine.request_deprovision(actor, r.id).await?,
        _ => return Ok(super::not_found(&format!("/resources/{id}/{action}"))),
    };
    see_other(&format!("/resources/{}", r.id))
}

// ---- the audit log ----

pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    let outcome = given(&q, "outcome")
        .map(|o| o.parse::<Outcome>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("outcome: {e}")))?;
    let filter = AuditFilter {
        action: given(&q, "action"),
        outcome,
        actor: None,
        resource: None,
    };
    // The same listing as `GET /api/v1/audit` with these filters.
    let listing = Listing::new("audit")
        .filter("action", filter.action.as_deref())
        .filter("outcome", filter.outcome.map(Outcome::as_str));
    let request = listing.request(Some(&PAGE_ROWS.to_string()), given(&q, "cursor").as_deref())?;
    let org = visit.caller.0.org_id;
    let rows = state.store.search_audit(org, &filter, &request).await?;
    let emails = member_emails(&state, &visit).await?;
    let page = AuditPage {
        chrome: visit.chrome("Audit log"),
        rows: rows
            .items
            .iter()
            .map(|a: &AuditEntry| AuditRow {
                at: when(&a.at),
                actor: a
                    .actor
                    .map(|u| emails.get(&u).cloned().unwrap_or_else(|| u.to_string()))
                    .unwrap_or_else(|| "the system".into()),
                action: a.action.clone(),
                outcome: a.outcome.as_str().to_string(),
                resource: a.resource.clone().unwrap_or_default(),
            })
            .collect(),
        outcomes: with_any(
            Choice::list(
                ["requested", "success", "failure", "denied"]
                    .map(|o| (o.to_string(), o.to_string())),
                filter.outcome.map(Outcome::as_str),
            ),
            "any outcome",
        ),
        action: filter.action.clone().unwrap_or_default(),
        next: next_link("/audit", &q, listing.next_cursor(&rows)),
    };
    page_of(&page)
}

async fn member_emails(
    state: &AppState,
    visit: &Visit,
) -> Result<HashMap<UserId, String>, UiError> {
    let page = state
        .store
        .list_members(visit.caller.0.org_id, &PageRequest::first(DOCK_CHOICES))
        .await?;
    Ok(page
        .items
        .into_iter()
        .map(|m| (m.user_id, m.email))
        .collect())
}

// ---- members ----

fn role_choices(visit: &Visit, current: Option<Role>) -> Vec<Choice> {
    let current = current.map(|r| r.to_string());
    Choice::list(
        [Role::Viewer, Role::Developer, Role::Admin, Role::Owner]
            .into_iter()
            .filter(|r| visit.role().covers(*r))
            .map(|r| (r.to_string(), r.to_string())),
        current.as_deref(),
    )
}

pub(crate) async fn members(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    members_page(&state, &visit, &q, StatusCode::OK, None, None).await
}

async fn members_page(
    state: &AppState,
    visit: &Visit,
    q: &[(String, String)],
    status: StatusCode,
    invitation: Option<(String, String)>,
    error: Option<String>,
) -> UiResult {
    let listing = Listing::new("members");
    let request = listing.request(Some(&PAGE_ROWS.to_string()), given(q, "cursor").as_deref())?;
    let rows = state
        .store
        .list_members(visit.caller.0.org_id, &request)
        .await?;
    let page = MembersPage {
        chrome: visit.chrome("Members"),
        members: rows
            .items
            .iter()
            .map(|m| MemberRow {
                user_id: m.user_id.to_string(),
                email: m.email.clone(),
                role: m.role.to_string(),
                roles: role_choices(visit, Some(m.role)),
                since: when(&m.created_at),
                is_self: m.user_id == visit.caller.0.user_id,
            })
            .collect(),
        next: next_link("/members", q, listing.next_cursor(&rows)),
        can_manage: visit.can(Permission::MembersFull),
        roles: role_choices(visit, Some(Role::Developer)),
        invitation,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn add_member(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    let add = members::AddMember {
        email: answer(&form, "email").to_string(),
        role: answer(&form, "role").to_string(),
        invite: answer(&form, "invite") == "on",
    };
    match members::add_member(&state, &visit.caller, add).await {
        Ok(added) => {
            let invitation = added
                .invitation
                .map(|i| (added.member.email.clone(), i.token));
            members_page(&state, &visit, &[], StatusCode::CREATED, invitation, None).await
        }
        Err(e) => members_page(&state, &visit, &[], e.status, None, Some(e.message)).await,
    }
}

fn user_id(text: &str) -> Result<UserId, UiError> {
    text.parse()
        .map_err(|_| UiError(ApiError::not_found(format!("no member {text}"))))
}

pub(crate) async fn member_role(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    Path(user): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    members::change_role(
        &state,
        &visit.caller,
        user_id(&user)?,
        answer(&form, "role"),
    )
    .await?;
    see_other("/members")
}

pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    Path(user): Path<String>,
) -> UiResult {
    members::remove_member(&state, &visit.caller, user_id(&user)?).await?;
    see_other("/members")
}

// ---- tokens ----

pub(crate) async fn tokens(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    RawQuery(query): RawQuery,
) -> UiResult {
    let q = answers(query.unwrap_or_default().as_bytes());
    tokens_page(&state, &visit, &q, StatusCode::OK, None, None).await
}

async fn tokens_page(
    state: &AppState,
    visit: &Visit,
    q: &[(String, String)],
    status: StatusCode,
    made: Option<String>,
    error: Option<String>,
) -> UiResult {
    let user = Some(visit.caller.0.user_id);
    // The listing `GET /api/v1/tokens` reads for one's own tokens.
    let listing = Listing::new("tokens").filter("user", user);
    let request = listing.request(Some(&PAGE_ROWS.to_string()), given(q, "cursor").as_deref())?;
    let rows = state
        .store
        .list_tokens(visit.caller.0.org_id, user, &request)
        .await?;
    let page = TokensPage {
        chrome: visit.chrome("API tokens"),
        tokens: rows
            .items
            .iter()
            .map(|t| TokenRow {
                id: t.id.to_string(),
                name: t.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                role: t
                    .role
                    .map_or_else(|| "member's own".into(), |r| r.to_string()),
                created: when(&t.created_at),
                expires: t.expires_at.as_ref().map_or_else(|| "never".into(), when),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        next: next_link("/tokens", q, listing.next_cursor(&rows)),
        made,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    body: Bytes,
) -> UiResult {
    let form = answers(&body);
    let days = match given(&form, "expires_in_days").map(|d| d.parse::<i64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let error = Some("expires_in_days: must be a whole number of days".to_string());
            return tokens_page(
                &state,
                &visit,
                &[],
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                error,
            )
            .await;
        }
    };
    let create = members::CreateToken {
        name: given(&form, "name"),
        role: None,
        expires_in_days: days,
        user_id: None,
    };
    match members::make_token(&state, &visit.caller, create).await {
        Ok(made) => {
            tokens_page(
                &state,
                &visit,
                &[],
                StatusCode::CREATED,
                Some(made.token),
                None,
            )
            .await
        }
        Err(e) => tokens_page(&state, &visit, &[], e.status, None, Some(e.message)).await,
    }
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(visit): Extension<Visit>,
    Path(id): Path<String>,
) -> UiResult {
    members::revoke(&state, &visit.caller, &id).await?;
    see_other("/tokens")
}
