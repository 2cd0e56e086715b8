//! The four universal tables, read as one: the same shape as the SQLite store's `resources`
//! (one `UNION ALL` over `servers`, `web_services`, `domains` and `databases`, the columns a
//! kind lacks as typed `NULL`s), so one decoder serves every kind.
//!
//! Rows that a write reads in order to change them are read `FOR NO KEY UPDATE`: two nodes
//! updating the same row from the same version take turns, and the second finds the version
//! moved ([`StoreError::VersionConflict`]) instead of writing over the first.

use std::sync::OnceLock;

use chrono::SubsecRound;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use stackdock_core::{
    DatabaseDetails, DockId, DomainDetails, Marker, OrgId, ProvisioningState, Resource,
    ResourceDetails, ResourceId, ResourceKind, ServerDetails, Timestamp, WebServiceDetails,
};

use super::codec::{
    get, id, json, json_col, micros, now, opt_json, opt_json_col, opt_micros, opt_text, parsed,
    text,
};
use super::docks;
use super::error::unique_as;
use crate::{Page, PageRequest, ResourceFilter, ResourceKey, Result, StoreError};

/// The columns every universal table has, in the order [`bind_row`] binds them (`$1`..`$16`).
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

/// Kind-specific columns of all four tables together, with their types: the tail of the
/// shared row shape (a kind that lacks one selects a `NULL` of that type).
const DETAILS: [(&str, &str); 10] = [
    ("region", "text"),
    ("size", "text"),
    ("image", "text"),
    ("ipv4", "text"),
    ("ipv6", "text"),
    ("production_url", "text"),
    ("source", "text"),
    ("records", "jsonb"),
    ("engine", "text"),
    ("host", "text"),
];

/// The kind-specific columns of one table, in the order [`bind_row`] binds them.
fn own_columns(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Server => &["region", "size", "image", "ipv4", "ipv6"],
        ResourceKind::WebService => &["production_url", "source"],
        ResourceKind::Domain => &["records"],
        ResourceKind::Database => &["engine", "region", "host"],
    }
}

/// `SELECT` of one table in the shared row shape.
fn select(kind: ResourceKind) -> String {
    let own = own_columns(kind);
    let details: Vec<String> = DETAILS
        .iter()
        .map(|(c, ty)| {
            if own.contains(c) {
                (*c).to_string()
            } else {
                format!("NULL::{ty} AS {c}")
            }
        })
        .collect();
    format!(
        "SELECT '{}'::text AS kind, {}, {} FROM {}",
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

/// The statement of `condition` over every kind, built once per call site.
fn select_every_kind(cell: &'static OnceLock<String>, condition: &str) -> &'static str {
    cell.get_or_init(|| select_all(&ResourceKind::ALL, condition))
}

fn resource(r: &PgRow) -> Result<Resource> {
    let kind: ResourceKind = parsed(r, "kind")?;
    let text = |c: &str| get::<Option<String>>(r, c);
    let details = match kind {
        ResourceKind::Server => ResourceDetails::Server(ServerDetails {
            region: text("region")?,
            size: text("size")?,
            image: text("image")?,
            ipv4: text("ipv4")?,
            ipv6: text("ipv6")?,
        }),
        ResourceKind::WebService => ResourceDetails::WebService(WebServiceDetails {
            production_url: text("production_url")?,
            source: text("source")?,
        }),
        ResourceKind::Domain => ResourceDetails::Domain(DomainDetails {
            records: opt_json_col(r, "records")?.unwrap_or_default(),
        }),
        ResourceKind::Database => ResourceDetails::Database(DatabaseDetails {
            engine: text("engine")?,
            region: text("region")?,
            host: text("host")?,
        }),
    };
    Ok(Resource {
        id: id(r, "id")?,
        org_id: id(r, "org_id")?,
        dock_id: id(r, "dock_id")?,
        provider: get(r, "provider")?,
        provider_resource_id: get(r, "provider_resource_id")?,
        name: get(r, "name")?,
        status: get(r, "status")?,
        provisioning_source: parsed(r, "provisioning_source")?,
        provisioning_state: parsed(r, "provisioning_state")?,
        provisioned_at: get(r, "provisioned_at")?,
        full_api_data: json_col(r, "full_api_data")?,
        error: opt_json_col(r, "error")?,
        marker: get::<Option<String>>(r, "marker")?
            .map(|m| {
                Marker::try_from(m)
                    .map_err(|e| StoreError::Corrupt(format!("{}.marker: {e}", kind.table())))
            })
            .transpose()?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        version: get(r, "version")?,
        details,
    })
}

fn decode(rows: Vec<PgRow>) -> Result<Vec<Resource>> {
    rows.iter().map(resource).collect()
}

pub(crate) async fn get_resource(
    c: &mut PgConnection,
    org: OrgId,
    resource_id: ResourceId,
) -> Result<Resource> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(&SQL, "org_id = $1 AND id = $2");
    let rows = sqlx::query(sql)
        .bind(org.as_uuid())
        .bind(resource_id.as_uuid())
        .fetch_all(&mut *c)
        .await?;
    decode(rows)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound {
            what: format!("resource {resource_id}"),
        })
}

/// The rows of an org among `ids`, in no particular order; ids that name nothing are left out.
pub(crate) async fn get_many(
    c: &mut PgConnection,
    org: OrgId,
    ids: &[ResourceId],
) -> Result<Vec<Resource>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = ids.iter().map(ResourceId::as_uuid).collect();
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(&SQL, "org_id = $1 AND id = ANY($2)");
    decode(
        sqlx::query(sql)
            .bind(org.as_uuid())
            .bind(ids)
            .fetch_all(&mut *c)
            .await?,
    )
}

