//! The account's sites, deploys, DNS zones and records, the JSON they are shown as (the
//! spec's `site`, `deploy`, `file`, `dnsZone` and `dnsRecord`), and the handlers.
//!
//! A deploy's state is worked out when it is read, from the time it was created and what was
//! uploaded: `new` in the answer to an `async` create, `preparing` (for `prepare_after`), then
//! `prepared` with `required` listing the SHA-1s Netlify had not seen, `uploading` once some of
//! them came, `processing` once all did (for `process_after`, or while the test holds
//! deploys), then `ready`, or `error` when the test made deploys fail or the deploy was
//! cancelled.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Digest as _;

use super::{Cloud, error};
use crate::front_door::ApiError;

/// The account every sandbox key belongs to.
pub(crate) const ACCOUNT_SLUG: &str = "sandbox";
const ACCOUNT_ID: &str = "5f0c1a2b3c4d5e6f7a8b9c0d";
const USER_ID: &str = "5f0c1a2b3c4d5e6f7a8b9c01";

/// The record types a zone takes.
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CAA", "CNAME", "MX", "NS", "SRV", "TXT"];

/// A listing's page size when the request names none.
const DEFAULT_PER_PAGE: usize = 100;

pub(crate) struct World {
    sites: BTreeMap<String, Site>,
    deploys: BTreeMap<String, Deploy>,
    zones: BTreeMap<String, Zone>,
    records: BTreeMap<String, Record>,
    /// Every SHA-1 whose contents Netlify has been given, by any deploy.
    seen: HashSet<String>,
    /// Sites ever created by name, deleted ones included.
    site_creates: HashMap<String, usize>,
    /// Every upload received: (deploy id, path).
    uploads: Vec<(String, String)>,
    /// Deploys stay `processing` while set.
    hold: bool,
    /// `GET /dns_zones` answers each zone with `records: []`: the document leaves open
    /// whether a listing fills them.
    list_zones_without_records: bool,
    /// Deploys finishing while set end in `error` with this message.
    fail_with: Option<String>,
    /// The state a deploy waiting for files is shown in, in place of `prepared` and
    /// `uploading`: the document types `state` as any string.
    waiting_shown_as: Option<&'static str>,
    next_id: u64,
    pub(crate) prepare_after: Duration,
    pub(crate) process_after: Duration,
}

struct Site {
    id: String,
    name: String,
    created: String,
}

struct Deploy {
    id: String,
    site_id: String,
    /// `/path` -> SHA-1.
    files: BTreeMap<String, String>,
    /// The SHA-1s Netlify lacked when the deploy was created.
    required: BTreeSet<String>,
    uploaded: BTreeSet<String>,
    is_async: bool,
    created_at: Instant,
    created: String,
    /// When the last required file arrived (or the deploy was prepared with none missing).
    complete_at: Option<Instant>,
    /// Set once the deploy ends in `error`.
    error: Option<String>,
}

struct Zone {
    id: String,
    name: String,
    created: String,
}

struct Record {
    zone_id: String,
    body: Value,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl World {
    pub(crate) fn new(prepare_after: Duration, process_after: Duration) -> Self {
        Self {
            sites: BTreeMap::new(),
            deploys: BTreeMap::new(),
            zones: BTreeMap::new(),
            records: BTreeMap::new(),
            seen: HashSet::new(),
            site_creates: HashMap::new(),
            uploads: Vec::new(),
            hold: false,
            list_zones_without_records: false,
            fail_with: None,
            waiting_shown_as: None,
            next_id: rand::random::<u32>().into(),
            prepare_after,
            process_after,
        }
    }

    /// A 24-hex-digit id, as Netlify hands out.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:024x}", self.next_id)
    }

    pub(crate) fn list_zones_without_records(&mut self, without: bool) {
        self.list_zones_without_records = without;
    }

    pub(crate) fn hold(&mut self, held: bool) {
        self.hold = held;
        if !held {
            // Released deploys take their processing time from now.
            let now = Instant::now();
            for d in self.deploys.values_mut() {
                if d.complete_at.is_some() && d.error.is_none() {
                    d.complete_at = Some(now);
                }
            }
        }
    }

    pub(crate) fn fail_deploys(&mut self, message: Option<String>) {
        self.fail_with = message;
    }

    pub(crate) fn show_waiting_deploys_as(&mut self, state: Option<&'static str>) {
        self.waiting_shown_as = state;
    }

