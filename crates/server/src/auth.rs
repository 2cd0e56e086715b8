//! Bearer tokens: who is calling, and whether their role allows what the route does.
//!
//! A token is shown to its owner once and stored only as its SHA-256 hash.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use rand::RngCore;
use sha2::{Digest, Sha256};
use stackdock_core::{AuditEntry, OrgId, Outcome, Permission, RequestId, TokenId, UserId};
use stackdock_engine::Actor;
use stackdock_store::{Bootstrap, Principal, Store, StoreError};

use crate::AppState;
use crate::error::ApiError;

/// A token's text, as handed to its owner once.
pub struct Token(pub String);

impl Token {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(format!("sdt_{}", hex::encode(bytes)))
    }

    pub fn hash(text: &str) -> String {
        hex::encode(Sha256::digest(text.trim().as_bytes()))
    }
}

/// Creates the first organisation, its owner and an owner token if the store has none.
/// Returns the token text when it made one (it cannot be recovered later).
pub async fn ensure_owner(store: &dyn Store) -> Result<Option<(OrgId, Token)>, StoreError> {
    if store.first_org().await?.is_some() {
        return Ok(None);
    }
    let token = Token::generate();
    let b = Bootstrap {
        org_id: OrgId::new(),
        org_name: "default".into(),
        user_id: UserId::new(),
        email: "owner@localhost".into(),
        token_id: TokenId::new(),
        token_hash: Token::hash(&token.0),
    };
    let audit = AuditEntry::new(b.org_id, Some(b.user_id), "org.bootstrap", Outcome::Success)
        .resource(format!("orgs/{}", b.org_id));
    match store.bootstrap(&b, audit).await {
        Ok(()) => Ok(Some((b.org_id, token))),
        // Another node on the same database bootstrapped first, between our look and our
        // write: its organisation and owner stand, and this node has no token to show.
        Err(StoreError::AlreadyExists { .. }) if store.first_org().await?.is_some() => Ok(None),
        Err(e) => Err(e),
    }
}

/// An authenticated caller, and the request they made: the route guard puts it in the request
/// for the handler.
#[derive(Clone)]
pub struct Caller(pub Principal, pub RequestId);

impl Caller {
    /// Answers 403 naming the permission when the caller's role lacks it: for what a handler
    /// decides beyond its route's declared access (acting for another member, say).
    pub fn require(&self, permission: Permission) -> Result<Actor, ApiError> {
        if self.0.role.allows(permission) {
            Ok(self.actor())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("role {} lacks permission {permission}", self.0.role),
            ))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            org_id: self.0.org_id,
            user_id: Some(self.0.user_id),
            token_id: Some(self.0.token_id),
            request_id: Some(self.1),
        }
    }

    /// The caller a bearer token, or else a session cookie, stands for; 401 when neither is
    /// there or what is there is unknown, revoked or expired. A request that changes something
    /// on a session's strength must carry the session's CSRF token in `X-CSRF-Token` (403).
    pub async fn authenticate(
        state: &AppState,
        headers: &HeaderMap,
        method: &Method,
    ) -> Result<Self, ApiError> {
        let unauthenticated =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m);
        let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
            return match session_secret(headers) {
                Some(secret) => Self::from_session(state, headers, method, &secret).await,
                None => Err(unauthenticated(
                    "missing Authorization: Bearer <token> header (or a signed-in session)",
                )),
            };
        };
        let text = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthenticated("Authorization header must be Bearer <token>"))?;
        let principal = state
            .store
            .principal_for_token(&Token::hash(text))
            .await?
            .ok_or_else(|| unauthenticated("unknown, revoked or expired token"))?;
        Ok(Caller(principal, RequestId::new()))
    }
}

impl Caller {
    async fn from_session(
        state: &AppState,
        headers: &HeaderMap,
        method: &Method,
        secret: &str,
    ) -> Result<Self, ApiError> {
        let (principal, csrf_hash) = state
            .store
            .principal_for_session(&Token::hash(secret))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the session has ended or expired; sign in again",
                )
            })?;
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(Token::hash);
        if !safe && given.as_deref() != Some(csrf_hash.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a change made with a session cookie needs the session's CSRF token in the \
                 X-CSRF-Token header",
            ));
        }
        Ok(Caller(principal, RequestId::new()))
    }
}

/// The cookie a browser session rides on.
pub const SESSION_COOKIE: &str = "sd_session";

/// The header a session's CSRF token comes back in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session secret in the request's cookies, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(caller.clone()),
            None => Self::authenticate(state, &parts.headers, &parts.method).await,
        }
    }
}
