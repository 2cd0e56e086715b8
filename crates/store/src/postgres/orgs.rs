//! Organisations, users, memberships, API tokens and browser sessions.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use stackdock_core::{AuditEntry, OrgId, Role, TokenId, UserId};

use super::audit;
use super::codec::{get, id, micros, now, opt_micros, opt_parsed, parsed};
use super::error::{is_unique, reference_as, unique_as};
use crate::{
    Bootstrap, Login, Member, MemberKey, NewInvitation, NewSession, NewToken, Page, PageRequest,
    Principal, Result, StoreError, TokenInfo, TokenKey,
};

pub(crate) async fn bootstrap(
    c: &mut PgConnection,
    b: &Bootstrap,
    entry: &AuditEntry,
) -> Result<()> {
    let at = now();
    let org_taken = sqlx::query("SELECT 1 FROM orgs WHERE id = $1")
        .bind(b.org_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    if org_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("org {}", b.org_id),
        });
    }
    let email_taken = sqlx::query("SELECT 1 FROM users WHERE email = $1")
        .bind(&b.email)
        .fetch_optional(&mut *c)
        .await?;
    if email_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("user {:?}", b.email),
        });
    }
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(b.org_id.as_uuid())
        .bind(&b.org_name)
        .bind(at)
        .execute(&mut *c)
        .await
        .map_err(unique_as(|| format!("org {}", b.org_id)))?;
    let email = b.email.clone();
    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
        .bind(b.user_id.as_uuid())
        .bind(&b.email)
        .bind(at)
        .execute(&mut *c)
        .await
        .map_err(unique_as(|| format!("user {email:?}")))?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(b.org_id.as_uuid())
    .bind(b.user_id.as_uuid())
    .bind(Role::Owner.as_str())
    .bind(at)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, org_id, token_hash, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(b.token_id.as_uuid())
    .bind(b.user_id.as_uuid())
    .bind(b.org_id.as_uuid())
    .bind(&b.token_hash)
    .bind(at)
    .execute(&mut *c)
    .await
    // Never name the hash: it is as good as the token to anyone who can query the table.
    .map_err(unique_as(|| format!("api token {}", b.token_id)))?;
    audit::append(c, entry).await?;
    Ok(())
}

pub(crate) async fn first_org(c: &mut PgConnection) -> Result<Option<OrgId>> {
    let row = sqlx::query("SELECT id FROM orgs ORDER BY created_at, id LIMIT 1")
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| id(&r, "id")).transpose()
}

pub(crate) async fn principal_for_token(
    c: &mut PgConnection,
    token_hash: &str,
) -> Result<Option<Principal>> {
    // The membership decides the role, so a user removed from the org loses access even
    // while their token is still unrevoked; a token's own role only narrows it.
    let row = sqlx::query(
        "SELECT u.id AS user_id, u.email, t.org_id, m.role AS member_role, t.id AS token_id,
                t.role, t.expires_at
         FROM api_tokens t
         JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
         JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.purpose = 'api'",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let expires: Option<chrono::DateTime<chrono::Utc>> = get(&row, "expires_at")?;
    if expires.is_some_and(|e| e <= now()) {
        return Ok(None);
    }
    let member_role: Role = parsed(&row, "member_role")?;
    let role = match opt_parsed::<Role>(&row, "role")? {
        Some(own) => own.at_most(member_role),
        None => member_role,
    };
    Ok(Some(Principal {
        user_id: id(&row, "user_id")?,
        email: get(&row, "email")?,
        org_id: id(&row, "org_id")?,
        role,
        token_id: id(&row, "token_id")?,
    }))
}

/// The member's role in the org, if they are one.
async fn member_role(c: &mut PgConnection, org: OrgId, user: UserId) -> Result<Option<Role>> {
    let row = sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| parsed(&r, "role")).transpose()
}

