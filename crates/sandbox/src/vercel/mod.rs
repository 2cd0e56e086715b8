//! Vercel API simulator, written against the OpenAPI document Vercel publishes: the current
//! user, projects, deployments from files and their uploads, and project domains, at the root
//! of the host as Vercel serves them (`/v2/user`, `/v11/projects`, `/v13/deployments`,
//! `/v2/files`, `/v10/projects/{idOrName}/domains`, ...).
//!
//! What it holds to, from the document and the digest of it: errors are
//! `{"error": {"code", "message"}}` (Vercel's REST docs; the document gives these endpoints
//! no error body); a 429 adds `error.limit {remaining, reset, resetMs, total}` and every
//! answer carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a project's name is unique
//! (409 otherwise) and deleting it answers 204 and deletes its deployments and domains; a
//! deployment lists its files as `{file, sha, size}` and is refused with `missing_files` (the
//! SHA-1s in `error.missing`) until every content was uploaded with `POST /v2/files`
//! (`x-vercel-digest` = SHA-1 of the body); a deployment goes `QUEUED → BUILDING → READY` (see
//! `world.rs`), or `ERROR` when the test says so, or `CANCELED`; listings answer
//! `pagination`, whose `next` is passed back as `from` (projects: a continuation token) or
//! `until` (deployments, project domains: a timestamp); a project domain is unverified, with a
//! TXT challenge, until the test puts its record in place ([`VercelSandbox::verify_dns`]) and
//! it is asked to verify (`POST .../verify`, a 400 while the challenge is unmet), and is on
//! one project at most (a 400 when it is already on the same project, a 409 on another). Calls may carry `teamId`: the sandbox knows one
//! team besides the personal account, and answers 403 for any other.

mod world;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

use crate::Chaos;
use crate::controls::sandbox_controls;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::{BucketLimit, Budget};
use crate::server::{self, ServerHandle};

use world::World;

/// The window of the sandbox's limiter and of its `X-RateLimit-*` headers.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The limit the headers name when the test sets none. Vercel's figures vary by endpoint and
/// are not documented; this one is high enough that a client honouring the headers is not
/// held up by a test's or a trial's few hundred calls.
const NOMINAL_LIMIT: u32 = 1000;

/// The team every sandbox key may also work in (`?teamId=`).
pub const TEAM_ID: &str = "team_sandbox0000000000000";

#[derive(Clone, Debug)]
pub struct VercelSandboxConfig {
    /// Accepted tokens; any other, or none, gets a 401.
    pub tokens: Vec<String>,
    /// How long a deployment stays `QUEUED`.
    pub queue_after: Duration,
    /// How long a deployment stays `BUILDING` after that.
    pub build_after: Duration,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per token per 60-second sliding window before 429; `None` means
    /// unlimited (unless `bucket` is set).
    pub rate_limit: Option<u32>,
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429.
    pub retry_after: Duration,
    /// Keep every request, with its body and answer, in [`VercelSandbox::requests`].
    pub request_log: bool,
    pub chaos: Option<Chaos>,
}

