//! The organization's groups and databases, the JSON they are shown as, and the handlers.
//! Shapes follow the spec's `BaseGroup`, `Database` and `CreateDatabaseOutput` schemas.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Cloud, error};
use crate::front_door::{ApiError, uuid_text};

/// The locations `GET /v1/locations` offers and groups may be placed in: the spec's own
/// example list.
const LOCATIONS: &[(&str, &str)] = &[
    ("aws-ap-northeast-1", "AWS AP NorthEast (Tokyo)"),
    ("aws-ap-south-1", "AWS AP South (Mumbai)"),
    ("aws-eu-west-1", "AWS EU West (Ireland)"),
    ("aws-us-east-1", "AWS US East (Virginia)"),
    ("aws-us-east-2", "AWS US East (Ohio)"),
    ("aws-us-west-2", "AWS US West (Oregon)"),
];

/// The libSQL server version groups report.
const VERSION: &str = "v0.24.32";

pub(crate) struct World {
    organization: String,
    groups: BTreeMap<String, Group>,
    databases: BTreeMap<String, Database>,
    /// How many databases of each name were ever created, deleted ones included.
    created: HashMap<String, usize>,
    /// Every token handed out, in order.
    tokens: Vec<Minted>,
    next_id: u64,
}

/// A database token handed out, and whether a rotation of its database's tokens has since
/// made it stop working.
struct Minted {
    database: String,
    token: String,
    revoked: bool,
}

struct Group {
    uuid: String,
    location: String,
}

struct Database {
    id: String,
    group: String,
}

impl World {
    pub(crate) fn new(organization: &str) -> Self {
        Self {
            organization: organization.to_string(),
            groups: BTreeMap::new(),
            databases: BTreeMap::new(),
            created: HashMap::new(),
            tokens: Vec::new(),
            // Random per start, so ids from a sandbox that restarted never repeat.
            next_id: rand::random::<u32>().into(),
        }
    }

    /// A UUID-shaped id, as Turso hands out for groups and databases.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        uuid_text(&u128::from(self.next_id).to_be_bytes())
    }

    pub(crate) fn databases(&self) -> Vec<Value> {
        self.databases
            .keys()
            .map(|n| self.database_view(n))
            .collect()
    }

    pub(crate) fn groups(&self) -> Vec<Value> {
        self.groups.keys().map(|n| self.group_view(n)).collect()
    }

    pub(crate) fn creates_of(&self, name: &str) -> usize {
        self.created.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn minted_tokens(&self) -> Vec<String> {
        self.tokens.iter().map(|m| m.token.clone()).collect()
    }

    pub(crate) fn working_tokens(&self, database: &str) -> Vec<String> {
        // A deleted database's tokens open nothing.
        let exists = self.databases.contains_key(database);
        self.tokens
            .iter()
            .filter(|m| exists && m.database == database && !m.revoked)
            .map(|m| m.token.clone())
            .collect()
    }

    /// Makes the group unless it exists; says whether it made it.
    pub(crate) fn ensure_group(&mut self, name: &str, location: &str) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        let uuid = self.new_id();
        self.groups.insert(
            name.to_string(),
            Group {
                uuid,
                location: location.to_string(),
            },
        );
        true
    }

    /// Creates a database in an existing group; answers the create's `database` object.
    pub(crate) fn create_database(&mut self, name: &str, group: &str) -> Result<Value, ApiError> {
        check_name("database", name)?;
        if !self.groups.contains_key(group) {
            return Err(error(StatusCode::BAD_REQUEST, "group not found"));
        }
        if self.databases.contains_key(name) {
            return Err(error(
                StatusCode::CONFLICT,
                format!("database with name {name} already exists"),
            ));
        }
        let id = self.new_id();
        self.databases.insert(
            name.to_string(),
            Database {
                id: id.clone(),
                group: group.to_string(),
            },
        );
        *self.created.entry(name.to_string()).or_default() += 1;
        Ok(json!({"DbId": id, "Hostname": self.hostname(name), "Name": name}))
    }

    fn hostname(&self, database: &str) -> String {
        format!("{database}-{}.turso.io", self.organization)
    }

    fn database_view(&self, name: &str) -> Value {
        let Some(db) = self.databases.get(name) else {
            return Value::Null;
        };
        let location = self
            .groups
            .get(&db.group)
            .map(|g| g.location.clone())
            .unwrap_or_default();
        json!({
            "Name": name,
            "DbId": db.id,
            "Hostname": self.hostname(name),
            "block_reads": false,
            "block_writes": false,
            "regions": [location],
            "primaryRegion": location,
            "group": db.group,
            "delete_protection": false,
            "parent": null,
        })
    }

    fn group_view(&self, name: &str) -> Value {
        let Some(group) = self.groups.get(name) else {
            return Value::Null;
        };
        json!({
            "name": name,
            "version": VERSION,
            "uuid": group.uuid,
            "locations": [group.location],
            "primary": group.location,
            "delete_protection": false,
        })
    }

    fn mint(&mut self, database: &str) -> String {
        // Shaped like a JWT (three base64url parts); nothing checks its signature.
        let n = self.tokens.len() + 1;
        let random: u128 = rand::random();
        let token = format!("eyJhbGciOiJFZERTQSJ9.{database}-{n}.{random:032x}");
        self.tokens.push(Minted {
            database: database.to_string(),
            token: token.clone(),
            revoked: false,
        });
        token
    }

    fn rotate(&mut self, database: &str) {
        for m in self.tokens.iter_mut().filter(|m| m.database == database) {
            m.revoked = true;
        }
    }
}

