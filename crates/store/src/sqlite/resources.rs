//! The four universal tables, read as one.
//!
//! Each kind has its own table (`servers`, `web_services`, `domains`, `databases`) with the
//! same sixteen leading columns. Reads that span kinds select every table into one row shape
//! (`UNION ALL`, the columns a kind lacks as `NULL`) so one decoder serves them all; the
//! planner pushes the `WHERE` into each branch, where the primary key, `marker` and
//! `(org_id, created_at)` indexes answer it. A lookup by id therefore costs four index probes
//! and needs no side table to keep in step.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{FromRow, Sqlite, SqliteConnection};
use stackdock_core::{
    DatabaseDetails, DockId, DomainDetails, Marker, OrgId, ProvisioningState, Resource,
    ResourceDetails, ResourceId, ResourceKind, ServerDetails, WebServiceDetails,
};

use super::codec::{
    json, now, opt_json, opt_ts, parse, parse_json, parse_opt_json, parse_opt_ts, parse_ts, ts,
};
use super::docks;
use super::error::unique_as;
use crate::{ResourceFilter, Result, StoreError};

/// The columns every universal table has, in the order [`bind_all`] binds them (`$1`..`$16`).
const COMMON: [&str; 16] = [
    "id",
    "org_id",
    "dock_id",
    "provider",
    "provider_resource_id",
    "name",
    "status",
    "provisioning_source",
    "provisioning_state",
    "provisioned_at",
    "full_api_data",
    "error",
    "marker",
    "created_at",
    "updated_at",
    "version",
];

/// Kind-specific columns of all four tables together: the tail of the shared row shape.
const DETAILS: [&str; 10] = [
    "region",
    "size",
    "image",
    "ipv4",
    "ipv6",
    "production_url",
    "source",
    "records",
    "engine",
    "host",
];

/// The kind-specific columns of one table, in the order [`detail_values`] yields them.
fn own_columns(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Server => &["region", "size", "image", "ipv4", "ipv6"],
        ResourceKind::WebService => &["production_url", "source"],
        ResourceKind::Domain => &["records"],
        ResourceKind::Database => &["engine", "region", "host"],
    }
}

fn detail_values(details: &ResourceDetails) -> Result<Vec<Option<String>>> {
    Ok(match details {
        ResourceDetails::Server(d) => vec![
            d.region.clone(),
            d.size.clone(),
            d.image.clone(),
            d.ipv4.clone(),
            d.ipv6.clone(),
        ],
        ResourceDetails::WebService(d) => vec![d.production_url.clone(), d.source.clone()],
        ResourceDetails::Domain(d) => vec![Some(json(&d.records)?)],
        ResourceDetails::Database(d) => vec![d.engine.clone(), d.region.clone(), d.host.clone()],
    })
}

/// `SELECT` of one table in the shared row shape.
fn select(kind: ResourceKind) -> String {
    let own = own_columns(kind);
    let details: Vec<String> = DETAILS
        .iter()
        .map(|c| {
            if own.contains(c) {
                (*c).to_string()
            } else {
                format!("NULL AS {c}")
            }
        })
        .collect();
    format!(
        "SELECT '{}' AS kind, {}, {} FROM {}",
        kind.as_str(),
        COMMON.join(", "),
        details.join(", "),
        kind.table()
    )
}

