//! Droplets and their create actions: the inventory, request validation, the JSON a
//! droplet is shown as, and the `/v2/droplets` and `/v2/actions/{id}` handlers.
//!
//! Readiness is computed when a droplet is looked at, not by a background task: a
//! droplet is `new` until `ready_after` has passed since it was created, then
//! `active` with its addresses. That keeps the sandbox deterministic under a paused
//! or slow runtime and needs no timers to clean up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::addresses::{self, AddressPool};
use super::catalog::{self, Image, Region, Size};
use super::paging::{Listing, PageRequest, QueryParams};
use super::{Cloud, not_found};
use crate::front_door::ApiError;

/// DigitalOcean's own limit for one multi-create request.
const MAX_NAMES_PER_CREATE: usize = 10;
const MAX_USER_DATA_BYTES: usize = 64 * 1024;
const MAX_NAME_LEN: usize = 255;
/// Real droplet ids are in the hundreds of millions; starting there keeps clients
/// from getting away with assumptions that only hold for tiny ids.
const FIRST_DROPLET_ID: u64 = 450_000_001;
const FIRST_ACTION_ID: u64 = 2_300_000_001;

const INVALID_SIZE: &str = "You specified an invalid size for Droplet creation.";
const INVALID_REGION: &str = "You specified an invalid region for Droplet creation.";
const INVALID_IMAGE: &str = "You specified an invalid image for Droplet creation.";
const SIZE_NOT_IN_REGION: &str = "Size is not available in this region.";
const INVALID_HOSTNAME: &str =
    "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)";

pub(crate) struct World {
    droplets: BTreeMap<u64, Droplet>,
    actions: BTreeMap<u64, Action>,
    /// DigitalOcean creates tags on first use and keeps them after their droplets go.
    tags: BTreeSet<String>,
    next_droplet_id: u64,
    next_action_id: u64,
    addresses: AddressPool,
}

struct Droplet {
    id: u64,
    name: String,
    size: &'static Size,
    region: &'static Region,
    image: &'static Image,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    ready_at: Instant,
    options: Options,
    vpc_uuid: String,
    address_slot: u32,
}

struct Action {
    id: u64,
    droplet_id: u64,
    region: &'static Region,
    started_at: DateTime<Utc>,
    ready_at: Instant,
    completed_at: DateTime<Utc>,
}

#[derive(Clone, Copy)]
struct Options {
    ipv6: bool,
    backups: bool,
    monitoring: bool,
    droplet_agent: bool,
    public_networking: bool,
}

/// A create request that passed validation.
pub(crate) struct DropletSpec {
    names: Vec<String>,
    multi: bool,
    size: &'static Size,
    region: &'static Region,
    image: &'static Image,
    tags: Vec<String>,
    options: Options,
    vpc_uuid: Option<String>,
}

/// What a create produced, in the shape the 202 answer needs.
pub(crate) struct Created {
    pub(crate) droplets: Vec<Value>,
    action_ids: Vec<u64>,
}

impl World {
    pub(crate) fn new() -> Self {
        Self {
            droplets: BTreeMap::new(),
            actions: BTreeMap::new(),
            tags: BTreeSet::new(),
            next_droplet_id: FIRST_DROPLET_ID,
            next_action_id: FIRST_ACTION_ID,
            addresses: AddressPool::default(),
        }
    }

