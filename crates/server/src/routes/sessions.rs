//! Signing in with a password, for the web UI: `POST /api/v1/sessions` answers a session
//! cookie (`HttpOnly`, `SameSite=Strict`) and the CSRF token that every change made with it
//! must carry; `DELETE /api/v1/sessions` signs out; `PUT /api/v1/me/password` sets the caller's
//! password (an Argon2id hash is kept, never the password).
//!
//! Failed sign-ins are limited per account and per address: past the limit within the window a
//! sign-in is refused with 429 before the password is even checked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use stackdock_core::{AuditEntry, OrgId, Outcome, TokenId};
use stackdock_store::{Batch, NewSession, Write};

use super::body_error;
use crate::AppState;
use crate::auth::{Caller, SESSION_COOKIE, Token, session_secret};
use crate::error::ApiError;
use crate::view::SessionView;

/// How long a session lasts.
const SESSION_HOURS: i64 = 12;
/// The same, for a cookie's `Max-Age`.
pub(crate) const SESSION_SECONDS: i64 = SESSION_HOURS * 3600;
/// Failed sign-ins counted back this far.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed in the window, per account and per address.
const PER_ACCOUNT: usize = 5;
const PER_ADDRESS: usize = 20;
/// Accounts and addresses remembered before the aged-out ones are dropped.
const PRUNE_ABOVE: usize = 10_000;
/// The shortest password accepted.
const MIN_PASSWORD: usize = 12;

/// Failed sign-ins in the last [`WINDOW`], by account and by address.
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl SignInLimiter {
    /// `Some(wait)` when `key` has used up its failures.
    fn refused(&self, key: &str, limit: usize) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let seen = map.entry(key.to_string()).or_default();
        seen.retain(|at| now.duration_since(*at) < WINDOW);
        (seen.len() >= limit).then(|| WINDOW - now.duration_since(seen[0]))
    }

    fn failed(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Guesses at many accounts must not grow the table without end: forget whatever has
        // aged out of the window once it is large.
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, seen| {
                seen.last()
                    .is_some_and(|at| now.duration_since(*at) < WINDOW)
            });
        }
        map.entry(key.to_string()).or_default().push(now);
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    email: String,
    password: String,
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(body_error)?;
    let login = match check_password_sign_in(&state, &b.email, b.password, peer).await {
        Ok(login) => login,
        Err(SignInRefused::Limited(wait)) => return Ok(limited(wait)),
        Err(SignInRefused::Error(e)) => return Err(e),
    };
    open_session(&state, &login, peer).await
}

/// Why a password sign-in was refused.
pub(crate) enum SignInRefused {
    /// Too many failures for the account or the address; try again after this long.
    Limited(Duration),
    /// A wrong email or password (401, one answer for both), or the store failed.
    Error(ApiError),
}

impl From<ApiError> for SignInRefused {
    fn from(e: ApiError) -> Self {
        Self::Error(e)
    }
}

/// The 429 of a limited sign-in, with its `Retry-After`.
fn limited(wait: Duration) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed sign-ins; {}", retry_in(wait)),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// "try again in N s", for a limited sign-in.
pub(crate) fn retry_in(wait: Duration) -> String {
    format!("try again in {} s", wait.as_secs().max(1))
}

/// Checks an email and password for a sign-in, counting failures against the account and the
/// address and auditing a failure on a known account: the JSON API and the web UI's form both
/// sign in through here.
pub(crate) async fn check_password_sign_in(
    state: &AppState,
    email: &str,
    password: String,
    peer: SocketAddr,
) -> Result<stackdock_store::Login, SignInRefused> {
    let email = email.trim().to_lowercase();
    let (account, address) = (format!("account:{email}"), format!("address:{}", peer.ip()));
    let limiter = &state.sign_in;
    if let Some(wait) = limiter
        .refused(&account, PER_ACCOUNT)
        .or_else(|| limiter.refused(&address, PER_ADDRESS))
    {
        return Err(SignInRefused::Limited(wait));
    }
    let login = state.store.login(&email).await.map_err(ApiError::from)?;
    let hash = login.as_ref().and_then(|l| l.password_hash.clone());
    let verified = match hash {
        Some(hash) => verify_password(password, hash).await?,
        None => false,
    };
    match login {
        Some(l) if verified => Ok(l),
        known => {
            limiter.failed(&account);
            limiter.failed(&address);
            if let Some(l) = known {
                let audit = AuditEntry::new(
                    l.org_id,
                    Some(l.user_id),
                    "session.create",
                    Outcome::Failure,
                )
                .details(json!({"address": peer.ip().to_string()}));
                state
                    .store
                    .apply(Batch::new().push(Write::Audit(audit)))
                    .await
                    .map_err(ApiError::from)?;
            }
            // One answer for an unknown email and a wrong password: neither is told apart.
            Err(SignInRefused::Error(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "wrong email or password",
            )))
        }
    }
}

