//! Docks: connected provider accounts, and the rule for removing one.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use stackdock_core::{AuditEntry, Dock, DockId, DockName, OrgId, ResourceKind, SealedSecret};

use super::audit;
use super::codec::{get, id, json, json_col, micros, parsed};
use super::error::unique_as;
use crate::{Page, PageRequest, Result, StoreError};

const COLUMNS: &str =
    "id, org_id, provider, name, sealed_api_key, api_base_url, settings, created_at";

fn dock(r: &PgRow) -> Result<Dock> {
    let dock_id: DockId = id(r, "id")?;
    let name: String = get(r, "name")?;
    let sealed: String = get(r, "sealed_api_key")?;
    Ok(Dock {
        id: dock_id,
        org_id: id(r, "org_id")?,
        provider: parsed(r, "provider")?,
        name: DockName::try_from(name)
            .map_err(|e| StoreError::Corrupt(format!("docks.name: {e}")))?,
        sealed_api_key: SealedSecret::parse(&sealed)
            // The value itself stays out of the message: it is the sealed key.
            .map_err(|e| {
                StoreError::Corrupt(format!("docks.sealed_api_key of dock {dock_id}: {e}"))
            })?,
        api_base_url: get(r, "api_base_url")?,
        settings: json_col(r, "settings")?,
        created_at: get(r, "created_at")?,
    })
}

pub(crate) async fn get_dock(c: &mut PgConnection, org: OrgId, dock_id: DockId) -> Result<Dock> {
    let sql = format!("SELECT {COLUMNS} FROM docks WHERE org_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(dock_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("dock {dock_id}"),
        })?;
    dock(&row)
}

pub(crate) async fn find_by_name(
    c: &mut PgConnection,
    org: OrgId,
    name: &DockName,
) -> Result<Option<Dock>> {
    let sql = format!("SELECT {COLUMNS} FROM docks WHERE org_id = $1 AND name = $2");
    let row = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(name.as_str())
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(dock).transpose()
}

/// The docks of every org.
pub(crate) async fn all(c: &mut PgConnection) -> Result<Vec<Dock>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM docks ORDER BY id"))
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(dock)
        .collect()
}

/// A page of the org's docks by name (bytewise: the column is `COLLATE "C"`): those after
/// the name `page.after`, along the `UNIQUE (org_id, name)` index.
pub(crate) async fn list(
    c: &mut PgConnection,
    org: OrgId,
    page: &PageRequest<DockName>,
) -> Result<Page<Dock, DockName>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM docks WHERE org_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    );
    // One row more than the page, to know whether another follows; every name is above "".
    let docks = sqlx::query(&sql)
        .bind(org.as_uuid())
        .bind(page.after.as_ref().map_or("", DockName::as_str))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(dock)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(docks, page.limit, |d| d.name.clone()))
}

pub(crate) async fn insert(c: &mut PgConnection, d: &Dock) -> Result<()> {
    let taken = sqlx::query("SELECT 1 FROM docks WHERE org_id = $1 AND name = $2")
        .bind(d.org_id.as_uuid())
        .bind(d.name.as_str())
        .fetch_optional(&mut *c)
        .await?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("dock {:?}", d.name.as_str()),
        });
    }
    let org_known = sqlx::query("SELECT 1 FROM orgs WHERE id = $1")
        .bind(d.org_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    if org_known.is_none() {
        return Err(StoreError::NotFound {
            what: format!("org {}", d.org_id),
        });
    }
    let name = d.name.as_str().to_string();
    sqlx::query(
        "INSERT INTO docks (id, org_id, provider, name, sealed_api_key, key_id, api_base_url,
                            settings, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(d.id.as_uuid())
    .bind(d.org_id.as_uuid())
    .bind(d.provider.as_str())
    .bind(d.name.as_str())
    .bind(d.sealed_api_key.as_str())
    .bind(d.sealed_api_key.key_id())
    .bind(&d.api_base_url)
    .bind(json(&d.settings)?)
    .bind(micros(&d.created_at))
    .execute(&mut *c)
    .await
    // Another node may have added the same name since the check above.
    .map_err(unique_as(|| format!("dock {name:?}")))?;
    Ok(())
}

/// Replaces what may change on a dock: its key, base URL override and settings. The name,
/// provider and owner are fixed for the dock's life; resource rows and journals refer to them.
pub(crate) async fn update(c: &mut PgConnection, d: &Dock) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE docks SET sealed_api_key = $1, key_id = $2, api_base_url = $3, settings = $4
         WHERE id = $5 AND org_id = $6",
    )
    .bind(d.sealed_api_key.as_str())
    .bind(d.sealed_api_key.key_id())
    .bind(&d.api_base_url)
    .bind(json(&d.settings)?)
    .bind(d.id.as_uuid())
    .bind(d.org_id.as_uuid())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("dock {}", d.id),
        });
    }
    Ok(())
}

