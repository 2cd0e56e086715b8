//! The four universal tables, read as one.
//!
//! Each kind has its own table (`servers`, `web_services`, `domains`, `databases`) with the
//! same sixteen leading columns. Reads that span kinds select every table into one row shape
//! (`UNION ALL`, the columns a kind lacks as `NULL`) so one decoder serves them all; the
//! planner pushes the `WHERE` into each branch, where the primary key, `marker` and
//! `(org_id, created_at)` indexes answer it. A lookup by id therefore costs four index probes
//! and needs no side table to keep in step.

use std::sync::OnceLock;

use chrono::SubsecRound;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use stackdock_core::{
    DatabaseDetails, DockId, DomainDetails, Marker, OrgId, ProvisioningState, Resource,
    ResourceDetails, ResourceId, ResourceKind, ServerDetails, Timestamp, WebServiceDetails,
};

use super::codec::{
    json, now, opt_json, opt_ts, parse, parse_json, parse_opt_json, parse_opt_ts, parse_ts, ts,
};
use super::docks;
use super::error::unique_as;
use super::reader::rows;
use crate::{Page, PageRequest, ResourceFilter, ResourceKey, Result, StoreError};

/// The columns every universal table has, in the order [`values`] binds them (`?1`..`?16`).
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

/// Every row `sql` returns, decoded.
fn decode(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Resource>> {
    rows(conn, sql, params, ResourceRow::read)?
        .into_iter()
        .map(Resource::try_from)
        .collect()
}

/// The statement of `condition` over every kind, built once per call site.
fn select_every_kind(cell: &'static OnceLock<String>, condition: &str) -> &'static str {
    cell.get_or_init(|| select_all(&ResourceKind::ALL, condition))
}

pub(crate) fn get(conn: &Connection, org: OrgId, id: ResourceId) -> Result<Resource> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(&SQL, "org_id = ?1 AND id = ?2");
    decode(conn, sql, params![org.to_string(), id.to_string()])?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound {
            what: format!("resource {id}"),
        })
}

/// The rows of an org among `ids`, in no particular order; ids that name nothing are left out.
pub(crate) fn get_many(conn: &Connection, org: OrgId, ids: &[ResourceId]) -> Result<Vec<Resource>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    // One bound JSON array, not one parameter per id: SQLite caps the number of parameters.
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(
        &SQL,
        "org_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
    );
    decode(conn, sql, params![org.to_string(), json(&ids)?])
}

/// A page of the org's rows that pass `filter`, newest first by `(created_at, id)`: those
/// below `page.after`. Each table's branch walks an index on `(org_id, <filter>, created_at,
/// id)` backwards from the key, and the `UNION ALL` merges the branches in order, so a page
/// reads about `limit + 1` rows whatever the size of the tables.
pub(crate) fn list(
    conn: &Connection,
    org: OrgId,
    filter: &ResourceFilter,
    page: &PageRequest<ResourceKey>,
) -> Result<Page<Resource, ResourceKey>> {
    let mut binds: Vec<Value> = vec![Value::Text(org.to_string())];
    let mut conditions = vec!["org_id = ?1".to_string()];
    let mut add = |column: &str, value: String| {
        binds.push(Value::Text(value));
        conditions.push(format!("{column} = ?{}", binds.len()));
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
    if let Some(provider) = &filter.provider {
        add("provider", provider.clone());
    }
    if let Some(name) = &filter.name {
        // LIKE with the search's own `%`, `_` and `\\` escaped, so they match themselves. The
        // walk stays on the `created_at` index: a search reads the rows it passes over.
        let escaped: String = name
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        binds.push(Value::Text(format!("%{escaped}%")));
        conditions.push(format!("name LIKE ?{} ESCAPE '\\'", binds.len()));
    }
    if let Some(after) = &page.after {
        binds.push(Value::Text(ts(&after.created_at)));
        binds.push(Value::Text(after.id.to_string()));
        let n = binds.len();
        conditions.push(format!("(created_at, id) < (?{}, ?{n})", n - 1));
    }
    let kinds: Vec<ResourceKind> = match filter.kind {
        Some(k) => vec![k],
        None => ResourceKind::ALL.to_vec(),
    };
    let mut sql = select_all(&kinds, &conditions.join(" AND "));
    // One row more than the page, to know whether another follows.
    binds.push(Value::Integer(i64::from(page.limit) + 1));
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ?{}",
        binds.len()
    ));
    let rows = decode(conn, &sql, params_from_iter(binds))?;
    Ok(Page::from_rows(rows, page.limit, |r| ResourceKey {
        created_at: r.created_at,
        id: r.id,
    }))
}

