//! Droplets and their create actions: the inventory, the JSON a droplet is shown as,
//! and the `/v2/droplets` and `/v2/actions/{id}` handlers. Create bodies are checked
//! in `droplet_create`.
//!
//! Readiness is computed when a droplet is looked at, not by a background task: a
//! droplet is `new` until `ready_after` has passed since it was created, then
//! `active` with its addresses. The clock starts when the create is handled, never
//! at a later read, so a benchmark can measure a client's polling against it. That
//! keeps the sandbox deterministic under a paused or slow runtime and needs no timers
//! to clean up.
//!
//! Lists stay cheap at benchmark scale: droplets are indexed by tag, and a list page
//! renders only the droplets it shows, so paging through thousands of droplets by tag
//! costs what the pages hold, not the whole inventory for every page.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use super::addresses::{self, AddressPool};
use super::catalog::{self, Image, Region, Size};
use super::droplet_create::{DropletSpec, Options, unprocessable};
use super::paging::{Listing, PageRequest, QueryParams};
use super::{Cloud, no_content, not_found, read_json};
use crate::front_door::ApiError;

/// Real droplet ids are in the hundreds of millions; starting there keeps clients
/// from getting away with assumptions that only hold for tiny ids.
const FIRST_DROPLET_ID: u64 = 450_000_001;

/// Where a new sandbox starts numbering droplets. DigitalOcean never reuses an id, so a
/// sandbox restarted under a running StackDock (as `stackdock up --sandbox` does) must not
/// hand out the ids of droplets it forgot: each start takes a fresh block of ids.
fn first_droplet_id() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    // Blocks of 1,000 ids per millisecond of start time, wrapping every ~100 days.
    FIRST_DROPLET_ID + (ms % 8_640_000_000) * 1_000
}
const FIRST_ACTION_ID: u64 = 2_300_000_001;

pub(crate) struct World {
    droplets: BTreeMap<u64, Droplet>,
    /// The ids of the current droplets carrying each tag, in id order like `droplets`,
    /// so lists and deletes by tag do not scan the inventory.
    tagged: HashMap<String, BTreeSet<u64>>,
    /// How many droplets were ever created with each tag, deleted ones included: what
    /// a test reads to catch a duplicate create that was cleaned up afterwards.
    created_with_tag: HashMap<String, usize>,
    actions: BTreeMap<u64, Action>,
    /// Droplets created while set never turn `active`, and their create action ends
    /// `errored` when it would have completed: a create DigitalOcean accepted and then
    /// could not carry out.
    pub(crate) fail_creates: bool,
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
    /// Its create errored ([`World::fail_creates`]): it stays `new`.
    errored: bool,
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
    errored: bool,
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
            tagged: HashMap::new(),
            created_with_tag: HashMap::new(),
            actions: BTreeMap::new(),
            fail_creates: false,
            next_droplet_id: first_droplet_id(),
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
                errored: self.fail_creates,
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
            for tag in &droplet.tags {
                self.tagged.entry(tag.clone()).or_default().insert(id);
                *self.created_with_tag.entry(tag.clone()).or_default() += 1;
            }
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
                    errored: self.fail_creates,
                },
            );
            created.action_ids.push(action_id);
        }
        created
    }

    /// One droplet as the API would show it right now.
    pub(crate) fn view(&self, id: u64) -> Option<Value> {
        self.droplets
            .get(&id)
            .map(|d| d.to_json(Instant::now(), false))
    }

    pub(crate) fn inventory(&self) -> Vec<Value> {
        let now = Instant::now();
        self.droplets
            .values()
            .map(|d| d.to_json(now, false))
            .collect()
    }

    /// How many droplets were ever created carrying `tag`, including deleted ones.
    pub(crate) fn creates_with_tag(&self, tag: &str) -> usize {
        self.created_with_tag.get(tag).copied().unwrap_or(0)
    }

    /// One page of a droplet list: how many droplets match `tag` and `name`, and the
    /// matches inside `(skip, take)` rendered with `render`. Counting a match is cheap
    /// and rendering one is not, so only the page is rendered.
    fn list_page(
        &self,
        (tag, name, gpus): (Option<&str>, Option<&str>, bool),
        (skip, take): (usize, usize),
        mut render: impl FnMut(&Droplet) -> Value,
    ) -> (usize, Vec<Value>) {
        let candidates: Box<dyn Iterator<Item = &Droplet>> = match tag {
            Some(tag) => Box::new(self.with_tag(tag)),
            None => Box::new(self.droplets.values()),
        };
        let mut total = 0;
        let mut shown = Vec::new();
        for droplet in candidates
            .filter(|d| name.is_none_or(|n| d.name.eq_ignore_ascii_case(n)))
            .filter(|d| d.is_gpu() == gpus)
        {
            if total >= skip && shown.len() < take {
                shown.push(render(droplet));
            }
            total += 1;
        }
        (total, shown)
    }

    /// The current droplets carrying `tag`, by id.
    fn with_tag<'a>(&'a self, tag: &str) -> impl Iterator<Item = &'a Droplet> + 'a {
        self.tagged
            .get(tag)
            .into_iter()
            .flatten()
            .filter_map(|id| self.droplets.get(id))
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(droplet) = self.droplets.remove(&id) else {
            return false;
        };
        self.addresses.release(droplet.address_slot);
        for tag in &droplet.tags {
            if let Some(ids) = self.tagged.get_mut(tag) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.tagged.remove(tag);
                }
            }
        }
        true
    }
}

