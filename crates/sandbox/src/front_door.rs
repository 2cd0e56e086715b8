//! The middleware every simulated request passes through before (and after) the
//! provider's handlers: request log and counts, authentication, rate limiting, fault
//! injection (queued faults and chaos), error rendering and latency.
//!
//! A request meets them in this order, and the first that has a say decides:
//! authentication (401), the rate limit (429), a chaos storm (429), a queued fault,
//! then the chaos dice. So nothing ever hides a 401 or a limiter's 429, and a queued
//! fault is never spent on a request that was going to be refused anyway.
//!
//! Handlers stay provider-logic only. They report failures as [`ApiError`], and the
//! front door renders the body through the provider's [`Dialect`], so every error,
//! including 401s, 429s and injected faults, carries the same envelope and request id.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::chaos::{Chaos, ChaosCounts, ChaosEngine, Mischief};
use crate::fault::{Fault, FaultQueue, FaultResponse, error_wording};
use crate::multipart;
use crate::ratelimit::{BucketLimit, Budget, RateLimiter};
use crate::server::Hangup;
use crate::{RecordedRequest, RequestCounts};

/// How one provider words the cross-cutting parts of its API.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// Header that carries the request id on every answer.
    const REQUEST_ID_HEADER: &'static str;

    /// The provider's error envelope.
    fn error_body(&self, code: &str, message: &str, request_id: &str) -> serde_json::Value;
    /// The envelope for an answer of `status`, for providers that repeat the status in the
    /// body (Vultr's `{"error", "status"}`); the others ignore it.
    fn error_body_for(
        &self,
        _status: StatusCode,
        code: &str,
        message: &str,
        request_id: &str,
    ) -> serde_json::Value {
        self.error_body(code, message, request_id)
    }
    fn unauthorized(&self) -> ApiError;
    fn rate_limited(&self) -> ApiError;
    /// What a client sees when the work was done but the answer got lost on the way.
    fn lost_response(&self) -> ApiError;
    fn budget_headers(&self, budget: &Budget, headers: &mut HeaderMap);
    /// Whether a 429 carries `Retry-After`; a dialect may say its wait elsewhere only.
    fn sends_retry_after(&self) -> bool {
        true
    }

    fn credential<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        bearer_token(headers)
    }

    /// Whether `credential`, which is none of the configured tokens, is one the provider
    /// handed out itself (Cloudflare Pages' upload token). None, unless a dialect says so.
    fn minted(&self, _credential: &str) -> bool {
        false
    }
}

/// A failed request, as a handler reports it. The body is rendered later by the front
/// door, which knows the provider's envelope and the request id.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub(crate) struct DoorConfig {
    pub(crate) tokens: Vec<String>,
    pub(crate) latency: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) bucket: Option<BucketLimit>,
    pub(crate) rate_window: Duration,
    pub(crate) nominal_limit: u32,
    pub(crate) request_log: bool,
    pub(crate) chaos: Option<Chaos>,
}

pub(crate) struct FrontDoor<D> {
    pub(crate) dialect: D,
    tokens: Vec<String>,
    latency: Duration,
    retry_after_secs: u64,
    books: Mutex<Books>,
}

struct Books {
    log: Vec<RecordedRequest>,
    /// Off for long benchmarks, whose logs would otherwise grow without bound; the
    /// counts below are kept either way.
    logging: bool,
    counts: RequestCounts,
    faults: FaultQueue,
    limiter: RateLimiter,
    chaos: ChaosEngine,
}

impl<D: Dialect> FrontDoor<D> {
    pub(crate) fn new(dialect: D, config: DoorConfig) -> Self {
        // Retry-After is whole seconds, and 0 would invite a hot retry loop.
        let retry_after_secs =
            config.retry_after.as_secs() + u64::from(config.retry_after.subsec_nanos() > 0);
        Self {
            dialect,
            tokens: config.tokens,
            latency: config.latency,
            retry_after_secs: retry_after_secs.max(1),
            books: Mutex::new(Books {
                log: Vec::new(),
                logging: config.request_log,
                counts: RequestCounts::default(),
                faults: FaultQueue::default(),
                limiter: RateLimiter::new(
                    config.rate_limit,
                    config.bucket,
                    config.rate_window,
                    config.nominal_limit,
                ),
                chaos: ChaosEngine::new(config.chaos),
            }),
        }
    }

