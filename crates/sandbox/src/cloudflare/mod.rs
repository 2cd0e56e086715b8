//! Cloudflare API simulator, written against Cloudflare's published OpenAPI document: the
//! token check, zones and their DNS records, Pages projects with their direct-upload
//! deployments (see `pages.rs`, which also answers the asset calls of Cloudflare's CLI that
//! the document leaves out), all under `/client/v4`.
//!
//! What it holds to, from the document and the digest of it: every answer is the envelope
//! `{success, errors: [{code, message}], messages, result}` (a failure has `success: false`
//! and `result: null`); listings add `result_info {page, per_page, count, total_count}` and
//! are paged with `page` and `per_page` (`GET /zones` takes 5 to 50 a page, 20 by default;
//! records 100 by default); `POST /zones` names the account (`account.id`) and a zone's name
//! is unique (refused otherwise); a new zone is `pending` until its name servers point at
//! Cloudflare ([`CloudflareSandbox::set_zone_status`] moves it on); deleting a zone deletes
//! its records. Cloudflare's docs (not the document) give a limit of 1,200 requests per five
//! minutes and a 429 with `Retry-After`; the header names of its rate-limit headers vary
//! between versions of those docs, so none are sent besides `Retry-After`.

mod pages;
mod world;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::Chaos;
use crate::controls::sandbox_controls;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::{BucketLimit, Budget};
use crate::server::{self, ServerHandle};

use pages::Pages;
use world::World;

/// Every path is under it, as in the document's server URL.
pub const BASE_PATH: &str = "/client/v4";

/// The account every sandbox token reaches: a dock's `account_id` setting names it.
pub const ACCOUNT_ID: &str = "01a7362d577a6c3019a474fd6f485823";

/// Cloudflare's documented window: 1,200 requests per five minutes.
const RATE_WINDOW: Duration = Duration::from_secs(300);
const DOCUMENTED_LIMIT: u32 = 1200;

/// The error codes the sandbox answers with. The document's error items take codes from
/// 1000 up and lists only `7003` (no route) as an example; the others are Cloudflare's
/// well-known ones (`10000` authentication, `1015` rate limited, `1061` zone exists) or the
/// sandbox's own choice for a refusal the document gives no code for.
pub(crate) mod codes {
    pub const NOT_FOUND: &str = "7003";
    pub const AUTHENTICATION: &str = "10000";
    pub const RATE_LIMITED: &str = "1015";
    pub const ZONE_EXISTS: &str = "1061";
    pub const INVALID_REQUEST: &str = "1001";
    pub const DNS_INVALID: &str = "1004";
    pub const UNAUTHORIZED_ACCOUNT: &str = "1003";
    pub const INTERNAL: &str = "1000";
    /// Pages answers in its own range, from 8000000 (wrangler's `pages/errors.ts` names
    /// `8000000`, an unknown error, and `8000013`, an upload token refused); the others are
    /// the sandbox's choice in that range.
    pub const PAGES_NAME_TAKEN: &str = "8000002";
    pub const PAGES_INVALID_NAME: &str = "8000003";
    pub const PAGES_PROJECT_NOT_FOUND: &str = "8000007";
    pub const PAGES_DEPLOYMENT_NOT_FOUND: &str = "8000009";
    pub const PAGES_BAD_UPLOAD_TOKEN: &str = "8000013";
}

#[derive(Clone, Debug)]
pub struct CloudflareSandboxConfig {
    /// Accepted API tokens; any other, or none, gets a 401.
    pub tokens: Vec<String>,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per token per five-minute sliding window before 429; `None` means
    /// unlimited (unless `bucket` is set). Cloudflare's own is 1,200.
    pub rate_limit: Option<u32>,
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429.
    pub retry_after: Duration,
    /// Keep every request, with its body and answer, in [`CloudflareSandbox::requests`].
    pub request_log: bool,
    pub chaos: Option<Chaos>,
    /// How long a Pages deployment stays `queued`.
    pub queue_after: Duration,
    /// How long a Pages deployment stays in `build` after that.
    pub build_after: Duration,
}

impl Default for CloudflareSandboxConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            queue_after: Duration::from_millis(200),
            build_after: Duration::from_millis(200),
            latency: Duration::ZERO,
            rate_limit: None,
            bucket: None,
            retry_after: Duration::from_secs(1),
            request_log: true,
            chaos: None,
        }
    }
}

