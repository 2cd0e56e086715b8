//! Organisations, users, memberships and API tokens.

use sqlx::SqliteConnection;
use stackdock_core::{AuditEntry, OrgId, Role};

use super::audit;
use super::codec::{now, parse, ts};
use super::error::unique_as;
use crate::{Bootstrap, Principal, Result, StoreError};

pub(crate) async fn bootstrap(
    conn: &mut SqliteConnection,
    b: &Bootstrap,
    entry: &AuditEntry,
) -> Result<()> {
    let at = ts(&now());
    let org_taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM orgs WHERE id = $1")
        .bind(b.org_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if org_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("org {}", b.org_id),
        });
    }
    let email_taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE email = $1")
        .bind(&b.email)
        .fetch_optional(&mut *conn)
        .await?;
    if email_taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("user {:?}", b.email),
        });
    }

    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(b.org_id.to_string())
        .bind(&b.org_name)
        .bind(&at)
        .execute(&mut *conn)
        .await
        .map_err(unique_as(|| format!("org {}", b.org_id)))?;
    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
        .bind(b.user_id.to_string())
        .bind(&b.email)
        .bind(&at)
        .execute(&mut *conn)
        .await
        .map_err(unique_as(|| format!("user {}", b.user_id)))?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(b.org_id.to_string())
    .bind(b.user_id.to_string())
    .bind(Role::Owner.as_str())
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, org_id, token_hash, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(b.token_id.to_string())
    .bind(b.user_id.to_string())
    .bind(b.org_id.to_string())
    .bind(&b.token_hash)
    .bind(&at)
    .execute(&mut *conn)
    .await
    // Never name the hash: it is as good as the token to anyone who can query the table.
    .map_err(unique_as(|| format!("api token {}", b.token_id)))?;
    audit::append(conn, entry).await?;
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