    pub(crate) fn inject(&self, fault: Fault) {
        self.books().faults.push(fault);
    }

    pub(crate) fn queued_faults(&self) -> usize {
        self.books().faults.len()
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.books().log.clone()
    }

    pub(crate) fn request_counts(&self) -> RequestCounts {
        self.books().counts.clone()
    }

    pub(crate) fn set_request_log(&self, on: bool) {
        self.books().logging = on;
    }

    pub(crate) fn set_chaos(&self, chaos: Option<Chaos>) {
        self.books().chaos.set(chaos);
    }

    pub(crate) fn chaos_counts(&self) -> ChaosCounts {
        self.books().chaos.counts()
    }

    pub(crate) fn set_rate_limit(&self, limit: Option<u32>) {
        self.books().limiter.set_limit(limit);
    }

    pub(crate) fn set_bucket(&self, bucket: Option<BucketLimit>) {
        self.books().limiter.set_bucket(bucket);
    }

    /// A panic in one handler must not turn every later request into a panic too.
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn accepts(&self, credential: Option<&str>) -> Option<String> {
        let credential = credential?;
        (self.tokens.iter().any(|t| t == credential) || self.dialect.minted(credential))
            .then(|| credential.to_owned())
    }

    fn render(&self, mut response: Response, request_id: &str) -> Response {
        match response.extensions_mut().remove::<ApiError>() {
            Some(error) => {
                let body = self.dialect.error_body_for(
                    error.status,
                    &error.code,
                    &error.message,
                    request_id,
                );
                (error.status, Json(body)).into_response()
            }
            None => response,
        }
    }
}