pub(crate) async fn create_token(
    c: &mut PgConnection,
    t: &NewToken,
    entry: &AuditEntry,
) -> Result<TokenInfo> {
    let Some(member) = member_role(c, t.org_id, t.user_id).await? else {
        return Err(StoreError::NotFound {
            what: format!("member {} of org {}", t.user_id, t.org_id),
        });
    };
    if let Some(role) = t.role
        && !member.covers(role)
    {
        return Err(StoreError::Refused {
            message: format!("a {member} cannot hold a token with role {role}"),
        });
    }
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, org_id, token_hash, created_at, name, role,
                                 expires_at, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id.as_uuid())
    .bind(t.user_id.as_uuid())
    .bind(t.org_id.as_uuid())
    .bind(&t.token_hash)
    .bind(now())
    .bind(&t.name)
    .bind(t.role.map(Role::as_str))
    .bind(opt_micros(t.expires_at.as_ref()))
    .bind(if t.invitation { "invitation" } else { "api" })
    .execute(&mut *c)
    .await
    // Never name the hash: it is as good as the token to anyone who can query the table.
    .map_err(unique_as(|| format!("api token {}", t.id)))?;
    audit::append(c, entry).await?;
    token(c, t.org_id, t.id).await
}

const TOKEN_COLUMNS: &str = "t.id, t.org_id, t.user_id, u.email, t.name, t.role, t.created_at, \
     t.expires_at, t.revoked_at";

fn token_info(r: &PgRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: id(r, "id")?,
        org_id: id(r, "org_id")?,
        user_id: id(r, "user_id")?,
        email: get(r, "email")?,
        name: get(r, "name")?,
        role: opt_parsed(r, "role")?,
        created_at: get(r, "created_at")?,
        expires_at: get(r, "expires_at")?,
        revoked_at: get(r, "revoked_at")?,
    })
}

async fn token(c: &mut PgConnection, org: OrgId, token_id: TokenId) -> Result<TokenInfo> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.org_id = $1 AND t.id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(token_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("token {token_id}"),
        })?;
    token_info(&row)
}

/// A page of the org's tokens (of `user` only, if given), newest first by `(created_at, id)`:
/// those below `page.after`.
pub(crate) async fn list_tokens(
    c: &mut PgConnection,
    org: OrgId,
    user: Option<UserId>,
    page: &PageRequest<TokenKey>,
) -> Result<Page<TokenInfo, TokenKey>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.org_id = $1 AND ($2::uuid IS NULL OR t.user_id = $2) AND t.purpose = 'api'
           AND ($3::timestamptz IS NULL OR (t.created_at, t.id) < ($3, $4::uuid))
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT $5"
    );
    // One row more than the page, to know whether another follows.
    let tokens = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(user.map(|u| u.as_uuid()))
        .bind(page.after.as_ref().map(|k| micros(&k.created_at)))
        .bind(page.after.as_ref().map(|k| k.id.as_uuid()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(token_info)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(tokens, page.limit, |t| TokenKey {
        created_at: t.created_at,
        id: t.id,
    }))
}

pub(crate) async fn revoke_token(
    c: &mut PgConnection,
    org: OrgId,
    token_id: TokenId,
    user: Option<UserId>,
    entry: &AuditEntry,
) -> Result<TokenInfo> {
    // Locked, so two revocations at once are one revocation and one refusal.
    sqlx::query("SELECT 1 FROM api_tokens WHERE org_id = $1 AND id = $2 FOR UPDATE")
        .bind(org.as_uuid())
        .bind(token_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    let current = token(c, org, token_id).await?;
    if user.is_some_and(|u| u != current.user_id) {
        // Another member's token reads as absent to someone who may only manage their own.
        return Err(StoreError::NotFound {
            what: format!("token {token_id}"),
        });
    }
    if current.revoked_at.is_some() {
        return Err(StoreError::Refused {
            message: format!("token {token_id} is already revoked"),
        });
    }
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE org_id = $2 AND id = $3")
        .bind(now())
        .bind(org.as_uuid())
        .bind(token_id.as_uuid())
        .execute(&mut *c)
        .await?;
    audit::append(c, entry).await?;
    token(c, org, token_id).await
}

/// [`add_member`], then the member's invitation when one is asked for, on the same
/// connection (the caller's transaction).
pub(crate) async fn add_member_invited(
    c: &mut PgConnection,
    org: OrgId,
    (email, role, entry): (&str, Role, &AuditEntry),
    invitation: Option<&NewInvitation>,
) -> Result<Member> {
    let member = add_member(c, org, email, role, entry).await?;
    if let Some(inv) = invitation {
        let token = inv.token(org, member.user_id);
        create_token(c, &token, &inv.audit_for(member.user_id)).await?;
    }
    Ok(member)
}

pub(crate) async fn add_member(
    c: &mut PgConnection,
    org: OrgId,
    email: &str,
    role: Role,
    entry: &AuditEntry,
) -> Result<Member> {
    let at = now();
    let known = sqlx::query("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *c)
        .await?;
    let user_id = match known {
        Some(row) => id(&row, "id")?,
        None => {
            let new = UserId::new();
            sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
                .bind(new.as_uuid())
                .bind(email)
                .bind(at)
                .execute(&mut *c)
                .await
                .map_err(unique_as(|| format!("user {email:?}")))?;
            new
        }
    };
    if member_role(c, org, user_id).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("member {email:?}"),
        });
    }
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org.as_uuid())
    .bind(user_id.as_uuid())
    .bind(role.as_str())
    .bind(at)
    .execute(&mut *c)
    .await
    .map_err(|e| {
        if is_unique(&e) {
            StoreError::AlreadyExists {
                what: format!("member {email:?}"),
            }
        } else {
            reference_as(|| format!("org {org}"))(e)
        }
    })?;
    audit::append(c, entry).await?;
    member_of(c, org, user_id)
        .await
        .map_err(|_| StoreError::Corrupt("a member just added is missing".into()))
}