    pub(crate) fn site_creates(&self, name: &str) -> usize {
        self.site_creates.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn uploads(&self) -> Vec<(String, String)> {
        self.uploads.clone()
    }

    pub(crate) fn sites(&mut self) -> Vec<Value> {
        let ids: Vec<String> = self.sites.keys().cloned().collect();
        ids.iter().map(|id| self.site_view(id)).collect()
    }

    pub(crate) fn deploys(&mut self) -> Vec<Value> {
        let ids: Vec<String> = self.deploys.keys().cloned().collect();
        ids.iter().map(|id| self.deploy_view(id)).collect()
    }

    pub(crate) fn zones(&self) -> Vec<Value> {
        self.zones.keys().map(|id| self.zone_view(id)).collect()
    }

    /// Makes a site as someone would in Netlify's UI.
    pub(crate) fn create_site(&mut self, name: &str) -> Result<Value, ApiError> {
        check_site_name(name)?;
        if self.sites.values().any(|s| s.name == name) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "name: must be unique",
            ));
        }
        let id = self.new_id();
        self.sites.insert(
            id.clone(),
            Site {
                id: id.clone(),
                name: name.to_string(),
                created: now_text(),
            },
        );
        *self.site_creates.entry(name.to_string()).or_default() += 1;
        Ok(self.site_view(&id))
    }

    pub(crate) fn create_zone(&mut self, name: &str) -> Result<Value, ApiError> {
        check_domain(name)?;
        if self.zones.values().any(|z| z.name == name) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name} already has a DNS zone"),
            ));
        }
        let id = self.new_id();
        self.zones.insert(
            id.clone(),
            Zone {
                id: id.clone(),
                name: name.to_string(),
                created: now_text(),
            },
        );
        Ok(self.zone_view(&id))
    }

    /// The state of a deploy now, settling what the passing of time settles.
    fn state(&mut self, id: &str) -> &'static str {
        let (prepare_after, process_after, hold) =
            (self.prepare_after, self.process_after, self.hold);
        let fail_with = self.fail_with.clone();
        let Some(d) = self.deploys.get_mut(id) else {
            return "error";
        };
        if d.error.is_some() {
            return "error";
        }
        let now = Instant::now();
        let prepared_at = d.created_at
            + if d.is_async {
                prepare_after
            } else {
                Duration::ZERO
            };
        if now < prepared_at {
            return "preparing";
        }
        if !d.required.is_subset(&d.uploaded) {
            return if d.uploaded.is_empty() {
                "prepared"
            } else {
                "uploading"
            };
        }
        let complete_at = *d.complete_at.get_or_insert(prepared_at);
        if hold || now < complete_at + process_after {
            return "processing";
        }
        if let Some(message) = fail_with {
            d.error = Some(message);
            return "error";
        }
        "ready"
    }

    fn deploy_view(&mut self, id: &str) -> Value {
        let state = self.state(id);
        let Some(d) = self.deploys.get(id) else {
            return Value::Null;
        };
        let site_name = self
            .sites
            .get(&d.site_id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let required: Vec<&String> = if matches!(state, "prepared" | "uploading") {
            d.required.difference(&d.uploaded).collect()
        } else {
            Vec::new()
        };
        let shown = match (state, self.waiting_shown_as) {
            ("prepared" | "uploading", Some(name)) => name,
            _ => state,
        };
        let mut view = json!({
            "id": d.id,
            "site_id": d.site_id,
            "user_id": USER_ID,
            "state": shown,
            "name": site_name,
            "url": format!("http://{site_name}.netlify.app"),
            "ssl_url": format!("https://{site_name}.netlify.app"),
            "admin_url": format!("https://app.netlify.com/sites/{site_name}"),
            "deploy_url": format!("http://{}--{site_name}.netlify.app", d.id),
            "deploy_ssl_url": format!("https://{}--{site_name}.netlify.app", d.id),
            "required": required,
            "required_functions": [],
            "draft": false,
            "skipped": false,
            "locked": false,
            "context": "production",
            "created_at": d.created,
            "updated_at": d.created,
        });
        if let Some(message) = &d.error {
            view["error_message"] = json!(message);
        }
        if state == "ready" {
            view["published_at"] = json!(d.created);
        }
        view
    }

    fn site_view(&mut self, id: &str) -> Value {
        let Some(site) = self.sites.get(id) else {
            return Value::Null;
        };
        let (site_id, name, created) = (site.id.clone(), site.name.clone(), site.created.clone());
        // The site serves its newest ready deploy.
        let deploy_ids: Vec<String> = self
            .deploys
            .values()
            .filter(|d| d.site_id == site_id)
            .map(|d| d.id.clone())
            .collect();
        let published = deploy_ids
            .into_iter()
            .rev()
            .find(|d| self.state(d) == "ready")
            .map(|d| self.deploy_view(&d));
        let mut view = json!({
            "id": site_id,
            "state": "current",
            "plan": "nf_team_starter",
            "name": name,
            "url": format!("http://{name}.netlify.app"),
            "ssl_url": format!("https://{name}.netlify.app"),
            "admin_url": format!("https://app.netlify.com/sites/{name}"),
            "created_at": created,
            "updated_at": created,
            "user_id": USER_ID,
            "ssl": true,
            "force_ssl": true,
            "managed_dns": true,
            "account_id": ACCOUNT_ID,
            "account_name": "Sandbox",
            "account_slug": ACCOUNT_SLUG,
            "id_domain": format!("{site_id}.netlify.app"),
            // Credentials, as Netlify hands them out with every site.
            "deploy_hook": format!("https://api.netlify.com/hooks/{site_id}"),
            "default_hooks_data": {"access_token": format!("hooks-{site_id}")},
        });
        if let Some(deploy) = published {
            view["published_deploy"] = deploy;
        }
        view
    }

    fn zone_view(&self, id: &str) -> Value {
        let Some(zone) = self.zones.get(id) else {
            return Value::Null;
        };
        json!({
            "id": zone.id,
            "name": zone.name,
            "errors": [],
            "supported_record_types": RECORD_TYPES,
            "user_id": USER_ID,
            "created_at": zone.created,
            "updated_at": zone.created,
            "records": self.zone_records(id),
            "dns_servers": ["dns1.p01.nsone.net", "dns2.p01.nsone.net"],
            "account_id": ACCOUNT_ID,
            "account_slug": ACCOUNT_SLUG,
            "account_name": "Sandbox",
            "domain": zone.name,
            "ipv6_enabled": false,
            "dedicated": false,
        })
    }

    fn zone_records(&self, zone_id: &str) -> Vec<Value> {
        self.records
            .values()
            .filter(|r| r.zone_id == zone_id)
            .map(|r| r.body.clone())
            .collect()
    }

    pub(crate) fn records(&self) -> Vec<Value> {
        self.records.values().map(|r| r.body.clone()).collect()
    }
}

