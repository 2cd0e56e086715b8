//! The account's zones and their DNS records, the JSON they are shown as (the document's
//! `zones_zone` and `dns-records_dns-record`, inside the `{success, errors, messages,
//! result}` envelope), and the handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ACCOUNT_ID, Cloud, codes, error};

/// The user every sandbox token belongs to.
const USER_ID: &str = "7c5dae5552338874e5053f2534d2767a";
use crate::front_door::ApiError;

/// The record types the sandbox's zones take: those whose value is the `content` string.
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "TXT"];

/// The name servers every sandbox zone is given.
const NAME_SERVERS: [&str; 2] = ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"];

pub(crate) struct World {
    zones: BTreeMap<String, Zone>,
    records: BTreeMap<String, Record>,
    next_id: u128,
}

struct Zone {
    id: String,
    name: String,
    status: String,
    created: String,
}

struct Record {
    zone_id: String,
    body: Value,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The success envelope around `result`.
pub(crate) fn envelope(result: Value) -> Json<Value> {
    Json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

/// The success envelope of one page of a listing.
pub(crate) fn listing(items: Vec<Value>, page: usize, per_page: usize) -> Json<Value> {
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Json(json!({
        "success": true, "errors": [], "messages": [],
        "result": shown,
        "result_info": {"page": page, "per_page": per_page, "count": shown.len(), "total_count": total},
    }))
}

impl World {
    pub(crate) fn new() -> Self {
        Self {
            zones: BTreeMap::new(),
            records: BTreeMap::new(),
            next_id: rand::random::<u64>().into(),
        }
    }

    /// A 32-hex-digit id, as Cloudflare hands out.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id)
    }

    pub(crate) fn zones(&self) -> Vec<Value> {
        self.zones.keys().map(|id| self.zone_view(id)).collect()
    }

    pub(crate) fn records(&self) -> Vec<Value> {
        self.records.values().map(|r| r.body.clone()).collect()
    }

    pub(crate) fn set_zone_status(&mut self, id: &str, status: &str) -> bool {
        match self.zones.get_mut(id) {
            Some(zone) => {
                zone.status = status.to_string();
                true
            }
            None => false,
        }
    }

    pub(crate) fn create_zone(&mut self, name: &str) -> Result<Value, ApiError> {
        check_domain(name)?;
        if self.zones.values().any(|z| z.name == name) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                codes::ZONE_EXISTS,
                format!("{name} already exists"),
            ));
        }
        let id = self.new_id();
        self.zones.insert(
            id.clone(),
            Zone {
                id: id.clone(),
                name: name.to_string(),
                // A new zone waits for the domain's name servers to point at Cloudflare.
                status: "pending".into(),
                created: now_text(),
            },
        );
        Ok(self.zone_view(&id))
    }

    fn zone_view(&self, id: &str) -> Value {
        let Some(zone) = self.zones.get(id) else {
            return Value::Null;
        };
        json!({
            "id": zone.id,
            "name": zone.name,
            "status": zone.status,
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": NAME_SERVERS,
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": zone.created,
            "modified_on": zone.created,
            "activated_on": null,
            "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3,
                     "phishing_detected": false},
            "owner": {"id": USER_ID, "type": "user", "name": "Sandbox User"},
            "account": {"id": ACCOUNT_ID, "name": "Sandbox Account"},
            "permissions": ["#zone:read", "#zone:edit", "#dns_records:read", "#dns_records:edit"],
        })
    }

    fn zone_records(&self, zone_id: &str) -> Vec<Value> {
        self.records
            .values()
            .filter(|r| r.zone_id == zone_id)
            .map(|r| r.body.clone())
            .collect()
    }
}

/// The document's `zones_name`: dot-separated labels, the last of 2 to 20 characters.
fn check_domain(name: &str) -> Result<(), ApiError> {
    let labels: Vec<&str> = name.split('.').collect();
    let ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && !labels[..labels.len() - 1]
            .iter()
            .any(|l| l.starts_with('-'))
        && (2..=20).contains(&labels[labels.len() - 1].len());
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            format!("name: {name:?} is not a valid domain name"),
        ))
    }
}

fn body_of(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "the body is not a JSON object",
            )
        })
}

pub(crate) fn not_found(what: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("Could not route to {what}, perhaps your object identifier is invalid?"),
    )
}

type Answer = Result<Json<Value>, ApiError>;

#[derive(Deserialize)]
pub(crate) struct ZoneQuery {
    page: Option<usize>,
    per_page: Option<usize>,
    name: Option<String>,
    #[serde(rename = "account.id")]
    account_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RecordQuery {
    page: Option<usize>,
    per_page: Option<usize>,
    /// Only records of this type (exact).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Only records of this full name (exact, in any case).
    name: Option<String>,
}

/// `page` and `per_page` as the document bounds them: `page` from 1, `per_page` in `range`.
fn paging(
    page: Option<usize>,
    per_page: Option<usize>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(usize, usize), ApiError> {
    let per_page = per_page.unwrap_or(default);
    if !range.contains(&per_page) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            format!(
                "per_page: must be between {} and {}",
                range.start(),
                range.end()
            ),
        ));
    }
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            "page: must be at least 1",
        ));
    }
    Ok((page, per_page))
}

pub(crate) async fn verify_token() -> Json<Value> {
    envelope(json!({
        "id": "ed17574386854bf78a67040be0a770b0",
        "status": "active",
    }))
}