/// Turso's rule for names: lowercase letters, digits and dashes, at most 64 characters.
fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid {what} name {name:?}: use only lowercase letters, numbers and dashes, \
                 at most 64 characters"
            ),
        ))
    }
}

/// The organization in the path must be the sandbox's.
fn check_org(cloud: &Cloud, slug: &str) -> Result<(), ApiError> {
    if slug == cloud.organization {
        Ok(())
    } else {
        Err(error(StatusCode::NOT_FOUND, "organization not found"))
    }
}

fn body_of(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalid request body"))
}

/// A required string field of a request body.
fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("{name} is required")))
}

type Answer = Result<Json<Value>, ApiError>;

pub(crate) async fn validate() -> Json<Value> {
    // Sandbox keys never expire.
    Json(json!({"exp": -1}))
}

pub(crate) async fn list_locations() -> Json<Value> {
    let locations: serde_json::Map<String, Value> = LOCATIONS
        .iter()
        .map(|(code, name)| ((*code).to_string(), json!(name)))
        .collect();
    Json(json!({"locations": locations}))
}

pub(crate) async fn get_organization(
    State(cloud): State<Arc<Cloud>>,
    Path(slug): Path<String>,
) -> Answer {
    check_org(&cloud, &slug)?;
    Ok(Json(json!({"organization": {
        "name": slug,
        "slug": slug,
        "type": "team",
        "overages": false,
        "blocked_reads": false,
        "blocked_writes": false,
        "plan_id": "developer",
    }})))
}

pub(crate) async fn list_groups(
    State(cloud): State<Arc<Cloud>>,
    Path(slug): Path<String>,
) -> Answer {
    check_org(&cloud, &slug)?;
    Ok(Json(json!({"groups": cloud.world().groups()})))
}

pub(crate) async fn create_group(
    State(cloud): State<Arc<Cloud>>,
    Path(slug): Path<String>,
    bytes: Bytes,
) -> Answer {
    check_org(&cloud, &slug)?;
    let body = body_of(&bytes)?;
    let name = field(&body, "name")?;
    let location = field(&body, "location")?;
    check_name("group", name)?;
    if !LOCATIONS.iter().any(|(code, _)| *code == location) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("invalid location {location:?}"),
        ));
    }
    let mut world = cloud.world();
    if !world.ensure_group(name, location) {
        return Err(error(StatusCode::CONFLICT, "group already exists"));
    }
    Ok(Json(json!({"group": world.group_view(name)})))
}

pub(crate) async fn get_group(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, group)): Path<(String, String)>,
) -> Answer {
    check_org(&cloud, &slug)?;
    let world = cloud.world();
    if !world.groups.contains_key(&group) {
        return Err(error(StatusCode::NOT_FOUND, "group not found"));
    }
    Ok(Json(json!({"group": world.group_view(&group)})))
}

