//! DNS domains and their records: the inventory, the JSON they are shown as (the spec's
//! `domain` and `dns-record` schemas), and the `/domains` handlers.
//!
//! A domain is made with `domain` and an optional `ip`: with one, Vultr fills the zone with
//! default records pointing at it (the apex and `www`); either way the zone gets Vultr's name
//! servers. A domain that exists already is refused with a 400. Deleting a domain deletes its
//! records.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::instances::body_of;
use super::paging::{self, PageQuery};
use super::{Cloud, error};
use crate::front_door::{ApiError, uuid_text};

/// The record types Vultr's DNS takes.
const RECORD_TYPES: &[&str] = &[
    "A", "AAAA", "CNAME", "NS", "MX", "SRV", "TXT", "CAA", "SSHFP",
];

/// The TTL of a record made without one.
const DEFAULT_TTL: u64 = 300;

pub(crate) struct Domains {
    zones: BTreeMap<String, Zone>,
    /// How many domains of each name were ever created, deleted ones included.
    created: HashMap<String, usize>,
    /// How many TXT records were ever created with each text (quotes removed), deleted ones
    /// included: a record repeated shows here.
    txt_created: HashMap<String, usize>,
    next_id: u64,
}

struct Zone {
    date_created: String,
    records: BTreeMap<String, Value>,
}

impl Domains {
    pub(crate) fn new() -> Self {
        Self {
            zones: BTreeMap::new(),
            created: HashMap::new(),
            txt_created: HashMap::new(),
            // Random per start, so record ids from a sandbox that restarted never repeat.
            next_id: u64::from(rand::random::<u32>()) << 24,
        }
    }

    pub(crate) fn domains(&self) -> Vec<Value> {
        self.zones.keys().map(|d| self.view(d)).collect()
    }

    pub(crate) fn records(&self, domain: &str) -> Vec<Value> {
        self.zones
            .get(domain)
            .map(|z| z.records.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn creates_of(&self, domain: &str) -> usize {
        self.created.get(domain).copied().unwrap_or(0)
    }

    pub(crate) fn txt_creates(&self, text: &str) -> usize {
        self.txt_created.get(text).copied().unwrap_or(0)
    }

    fn view(&self, domain: &str) -> Value {
        match self.zones.get(domain) {
            Some(zone) => json!({
                "domain": domain,
                "date_created": zone.date_created,
                "dns_sec": "disabled",
            }),
            None => Value::Null,
        }
    }

    /// Makes a domain with Vultr's default records; answers its view.
    pub(crate) fn create(&mut self, domain: &str, ip: Option<Ipv4Addr>) -> Result<Value, ApiError> {
        if !valid_domain(domain) {
            return Err(bad(format!("Invalid domain: {domain}.")));
        }
        if self.zones.contains_key(domain) {
            return Err(bad(format!(
                "Unable to create domain: {domain} already exists."
            )));
        }
        self.zones.insert(
            domain.to_string(),
            Zone {
                date_created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
                records: BTreeMap::new(),
            },
        );
        *self.created.entry(domain.to_string()).or_default() += 1;
        let mut defaults = vec![
            ("NS", "", "ns1.vultr.com".to_string()),
            ("NS", "", "ns2.vultr.com".to_string()),
        ];
        if let Some(ip) = ip {
            defaults.push(("A", "", ip.to_string()));
            defaults.push(("CNAME", "www", domain.to_string()));
        }
        for (kind, name, data) in defaults {
            self.insert_record(domain, kind, name, &data, DEFAULT_TTL, 0);
        }
        Ok(self.view(domain))
    }

    fn insert_record(
        &mut self,
        domain: &str,
        kind: &str,
        name: &str,
        data: &str,
        ttl: u64,
        priority: u64,
    ) -> Value {
        self.next_id += 1;
        let id = uuid_text(&u128::from(self.next_id).to_be_bytes());
        let record = json!({
            "id": id, "type": kind, "name": name, "data": data,
            "priority": priority, "ttl": ttl,
        });
        if let Some(zone) = self.zones.get_mut(domain) {
            zone.records.insert(id, record.clone());
            if kind == "TXT" {
                *self
                    .txt_created
                    .entry(data.trim_matches('"').to_string())
                    .or_default() += 1;
            }
        }
        record
    }
}

/// Letters, digits, inner dashes, at least two labels.
fn valid_domain(domain: &str) -> bool {
    domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn bad(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "Invalid domain.")
}

type Answer = Result<Json<Value>, ApiError>;

pub(crate) async fn list(State(cloud): State<Arc<Cloud>>, Query(q): Query<PageQuery>) -> Answer {
    let domains = cloud.domains();
    let items = domains
        .zones
        .keys()
        .map(|d| (d.clone(), domains.view(d)))
        .collect();
    let (page, meta) = paging::page(items, &q)?;
    Ok(Json(json!({"domains": page, "meta": meta})))
}

pub(crate) async fn create(State(cloud): State<Arc<Cloud>>, bytes: Bytes) -> Answer {
    let body = body_of(&bytes)?;
    let domain = body["domain"]
        .as_str()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("Missing required field: domain."))?;
    let ip = match &body["ip"] {
        Value::Null => None,
        Value::String(ip) if ip.is_empty() => None,
        Value::String(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| bad(format!("Invalid ip: {ip}.")))?,
        ),
        _ => return Err(bad("Invalid ip: must be a string.")),
    };
    let view = cloud.domains().create(domain, ip)?;
    Ok(Json(json!({"domain": view})))
}

