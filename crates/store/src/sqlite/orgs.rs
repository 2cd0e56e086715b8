//! Organisations, users, memberships and API tokens.

use rusqlite::{Connection, OptionalExtension, params};
use stackdock_core::{AuditEntry, OrgId, Role};

use super::audit;
use super::codec::{now, parse, ts};
use super::error::unique_as;
use crate::{Bootstrap, Principal, Result, StoreError};

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
    // while their token is still unrevoked.
    let row: Option<[String; 5]> = conn
        .prepare_cached(
            "SELECT u.id, u.email, t.org_id, m.role, t.id
             FROM api_tokens t
             JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
             JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
        )?
        .query_row(params![token_hash], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
        })
        .optional()?;
    let Some([user_id, email, org_id, role, token_id]) = row else {
        return Ok(None);
    };
    Ok(Some(Principal {
        user_id: parse("users.id", &user_id)?,
        email,
        org_id: parse("api_tokens.org_id", &org_id)?,
        role: parse("memberships.role", &role)?,
        token_id: parse("api_tokens.id", &token_id)?,
    }))
}
