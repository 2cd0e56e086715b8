//! Netlify API simulator, written against Netlify's published Swagger 2.0 document: the
//! current user, sites, file-digest deploys and their uploads, DNS zones and records, all
//! under `/api/v1` (the document's `basePath`).
//!
//! What it holds to, from the document and the digest of it: errors are `{code, message}`;
//! lists are bare arrays paged with `page` and `per_page`, with no paging headers; a site is
//! created with `POST /sites` (201) and its name is unique (422 otherwise); a deploy is created
//! with `{files: {"/path": sha1}}` and lists in `required` the SHA-1s Netlify has not seen,
//! which are uploaded with `PUT /deploys/{id}/files/{path}`; an `async` deploy is answered
//! `new` and is `preparing` before it is `prepared`; a deploy goes `prepared → uploading →
//! processing → ready` (see `world.rs`); deleting a site deletes its deploys; DNS records have
//! no update. Netlify
//! documents no rate limit and no rate-limit headers: none are sent (the limiter, faults and
//! chaos work as for every simulator).

mod world;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::Chaos;
use crate::controls::sandbox_controls;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::{BucketLimit, Budget};
use crate::server::{self, ServerHandle};

use world::World;

/// The document's `basePath`: every path is under it.
pub const BASE_PATH: &str = "/api/v1";

/// The window of the sandbox's own limiter when a test sets one; Netlify documents none.
const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct NetlifySandboxConfig {
    /// Accepted personal access tokens; any other, or none, gets a 401.
    pub tokens: Vec<String>,
    /// How long an `async` deploy stays `preparing`.
    pub prepare_after: Duration,
    /// How long a deploy stays `processing` once its files are all there.
    pub process_after: Duration,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per token per 60-second sliding window before 429; `None` means
    /// unlimited (unless `bucket` is set). Netlify documents no limit: this is for tests.
    pub rate_limit: Option<u32>,
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429.
    pub retry_after: Duration,
    /// Keep every request, with its body and answer, in [`NetlifySandbox::requests`].
    pub request_log: bool,
    pub chaos: Option<Chaos>,
}

impl Default for NetlifySandboxConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            prepare_after: Duration::from_millis(200),
            process_after: Duration::from_millis(200),
            latency: Duration::ZERO,
            rate_limit: None,
            bucket: None,
            retry_after: Duration::from_secs(1),
            request_log: true,
            chaos: None,
        }
    }
}

/// A running Netlify simulator on loopback.
pub struct NetlifySandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<NetlifyDialect>>,
    cloud: Arc<Cloud>,
}

pub(crate) struct Cloud {
    world: Mutex<World>,
}

