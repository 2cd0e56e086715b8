//! Docks: connected provider accounts, and the rule for removing one.

use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, params};
use stackdock_core::{AuditEntry, Dock, DockId, DockName, OrgId, ResourceKind, SealedSecret};

use super::audit;
use super::codec::{json, parse, parse_json, parse_ts, ts};
use super::error::unique_as;
use super::reader::rows;
use crate::{Page, PageRequest, Result, StoreError};

const COLUMNS: &str =
    "id, org_id, provider, name, sealed_api_key, api_base_url, settings, created_at";

struct DockRow {
    id: String,
    org_id: String,
    provider: String,
    name: String,
    sealed_api_key: String,
    api_base_url: Option<String>,
    settings: String,
    created_at: String,
}

impl DockRow {
    /// A row in the order of [`COLUMNS`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            org_id: r.get(1)?,
            provider: r.get(2)?,
            name: r.get(3)?,
            sealed_api_key: r.get(4)?,
            api_base_url: r.get(5)?,
            settings: r.get(6)?,
            created_at: r.get(7)?,
        })
    }
}

impl TryFrom<DockRow> for Dock {
    type Error = StoreError;
    fn try_from(r: DockRow) -> Result<Self> {
        Ok(Dock {
            id: parse("docks.id", &r.id)?,
            org_id: parse("docks.org_id", &r.org_id)?,
            provider: parse("docks.provider", &r.provider)?,
            name: DockName::try_from(r.name.clone())
                .map_err(|e| StoreError::Corrupt(format!("docks.name: {e}")))?,
            sealed_api_key: SealedSecret::parse(&r.sealed_api_key)
                // The value itself stays out of the message: it is the sealed key.
                .map_err(|e| {
                    StoreError::Corrupt(format!("docks.sealed_api_key of dock {}: {e}", r.id))
                })?,
            api_base_url: r.api_base_url,
            settings: parse_json("docks.settings", &r.settings)?,
            created_at: parse_ts("docks.created_at", &r.created_at)?,
        })
    }
}

pub(crate) fn get(conn: &Connection, org: OrgId, id: DockId) -> Result<Dock> {
    find(conn, Key::Id, &id.to_string(), org)?.ok_or_else(|| StoreError::NotFound {
        what: format!("dock {id}"),
    })
}

pub(crate) fn find_by_name(conn: &Connection, org: OrgId, name: &DockName) -> Result<Option<Dock>> {
    find(conn, Key::Name, name.as_str(), org)
}

/// What a dock is looked up by.
#[derive(Clone, Copy)]
enum Key {
    Id = 0,
    Name = 1,
}

/// The org's dock whose `column` (`id` or `name`) is `value`.
fn find(conn: &Connection, column: Key, value: &str, org: OrgId) -> Result<Option<Dock>> {
    static SQL: OnceLock<[String; 2]> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        ["id", "name"]
            .map(|c| format!("SELECT {COLUMNS} FROM docks WHERE org_id = ?1 AND {c} = ?2"))
    });
    let row = conn
        .prepare_cached(&sql[column as usize])?
        .query_row(params![org.to_string(), value], DockRow::read)
        .optional()?;
    row.map(Dock::try_from).transpose()
}

/// The docks of every org.
pub(crate) fn all(conn: &Connection) -> Result<Vec<Dock>> {
    rows(
        conn,
        &format!("SELECT {COLUMNS} FROM docks ORDER BY id"),
        [],
        DockRow::read,
    )?
    .into_iter()
    .map(Dock::try_from)
    .collect()
}

/// A page of the org's docks by name: those after the name `page.after`, along the
/// `UNIQUE (org_id, name)` index.
pub(crate) fn list(
    conn: &Connection,
    org: OrgId,
    page: &PageRequest<DockName>,
) -> Result<Page<Dock, DockName>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM docks WHERE org_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
        )
    });
    // One row more than the page, to know whether another follows; every name is above "".
    let docks = rows(
        conn,
        sql,
        params![
            org.to_string(),
            page.after.as_ref().map_or("", DockName::as_str),
            i64::from(page.limit) + 1
        ],
        DockRow::read,
    )?
    .into_iter()
    .map(Dock::try_from)
    .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(docks, page.limit, |d| d.name.clone()))
}