    /// Creates one droplet per name. `ready_after` is how long each stays `new`.
    pub(crate) fn create(&mut self, spec: DropletSpec, ready_after: Duration) -> Created {
        let now = Instant::now();
        let wall_now = Utc::now();
        let ready_at = now + ready_after;
        let completed_at = wall_now + TimeDelta::from_std(ready_after).unwrap_or(TimeDelta::zero());
        self.tags.extend(spec.tags.iter().cloned());

        let mut created = Created {
            droplets: Vec::new(),
            action_ids: Vec::new(),
        };
        for name in spec.names {
            let id = self.next_droplet_id;
            self.next_droplet_id += 1;
            let droplet = Droplet {
                id,
                name,
                size: spec.size,
                region: spec.region,
                image: spec.image,
                tags: spec.tags.clone(),
                created_at: wall_now,
                ready_at,
                options: spec.options,
                vpc_uuid: spec
                    .vpc_uuid
                    .clone()
                    .unwrap_or_else(|| default_vpc_uuid(spec.region)),
                address_slot: self.addresses.allocate(),
            };
            // The 202 answer always shows the droplet as just accepted, even when
            // `ready_after` is zero: that is what DigitalOcean's create returns.
            created.droplets.push(droplet.to_json(now, true));
            self.droplets.insert(id, droplet);

            let action_id = self.next_action_id;
            self.next_action_id += 1;
            self.actions.insert(
                action_id,
                Action {
                    id: action_id,
                    droplet_id: id,
                    region: spec.region,
                    started_at: wall_now,
                    ready_at,
                    completed_at,
                },
            );
            created.action_ids.push(action_id);
        }
        created
    }

    pub(crate) fn inventory(&self) -> Vec<Value> {
        let now = Instant::now();
        self.droplets
            .values()
            .map(|d| d.to_json(now, false))
            .collect()
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.droplets.remove(&id) {
            Some(droplet) => {
                self.addresses.release(droplet.address_slot);
                true
            }
            None => false,
        }
    }
}

impl Droplet {
    /// The droplet as the API shows it. `just_created` forces the shape of the 202
    /// answer: status `new` and no addresses yet.
    fn to_json(&self, now: Instant, just_created: bool) -> Value {
        let active = !just_created && now >= self.ready_at;
        let options = self.options;
        let networks = if active {
            addresses::networks(
                self.address_slot,
                catalog::region_index(self.region.slug),
                options.public_networking,
                options.ipv6,
            )
        } else {
            json!({ "v4": [], "v6": [] })
        };
        let mut features = Vec::new();
        if options.backups {
            features.push("backups");
        }
        features.push("private_networking");
        if options.ipv6 {
            features.push("ipv6");
        }
        if options.monitoring {
            features.push("monitoring");
        }
        if options.droplet_agent {
            features.push("droplet_agent");
        }
        let next_backup_window = if options.backups {
            backup_window(self.created_at)
        } else {
            Value::Null
        };
        json!({
            "id": self.id,
            "name": self.name,
            "memory": self.size.memory_mb,
            "vcpus": self.size.vcpus,
            "disk": self.size.disk_gb,
            "disk_info": catalog::disk_info(self.size.disk_gb),
            "locked": false,
            "status": if active { "active" } else { "new" },
            "kernel": null,
            "created_at": timestamp(self.created_at),
            "features": features,
            "backup_ids": [],
            "next_backup_window": next_backup_window,
            "snapshot_ids": [],
            "image": self.image.to_json(),
            "volume_ids": [],
            "size": self.size.to_json(),
            "size_slug": self.size.slug,
            "networks": networks,
            "region": self.region.to_json(),
            "tags": self.tags,
            "vpc_uuid": self.vpc_uuid,
        })
    }
}

impl Action {
    fn to_json(&self, now: Instant) -> Value {
        let done = now >= self.ready_at;
        json!({
            "id": self.id,
            "status": if done { "completed" } else { "in-progress" },
            "type": "create",
            "started_at": timestamp(self.started_at),
            "completed_at": if done { Value::from(timestamp(self.completed_at)) } else { Value::Null },
            "resource_id": self.droplet_id,
            "resource_type": "droplet",
            "region": self.region.to_json(),
            "region_slug": self.region.slug,
        })
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Backups run in a window starting at midnight UTC after the droplet was created.
fn backup_window(created_at: DateTime<Utc>) -> Value {
    let start = created_at
        .date_naive()
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(created_at);
    let end = start + TimeDelta::hours(23);
    json!({ "start": timestamp(start), "end": timestamp(end) })
}

/// Each region has one default VPC; droplets created without `vpc_uuid` land there.
fn default_vpc_uuid(region: &Region) -> String {
    let index = catalog::region_index(region.slug);
    format!("5ad0c0de-{index:04x}-4d0c-8a5e-{index:012x}")
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        message,
    )
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The spec's pattern `^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`, at most 255 long.
fn check_hostname(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(unprocessable("Name is required."));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(unprocessable(format!(
            "Name is too long (maximum is {MAX_NAME_LEN} characters)."
        )));
    }
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let ends_ok = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if chars_ok && ends_ok {
        Ok(())
    } else {
        Err(unprocessable(INVALID_HOSTNAME))
    }
}

/// DigitalOcean tag names: letters, digits, `:`, `-`, `_`, at most 255 characters.
fn check_tag(tag: &str) -> Result<(), ApiError> {
    let ok = !tag.is_empty()
        && tag.len() <= 255
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(unprocessable(format!(
            "Tag name \"{tag}\" is invalid: tag names may contain only letters, numbers, colons, dashes and underscores, and be at most 255 characters long."
        )))
    }
}