impl Default for VercelSandboxConfig {
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

/// A running Vercel simulator on loopback.
pub struct VercelSandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<VercelDialect>>,
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

impl VercelSandbox {
    pub async fn start(config: VercelSandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: VercelSandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            world: Mutex::new(World::new(config.queue_after, config.build_after)),
        });
        let total = config.rate_limit.unwrap_or(NOMINAL_LIMIT);
        let retry_after_secs = config.retry_after.as_secs().max(1);
        let door = Arc::new(FrontDoor::new(
            VercelDialect {
                total,
                retry_after_secs,
                rate_headers: AtomicBool::new(true),
            },
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

    /// The API root a Vercel dock points at: the host itself.
    pub fn api_url(&self) -> String {
        self.base_url()
    }

    /// Every project, of the personal account and the team, as `GET /v9/projects` shows it.
    pub fn projects(&self) -> Vec<Value> {
        self.cloud.world().projects()
    }

    /// Every deployment of every project.
    pub fn deployments(&self) -> Vec<Value> {
        self.cloud.world().deployments()
    }

    /// Every project domain, as `GET /v9/projects/{idOrName}/domains/{domain}` shows it.
    pub fn domains(&self) -> Vec<Value> {
        self.cloud.world().domains()
    }

    /// How many domains were ever added to a project named `project_name`, removed ones
    /// included.
    pub fn domain_adds(&self, project_name: &str) -> usize {
        self.cloud.world().domain_adds(project_name)
    }

    /// Adds a domain to a project of the personal account as someone would in Vercel's
    /// dashboard.
    ///
    /// # Panics
    /// If the name is not a domain, the project is not there, or the domain is taken.
    pub fn add_domain_directly(&self, project: &str, name: &str) -> Value {
        self.cloud
            .world()
            .add_domain(world::USER_ID, project, name)
            .unwrap_or_else(|e| panic!("add_domain_directly({name:?}): {}", e.message))
    }

    /// Puts the verification TXT record of `apex` in place: its domains are verified once
    /// asked to be (`POST .../verify`).
    pub fn verify_dns(&self, apex: &str) {
        self.cloud.world().verify_dns(apex);
    }

    /// Sends the rate-limit headers, and a 429's `Retry-After` (`true`, the default), or
    /// says a 429's wait only in its body's `error.limit` (`false`).
    pub fn rate_limit_headers(&self, on: bool) {
        self.door.dialect.rate_headers.store(on, Ordering::Relaxed);
    }

    /// The SHA-1 of every upload received, in order.
    pub fn uploads(&self) -> Vec<String> {
        self.cloud.world().uploads()
    }

    /// Answers the next `n` uploads as usual and keeps none of them, as when Vercel has
    /// dropped contents before the deployment that names them: that deployment is refused
    /// `missing_files`.
    pub fn drop_uploads(&self, n: usize) {
        self.cloud.world().drop_uploads(n);
    }

    /// How many projects named `name` were ever created, deleted ones included.
    pub fn project_creates(&self, name: &str) -> usize {
        self.cloud.world().project_creates(name)
    }

    /// Holds every deployment at `BUILDING` (`true`) until released (`false`); a released
    /// deployment is `READY` once `build_after` has passed from then.
    pub fn hold_deployments_building(&self, held: bool) {
        self.cloud.world().hold(held);
    }

    /// Deployments finishing their build from now on end in `ERROR` with `message`; `None`
    /// lets them become `READY` again.
    pub fn fail_deployments(&self, message: Option<&str>) {
        self.cloud
            .world()
            .fail_deployments(message.map(str::to_string));
    }

    /// Makes a project of the personal account as someone would in Vercel's dashboard (no
    /// request logged, no fault applies).
    ///
    /// # Panics
    /// If the name is not one Vercel takes, or is taken.
    pub fn create_project_directly(&self, name: &str) -> Value {
        self.cloud
            .world()
            .create_project(name, None)
            .unwrap_or_else(|e| panic!("create_project_directly({name:?}): {}", e.message))
    }
}

sandbox_controls!(VercelSandbox);

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<VercelDialect>>) -> Router {
    Router::new()
        .route("/v2/user", get(world::current_user))
        .route("/v11/projects", post(world::create_project))
        .route("/v10/projects", get(world::list_projects))
        .route(
            "/v9/projects/{id_or_name}",
            get(world::get_project).delete(world::delete_project),
        )
        .route("/v13/deployments", post(world::create_deployment))
        .route("/v13/deployments/{id}", get(world::get_deployment))
        .route("/v6/deployments", get(world::list_deployments))
        .route(
            "/v12/deployments/{id}/cancel",
            patch(world::cancel_deployment),
        )
        .route("/v2/files", post(world::upload_file))
        .route(
            "/v10/projects/{id_or_name}/domains",
            post(world::add_project_domain),
        )
        .route(
            "/v9/projects/{id_or_name}/domains",
            get(world::list_project_domains),
        )
        .route(
            "/v9/projects/{id_or_name}/domains/{domain}",
            get(world::get_project_domain).delete(world::remove_project_domain),
        )
        .route(
            "/v9/projects/{id_or_name}/domains/{domain}/verify",
            post(world::verify_project_domain),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks.
        .layer(from_fn_with_state(door, front_door::<VercelDialect>))
}

/// An error in Vercel's words.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

async fn unknown_route() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "The requested path was not found",
    )
}

struct VercelDialect {
    /// The limit named in a 429's `error.limit`.
    total: u32,
    retry_after_secs: u64,
    /// Whether answers carry the rate-limit headers and a 429 its `Retry-After`; without
    /// them a 429 says its wait only in `error.limit`, as Vercel's error documentation does.
    rate_headers: AtomicBool,
}

impl Dialect for VercelDialect {
    const REQUEST_ID_HEADER: &'static str = "x-vercel-id";

    fn error_body(&self, code: &str, message: &str, _request_id: &str) -> Value {
        json!({ "error": { "code": code, "message": message } })
    }

    /// A 429 says when the limit resets, in `error.limit`.
    fn error_body_for(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        request_id: &str,
    ) -> Value {
        let mut body = self.error_body(code, message, request_id);
        if status == StatusCode::TOO_MANY_REQUESTS {
            let reset_ms =
                chrono::Utc::now().timestamp_millis() as u64 + self.retry_after_secs * 1000;
            body["error"]["limit"] = json!({
                "remaining": 0,
                "reset": reset_ms / 1000,
                "resetMs": reset_ms,
                "total": self.total,
            });
        }
        body
    }

    fn unauthorized(&self) -> ApiError {
        error(
            StatusCode::UNAUTHORIZED,
            "forbidden",
            "The request is missing an authentication token",
        )
    }

    fn rate_limited(&self) -> ApiError {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Rate limit exceeded",
        )
    }

    fn lost_response(&self) -> ApiError {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "An unexpected internal error occurred",
        )
    }

    fn sends_retry_after(&self) -> bool {
        self.rate_headers.load(Ordering::Relaxed)
    }

    fn budget_headers(&self, budget: &Budget, headers: &mut HeaderMap) {
        if !self.rate_headers.load(Ordering::Relaxed) {
            return;
        }
        let pairs = [
            ("x-ratelimit-limit", u64::from(budget.limit)),
            ("x-ratelimit-remaining", u64::from(budget.remaining)),
            ("x-ratelimit-reset", budget.reset_epoch),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}