/// The axum middleware; install with `from_fn_with_state(door, front_door::<Dialect>)`.
pub(crate) async fn front_door<D: Dialect>(
    State(door): State<Arc<FrontDoor<D>>>,
    request: Request,
    next: Next,
) -> Response {
    let received = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let logging = door.books().logging;
    let (request, body) = if logging {
        let (parts, body) = request.into_parts();
        let (body, json) = match multipart::boundary(&parts.headers) {
            Some(boundary) => read_form(body, &boundary).await,
            None => read_json(body).await,
        };
        (Request::from_parts(parts, body), json)
    } else {
        (request, None)
    };
    let slot = {
        let mut books = door.books();
        books.counts.arrived(&method);
        books.logging.then(|| {
            books.log.push(RecordedRequest {
                method: method.clone(),
                path: path.clone(),
                query: request.uri().query().map(str::to_owned),
                at: received,
                status: 0,
                disconnected: false,
                body,
                response_body: None,
            });
            books.log.len() - 1
        })
    };
    let request_id = new_request_id();
    let hangup = request
        .extensions()
        .get::<ConnectInfo<Hangup>>()
        .map(|ConnectInfo(hangup)| hangup.clone());

    let token = door.accepts(door.dialect.credential(request.headers()));
    let (mut budget, plan) = match token {
        None => (
            door.books().limiter.peek(received),
            Plan::Refuse {
                error: door.dialect.unauthorized(),
                retry_after: None,
            },
        ),
        Some(token) => {
            let mut books = door.books();
            let budget = books.limiter.admit(&token, received);
            let plan = if budget.exhausted {
                Plan::Refuse {
                    error: door.dialect.rate_limited(),
                    retry_after: Some(budget.retry_after_secs.unwrap_or(door.retry_after_secs)),
                }
            } else if books.chaos.storm_hits(received) {
                Plan::Refuse {
                    error: door.dialect.rate_limited(),
                    retry_after: Some(1),
                }
            } else if let Some(fault) = books.faults.take(&method, &path) {
                Plan::for_fault(fault, &door.dialect)
            } else {
                books
                    .chaos
                    .roll(&method)
                    .map_or_else(Plan::work, Plan::for_mischief)
            };
            (budget, plan)
        }
    };
    // Hanging up needs the sandbox's own listener. A router served without it (a
    // unit test driving it directly) loses the answer instead, the nearest thing.
    let plan = match plan {
        Plan::Work {
            delivery: Delivery::HungUp,
            ..
        } if hangup.is_none() => Plan::LoseAnswer,
        plan => plan,
    };

    let mut retry_after = None;
    let (response, hold, delivery) = match plan {
        Plan::Refuse {
            error,
            retry_after: secs,
        } => {
            retry_after = secs;
            (error.into_response(), Duration::ZERO, Delivery::Whole)
        }
        Plan::Work { hold, delivery } => (next.run(request).await, hold, delivery),
        Plan::LoseAnswer => {
            drop(next.run(request).await);
            let lost = door.dialect.lost_response().into_response();
            (lost, Duration::ZERO, Delivery::Whole)
        }
    };

    let mut response = door.render(response, &request_id);
    let mut response_body = None;
    if slot.is_some() {
        let (parts, body) = response.into_parts();
        let (body, json) = read_json(body).await;
        response = Response::from_parts(parts, body);
        response_body = json;
    }
    // Whatever produced the 429 (the limiter, a storm or a fault), the headers must
    // agree with it.
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        budget.remaining = 0;
    }
    let headers = response.headers_mut();
    door.dialect.budget_headers(&budget, headers);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(D::REQUEST_ID_HEADER), value);
    }
    if let Some(secs) = retry_after.filter(|_| door.dialect.sends_retry_after()) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }

    let disconnected = match delivery {
        Delivery::Whole => false,
        Delivery::Truncated { at, by_chaos } => {
            let cut;
            (response, cut) = truncate(response, at).await;
            if cut && by_chaos {
                door.books().chaos.truncated();
            }
            false
        }
        Delivery::HungUp => {
            if let Some(hangup) = &hangup {
                hangup.hang_up();
            }
            true
        }
    };

    // The status is recorded before the latency so a client that gives up while we
    // hold the answer still leaves a complete log entry behind.
    {
        let mut books = door.books();
        let status = response.status().as_u16();
        if disconnected {
            books.counts.disconnected += 1;
        } else {
            books.counts.answered(status);
        }
        if let Some(entry) = slot.and_then(|slot| books.log.get_mut(slot)) {
            entry.status = status;
            entry.disconnected = disconnected;
            entry.response_body = response_body;
        }
    }
    let wait = door.latency + hold;
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if !hold.is_zero() {
        door.books().counts.released += 1;
    }
    response
}

/// What the front door decided to do with an admitted (or refused) request.
enum Plan {
    /// Answer with this error and do no work.
    Refuse {
        error: ApiError,
        retry_after: Option<u64>,
    },
    /// Do the work, hold the answer `hold` longer than the latency, deliver it so.
    Work { hold: Duration, delivery: Delivery },
    /// Do the work, then answer the provider's 500 instead of its result.
    LoseAnswer,
}

impl Plan {
    fn work() -> Self {
        Self::deliver(Delivery::Whole)
    }

    fn deliver(delivery: Delivery) -> Self {
        Plan::Work {
            hold: Duration::ZERO,
            delivery,
        }
    }

