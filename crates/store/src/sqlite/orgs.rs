//! Organisations, users, memberships and API tokens.

use rusqlite::{Connection, OptionalExtension, params};
use stackdock_core::{AuditEntry, OrgId, Role, TokenId, UserId};

use super::audit;
use super::codec::{now, opt_ts, parse, parse_opt, parse_opt_ts, parse_ts, ts};
use super::error::{reference_as, unique_as};
use super::reader::rows;
use crate::{
    Bootstrap, Login, Member, MemberKey, NewSession, NewToken, Page, PageRequest, Principal,
    Result, StoreError, TokenInfo, TokenKey,
};

pub(crate) fn bootstrap(conn: &Connection, b: &Bootstrap, entry: &AuditEntry) -> Result<()> {
    let at = ts(&now());
    let org_taken: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM orgs WHERE id = ?1",
            params![b.org_id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if org_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("org {}", b.org_id),
        });
    }
    let email_taken: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM users WHERE email = ?1",
            params![b.email],
            |r| r.get(0),
        )
        .optional()?;
    if email_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("user {:?}", b.email),
        });
    }

    conn.execute(
        "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![b.org_id.to_string(), b.org_name, at],
    )
    .map_err(unique_as(|| format!("org {}", b.org_id)))?;
    conn.execute(
        "INSERT INTO users (id, email, created_at) VALUES (?1, ?2, ?3)",
        params![b.user_id.to_string(), b.email, at],
    )
    .map_err(unique_as(|| format!("user {}", b.user_id)))?;
    conn.execute(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            b.org_id.to_string(),
            b.user_id.to_string(),
            Role::Owner.as_str(),
            at
        ],
    )?;
    conn.execute(
        "INSERT INTO api_tokens (id, user_id, org_id, token_hash, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
        params![
            b.token_id.to_string(),
            b.user_id.to_string(),
            b.org_id.to_string(),
            b.token_hash,
            at
        ],
    )
    // Never name the hash: it is as good as the token to anyone who can query the table.
    .map_err(unique_as(|| format!("api token {}", b.token_id)))?;
    audit::append(conn, entry)?;
    Ok(())
}

pub(crate) fn first_org(conn: &Connection) -> Result<Option<OrgId>> {
    let id: Option<String> = conn
        .prepare_cached("SELECT id FROM orgs ORDER BY created_at, id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    id.map(|id| parse("orgs.id", &id)).transpose()
}

pub(crate) fn principal_for_token(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<Principal>> {
    // The membership decides the role, so a user removed from the org loses access even
    // while their token is still unrevoked; a token's own role only narrows it.
    let row: Option<[Option<String>; 7]> = conn
        .prepare_cached(
            "SELECT u.id, u.email, t.org_id, m.role, t.id, t.role, t.expires_at
             FROM api_tokens t
             JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
             JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.purpose = 'api'",
        )?
        .query_row(params![token_hash], texts::<7>)
        .optional()?;
    let Some(
        [
            Some(user_id),
            Some(email),
            Some(org_id),
            Some(member_role),
            Some(token_id),
            role,
            expires,
        ],
    ) = row
    else {
        return Ok(None);
    };
    if let Some(expires) = expires
        && parse_ts("api_tokens.expires_at", &expires)? <= now()
    {
        return Ok(None);
    }
    let member_role: Role = parse("memberships.role", &member_role)?;
    let role = match role {
        Some(own) => parse::<Role>("api_tokens.role", &own)?.at_most(member_role),
        None => member_role,
    };
    Ok(Some(Principal {
        user_id: parse("users.id", &user_id)?,
        email,
        org_id: parse("api_tokens.org_id", &org_id)?,
        role,
        token_id: parse("api_tokens.id", &token_id)?,
    }))
}

/// The member's role in the org, if they are one.
fn member_role(conn: &Connection, org: OrgId, user: UserId) -> Result<Option<Role>> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM memberships WHERE org_id = ?1 AND user_id = ?2")?
        .query_row(params![org.to_string(), user.to_string()], |r| r.get(0))
        .optional()?;
    role.map(|r| parse("memberships.role", &r)).transpose()
}

pub(crate) fn create_token(
    conn: &Connection,
    t: &NewToken,
    entry: &AuditEntry,
) -> Result<TokenInfo> {
    let Some(member) = member_role(conn, t.org_id, t.user_id)? else {
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
    conn.prepare_cached(
        "INSERT INTO api_tokens (id, user_id, org_id, token_hash, created_at, revoked_at, name, role,
                                 expires_at, purpose)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        t.id.to_string(),
        t.user_id.to_string(),
        t.org_id.to_string(),
        t.token_hash,
        ts(&now()),
        t.name,
        t.role.map(Role::as_str),
        opt_ts(t.expires_at.as_ref()),
        if t.invitation { "invitation" } else { "api" }
    ])
    // Never name the hash: it is as good as the token to anyone who can query the table.
    .map_err(unique_as(|| format!("api token {}", t.id)))?;
    audit::append(conn, entry)?;
    token(conn, t.org_id, t.id)
}