/// The `kinds` tables, each filtered by `condition` (numbered parameters bind once for all).
fn select_all(kinds: &[ResourceKind], condition: &str) -> String {
    kinds
        .iter()
        .map(|k| format!("{} WHERE {condition}", select(*k)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[derive(FromRow)]
struct ResourceRow {
    kind: String,
    id: String,
    org_id: String,
    dock_id: String,
    provider: String,
    provider_resource_id: Option<String>,
    name: String,
    status: Option<String>,
    provisioning_source: String,
    provisioning_state: String,
    provisioned_at: Option<String>,
    full_api_data: String,
    error: Option<String>,
    marker: Option<String>,
    created_at: String,
    updated_at: String,
    version: i64,
    region: Option<String>,
    size: Option<String>,
    image: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    production_url: Option<String>,
    source: Option<String>,
    records: Option<String>,
    engine: Option<String>,
    host: Option<String>,
}

impl TryFrom<ResourceRow> for Resource {
    type Error = StoreError;
    fn try_from(r: ResourceRow) -> Result<Self> {
        let kind: ResourceKind = parse("kind", &r.kind)?;
        let table = kind.table();
        let col = |c: &str| format!("{table}.{c}");
        let details = match kind {
            ResourceKind::Server => ResourceDetails::Server(ServerDetails {
                region: r.region,
                size: r.size,
                image: r.image,
                ipv4: r.ipv4,
                ipv6: r.ipv6,
            }),
            ResourceKind::WebService => ResourceDetails::WebService(WebServiceDetails {
                production_url: r.production_url,
                source: r.source,
            }),
            ResourceKind::Domain => ResourceDetails::Domain(DomainDetails {
                records: parse_opt_json(&col("records"), r.records.as_deref())?.unwrap_or_default(),
            }),
            ResourceKind::Database => ResourceDetails::Database(DatabaseDetails {
                engine: r.engine,
                region: r.region,
                host: r.host,
            }),
        };
        Ok(Resource {
            id: parse(&col("id"), &r.id)?,
            org_id: parse(&col("org_id"), &r.org_id)?,
            dock_id: parse(&col("dock_id"), &r.dock_id)?,
            provider: r.provider,
            provider_resource_id: r.provider_resource_id,
            name: r.name,
            status: r.status,
            provisioning_source: parse(&col("provisioning_source"), &r.provisioning_source)?,
            provisioning_state: parse(&col("provisioning_state"), &r.provisioning_state)?,
            provisioned_at: parse_opt_ts(&col("provisioned_at"), r.provisioned_at.as_deref())?,
            full_api_data: parse_json(&col("full_api_data"), &r.full_api_data)?,
            error: parse_opt_json(&col("error"), r.error.as_deref())?,
            marker: r
                .marker
                .map(|m| {
                    Marker::try_from(m)
                        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", col("marker"))))
                })
                .transpose()?,
            created_at: parse_ts(&col("created_at"), &r.created_at)?,
            updated_at: parse_ts(&col("updated_at"), &r.updated_at)?,
            version: r.version,
            details,
        })
    }
}

fn decode(rows: Vec<SqliteRow>) -> Result<Vec<Resource>> {
    rows.iter()
        .map(|row| Resource::try_from(ResourceRow::from_row(row)?))
        .collect()
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds [`COMMON`] as `$1`..`$16` and the kind's own columns after them.
fn bind_all<'q>(
    sql: &'q str,
    r: &Resource,
    created_at: String,
    updated_at: String,
    version: i64,
) -> Result<Query<'q>> {
    let mut q = sqlx::query(sql)
        .bind(r.id.to_string())
        .bind(r.org_id.to_string())
        .bind(r.dock_id.to_string())
        .bind(r.provider.clone())
        .bind(r.provider_resource_id.clone())
        .bind(r.name.clone())
        .bind(r.status.clone())
        .bind(r.provisioning_source.as_str())
        .bind(r.provisioning_state.as_str())
        .bind(opt_ts(r.provisioned_at.as_ref()))
        .bind(json(&r.full_api_data)?)
        .bind(opt_json(r.error.as_ref())?)
        .bind(r.marker.as_ref().map(|m| m.as_str().to_string()))
        .bind(created_at)
        .bind(updated_at)
        .bind(version);
    for v in detail_values(&r.details)? {
        q = q.bind(v);
    }
    Ok(q)
}

/// A row of one table by id, as stored (used to return a write as it landed).
async fn fetch(
    conn: &mut SqliteConnection,
    kind: ResourceKind,
    id: ResourceId,
) -> Result<Resource> {
    let sql = format!("{} WHERE id = $1", select(kind));
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    let row = row.ok_or_else(|| StoreError::NotFound {
        what: format!("resource {id}"),
    })?;
    Resource::try_from(ResourceRow::from_row(&row)?)
}

pub(crate) async fn get(
    conn: &mut SqliteConnection,
    org: OrgId,
    id: ResourceId,
) -> Result<Resource> {
    let sql = select_all(&ResourceKind::ALL, "org_id = $1 AND id = $2");
    let rows = sqlx::query(&sql)
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_all(conn)
        .await?;
    decode(rows)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound {
            what: format!("resource {id}"),
        })
}

/// The rows of an org among `ids`, in no particular order; ids that name nothing are left out.
pub(crate) async fn get_many(
    conn: &mut SqliteConnection,
    org: OrgId,
    ids: &[ResourceId],
) -> Result<Vec<Resource>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    // One bound JSON array, not one parameter per id: SQLite caps the number of parameters.
    let sql = select_all(
        &ResourceKind::ALL,
        "org_id = $1 AND id IN (SELECT value FROM json_each($2))",
    );
    let rows = sqlx::query(&sql)
        .bind(org.to_string())
        .bind(json(&ids)?)
        .fetch_all(conn)
        .await?;
    decode(rows)
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    org: OrgId,
    filter: &ResourceFilter,
) -> Result<Vec<Resource>> {
    let mut binds = vec![org.to_string()];
    let mut conditions = vec!["org_id = $1".to_string()];
    let mut add = |column: &str, value: String| {
        binds.push(value);
        conditions.push(format!("{column} = ${}", binds.len()));
    };
    if let Some(dock) = filter.dock_id {
        add("dock_id", dock.to_string());
    }
    if let Some(state) = filter.state {
        add("provisioning_state", state.as_str().to_string());
    }
    if let Some(source) = filter.source {
        add("provisioning_source", source.as_str().to_string());
    }
    let kinds: Vec<ResourceKind> = match filter.kind {
        Some(k) => vec![k],
        None => ResourceKind::ALL.to_vec(),
    };
    let mut sql = select_all(&kinds, &conditions.join(" AND "));
    sql.push_str(" ORDER BY created_at DESC, id DESC");
    if filter.limit.is_some() {
        sql.push_str(&format!(" LIMIT ${}", binds.len() + 1));
    }
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    if let Some(limit) = filter.limit {
        q = q.bind(i64::from(limit));
    }
    decode(q.fetch_all(conn).await?)
}