/// Deleting a group deletes every database in it, as Turso does.
pub(crate) async fn delete_group(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, group)): Path<(String, String)>,
) -> Answer {
    check_org(&cloud, &slug)?;
    let mut world = cloud.world();
    let view = world.group_view(&group);
    if world.groups.remove(&group).is_none() {
        return Err(error(StatusCode::NOT_FOUND, "group not found"));
    }
    world.databases.retain(|_, db| db.group != group);
    Ok(Json(json!({"group": view})))
}

#[derive(Deserialize)]
pub(crate) struct ListFilter {
    group: Option<String>,
}

pub(crate) async fn list_databases(
    State(cloud): State<Arc<Cloud>>,
    Path(slug): Path<String>,
    Query(filter): Query<ListFilter>,
) -> Answer {
    check_org(&cloud, &slug)?;
    let world = cloud.world();
    let databases: Vec<Value> = world
        .databases
        .iter()
        .filter(|(_, db)| filter.group.as_ref().is_none_or(|g| *g == db.group))
        .map(|(name, _)| world.database_view(name))
        .collect();
    Ok(Json(json!({"databases": databases})))
}

pub(crate) async fn create_database(
    State(cloud): State<Arc<Cloud>>,
    Path(slug): Path<String>,
    bytes: Bytes,
) -> Answer {
    check_org(&cloud, &slug)?;
    let body = body_of(&bytes)?;
    let name = field(&body, "name")?;
    let group = field(&body, "group")?;
    if let Some(limit) = body.get("size_limit")
        && !limit.is_string()
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "size_limit must be a string",
        ));
    }
    let database = cloud.world().create_database(name, group)?;
    Ok(Json(json!({"database": database})))
}

fn not_found_database(name: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        format!("could not find database with name {name}: record not found"),
    )
}

pub(crate) async fn get_database(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, name)): Path<(String, String)>,
) -> Answer {
    check_org(&cloud, &slug)?;
    let world = cloud.world();
    if !world.databases.contains_key(&name) {
        return Err(not_found_database(&name));
    }
    Ok(Json(json!({"database": world.database_view(&name)})))
}

pub(crate) async fn delete_database(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, name)): Path<(String, String)>,
) -> Answer {
    check_org(&cloud, &slug)?;
    if cloud.world().databases.remove(&name).is_none() {
        return Err(not_found_database(&name));
    }
    Ok(Json(json!({"database": name})))
}

#[derive(Deserialize)]
pub(crate) struct TokenOptions {
    expiration: Option<String>,
    authorization: Option<String>,
}

pub(crate) async fn create_token(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, name)): Path<(String, String)>,
    Query(options): Query<TokenOptions>,
) -> Answer {
    check_org(&cloud, &slug)?;
    if let Some(expiration) = &options.expiration
        && !valid_expiration(expiration)
    {
        return Err(error(StatusCode::BAD_REQUEST, "Invalid expiration format"));
    }
    if let Some(level) = &options.authorization
        && level != "full-access"
        && level != "read-only"
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "authorization must be full-access or read-only",
        ));
    }
    let mut world = cloud.world();
    if !world.databases.contains_key(&name) {
        return Err(not_found_database(&name));
    }
    Ok(Json(json!({"jwt": world.mint(&name)})))
}

/// `never`, or a duration such as `2w1d30m`.
fn valid_expiration(text: &str) -> bool {
    if text == "never" {
        return true;
    }
    let mut digits = false;
    for c in text.chars() {
        match c {
            '0'..='9' => digits = true,
            'w' | 'd' | 'h' | 'm' | 's' if digits => digits = false,
            _ => return false,
        }
    }
    !text.is_empty() && !digits
}

pub(crate) async fn rotate_tokens(
    State(cloud): State<Arc<Cloud>>,
    Path((slug, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_org(&cloud, &slug)?;
    let mut world = cloud.world();
    if !world.databases.contains_key(&name) {
        return Err(not_found_database(&name));
    }
    world.rotate(&name);
    Ok(StatusCode::OK)
}
