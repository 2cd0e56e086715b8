//! Instances: the inventory, the JSON an instance is shown as (the spec's `instance`
//! schema), and the `/account` and `/instances` handlers.
//!
//! Readiness is computed when an instance is looked at, from its create time: `pending`
//! for the first half of `ready_after`, then `active` and `installingbooting`, then `ok`.
//! [`World::hold`] keeps every instance made through the API in `pending` until released.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::{self, PageQuery};
use super::{Cloud, error};
use crate::front_door::{ApiError, uuid_text};

/// Regions a create may name: a few of Vultr's, by id.
pub(crate) const REGIONS: &[&str] = &[
    "ams", "atl", "dfw", "ewr", "fra", "lax", "lhr", "nrt", "ord", "sea", "sgp", "sjc", "syd",
];

/// Plans a create may name, with their vCPUs, RAM (MB), disk (GB) and bandwidth (GB).
const PLANS: &[(&str, u32, u32, u32, u32)] = &[
    ("vc2-1c-1gb", 1, 1024, 25, 1024),
    ("vc2-1c-2gb", 1, 2048, 55, 2048),
    ("vc2-2c-4gb", 2, 4096, 80, 3072),
    ("vc2-6c-16gb", 6, 16384, 320, 5120),
];

/// Operating systems a create may name, by id, as `GET /os` lists them.
const OPERATING_SYSTEMS: &[(u32, &str)] = &[
    (477, "Debian 11 x64 (bullseye)"),
    (1743, "Ubuntu 22.04 LTS x64"),
    (2136, "Debian 12 x64 (bookworm)"),
    (2284, "Ubuntu 24.04 LTS x64"),
];

pub(crate) struct World {
    instances: BTreeMap<String, Instance>,
    /// How many instances were ever created with each tag, deleted ones included.
    created_with_tag: HashMap<String, usize>,
    next_id: u64,
    next_address: u32,
    held: bool,
    /// Instance listings still to be answered empty, as a listing that has not caught up
    /// with the creates yet.
    lagging_listings: u32,
}

struct Instance {
    id: String,
    label: String,
    hostname: String,
    region: String,
    plan: &'static (&'static str, u32, u32, u32, u32),
    os: (u32, &'static str),
    tags: Vec<String>,
    date_created: String,
    created: Instant,
    ready_after: Duration,
    enable_ipv6: bool,
    address: u32,
}

impl World {
    pub(crate) fn new() -> Self {
        Self {
            instances: BTreeMap::new(),
            created_with_tag: HashMap::new(),
            // Random per start, so ids from a sandbox that restarted never repeat.
            next_id: u64::from(rand::random::<u32>()) << 16,
            next_address: 1,
            held: false,
            lagging_listings: 0,
        }
    }

    pub(crate) fn hold(&mut self, on: bool) {
        self.held = on;
    }

    pub(crate) fn lag_listings(&mut self, n: u32) {
        self.lagging_listings = n;
    }

    pub(crate) fn instances(&self) -> Vec<Value> {
        let now = Instant::now();
        let mut all: Vec<&Instance> = self.instances.values().collect();
        all.sort_by(|a, b| a.date_created.cmp(&b.date_created).then(a.id.cmp(&b.id)));
        all.into_iter().map(|i| self.view(i, now)).collect()
    }

    pub(crate) fn creates_with_tag(&self, tag: &str) -> usize {
        self.created_with_tag.get(tag).copied().unwrap_or(0)
    }

    /// Makes an instance with a plan and region known to be valid; answers its view.
    pub(crate) fn create_instance(
        &mut self,
        label: &str,
        region: &str,
        plan: &str,
        tags: Vec<String>,
        ready_after: Duration,
    ) -> Value {
        let spec = Spec {
            label: label.to_string(),
            hostname: None,
            region: region.to_string(),
            plan: find_plan(plan).unwrap_or(&PLANS[0]),
            os: OPERATING_SYSTEMS[0],
            tags,
            enable_ipv6: false,
        };
        let id = self.insert(spec, ready_after);
        self.view(&self.instances[&id], Instant::now())
    }