pub(crate) async fn find_by_provider_id(
    conn: &mut SqliteConnection,
    dock: DockId,
    kind: ResourceKind,
    provider_resource_id: &str,
) -> Result<Option<Resource>> {
    let sql = format!(
        "{} WHERE dock_id = $1 AND provider_resource_id = $2 AND provisioning_state <> 'deprovisioned'",
        select(kind)
    );
    let rows = sqlx::query(&sql)
        .bind(dock.to_string())
        .bind(provider_resource_id)
        .fetch_all(conn)
        .await?;
    Ok(decode(rows)?.into_iter().next())
}

pub(crate) async fn find_by_marker(
    conn: &mut SqliteConnection,
    marker: &Marker,
) -> Result<Option<Resource>> {
    let sql = select_all(&ResourceKind::ALL, "marker = $1");
    let rows = sqlx::query(&sql)
        .bind(marker.as_str())
        .fetch_all(conn)
        .await?;
    Ok(decode(rows)?.into_iter().next())
}

/// Refuses a row that would make a second tracked copy of something: the same id, the same
/// marker (markers are unique across the four tables, the schema only sees one), or a live row
/// for the same provider resource in the same dock.
async fn ensure_unique(conn: &mut SqliteConnection, r: &Resource, is_insert: bool) -> Result<()> {
    // One statement over the four tables (SQLite pushes the conditions into each branch, so
    // each uses its primary key and marker index): the writer pays one round trip, not eight.
    let branches: Vec<String> = ResourceKind::ALL
        .iter()
        .map(|k| {
            format!(
                "SELECT id = $1 AS same_id FROM {} WHERE ($3 AND id = $1) OR (marker = $2 AND id <> $1)",
                k.table()
            )
        })
        .collect();
    let taken: Option<bool> = sqlx::query_scalar(&format!(
        "SELECT same_id FROM ({}) LIMIT 1",
        branches.join(" UNION ALL ")
    ))
    .bind(r.id.to_string())
    .bind(r.marker.as_ref().map(|m| m.as_str().to_string()))
    .bind(is_insert)
    .fetch_optional(&mut *conn)
    .await?;
    match taken {
        None => Ok(()),
        Some(true) => Err(StoreError::AlreadyExists {
            what: format!("resource {}", r.id),
        }),
        Some(false) => Err(StoreError::AlreadyExists {
            what: format!(
                "resource with marker {}",
                r.marker.as_ref().map_or("", |m| m.as_str())
            ),
        }),
    }
}