impl Droplet {
    /// A droplet of a GPU size, which listings show only when asked for `type=gpus`.
    fn is_gpu(&self) -> bool {
        self.size.slug.starts_with("gpu-")
    }

    /// The droplet as the API shows it. `just_created` forces the shape of the 202
    /// answer: status `new` and no addresses yet.
    fn to_json(&self, now: Instant, just_created: bool) -> Value {
        let active = !just_created && !self.errored && now >= self.ready_at;
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
        let status = match (done, self.errored) {
            (false, _) => "in-progress",
            (true, false) => "completed",
            (true, true) => "errored",
        };
        json!({
            "id": self.id,
            "status": status,
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
    // The document: only non-GPU droplets unless `type=gpus`, which lists only GPU ones and
    // can not be combined with `tag_name`.
    let gpus = match query.get("type") {
        None => false,
        Some("gpus") if tag.is_some() => {
            return Err(unprocessable("type can not be combined with tag_name"));
        }
        Some("gpus") => true,
        Some(other) => return Err(unprocessable(format!("invalid type: {other}"))),
    };

    let listing = Listing::new(&cloud.base_url, &uri, paging);
    let now = Instant::now();
    let (total, shown) = cloud
        .world()
        .list_page((tag, name, gpus), listing.window(), |d| {
            d.to_json(now, false)
        });
    let shown_count = shown.len();
    let mut body = listing.render_page("droplets", total, shown);
    if cloud
        .total_counts_page
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        body["meta"]["total"] = json!(shown_count);
    }
    Ok(Json(body))
}

pub(crate) async fn create(
    State(cloud): State<Arc<Cloud>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_json(body)?;
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
    let doomed: Vec<u64> = world.with_tag(tag).map(|d| d.id).collect();
    for id in doomed {
        world.remove(id);
    }
    Ok(no_content())
}

/// A numeric id from the path; anything else is not found, as DigitalOcean answers it.
fn numeric_id(id: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    id.ok()
        .and_then(|Path(raw)| raw.parse::<u64>().ok())
        .ok_or_else(not_found)
}

/// `GET /v2/droplets/{droplet_id}/actions`: the droplet's actions (here its create), one
/// page: a droplet has a handful.
pub(crate) async fn droplet_actions(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = numeric_id(id)?;
    let world = cloud.world();
    if !world.droplets.contains_key(&id) {
        return Err(not_found());
    }
    let now = Instant::now();
    let actions: Vec<Value> = world
        .actions
        .values()
        .filter(|a| a.droplet_id == id)
        .map(|a| a.to_json(now))
        .collect();
    let total = actions.len();
    Ok(Json(
        json!({ "actions": actions, "links": {}, "meta": { "total": total } }),
    ))
}

pub(crate) async fn get_action(
    State(cloud): State<Arc<Cloud>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = numeric_id(id)?;
    let world = cloud.world();
    let action = world.actions.get(&id).ok_or_else(not_found)?;
    Ok(Json(json!({ "action": action.to_json(Instant::now()) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, tags: &[&str]) -> DropletSpec {
        DropletSpec::from_body(&json!({
            "name": name, "size": "s-1vcpu-1gb", "image": "debian-12-x64", "tags": tags,
        }))
        .unwrap()
    }

    #[test]
    fn a_list_page_renders_only_its_own_droplets() {
        let mut world = World::new();
        for i in 0..3000 {
            let marker = format!("stackdock-{i}");
            let tags: &[&str] = if i % 2 == 0 {
                &["stackdock", &marker]
            } else {
                &["other"]
            };
            world.create(spec(&format!("n{i}"), tags), Duration::ZERO);
        }
        let mut rendered = 0;
        let (total, page) = world.list_page((Some("stackdock"), None, false), (1200, 200), |d| {
            rendered += 1;
            json!(d.name)
        });
        assert_eq!(total, 1500);
        assert_eq!(rendered, 200, "only the page is rendered");
        assert_eq!(page.first(), Some(&json!("n2400")));
        assert_eq!(page.last(), Some(&json!("n2798")));

        let (total, page) = world.list_page((Some("stackdock-42"), None, false), (0, 200), |d| {
            json!(d.name)
        });
        assert_eq!((total, page), (1, vec![json!("n42")]));
        let (total, _) = world.list_page((Some("stackdock"), Some("n3"), false), (0, 200), |d| {
            json!(d.name)
        });
        assert_eq!(total, 0, "n3 is not tagged stackdock");
    }

    #[test]
    fn the_tag_index_follows_deletes_but_create_counts_do_not() {
        let mut world = World::new();
        world.create(spec("a", &["stackdock", "stackdock-1"]), Duration::ZERO);
        world.create(spec("b", &["stackdock", "stackdock-2"]), Duration::ZERO);
        let first = world.with_tag("stackdock-1").map(|d| d.id).next().unwrap();
        assert!(world.remove(first));
        assert_eq!(world.with_tag("stackdock").count(), 1);
        assert_eq!(world.with_tag("stackdock-1").count(), 0);
        assert!(
            !world.tagged.contains_key("stackdock-1"),
            "no empty sets left behind"
        );
        assert_eq!(world.creates_with_tag("stackdock"), 2);
        assert_eq!(world.creates_with_tag("stackdock-1"), 1);
        assert_eq!(world.creates_with_tag("never"), 0);
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
