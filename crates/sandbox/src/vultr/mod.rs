//! Vultr API v2 simulator, written against Vultr's published OpenAPI document: the account,
//! instances, DNS domains with their records, and managed databases.
//!
//! What it holds to, from the document: paths are relative to the API root
//! (`https://api.vultr.com/v2`), so [`VultrSandbox::base_url`] stands for that root; every
//! error is `{"error": "<message>", "status": N}`; an instance is created with `region`,
//! `plan` and an operating system, answered 202 with `status` `pending`, and is ready once it
//! is `active`, `running` and `ok`; a domain is created with `domain` (200, a 400 when it
//! exists) and its records with `name`, `type` and `data` (201); a managed database is created
//! with its engine, version, region, plan and label (202), `Rebuilding` until it is `Running`,
//! its admin password in every answer; a delete answers 204; listings are paged by cursor
//! (`per_page`, `cursor` in, `meta.links.next` out). Vultr documents 30 requests a second per
//! source IP and no rate-limit headers: the limiter (off unless a test sets it) counts over a
//! one-second window and answers 429 with `Retry-After`, as the newer document says.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use stackdock_sandbox::{Fault, VultrSandbox, VultrSandboxConfig};
//!
//! let sandbox = VultrSandbox::start(VultrSandboxConfig {
//!     tokens: vec!["vultr-sandbox-key".into()],
//!     ..VultrSandboxConfig::default()
//! })
//! .await?;
//! sandbox.inject(Fault::lose_response(Some("POST"), "/instances", 1));
//! // Point a Vultr client at sandbox.base_url() ...
//! println!("{:?}", sandbox.instances());
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod databases;
mod domains;
mod instances;
mod paging;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::get;

use databases::Databases;
use domains::Domains;
use serde_json::{Value, json};

use crate::Chaos;
use crate::controls::sandbox_controls;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::{BucketLimit, Budget};
use crate::server::{self, ServerHandle};

use instances::World;

/// Vultr's documented limit counts per second.
const RATE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct VultrSandboxConfig {
    /// Accepted API keys. Any other key, or none, gets a 401; with an empty list every
    /// request is refused.
    pub tokens: Vec<String>,
    /// An instance is `pending` for the first half of this, `active` but still
    /// `installingbooting` for the second, then `ok`; its address appears when it turns
    /// `active`.
    pub ready_after: Duration,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per key per one-second window before 429 (Vultr documents 30);
    /// `None` means unlimited (unless `bucket` is set).
    pub rate_limit: Option<u32>,
    /// A token bucket per key instead of the sliding window.
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429, in whole seconds (at least 1).
    pub retry_after: Duration,
    /// Keep every request, with its body and answer, in [`VultrSandbox::requests`].
    pub request_log: bool,
    /// Random, seeded misbehaviour on top of queued faults; see [`Chaos`].
    pub chaos: Option<Chaos>,
}

impl Default for VultrSandboxConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            ready_after: Duration::from_millis(200),
            latency: Duration::ZERO,
            rate_limit: None,
            bucket: None,
            retry_after: Duration::from_secs(1),
            request_log: true,
            chaos: None,
        }
    }
}

/// A running Vultr simulator on loopback.
pub struct VultrSandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<VultrDialect>>,
    cloud: Arc<Cloud>,
}

/// What the handlers share: the lifecycle delay and the inventory, one lock per kind.
pub(crate) struct Cloud {
    ready_after: Duration,
    world: Mutex<World>,
    domains: Mutex<Domains>,
    databases: Mutex<Databases>,
}