fn member(r: &PgRow) -> Result<Member> {
    Ok(Member {
        user_id: id(r, "id")?,
        email: get(r, "email")?,
        role: parsed(r, "role")?,
        created_at: get(r, "created_at")?,
    })
}

const MEMBER_SELECT: &str = "SELECT u.id, u.email, m.role, m.created_at FROM memberships m
     JOIN users u ON u.id = m.user_id";

/// A page of the org's members, oldest first by `(created_at, user_id)`: those after
/// `page.after`.
pub(crate) async fn list_members(
    c: &mut PgConnection,
    org: OrgId,
    page: &PageRequest<MemberKey>,
) -> Result<Page<Member, MemberKey>> {
    let sql = format!(
        "{MEMBER_SELECT}
         WHERE m.org_id = $1
           AND ($2::timestamptz IS NULL OR (m.created_at, m.user_id) > ($2, $3::uuid))
         ORDER BY m.created_at, m.user_id
         LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(page.after.as_ref().map(|k| micros(&k.created_at)))
        .bind(page.after.as_ref().map(|k| k.id.as_uuid()))
        // One row more than the page, to know whether another follows.
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(member)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, page.limit, |m| MemberKey {
        created_at: m.created_at,
        id: m.user_id,
    }))
}

/// Refuses a change that would leave the org without an owner: `user` is its last one.
///
/// The owners' rows are locked before they are counted, so two owners demoting each other at
/// once cannot both pass: the second counts after the first commits.
async fn keep_an_owner(c: &mut PgConnection, org: OrgId, user: UserId, change: &str) -> Result<()> {
    let owners = sqlx::query(
        "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE",
    )
    .bind(org.as_uuid())
    .fetch_all(&mut *c)
    .await?;
    let owners: Vec<UserId> = owners
        .iter()
        .map(|r| id(r, "user_id"))
        .collect::<Result<_>>()?;
    if owners.contains(&user) && owners.len() <= 1 {
        return Err(StoreError::Refused {
            message: format!(
                "cannot {change} the organisation's last owner; make another member owner first"
            ),
        });
    }
    Ok(())
}

async fn member_of(c: &mut PgConnection, org: OrgId, user: UserId) -> Result<Member> {
    let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2");
    let row = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("member {user}"),
        })?;
    member(&row)
}

pub(crate) async fn set_member_role(
    c: &mut PgConnection,
    org: OrgId,
    user: UserId,
    role: Role,
    entry: &AuditEntry,
) -> Result<Member> {
    member_of(c, org, user).await?;
    if role != Role::Owner {
        keep_an_owner(c, org, user, "demote").await?;
    }
    sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .execute(&mut *c)
        .await?;
    audit::append(c, entry).await?;
    member_of(c, org, user).await
}

pub(crate) async fn remove_member(
    c: &mut PgConnection,
    org: OrgId,
    user: UserId,
    entry: &AuditEntry,
) -> Result<()> {
    member_of(c, org, user).await?;
    keep_an_owner(c, org, user, "remove").await?;
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .execute(&mut *c)
        .await?;
    audit::append(c, entry).await?;
    Ok(())
}