fn optional_bool(body: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(unprocessable(format!(
            "The provided {key} value must be a boolean."
        ))),
    }
}

/// `region` may be an exact slug or a prefix such as `nyc`, which DigitalOcean
/// resolves to any datacenter of that region offering the size.
fn pick_region(requested: Option<&str>, size: &Size) -> Result<&'static Region, ApiError> {
    let Some(requested) = requested else {
        return catalog::region(catalog::DEFAULT_REGION)
            .filter(|r| size.offered_in(r.slug))
            .or_else(|| catalog::REGIONS.iter().find(|r| size.offered_in(r.slug)))
            .ok_or_else(|| unprocessable(SIZE_NOT_IN_REGION));
    };
    if let Some(region) = catalog::region(requested) {
        return if size.offered_in(region.slug) {
            Ok(region)
        } else {
            Err(unprocessable(SIZE_NOT_IN_REGION))
        };
    }
    let family: Vec<&'static Region> = catalog::REGIONS
        .iter()
        .filter(|r| !requested.is_empty() && r.slug.starts_with(requested))
        .collect();
    if family.is_empty() {
        return Err(unprocessable(INVALID_REGION));
    }
    family
        .into_iter()
        .find(|r| size.offered_in(r.slug))
        .ok_or_else(|| unprocessable(SIZE_NOT_IN_REGION))
}