pub(crate) fn find_by_provider_id(
    conn: &Connection,
    org: OrgId,
    dock: DockId,
    kind: ResourceKind,
    provider_resource_id: &str,
) -> Result<Option<Resource>> {
    let sql = format!(
        "{} WHERE dock_id = ?1 AND provider_resource_id = ?2 AND org_id = ?3
           AND provisioning_state <> 'deprovisioned'",
        select(kind)
    );
    Ok(decode(
        conn,
        &sql,
        params![dock.to_string(), provider_resource_id, org.to_string()],
    )?
    .into_iter()
    .next())
}

pub(crate) fn find_by_marker(
    conn: &Connection,
    org: OrgId,
    marker: &Marker,
) -> Result<Option<Resource>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = select_every_kind(&SQL, "marker = ?1 AND org_id = ?2");
    Ok(
        decode(conn, sql, params![marker.as_str(), org.to_string()])?
            .into_iter()
            .next(),
    )
}

/// Refuses a row that would make a second tracked copy of something: the same id, or the same
/// marker (markers are unique across the four tables, the schema only sees one). A live row for
/// the same provider resource in the same dock is refused by the tables' unique index.
fn ensure_unique(conn: &Connection, r: &Resource, is_insert: bool) -> Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    // One statement over the four tables: SQLite pushes the conditions into each branch, where
    // the primary key and the marker index answer them.
    let sql = SQL.get_or_init(|| {
        let branches: Vec<String> = ResourceKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "SELECT id = ?1 AS same_id FROM {} WHERE (?3 AND id = ?1) OR (marker = ?2 AND id <> ?1)",
                    k.table()
                )
            })
            .collect();
        format!("SELECT same_id FROM ({}) LIMIT 1", branches.join(" UNION ALL "))
    });
    let taken: Option<bool> = conn
        .prepare_cached(sql)?
        .query_row(
            params![
                r.id.to_string(),
                r.marker.as_ref().map(|m| m.as_str()),
                is_insert
            ],
            |row| row.get(0),
        )
        .optional()?;
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

/// The values of [`COMMON`] (`?1`..`?16`) and then the kind's own columns, as bound.
fn values(
    r: &Resource,
    created_at: String,
    updated_at: String,
    version: i64,
) -> Result<Vec<Value>> {
    let text = |s: &str| Value::Text(s.to_owned());
    let opt = |s: Option<String>| s.map_or(Value::Null, Value::Text);
    let mut v = vec![
        Value::Text(r.id.to_string()),
        Value::Text(r.org_id.to_string()),
        Value::Text(r.dock_id.to_string()),
        text(&r.provider),
        opt(r.provider_resource_id.clone()),
        text(&r.name),
        opt(r.status.clone()),
        text(r.provisioning_source.as_str()),
        text(r.provisioning_state.as_str()),
        opt(opt_ts(r.provisioned_at.as_ref())),
        Value::Text(json(&r.full_api_data)?),
        opt(opt_json(r.error.as_ref())?),
        opt(r.marker.as_ref().map(|m| m.as_str().to_string())),
        Value::Text(created_at),
        Value::Text(updated_at),
        Value::Integer(version),
    ];
    v.extend(detail_values(&r.details)?.into_iter().map(opt));
    Ok(v)
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
                let params: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
                // `?1`, `?2` and `?14` (id, org_id, created_at) are bound but only `?1`/`?2`
                // are used, in the WHERE: the row keeps its identity and birth.
                let sets: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !matches!(**c, "id" | "org_id" | "created_at"))
                    .map(|(i, c)| format!("{c} = ?{}", i + 1))
                    .collect();
                WriteSql {
                    insert: format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        kind.table(),
                        columns.join(", "),
                        params.join(", ")
                    ),
                    update: format!(
                        "UPDATE {} SET {} WHERE id = ?1 AND org_id = ?2",
                        kind.table(),
                        sets.join(", ")
                    ),
                    stored: format!(
                        "SELECT provisioning_state, version, created_at, dock_id, marker
                         FROM {} WHERE id = ?1 AND org_id = ?2",
                        kind.table()
                    ),
                    select: format!("{} WHERE id = ?1 AND org_id = ?2", select(kind)),
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

