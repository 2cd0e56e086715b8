//! Domains and their records: `/v2/domains` and `/v2/domains/{name}/records`, as the
//! `domain` and `domain_record` schemas describe them.
//!
//! A new domain gets DigitalOcean's three `NS` records and, when the create names an
//! `ip_address`, an `A` record for the apex; its `SOA` record exists only in the zone
//! file, as the spec says. `zone_file` is rendered from the records on every read, so a
//! client can find a record's data in it as it would at DigitalOcean.
//!
//! Record names are shown relative to the domain (`www`, `@` for the apex); the list's
//! `name` filter takes the fully qualified name (`www.example.com`), as documented.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::droplet_create::{bad_request, unprocessable};
use super::paging::{Listing, PageRequest, QueryParams};
use super::{Cloud, no_content, not_found, read_json};
use crate::front_door::ApiError;

/// Real record ids are in the tens of millions.
const FIRST_RECORD_ID: u64 = 28_448_429;
/// DigitalOcean's default TTL for a domain and its records.
const DEFAULT_TTL: u64 = 1800;
/// The smallest TTL DigitalOcean accepts.
const MIN_TTL: u64 = 30;
const NAME_SERVERS: [&str; 3] = [
    "ns1.digitalocean.com",
    "ns2.digitalocean.com",
    "ns3.digitalocean.com",
];
/// The record types the records endpoint creates (`SOA` exists only in the zone file).
const RECORD_TYPES: [&str; 8] = ["A", "AAAA", "CAA", "CNAME", "MX", "NS", "SRV", "TXT"];
const CAA_TAGS: [&str; 3] = ["issue", "issuewild", "iodef"];

#[derive(Default)]
pub(crate) struct Dns {
    zones: BTreeMap<String, Zone>,
    next_record_id: u64,
    /// Every domain ever created, in order: its name and the data of every record it
    /// ever held. What a test reads to catch a domain made twice (deleted in between).
    history: Vec<(String, Vec<String>)>,
    /// The zone's place in `history`, by domain name, for the current domains.
    current: HashMap<String, usize>,
}

struct Zone {
    name: String,
    records: BTreeMap<u64, Record>,
    /// Bumped on every change, like the SOA serial DigitalOcean shows.
    serial: u64,
}

#[derive(Clone)]
struct Record {
    id: u64,
    kind: String,
    name: String,
    data: String,
    priority: Option<u64>,
    port: Option<u64>,
    ttl: u64,
    weight: Option<u64>,
    flags: Option<u64>,
    tag: Option<String>,
}

impl Dns {
    pub(crate) fn new() -> Self {
        Self {
            next_record_id: FIRST_RECORD_ID,
            ..Self::default()
        }
    }

    /// Creates a domain; the name must be checked already.
    pub(crate) fn create(&mut self, name: &str, ip_address: Option<Ipv4Addr>) -> Value {
        let mut zone = Zone {
            name: name.to_string(),
            records: BTreeMap::new(),
            serial: 1,
        };
        self.current.insert(name.to_string(), self.history.len());
        self.history.push((name.to_string(), Vec::new()));
        let mut initial: Vec<Record> = NAME_SERVERS
            .iter()
            .map(|ns| Record::plain("NS", "@", ns))
            .collect();
        if let Some(ip) = ip_address {
            initial.push(Record::plain("A", "@", &ip.to_string()));
        }
        for mut record in initial {
            record.id = self.take_record_id();
            self.remember(name, &record.data);
            zone.records.insert(record.id, record);
        }
        // DigitalOcean's create answer shows no zone file yet.
        let shown = json!({ "name": name, "ttl": DEFAULT_TTL, "zone_file": null });
        self.zones.insert(name.to_string(), zone);
        shown
    }

    fn take_record_id(&mut self) -> u64 {
        let id = self.next_record_id;
        self.next_record_id += 1;
        id
    }

    fn remember(&mut self, domain: &str, data: &str) {
        if let Some(entry) = self
            .current
            .get(domain)
            .and_then(|at| self.history.get_mut(*at))
        {
            entry.1.push(data.to_string());
        }
    }

    pub(crate) fn view(&self, name: &str) -> Option<Value> {
        self.zones.get(name).map(Zone::to_json)
    }

    pub(crate) fn inventory(&self) -> Vec<Value> {
        self.zones.values().map(Zone::to_json).collect()
    }

    pub(crate) fn records(&self, name: &str) -> Vec<Value> {
        self.zones
            .get(name)
            .map(|z| z.records.values().map(Record::to_json).collect())
            .unwrap_or_default()
    }