/// Netlify's rule for site names: lowercase letters, digits and dashes, at most 63.
fn check_site_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("name: {name:?} may hold only lowercase letters, digits and dashes"),
        ))
    }
}

fn check_domain(name: &str) -> Result<(), ApiError> {
    let ok = name.contains('.')
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("name: {name:?} is not a domain name"),
        ))
    }
}

fn body_of(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "the body is not a JSON object"))
}

fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "Not Found")
}

type Answer = Result<Json<Value>, ApiError>;

#[derive(Deserialize)]
pub(crate) struct Paging {
    page: Option<usize>,
    per_page: Option<usize>,
    name: Option<String>,
    filter: Option<String>,
}

/// One page of `items`, 1-based.
fn page_of(items: Vec<Value>, paging: &Paging) -> Vec<Value> {
    let per_page = paging.per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect()
}

pub(crate) async fn current_user() -> Json<Value> {
    Json(json!({
        "id": USER_ID,
        "uid": USER_ID,
        "full_name": "Sandbox User",
        "email": "sandbox@example.com",
        "site_count": 0,
        "login_providers": ["email"],
    }))
}

pub(crate) async fn list_sites(
    State(cloud): State<Arc<Cloud>>,
    Query(paging): Query<Paging>,
) -> Answer {
    if let Some(f) = &paging.filter
        && !matches!(f.as_str(), "all" | "owner" | "guest")
    {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "filter: unknown value",
        ));
    }
    let mut world = cloud.world();
    let sites: Vec<Value> = world
        .sites()
        .into_iter()
        .filter(|s| {
            paging
                .name
                .as_deref()
                .is_none_or(|n| s["name"].as_str().is_some_and(|name| name.contains(n)))
        })
        .collect();
    Ok(Json(Value::Array(page_of(sites, &paging))))
}