pub(crate) async fn list_zones(
    State(cloud): State<Arc<Cloud>>,
    Query(q): Query<ZoneQuery>,
) -> Answer {
    let (page, per_page) = paging(q.page, q.per_page, 20, 5..=50)?;
    let world = cloud.world();
    let zones = world
        .zones()
        .into_iter()
        .filter(|z| q.name.as_deref().is_none_or(|n| z["name"] == n))
        .filter(|z| {
            q.account_id
                .as_deref()
                .is_none_or(|a| z["account"]["id"] == a)
        })
        .collect();
    Ok(listing(zones, page, per_page))
}

pub(crate) async fn create_zone(State(cloud): State<Arc<Cloud>>, bytes: Bytes) -> Answer {
    let body = body_of(&bytes)?;
    let Some(name) = body["name"].as_str() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            "name: is required",
        ));
    };
    match body["account"]["id"].as_str() {
        Some(ACCOUNT_ID) => {}
        Some(other) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                codes::UNAUTHORIZED_ACCOUNT,
                format!("account.id: the token cannot reach account {other}"),
            ));
        }
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "account.id: is required",
            ));
        }
    }
    let zone = cloud.world().create_zone(&name.to_ascii_lowercase())?;
    Ok(envelope(zone))
}

pub(crate) async fn get_zone(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let world = cloud.world();
    if !world.zones.contains_key(&id) {
        return Err(not_found(&format!("/zones/{id}")));
    }
    Ok(envelope(world.zone_view(&id)))
}

pub(crate) async fn delete_zone(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let mut world = cloud.world();
    if world.zones.remove(&id).is_none() {
        return Err(not_found(&format!("/zones/{id}")));
    }
    world.records.retain(|_, r| r.zone_id != id);
    Ok(envelope(json!({ "id": id })))
}

pub(crate) async fn list_records(
    State(cloud): State<Arc<Cloud>>,
    Path(zone_id): Path<String>,
    Query(q): Query<RecordQuery>,
) -> Answer {
    let (page, per_page) = paging(q.page, q.per_page, 100, 1..=5_000_000)?;
    let world = cloud.world();
    if !world.zones.contains_key(&zone_id) {
        return Err(not_found(&format!("/zones/{zone_id}/dns_records")));
    }
    let records = world
        .zone_records(&zone_id)
        .into_iter()
        .filter(|r| q.kind.as_deref().is_none_or(|k| r["type"] == k))
        .filter(|r| {
            q.name.as_deref().is_none_or(|n| {
                r["name"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case(n))
            })
        })
        .collect();
    Ok(listing(records, page, per_page))
}

pub(crate) async fn create_record(
    State(cloud): State<Arc<Cloud>>,
    Path(zone_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let body = body_of(&bytes)?;
    let mut world = cloud.world();
    let Some(zone) = world.zones.get(&zone_id) else {
        return Err(not_found(&format!("/zones/{zone_id}/dns_records")));
    };
    let zone_name = zone.name.clone();
    let refuse = |m: String| error(StatusCode::BAD_REQUEST, codes::DNS_INVALID, m);
    let kind = body["type"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !RECORD_TYPES.contains(&kind.as_str()) {
        return Err(refuse(format!(
            "type: {kind:?} is not a supported record type"
        )));
    }
    let mut name = body["name"].as_str().unwrap_or("@").to_ascii_lowercase();
    if name == "@" {
        name = zone_name.clone();
    } else if name != zone_name && !name.ends_with(&format!(".{zone_name}")) {
        // Cloudflare takes names relative to the zone and answers with the full name.
        name = format!("{name}.{zone_name}");
    }
    let content = body["content"].as_str().unwrap_or_default();
    if content.is_empty() {
        return Err(refuse("content: is required".into()));
    }
    let ttl = body["ttl"].as_u64().unwrap_or(1);
    if ttl != 1 && !(60..=86400).contains(&ttl) {
        return Err(refuse(format!("ttl: {ttl} is not 1 or 60 to 86400")));
    }
    let priority = body["priority"].as_u64();
    if kind == "MX" && priority.is_none() {
        return Err(refuse("priority: a MX record needs one".into()));
    }
    let proxiable = matches!(kind.as_str(), "A" | "AAAA" | "CNAME");
    let proxied = body["proxied"].as_bool().unwrap_or(false);
    if proxied && !proxiable {
        return Err(refuse(format!(
            "proxied: a {kind} record cannot be proxied"
        )));
    }
    let id = world.new_id();
    let now = now_text();
    let mut record = json!({
        "id": id,
        "zone_id": zone_id,
        "zone_name": zone_name,
        "name": name,
        "type": kind,
        "content": content,
        "proxiable": proxiable,
        "proxied": proxied,
        "ttl": ttl,
        "locked": false,
        "meta": {"auto_added": false, "source": "primary"},
        "tags": [],
        "created_on": now,
        "modified_on": now,
    });
    if let Some(p) = priority {
        record["priority"] = json!(p);
    }
    world.records.insert(
        id,
        Record {
            zone_id,
            body: record.clone(),
        },
    );
    Ok(envelope(record))
}

pub(crate) async fn delete_record(
    State(cloud): State<Arc<Cloud>>,
    Path((zone_id, id)): Path<(String, String)>,
) -> Answer {
    let mut world = cloud.world();
    match world.records.get(&id) {
        Some(r) if r.zone_id == zone_id => {
            world.records.remove(&id);
            Ok(envelope(json!({ "id": id })))
        }
        _ => Err(not_found(&format!("/zones/{zone_id}/dns_records/{id}"))),
    }
}
