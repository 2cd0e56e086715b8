//! DigitalOcean API v2 simulator, written against DigitalOcean's published OpenAPI
//! document (droplets, actions, domains and their records, managed database clusters,
//! account, regions, sizes).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use stackdock_sandbox::{BucketLimit, Chaos, DigitalOceanSandbox, DoSandboxConfig, Fault, Storm};
//!
//! let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
//!     tokens: vec!["dop_v1_sandbox".into()],
//!     // 600 requests a minute per token, at most 10 back to back.
//!     bucket: Some(BucketLimit { per_minute: 600, burst: 10 }),
//!     // 2% of requests fail with 5xx, 1% of creates and deletes lose their
//!     // answer, 1% of reads come back cut short, and 2 s of 429s every 30 s.
//!     chaos: Some(Chaos {
//!         seed: 42,
//!         error_rate: 0.02,
//!         lose_rate: 0.01,
//!         truncate_rate: 0.01,
//!         storm: Some(Storm { every: Duration::from_secs(30), lasts: Duration::from_secs(2) }),
//!     }),
//!     ..DoSandboxConfig::default()
//! })
//! .await?;
//! sandbox.inject(Fault::error(Some("POST"), "/v2/droplets", 500, 1));
//! // Point a DigitalOcean client at sandbox.base_url() ...
//! let counts = sandbox.request_counts();
//! println!("{} calls, {:.1}% 429", counts.total, 100.0 * counts.rate_limited_share());
//! println!("chaos: {:?}", sandbox.chaos_counts());
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod account;
mod addresses;
mod catalog;
mod databases;
mod domains;
mod droplet_create;
mod droplets;
mod paging;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::fault::Fault;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::BucketLimit;
use crate::ratelimit::Budget;
use crate::server::{self, ServerHandle};
use crate::{Chaos, ChaosCounts, RecordedRequest, RequestCounts};

use databases::{ClusterSpec, Clusters};
use domains::Dns;
use droplet_create::DropletSpec;
use droplets::World;

/// DigitalOcean's burst limit is per minute; the sandbox budget uses the same window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// DigitalOcean's hourly request limit, advertised when the sandbox is unlimited.
const NOMINAL_LIMIT: u32 = 5000;

#[derive(Clone, Debug)]
pub struct DoSandboxConfig {
    /// Accepted bearer tokens. Any other token, or none, gets DigitalOcean's 401; with
    /// an empty list every request is refused.
    pub tokens: Vec<String>,
    /// A droplet is `new` until this long after creation, then `active`, which is
    /// also when its addresses appear.
    pub ready_after: Duration,
    /// A database cluster is `creating` until this long after its create, then
    /// `online`.
    pub database_ready_after: Duration,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per token per 60-second sliding window before 429; `None`
    /// means unlimited (unless `bucket` is set).
    pub rate_limit: Option<u32>,
    /// A token bucket per token instead of the sliding window, e.g. 600 a minute with
    /// bursts of 10. When set it replaces `rate_limit`. Its 429s carry their own
    /// `Retry-After`: the whole seconds until the bucket holds a token again.
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429 from the sliding window, in whole seconds (at
    /// least 1).
    pub retry_after: Duration,
    /// Keep every request in [`DigitalOceanSandbox::requests`]. A long benchmark
    /// turns this off so the log does not grow without bound;
    /// [`DigitalOceanSandbox::request_counts`] is kept either way.
    pub request_log: bool,
    /// Random, seeded misbehaviour on top of queued faults; see [`Chaos`].
    pub chaos: Option<Chaos>,
}

impl Default for DoSandboxConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            ready_after: Duration::from_millis(200),
            database_ready_after: Duration::from_millis(300),
            latency: Duration::ZERO,
            rate_limit: None,
            bucket: None,
            retry_after: Duration::from_secs(1),
            request_log: true,
            chaos: None,
        }
    }
}

/// A running DigitalOcean simulator on loopback.
pub struct DigitalOceanSandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<DoDialect>>,
    cloud: Arc<Cloud>,
}