impl Cloud {
    /// A panic in one handler must not poison the inventory for every later request.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn domains(&self) -> MutexGuard<'_, Domains> {
        self.domains.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn databases(&self) -> MutexGuard<'_, Databases> {
        self.databases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl VultrSandbox {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: VultrSandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: VultrSandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            ready_after: config.ready_after,
            world: Mutex::new(World::new()),
            domains: Mutex::new(Domains::new()),
            databases: Mutex::new(Databases::new()),
        });
        let door = Arc::new(FrontDoor::new(
            VultrDialect,
            DoorConfig {
                tokens: config.tokens,
                latency: config.latency,
                retry_after: config.retry_after,
                rate_limit: config.rate_limit,
                bucket: config.bucket,
                rate_window: RATE_WINDOW,
                nominal_limit: 0,
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

    /// Every instance as `GET /instances/{id}` would show it right now, oldest first.
    pub fn instances(&self) -> Vec<Value> {
        self.cloud.world().instances()
    }

    /// How many instances were ever created carrying `tag`, deleted ones included: a
    /// duplicate create shows up here even after it was cleaned up.
    pub fn creates_by_tag(&self, tag: &str) -> usize {
        self.cloud.world().creates_with_tag(tag)
    }

    /// While on, whatever the sandbox is making stays in its in-between state (an instance
    /// `pending`, a database `Rebuilding`) however long it has been: a test holds a provision
    /// there, acts, then releases it.
    pub fn hold(&self, on: bool) {
        self.cloud.world().hold(on);
        self.cloud.databases().hold(on);
    }

    /// Answers the next `n` instance listings empty, as a listing that has not caught up
    /// with the creates yet.
    pub fn lag_listings(&self, n: u32) {
        self.cloud.world().lag_listings(n);
    }

    /// Creates an instance as if someone made it in Vultr's console, bypassing the API (no
    /// request is logged, no fault applies); it is ready at once.
    pub fn create_instance_directly(
        &self,
        label: &str,
        region: &str,
        plan: &str,
        tags: &[&str],
    ) -> Value {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        self.cloud
            .world()
            .create_instance(label, region, plan, tags, Duration::ZERO)
    }
}

impl VultrSandbox {
    /// Every domain as `GET /domains/{dns-domain}` would show it right now, by name.
    pub fn domains(&self) -> Vec<Value> {
        self.cloud.domains().domains()
    }

    /// The records of `domain` as `GET /domains/{dns-domain}/records` would list them; none
    /// for a domain the sandbox does not hold.
    pub fn records(&self, domain: &str) -> Vec<Value> {
        self.cloud.domains().records(domain)
    }

    /// How many domains named `domain` were ever created, deleted ones included: a create
    /// repeated after a lost answer shows up here (as a 400 it does not count).
    pub fn domain_creates(&self, domain: &str) -> usize {
        self.cloud.domains().creates_of(domain)
    }

    /// How many TXT records holding `text` (quotes aside) were ever created, deleted ones
    /// included: a marker record made twice shows up here.
    pub fn txt_records_created(&self, text: &str) -> usize {
        self.cloud.domains().txt_creates(text)
    }

    /// Creates a domain as if someone made it in Vultr's console, bypassing the API.
    ///
    /// # Panics
    /// If the name is not one Vultr takes or is taken; a mistake in the calling test.
    pub fn create_domain_directly(&self, domain: &str) -> Value {
        match self.cloud.domains().create(domain, None) {
            Ok(view) => view,
            Err(e) => panic!("create_domain_directly({domain:?}): {}", e.message),
        }
    }
}

impl VultrSandbox {
    /// Every managed database as `GET /databases/{database-id}` would show it right now,
    /// credentials included.
    pub fn databases(&self) -> Vec<Value> {
        self.cloud.databases().databases()
    }

    /// How many databases were ever created tagged `tag`, deleted ones included.
    pub fn database_creates_by_tag(&self, tag: &str) -> usize {
        self.cloud.databases().creates_with_tag(tag)
    }

    /// Every admin password handed out so far: what a test searches StackDock's records and
    /// answers for.
    pub fn database_passwords(&self) -> Vec<String> {
        self.cloud.databases().passwords()
    }

    /// Creates a managed database as if someone made it in Vultr's console, bypassing the
    /// API; it is `Running` at once.
    ///
    /// # Panics
    /// If the engine, version, region or plan is not one the sandbox knows; a mistake in the
    /// calling test.
    pub fn create_database_directly(
        &self,
        label: &str,
        engine: &str,
        version: &str,
        region: &str,
        plan: &str,
    ) -> Value {
        let body = json!({
            "label": label, "database_engine": engine, "database_engine_version": version,
            "region": region, "plan": plan,
        });
        match databases::Spec::from_body(&body) {
            Ok(spec) => self.cloud.databases().create(spec, Duration::ZERO),
            Err(e) => panic!("create_database_directly({label:?}): {}", e.message),
        }
    }
}

sandbox_controls!(VultrSandbox);

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<VultrDialect>>) -> Router {
    Router::new()
        .route("/account", get(instances::account))
        .route("/instances", get(instances::list).post(instances::create))
        .route(
            "/instances/{instance-id}",
            get(instances::get).delete(instances::delete),
        )
        .route("/domains", get(domains::list).post(domains::create))
        .route(
            "/domains/{dns-domain}",
            get(domains::get).delete(domains::delete),
        )
        .route(
            "/domains/{dns-domain}/records",
            get(domains::list_records).post(domains::create_record),
        )
        .route("/databases", get(databases::list).post(databases::create))
        .route(
            "/databases/{database-id}",
            get(databases::get).delete(databases::delete),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks: unknown routes are logged,
        // authenticated and rate limited like everything else.
        .layer(from_fn_with_state(door, front_door::<VultrDialect>))
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    // Vultr's envelope has no code; the front door renders the message and the status.
    ApiError::new(status, "", message)
}

async fn unknown_route() -> ApiError {
    error(StatusCode::NOT_FOUND, "Invalid API endpoint.")
}

struct VultrDialect;

impl Dialect for VultrDialect {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";

    fn error_body(&self, _code: &str, message: &str, _request_id: &str) -> Value {
        json!({ "error": message })
    }

    fn error_body_for(
        &self,
        status: StatusCode,
        _code: &str,
        message: &str,
        _request_id: &str,
    ) -> Value {
        json!({ "error": message, "status": status.as_u16() })
    }

    fn unauthorized(&self) -> ApiError {
        error(
            StatusCode::UNAUTHORIZED,
            "Invalid API token. Please check that your API token is correct.",
        )
    }

    fn rate_limited(&self) -> ApiError {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached - please try your request again later.",
        )
    }

    fn lost_response(&self) -> ApiError {
        error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }

    /// Vultr documents no rate-limit headers, so none are sent (a 429 still says
    /// `Retry-After`).
    fn budget_headers(&self, _budget: &Budget, _headers: &mut HeaderMap) {}
}