/// Whether `id` is a dock of `org`: resource rows and operations may only point at a dock of
/// their own org.
pub(crate) async fn ensure_in_org(c: &mut PgConnection, org: OrgId, dock_id: DockId) -> Result<()> {
    let known = sqlx::query("SELECT 1 FROM docks WHERE org_id = $1 AND id = $2")
        .bind(org.as_uuid())
        .bind(dock_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: format!("dock {dock_id}"),
        }),
    }
}

/// Removes a dock once nothing of it is in flight or alive at the provider: the same rule and
/// the same rows as the SQLite store's `docks::remove`.
///
/// The dock row is locked first: a row or an operation inserted for the dock by another node
/// meanwhile takes a key-share lock on it (its foreign key), so it either committed before
/// the counts below, or waits and then fails on the dock that is gone.
pub(crate) async fn remove(
    c: &mut PgConnection,
    org: OrgId,
    dock_id: DockId,
    entry: &AuditEntry,
) -> Result<()> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM docks WHERE org_id = $1 AND id = $2 FOR UPDATE")
            .bind(org.as_uuid())
            .bind(dock_id.as_uuid())
            .fetch_optional(&mut *c)
            .await?;
    let Some(name) = name else {
        return Err(StoreError::NotFound {
            what: format!("dock {dock_id}"),
        });
    };

    let mut live_resources = 0i64;
    for kind in ResourceKind::ALL {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {} WHERE dock_id = $1
               AND provisioning_source = 'api' AND provisioning_state <> 'deprovisioned'",
            kind.table()
        ))
        .bind(dock_id.as_uuid())
        .fetch_one(&mut *c)
        .await?;
        live_resources += n;
    }
    let unfinished_ops: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM operations
         WHERE dock_id = $1 AND state IN ('queued', 'running', 'waiting')",
    )
    .bind(dock_id.as_uuid())
    .fetch_one(&mut *c)
    .await?;
    if live_resources > 0 || unfinished_ops > 0 {
        return Err(StoreError::Refused {
            message: format!(
                "dock {name:?} still has {live_resources} resource(s) created through StackDock that are not \
                 deprovisioned and {unfinished_ops} unfinished operation(s); deprovision those resources \
                 and let the operations finish before removing the dock"
            ),
        });
    }

    for kind in ResourceKind::ALL {
        sqlx::query(&format!("DELETE FROM {} WHERE dock_id = $1", kind.table()))
            .bind(dock_id.as_uuid())
            .execute(&mut *c)
            .await?;
    }
    // Steps go with their operations (ON DELETE CASCADE).
    sqlx::query("DELETE FROM operations WHERE dock_id = $1")
        .bind(dock_id.as_uuid())
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM docks WHERE id = $1")
        .bind(dock_id.as_uuid())
        .execute(&mut *c)
        .await?;
    audit::append(c, entry).await?;
    Ok(())
}