pub(crate) async fn create_site(
    State(cloud): State<Arc<Cloud>>,
    bytes: Bytes,
) -> impl IntoResponse {
    let body = match body_of(&bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut world = cloud.world();
    let name = match body.get("name") {
        None | Some(Value::Null) => format!("site-{}", world.new_id()),
        Some(Value::String(n)) => n.clone(),
        Some(_) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "name: must be a string")
                .into_response();
        }
    };
    match world.create_site(&name) {
        Ok(site) => (StatusCode::CREATED, Json(site)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_site(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let mut world = cloud.world();
    if !world.sites.contains_key(&id) {
        return Err(not_found());
    }
    Ok(Json(world.site_view(&id)))
}

/// Deleting a site deletes its deploys.
pub(crate) async fn delete_site(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut world = cloud.world();
    if world.sites.remove(&id).is_none() {
        return Err(not_found());
    }
    world.deploys.retain(|_, d| d.site_id != id);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_deploys(
    State(cloud): State<Arc<Cloud>>,
    Path(site_id): Path<String>,
    Query(paging): Query<Paging>,
) -> Answer {
    let mut world = cloud.world();
    if !world.sites.contains_key(&site_id) {
        return Err(not_found());
    }
    // Newest first, as Netlify lists them.
    let ids: Vec<String> = world
        .deploys
        .values()
        .rev()
        .filter(|d| d.site_id == site_id)
        .map(|d| d.id.clone())
        .collect();
    let deploys: Vec<Value> = ids.iter().map(|id| world.deploy_view(id)).collect();
    Ok(Json(Value::Array(page_of(deploys, &paging))))
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) async fn create_deploy(
    State(cloud): State<Arc<Cloud>>,
    Path(site_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let body = body_of(&bytes)?;
    let Some(Value::Object(listed)) = body.get("files") else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "files: a map of paths to SHA-1 digests is required",
        ));
    };
    let mut files = BTreeMap::new();
    for (path, sha) in listed {
        let Some(sha) = sha.as_str().filter(|s| is_sha1(s)) else {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("files: {path}: not a SHA-1 digest"),
            ));
        };
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("files: {path:?} is not an absolute path within the site"),
            ));
        }
        files.insert(path.clone(), sha.to_ascii_lowercase());
    }
    let is_async = body.get("async").and_then(Value::as_bool).unwrap_or(false);
    let mut world = cloud.world();
    if !world.sites.contains_key(&site_id) {
        return Err(not_found());
    }
    let required = files
        .values()
        .filter(|sha| !world.seen.contains(*sha))
        .cloned()
        .collect();
    let id = world.new_id();
    world.deploys.insert(
        id.clone(),
        Deploy {
            id: id.clone(),
            site_id,
            files,
            required,
            uploaded: BTreeSet::new(),
            is_async,
            created_at: Instant::now(),
            created: now_text(),
            complete_at: None,
            error: None,
        },
    );
    let mut view = world.deploy_view(&id);
    // An async deploy is answered before Netlify has picked it up.
    if view["state"] == "preparing" {
        view["state"] = json!("new");
    }
    Ok(Json(view))
}

pub(crate) async fn get_deploy(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let mut world = cloud.world();
    if !world.deploys.contains_key(&id) {
        return Err(not_found());
    }
    Ok(Json(world.deploy_view(&id)))
}

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    size: Option<u64>,
}

pub(crate) async fn upload_file(
    State(cloud): State<Arc<Cloud>>,
    Path((id, path)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    bytes: Bytes,
) -> Answer {
    let path = format!("/{path}");
    let mut world = cloud.world();
    if !world.deploys.contains_key(&id) {
        return Err(not_found());
    }
    let state = world.state(&id);
    if !matches!(state, "prepared" | "uploading") {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the deploy is {state}, not waiting for files"),
        ));
    }
    if query.size.is_some_and(|n| n != bytes.len() as u64) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "size: does not match the body",
        ));
    }
    let sha = sha1::Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let deploy = world.deploys.get_mut(&id).ok_or_else(not_found)?;
    match deploy.files.get(&path) {
        None => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("{path} is not in this deploy"),
            ));
        }
        Some(expected) if *expected != sha => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{path}: the contents' SHA-1 is {sha}, the deploy says {expected}"),
            ));
        }
        Some(_) => {}
    }
    deploy.uploaded.insert(sha.clone());
    if deploy.required.is_subset(&deploy.uploaded) {
        deploy.complete_at = Some(Instant::now());
    }
    world.seen.insert(sha.clone());
    world.uploads.push((id.clone(), path.clone()));
    Ok(Json(json!({
        "id": path,
        "path": path,
        "sha": sha,
        "mime_type": "application/octet-stream",
        "size": bytes.len(),
    })))
}