const TOKEN_COLUMNS: &str = "t.id, t.org_id, t.user_id, u.email, t.name, t.role, t.created_at, \
     t.expires_at, t.revoked_at";

/// The first `N` columns of a row, as nullable text.
fn texts<const N: usize>(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; N]> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(out)
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 9]> {
    texts::<9>(r)
}

fn token_info(row: [Option<String>; 9]) -> Result<TokenInfo> {
    let [id, org, user, email, name, role, created, expires, revoked] = row;
    let need = |v: Option<String>, column: &str| {
        v.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
    };
    Ok(TokenInfo {
        id: parse("api_tokens.id", &need(id, "api_tokens.id")?)?,
        org_id: parse("api_tokens.org_id", &need(org, "api_tokens.org_id")?)?,
        user_id: parse("api_tokens.user_id", &need(user, "api_tokens.user_id")?)?,
        email: need(email, "users.email")?,
        name,
        role: parse_opt("api_tokens.role", role.as_deref())?,
        created_at: parse_ts(
            "api_tokens.created_at",
            &need(created, "api_tokens.created_at")?,
        )?,
        expires_at: parse_opt_ts("api_tokens.expires_at", expires.as_deref())?,
        revoked_at: parse_opt_ts("api_tokens.revoked_at", revoked.as_deref())?,
    })
}

fn token(conn: &Connection, org: OrgId, id: TokenId) -> Result<TokenInfo> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.org_id = ?1 AND t.id = ?2"
    );
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![org.to_string(), id.to_string()], token_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("token {id}"),
        })?;
    token_info(row)
}

/// A page of the org's tokens (of `user` only, if given), newest first by `(created_at, id)`:
/// those below `page.after`.
pub(crate) fn list_tokens(
    conn: &Connection,
    org: OrgId,
    user: Option<UserId>,
    page: &PageRequest<TokenKey>,
) -> Result<Page<TokenInfo, TokenKey>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.org_id = ?1 AND (?2 IS NULL OR t.user_id = ?2) AND t.purpose = 'api'
           AND (?3 IS NULL OR (t.created_at, t.id) < (?3, ?4))
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT ?5"
    );
    // One row more than the page, to know whether another follows.
    let tokens = rows(
        conn,
        &sql,
        params![
            org.to_string(),
            user.map(|u| u.to_string()),
            page.after.as_ref().map(|k| ts(&k.created_at)),
            page.after.as_ref().map(|k| k.id.to_string()),
            i64::from(page.limit) + 1
        ],
        token_row,
    )?
    .into_iter()
    .map(token_info)
    .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(tokens, page.limit, |t| TokenKey {
        created_at: t.created_at,
        id: t.id,
    }))
}

pub(crate) fn revoke_token(
    conn: &Connection,
    org: OrgId,
    id: TokenId,
    user: Option<UserId>,
    entry: &AuditEntry,
) -> Result<TokenInfo> {
    let current = token(conn, org, id)?;
    if user.is_some_and(|u| u != current.user_id) {
        // Another member's token reads as absent to someone who may only manage their own.
        return Err(StoreError::NotFound {
            what: format!("token {id}"),
        });
    }
    if current.revoked_at.is_some() {
        return Err(StoreError::Refused {
            message: format!("token {id} is already revoked"),
        });
    }
    conn.prepare_cached("UPDATE api_tokens SET revoked_at = ?1 WHERE org_id = ?2 AND id = ?3")?
        .execute(params![ts(&now()), org.to_string(), id.to_string()])?;
    audit::append(conn, entry)?;
    token(conn, org, id)
}