/// A page of the org's rows that pass `filter`, newest first by `(created_at, id)`: those
/// below `page.after`. Each table's branch walks an index on `(org_id, <filter>, created_at,
/// id)` backwards from the key, and the `UNION ALL` is merged in order.
pub(crate) async fn list(
    c: &mut PgConnection,
    org: OrgId,
    filter: &ResourceFilter,
    page: &PageRequest<ResourceKey>,
) -> Result<Page<Resource, ResourceKey>> {
    // Conditions name their parameters by number, so every branch uses the same binds.
    let mut conditions = vec!["org_id = $1".to_string()];
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if filter.dock_id.is_some() {
        conditions.push(format!("dock_id = ${}", next()));
    }
    if filter.state.is_some() {
        conditions.push(format!("provisioning_state = ${}", next()));
    }
    if filter.source.is_some() {
        conditions.push(format!("provisioning_source = ${}", next()));
    }
    if filter.provider.is_some() {
        conditions.push(format!("provider = ${}", next()));
    }
    if filter.name.is_some() {
        // ASCII case only, as the contract says (and as SQLite's LIKE does): `translate`
        // folds A-Z and nothing else, and the pattern is folded the same way below.
        conditions.push(format!(
            "translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
             LIKE ${} ESCAPE '\\'",
            next()
        ));
    }
    if page.after.is_some() {
        let a = next();
        let b = next();
        conditions.push(format!("(created_at, id) < (${a}, ${b})"));
    }
    let limit = next();
    let kinds: Vec<ResourceKind> = match filter.kind {
        Some(k) => vec![k],
        None => ResourceKind::ALL.to_vec(),
    };
    let sql = format!(
        "{} ORDER BY created_at DESC, id DESC LIMIT ${limit}",
        select_all(&kinds, &conditions.join(" AND "))
    );
    let mut query = sqlx::query(&sql).bind(org.as_uuid());
    if let Some(dock) = filter.dock_id {
        query = query.bind(dock.as_uuid());
    }
    if let Some(state) = filter.state {
        query = query.bind(state.as_str());
    }
    if let Some(source) = filter.source {
        query = query.bind(source.as_str());
    }
    if let Some(provider) = &filter.provider {
        query = query.bind(provider.clone());
    }
    if let Some(name) = &filter.name {
        // The search's own `%`, `_` and `\` are escaped, so they match themselves.
        let escaped: String = name
            .to_ascii_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        query = query.bind(format!("%{escaped}%"));
    }
    if let Some(after) = &page.after {
        query = query
            .bind(micros(&after.created_at))
            .bind(after.id.as_uuid());
    }
    // One row more than the page, to know whether another follows.
    let rows = query
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *c)
        .await?;
    Ok(Page::from_rows(decode(rows)?, page.limit, |r| {
        ResourceKey {
            created_at: r.created_at,
            id: r.id,
        }
    }))
}

pub(crate) async fn find_by_provider_id(
    c: &mut PgConnection,
    org: OrgId,
    dock: DockId,
    kind: ResourceKind,
    provider_resource_id: &str,
) -> Result<Option<Resource>> {
    let sql = format!(
        "{} WHERE dock_id = $1 AND provider_resource_id = $2 AND org_id = $3
           AND provisioning_state <> 'deprovisioned'",
        select(kind)
    );
    let rows = sqlx::query(&sql)
        .bind(dock.as_uuid())
        .bind(provider_resource_id)
        .bind(org.as_uuid())
        .fetch_all(&mut *c)
        .await?;
    Ok(decode(rows)?.into_iter().next())
}

