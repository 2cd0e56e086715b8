//! Turso Platform API simulator, written against Turso's published OpenAPI document:
//! token validation, the organization, locations, groups, databases and their tokens.
//!
//! What it holds to, from the document: errors are `{"error": "<message>"}`; a group is
//! created with `name` and `location` and answered 409 when it exists; a database is created
//! with `name` and `group` (the group must exist: 400 `group not found`), answered
//! `{database: {DbId, Hostname, Name}}`, and 409 when the name is taken; a database has no
//! status and is there as soon as it is created; deleting a group deletes its databases;
//! lists are not paginated. Turso documents no 401 body and no rate limit: a refused key
//! gets 401 with the same error envelope, and no rate-limit headers are sent (the limiter,
//! faults and chaos work as for every simulator).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use stackdock_sandbox::{Fault, TursoSandbox, TursoSandboxConfig};
//!
//! let sandbox = TursoSandbox::start(TursoSandboxConfig {
//!     tokens: vec!["turso-sandbox-key".into()],
//!     organization: "acme".into(),
//!     ..TursoSandboxConfig::default()
//! })
//! .await?;
//! sandbox.inject(Fault::lose_response(Some("POST"), "/v1/organizations/acme/databases", 1));
//! // Point a Turso client at sandbox.base_url() ...
//! println!("{:?}", sandbox.databases());
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod world;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Chaos;
use crate::controls::sandbox_controls;
use crate::front_door::{ApiError, Dialect, DoorConfig, FrontDoor, front_door};
use crate::ratelimit::{BucketLimit, Budget};
use crate::server::{self, ServerHandle};

use world::World;

/// The window of the sandbox's own limiter when a test sets one; Turso documents none.
const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct TursoSandboxConfig {
    /// Accepted platform API tokens. Any other token, or none, gets a 401; with an empty
    /// list every request is refused.
    pub tokens: Vec<String>,
    /// The slug of the one organization the tokens reach; other slugs are answered 404.
    pub organization: String,
    /// Added before every response.
    pub latency: Duration,
    /// Requests allowed per token per 60-second sliding window before 429; `None` means
    /// unlimited (unless `bucket` is set). Turso documents no limit: this is for tests.
    pub rate_limit: Option<u32>,
    /// A token bucket per token instead of the sliding window.
    pub bucket: Option<BucketLimit>,
    /// `Retry-After` sent with a 429, in whole seconds (at least 1).
    pub retry_after: Duration,
    /// Keep every request, with its body and answer, in [`TursoSandbox::requests`].
    pub request_log: bool,
    /// Random, seeded misbehaviour on top of queued faults; see [`Chaos`].
    pub chaos: Option<Chaos>,
}

impl Default for TursoSandboxConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            organization: "sandbox".into(),
            latency: Duration::ZERO,
            rate_limit: None,
            bucket: None,
            retry_after: Duration::from_secs(1),
            request_log: true,
            chaos: None,
        }
    }
}

/// A running Turso simulator on loopback.
pub struct TursoSandbox {
    server: ServerHandle,
    door: Arc<FrontDoor<TursoDialect>>,
    cloud: Arc<Cloud>,
}

/// What the handlers share: the organization and the inventory.
pub(crate) struct Cloud {
    organization: String,
    world: Mutex<World>,
}

impl Cloud {
    /// A panic in one handler must not poison the inventory for every later request.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TursoSandbox {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: TursoSandboxConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: TursoSandboxConfig) -> io::Result<Self> {
        let (listener, local) = server::bind(addr).await?;
        let cloud = Arc::new(Cloud {
            organization: config.organization.clone(),
            world: Mutex::new(World::new(&config.organization)),
        });
        let door = Arc::new(FrontDoor::new(
            TursoDialect,
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

    /// The organization slug the sandbox serves.
    pub fn organization(&self) -> &str {
        &self.cloud.organization
    }

    /// Every database as `GET .../databases` would show it right now, sorted by name.
    pub fn databases(&self) -> Vec<Value> {
        self.cloud.world().databases()
    }

    /// Every group as `GET .../groups` would show it right now, sorted by name.
    pub fn groups(&self) -> Vec<Value> {
        self.cloud.world().groups()
    }

    /// How many databases named `name` were ever created, deleted ones included: a
    /// create repeated after a lost answer shows up here (as a 409 it does not count).
    pub fn creates_of(&self, name: &str) -> usize {
        self.cloud.world().creates_of(name)
    }

    /// Every database token handed out so far, still valid or not: what a test searches
    /// StackDock's database and answers for.
    pub fn minted_tokens(&self) -> Vec<String> {
        self.cloud.world().minted_tokens()
    }

    /// The tokens of `database` that still work: minted and not revoked since by a rotation
    /// (`POST .../auth/rotate`) of its tokens.
    pub fn working_tokens(&self, database: &str) -> Vec<String> {
        self.cloud.world().working_tokens(database)
    }

    /// Creates a database as if someone made it with Turso's CLI, bypassing the API (no
    /// request is logged, no fault applies); its group is made in `location` if missing.
    ///
    /// # Panics
    /// If `name` is not a name Turso accepts; that is a mistake in the calling test.
    pub fn create_database_directly(&self, name: &str, group: &str, location: &str) -> Value {
        let mut world = self.cloud.world();
        world.ensure_group(group, location);
        match world.create_database(name, group) {
            Ok(db) => db,
            Err(e) => panic!("create_database_directly({name:?}): {}", e.message),
        }
    }
}

sandbox_controls!(TursoSandbox);

fn router(cloud: Arc<Cloud>, door: Arc<FrontDoor<TursoDialect>>) -> Router {
    let org = "/v1/organizations/{organizationSlug}";
    Router::new()
        .route("/v1/auth/validate", get(world::validate))
        .route("/v1/locations", get(world::list_locations))
        .route(org, get(world::get_organization))
        .route(
            &format!("{org}/groups"),
            get(world::list_groups).post(world::create_group),
        )
        .route(
            &format!("{org}/groups/{{groupName}}"),
            get(world::get_group).delete(world::delete_group),
        )
        .route(
            &format!("{org}/databases"),
            get(world::list_databases).post(world::create_database),
        )
        .route(
            &format!("{org}/databases/{{databaseName}}"),
            get(world::get_database).delete(world::delete_database),
        )
        .route(
            &format!("{org}/databases/{{databaseName}}/auth/tokens"),
            post(world::create_token),
        )
        .route(
            &format!("{org}/databases/{{databaseName}}/auth/rotate"),
            post(world::rotate_tokens),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(cloud)
        // Added last so it also wraps the fallbacks: unknown routes are logged,
        // authenticated and rate limited like everything else.
        .layer(from_fn_with_state(door, front_door::<TursoDialect>))
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    // Turso's envelope has no code; the front door renders only the message.
    ApiError::new(status, "", message)
}

async fn unknown_route() -> ApiError {
    error(StatusCode::NOT_FOUND, "not found")
}

struct TursoDialect;

impl Dialect for TursoDialect {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";

    fn error_body(&self, _code: &str, message: &str, _request_id: &str) -> Value {
        json!({ "error": message })
    }

    fn unauthorized(&self) -> ApiError {
        error(StatusCode::UNAUTHORIZED, "token is invalid or expired")
    }

    fn rate_limited(&self) -> ApiError {
        error(StatusCode::TOO_MANY_REQUESTS, "too many requests")
    }

    fn lost_response(&self) -> ApiError {
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// Turso documents no rate-limit headers, so none are sent.
    fn budget_headers(&self, _budget: &Budget, _headers: &mut HeaderMap) {}
}
