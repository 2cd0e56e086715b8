//! Managed databases: the inventory, the JSON a database is shown as (the spec's `database`
//! schema, credentials included, as Vultr shows them), and the `/databases` handlers.
//!
//! A database is `Rebuilding` until `ready_after` has passed since its create, then
//! `Running`; [`Databases::hold`] keeps every database made through the API `Rebuilding`
//! until released. The listing is not paginated (the document gives it no cursor).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::instances::{REGIONS, body_of};
use super::{Cloud, error};
use crate::front_door::{ApiError, uuid_text};

/// Engines and the versions a create may name.
const ENGINES: &[(&str, &[&str])] = &[
    ("mysql", &["8"]),
    ("pg", &["13", "14", "15", "16"]),
    ("redis", &["7"]),
];

/// Plans a create may name, with their vCPUs, RAM (MB), disk (GB) and replicas.
const PLANS: &[(&str, u32, u32, u32, u32)] = &[
    ("vultr-dbaas-hobbyist-cc-1-25-1", 1, 1024, 25, 0),
    ("vultr-dbaas-startup-cc-1-55-2", 1, 2048, 55, 0),
    ("vultr-dbaas-business-cc-1-55-2", 1, 2048, 55, 2),
];

pub(crate) struct Databases {
    databases: BTreeMap<String, Database>,
    /// How many databases were ever created with each tag, deleted ones included.
    created_with_tag: HashMap<String, usize>,
    /// Every admin password handed out, in order.
    passwords: Vec<String>,
    next_id: u64,
    held: bool,
}

struct Database {
    id: String,
    label: String,
    tag: String,
    engine: &'static str,
    version: String,
    region: String,
    plan: &'static (&'static str, u32, u32, u32, u32),
    vpc_id: String,
    maintenance_dow: String,
    maintenance_time: String,
    trusted_ips: Vec<String>,
    password: String,
    date_created: String,
    created: Instant,
    ready_after: Duration,
}

/// A create's body, checked.
pub(crate) struct Spec {
    label: String,
    tag: String,
    engine: &'static str,
    version: String,
    region: String,
    plan: &'static (&'static str, u32, u32, u32, u32),
    vpc_id: String,
    maintenance_dow: String,
    maintenance_time: String,
    trusted_ips: Vec<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

impl Spec {
    pub(crate) fn from_body(body: &Value) -> Result<Self, ApiError> {
        let text = |field: &str| -> Result<Option<String>, ApiError> {
            match &body[field] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(bad(format!("Invalid {field}: must be a string."))),
            }
        };
        let required = |field: &str| {
            text(field)?
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("Missing required field: {field}.")))
        };
        let engine = required("database_engine")?;
        let (engine, versions) = ENGINES
            .iter()
            .find(|(e, _)| *e == engine)
            .ok_or_else(|| bad(format!("Invalid database_engine: {engine}.")))?;
        let version = required("database_engine_version")?;
        if !versions.contains(&version.as_str()) {
            return Err(bad(format!(
                "Invalid database_engine_version {version} for {engine}."
            )));
        }
        let region = required("region")?;
        if !REGIONS.contains(&region.as_str()) {
            return Err(bad(format!("Invalid region: {region}.")));
        }
        let plan = required("plan")?;
        let plan = PLANS
            .iter()
            .find(|p| p.0 == plan)
            .ok_or_else(|| bad(format!("Invalid plan: {plan}.")))?;
        let trusted_ips = match &body["trusted_ips"] {
            Value::Null => Vec::new(),
            Value::Array(ips) => ips
                .iter()
                .map(|ip| ip.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("Invalid trusted_ips: must be strings."))?,
            _ => return Err(bad("Invalid trusted_ips: must be an array of strings.")),
        };
        Ok(Self {
            label: required("label")?,
            tag: text("tag")?.unwrap_or_default(),
            engine,
            version,
            region,
            plan,
            vpc_id: text("vpc_id")?.unwrap_or_default(),
            maintenance_dow: text("maintenance_dow")?.unwrap_or_else(|| "sunday".into()),
            maintenance_time: text("maintenance_time")?.unwrap_or_else(|| "06:00:00".into()),
            trusted_ips,
        })
    }
}

impl Databases {
    pub(crate) fn new() -> Self {
        Self {
            databases: BTreeMap::new(),
            created_with_tag: HashMap::new(),
            passwords: Vec::new(),
            // Random per start, so ids from a sandbox that restarted never repeat.
            next_id: u64::from(rand::random::<u32>()) << 20,
            held: false,
        }
    }

    pub(crate) fn hold(&mut self, on: bool) {
        self.held = on;
    }

    pub(crate) fn databases(&self) -> Vec<Value> {
        let now = Instant::now();
        self.databases.values().map(|d| self.view(d, now)).collect()
    }