impl ResourceRow {
    /// A row in the shape of [`select`]: `kind`, then [`COMMON`], then [`DETAILS`].
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            kind: row.get(0)?,
            id: row.get(1)?,
            org_id: row.get(2)?,
            dock_id: row.get(3)?,
            provider: row.get(4)?,
            provider_resource_id: row.get(5)?,
            name: row.get(6)?,
            status: row.get(7)?,
            provisioning_source: row.get(8)?,
            provisioning_state: row.get(9)?,
            provisioned_at: row.get(10)?,
            full_api_data: row.get(11)?,
            error: row.get(12)?,
            marker: row.get(13)?,
            created_at: row.get(14)?,
            updated_at: row.get(15)?,
            version: row.get(16)?,
            region: row.get(17)?,
            size: row.get(18)?,
            image: row.get(19)?,
            ipv4: row.get(20)?,
            ipv6: row.get(21)?,
            production_url: row.get(22)?,
            source: row.get(23)?,
            records: row.get(24)?,
            engine: row.get(25)?,
            host: row.get(26)?,
        })
    }
}

/// A row as the writer sees it inside its transaction, to change and write back.
pub(crate) fn get_for_update(
    conn: &Connection,
    org: OrgId,
    kind: ResourceKind,
    id: ResourceId,
) -> Result<Resource> {
    let sql = &write_sql(kind).select;
    let row = conn
        .prepare_cached(sql)?
        .query_row(params![id.to_string(), org.to_string()], ResourceRow::read)
        .optional()?;
    let row = row.ok_or_else(|| StoreError::NotFound {
        what: format!("resource {id}"),
    })?;
    Resource::try_from(row)
}

/// Inserts `r` as given (its `version`, `created_at` and `updated_at` included, so the
/// caller's copy stays current) and returns it as stored.
pub(crate) fn insert(conn: &Connection, r: &Resource) -> Result<Resource> {
    docks::ensure_in_org(conn, r.org_id, r.dock_id)?;
    ensure_unique(conn, r, true)?;
    let sql = write_sql(r.kind());
    conn.prepare_cached(&sql.insert)?
        .execute(params_from_iter(values(
            r,
            ts(&r.created_at),
            ts(&r.updated_at),
            r.version,
        )?))
        .map_err(unique_as(|| format!("resource {}", r.id)))?;
    Ok(as_stored(r, r.created_at, r.updated_at, r.version))
}

/// Replaces every column but the row's identity (`id`, `org_id`) and `created_at`, if the
/// stored version is `expected_version` and the state change is legal; returns the row as
/// stored, with `version = expected_version + 1` and `updated_at` now.
pub(crate) fn update(conn: &Connection, r: &Resource, expected_version: i64) -> Result<Resource> {
    let kind = r.kind();
    let sql = write_sql(kind);
    let stored: Option<(String, i64, String, String, Option<String>)> = conn
        .prepare_cached(&sql.stored)?
        .query_row(params![r.id.to_string(), r.org_id.to_string()], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
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
    // Checked only when they change (they almost never do).
    if stored_dock != r.dock_id.to_string() {
        docks::ensure_in_org(conn, r.org_id, r.dock_id)?;
    }
    if stored_marker.as_deref() != r.marker.as_ref().map(|m| m.as_str()) {
        ensure_unique(conn, r, false)?;
    }
    let born = parse_ts(&format!("{}.created_at", kind.table()), &created_at)?;
    let at = now();
    conn.prepare_cached(&sql.update)?
        .execute(params_from_iter(values(
            r,
            created_at,
            ts(&at),
            expected_version + 1,
        )?))
        .map_err(unique_as(|| {
            format!(
                "{} {:?} of dock {}",
                kind, r.provider_resource_id, r.dock_id
            )
        }))?;
    Ok(as_stored(r, born, at, expected_version + 1))
}

pub(crate) fn insert_idempotency_key(
    conn: &Connection,
    req: &crate::IdempotentRequest,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        req.org_id.to_string(),
        req.key,
        req.request_hash,
        req.resource_id.to_string(),
        ts(&now())
    ])
    .map_err(unique_as(|| format!("idempotency key {:?}", req.key)))?;
    Ok(())
}

pub(crate) fn find_idempotency_key(
    conn: &Connection,
    org: OrgId,
    key: &str,
) -> Result<Option<crate::IdempotentRequest>> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = ?1 AND key = ?2",
        )?
        .query_row(params![org.to_string(), key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
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