pub(crate) async fn find_by_marker(
    c: &mut PgConnection,
    org: OrgId,
    marker: &Marker,
) -> Result<Option<Resource>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(&SQL, "marker = $1 AND org_id = $2");
    let rows = sqlx::query(sql)
        .bind(marker.as_str())
        .bind(org.as_uuid())
        .fetch_all(&mut *c)
        .await?;
    Ok(decode(rows)?.into_iter().next())
}

/// Refuses a row that would make a second tracked copy of something: the same id, or the same
/// marker (markers are unique across the four tables, the schema only sees one). A live row for
/// the same provider resource in the same dock is refused by the tables' unique index.
async fn ensure_unique(c: &mut PgConnection, r: &Resource, is_insert: bool) -> Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let branches: Vec<String> = ResourceKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "SELECT id = $1 AS same_id FROM {}
                     WHERE ($3 AND id = $1) OR (marker = $2 AND id <> $1)",
                    k.table()
                )
            })
            .collect();
        format!(
            "SELECT same_id FROM ({}) AS taken LIMIT 1",
            branches.join(" UNION ALL ")
        )
    });
    let taken: Option<bool> = sqlx::query_scalar(sql)
        .bind(r.id.as_uuid())
        .bind(r.marker.as_ref().map(|m| m.as_str()))
        .bind(is_insert)
        .fetch_optional(&mut *c)
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

/// Binds [`COMMON`] (`$1`..`$16`) and then the kind's own columns.
fn bind_row<'q>(
    q: Query<'q, Postgres, PgArguments>,
    r: &Resource,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
) -> Result<Query<'q, Postgres, PgArguments>> {
    let q = q
        .bind(r.id.as_uuid())
        .bind(r.org_id.as_uuid())
        .bind(r.dock_id.as_uuid())
        .bind(text(&r.provider))
        .bind(opt_text(r.provider_resource_id.as_deref()))
        .bind(text(&r.name))
        .bind(opt_text(r.status.as_deref()))
        .bind(r.provisioning_source.as_str())
        .bind(r.provisioning_state.as_str())
        .bind(opt_micros(r.provisioned_at.as_ref()))
        .bind(json(&r.full_api_data)?)
        .bind(opt_json(r.error.as_ref())?)
        .bind(r.marker.as_ref().map(|m| m.as_str().to_string()))
        .bind(micros(&created_at))
        .bind(micros(&updated_at))
        .bind(version);
    Ok(match &r.details {
        ResourceDetails::Server(d) => q
            .bind(opt_text(d.region.as_deref()))
            .bind(opt_text(d.size.as_deref()))
            .bind(opt_text(d.image.as_deref()))
            .bind(opt_text(d.ipv4.as_deref()))
            .bind(opt_text(d.ipv6.as_deref())),
        ResourceDetails::WebService(d) => q
            .bind(opt_text(d.production_url.as_deref()))
            .bind(opt_text(d.source.as_deref())),
        ResourceDetails::Domain(d) => q.bind(json(&d.records)?),
        ResourceDetails::Database(d) => q
            .bind(opt_text(d.engine.as_deref()))
            .bind(opt_text(d.region.as_deref()))
            .bind(opt_text(d.host.as_deref())),
    })
}

/// `r` as the tables hold it: instants at the precision they keep.
fn as_stored(r: &Resource, created_at: Timestamp, updated_at: Timestamp, version: i64) -> Resource {
    Resource {
        created_at: created_at.trunc_subsecs(6),
        updated_at: updated_at.trunc_subsecs(6),
        provisioned_at: r.provisioned_at.map(|t| t.trunc_subsecs(6)),
        version,
        ..r.clone()
    }
}

/// The `INSERT` and `UPDATE` of each table, built once.
struct WriteSql {
    insert: String,
    update: String,
    stored: String,
    select: String,
}

fn write_sql(kind: ResourceKind) -> &'static WriteSql {
    static SQL: OnceLock<Vec<WriteSql>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        ResourceKind::ALL
            .iter()
            .map(|&kind| {
                let columns: Vec<&str> = COMMON.iter().chain(own_columns(kind)).copied().collect();
                let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                // `$1`, `$2` and `$14` (id, org_id, created_at) are bound but only `$1`/`$2`
                // are used, in the WHERE: the row keeps its identity and birth (sqlx sends
                // each parameter's type, so one the statement does not use is no error).
                let sets: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !matches!(**c, "id" | "org_id" | "created_at"))
                    .map(|(i, c)| format!("{c} = ${}", i + 1))
                    .collect();
                WriteSql {
                    insert: format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        kind.table(),
                        columns.join(", "),
                        params.join(", ")
                    ),
                    update: format!(
                        "UPDATE {} SET {} WHERE id = $1 AND org_id = $2",
                        kind.table(),
                        sets.join(", ")
                    ),
                    stored: format!(
                        "SELECT provisioning_state, version, created_at, dock_id, marker
                         FROM {} WHERE id = $1 AND org_id = $2 FOR NO KEY UPDATE",
                        kind.table()
                    ),
                    select: format!(
                        "{} WHERE id = $1 AND org_id = $2 FOR NO KEY UPDATE",
                        select(kind)
                    ),
                }
            })
            .collect()
    });
    let at = ResourceKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    &all[at]
}

