//! `/api/v1/members` and `/api/v1/tokens`: who belongs to the organisation, and the API tokens
//! they call with.
//!
//! Any member lists the members and manages their own tokens; acting on another member's
//! tokens, or adding members, needs `members:full`. A token's text is answered once, when it is
//! made; only its hash is kept.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use stackdock_core::{Outcome, Permission, Role, TokenId, UserId};
use stackdock_store::{NewInvitation, NewToken};

use super::body_error;
use super::page::{Listing, PageQuery};
use super::{path_error, query_error};
use crate::AppState;
use crate::auth::{Caller, Token};
use crate::error::ApiError;
use crate::view::{AddedMemberView, CreatedTokenView, InvitationView, MemberView, TokenView};

/// The longest a token may be made to last.
const MAX_TOKEN_DAYS: i64 = 3650;

/// `GET /api/v1/members`: a page of the org's members, oldest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let listing = Listing::new("members");
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let members = state.store.list_members(caller.0.org_id, &page).await?;
    Ok(listing.answer(&uri, &members, MemberView::from))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMember {
    #[schemars(email)]
    pub(crate) email: String,
    #[schemars(with = "Role")]
    pub(crate) role: String,
    /// Answer a one-time invitation with which the new member sets a password.
    #[serde(default)]
    pub(crate) invite: bool,
}

/// How long an invitation stays good.
const INVITATION_DAYS: i64 = 7;

pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<AddMember>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(b) = body.map_err(body_error)?;
    let view = add_member(&state, &caller, b).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Adds a member (with a one-time invitation when asked), for the API and the web UI.
pub(crate) async fn add_member(
    state: &AppState,
    caller: &Caller,
    b: AddMember,
) -> Result<AddedMemberView, ApiError> {
    let actor = caller.actor();
    // Addresses are compared without regard to case: sign-in lowercases what it is given.
    let email = b.email.trim().to_lowercase();
    let email = email.as_str();
    if email.is_empty() || !email.contains('@') || email.len() > 254 {
        return Err(ApiError::bad_request(
            "email: must be an email address (name@host)",
        ));
    }
    let role: Role = b
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("role: {e}")))?;
    if !caller.0.role.covers(role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {} cannot add a member with role {role}", caller.0.role),
        ));
    }
    let audit = actor
        .audit("member.add", Outcome::Success)
        .details(json!({"email": email, "role": role}));
    // The invitation is made with the member, in one write: a member added without the
    // invitation asked for could never be given one.
    let invitation = b.invite.then(|| {
        let text = Token::generate();
        let asked = NewInvitation {
            id: TokenId::new(),
            token_hash: Token::hash(&text.0),
            expires_at: chrono::Utc::now() + chrono::TimeDelta::days(INVITATION_DAYS),
            audit: actor.audit("member.invite", Outcome::Success),
        };
        (text, asked)
    });
    let asked = invitation.as_ref().map(|(_, asked)| asked.clone());
    let member = state
        .store
        .add_member_invited(actor.org_id, email, role, audit, asked)
        .await?;
    let view = AddedMemberView {
        member: MemberView::from(&member),
        // The only time the invitation is shown; it opens nothing but setting a password.
        invitation: invitation.map(|(text, asked)| InvitationView {
            token: text.0,
            expires_at: asked.expires_at,
        }),
    };
    Ok(view)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokensQuery {
    /// Every member's tokens, not only the caller's (needs `members:full`).
    all: Option<bool>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    cursor: Option<String>,
}

/// `GET /api/v1/tokens`: a page of the caller's tokens (everyone's with `all=true`), newest
/// first.
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let user = if q.all.unwrap_or(false) {
        caller.require(Permission::MembersFull)?;
        None
    } else {
        Some(caller.0.user_id)
    };
    // The user is part of the listing: a cursor of one's own tokens does not page everyone's.
    let listing = Listing::new("tokens").filter("user", user);
    let page = listing.request(q.limit.as_deref(), q.cursor.as_deref())?;
    let tokens = state
        .store
        .list_tokens(caller.0.org_id, user, &page)
        .await?;
    Ok(listing.answer(&uri, &tokens, TokenView::from))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    pub(crate) name: Option<String>,
    /// At most the member's own role; the member's role when left out.
    #[schemars(with = "Option<Role>")]
    pub(crate) role: Option<String>,
    /// Whole days until it expires; never when left out.
    #[schemars(range(min = 1, max = 3650))]
    pub(crate) expires_in_days: Option<i64>,
    /// Make it for another member (needs `members:full`).
    pub(crate) user_id: Option<String>,
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(b) = body.map_err(body_error)?;
    let view = make_token(&state, &caller, b).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Makes an API token; its text is in the answer, the only time it is shown.