    /// How many domains were ever created that came to hold a record with `data`.
    pub(crate) fn creates_holding(&self, data: &str) -> usize {
        self.history
            .iter()
            .filter(|(_, held)| held.iter().any(|d| d == data))
            .count()
    }

    fn remove(&mut self, name: &str) -> bool {
        self.current.remove(name);
        self.zones.remove(name).is_some()
    }
}

impl Zone {
    fn to_json(&self) -> Value {
        json!({ "name": self.name, "ttl": DEFAULT_TTL, "zone_file": self.zone_file() })
    }

    /// The zone as DigitalOcean renders it: `$ORIGIN`, `$TTL`, the SOA, then every record.
    fn zone_file(&self) -> String {
        let origin = format!("{}.", self.name);
        let mut out = format!(
            "$ORIGIN {origin}\n$TTL {DEFAULT_TTL}\n{origin} IN SOA ns1.digitalocean.com. hostmaster.{origin} {} 10800 3600 604800 {DEFAULT_TTL}\n",
            self.serial
        );
        for r in self.records.values() {
            let owner = if r.name == "@" {
                origin.clone()
            } else {
                format!("{}.{origin}", r.name)
            };
            let data = match r.kind.as_str() {
                "TXT" => format!("\"{}\"", r.data.replace('"', "\\\"")),
                "MX" => format!("{} {}", r.priority.unwrap_or(0), fqdn(&r.data)),
                "SRV" => format!(
                    "{} {} {} {}",
                    r.priority.unwrap_or(0),
                    r.weight.unwrap_or(0),
                    r.port.unwrap_or(0),
                    fqdn(&r.data)
                ),
                "CAA" => format!(
                    "{} {} \"{}\"",
                    r.flags.unwrap_or(0),
                    r.tag.as_deref().unwrap_or("issue"),
                    r.data
                ),
                "NS" | "CNAME" => fqdn(&r.data),
                _ => r.data.clone(),
            };
            out.push_str(&format!("{owner} {} IN {} {data}\n", r.ttl, r.kind));
        }
        out
    }

    /// The record's name as the list filter takes it: fully qualified, no final dot.
    fn qualified(&self, record: &Record) -> String {
        if record.name == "@" {
            self.name.clone()
        } else {
            format!("{}.{}", record.name, self.name)
        }
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') || name == "@" {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Record {
    fn plain(kind: &str, name: &str, data: &str) -> Self {
        Self {
            id: 0,
            kind: kind.into(),
            name: name.into(),
            data: data.into(),
            priority: None,
            port: None,
            ttl: DEFAULT_TTL,
            weight: None,
            flags: None,
            tag: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "name": self.name,
            "data": self.data,
            "priority": self.priority,
            "port": self.port,
            "ttl": self.ttl,
            "weight": self.weight,
            "flags": self.flags,
            "tag": self.tag,
        })
    }

    /// Validates a `domain_record_*` create body. The fields each type needs are those
    /// DigitalOcean's attribute table lists.
    fn from_body(body: &Value, domain: &str) -> Result<Self, ApiError> {
        let body = body
            .as_object()
            .ok_or_else(|| bad_request("The request body must be a JSON object."))?;
        let kind = text(body, "type")?
            .ok_or_else(|| unprocessable("Type is required."))?
            .to_ascii_uppercase();
        if !RECORD_TYPES.contains(&kind.as_str()) {
            return Err(unprocessable(format!(
                "Type must be one of {}.",
                RECORD_TYPES.join(", ")
            )));
        }
        let name = match text(body, "name")? {
            Some(n) if !n.is_empty() => relative_name(n, domain)?,
            _ if kind == "MX" => "@".to_string(),
            _ => return Err(unprocessable("Name is required.")),
        };
        let data = text(body, "data")?
            .filter(|d| !d.is_empty())
            .ok_or_else(|| unprocessable("Data is required."))?
            .to_string();
        let number = |key: &str| -> Result<Option<u64>, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| unprocessable(format!("{} must be an integer.", title(key)))),
            }
        };
        let needs = |key: &str, v: Option<u64>| {
            v.ok_or_else(|| unprocessable(format!("{} is required.", title(key))))
        };
        let ttl = number("ttl")?.unwrap_or(DEFAULT_TTL);
        if ttl < MIN_TTL {
            return Err(unprocessable(format!(
                "TTL must be at least {MIN_TTL} seconds."
            )));
        }
        let mut record = Record {
            ttl,
            priority: number("priority")?,
            port: number("port")?,
            weight: number("weight")?,
            flags: number("flags")?,
            tag: text(body, "tag")?.map(str::to_string),
            ..Record::plain(&kind, &name, &data)
        };
        match kind.as_str() {
            "A" if data.parse::<Ipv4Addr>().is_err() => {
                return Err(unprocessable("Data needs to be a valid IPv4 address."));
            }
            "AAAA" if data.parse::<Ipv6Addr>().is_err() => {
                return Err(unprocessable("Data needs to be a valid IPv6 address."));
            }
            "MX" => {
                needs("priority", record.priority)?;
            }
            "SRV" => {
                needs("priority", record.priority)?;
                needs("port", record.port)?;
                needs("weight", record.weight)?;
            }
            "CAA" => {
                let flags = needs("flags", record.flags)?;
                if flags > 255 {
                    return Err(unprocessable("Flags must be between 0 and 255."));
                }
                let tag = record
                    .tag
                    .as_deref()
                    .ok_or_else(|| unprocessable("Tag is required."))?;
                if !CAA_TAGS.contains(&tag) {
                    return Err(unprocessable("Tag must be one of issue, issuewild, iodef."));
                }
            }
            _ => {}
        }
        // Attributes other types do not use are shown as null.
        if !matches!(kind.as_str(), "MX" | "SRV") {
            record.priority = None;
        }
        if kind != "SRV" {
            record.port = None;
            record.weight = None;
        }
        if kind != "CAA" {
            record.flags = None;
            record.tag = None;
        }
        Ok(record)
    }
}