impl DropletSpec {
    /// Validates a `droplet_single_create` / `droplet_multi_create` body.
    pub(crate) fn from_body(body: &Value) -> Result<Self, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(bad_request("The request body must be a JSON object."));
        };

        let (names, multi) = match body.get("names") {
            Some(Value::Array(items)) => {
                let names = items
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| {
                        unprocessable("The provided names value must be an array of strings.")
                    })?;
                if names.is_empty() || names.len() > MAX_NAMES_PER_CREATE {
                    return Err(unprocessable(format!(
                        "You may create between 1 and {MAX_NAMES_PER_CREATE} Droplets at a time."
                    )));
                }
                (names, true)
            }
            Some(Value::Null) | None => match body.get("name") {
                Some(Value::String(name)) => (vec![name.clone()], false),
                None | Some(Value::Null) => return Err(unprocessable("Name is required.")),
                Some(_) => return Err(unprocessable("The provided name value must be a string.")),
            },
            Some(_) => {
                return Err(unprocessable(
                    "The provided names value must be an array of strings.",
                ));
            }
        };
        for name in &names {
            check_hostname(name)?;
        }

        let size = body
            .get("size")
            .and_then(Value::as_str)
            .and_then(catalog::size)
            .ok_or_else(|| unprocessable(INVALID_SIZE))?;

        let requested_region = match body.get("region") {
            None | Some(Value::Null) => None,
            Some(Value::String(slug)) => Some(slug.as_str()),
            Some(_) => return Err(unprocessable(INVALID_REGION)),
        };
        let region = pick_region(requested_region, size)?;

        let image = match body.get("image") {
            Some(Value::String(slug)) => catalog::image_by_slug(slug),
            Some(Value::Number(id)) => id.as_u64().and_then(catalog::image_by_id),
            _ => None,
        }
        .ok_or_else(|| unprocessable(INVALID_IMAGE))?;

        let mut tags: Vec<String> = Vec::new();
        match body.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let tag = item.as_str().ok_or_else(|| {
                        unprocessable("The provided tags value must be an array of strings.")
                    })?;
                    check_tag(tag)?;
                    if !tags.iter().any(|t| t == tag) {
                        tags.push(tag.to_owned());
                    }
                }
            }
            Some(_) => return Err(unprocessable("The provided tags value must be an array.")),
        }

        match body.get("ssh_keys") {
            None | Some(Value::Null) => {}
            Some(Value::Array(keys)) if keys.iter().all(|k| k.is_string() || k.is_u64()) => {}
            Some(_) => {
                return Err(unprocessable(
                    "The provided ssh_keys value must be an array.",
                ));
            }
        }

        match body.get("user_data") {
            None | Some(Value::Null) => {}
            Some(Value::String(data)) if data.len() <= MAX_USER_DATA_BYTES => {}
            Some(Value::String(_)) => {
                return Err(unprocessable("user_data may not exceed 64 KiB in size."));
            }
            Some(_) => {
                return Err(unprocessable(
                    "The provided user_data value must be a string.",
                ));
            }
        }

        let vpc_uuid = match body.get("vpc_uuid") {
            None | Some(Value::Null) => None,
            Some(Value::String(uuid)) if !uuid.is_empty() => Some(uuid.clone()),
            Some(_) => {
                return Err(unprocessable(
                    "The provided vpc_uuid value must be a string.",
                ));
            }
        };

        let options = Options {
            ipv6: optional_bool(body, "ipv6", false)?,
            backups: optional_bool(body, "backups", false)?,
            monitoring: optional_bool(body, "monitoring", false)?,
            droplet_agent: optional_bool(body, "with_droplet_agent", true)?,
            public_networking: optional_bool(body, "public_networking", true)?,
        };
        // Deprecated but still accepted by DigitalOcean; only its type is checked.
        optional_bool(body, "private_networking", false)?;
        if !options.public_networking && options.ipv6 {
            return Err(unprocessable(
                "ipv6 must be false when public_networking is false.",
            ));
        }

        Ok(Self {
            names,
            multi,
            size,
            region,
            image,
            tags,
            options,
            vpc_uuid,
        })
    }
}

fn parse_droplet_id(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok()
}