pub(crate) async fn make_token(
    state: &AppState,
    caller: &Caller,
    b: CreateToken,
) -> Result<CreatedTokenView, ApiError> {
    let actor = caller.actor();
    let user: UserId = match &b.user_id {
        None => caller.0.user_id,
        Some(text) => {
            caller.require(Permission::MembersFull)?;
            text.parse()
                .map_err(|_| ApiError::bad_request(format!("user_id: {text:?} is not a user id")))?
        }
    };
    let role = b
        .role
        .as_deref()
        .map(|r| r.parse::<Role>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("role: {e}")))?;
    if let Some(name) = &b.name
        && (name.trim().is_empty() || name.len() > 100)
    {
        return Err(ApiError::bad_request("name: must be 1 to 100 characters"));
    }
    let expires_at = match b.expires_in_days {
        None => None,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => {
            Some(chrono::Utc::now() + chrono::TimeDelta::days(d))
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "expires_in_days: must be between 1 and {MAX_TOKEN_DAYS}"
            )));
        }
    };
    let text = Token::generate();
    let id = TokenId::new();
    let audit = actor
        .audit("token.create", Outcome::Success)
        .resource(format!("tokens/{id}"))
        .details(json!({"for": user, "role": role, "name": b.name}));
    let made = state
        .store
        .create_token(
            NewToken {
                id,
                org_id: actor.org_id,
                user_id: user,
                token_hash: Token::hash(&text.0),
                name: b.name.clone(),
                role,
                expires_at,
                invitation: false,
            },
            audit,
        )
        .await?;
    // The only time the text is shown.
    Ok(CreatedTokenView {
        info: TokenView::from(&made),
        token: text.0,
    })
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TokenView>, ApiError> {
    let Path(text) = path.map_err(path_error)?;
    Ok(Json(revoke(&state, &caller, &text).await?))
}

/// Revokes a token: one's own, or anyone's with `members:full`.
pub(crate) async fn revoke(
    state: &AppState,
    caller: &Caller,
    text: &str,
) -> Result<TokenView, ApiError> {
    let actor = caller.actor();
    let id: TokenId = text
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a token id (a UUID)")))?;
    // Another member's token is theirs to revoke, or an admin's.
    let only_own = (!caller.0.role.allows(Permission::MembersFull)).then_some(caller.0.user_id);
    let audit = actor
        .audit("token.revoke", Outcome::Success)
        .resource(format!("tokens/{id}"));
    let revoked = state
        .store
        .revoke_token(actor.org_id, id, only_own, audit)
        .await?;
    Ok(TokenView::from(&revoked))
}

fn user_in_path(path: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(text) = path.map_err(path_error)?;
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a user id (a UUID)")))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    #[schemars(with = "Role")]
    role: String,
}

pub(crate) async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<SetRole>, JsonRejection>,
) -> Result<Json<MemberView>, ApiError> {
    let user = user_in_path(path)?;
    let Json(b) = body.map_err(body_error)?;
    Ok(Json(change_role(&state, &caller, user, &b.role).await?))
}

/// Gives a member another role, at most the caller's own.
pub(crate) async fn change_role(
    state: &AppState,
    caller: &Caller,
    user: UserId,
    role: &str,
) -> Result<MemberView, ApiError> {
    let actor = caller.actor();
    let role: Role = role
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("role: {e}")))?;
    if !caller.0.role.covers(role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {} cannot give the role {role}", caller.0.role),
        ));
    }
    let audit = actor
        .audit("member.role", Outcome::Success)
        .resource(format!("members/{user}"))
        .details(json!({"role": role}));
    let member = state
        .store
        .set_member_role(actor.org_id, user, role, audit)
        .await?;
    Ok(MemberView::from(&member))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let user = user_in_path(path)?;
    remove_member(&state, &caller, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member from the organisation, audited.
pub(crate) async fn remove_member(
    state: &AppState,
    caller: &Caller,
    user: UserId,
) -> Result<(), ApiError> {
    let actor = caller.actor();
    let audit = actor
        .audit("member.remove", Outcome::Success)
        .resource(format!("members/{user}"));
    state.store.remove_member(actor.org_id, user, audit).await?;
    Ok(())
}