pub(crate) async fn set_password(
    c: &mut PgConnection,
    user: UserId,
    hash: &str,
    entry: &AuditEntry,
) -> Result<()> {
    let changed = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user.as_uuid())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("user {user}"),
        });
    }
    audit::append(c, entry).await?;
    Ok(())
}

pub(crate) async fn login(c: &mut PgConnection, email: &str) -> Result<Option<Login>> {
    let row = sqlx::query(
        "SELECT u.id, m.org_id, u.password_hash FROM users u
         JOIN memberships m ON m.user_id = u.id
         WHERE lower(u.email) = lower($1) ORDER BY m.created_at, m.org_id LIMIT 1",
    )
    .bind(email)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| {
        Ok(Login {
            user_id: id(&r, "id")?,
            org_id: id(&r, "org_id")?,
            password_hash: get(&r, "password_hash")?,
        })
    })
    .transpose()
}

pub(crate) async fn create_session(
    c: &mut PgConnection,
    s: &NewSession,
    entry: &AuditEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, secret_hash, csrf_hash, user_id, org_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id.as_uuid())
    .bind(&s.secret_hash)
    .bind(&s.csrf_hash)
    .bind(s.user_id.as_uuid())
    .bind(s.org_id.as_uuid())
    .bind(now())
    .bind(micros(&s.expires_at))
    .execute(&mut *c)
    .await
    .map_err(unique_as(|| format!("session {}", s.id)))?;
    audit::append(c, entry).await?;
    Ok(())
}

pub(crate) async fn principal_for_session(
    c: &mut PgConnection,
    secret_hash: &str,
) -> Result<Option<(Principal, String)>> {
    let row = sqlx::query(
        "SELECT u.id AS user_id, u.email, s.org_id, m.role, s.id AS session_id, s.csrf_hash
         FROM sessions s
         JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
         JOIN users u ON u.id = s.user_id
         WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2",
    )
    .bind(secret_hash)
    .bind(now())
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some((
        Principal {
            user_id: id(&row, "user_id")?,
            email: get(&row, "email")?,
            org_id: id(&row, "org_id")?,
            role: parsed(&row, "role")?,
            token_id: id(&row, "session_id")?,
        },
        get(&row, "csrf_hash")?,
    )))
}

pub(crate) async fn end_session(c: &mut PgConnection, secret_hash: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE secret_hash = $2 AND ended_at IS NULL")
        .bind(now())
        .bind(secret_hash)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Takes up an invitation. The token row is locked as it is read, so of two acceptances at
/// once the second finds it revoked.
/// [`accept_invitation`], then the member's password set with `audit` (its org and actor
/// the invitation's), on one connection's transaction.
pub(crate) async fn take_up_invitation(
    c: &mut PgConnection,
    token_hash: &str,
    password_hash: &str,
    audit: &AuditEntry,
) -> Result<Option<Login>> {
    let Some(login) = accept_invitation(c, token_hash).await? else {
        return Ok(None);
    };
    let audit = AuditEntry {
        org_id: login.org_id,
        actor: Some(login.user_id),
        ..audit.clone()
    };
    set_password(c, login.user_id, password_hash, &audit).await?;
    Ok(Some(login))
}

pub(crate) async fn accept_invitation(
    c: &mut PgConnection,
    token_hash: &str,
) -> Result<Option<Login>> {
    let row = sqlx::query(
        "SELECT t.id, t.user_id, t.org_id, t.expires_at FROM api_tokens t
         JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
         WHERE t.token_hash = $1 AND t.purpose = 'invitation' AND t.revoked_at IS NULL
         FOR UPDATE OF t",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let expires: Option<chrono::DateTime<chrono::Utc>> = get(&row, "expires_at")?;
    if expires.is_some_and(|e| e <= now()) {
        return Ok(None);
    }
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now())
        .bind(get::<uuid::Uuid>(&row, "id")?)
        .execute(&mut *c)
        .await?;
    Ok(Some(Login {
        user_id: id(&row, "user_id")?,
        org_id: id(&row, "org_id")?,
        password_hash: None,
    }))
}