    fn insert(&mut self, spec: Spec, ready_after: Duration) -> String {
        self.next_id += 1;
        let id = uuid_text(&u128::from(self.next_id).to_be_bytes());
        for tag in &spec.tags {
            *self.created_with_tag.entry(tag.clone()).or_default() += 1;
        }
        let address = self.next_address;
        self.next_address += 1;
        let instance = Instance {
            id: id.clone(),
            hostname: spec
                .hostname
                .unwrap_or_else(|| format!("vultr-guest-{address}")),
            label: spec.label,
            region: spec.region,
            plan: spec.plan,
            os: spec.os,
            tags: spec.tags,
            date_created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
            created: Instant::now(),
            ready_after,
            enable_ipv6: spec.enable_ipv6,
            address,
        };
        self.instances.insert(id.clone(), instance);
        id
    }

    /// `status`, `power_status` and `server_status` right now.
    fn state(&self, i: &Instance, now: Instant) -> (&'static str, &'static str, &'static str) {
        let age = now.saturating_duration_since(i.created);
        if (self.held && !i.ready_after.is_zero()) || age < i.ready_after / 2 {
            ("pending", "running", "none")
        } else if age < i.ready_after {
            ("active", "running", "installingbooting")
        } else {
            ("active", "running", "ok")
        }
    }

    fn view(&self, i: &Instance, now: Instant) -> Value {
        let (status, power_status, server_status) = self.state(i, now);
        let active = status == "active";
        let (plan, vcpus, ram, disk, bandwidth) = *i.plan;
        let (a, b) = (i.address / 250 % 250 + 1, i.address % 250 + 1);
        let main_ip = if active {
            format!("203.0.{a}.{b}")
        } else {
            "0.0.0.0".into()
        };
        let v6 = if active && i.enable_ipv6 {
            format!("2001:db8:{a:x}:{b:x}::1")
        } else {
            String::new()
        };
        let v6_networks = if v6.is_empty() {
            json!([])
        } else {
            json!([{"network": format!("2001:db8:{a:x}:{b:x}::"), "main_ip": v6, "network_size": 64}])
        };
        json!({
            "id": i.id,
            "os": i.os.1,
            "ram": ram,
            "disk": disk,
            "main_ip": main_ip,
            "vcpu_count": vcpus,
            "region": i.region,
            "plan": plan,
            "date_created": i.date_created,
            "status": status,
            "allowed_bandwidth": bandwidth,
            "netmask_v4": if active { "255.255.254.0" } else { "" },
            "gateway_v4": if active { format!("203.0.{a}.1") } else { "0.0.0.0".into() },
            "power_status": power_status,
            "server_status": server_status,
            "v6_main_ip": v6,
            "v6_networks": v6_networks,
            "label": i.label,
            "internal_ip": "",
            "kvm": format!("https://my.vultr.com/subs/vps/novnc/api.php?data={}", i.id),
            "hostname": i.hostname,
            "tag": i.tags.first().cloned().unwrap_or_default(),
            "tags": i.tags,
            "os_id": i.os.0,
            "app_id": 0,
            "image_id": "",
            "firewall_group_id": "",
            "features": if i.enable_ipv6 { json!(["ipv6"]) } else { json!([]) },
            "user_scheme": "root",
        })
    }
}

/// A create's body, checked.
struct Spec {
    label: String,
    hostname: Option<String>,
    region: String,
    plan: &'static (&'static str, u32, u32, u32, u32),
    os: (u32, &'static str),
    tags: Vec<String>,
    enable_ipv6: bool,
}

fn find_plan(id: &str) -> Option<&'static (&'static str, u32, u32, u32, u32)> {
    PLANS.iter().find(|p| p.0 == id)
}