    fn error(status: u16, id: &str, message: String) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Plan::Refuse {
            error: ApiError::new(status, id, message),
            retry_after: None,
        }
    }

    fn for_fault(fault: FaultResponse, dialect: &impl Dialect) -> Self {
        match fault {
            FaultResponse::Error {
                status,
                id,
                message,
            } => Self::error(status, &id, message),
            FaultResponse::RateLimited { retry_after_secs } => Plan::Refuse {
                error: dialect.rate_limited(),
                retry_after: Some(retry_after_secs),
            },
            FaultResponse::LoseResponse => Plan::LoseAnswer,
            FaultResponse::Delay(hold) => Plan::Work {
                hold,
                delivery: Delivery::Whole,
            },
            FaultResponse::Truncate => Self::deliver(Delivery::Truncated {
                at: 0.5,
                by_chaos: false,
            }),
            FaultResponse::Disconnect => Self::deliver(Delivery::HungUp),
        }
    }

    fn for_mischief(mischief: Mischief) -> Self {
        match mischief {
            Mischief::Error(status) => {
                let (id, message) = error_wording(status);
                Self::error(status, &id, message)
            }
            Mischief::LoseWith500 => Plan::LoseAnswer,
            Mischief::Disconnect => Self::deliver(Delivery::HungUp),
            Mischief::Truncate { at } => Self::deliver(Delivery::Truncated { at, by_chaos: true }),
        }
    }
}

/// How the answer leaves, once it is worked out.
enum Delivery {
    Whole,
    /// Cut the body of a successful answer; `at` (0 to 1) says where, see [`cut_at`].
    /// Chaos counts its cuts; a queued fault does not.
    Truncated {
        at: f64,
        by_chaos: bool,
    },
    /// Close the connection instead of answering.
    HungUp,
}

/// A body read whole: the same bytes again, and what they say if they are JSON. A
/// body that fails to arrive is replaced by an empty one.
async fn read_json(body: Body) -> (Body, Option<serde_json::Value>) {
    match to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let json = serde_json::from_slice(&bytes).ok();
            (Body::from(bytes), json)
        }
        Err(_) => (Body::empty(), None),
    }
}

/// A `multipart/form-data` body read whole: the same bytes again, and its text fields as a
/// JSON object (`{"manifest": "...", "branch": "main"}`), which the contract tests check
/// against the operation's form schema.
async fn read_form(body: Body, boundary: &str) -> (Body, Option<serde_json::Value>) {
    match to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let fields = multipart::fields(&bytes, boundary).map(|fields| {
                serde_json::Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect(),
                )
            });
            (Body::from(bytes), fields)
        }
        Err(_) => (Body::empty(), None),
    }
}

/// Sends only the first part of a successful answer's body, and says whether it cut
/// anything. The new body has a known length, so hyper announces a `Content-Length`
/// that matches what is sent and the client reads a short document instead of
/// waiting for the rest.
async fn truncate(response: Response, at: f64) -> (Response, bool) {
    if !response.status().is_success() {
        return (response, false);
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return (Response::from_parts(parts, Body::empty()), true);
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let end = cut_at(bytes.len(), at);
    let cut = end < bytes.len();
    (
        Response::from_parts(parts, Body::from(bytes.slice(..end))),
        cut,
    )
}

/// Where a body of `len` bytes is cut: at least one byte is sent and at least one is
/// kept back, so the result is never empty (which a client may read as "no body")
/// and never whole. `at` runs from 0 (first byte) to 1 (all but the last).
fn cut_at(len: usize, at: f64) -> usize {
    if len < 2 {
        return 0;
    }
    let room = (len - 1) as f64;
    (1 + (room * at.clamp(0.0, 1.0)) as usize).min(len - 1)
}

/// `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A random UUIDv4 in its usual textual form; providers hand out UUIDs as request ids.
fn new_request_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_text(&bytes)
}

/// 16 bytes in the textual form of a UUID, `8-4-4-4-12` hex digits.
pub(crate) fn uuid_text(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn cuts_keep_something_and_drop_something() {
        assert_eq!(cut_at(0, 0.5), 0);
        assert_eq!(cut_at(1, 0.5), 0);
        assert_eq!(cut_at(2, 0.0), 1);
        assert_eq!(cut_at(2, 1.0), 1);
        assert_eq!(cut_at(101, 0.5), 51);
        assert_eq!(cut_at(100, 0.0), 1);
        assert_eq!(cut_at(100, 0.999_999), 99);
        assert_eq!(cut_at(100, 7.0), 99);
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