    pub(crate) fn creates_with_tag(&self, tag: &str) -> usize {
        self.created_with_tag.get(tag).copied().unwrap_or(0)
    }

    pub(crate) fn passwords(&self) -> Vec<String> {
        self.passwords.clone()
    }

    pub(crate) fn create(&mut self, spec: Spec, ready_after: Duration) -> Value {
        self.next_id += 1;
        let id = uuid_text(&u128::from(self.next_id).to_be_bytes());
        let password = format!("AVNS_{:020x}", rand::random::<u128>() >> 48);
        self.passwords.push(password.clone());
        if !spec.tag.is_empty() {
            *self.created_with_tag.entry(spec.tag.clone()).or_default() += 1;
        }
        let database = Database {
            id: id.clone(),
            label: spec.label,
            tag: spec.tag,
            engine: spec.engine,
            version: spec.version,
            region: spec.region,
            plan: spec.plan,
            vpc_id: spec.vpc_id,
            maintenance_dow: spec.maintenance_dow,
            maintenance_time: spec.maintenance_time,
            trusted_ips: spec.trusted_ips,
            password,
            date_created: Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            created: Instant::now(),
            ready_after,
        };
        let view = self.view(&database, Instant::now());
        self.databases.insert(id, database);
        view
    }

    fn view(&self, d: &Database, now: Instant) -> Value {
        let rebuilding = (self.held && !d.ready_after.is_zero())
            || now.saturating_duration_since(d.created) < d.ready_after;
        let (plan, vcpus, ram, disk, replicas) = *d.plan;
        let host = format!("vultr-prod-{}.vultrdb.com", &d.id[..8]);
        let (port, user) = match d.engine {
            "mysql" => ("16751", "vultradmin"),
            "pg" => ("16752", "vultradmin"),
            _ => ("16753", "default"),
        };
        let mut view = json!({
            "id": d.id,
            "date_created": d.date_created,
            "plan": plan,
            "plan_disk": disk,
            "plan_ram": ram,
            "plan_vcpus": vcpus,
            "plan_replicas": replicas,
            "region": d.region.to_uppercase(),
            "database_engine": d.engine,
            "database_engine_version": d.version,
            "vpc_id": d.vpc_id,
            "status": if rebuilding { "Rebuilding" } else { "Running" },
            "label": d.label,
            "tag": d.tag,
            "dbname": "defaultdb",
            "host": host,
            "public_host": format!("public-{host}"),
            "user": user,
            "password": d.password,
            "port": port,
            "maintenance_dow": d.maintenance_dow,
            "maintenance_time": d.maintenance_time,
            "latest_backup": "",
            "trusted_ips": d.trusted_ips,
            "cluster_time_zone": "America/New_York",
            "read_replicas": [],
        });
        let extra = match d.engine {
            "mysql" => json!({
                "mysql_sql_modes": ["ANSI", "STRICT_ALL_TABLES"],
                "mysql_require_primary_key": true,
                "mysql_slow_query_log": false,
            }),
            "pg" => json!({"pg_available_extensions": [{"name": "postgis", "versions": ["3.4"]}]}),
            _ => json!({"redis_eviction_policy": "allkeys-lru"}),
        };
        if let (Value::Object(view), Value::Object(extra)) = (&mut view, extra) {
            view.extend(extra);
        }
        view
    }
}

fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "Invalid database-id.")
}

type Answer = Result<Json<Value>, ApiError>;

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    label: Option<String>,
    tag: Option<String>,
    region: Option<String>,
}

pub(crate) async fn list(State(cloud): State<Arc<Cloud>>, Query(q): Query<ListQuery>) -> Answer {
    let dbs = cloud.databases();
    let now = Instant::now();
    let listed: Vec<Value> = dbs
        .databases
        .values()
        .filter(|d| q.label.as_ref().is_none_or(|l| d.label == *l))
        .filter(|d| q.tag.as_ref().is_none_or(|t| d.tag == *t))
        .filter(|d| {
            q.region
                .as_ref()
                .is_none_or(|r| d.region == r.to_lowercase())
        })
        .map(|d| dbs.view(d, now))
        .collect();
    let total = listed.len();
    Ok(Json(json!({"databases": listed, "meta": {"total": total}})))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = Spec::from_body(&body_of(&bytes)?)?;
    let view = cloud.databases().create(spec, cloud.ready_after);
    Ok((StatusCode::ACCEPTED, Json(json!({"database": view}))))
}

pub(crate) async fn get(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let dbs = cloud.databases();
    let database = dbs.databases.get(&id).ok_or_else(not_found)?;
    Ok(Json(
        json!({"database": dbs.view(database, Instant::now())}),
    ))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    cloud
        .databases()
        .databases
        .remove(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(not_found)
}