fn title(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(unprocessable(format!("{} must be a string.", title(key)))),
    }
}

/// A record name as DigitalOcean stores it: relative to the domain. A fully qualified
/// name inside the domain is accepted and shortened.
fn relative_name(name: &str, domain: &str) -> Result<String, ApiError> {
    let name = name.trim_end_matches('.');
    if name == "@" || name.eq_ignore_ascii_case(domain) {
        return Ok("@".into());
    }
    let short = name
        .strip_suffix(domain)
        .and_then(|n| n.strip_suffix('.'))
        .unwrap_or(name);
    let ok = short.split('.').enumerate().all(|(i, label)| {
        !label.is_empty()
            && label.len() <= 63
            && (label == "*" && i == 0
                || label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    });
    if ok {
        Ok(short.to_string())
    } else {
        Err(unprocessable(
            "Name is invalid: use @ for the apex, or labels of letters, digits, dashes and underscores.",
        ))
    }
}

/// The spec's `domain.TLD` form: two or more labels of letters, digits and inner dashes.
pub(crate) fn check_domain_name(name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(unprocessable(format!(
            "Name {name:?} is not a valid domain name."
        )))
    }
}

pub(crate) async fn list(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let query = QueryParams::parse(&uri)?;
    let listing = Listing::new(&cloud.base_url, &uri, PageRequest::from_query(&query));
    let mut domains = cloud.dns().inventory();
    if cloud
        .listed_zone_files_null
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        for domain in &mut domains {
            domain["zone_file"] = Value::Null;
        }
    }
    Ok(Json(listing.render("domains", domains)))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_json(body)?;
    let name = body["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| unprocessable("Name is required."))?
        .to_ascii_lowercase();
    check_domain_name(&name)?;
    let ip_address = match &body["ip_address"] {
        Value::Null => None,
        Value::String(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| unprocessable("IP address is not a valid IPv4 address."))?,
        ),
        _ => return Err(unprocessable("IP address must be a string.")),
    };
    let mut dns = cloud.dns();
    if dns.zones.contains_key(&name) {
        return Err(unprocessable("Name already exists."));
    }
    let domain = dns.create(&name, ip_address);
    Ok((StatusCode::CREATED, Json(json!({ "domain": domain }))).into_response())
}

fn domain_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name.to_ascii_lowercase())
        .map_err(|_| not_found())
}

pub(crate) async fn get(
    State(cloud): State<Arc<Cloud>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = domain_path(name)?;
    let domain = cloud.dns().view(&name).ok_or_else(not_found)?;
    Ok(Json(json!({ "domain": domain })))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = domain_path(name)?;
    if cloud.dns().remove(&name) {
        Ok(no_content())
    } else {
        Err(not_found())
    }
}

pub(crate) async fn list_records(
    State(cloud): State<Arc<Cloud>>,
    name: Result<Path<String>, PathRejection>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let name = domain_path(name)?;
    let query = QueryParams::parse(&uri)?;
    let by_name = query.get("name").map(|n| n.trim_end_matches('.'));
    let by_type = query.get("type");
    let dns = cloud.dns();
    let zone = dns.zones.get(&name).ok_or_else(not_found)?;
    let matching: Vec<Value> = zone
        .records
        .values()
        .filter(|r| by_type.is_none_or(|t| r.kind.eq_ignore_ascii_case(t)))
        .filter(|r| by_name.is_none_or(|n| zone.qualified(r).eq_ignore_ascii_case(n)))
        .map(Record::to_json)
        .collect();
    let listing = Listing::new(&cloud.base_url, &uri, PageRequest::from_query(&query));
    Ok(Json(listing.render("domain_records", matching)))
}