/// A running Cloudflare simulator on loopback.
pub struct CloudflareSandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<CloudflareDialect>>,
    cloud: Arc<Cloud>,
}

pub(crate) struct Cloud {
    world: Mutex<World>,
    pages: Mutex<Pages>,
}

impl Cloud {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pages(&self) -> MutexGuard<'_, Pages> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CloudflareSandbox {
    pub async fn start(config: CloudflareSandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: CloudflareSandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            world: Mutex::new(World::new()),
            pages: Mutex::new(Pages::new(config.queue_after, config.build_after)),
        });
        let door = Arc::new(FrontDoor::new(
            CloudflareDialect {
                cloud: Arc::clone(&cloud),
            },
            DoorConfig {
                tokens: config.tokens,
                latency: config.latency,
                retry_after: config.retry_after,
                rate_limit: config.rate_limit,
                bucket: config.bucket,
                rate_window: RATE_WINDOW,
                nominal_limit: DOCUMENTED_LIMIT,
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

    /// The API root a Cloudflare dock points at: [`CloudflareSandbox::base_url`] and
    /// `/client/v4`.
    pub fn api_url(&self) -> String {
        format!("{}{BASE_PATH}", self.base_url())
    }

    /// Every zone, as `GET /zones` shows it.
    pub fn zones(&self) -> Vec<Value> {
        self.cloud.world().zones()
    }

    /// Every DNS record of every zone.
    pub fn records(&self) -> Vec<Value> {
        self.cloud.world().records()
    }

    /// Sets a zone's `status` (`initializing`, `pending`, `active`, `moved`), as Cloudflare
    /// does once it sees the domain's name servers; false if there is no such zone.
    pub fn set_zone_status(&self, zone_id: &str, status: &str) -> bool {
        self.cloud.world().set_zone_status(zone_id, status)
    }

    /// Makes a zone as someone would in Cloudflare's dashboard (no request logged, no fault
    /// applies).
    ///
    /// # Panics
    /// If the name is not a domain, or has a zone already.
    pub fn create_zone_directly(&self, name: &str) -> Value {
        self.cloud
            .world()
            .create_zone(name)
            .unwrap_or_else(|e| panic!("create_zone_directly({name:?}): {}", e.message))
    }

    /// Every Pages project, as `GET .../pages/projects` shows it.
    pub fn pages_projects(&self) -> Vec<Value> {
        self.cloud.pages().projects()
    }

    /// Every Pages deployment of every project.
    pub fn pages_deployments(&self) -> Vec<Value> {
        self.cloud.pages().deployments()
    }

    /// The hashes the account's asset store holds.
    pub fn stored_assets(&self) -> Vec<String> {
        self.cloud.pages().stored_assets()
    }

    /// The hash of every asset `POST /pages/assets/upload` received, in order.
    pub fn asset_uploads(&self) -> Vec<String> {
        self.cloud.pages().uploads()
    }

    /// Every upload token handed out whose project still exists: what a test searches for in
    /// everything the client kept.
    pub fn upload_tokens(&self) -> Vec<String> {
        self.cloud.pages().tokens()
    }

    /// How many Pages projects named `name` were ever created, deleted ones included.
    pub fn project_creates(&self, name: &str) -> usize {
        self.cloud.pages().project_creates(name)
    }

    /// For each deployment of the project named `project`, oldest first: the paths its
    /// manifest serves, and the configuration parts (`_headers`, `_redirects`) it came with.
    pub fn pages_deployment_contents(
        &self,
        project: &str,
    ) -> Vec<(Vec<String>, std::collections::BTreeMap<String, String>)> {
        self.cloud.pages().deployment_contents(project)
    }

    /// How many deployments of the project named `project` were ever created.
    pub fn deployment_creates(&self, project: &str) -> usize {
        self.cloud.pages().deployment_creates(project)
    }

    /// Holds every Pages deployment in its `build` stage (`true`) until released (`false`);
    /// a released deployment reaches `deploy` / `success` once `build_after` has passed from
    /// then.
    pub fn hold_deployments(&self, held: bool) {
        self.cloud.pages().hold(held);
    }

    /// Pages deployments finishing their build from now on end it in `failure` (`true`), or
    /// succeed again (`false`).
    pub fn fail_deployments(&self, fail: bool) {
        self.cloud.pages().fail_deployments(fail);
    }

    /// Makes the Pages project listing ignore `page` and `per_page` and answer every project
    /// with no total (`true`), as the document describes that listing, or page it again
    /// (`false`).
    pub fn list_projects_unpaged(&self, unpaged: bool) {
        self.cloud.pages().list_projects_unpaged(unpaged);
    }

    /// Makes a Pages project as someone would in Cloudflare's dashboard (no request logged,
    /// no fault applies).
    ///
    /// # Panics
    /// If the name is not one Cloudflare takes, or is taken.
    pub fn create_project_directly(&self, name: &str) -> Value {
        self.cloud
            .pages()
            .create_project(name, "main")
            .unwrap_or_else(|e| panic!("create_project_directly({name:?}): {}", e.message))
    }
}

sandbox_controls!(CloudflareSandbox);

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<CloudflareDialect>>) -> Router {
    let api = Router::new()
        .route("/user/tokens/verify", get(world::verify_token))
        .route("/zones", get(world::list_zones).post(world::create_zone))
        .route(
            "/zones/{zone_id}",
            get(world::get_zone).delete(world::delete_zone),
        )
        .route(
            "/zones/{zone_id}/dns_records",
            get(world::list_records).post(world::create_record),
        )
        .route(
            "/zones/{zone_id}/dns_records/{dns_record_id}",
            delete(world::delete_record),
        )
        .route(
            "/accounts/{account_id}/pages/projects",
            get(pages::list_projects).post(pages::create_project),
        )
        .route(
            "/accounts/{account_id}/pages/projects/{project_name}",
            get(pages::get_project).delete(pages::delete_project),
        )
        .route(
            "/accounts/{account_id}/pages/projects/{project_name}/upload-token",
            get(pages::upload_token),
        )
        .route(
            "/accounts/{account_id}/pages/projects/{project_name}/deployments",
            get(pages::list_deployments).post(pages::create_deployment),
        )
        .route(
            "/accounts/{account_id}/pages/projects/{project_name}/deployments/{deployment_id}",
            get(pages::get_deployment),
        )
        // An upload token is good for the asset calls only.
        .route_layer(from_fn_with_state(
            Arc::clone(&cloud),
            pages::refuse_upload_tokens,
        ))
        .route("/pages/assets/check-missing", post(pages::check_missing))
        .route("/pages/assets/upload", post(pages::upload_assets))
        .route("/pages/assets/upsert-hashes", post(pages::upsert_hashes))
        .method_not_allowed_fallback(unknown_route);
    Router::new()
        .nest(BASE_PATH, api)
        .fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks.
        .layer(from_fn_with_state(door, front_door::<CloudflareDialect>))
}

/// An error in Cloudflare's words.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

async fn unknown_route() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "No route for that URI",
    )
}

