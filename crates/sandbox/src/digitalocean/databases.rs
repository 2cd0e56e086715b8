//! Managed database clusters: `/v2/databases` and `/v2/databases/{uuid}`, as the
//! `database_cluster` schema describes them.
//!
//! A cluster is `creating` until `database_ready_after` has passed since its create,
//! then `online`, computed when it is looked at (as droplets are). Each cluster gets a
//! random `doadmin` password that its `connection`, `private_connection` and `users`
//! show, as DigitalOcean's do: what a client must keep out of its logs and storage.
//! The list takes only `tag_name` and has no pages, as documented.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::catalog;
use super::droplet_create::{bad_request, check_tag, unprocessable};
use super::paging::QueryParams;
use super::{Cloud, no_content, not_found, read_json};
use crate::front_door::ApiError;

/// Engines the create accepts; `redis` creates ended on 2025-04-30, as the spec notes.
const ENGINES: [&str; 8] = [
    "pg",
    "mysql",
    "valkey",
    "mongodb",
    "kafka",
    "opensearch",
    "advanced_pg",
    "advanced_mysql",
];
/// Node sizes of the managed database plans, smallest first.
const SIZES: [&str; 6] = [
    "db-s-1vcpu-1gb",
    "db-s-1vcpu-2gb",
    "db-s-2vcpu-4gb",
    "db-s-4vcpu-8gb",
    "db-s-6vcpu-16gb",
    "db-s-8vcpu-32gb",
];
const MAX_NAME_LEN: usize = 63;

#[derive(Default)]
pub(crate) struct Clusters {
    clusters: BTreeMap<String, Cluster>,
    /// How many clusters were ever created with each tag, deleted ones included.
    created_with_tag: HashMap<String, usize>,
    /// While set, every cluster shows `creating` whatever its delay: a gate a test holds
    /// to look at the in-between state, then releases.
    held: bool,
}

struct Cluster {
    id: String,
    name: String,
    engine: String,
    version: String,
    num_nodes: u64,
    size: String,
    region: String,
    tags: Vec<String>,
    password: String,
    private_network_uuid: String,
    storage_size_mib: u64,
    created_at: DateTime<Utc>,
    ready_at: Instant,
}

/// A create request that passed validation.
pub(crate) struct ClusterSpec {
    name: String,
    engine: String,
    version: Option<String>,
    num_nodes: u64,
    size: String,
    region: String,
    tags: Vec<String>,
    private_network_uuid: Option<String>,
    storage_size_mib: Option<u64>,
}

impl ClusterSpec {
    /// Validates a `database_cluster` create body: `name`, `engine`, `num_nodes`,
    /// `size` and `region` are required.
    pub(crate) fn from_body(body: &Value) -> Result<Self, ApiError> {
        let body = body
            .as_object()
            .ok_or_else(|| bad_request("The request body must be a JSON object."))?;
        let text = |key: &str| -> Result<Option<String>, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(unprocessable(format!("{key} must be a string."))),
            }
        };
        let required = |key: &str| {
            text(key)?
                .filter(|v| !v.is_empty())
                .ok_or_else(|| unprocessable(format!("{key} is required.")))
        };
        let name = required("name")?;
        let name_ok = name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(unprocessable(
                "name must start with a lowercase letter and hold only lowercase letters, digits and dashes (at most 63).",
            ));
        }
        let engine = required("engine")?;
        if engine == "redis" {
            return Err(unprocessable(
                "Caching cluster creates are no longer supported; use valkey.",
            ));
        }
        if !ENGINES.contains(&engine.as_str()) {
            return Err(unprocessable(format!("invalid engine {engine:?}.")));
        }
        let size = required("size")?;
        if !SIZES.contains(&size.as_str()) {
            return Err(unprocessable(format!("invalid size {size:?}.")));
        }
        let region = required("region")?;
        if catalog::region(&region).is_none() {
            return Err(unprocessable(format!("invalid region {region:?}.")));
        }
        let num_nodes = match body.get("num_nodes") {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| unprocessable("num_nodes must be an integer."))?,
            None => return Err(unprocessable("num_nodes is required.")),
        };
        if !(1..=3).contains(&num_nodes) {
            return Err(unprocessable("num_nodes must be between 1 and 3."));
        }
        let tags = match body.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| unprocessable("tags must be an array of strings."))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(unprocessable("tags must be an array of strings.")),
        };
        for tag in &tags {
            check_tag(tag)?;
        }
        let storage_size_mib = match body.get("storage_size_mib") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| unprocessable("storage_size_mib must be an integer."))?,
            ),
        };
        Ok(Self {
            name,
            engine,
            version: text("version")?,
            num_nodes,
            size,
            region,
            tags,
            private_network_uuid: text("private_network_uuid")?,
            storage_size_mib,
        })
    }
}