fn bad(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

impl Spec {
    fn from_body(body: &Value) -> Result<Self, ApiError> {
        let text = |field: &str| -> Result<Option<String>, ApiError> {
            match &body[field] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(bad(format!("Invalid {field}: must be a string."))),
            }
        };
        let region = text("region")?
            .filter(|r| !r.is_empty())
            .ok_or_else(|| bad("Missing required field: region."))?;
        if !REGIONS.contains(&region.as_str()) {
            return Err(bad(format!("Invalid region: {region}.")));
        }
        let plan = text("plan")?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("Missing required field: plan."))?;
        let plan = find_plan(&plan).ok_or_else(|| bad(format!("Invalid plan: {plan}.")))?;
        let os = match &body["os_id"] {
            Value::Null => {
                return Err(bad(
                    "An operating system is required: os_id, iso_id, snapshot_id, app_id or image_id.",
                ));
            }
            value => {
                let id = value
                    .as_u64()
                    .ok_or_else(|| bad("Invalid os_id: must be an integer."))?;
                *OPERATING_SYSTEMS
                    .iter()
                    .find(|(os, _)| u64::from(*os) == id)
                    .ok_or_else(|| bad(format!("Invalid os_id: {id}.")))?
            }
        };
        let tags = match &body["tags"] {
            Value::Null => Vec::new(),
            Value::Array(tags) => tags
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("Invalid tags: must be strings."))?,
            _ => return Err(bad("Invalid tags: must be an array of strings.")),
        };
        if let Some(backups) = text("backups")?
            && backups != "enabled"
            && backups != "disabled"
        {
            return Err(bad("Invalid backups: enabled or disabled."));
        }
        if let Some(user_data) = text("user_data")?
            && !is_base64(&user_data)
        {
            return Err(bad("Invalid user_data: must be base64 encoded."));
        }
        let enable_ipv6 = match &body["enable_ipv6"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            _ => return Err(bad("Invalid enable_ipv6: must be a boolean.")),
        };
        Ok(Self {
            label: text("label")?.unwrap_or_default(),
            hostname: text("hostname")?.filter(|h| !h.is_empty()),
            region,
            plan,
            os,
            tags,
            enable_ipv6,
        })
    }
}

fn is_base64(text: &str) -> bool {
    text.len().is_multiple_of(4)
        && text
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

pub(crate) fn body_of(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad("Invalid JSON body."))
}

fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "Invalid instance-id.")
}

type Answer = Result<Json<Value>, ApiError>;

pub(crate) async fn account() -> Json<Value> {
    Json(json!({"account": {
        "name": "Sandbox User",
        "email": "sandbox@example.com",
        "acls": ["manage_users", "subscriptions", "provisioning", "dns"],
        "balance": 0,
        "pending_charges": 0,
        "last_payment_date": "2026-01-01T00:00:00+00:00",
        "last_payment_amount": 0,
    }}))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    tag: Option<String>,
    label: Option<String>,
    region: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub(crate) async fn list(State(cloud): State<Arc<Cloud>>, Query(q): Query<ListQuery>) -> Answer {
    let mut world = cloud.world();
    let lagging = world.lagging_listings > 0;
    world.lagging_listings = world.lagging_listings.saturating_sub(1);
    let now = Instant::now();
    let items: Vec<(String, Value)> = world
        .instances
        .values()
        .filter(|_| !lagging)
        .filter(|i| q.tag.as_ref().is_none_or(|t| i.tags.contains(t)))
        .filter(|i| q.label.as_ref().is_none_or(|l| i.label == *l))
        .filter(|i| q.region.as_ref().is_none_or(|r| i.region == *r))
        .map(|i| (i.id.clone(), world.view(i, now)))
        .collect();
    let (instances, meta) = paging::page(items, &q.page)?;
    Ok(Json(json!({"instances": instances, "meta": meta})))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = Spec::from_body(&body_of(&bytes)?)?;
    let mut world = cloud.world();
    let id = world.insert(spec, cloud.ready_after);
    let mut view = world.view(&world.instances[&id], Instant::now());
    // Only the create's answer carries the root password.
    let password: u64 = rand::random();
    view["default_password"] = json!(format!("Sb{password:016x}!"));
    Ok((StatusCode::ACCEPTED, Json(json!({"instance": view}))))
}

pub(crate) async fn get(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Answer {
    let world = cloud.world();
    let instance = world.instances.get(&id).ok_or_else(not_found)?;
    Ok(Json(
        json!({"instance": world.view(instance, Instant::now())}),
    ))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    cloud
        .world()
        .instances
        .remove(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(not_found)
}