pub(crate) fn add_member(
    conn: &Connection,
    org: OrgId,
    email: &str,
    role: Role,
    entry: &AuditEntry,
) -> Result<Member> {
    let at = ts(&now());
    let known: Option<String> = conn
        .prepare_cached("SELECT id FROM users WHERE email = ?1")?
        .query_row(params![email], |r| r.get(0))
        .optional()?;
    let user_id = match known {
        Some(id) => parse("users.id", &id)?,
        None => {
            let id = UserId::new();
            conn.prepare_cached("INSERT INTO users (id, email, created_at) VALUES (?1, ?2, ?3)")?
                .execute(params![id.to_string(), email, at])?;
            id
        }
    };
    if member_role(conn, org, user_id)?.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("member {email:?}"),
        });
    }
    conn.prepare_cached(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        org.to_string(),
        user_id.to_string(),
        role.as_str(),
        at
    ])
    .map_err(reference_as(|| format!("org {org}")))?;
    audit::append(conn, entry)?;
    member_of(conn, org, user_id)
        .map_err(|_| StoreError::Corrupt("a member just added is missing".into()))
}

/// A page of the org's members, oldest first by `(created_at, user_id)`: those after
/// `page.after`.
pub(crate) fn list_members(
    conn: &Connection,
    org: OrgId,
    page: &PageRequest<MemberKey>,
) -> Result<Page<Member, MemberKey>> {
    let rows = members(
        conn,
        "m.org_id = ?1 AND (?2 IS NULL OR (m.created_at, m.user_id) > (?2, ?3))
         ORDER BY m.created_at, m.user_id
         LIMIT ?4",
        params![
            org.to_string(),
            page.after.as_ref().map(|k| ts(&k.created_at)),
            page.after.as_ref().map(|k| k.id.to_string()),
            // One row more than the page, to know whether another follows.
            i64::from(page.limit) + 1
        ],
    )?;
    Ok(Page::from_rows(rows, page.limit, |m| MemberKey {
        created_at: m.created_at,
        id: m.user_id,
    }))
}

/// The members `condition` (over `memberships m`) selects, in its order.
fn members(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Member>> {
    let sql = format!(
        "SELECT u.id, u.email, m.role, m.created_at FROM memberships m
         JOIN users u ON u.id = m.user_id WHERE {condition}"
    );
    rows(conn, &sql, params, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?
    .into_iter()
    .map(|(id, email, role, created)| {
        Ok(Member {
            user_id: parse("users.id", &id)?,
            email,
            role: parse("memberships.role", &role)?,
            created_at: parse_ts("memberships.created_at", &created)?,
        })
    })
    .collect()
}

/// Refuses a change that would leave the org without an owner: `user` is its last one.
fn keep_an_owner(conn: &Connection, org: OrgId, user: UserId, change: &str) -> Result<()> {
    if member_role(conn, org, user)? != Some(Role::Owner) {
        return Ok(());
    }
    let owners: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM memberships WHERE org_id = ?1 AND role = 'owner'")?
        .query_row(params![org.to_string()], |r| r.get(0))?;
    if owners <= 1 {
        return Err(StoreError::Refused {
            message: format!(
                "cannot {change} the organisation's last owner; make another member owner first"
            ),
        });
    }
    Ok(())
}

fn member_of(conn: &Connection, org: OrgId, user: UserId) -> Result<Member> {
    members(
        conn,
        "m.org_id = ?1 AND m.user_id = ?2",
        params![org.to_string(), user.to_string()],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound {
        what: format!("member {user}"),
    })
}

pub(crate) fn set_member_role(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    role: Role,
    entry: &AuditEntry,
) -> Result<Member> {
    member_of(conn, org, user)?;
    if role != Role::Owner {
        keep_an_owner(conn, org, user, "demote")?;
    }
    conn.prepare_cached("UPDATE memberships SET role = ?1 WHERE org_id = ?2 AND user_id = ?3")?
        .execute(params![role.as_str(), org.to_string(), user.to_string()])?;
    audit::append(conn, entry)?;
    member_of(conn, org, user)
}

pub(crate) fn remove_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    entry: &AuditEntry,
) -> Result<()> {
    member_of(conn, org, user)?;
    keep_an_owner(conn, org, user, "remove")?;
    conn.prepare_cached("DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2")?
        .execute(params![org.to_string(), user.to_string()])?;
    audit::append(conn, entry)?;
    Ok(())
}

pub(crate) fn set_password(
    conn: &Connection,
    user: UserId,
    hash: &str,
    entry: &AuditEntry,
) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE users SET password_hash = ?1 WHERE id = ?2")?
        .execute(params![hash, user.to_string()])?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("user {user}"),
        });
    }
    audit::append(conn, entry)?;
    Ok(())
}