impl Cloud {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl NetlifySandbox {
    pub async fn start(config: NetlifySandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: NetlifySandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            world: Mutex::new(World::new(config.prepare_after, config.process_after)),
        });
        let door = Arc::new(FrontDoor::new(
            NetlifyDialect,
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

    /// The API root a Netlify dock points at: [`NetlifySandbox::base_url`] and `/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}{BASE_PATH}", self.base_url())
    }

    /// Every site as `GET /sites` shows it now, by id.
    pub fn sites(&self) -> Vec<Value> {
        self.cloud.world().sites()
    }

    /// Every deploy, of every site, by id.
    pub fn deploys(&self) -> Vec<Value> {
        self.cloud.world().deploys()
    }

    /// Every DNS zone, with its records.
    pub fn zones(&self) -> Vec<Value> {
        self.cloud.world().zones()
    }

    /// Every DNS record of every zone.
    pub fn records(&self) -> Vec<Value> {
        self.cloud.world().records()
    }

    /// Every file upload received, as (deploy id, path), in order.
    pub fn uploads(&self) -> Vec<(String, String)> {
        self.cloud.world().uploads()
    }

    /// How many sites named `name` were ever created, deleted ones included.
    pub fn site_creates(&self, name: &str) -> usize {
        self.cloud.world().site_creates(name)
    }

    /// Holds every deploy whose files are all there at `processing` (`true`) until released
    /// (`false`); a released deploy is `ready` once `process_after` has passed from then.
    pub fn hold_deploys_processing(&self, held: bool) {
        self.cloud.world().hold(held);
    }

    /// Deploys finishing processing from now on end in `error` with `message`; `None` lets
    /// them become `ready` again.
    pub fn fail_deploys(&self, message: Option<&str>) {
        self.cloud.world().fail_deploys(message.map(str::to_string));
    }

    /// Shows a deploy waiting for files in `state` (say `new` or `enqueued`) in place of
    /// Netlify's `prepared` and `uploading`, as a server may that follows only the document
    /// (which types `state` as any string); `None` shows Netlify's own again.
    pub fn show_waiting_deploys_as(&self, state: Option<&'static str>) {
        self.cloud.world().show_waiting_deploys_as(state);
    }

    /// Makes `GET /dns_zones` answer each zone with an empty `records` list (`true`), which
    /// the document allows, or with its records again (`false`).
    pub fn list_zones_without_records(&self, without: bool) {
        self.cloud.world().list_zones_without_records(without);
    }

    /// Makes a site as someone would in Netlify's UI (no request logged, no fault applies).
    ///
    /// # Panics
    /// If the name is not one Netlify takes, or is taken.
    pub fn create_site_directly(&self, name: &str) -> Value {
        self.cloud
            .world()
            .create_site(name)
            .unwrap_or_else(|e| panic!("create_site_directly({name:?}): {}", e.message))
    }

    /// Makes a DNS zone as someone would in Netlify's UI.
    ///
    /// # Panics
    /// If the name is not a domain, or has a zone already.
    pub fn create_zone_directly(&self, name: &str) -> Value {
        self.cloud
            .world()
            .create_zone(name)
            .unwrap_or_else(|e| panic!("create_zone_directly({name:?}): {}", e.message))
    }
}

sandbox_controls!(NetlifySandbox);

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<NetlifyDialect>>) -> Router {
    let api = Router::new()
        .route("/user", get(world::current_user))
        .route("/sites", get(world::list_sites).post(world::create_site))
        .route(
            "/sites/{site_id}",
            get(world::get_site).delete(world::delete_site),
        )
        .route(
            "/sites/{site_id}/deploys",
            get(world::list_deploys).post(world::create_deploy),
        )
        .route("/deploys/{deploy_id}", get(world::get_deploy))
        .route(
            "/deploys/{deploy_id}/files/{*path}",
            put(world::upload_file),
        )
        .route("/deploys/{deploy_id}/cancel", post(world::cancel_deploy))
        .route(
            "/dns_zones",
            get(world::list_zones).post(world::create_zone),
        )
        .route(
            "/dns_zones/{zone_id}",
            get(world::get_zone).delete(world::delete_zone),
        )
        .route(
            "/dns_zones/{zone_id}/dns_records",
            get(world::list_records).post(world::create_record),
        )
        .route(
            "/dns_zones/{zone_id}/dns_records/{dns_record_id}",
            axum::routing::delete(world::delete_record),
        )
        .method_not_allowed_fallback(unknown_route);
    Router::new()
        .nest(BASE_PATH, api)
        .fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks.
        .layer(from_fn_with_state(door, front_door::<NetlifyDialect>))
}

/// An error in Netlify's words; its `code` is the status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, status.as_str(), message)
}

async fn unknown_route() -> ApiError {
    error(StatusCode::NOT_FOUND, "Not Found")
}

struct NetlifyDialect;

impl Dialect for NetlifyDialect {
    const REQUEST_ID_HEADER: &'static str = "x-nf-request-id";

    /// `{code, message}`, the code being the status.
    fn error_body(&self, code: &str, message: &str, _request_id: &str) -> Value {
        match code.parse::<i64>() {
            Ok(code) => json!({ "code": code, "message": message }),
            Err(_) => json!({ "message": message }),
        }
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "401", "Access Denied")
    }

    fn rate_limited(&self) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "429", "Too Many Requests")
    }

    fn lost_response(&self) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500",
            "Internal Server Error",
        )
    }

    /// Netlify documents no rate-limit headers, so none are sent.
    fn budget_headers(&self, _budget: &Budget, _headers: &mut HeaderMap) {}
}