/// A row as the batch's transaction sees it, locked, to change and write back.
pub(crate) async fn get_for_update(
    c: &mut PgConnection,
    org: OrgId,
    kind: ResourceKind,
    resource_id: ResourceId,
) -> Result<Resource> {
    let row = sqlx::query(&write_sql(kind).select)
        .bind(resource_id.as_uuid())
        .bind(org.as_uuid())
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("resource {resource_id}"),
        })?;
    resource(&row)
}

/// Inserts `r` as given (its `version`, `created_at` and `updated_at` included, so the
/// caller's copy stays current) and returns it as stored.
pub(crate) async fn insert(c: &mut PgConnection, r: &Resource) -> Result<Resource> {
    docks::ensure_in_org(c, r.org_id, r.dock_id).await?;
    ensure_unique(c, r, true).await?;
    let sql = write_sql(r.kind());
    bind_row(
        sqlx::query(&sql.insert),
        r,
        r.created_at,
        r.updated_at,
        r.version,
    )?
    .execute(&mut *c)
    .await
    .map_err(unique_as(|| format!("resource {}", r.id)))?;
    Ok(as_stored(r, r.created_at, r.updated_at, r.version))
}

/// Replaces every column but the row's identity (`id`, `org_id`) and `created_at`, if the
/// stored version is `expected_version` and the state change is legal; returns the row as
/// stored, with `version = expected_version + 1` and `updated_at` now.
pub(crate) async fn update(
    c: &mut PgConnection,
    r: &Resource,
    expected_version: i64,
) -> Result<Resource> {
    let kind = r.kind();
    let sql = write_sql(kind);
    let stored = sqlx::query(&sql.stored)
        .bind(r.id.as_uuid())
        .bind(r.org_id.as_uuid())
        .fetch_optional(&mut *c)
        .await?;
    let Some(stored) = stored else {
        return Err(StoreError::NotFound {
            what: format!("resource {}", r.id),
        });
    };
    let stored_version: i64 = get(&stored, "version")?;
    if stored_version != expected_version {
        return Err(StoreError::VersionConflict {
            id: r.id,
            expected: expected_version,
        });
    }
    let stored_state: ProvisioningState = parsed(&stored, "provisioning_state")?;
    stored_state.check(r.provisioning_state)?;
    // Checked only when they change (they almost never do).
    let stored_dock: DockId = id(&stored, "dock_id")?;
    if stored_dock != r.dock_id {
        docks::ensure_in_org(c, r.org_id, r.dock_id).await?;
    }
    let stored_marker: Option<String> = get(&stored, "marker")?;
    if stored_marker.as_deref() != r.marker.as_ref().map(|m| m.as_str()) {
        ensure_unique(c, r, false).await?;
    }
    let born: Timestamp = get(&stored, "created_at")?;
    let at = now();
    bind_row(sqlx::query(&sql.update), r, born, at, expected_version + 1)?
        .execute(&mut *c)
        .await
        .map_err(unique_as(|| {
            format!(
                "{} {:?} of dock {}",
                kind, r.provider_resource_id, r.dock_id
            )
        }))?;
    Ok(as_stored(r, born, at, expected_version + 1))
}

pub(crate) async fn insert_idempotency_key(
    c: &mut PgConnection,
    req: &crate::IdempotentRequest,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(req.org_id.as_uuid())
    .bind(&req.key)
    .bind(&req.request_hash)
    .bind(req.resource_id.as_uuid())
    .bind(now())
    .execute(&mut *c)
    .await
    .map_err(unique_as(|| format!("idempotency key {:?}", req.key)))?;
    Ok(())
}

pub(crate) async fn find_idempotency_key(
    c: &mut PgConnection,
    org: OrgId,
    key: &str,
) -> Result<Option<crate::IdempotentRequest>> {
    let row = sqlx::query(
        "SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = $1 AND key = $2",
    )
    .bind(org.as_uuid())
    .bind(key)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| {
        Ok(crate::IdempotentRequest {
            org_id: org,
            key: key.to_string(),
            request_hash: get(&r, "request_hash")?,
            resource_id: id(&r, "resource_id")?,
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
                assert!(
                    DETAILS.iter().any(|(d, _)| d == c),
                    "{kind}.{c} missing from DETAILS"
                );
            }
        }
    }
}