/// Records a session for `login` and answers its cookie and CSRF token.
async fn open_session(
    state: &AppState,
    login: &stackdock_store::Login,
    peer: SocketAddr,
) -> Result<Response, ApiError> {
    let opened = start_session(state, login, peer).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(SessionView {
            user_id: login.user_id,
            org_id: login.org_id,
            csrf_token: opened.csrf.0,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&opened.secret.0)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// A session just recorded: its secret (the cookie's value) and its CSRF token, each shown
/// this once; the store keeps their hashes.
pub(crate) struct OpenedSession {
    pub(crate) secret: Token,
    pub(crate) csrf: Token,
}

/// Records a new session for `login`, audited.
pub(crate) async fn start_session(
    state: &AppState,
    login: &stackdock_store::Login,
    peer: SocketAddr,
) -> Result<OpenedSession, ApiError> {
    let (secret, csrf) = (Token::generate(), Token::generate());
    let id = TokenId::new();
    let audit = AuditEntry::new(
        login.org_id,
        Some(login.user_id),
        "session.create",
        Outcome::Success,
    )
    .resource(format!("sessions/{id}"))
    .details(json!({"address": peer.ip().to_string()}));
    state
        .store
        .create_session(
            NewSession {
                id,
                secret_hash: Token::hash(&secret.0),
                csrf_hash: Token::hash(&csrf.0),
                user_id: login.user_id,
                org_id: login.org_id,
                expires_at: chrono::Utc::now() + chrono::TimeDelta::hours(SESSION_HOURS),
            },
            audit,
        )
        .await?;
    Ok(OpenedSession { secret, csrf })
}

/// The `Set-Cookie` value that carries a session.
pub(crate) fn session_cookie(secret: &str) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}"
    )
}

/// The `Set-Cookie` value that ends a session's cookie.
pub(crate) fn ended_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accept {
    token: String,
    #[schemars(length(min = 12))]
    password: String,
}

/// Takes up an invitation: sets the new member's password and signs them in.
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<Accept>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(body_error)?;
    let login = take_up_invitation(&state, &b.token, b.password).await?;
    open_session(&state, &login, peer).await
}

/// Uses up an invitation and sets the new member's password (audited); the API and the web
/// UI's invitation form then open a session for the member.
pub(crate) async fn take_up_invitation(
    state: &AppState,
    token: &str,
    password: String,
) -> Result<stackdock_store::Login, ApiError> {
    check_password(&password)?;
    // Hashed first: the invitation is used up in the same transaction that sets the
    // password, so it is never spent without one. The store puts the invitation's org and
    // member on the audit row.
    let hash = hash_password(password).await?;
    let audit = AuditEntry::new(OrgId::default(), None, "user.password", Outcome::Success)
        .details(json!({"through": "invitation"}));
    let Some(login) = state
        .store
        .accept_invitation(&Token::hash(token), hash, audit)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the invitation is unknown, used or expired; ask for a new one",
        ));
    };
    Ok(login)
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ApiError::invalid(format!(
            "password: must be {MIN_PASSWORD} to 1024 characters"
        )));
    }
    Ok(())
}

/// Whether `password` matches the stored PHC `hash`, checked off the async threads.
async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "hash", e.to_string()))
}

/// An Argon2id hash of `password` in PHC form, made off the async threads.
async fn hash_password(password: String) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let failed = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "hash", e);
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(|e| failed(e.to_string()))
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = session_secret(&headers) {
        state.store.end_session(&Token::hash(&secret)).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&ended_session_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    #[schemars(length(min = 12))]
    password: String,
}

pub(crate) async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<SetPassword>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let actor = caller.actor();
    let Json(b) = body.map_err(body_error)?;
    check_password(&b.password)?;
    let hash = hash_password(b.password).await?;
    let audit = actor.audit("user.password", Outcome::Success);
    state
        .store
        .set_password(caller.0.user_id, hash, audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