pub(crate) fn login(conn: &Connection, email: &str) -> Result<Option<Login>> {
    let row: Option<(String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT u.id, m.org_id, u.password_hash FROM users u
             JOIN memberships m ON m.user_id = u.id
             WHERE lower(u.email) = lower(?1) ORDER BY m.created_at, m.org_id LIMIT 1",
        )?
        .query_row(params![email], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(user, org, password_hash)| {
        Ok(Login {
            user_id: parse("users.id", &user)?,
            org_id: parse("memberships.org_id", &org)?,
            password_hash,
        })
    })
    .transpose()
}

pub(crate) fn create_session(conn: &Connection, s: &NewSession, entry: &AuditEntry) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, secret_hash, csrf_hash, user_id, org_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        s.id.to_string(),
        s.secret_hash,
        s.csrf_hash,
        s.user_id.to_string(),
        s.org_id.to_string(),
        ts(&now()),
        ts(&s.expires_at)
    ])
    .map_err(unique_as(|| format!("session {}", s.id)))?;
    audit::append(conn, entry)?;
    Ok(())
}

pub(crate) fn principal_for_session(
    conn: &Connection,
    secret_hash: &str,
) -> Result<Option<(Principal, String)>> {
    let row: Option<[Option<String>; 6]> = conn
        .prepare_cached(
            "SELECT u.id, u.email, s.org_id, m.role, s.id, s.csrf_hash
             FROM sessions s
             JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
             JOIN users u ON u.id = s.user_id
             WHERE s.secret_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2",
        )?
        .query_row(params![secret_hash, ts(&now())], texts::<6>)
        .optional()?;
    let Some(
        [
            Some(user),
            Some(email),
            Some(org),
            Some(role),
            Some(id),
            Some(csrf),
        ],
    ) = row
    else {
        return Ok(None);
    };
    Ok(Some((
        Principal {
            user_id: parse("users.id", &user)?,
            email,
            org_id: parse("sessions.org_id", &org)?,
            role: parse("memberships.role", &role)?,
            token_id: parse("sessions.id", &id)?,
        },
        csrf,
    )))
}

pub(crate) fn end_session(conn: &Connection, secret_hash: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE sessions SET ended_at = ?1 WHERE secret_hash = ?2 AND ended_at IS NULL",
    )?
    .execute(params![ts(&now()), secret_hash])?;
    Ok(())
}

pub(crate) fn accept_invitation(conn: &Connection, token_hash: &str) -> Result<Option<Login>> {
    let row: Option<(String, String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT t.id, t.user_id, t.org_id, t.expires_at FROM api_tokens t
             JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
             WHERE t.token_hash = ?1 AND t.purpose = 'invitation' AND t.revoked_at IS NULL",
        )?
        .query_row(params![token_hash], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((id, user, org, expires)) = row else {
        return Ok(None);
    };
    if let Some(expires) = expires
        && parse_ts("api_tokens.expires_at", &expires)? <= now()
    {
        return Ok(None);
    }
    conn.prepare_cached("UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2")?
        .execute(params![ts(&now()), id])?;
    Ok(Some(Login {
        user_id: parse("api_tokens.user_id", &user)?,
        org_id: parse("api_tokens.org_id", &org)?,
        password_hash: None,
    }))
}