pub(crate) async fn cancel_deploy(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
) -> impl IntoResponse {
    let mut world = cloud.world();
    if !world.deploys.contains_key(&id) {
        return not_found().into_response();
    }
    if world.state(&id) == "ready" {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the deploy is already live",
        )
        .into_response();
    }
    if let Some(d) = world.deploys.get_mut(&id)
        && d.error.is_none()
    {
        d.error = Some("Canceled".into());
    }
    (StatusCode::CREATED, Json(world.deploy_view(&id))).into_response()
}

pub(crate) async fn list_zones(State(cloud): State<Arc<Cloud>>) -> Json<Value> {
    let world = cloud.world();
    let mut zones = world.zones();
    if world.list_zones_without_records {
        for zone in &mut zones {
            zone["records"] = json!([]);
        }
    }
    Json(Value::Array(zones))
}

pub(crate) async fn create_zone(
    State(cloud): State<Arc<Cloud>>,
    bytes: Bytes,
) -> impl IntoResponse {
    let body = match body_of(&bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(name) = body["name"].as_str() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "name: is required").into_response();
    };
    match cloud.world().create_zone(&name.to_ascii_lowercase()) {
        Ok(zone) => (StatusCode::CREATED, Json(zone)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_zone(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let world = cloud.world();
    if !world.zones.contains_key(&id) {
        return Err(not_found());
    }
    Ok(Json(world.zone_view(&id)))
}

pub(crate) async fn delete_zone(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut world = cloud.world();
    if world.zones.remove(&id).is_none() {
        return Err(not_found());
    }
    world.records.retain(|_, r| r.zone_id != id);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_records(
    State(cloud): State<Arc<Cloud>>,
    Path(zone_id): Path<String>,
) -> Answer {
    let world = cloud.world();
    if !world.zones.contains_key(&zone_id) {
        return Err(not_found());
    }
    Ok(Json(Value::Array(world.zone_records(&zone_id))))
}

pub(crate) async fn create_record(
    State(cloud): State<Arc<Cloud>>,
    Path(zone_id): Path<String>,
    bytes: Bytes,
) -> impl IntoResponse {
    let body = match body_of(&bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut world = cloud.world();
    let Some(zone) = world.zones.get(&zone_id) else {
        return not_found().into_response();
    };
    let zone_name = zone.name.clone();
    let kind = body["type"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let hostname = body["hostname"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let value = body["value"].as_str().unwrap_or_default();
    let refuse = |m: String| error(StatusCode::UNPROCESSABLE_ENTITY, m).into_response();
    if !RECORD_TYPES.contains(&kind.as_str()) {
        return refuse(format!("type: {kind:?} is not a supported record type"));
    }
    if hostname != zone_name && !hostname.ends_with(&format!(".{zone_name}")) {
        return refuse(format!("hostname: {hostname:?} is not in {zone_name}"));
    }
    if value.is_empty() {
        return refuse("value: is required".into());
    }
    if matches!(kind.as_str(), "MX" | "SRV") && body["priority"].as_i64().is_none() {
        return refuse(format!("priority: a {kind} record needs one"));
    }
    let id = world.new_id();
    let mut record = json!({
        "id": id,
        "hostname": hostname,
        "type": kind,
        "value": value,
        "ttl": body["ttl"].as_i64().unwrap_or(3600),
        "dns_zone_id": zone_id,
        "managed": false,
    });
    for field in ["priority", "flag"] {
        if let Some(n) = body[field].as_i64() {
            record[field] = json!(n);
        }
    }
    if let Some(tag) = body["tag"].as_str() {
        record["tag"] = json!(tag);
    }
    world.records.insert(
        id,
        Record {
            zone_id,
            body: record.clone(),
        },
    );
    (StatusCode::CREATED, Json(record)).into_response()
}

pub(crate) async fn delete_record(
    State(cloud): State<Arc<Cloud>>,
    Path((zone_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut world = cloud.world();
    match world.records.get(&id) {
        Some(r) if r.zone_id == zone_id => {
            world.records.remove(&id);
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(not_found()),
    }
}