pub(crate) async fn list(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let query = QueryParams::parse(&uri)?;
    let paging = PageRequest::from_query(&query);
    let tag = query.get("tag_name");
    let name = query.get("name");
    // No GPU sizes exist in the sandbox, so `type=gpus` lists nothing.
    let gpus_only = query.get("type") == Some("gpus");

    let now = Instant::now();
    let droplets: Vec<Value> = if gpus_only {
        Vec::new()
    } else {
        let world = cloud.world();
        world
            .droplets
            .values()
            .filter(|d| tag.is_none_or(|t| d.tags.iter().any(|x| x == t)))
            .filter(|d| name.is_none_or(|n| d.name.eq_ignore_ascii_case(n)))
            .map(|d| d.to_json(now, false))
            .collect()
    };
    Ok(Json(
        Listing::new(&cloud.base_url, &uri, paging).render("droplets", droplets),
    ))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| bad_request(e.body_text()))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("The request body could not be parsed as JSON: {e}")))?;
    let spec = DropletSpec::from_body(&body)?;
    let multi = spec.multi;
    let created = cloud.world().create(spec, cloud.ready_after);

    let actions: Vec<Value> = created
        .action_ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "rel": "create",
                "href": format!("{}/v2/actions/{id}", cloud.base_url),
            })
        })
        .collect();
    let body = if multi {
        json!({ "droplets": created.droplets, "links": { "actions": actions } })
    } else {
        let droplet = created.droplets.into_iter().next().unwrap_or(Value::Null);
        json!({ "droplet": droplet, "links": { "actions": actions } })
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

pub(crate) async fn get(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id
        .ok()
        .and_then(|Path(raw)| parse_droplet_id(&raw))
        .ok_or_else(not_found)?;
    let world = cloud.world();
    let droplet = world.droplets.get(&id).ok_or_else(not_found)?;
    Ok(Json(
        json!({ "droplet": droplet.to_json(Instant::now(), false) }),
    ))
}

pub(crate) async fn delete(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id
        .ok()
        .and_then(|Path(raw)| parse_droplet_id(&raw))
        .ok_or_else(not_found)?;
    if cloud.world().remove(id) {
        Ok(no_content())
    } else {
        Err(not_found())
    }
}

pub(crate) async fn delete_by_tag(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(&uri)?;
    let Some(tag) = query.get("tag_name").filter(|t| !t.is_empty()) else {
        return Err(unprocessable(
            "tag_name is required to delete Droplets by tag.",
        ));
    };
    let mut world = cloud.world();
    let doomed: Vec<u64> = world
        .droplets
        .values()
        .filter(|d| d.tags.iter().any(|t| t == tag))
        .map(|d| d.id)
        .collect();
    for id in doomed {
        world.remove(id);
    }
    Ok(no_content())
}

pub(crate) async fn get_action(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id
        .ok()
        .and_then(|Path(raw)| raw.parse::<u64>().ok())
        .ok_or_else(not_found)?;
    let world = cloud.world();
    let action = world.actions.get(&id).ok_or_else(not_found)?;
    Ok(Json(json!({ "action": action.to_json(Instant::now()) })))
}

/// DigitalOcean's 204s still carry a JSON content type (`no_content_with_content_type`).
fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<DropletSpec, ApiError> {
        DropletSpec::from_body(&body)
    }

    fn message(body: Value) -> String {
        match spec(body) {
            Ok(_) => panic!("expected a validation error"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn hostnames_follow_the_spec_pattern() {
        assert!(check_hostname("web-01.example.com").is_ok());
        assert!(check_hostname("a").is_ok());
        assert!(check_hostname("web_01").is_err());
        assert!(check_hostname("web-").is_err());
        assert!(check_hostname("web 01").is_err());
        assert!(check_hostname(&"a".repeat(256)).is_err());
    }

    #[test]
    fn region_prefix_and_default() {
        let base = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
        let chosen = spec(base.clone()).ok().unwrap();
        assert_eq!(chosen.region.slug, catalog::DEFAULT_REGION);
        let mut with_prefix = base.clone();
        with_prefix["region"] = json!("nyc");
        assert!(
            spec(with_prefix)
                .ok()
                .unwrap()
                .region
                .slug
                .starts_with("nyc")
        );
    }

    #[test]
    fn size_must_be_offered_in_region() {
        let msg = message(json!({
            "name": "a", "size": "s-1vcpu-512mb-10gb", "region": "sgp1", "image": "debian-12-x64"
        }));
        assert_eq!(msg, SIZE_NOT_IN_REGION);
    }

    #[test]
    fn image_by_numeric_id() {
        let id = catalog::image_by_slug("ubuntu-24-04-x64").unwrap().id;
        let chosen = spec(json!({"name": "a", "size": "s-1vcpu-1gb", "image": id}))
            .ok()
            .unwrap();
        assert_eq!(chosen.image.slug, "ubuntu-24-04-x64");
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        let body = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                          "tags": ["env:prod", "web", "env:prod"]});
        assert_eq!(spec(body).ok().unwrap().tags, ["env:prod", "web"]);
        let bad = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                         "tags": ["stack=prod"]});
        assert!(message(bad).contains("stack=prod"));
        let not_array = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                               "tags": "web"});
        assert!(spec(not_array).is_err());
    }

    #[test]
    fn multi_create_limits() {
        let names: Vec<String> = (0..11).map(|i| format!("n{i}")).collect();
        let body = json!({"names": names, "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
        assert!(spec(body).is_err());
    }

    #[test]
    fn backup_window_starts_next_midnight() {
        let created = DateTime::parse_from_rfc3339("2024-05-01T13:14:15Z")
            .unwrap()
            .with_timezone(&Utc);
        let window = backup_window(created);
        assert_eq!(window["start"], "2024-05-02T00:00:00Z");
        assert_eq!(window["end"], "2024-05-02T23:00:00Z");
    }
}