pub(crate) fn insert(conn: &Connection, dock: &Dock) -> Result<()> {
    let taken: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM docks WHERE org_id = ?1 AND name = ?2")?
        .query_row(params![dock.org_id.to_string(), dock.name.as_str()], |r| {
            r.get(0)
        })
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists {
            what: format!("dock {:?}", dock.name.as_str()),
        });
    }
    let org_known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM orgs WHERE id = ?1")?
        .query_row(params![dock.org_id.to_string()], |r| r.get(0))
        .optional()?;
    if org_known.is_none() {
        return Err(StoreError::NotFound {
            what: format!("org {}", dock.org_id),
        });
    }
    conn.prepare_cached(
        "INSERT INTO docks (id, org_id, provider, name, sealed_api_key, key_id, api_base_url, settings, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        dock.id.to_string(),
        dock.org_id.to_string(),
        dock.provider.as_str(),
        dock.name.as_str(),
        dock.sealed_api_key.as_str(),
        dock.sealed_api_key.key_id(),
        dock.api_base_url,
        json(&dock.settings)?,
        ts(&dock.created_at)
    ])
    .map_err(unique_as(|| format!("dock {}", dock.id)))?;
    Ok(())
}

/// Replaces what may change on a dock: its key, base URL override and settings. The name,
/// provider and owner are fixed for the dock's life; resource rows and journals refer to them.
pub(crate) fn update(conn: &Connection, dock: &Dock) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE docks SET sealed_api_key = ?1, key_id = ?2, api_base_url = ?3, settings = ?4
             WHERE id = ?5 AND org_id = ?6",
        )?
        .execute(params![
            dock.sealed_api_key.as_str(),
            dock.sealed_api_key.key_id(),
            dock.api_base_url,
            json(&dock.settings)?,
            dock.id.to_string(),
            dock.org_id.to_string()
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("dock {}", dock.id),
        });
    }
    Ok(())
}

/// Whether `id` is a dock of `org`: resource rows and operations may only point at a dock of
/// their own org.
pub(crate) fn ensure_in_org(conn: &Connection, org: OrgId, id: DockId) -> Result<()> {
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM docks WHERE org_id = ?1 AND id = ?2")?
        .query_row(params![org.to_string(), id.to_string()], |r| r.get(0))
        .optional()?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: format!("dock {id}"),
        }),
    }
}

/// Removes a dock once nothing of it is in flight or alive at the provider.
///
/// What goes with the dock: its resource rows (by then only discovered ones, which StackDock
/// never owned, and deprovisioned ones, which are history) and its finished operations with
/// their steps. Resource rows and operations reference the dock with a plain foreign key, so
/// deleting them first is what lets the dock row go; nothing can point at a dock that is gone.
/// What stays: the journal, the audit log and the change feed, which are append-only history
/// and carry the dock id as plain text.
pub(crate) fn remove(conn: &Connection, org: OrgId, id: DockId, entry: &AuditEntry) -> Result<()> {
    let dock_id = id.to_string();
    let name: Option<String> = conn
        .prepare_cached("SELECT name FROM docks WHERE org_id = ?1 AND id = ?2")?
        .query_row(params![org.to_string(), dock_id], |r| r.get(0))
        .optional()?;
    let Some(name) = name else {
        return Err(StoreError::NotFound {
            what: format!("dock {id}"),
        });
    };

    let mut live_resources = 0i64;
    for kind in ResourceKind::ALL {
        let n: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE dock_id = ?1
                   AND provisioning_source = 'api' AND provisioning_state <> 'deprovisioned'",
                kind.table()
            ),
            params![dock_id],
            |r| r.get(0),
        )?;
        live_resources += n;
    }
    let unfinished_ops: i64 = conn.query_row(
        "SELECT COUNT(*) FROM operations WHERE dock_id = ?1 AND state IN ('queued', 'running', 'waiting')",
        params![dock_id],
        |r| r.get(0),
    )?;
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
        conn.execute(
            &format!("DELETE FROM {} WHERE dock_id = ?1", kind.table()),
            params![dock_id],
        )?;
    }
    conn.execute(
        "DELETE FROM operation_steps WHERE operation_id IN (SELECT id FROM operations WHERE dock_id = ?1)",
        params![dock_id],
    )?;
    conn.execute(
        "DELETE FROM operations WHERE dock_id = ?1",
        params![dock_id],
    )?;
    conn.execute("DELETE FROM docks WHERE id = ?1", params![dock_id])?;
    audit::append(conn, entry)?;
    Ok(())
}
