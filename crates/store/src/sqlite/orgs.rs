//! Organisations, users, memberships and API tokens.

use rusqlite::{Connection, OptionalExtension, params};
use sqlx::SqliteConnection;
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

pub(crate) async fn first_org(conn: &mut SqliteConnection) -> Result<Option<OrgId>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM orgs ORDER BY created_at, id LIMIT 1")
            .fetch_optional(conn)
            .await?;
    id.map(|id| parse("orgs.id", &id)).transpose()
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    user_id: String,
    email: String,
    org_id: String,
    role: String,
    token_id: String,
}

pub(crate) async fn principal_for_token(
    conn: &mut SqliteConnection,
    token_hash: &str,
) -> Result<Option<Principal>> {
    // The membership decides the role, so a user removed from the org loses access even
    // while their token is still unrevoked.
    let row: Option<PrincipalRow> = sqlx::query_as(
        "SELECT u.id AS user_id, u.email, t.org_id, m.role, t.id AS token_id
         FROM api_tokens t
         JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
         JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Principal {
        user_id: parse("users.id", &r.user_id)?,
        email: r.email,
        org_id: parse("api_tokens.org_id", &r.org_id)?,
        role: parse("memberships.role", &r.role)?,
        token_id: parse("api_tokens.id", &r.token_id)?,
    }))
}