struct CloudflareDialect {
    /// Knows the upload tokens Pages handed out.
    cloud: Arc<Cloud>,
}

impl Dialect for CloudflareDialect {
    const REQUEST_ID_HEADER: &'static str = "cf-ray";

    /// A Pages upload token is let in; the asset calls take nothing else (`pages.rs`).
    fn minted(&self, credential: &str) -> bool {
        self.cloud.pages().is_token(credential)
    }

    /// The failure envelope; a code that is not Cloudflare's number is reported as the
    /// sandbox's internal one.
    fn error_body(&self, code: &str, message: &str, _request_id: &str) -> Value {
        let code = code
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 1000)
            .unwrap_or(1000);
        json!({
            "success": false,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": null,
        })
    }

    fn unauthorized(&self) -> ApiError {
        error(
            StatusCode::UNAUTHORIZED,
            codes::AUTHENTICATION,
            "Authentication error",
        )
    }

    fn rate_limited(&self) -> ApiError {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMITED,
            "You are being rate limited",
        )
    }

    fn lost_response(&self) -> ApiError {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "Internal Server Error",
        )
    }

    /// Only `Retry-After` (sent by the front door with a 429): see the module's note.
    fn budget_headers(&self, _budget: &Budget, _headers: &mut HeaderMap) {}
}