/// The engine version a cluster gets when the create names none.
fn default_version(engine: &str) -> &'static str {
    match engine {
        "pg" | "advanced_pg" => "17",
        "mysql" | "advanced_mysql" => "8",
        "mongodb" => "8.0",
        "kafka" => "3.8",
        "opensearch" => "2",
        _ => "8",
    }
}

fn port(engine: &str) -> u64 {
    match engine {
        "mongodb" => 27017,
        "kafka" => 25073,
        _ => 25060,
    }
}

fn random_hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn new_uuid() -> String {
    let hex = random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Clusters {
    pub(crate) fn create(&mut self, spec: ClusterSpec, ready_after: Duration) -> Value {
        let id = new_uuid();
        // The storage each plan comes with, larger with the node size.
        let base = 10_240 * (SIZES.iter().position(|s| *s == spec.size).unwrap_or(0) as u64 + 1);
        let cluster = Cluster {
            id: id.clone(),
            version: spec
                .version
                .unwrap_or_else(|| default_version(&spec.engine).to_string()),
            name: spec.name,
            engine: spec.engine,
            num_nodes: spec.num_nodes,
            size: spec.size,
            private_network_uuid: spec.private_network_uuid.unwrap_or_else(|| {
                format!("5ad0c0de-{}-4d0c-8a5e-{}", random_hex(4), random_hex(12))
            }),
            region: spec.region,
            tags: spec.tags,
            password: format!("AVNS_{}", random_hex(20)),
            storage_size_mib: spec.storage_size_mib.unwrap_or(base),
            created_at: Utc::now(),
            ready_at: Instant::now() + ready_after,
        };
        for tag in &cluster.tags {
            *self.created_with_tag.entry(tag.clone()).or_default() += 1;
        }
        // The create answers `creating`, whatever the delay.
        let shown = cluster.to_json(false);
        self.clusters.insert(id, cluster);
        shown
    }

    pub(crate) fn inventory(&self) -> Vec<Value> {
        self.clusters.values().map(|c| self.show(c)).collect()
    }

    pub(crate) fn hold(&mut self, held: bool) {
        self.held = held;
    }

    fn show(&self, cluster: &Cluster) -> Value {
        cluster.to_json(!self.held && Instant::now() >= cluster.ready_at)
    }

    pub(crate) fn creates_with_tag(&self, tag: &str) -> usize {
        self.created_with_tag.get(tag).copied().unwrap_or(0)
    }
}

impl Cluster {
    fn connection(&self, host: &str) -> Value {
        let port = port(&self.engine);
        let scheme = match self.engine.as_str() {
            "mysql" | "advanced_mysql" => "mysql",
            "mongodb" => "mongodb+srv",
            "valkey" => "rediss",
            "opensearch" | "kafka" => "https",
            _ => "postgresql",
        };
        json!({
            "uri": format!("{scheme}://doadmin:{}@{host}:{port}/defaultdb?sslmode=require", self.password),
            "database": "defaultdb",
            "host": host,
            "port": port,
            "user": "doadmin",
            "password": self.password,
            "ssl": true,
        })
    }

    fn to_json(&self, online: bool) -> Value {
        let host = format!("{}-do-user-1-0.k.db.ondigitalocean.com", self.name);
        let mut shown = json!({
            "id": self.id,
            "name": self.name,
            "engine": self.engine,
            "version": self.version,
            "num_nodes": self.num_nodes,
            "size": self.size,
            "region": self.region,
            "status": if online { "online" } else { "creating" },
            "created_at": self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "private_network_uuid": self.private_network_uuid,
            "tags": self.tags,
            "db_names": ["defaultdb"],
            "connection": self.connection(&host),
            "private_connection": self.connection(&format!("private-{host}")),
            "users": [{ "name": "doadmin", "role": "primary", "password": self.password }],
            "maintenance_window": { "day": "saturday", "hour": "08:45:12", "pending": false, "description": [] },
            "project_id": "5d0c5a9d-b0c4-4e11-8c0d-e5ad0c0de503",
            "storage_size_mib": self.storage_size_mib,
        });
        if self.num_nodes > 1 {
            shown["standby_connection"] = self.connection(&format!("replica-{host}"));
            shown["standby_private_connection"] =
                self.connection(&format!("private-replica-{host}"));
        }
        shown
    }
}

pub(crate) async fn list(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let query = QueryParams::parse(&uri)?;
    let tag = query.get("tag_name");
    let clusters = cloud.clusters();
    let shown: Vec<Value> = clusters
        .clusters
        .values()
        .filter(|c| tag.is_none_or(|t| c.tags.iter().any(|have| have == t)))
        .map(|c| clusters.show(c))
        .collect();
    Ok(Json(json!({ "databases": shown })))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_json(body)?;
    let spec = ClusterSpec::from_body(&body)?;
    let mut clusters = cloud.clusters();
    if clusters.clusters.values().any(|c| c.name == spec.name) {
        return Err(unprocessable(
            "a database cluster with this name already exists.",
        ));
    }
    let shown = clusters.create(spec, cloud.database_ready_after);
    Ok((StatusCode::CREATED, Json(json!({ "database": shown }))).into_response())
}

pub(crate) async fn get(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|_| not_found())?;
    let clusters = cloud.clusters();
    let cluster = clusters.clusters.get(&id).ok_or_else(not_found)?;
    Ok(Json(json!({ "database": clusters.show(cluster) })))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| not_found())?;
    match cloud.clusters().clusters.remove(&id) {
        Some(_) => Ok(no_content()),
        None => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<ClusterSpec, ApiError> {
        ClusterSpec::from_body(&body)
    }

    #[test]
    fn a_create_needs_what_the_spec_requires() {
        let ok = json!({"name": "db-1", "engine": "pg", "size": "db-s-1vcpu-1gb",
                        "region": "nyc1", "num_nodes": 1});
        assert!(spec(ok.clone()).is_ok());
        for (key, bad) in [
            ("name", json!("")),
            ("name", json!("Upper")),
            ("engine", json!("postgres")),
            ("engine", json!("redis")),
            ("size", json!("s-1vcpu-1gb")),
            ("region", json!("mars1")),
            ("num_nodes", json!(4)),
            ("tags", json!(["a b"])),
        ] {
            let mut body = ok.clone();
            body[key] = bad.clone();
            let err = spec(body)
                .err()
                .unwrap_or_else(|| panic!("{key} = {bad} accepted"));
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }

    #[test]
    fn clusters_turn_online_and_show_their_password() {
        let mut clusters = Clusters::default();
        let body = json!({"name": "db-1", "engine": "mysql", "size": "db-s-1vcpu-1gb",
                          "region": "nyc1", "num_nodes": 2, "tags": ["a"]});
        let created = clusters.create(spec(body).unwrap(), Duration::ZERO);
        assert_eq!(created["status"], "creating");
        let now = &clusters.inventory()[0];
        assert_eq!(now["status"], "online");
        let password = now["connection"]["password"].as_str().unwrap();
        assert!(
            now["connection"]["uri"]
                .as_str()
                .unwrap()
                .contains(password)
        );
        assert_eq!(now["users"][0]["password"], password);
        assert!(now["standby_connection"].is_object());
        assert_eq!(clusters.creates_with_tag("a"), 1);
        clusters.hold(true);
        assert_eq!(clusters.inventory()[0]["status"], "creating", "held");
        clusters.hold(false);
        assert_eq!(clusters.inventory()[0]["status"], "online", "released");
    }
}