pub(crate) async fn create_record(
    State(cloud): State<Arc<Cloud>>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = domain_path(name)?;
    let body = read_json(body)?;
    let mut dns = cloud.dns();
    if !dns.zones.contains_key(&name) {
        return Err(not_found());
    }
    let mut record = Record::from_body(&body, &name)?;
    record.id = dns.take_record_id();
    dns.remember(&name, &record.data);
    let shown = record.to_json();
    if let Some(zone) = dns.zones.get_mut(&name) {
        zone.records.insert(record.id, record);
        zone.serial += 1;
    }
    Ok((StatusCode::CREATED, Json(json!({ "domain_record": shown }))).into_response())
}

fn record_path(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, u64), ApiError> {
    let Path((name, id)) = path.map_err(|_| not_found())?;
    let id = id.parse::<u64>().map_err(|_| not_found())?;
    Ok((name.to_ascii_lowercase(), id))
}

pub(crate) async fn get_record(
    State(cloud): State<Arc<Cloud>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (name, id) = record_path(path)?;
    let dns = cloud.dns();
    let record = dns
        .zones
        .get(&name)
        .and_then(|z| z.records.get(&id))
        .ok_or_else(not_found)?;
    Ok(Json(json!({ "domain_record": record.to_json() })))
}

pub(crate) async fn delete_record(
    State(cloud): State<Arc<Cloud>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (name, id) = record_path(path)?;
    let mut dns = cloud.dns();
    let zone = dns.zones.get_mut(&name).ok_or_else(not_found)?;
    zone.records.remove(&id).ok_or_else(not_found)?;
    zone.serial += 1;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_file_shows_every_record_and_the_soa() {
        let mut dns = Dns::new();
        dns.create("example.com", Some(Ipv4Addr::new(192, 0, 2, 1)));
        let txt = Record::from_body(
            &json!({"type": "TXT", "name": "_stackdock", "data": "stackdock-0123456789ab"}),
            "example.com",
        )
        .unwrap();
        let zone = dns.zones.get_mut("example.com").unwrap();
        zone.records.insert(99, Record { id: 99, ..txt });
        let file = zone.zone_file();
        assert!(
            file.contains("example.com. IN SOA ns1.digitalocean.com."),
            "{file}"
        );
        assert!(file.contains("example.com. 1800 IN A 192.0.2.1"), "{file}");
        assert!(
            file.contains("_stackdock.example.com. 1800 IN TXT \"stackdock-0123456789ab\""),
            "{file}"
        );
        assert_eq!(dns.records("example.com").len(), 5, "3 NS, the A, the TXT");
    }

    #[test]
    fn records_need_what_their_type_needs() {
        let check = |body: Value| Record::from_body(&body, "example.com").map(|r| r.to_json());
        let mx = check(json!({"type": "MX", "data": "mail.example.com", "priority": 10})).unwrap();
        assert_eq!(
            (mx["name"].clone(), mx["port"].clone()),
            (json!("@"), Value::Null)
        );
        for bad in [
            json!({"type": "A", "name": "www", "data": "not-an-ip"}),
            json!({"type": "MX", "data": "mail.example.com"}),
            json!({"type": "SRV", "name": "_sip._tcp", "data": "sip", "priority": 1, "port": 5060}),
            json!({"type": "CAA", "name": "@", "data": "letsencrypt.org", "flags": 0, "tag": "nope"}),
            json!({"type": "SOA", "name": "@", "data": "x"}),
            json!({"type": "TXT", "name": "a b", "data": "x"}),
            json!({"type": "TXT", "name": "x", "data": "y", "ttl": 5}),
        ] {
            let err = check(bad.clone()).expect_err("refused");
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let full = check(json!({"type": "TXT", "name": "www.example.com.", "data": "v"})).unwrap();
        assert_eq!(full["name"], "www");
    }

    #[test]
    fn history_counts_domains_made_again() {
        let mut dns = Dns::new();
        dns.create("example.com", None);
        dns.remember("example.com", "stackdock-0123456789ab");
        assert!(dns.remove("example.com"));
        dns.create("example.com", None);
        dns.remember("example.com", "stackdock-0123456789ab");
        assert_eq!(dns.creates_holding("stackdock-0123456789ab"), 2);
        assert_eq!(dns.creates_holding("ns1.digitalocean.com"), 2);
        assert_eq!(dns.creates_holding("never"), 0);
    }
}