/// What the handlers share: the sandbox's own address (for absolute links) and the
/// inventory.
pub(crate) struct Cloud {
    base_url: String,
    ready_after: Duration,
    database_ready_after: Duration,
    world: Mutex<World>,
    dns: Mutex<Dns>,
    clusters: Mutex<Clusters>,
    /// Droplet listings report as `meta.total` the droplets of the page they answer, one
    /// reading of the spec's "number of objects returned by the request"; their links still
    /// lead to every page.
    total_counts_page: std::sync::atomic::AtomicBool,
    /// Domain listings show every `zone_file` as null (the field is nullable).
    listed_zone_files_null: std::sync::atomic::AtomicBool,
}

impl Cloud {
    /// A panic in one handler must not poison the inventory for every later request.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dns(&self) -> MutexGuard<'_, Dns> {
        self.dns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn clusters(&self) -> MutexGuard<'_, Clusters> {
        self.clusters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DigitalOceanSandbox {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: DoSandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: DoSandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            base_url: server::base_url(local),
            ready_after: config.ready_after,
            database_ready_after: config.database_ready_after,
            world: Mutex::new(World::new()),
            dns: Mutex::new(Dns::new()),
            clusters: Mutex::new(Clusters::default()),
            total_counts_page: std::sync::atomic::AtomicBool::new(false),
            listed_zone_files_null: std::sync::atomic::AtomicBool::new(false),
        });
        let door = Arc::new(FrontDoor::new(
            DoDialect,
            DoorConfig {
                tokens: config.tokens,
                latency: config.latency,
                retry_after: config.retry_after,
                rate_limit: config.rate_limit,
                bucket: config.bucket,
                rate_window: RATE_WINDOW,
                nominal_limit: NOMINAL_LIMIT,
                request_log: config.request_log,
                chaos: config.chaos,
            },
        ));
        let router = router(Arc::clone(&cloud), Arc::clone(&door));
        Ok(Self {
            server: ServerHandle::serve(listener, local, router),
            door,
            cloud,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash; API paths start with `/v2`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every droplet as the API would show it right now, sorted by id.
    pub fn droplets(&self) -> Vec<Value> {
        self.cloud.world().inventory()
    }

    /// How many droplets were ever created carrying `tag` (through the API or
    /// [`create_droplet_directly`](Self::create_droplet_directly)), deleted ones
    /// included: a duplicate create shows up here even after it was cleaned up.
    pub fn creates_by_tag(&self, tag: &str) -> usize {
        self.cloud.world().creates_with_tag(tag)
    }

    /// Creates a droplet as if someone made it in DigitalOcean's console: it bypasses
    /// the API (no request is logged, no fault or rate limit applies) and is already
    /// `active`, with IPv6 enabled.
    ///
    /// # Panics
    /// If `name`, `region`, `size`, `image` or a tag is not something the API would
    /// accept; that is a mistake in the calling test, not a simulated failure.
    pub fn create_droplet_directly(
        &self,
        name: &str,
        region: &str,
        size: &str,
        image: &str,
        tags: &[&str],
    ) -> Value {
        let body = json!({
            "name": name,
            "region": region,
            "size": size,
            "image": image,
            "tags": tags,
            "ipv6": true,
        });
        let spec = match DropletSpec::from_body(&body) {
            Ok(spec) => spec,
            Err(error) => panic!("create_droplet_directly({name:?}): {}", error.message),
        };
        let mut world = self.cloud.world();
        let created = world.create(spec, Duration::ZERO);
        created
            .droplets
            .first()
            .and_then(|d| d["id"].as_u64())
            .and_then(|id| world.view(id))
            .unwrap_or(Value::Null)
    }

    /// Every domain as `GET /v2/domains/{name}` would show it right now, by name.
    pub fn domains(&self) -> Vec<Value> {
        self.cloud.dns().inventory()
    }

    /// The records of `domain` as its record list would show them (empty if there is
    /// no such domain).
    pub fn domain_records(&self, domain: &str) -> Vec<Value> {
        self.cloud.dns().records(domain)
    }

    /// How many domains were ever created that came to hold a record whose `data` is
    /// `data`, deleted ones included: a domain made twice shows up here even after it
    /// was cleaned up.
    pub fn domain_creates_holding(&self, data: &str) -> usize {
        self.cloud.dns().creates_holding(data)
    }

    /// Creates a domain as if someone added it in DigitalOcean's console: no request is
    /// logged, no fault or rate limit applies.
    ///
    /// # Panics
    /// If `name` is not a domain name the API would accept, or exists already.
    pub fn create_domain_directly(&self, name: &str) -> Value {
        if let Err(e) = domains::check_domain_name(name) {
            panic!("create_domain_directly({name:?}): {}", e.message);
        }
        let mut dns = self.cloud.dns();
        assert!(dns.view(name).is_none(), "{name} exists already");
        dns.create(name, None);
        dns.view(name).unwrap_or(Value::Null)
    }

    /// Every database cluster as `GET /v2/databases` would show it right now, by id,
    /// connection details and passwords included.
    pub fn databases(&self) -> Vec<Value> {
        self.cloud.clusters().inventory()
    }

    /// Holds every database cluster at `creating` (`true`), whatever its delay, until
    /// released (`false`); then each shows `online` once its delay has passed.
    pub fn hold_databases_creating(&self, held: bool) {
        self.cloud.clusters().hold(held);
    }

    /// How many database clusters were ever created carrying `tag`, deleted ones
    /// included.
    pub fn database_creates_by_tag(&self, tag: &str) -> usize {
        self.cloud.clusters().creates_with_tag(tag)
    }

    /// Creates a database cluster as if someone made it in DigitalOcean's console,
    /// already `online`.
    ///
    /// # Panics
    /// If the fields are not something the API would accept.
    pub fn create_database_directly(
        &self,
        name: &str,
        engine: &str,
        region: &str,
        size: &str,
        tags: &[&str],
    ) -> Value {
        let body = json!({"name": name, "engine": engine, "region": region, "size": size,
                          "num_nodes": 1, "tags": tags});
        let spec = match ClusterSpec::from_body(&body) {
            Ok(spec) => spec,
            Err(e) => panic!("create_database_directly({name:?}): {}", e.message),
        };
        let mut clusters = self.cloud.clusters();
        let id = clusters.create(spec, Duration::ZERO)["id"].clone();
        clusters
            .inventory()
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or(Value::Null)
    }

    /// Queues a fault; faults are matched in the order they were queued.
    pub fn inject(&self, fault: Fault) {
        self.door.inject(fault);
    }

    /// How many queued faults are not used up yet: 0 once every one hit all its requests.
    pub fn queued_faults(&self) -> usize {
        self.door.queued_faults()
    }

    /// Every request received while the request log was on, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.door.requests()
    }

    /// Totals by method and status and the number of 429s, since the start; counted
    /// whether or not the request log is on.
    pub fn request_counts(&self) -> RequestCounts {
        self.door.request_counts()
    }

    /// Droplets created from now on (`true`) never turn `active`, and their create action
    /// ends `errored` once it would have completed.
    pub fn fail_droplet_creates(&self, fail: bool) {
        self.cloud.world().fail_creates = fail;
    }

    /// Makes droplet listings report as `meta.total` only the droplets of the page they
    /// answer (as an implementation reading the spec's words for it would), their
    /// `links.pages.next` still leading to every page.
    pub fn set_total_counts_page(&self, on: bool) {
        self.cloud
            .total_counts_page
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes domain listings show each `zone_file` as null (`true`), which the spec allows,
    /// or the zone file again (`false`).
    pub fn set_listed_zone_files_null(&self, on: bool) {
        self.cloud
            .listed_zone_files_null
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Turns the request log on or off; what it already holds is kept. Off, requests
    /// are still counted in [`request_counts`](Self::request_counts).
    pub fn set_request_log(&self, on: bool) {
        self.door.set_request_log(on);
    }

    /// Replaces the chaos profile (`None` stops it). The dice are reseeded from the
    /// new profile's seed and storms are timed from now; [`chaos_counts`] carries on.
    ///
    /// [`chaos_counts`]: Self::chaos_counts
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.door.set_chaos(chaos);
    }

    /// How many times chaos struck so far, by kind.
    pub fn chaos_counts(&self) -> ChaosCounts {
        self.door.chaos_counts()
    }

    /// Switches to the 60-second sliding window with this many requests per token,
    /// or lifts every limit with `None`. Replaces a token bucket if one was set.
    pub fn set_rate_limit(&self, limit: Option<u32>) {
        self.door.set_rate_limit(limit);
    }

    /// Switches to a token bucket per token (each starting full), or lifts every
    /// limit with `None`. Replaces the sliding window if one was set.
    pub fn set_bucket(&self, bucket: Option<BucketLimit>) {
        self.door.set_bucket(bucket);
    }

    /// Stops accepting, lets in-flight requests finish (for a few seconds at most),
    /// then returns. Dropping the sandbox instead aborts the server at once.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<DoDialect>>) -> Router {
    Router::new()
        .route("/v2/account", get(account::get))
        .route(
            "/v2/droplets",
            get(droplets::list)
                .post(droplets::create)
                .delete(droplets::delete_by_tag),
        )
        .route(
            "/v2/droplets/{droplet_id}",
            get(droplets::get).delete(droplets::delete),
        )
        .route("/v2/actions/{action_id}", get(droplets::get_action))
        .route(
            "/v2/droplets/{droplet_id}/actions",
            get(droplets::droplet_actions),
        )
        .route("/v2/domains", get(domains::list).post(domains::create))
        .route(
            "/v2/domains/{domain_name}",
            get(domains::get).delete(domains::delete),
        )
        .route(
            "/v2/domains/{domain_name}/records",
            get(domains::list_records).post(domains::create_record),
        )
        .route(
            "/v2/domains/{domain_name}/records/{domain_record_id}",
            get(domains::get_record).delete(domains::delete_record),
        )
        .route(
            "/v2/databases",
            get(databases::list).post(databases::create),
        )
        .route(
            "/v2/databases/{database_cluster_uuid}",
            get(databases::get).delete(databases::delete),
        )
        .route("/v2/regions", get(catalog::list_regions))
        .route("/v2/sizes", get(catalog::list_sizes))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks: unknown routes are logged,
        // authenticated and rate limited like everything else.
        .layer(from_fn_with_state(door, front_door::<DoDialect>))
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

/// A request's JSON body, or DigitalOcean's 400 for one that cannot be read.
pub(crate) fn read_json(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, ApiError> {
    let body = body.map_err(|e| droplet_create::bad_request(e.body_text()))?;
    serde_json::from_slice(&body).map_err(|e| {
        droplet_create::bad_request(format!("The request body could not be parsed as JSON: {e}"))
    })
}

/// DigitalOcean's 204s still carry a JSON content type (`no_content_with_content_type`).
pub(crate) fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
    )
        .into_response()
}

async fn unknown_route() -> ApiError {
    not_found()
}

struct DoDialect;

impl Dialect for DoDialect {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";

    fn error_body(&self, code: &str, message: &str, request_id: &str) -> Value {
        json!({ "id": code, "message": message, "request_id": request_id })
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you.",
        )
    }

    fn rate_limited(&self) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "API Rate limit exceeded.",
        )
    }

    fn lost_response(&self) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Unexpected server-side error",
        )
    }

    fn budget_headers(&self, budget: &Budget, headers: &mut HeaderMap) {
        let pairs = [
            ("ratelimit-limit", u64::from(budget.limit)),
            ("ratelimit-remaining", u64::from(budget.remaining)),
            ("ratelimit-reset", budget.reset_epoch),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}