pub(crate) async fn get(State(cloud): State<Arc<Cloud>>, Path(domain): Path<String>) -> Answer {
    let domains = cloud.domains();
    if !domains.zones.contains_key(&domain) {
        return Err(not_found());
    }
    Ok(Json(json!({"domain": domains.view(&domain)})))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    cloud
        .domains()
        .zones
        .remove(&domain)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(not_found)
}

pub(crate) async fn list_records(
    State(cloud): State<Arc<Cloud>>,
    Path(domain): Path<String>,
    Query(q): Query<PageQuery>,
) -> Answer {
    let domains = cloud.domains();
    let zone = domains.zones.get(&domain).ok_or_else(not_found)?;
    let items = zone
        .records
        .iter()
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect();
    let (page, meta) = paging::page(items, &q)?;
    Ok(Json(json!({"records": page, "meta": meta})))
}

pub(crate) async fn create_record(
    State(cloud): State<Arc<Cloud>>,
    Path(domain): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_of(&bytes)?;
    let text = |field: &str| {
        body[field]
            .as_str()
            .ok_or_else(|| bad(format!("Missing required field: {field}.")))
    };
    let kind = text("type")?;
    let name = text("name")?;
    let data = text("data")?;
    if !RECORD_TYPES.contains(&kind) {
        return Err(bad(format!("Invalid record type: {kind}.")));
    }
    let valid_data = match kind {
        "A" => data.parse::<Ipv4Addr>().is_ok(),
        "AAAA" => data.parse::<Ipv6Addr>().is_ok(),
        _ => !data.is_empty(),
    };
    if !valid_data {
        return Err(bad(format!("Invalid data for a {kind} record: {data}.")));
    }
    let number = |field: &str, default: u64| match &body[field] {
        Value::Null => Ok(default),
        value => value
            .as_u64()
            .ok_or_else(|| bad(format!("Invalid {field}: must be an integer."))),
    };
    let ttl = number("ttl", DEFAULT_TTL)?;
    let priority = number("priority", 0)?;
    if matches!(kind, "MX" | "SRV") && body["priority"].is_null() {
        return Err(bad(format!("A {kind} record needs a priority.")));
    }
    let mut domains = cloud.domains();
    if !domains.zones.contains_key(&domain) {
        return Err(not_found());
    }
    let record = domains.insert_record(&domain, kind, name, data, ttl, priority);
    Ok((StatusCode::CREATED, Json(json!({"record": record}))))
}