/// Inserts `r` as given (its `version`, `created_at` and `updated_at` included, so the
/// caller's copy stays current) and returns it as stored.
pub(crate) async fn insert(conn: &mut SqliteConnection, r: &Resource) -> Result<Resource> {
    docks::ensure_in_org(&mut *conn, r.org_id, r.dock_id).await?;
    ensure_unique(&mut *conn, r, true).await?;
    let kind = r.kind();
    let columns: Vec<&str> = COMMON.iter().chain(own_columns(kind)).copied().collect();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        kind.table(),
        columns.join(", "),
        params.join(", ")
    );
    bind_all(&sql, r, ts(&r.created_at), ts(&r.updated_at), r.version)?
        .execute(&mut *conn)
        .await
        .map_err(unique_as(|| format!("resource {}", r.id)))?;
    fetch(conn, kind, r.id).await
}

/// Replaces every column but the row's identity (`id`, `org_id`) and `created_at`, if the
/// stored version is `expected_version` and the state change is legal; returns the row as
/// stored, with `version = expected_version + 1` and `updated_at` now.
pub(crate) async fn update(
    conn: &mut SqliteConnection,
    r: &Resource,
    expected_version: i64,
) -> Result<Resource> {
    let kind = r.kind();
    let stored: Option<(String, i64, String, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT provisioning_state, version, created_at, dock_id, marker
         FROM {} WHERE id = $1 AND org_id = $2",
        kind.table()
    ))
    .bind(r.id.to_string())
    .bind(r.org_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((stored_state, stored_version, created_at, stored_dock, stored_marker)) = stored
    else {
        return Err(StoreError::NotFound {
            what: format!("resource {}", r.id),
        });
    };
    if stored_version != expected_version {
        return Err(StoreError::VersionConflict {
            id: r.id,
            expected: expected_version,
        });
    }
    let stored_state: ProvisioningState = parse(
        &format!("{}.provisioning_state", kind.table()),
        &stored_state,
    )?;
    stored_state.check(r.provisioning_state)?;
    // Checked only when they change (they almost never do): each is a statement on the one
    // write connection every operation shares.
    if stored_dock != r.dock_id.to_string() {
        docks::ensure_in_org(&mut *conn, r.org_id, r.dock_id).await?;
    }
    if stored_marker.as_deref() != r.marker.as_ref().map(|m| m.as_str()) {
        ensure_unique(&mut *conn, r, false).await?;
    }

    // `$1`, `$2` and `$14` (id, org_id, created_at) are bound but only `$1`/`$2` are used,
    // in the WHERE: the row keeps its identity and birth.
    let mut sets = Vec::new();
    for (i, c) in COMMON.iter().enumerate() {
        if !matches!(*c, "id" | "org_id" | "created_at") {
            sets.push(format!("{c} = ${}", i + 1));
        }
    }
    for (i, c) in own_columns(kind).iter().enumerate() {
        sets.push(format!("{c} = ${}", COMMON.len() + i + 1));
    }
    let sql = format!(
        "UPDATE {} SET {} WHERE id = $1 AND org_id = $2",
        kind.table(),
        sets.join(", ")
    );
    bind_all(&sql, r, created_at, ts(&now()), expected_version + 1)?
        .execute(&mut *conn)
        .await
        .map_err(unique_as(|| {
            format!(
                "{} {:?} of dock {}",
                kind, r.provider_resource_id, r.dock_id
            )
        }))?;
    fetch(conn, kind, r.id).await
}

pub(crate) async fn insert_idempotency_key(
    conn: &mut SqliteConnection,
    req: &crate::IdempotentRequest,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(req.org_id.to_string())
    .bind(&req.key)
    .bind(&req.request_hash)
    .bind(req.resource_id.to_string())
    .bind(ts(&now()))
    .execute(conn)
    .await
    .map_err(unique_as(|| format!("idempotency key {:?}", req.key)))?;
    Ok(())
}

pub(crate) async fn find_idempotency_key(
    conn: &mut SqliteConnection,
    org: OrgId,
    key: &str,
) -> Result<Option<crate::IdempotentRequest>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = $1 AND key = $2",
    )
    .bind(org.to_string())
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|(request_hash, resource_id)| {
        Ok(crate::IdempotentRequest {
            org_id: org,
            key: key.to_string(),
            request_hash,
            resource_id: parse("idempotency_keys.resource_id", &resource_id)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_branch_has_the_same_shape() {
        let width = |sql: &str| sql.matches(", ").count();
        let first = width(&select(ResourceKind::Server));
        for kind in ResourceKind::ALL {
            assert_eq!(width(&select(kind)), first, "{kind}");
            for c in own_columns(kind) {
                assert!(DETAILS.contains(c), "{kind}.{c} missing from DETAILS");
            }
        }
    }
}
