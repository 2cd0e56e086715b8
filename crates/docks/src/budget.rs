//! One rate budget per dock (provider account), shared by every call made on it.
//!
//! Providers limit calls per account, not per operation. Without a shared budget each operation
//! learns the limit on its own by bouncing off 429s, and a hundred operations on one dock bounce
//! together. A [`Budget`] paces calls *before* they are sent:
//!
//! - the owner's [`RateLimit`] (`"250/min,5000/h"`) is one token bucket per window; a call
//!   takes a token from every one of them, so `"10/s,600/min"` means "600 a minute, at most 10
//!   at once";
//! - every answer corrects it ([`Permit::answered`]): the provider's remaining count, minus
//!   every call that may have been counted after it (calls overtake each other on the way),
//!   is a bucket of its own; a spent count waits for its reset; a 429 pauses the whole dock
//!   until `Retry-After`. Headers can only make a configured limit stricter;
//! - with no configured limit ([`RateLimit::None`]) the budget learns one from the headers, and
//!   until it knows anything, slow start bounds the calls in flight (8, doubling every round
//!   trip) so a hundred tasks do not flood an unknown provider at once; a 429 halves that bound
//!   and turns it into a rate as well, for providers that never send rate-limit headers.
//!
//! **How the HTTP layer uses it:** `let permit = budget.acquire().await;` right before sending,
//! then `permit.answered(status, response.headers())` as soon as the answer's headers are in.
//! A call that got no answer (timeout, connection error) just drops its permit: the call still
//! counts as sent, and its place in flight is freed. One task holds one permit at a time.
//!
//! The buckets are written here rather than taken from a crate such as `governor` because this
//! budget is corrected while it runs: drained to what the provider says is left, paused until a
//! reset or a `Retry-After`, narrowed by a policy learned from headers, re-sized when the owner
//! edits the limit. Those crates fix the quota when the limiter is built and offer no way to
//! drain or pause it from outside.
//!
//! Waiters queue on tokio's fair mutex, so calls go out in the order they asked for a place and
//! none starves. A call that serves many resources at once (the engine's batched readiness
//! check: one listing for every droplet waiting on the dock) asks with
//! [`Budget::acquire_first`] and goes before the queue: behind five seconds of creates it
//! left droplets that were long ready showing `provisioning` for as long. Those calls are few
//! by construction (the engine spaces them to a small share of the budget), so the queue still
//! moves. Nothing is taken until the moment a call may go, which makes a dropped
//! [`Budget::acquire`] future cost nothing. Time is tokio's, so tests run in paused time.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use stackdock_core::{DockId, Provider};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Calls allowed in flight before the first answer, when nothing is known about the provider.
/// Small enough that a provider with a burst of 10 refuses few, large enough not to crawl.
const SLOW_START: f64 = 8.0;
/// Slow start stops growing here: past it the bound no longer protects anyone.
const SLOW_START_MAX: f64 = 1024.0;
/// The pause after a 429 that says nothing of when to come back; doubled per consecutive 429.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The window `ratelimit-limit` / `x-ratelimit-limit` is taken to count over when no policy
/// says otherwise; per-minute limits are what providers document most. DigitalOcean documents
/// its `ratelimit-limit` as hourly: a minute errs towards speed there, and its remaining count,
/// kept over the same hour, is what stops the budget before it runs out. Erring the other way
/// (an hour for a per-minute limit) would slow a dock sixtyfold.
const ASSUMED_WINDOW: Duration = Duration::from_secs(60);
/// A spent count with no reset time and no known refill rate is probed again after this.
const PROBE_AFTER: Duration = Duration::from_secs(1);
/// The longest any header may make the dock wait; a larger value is a provider's mistake, and
/// the retry layer gives up long before anyway.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);
const LONGEST_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);
/// Float slack: a bucket refilled to 0.999999999 at the instant it was computed to hold one
/// token does hold it.
const EPSILON: f64 = 1e-9;

// ---------------------------------------------------------------------------------------------
// The owner's setting
// ---------------------------------------------------------------------------------------------

/// A dock's configured limit: one or more windows, e.g. `"250/min,5000/h"` or `"10/s,600/min"`;
/// `"none"` = no limit set, the budget learns the provider's from its answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RateLimit {
    #[default]
    None,
    /// Sorted by window length, each length once (as parsed).
    Windows(Vec<Window>),
}

/// At most `requests` calls per `per`, as a token bucket: a burst of `requests`, then
/// `requests / per` calls a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub requests: u32,
    pub per: Duration,
}

impl Window {
    /// Calls per second in the long run.
    pub fn rate(&self) -> f64 {
        f64::from(self.requests) / self.per.as_secs_f64()
    }

    /// One of `nodes` equal parts of the window (at least one call).
    fn shared_by(&self, nodes: u32) -> Self {
        Self {
            requests: (self.requests / nodes.max(1)).max(1),
            per: self.per,
        }
    }

    /// A window that can pace anything: a zero count would block forever, a zero length
    /// would divide by zero. Parsing refuses both; hand-built values are filtered.
    fn usable(&self) -> bool {
        self.requests > 0 && !self.per.is_zero()
    }
}

impl RateLimit {
    /// The windows in force; none for [`RateLimit::None`].
    pub fn windows(&self) -> &[Window] {
        match self {
            Self::None => &[],
            Self::Windows(windows) => windows,
        }
    }

    /// Calls per second the limit allows in the long run (its slowest window); `None` for
    /// [`RateLimit::None`].
    pub fn steady_rate(&self) -> Option<f64> {
        self.windows().iter().map(Window::rate).reduce(f64::min)
    }

    /// One node's part of the limit when `nodes` nodes call the same account: each window's
    /// count divided among them, rounded down (never below one call), so that together they
    /// stay within it.
    pub fn shared_by(&self, nodes: u32) -> Self {
        match self {
            Self::None => Self::None,
            Self::Windows(windows) => {
                Self::Windows(windows.iter().map(|w| w.shared_by(nodes)).collect())
            }
        }
    }

    /// The same limit in its canonical shape, so that equal settings compare equal.
    fn normalized(self) -> Self {
        let mut windows: Vec<Window> = self
            .windows()
            .iter()
            .copied()
            .filter(Window::usable)
            .collect();
        if windows.is_empty() {
            return Self::None;
        }
        // Of two windows of one length, the stricter is kept.
        windows.sort_by_key(|w| (w.per, w.requests));
        windows.dedup_by_key(|w| w.per);
        Self::Windows(windows)
    }
}

/// Why a rate limit's text was refused; each names the part at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("no rate limit given; write one such as \"250/min\" or \"10/s,600/min\", or \"none\"")]
    Empty,
    #[error("{limit:?}: an empty window between commas")]
    EmptyWindow { limit: String },
    #[error("{part:?}: expected a count and a window, such as 250/min")]
    Shape { part: String },
    #[error("{part:?}: the count {count:?} is not a whole number")]
    Count { part: String, count: String },
    #[error("{part:?}: the count must be at least 1")]
    ZeroCount { part: String },
    #[error(
        "{part:?}: unknown unit {unit:?}; use s, min, h or d (or ms), optionally with a number as in 5min"
    )]
    Unit { part: String, unit: String },
    #[error("{part:?}: the window must be longer than zero and at most 365 days")]
    Length { part: String },
    #[error("{part:?}: a window of {per} is already given; give each window once")]
    Duplicate { part: String, per: String },
    #[error("{part:?}: \"none\" cannot be combined with windows")]
    NoneWithWindows { part: String },
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RateLimitError::Empty);
        }
        if text.eq_ignore_ascii_case("none") {
            return Ok(Self::None);
        }
        let mut windows: Vec<Window> = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(RateLimitError::EmptyWindow {
                    limit: text.to_string(),
                });
            }
            if part.eq_ignore_ascii_case("none") {
                return Err(RateLimitError::NoneWithWindows {
                    part: part.to_string(),
                });
            }
            let window = parse_window(part)?;
            if windows.iter().any(|w| w.per == window.per) {
                return Err(RateLimitError::Duplicate {
                    part: part.to_string(),
                    per: format_per(window.per),
                });
            }
            windows.push(window);
        }
        windows.sort_by_key(|w| w.per);
        Ok(Self::Windows(windows))
    }
}

/// `COUNT/[N]UNIT`, spaces tolerated around each piece.
fn parse_window(part: &str) -> Result<Window, RateLimitError> {
    let shape = || RateLimitError::Shape {
        part: part.to_string(),
    };
    let (count, unit) = part.split_once('/').ok_or_else(shape)?;
    let (count, unit) = (count.trim(), unit.trim());
    if count.is_empty() || unit.is_empty() {
        return Err(shape());
    }
    let requests: u32 = count.parse().map_err(|_| RateLimitError::Count {
        part: part.to_string(),
        count: count.to_string(),
    })?;
    if requests == 0 {
        return Err(RateLimitError::ZeroCount {
            part: part.to_string(),
        });
    }
    let digits = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (times, name) = unit.split_at(digits);
    let name = name.trim();
    let length = || RateLimitError::Length {
        part: part.to_string(),
    };
    let times: u32 = if times.is_empty() {
        1
    } else {
        times.parse().map_err(|_| length())?
    };
    let one = match name.to_ascii_lowercase().as_str() {
        "ms" => Duration::from_millis(1),
        "s" | "sec" | "secs" | "second" | "seconds" => Duration::from_secs(1),
        "m" | "min" | "mins" | "minute" | "minutes" => Duration::from_secs(60),
        "h" | "hr" | "hrs" | "hour" | "hours" => Duration::from_secs(3600),
        "d" | "day" | "days" => Duration::from_secs(86_400),
        _ => {
            return Err(RateLimitError::Unit {
                part: part.to_string(),
                unit: name.to_string(),
            });
        }
    };
    let per = one.checked_mul(times).ok_or_else(length)?;
    if per.is_zero() || per > LONGEST_WINDOW {
        return Err(length());
    }
    Ok(Window { requests, per })
}

/// The shortest text for a window length: `s`, `5min`, `h`, `90s`, `1500ms`.
fn format_per(per: Duration) -> String {
    let ms = per.as_millis();
    for (unit_ms, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1000, "s"),
        (1, "ms"),
    ] {
        if ms.is_multiple_of(unit_ms) {
            let n = ms / unit_ms;
            return if n == 1 {
                name.to_string()
            } else {
                format!("{n}{name}")
            };
        }
    }
    format!("{ms}ms")
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.requests, format_per(self.per))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut windows = self.windows().to_vec();
        if windows.is_empty() {
            return f.write_str("none");
        }
        windows.sort_by_key(|w| w.per);
        for (i, window) in windows.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{window}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for RateLimit {
    type Error = RateLimitError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RateLimit> for String {
    fn from(limit: RateLimit) -> Self {
        limit.to_string()
    }
}

/// What each provider documents, for a dock whose owner set nothing else.
pub fn documented_limit(provider: Provider) -> RateLimit {
    let windows: &[(u32, u64)] = match provider {
        // DigitalOcean's spec, Introduction tag, "Rate Limit" (digest in
        // shared/provider-specs/README.md): 5,000 requests per hour and 250 per minute per token.
        Provider::DigitalOcean => &[(250, 60), (5000, 3600)],
        // Not in Cloudflare's spec; its docs (developers.cloudflare.com/api/limits, quoted in the
        // digest): 1,200 requests per five minutes per user. Going over blocks every call for
        // five minutes, so staying under matters more than a few seconds saved.
        Provider::Cloudflare => &[(1200, 300)],
        // Vultr's spec introduction (digest): 30 requests per second per source IP. Per IP, not
        // per key: docks of several Vultr accounts behind one address share it, which one
        // budget per dock cannot see.
        Provider::Vultr => &[(30, 1)],
        // A guess: Vercel's spec documents no limit, and Vercel limits per endpoint (the digest).
        // 100 a minute sits below the per-endpoint figures commonly reported for reads, projects,
        // domains and DNS; the x-ratelimit-* headers Vercel sends tighten it where an endpoint
        // is stricter.
        Provider::Vercel => &[(100, 60)],
        // A guess: Netlify's spec documents no limit (the digest). Netlify's API guide has given
        // 500 requests a minute; 200 stays inside that should the figure have moved, and its
        // X-RateLimit-* headers tighten the budget where an endpoint (deploys) is stricter.
        Provider::Netlify => &[(200, 60)],
        // A guess: Turso's platform API documents no rate limit (the digest); its quotas are
        // monthly usage. One call a second is far above what provisioning needs and far below
        // what an abuse guard would object to.
        Provider::Turso => &[(60, 60)],
        // The Docker Engine API has no rate limit (the digest): it is the owner's own daemon.
        Provider::Docker => &[],
    };
    RateLimit::Windows(
        windows
            .iter()
            .map(|&(requests, secs)| Window {
                requests,
                per: Duration::from_secs(secs),
            })
            .collect(),
    )
    .normalized()
}

// ---------------------------------------------------------------------------------------------
// What the provider says
// ---------------------------------------------------------------------------------------------

/// Rate-limit facts read from one answer's headers; what does not parse is left out.
#[derive(Clone, Debug, Default, PartialEq)]
struct Report {
    limit: Option<u64>,
    remaining: Option<u64>,
    /// When the provider's spent count renews.
    reset: Option<Instant>,
    retry_after: Option<Instant>,
    /// Windows the provider states outright (`ratelimit-policy`, or `w=` in the IETF fields).
    policy: Vec<Window>,
}

impl Report {
    /// Reads every family providers use: `ratelimit-*` (DigitalOcean), `x-ratelimit-*` (Vercel,
    /// Netlify, GitHub-style) and the IETF draft's `ratelimit` / `ratelimit-policy`. Header names
    /// are case-insensitive by construction of [`HeaderMap`]. `wall` and `now` are the same
    /// moment on the two clocks, to turn epoch seconds into an [`Instant`].
    fn read(headers: &HeaderMap, wall: DateTime<Utc>, now: Instant) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let mut report = Report::default();
        if let Some(value) = text("ratelimit") {
            let fields = structured(value);
            report.limit = fields.limit;
            report.remaining = fields.remaining;
            report.reset = fields.reset.map(|r| reset_at(r, wall, now));
            if let (Some(limit), Some(secs)) = (fields.limit, fields.window) {
                report.policy.extend(window_of(limit, secs));
            }
        }
        for family in ["ratelimit-", "x-ratelimit-"] {
            let field = |name: &str| text(&format!("{family}{name}"));
            if report.limit.is_none() {
                report.limit = field("limit").and_then(count);
            }
            if report.remaining.is_none() {
                report.remaining = field("remaining").and_then(count);
            }
            if report.reset.is_none() {
                report.reset = field("reset")
                    .and_then(number)
                    .map(|r| reset_at(r, wall, now));
            }
        }
        // An older draft put the policy into the limit field: `ratelimit-limit: 10, 10;w=1`.
        for value in [text("ratelimit-policy"), text("ratelimit-limit")]
            .into_iter()
            .flatten()
        {
            report.policy.extend(policy(value));
        }
        report.policy.sort_by_key(|w| (w.per, w.requests));
        report.policy.dedup_by_key(|w| w.per);
        report.retry_after = text("retry-after").and_then(|v| retry_after(v, wall, now));
        report
    }

    /// What one of `nodes` nodes calling the same account may count on: the provider's counts
    /// are the account's, shared by every node, so each takes its part of them.
    fn shared_by(mut self, nodes: u32) -> Self {
        if nodes <= 1 {
            return self;
        }
        let part = |n: u64| n / u64::from(nodes);
        self.limit = self.limit.map(|l| part(l).max(1));
        self.remaining = self.remaining.map(part);
        self.policy = self.policy.iter().map(|w| w.shared_by(nodes)).collect();
        self
    }

    /// The windows to pace by: the stated policy, else the limit over the assumed window.
    fn windows(&self) -> Vec<Window> {
        if !self.policy.is_empty() {
            return self.policy.clone();
        }
        self.limit
            .and_then(|limit| window_of(limit, ASSUMED_WINDOW.as_secs_f64()))
            .into_iter()
            .collect()
    }
}

#[derive(Default)]
struct Structured {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<f64>,
    window: Option<f64>,
}

/// The IETF draft's `ratelimit` field, both shapes: the older dictionary
/// `limit=100, remaining=50, reset=30` and the newer list `"default";r=50;t=30` (several
/// policies may be listed; the one with the least left is the one that binds).
fn structured(value: &str) -> Structured {
    let items: Vec<Vec<(String, &str)>> = if value.contains(';') {
        value
            .split(',')
            .map(|item| item.split(';').filter_map(key_value).collect())
            .collect()
    } else {
        vec![value.split(',').filter_map(key_value).collect()]
    };
    let read = |item: &Vec<(String, &str)>| {
        let mut fields = Structured::default();
        for (key, value) in item {
            match key.as_str() {
                "limit" | "q" => fields.limit = count(value),
                "remaining" | "r" => fields.remaining = count(value),
                "reset" | "t" => fields.reset = number(value),
                "w" => fields.window = number(value),
                _ => {}
            }
        }
        fields
    };
    items
        .iter()
        .map(read)
        .min_by_key(|fields| fields.remaining.unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// `ratelimit-policy: 100;w=60, 5000;w=3600` or `"burst";q=100;w=60`.
fn policy(value: &str) -> Vec<Window> {
    value
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let mut quota = parts.next().and_then(count);
            let mut secs = None;
            for (key, value) in parts.filter_map(key_value) {
                match key.as_str() {
                    "q" => quota = count(value),
                    "w" => secs = number(value),
                    _ => {}
                }
            }
            window_of(quota?, secs?)
        })
        .collect()
}

fn key_value(pair: &str) -> Option<(String, &str)> {
    let (key, value) = pair.split_once('=')?;
    Some((
        key.trim().to_ascii_lowercase(),
        value.trim().trim_matches('"'),
    ))
}

fn window_of(requests: u64, secs: f64) -> Option<Window> {
    let window = Window {
        requests: u32::try_from(requests).unwrap_or(u32::MAX),
        per: Duration::try_from_secs_f64(secs).ok()?,
    };
    (window.usable() && window.per <= LONGEST_WINDOW).then_some(window)
}

/// The leading number of a header value (`"100"`, `"1.5"`, `"100, 100;w=60"`).
fn number(value: &str) -> Option<f64> {
    let value = value.trim().trim_matches('"');
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let n: f64 = value[..end].parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

fn count(value: &str) -> Option<u64> {
    // A float-to-int `as` saturates, and `number` is finite and non-negative.
    number(value).map(|n| n.floor() as u64)
}

/// A reset value as an instant: epoch seconds, or (below 1e9, which no epoch time is) seconds
/// from now; epoch milliseconds are recognised by size too.
fn reset_at(value: f64, wall: DateTime<Utc>, now: Instant) -> Instant {
    let secs_from_now = if value < 1e9 {
        value
    } else {
        let epoch = if value > 1e11 { value / 1000.0 } else { value };
        epoch - wall.timestamp_millis() as f64 / 1000.0
    };
    now + wait_of(secs_from_now)
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str, wall: DateTime<Utc>, now: Instant) -> Option<Instant> {
    // Only a bare number is seconds: an HTTP date may start with a day of the month.
    let bare = value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if let Some(secs) = number(value).filter(|_| bare) {
        return Some(now + wait_of(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (when.with_timezone(&Utc) - wall).num_milliseconds();
    Some(now + wait_of(ms as f64 / 1000.0))
}

/// Seconds as a wait: negative is none, huge is [`LONGEST_WAIT`].
fn wait_of(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs)
        .unwrap_or(LONGEST_WAIT)
        .min(LONGEST_WAIT)
}

// ---------------------------------------------------------------------------------------------
// The budget
// ---------------------------------------------------------------------------------------------

/// One window's token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    per: Duration,
    capacity: f64,
    per_sec: f64,
    /// Below zero when more is spent than the window allows: a lowered limit, or a learned
    /// window that starts from the provider's count while calls are still out.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(window: Window, tokens: f64, now: Instant) -> Self {
        let capacity = f64::from(window.requests);
        Self {
            per: window.per,
            capacity,
            per_sec: window.rate(),
            tokens: tokens.min(capacity),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let gained = (now - self.at).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + gained).min(self.capacity);
            self.at = now;
        }
    }

    /// When the bucket holds a whole token, given it was refilled at `now`.
    fn ready_at(&self, now: Instant) -> Instant {
        if self.tokens >= 1.0 - EPSILON {
            return now;
        }
        now + wait_of((1.0 - self.tokens) / self.per_sec)
    }
}

/// The provider's own count, carried forward from its last answer: `remaining` as it was when
/// the provider counted that call, minus every call sent after it, refilled at the learned rate.
#[derive(Clone, Copy, Debug)]
struct Reported {
    tokens: f64,
    at: Instant,
    /// The most the provider has shown it holds (the largest `remaining` plus the call it
    /// answered), so refilling at a learned rate never assumes a burst the provider refuses.
    capacity: f64,
    per_sec: Option<f64>,
    /// When the provider said its count renews; from then on at least one call is due.
    reset: Option<Instant>,
}

impl Reported {
    fn refill(&mut self, now: Instant) {
        if now > self.at {
            if let Some(rate) = self.per_sec {
                let gained = (now - self.at).as_secs_f64() * rate;
                self.tokens = (self.tokens + gained).min(self.capacity);
            }
            self.at = now;
        }
        if let Some(reset) = self.reset
            && reset <= now
        {
            self.tokens = self.tokens.max(1.0);
            self.reset = None;
        }
    }

    /// Until reset, or until the learned rate gives a token back, whichever comes first.
    fn ready_at(&self, now: Instant) -> Instant {
        if self.tokens >= 1.0 - EPSILON {
            return now;
        }
        // Refilling starts at `at`, which is after a pause when the count was spent.
        let refilled = self
            .per_sec
            .map(|rate| now.max(self.at) + wait_of((1.0 - self.tokens) / rate));
        match (refilled, self.reset) {
            (Some(a), Some(b)) => a.min(b),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => now,
        }
    }
}

/// What stands between the callers and a provider while nothing is configured or learned.
/// The allowance bounds the calls in flight and grows by one per answer, doubling every round
/// trip. A 429 halves it and from then on it is also a rate, `allowance` calls a second, that
/// grows by about one a second: a provider that sends no rate-limit headers at all still gets
/// paced near what it accepts instead of being flooded between its 429s.
#[derive(Clone, Copy, Debug)]
struct SlowStart {
    allowance: f64,
    /// Set by the first 429: past it the allowance grows slowly, probing for more.
    threshold: Option<f64>,
    paced: Option<Bucket>,
}

impl Default for SlowStart {
    fn default() -> Self {
        Self {
            allowance: SLOW_START,
            threshold: None,
            paced: None,
        }
    }
}

impl SlowStart {
    fn answered(&mut self, now: Instant) {
        if let Some(paced) = &mut self.paced {
            paced.refill(now);
        }
        let step = match self.threshold {
            Some(threshold) if self.allowance >= threshold => 1.0 / self.allowance,
            _ => 1.0,
        };
        self.allowance = (self.allowance + step).min(SLOW_START_MAX);
        self.resize_pace();
    }

    fn refused(&mut self, now: Instant) {
        self.allowance = (self.allowance / 2.0).max(1.0);
        self.threshold = Some(self.allowance);
        if let Some(paced) = &mut self.paced {
            paced.refill(now);
        } else {
            // Starts empty: the provider has just said it has nothing left.
            self.paced = Some(Bucket {
                per: Duration::from_secs(1),
                capacity: self.allowance,
                per_sec: self.allowance,
                tokens: 0.0,
                at: now,
            });
        }
        self.resize_pace();
    }

    fn resize_pace(&mut self) {
        if let Some(paced) = &mut self.paced {
            paced.capacity = self.allowance;
            paced.per_sec = self.allowance;
            paced.tokens = paced.tokens.min(paced.capacity);
        }
    }
}

/// Whether the head of the queue may go.
enum Gate {
    Open,
    Until(Instant),
    /// Slow start: wait for a call in flight to finish.
    Answer,
}

/// A call the HTTP layer sent, as its answer is matched to it.
#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u64,
    at: Instant,
    /// Answers matched to calls before this one was sent: any answered after it may belong
    /// to a call the provider counted after this one.
    answers_before: u64,
}

#[derive(Debug)]
struct State {
    limit: RateLimit,
    configured: Vec<Bucket>,
    /// Windows learned from headers, and their buckets; rebuilt when the provider's policy
    /// changes.
    learned: Vec<Window>,
    learned_buckets: Vec<Bucket>,
    reported: Option<Reported>,
    paused_until: Option<Instant>,
    /// Consecutive 429 episodes, for the backoff when a 429 says nothing of when to return.
    strikes: u32,
    /// Calls issued when the current 429 episode began: 429s to calls up to here were already
    /// in flight and are part of it, not new ones.
    episode: u64,
    /// Calls issued so far; a permit's sequence number is its place in this count.
    issued: u64,
    /// Callers of [`Budget::acquire_first`] not yet served: while there are any, the head of
    /// the queue waits.
    first_waiting: u32,
    /// Answers matched to their calls so far.
    answers: u64,
    in_flight: u32,
    slow: SlowStart,
    /// The newest call whose answer set the reported count; older answers are stale.
    newest_answer: u64,
}

impl State {
    fn new(limit: RateLimit, now: Instant) -> Self {
        let limit = limit.normalized();
        Self {
            configured: limit
                .windows()
                .iter()
                .map(|w| Bucket::new(*w, f64::from(w.requests), now))
                .collect(),
            limit,
            learned: Vec::new(),
            learned_buckets: Vec::new(),
            reported: None,
            paused_until: None,
            strikes: 0,
            episode: 0,
            issued: 0,
            first_waiting: 0,
            answers: 0,
            in_flight: 0,
            slow: SlowStart::default(),
            newest_answer: 0,
        }
    }

    /// Nothing configured and nothing learned: only slow start stands between the callers
    /// and the provider.
    fn slow_starting(&self) -> bool {
        self.limit.windows().is_empty() && self.learned.is_empty() && self.reported.is_none()
    }

    fn gate(&mut self, now: Instant) -> Gate {
        let mut until = now;
        match self.paused_until {
            Some(pause) if pause > now => until = pause,
            _ => self.paused_until = None,
        }
        for bucket in self
            .configured
            .iter_mut()
            .chain(self.learned_buckets.iter_mut())
        {
            bucket.refill(now);
            until = until.max(bucket.ready_at(now));
        }
        if let Some(reported) = &mut self.reported {
            reported.refill(now);
            until = until.max(reported.ready_at(now));
        }
        if self.slow_starting()
            && let Some(paced) = &mut self.slow.paced
        {
            paced.refill(now);
            until = until.max(paced.ready_at(now));
        }
        if until > now {
            Gate::Until(until)
        } else if self.slow_starting() && f64::from(self.in_flight) >= self.slow.allowance.floor() {
            Gate::Answer
        } else {
            Gate::Open
        }
    }

    /// Takes one call from everything that counts; only ever right after `gate` said Open.
    fn take(&mut self, now: Instant) -> Sent {
        for bucket in self
            .configured
            .iter_mut()
            .chain(self.learned_buckets.iter_mut())
        {
            bucket.tokens -= 1.0;
        }
        if let Some(reported) = &mut self.reported {
            reported.tokens -= 1.0;
        }
        if self.slow_starting()
            && let Some(paced) = &mut self.slow.paced
        {
            paced.tokens -= 1.0;
        }
        self.issued += 1;
        self.in_flight += 1;
        Sent {
            seq: self.issued,
            at: now,
            answers_before: self.answers,
        }
    }

    fn set_limit(&mut self, limit: RateLimit, now: Instant) {
        let limit = limit.normalized();
        if limit == self.limit {
            return;
        }
        let old = std::mem::take(&mut self.configured);
        self.configured = limit
            .windows()
            .iter()
            .map(|w| {
                // A window of the same length keeps what was spent in it, so raising or
                // lowering the count does not hand out a fresh burst. A new length starts full:
                // nothing recorded says what was spent in it.
                let spent = old.iter().find(|b| b.per == w.per).map_or(0.0, |b| {
                    let mut b = *b;
                    b.refill(now);
                    b.capacity - b.tokens
                });
                Bucket::new(*w, f64::from(w.requests) - spent, now)
            })
            .collect();
        self.limit = limit;
    }

    /// The provider has nothing left until `until`: the dock pauses, and when the pause ends
    /// one call goes to find out what the provider has then. Refilling across the pause at a
    /// learned rate would be a guess, and a wrong one for a provider whose count renews one
    /// call at a time (DigitalOcean's "oldest request expires"): a burst into its 429s.
    fn spent_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        if let Some(reported) = &mut self.reported {
            // Not counting the calls sent since: a provider with nothing left refuses them
            // without counting them.
            reported.tokens = reported.tokens.min(0.0);
            reported.at = reported.at.max(until);
            reported.reset = Some(until);
        }
    }

    fn learn_windows(
        &mut self,
        windows: Vec<Window>,
        remaining: Option<u64>,
        after: f64,
        now: Instant,
    ) {
        if windows == self.learned {
            return;
        }
        self.learned_buckets = windows
            .iter()
            .map(|w| {
                let start = remaining.map_or(f64::from(w.requests), |r| r as f64);
                Bucket::new(*w, start - after, now)
            })
            .collect();
        self.learned = windows;
    }

    fn apply(&mut self, status: u16, report: &Report, call: Option<Sent>, now: Instant) {
        // Calls the provider may have counted after this one, which its count leaves out.
        // Calls travel side by side and are not counted in the order they were sent: one sent
        // earlier may reach the provider later. So every call that was out while this one
        // was counted may be among them: those still unanswered, and those answered since this
        // one was sent. Counting them all errs towards waiting; trusting the order sent would
        // spend calls the provider has not got. For an answer not matched to a call: every
        // call still out.
        let (after, counted_at, fresh) = match call {
            Some(sent) => {
                let fresh = sent.seq > self.newest_answer;
                if fresh {
                    self.newest_answer = sent.seq;
                }
                let answered_since = self.answers.saturating_sub(sent.answers_before);
                self.answers += 1;
                // The provider counted the call somewhere between sending and answering.
                let counted_at = sent.at + now.saturating_duration_since(sent.at) / 2;
                let others_out = self.in_flight.saturating_sub(1);
                (
                    (answered_since + u64::from(others_out)) as f64,
                    counted_at,
                    fresh,
                )
            }
            None => (f64::from(self.in_flight), now, true),
        };

        let windows = report.windows();
        if !windows.is_empty() {
            self.learn_windows(windows, report.remaining, after, now);
        }
        if fresh && let Some(remaining) = report.remaining {
            let per_sec = self.learned.iter().map(Window::rate).reduce(f64::min);
            let capacity = self
                .reported
                .map_or(0.0, |r| r.capacity)
                .max(remaining as f64 + 1.0);
            self.reported = Some(Reported {
                tokens: remaining as f64 - after,
                at: counted_at.min(now),
                capacity,
                per_sec,
                // With no reset and no rate there is no telling when the count renews: probe.
                reset: report
                    .reset
                    .or_else(|| per_sec.is_none().then(|| now + PROBE_AFTER)),
            });
        } else if let (Some(remaining), Some(reported)) = (report.remaining, &mut self.reported) {
            // An older call's answer, counted who knows when among the newer ones: it cannot
            // raise the count, but it can show the count is lower than believed. Nothing is
            // taken off for other calls here: any of them may have been counted before it.
            reported.refill(now);
            let refilled = reported.per_sec.map_or(0.0, |rate| {
                now.saturating_duration_since(counted_at).as_secs_f64() * rate
            });
            reported.tokens = reported.tokens.min(remaining as f64 + refilled);
        }

        if status == 429 {
            let new_episode = call.is_none_or(|sent| sent.seq > self.episode);
            if new_episode {
                self.strikes = self.strikes.saturating_add(1);
                self.episode = self.issued;
                if self.slow_starting() {
                    self.slow.refused(now);
                }
            }
            let asked = report
                .retry_after
                .or(report.reset)
                .filter(|until| *until > now);
            let until = asked.unwrap_or_else(|| now + backoff(self.strikes));
            self.spent_until(until);
        } else if status < 500 {
            self.strikes = 0;
            if call.is_some() && self.slow_starting() {
                self.slow.answered(now);
            }
            if fresh
                && report.remaining == Some(0)
                && let Some(reset) = report.reset.filter(|reset| *reset > now)
            {
                // The provider will refuse the next call until then anyway.
                self.spent_until(reset);
            }
        }
    }
}

fn backoff(strikes: u32) -> Duration {
    let doublings = strikes.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// One dock's rate budget, shared (behind an `Arc`) by every call on the dock.
pub struct Budget {
    state: Mutex<State>,
    /// The queue of waiting callers. tokio's mutex grants the lock in the order it was asked
    /// for, which is what keeps hundreds of waiting tasks fair; only the head of the queue
    /// looks at the clock.
    turn: tokio::sync::Mutex<()>,
    /// The queue of callers of [`Budget::acquire_first`], served in their order before
    /// anyone in `turn`'s.
    first_turn: tokio::sync::Mutex<()>,
    /// Wakes the head of the queue when an answer, a finished call or a new limit may let it
    /// go sooner than it planned.
    changed: Notify,
    /// Wall-clock time, to read resets given in epoch seconds. A field so tests can tie it to
    /// tokio's paused clock.
    wall_clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// How many nodes call this account: what the provider reports of the account's counts
    /// is divided by it (the configured limit is divided by [`Budgets`]).
    nodes: AtomicU32,
    /// Callers in either queue, for [`Budget::waiting`].
    waiting: AtomicU32,
}

/// Counts a caller as waiting for the budget until it is served or gives up.
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Budget")
            .field("limit", &state.limit)
            .field("learned", &state.learned)
            .field("paused_until", &state.paused_until)
            .field("in_flight", &state.in_flight)
            .finish_non_exhaustive()
    }
}

/// Leave to send one call, from [`Budget::acquire`]. Answer it with [`Permit::answered`]; drop
/// it when the call got no answer. Either way the call counts as sent.
#[must_use = "a permit is one call's place: send the call, then answer the permit"]
pub struct Permit<'a> {
    budget: &'a Budget,
    sent: Sent,
}

impl Permit<'_> {
    /// What the provider answered to this call: its status and headers. Teaches the budget
    /// (see [`Budget::learn`]) and frees the call's place in flight.
    pub fn answered(self, status: u16, headers: &HeaderMap) {
        self.budget.learn_from(status, headers, Some(self.sent));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.budget.finished();
    }
}

/// A caller of [`Budget::acquire_first`] counted as waiting, from its turn until it is
/// served or dropped; either way the head of the ordinary queue is told.
struct FirstInLine<'a>(&'a Budget);

impl<'a> FirstInLine<'a> {
    fn new(budget: &'a Budget) -> Self {
        budget.lock().first_waiting += 1;
        Self(budget)
    }
}

impl Drop for FirstInLine<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.first_waiting = state.first_waiting.saturating_sub(1);
        }
        self.0.changed.notify_waiters();
    }
}

impl Budget {
    pub fn new(limit: RateLimit) -> Self {
        Self::with_wall_clock(limit, Utc::now)
    }

    fn with_wall_clock(
        limit: RateLimit,
        wall_clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Self {
        Self {
            state: Mutex::new(State::new(limit, Instant::now())),
            turn: tokio::sync::Mutex::new(()),
            first_turn: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
            wall_clock: Box::new(wall_clock),
            nodes: AtomicU32::new(1),
            waiting: AtomicU32::new(0),
        }
    }

    /// The limit this budget paces by: what the owner configured, or this node's part of it
    /// when several nodes share the dock ([`Budgets::set_nodes`]).
    pub fn limit(&self) -> RateLimit {
        self.lock().limit.clone()
    }

    /// The owner changed the limit (`docks update`); it applies from the next call on, and a
    /// window of the same length keeps what was already spent in it.
    pub fn set_limit(&self, limit: RateLimit) {
        self.lock().set_limit(limit, Instant::now());
        self.changed.notify_waiters();
    }

    /// Waits until one more call may be sent now and takes it from every window. Callers are
    /// served in the order they called. Cancellation-safe: a future dropped while waiting
    /// takes nothing and keeps no one else waiting.
    pub async fn acquire(&self) -> Permit<'_> {
        let _waiting = Waiting::new(&self.waiting);
        let _turn = self.turn.lock().await;
        self.wait_for_gate(false).await
    }

    /// As [`Budget::acquire`], ahead of every caller of `acquire` still waiting: for a call
    /// that serves many resources at once. Callers of this method are served in their order.
    /// Cancellation-safe, like `acquire`.
    pub async fn acquire_first(&self) -> Permit<'_> {
        let _waiting = Waiting::new(&self.waiting);
        let _turn = self.first_turn.lock().await;
        let _first = FirstInLine::new(self);
        self.wait_for_gate(true).await
    }

    /// Waits, at the head of one of the queues, until the gate opens, and takes one call.
    /// The head of the ordinary queue (`first` false) also waits while a caller of
    /// [`Budget::acquire_first`] is waiting.
    async fn wait_for_gate(&self, first: bool) -> Permit<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the state is read, so a change made between reading and
            // waiting still wakes this waiter.
            changed.as_mut().enable();
            let now = Instant::now();
            let wait = {
                let mut state = self.lock();
                if !first && state.first_waiting > 0 {
                    // Woken when that caller is served (or gives up).
                    None
                } else {
                    match state.gate(now) {
                        Gate::Open => {
                            return Permit {
                                budget: self,
                                sent: state.take(now),
                            };
                        }
                        Gate::Until(until) => Some(until),
                        Gate::Answer => None,
                    }
                }
            };
            match wait {
                Some(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// What a provider's answer says, for an answer not tied to a [`Permit`]: `status` is the
    /// HTTP status, `headers` its headers. The budget takes it as older than every call still
    /// in flight. A 429 pauses the dock until `Retry-After`, else the headers' reset, else a
    /// backoff from 1 s doubling per consecutive 429 up to 60 s; a count of zero pauses it
    /// until the reset; a remaining count, limit or policy paces the calls that follow.
    pub fn learn(&self, status: u16, headers: &HeaderMap) {
        self.learn_from(status, headers, None);
    }

    fn learn_from(&self, status: u16, headers: &HeaderMap, call: Option<Sent>) {
        let now = Instant::now();
        let report = Report::read(headers, (self.wall_clock)(), now)
            .shared_by(self.nodes.load(Ordering::Relaxed));
        self.lock().apply(status, &report, call, now);
        self.changed.notify_waiters();
    }

    fn finished(&self) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        self.changed.notify_waiters();
    }

    /// Calls per second this budget allows in the long run (the slowest configured or learned
    /// window), `None` while unknown or unlimited. The engine spaces its batched readiness
    /// checks by it so they use a small share of the budget.
    pub fn steady_rate(&self) -> Option<f64> {
        let state = self.lock();
        state
            .limit
            .windows()
            .iter()
            .chain(&state.learned)
            .map(Window::rate)
            .reduce(f64::min)
    }

    /// Calls per second the whole dock allows in the long run, every node's part together:
    /// [`Budget::steady_rate`] times the nodes sharing it. What paces work done once for the
    /// whole dock by whichever node takes it.
    pub fn dock_rate(&self) -> Option<f64> {
        self.steady_rate()
            .map(|rate| rate * f64::from(self.nodes()))
    }

    /// How many calls are waiting for their turn now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// How many nodes share the dock's limit (1 alone).
    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed).max(1)
    }

    /// Until when the whole dock is paused (after a 429 or a spent provider count), if it is.
    pub fn paused_until(&self) -> Option<Instant> {
        let now = Instant::now();
        self.lock().paused_until.filter(|until| *until > now)
    }

    /// The state is only ever held for arithmetic, never across an await; a panic while it
    /// was held leaves numbers that are still usable, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every dock's budget, so that all operations on one dock share one; with several nodes on
/// one database, each node's budgets are its part of the docks' limits.
#[derive(Clone, Debug)]
pub struct Budgets {
    docks: Arc<Mutex<HashMap<DockId, DockBudget>>>,
    /// How many nodes share every dock's limit (at least 1).
    nodes: Arc<AtomicU32>,
}

/// A dock's budget and the limit the dock itself is set to (the budget paces by this node's
/// part of it).
#[derive(Debug)]
struct DockBudget {
    budget: Arc<Budget>,
    limit: RateLimit,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            docks: Arc::default(),
            nodes: Arc::new(AtomicU32::new(1)),
        }
    }
}

impl Budgets {
    /// The dock's budget, made on first use; `limit` is the dock's current setting and
    /// replaces the budget's when it changed. The budget holds this node's part of it.
    pub fn for_dock(&self, dock: DockId, limit: RateLimit) -> Arc<Budget> {
        let nodes = self.nodes.load(Ordering::Relaxed);
        let budget = {
            let mut docks = self.docks.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = docks.entry(dock).or_insert_with(|| {
                let budget = Budget::new(limit.shared_by(nodes));
                budget.nodes.store(nodes, Ordering::Relaxed);
                DockBudget {
                    budget: Arc::new(budget),
                    limit: limit.clone(),
                }
            });
            entry.limit = limit.clone();
            entry.budget.clone()
        };
        budget.set_limit(limit.shared_by(nodes));
        budget
    }

    /// How many nodes now share each dock's limit: every budget takes its new part at once.
    /// Answers whether the count changed.
    pub fn set_nodes(&self, nodes: u32) -> bool {
        let nodes = nodes.max(1);
        if self.nodes.swap(nodes, Ordering::Relaxed) == nodes {
            return false;
        }
        let docks = self.docks.lock().unwrap_or_else(PoisonError::into_inner);
        for dock in docks.values() {
            dock.budget.nodes.store(nodes, Ordering::Relaxed);
            dock.budget.set_limit(dock.limit.shared_by(nodes));
        }
        true
    }

    /// The dock's budget, if a call on it was made here already.
    pub fn known(&self, dock: DockId) -> Option<Arc<Budget>> {
        self.docks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dock)
            .map(|d| d.budget.clone())
    }

    /// Every dock whose budget is known here.
    pub fn known_docks(&self) -> Vec<DockId> {
        self.docks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Drops a deleted dock's budget.
    pub fn forget(&self, dock: DockId) {
        self.docks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&dock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::task::JoinSet;

    fn limit(text: &str) -> RateLimit {
        text.parse().expect("a valid limit")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    /// A wall clock that moves with tokio's paused clock from a fixed epoch time, so epoch
    /// seconds in test headers mean an exact instant.
    #[derive(Clone, Copy)]
    struct Clock {
        start: Instant,
        base: DateTime<Utc>,
    }

    impl Clock {
        fn at_epoch_ms(ms: i64) -> Self {
            Self {
                start: Instant::now(),
                base: DateTime::from_timestamp_millis(ms).expect("epoch"),
            }
        }
        fn wall(&self, at: Instant) -> DateTime<Utc> {
            self.base + chrono::TimeDelta::from_std(at - self.start).expect("delta")
        }
        fn budget(self, limit: RateLimit) -> Budget {
            Budget::with_wall_clock(limit, move || self.wall(Instant::now()))
        }
        /// Epoch seconds `secs` from now.
        fn epoch_in(&self, secs: i64) -> String {
            (self.wall(Instant::now()).timestamp() + secs).to_string()
        }
    }

    /// Milliseconds of paused time since `t0`.
    fn ms_since(t0: Instant) -> u128 {
        (Instant::now() - t0).as_millis()
    }

    // ---- the setting ----

    #[test]
    fn limits_parse_and_print_back_in_canonical_form() {
        for (text, canonical) in [
            ("250/min,5000/h", "250/min,5000/h"),
            ("10/s,600/min", "10/s,600/min"),
            ("5000/h,250/min", "250/min,5000/h"),
            (" 250 / min , 5000/hour ", "250/min,5000/h"),
            ("30/sec", "30/s"),
            ("30/S", "30/s"),
            ("60/m", "60/min"),
            ("60/60s", "60/min"),
            ("1200/5min", "1200/5min"),
            ("7/90s", "7/90s"),
            ("100/d", "100/d"),
            ("100/day,10/h", "10/h,100/d"),
            ("5/1500ms", "5/1500ms"),
            ("none", "none"),
            (" None ", "none"),
        ] {
            let parsed = limit(text);
            assert_eq!(parsed.to_string(), canonical, "{text:?}");
            assert_eq!(limit(canonical), parsed, "{canonical:?} parses back");
        }
        assert_eq!(
            limit("1200/5min"),
            RateLimit::Windows(vec![Window {
                requests: 1200,
                per: Duration::from_secs(300)
            }])
        );
        assert_eq!(RateLimit::Windows(vec![]).to_string(), "none");
    }

    #[test]
    fn a_bad_limit_names_the_part_at_fault() {
        for (text, expected) in [
            (
                "250/fortnight",
                r#""250/fortnight": unknown unit "fortnight"; use s, min, h or d"#,
            ),
            ("0/min", r#""0/min": the count must be at least 1"#),
            ("", "no rate limit given"),
            ("   ", "no rate limit given"),
            (
                "250/min,300/min",
                r#""300/min": a window of min is already given"#,
            ),
            (
                "60/min,1000/60s",
                r#""1000/60s": a window of min is already given"#,
            ),
            (
                "lots",
                r#""lots": expected a count and a window, such as 250/min"#,
            ),
            (
                "many/min",
                r#""many/min": the count "many" is not a whole number"#,
            ),
            (
                "-5/min",
                r#""-5/min": the count "-5" is not a whole number"#,
            ),
            ("250/min,", r#""250/min,": an empty window between commas"#),
            (
                "none,5/s",
                r#""none": "none" cannot be combined with windows"#,
            ),
            ("5/0min", r#""5/0min": the window must be longer than zero"#),
            ("5/", r#""5/": expected a count and a window"#),
        ] {
            let err = text.parse::<RateLimit>().expect_err(text).to_string();
            assert!(err.starts_with(expected), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn a_limit_is_stored_as_its_text() {
        let parsed = limit("5000/h,250/min");
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#""250/min,5000/h""#
        );
        let back: RateLimit = serde_json::from_str(r#""250/min,5000/h""#).unwrap();
        assert_eq!(back, parsed);
        assert_eq!(
            serde_json::to_string(&RateLimit::None).unwrap(),
            r#""none""#
        );
        let err = serde_json::from_str::<RateLimit>(r#""9/fortnight""#).unwrap_err();
        assert!(err.to_string().contains("fortnight"), "{err}");
    }

    #[test]
    fn documented_limits_follow_the_provider_specs() {
        assert_eq!(
            documented_limit(Provider::DigitalOcean).to_string(),
            "250/min,5000/h"
        );
        assert_eq!(
            documented_limit(Provider::Cloudflare).to_string(),
            "1200/5min"
        );
        assert_eq!(documented_limit(Provider::Vultr).to_string(), "30/s");
        assert_eq!(documented_limit(Provider::Docker), RateLimit::None);
        for provider in [Provider::Vercel, Provider::Netlify, Provider::Turso] {
            assert!(
                !documented_limit(provider).windows().is_empty(),
                "{provider:?} gets a guess, not no limit"
            );
        }
    }

    // ---- what the provider says ----

    #[tokio::test(start_paused = true)]
    async fn every_header_family_is_read_and_garbage_ignored() {
        let clock = Clock::at_epoch_ms(1_750_000_000_000);
        let now = Instant::now();
        let wall = clock.wall(now);
        let read = |pairs: &[(&str, &str)]| Report::read(&headers(pairs), wall, now);
        let secs = Duration::from_secs;

        // DigitalOcean: reset in epoch seconds; names case-insensitive.
        let epoch = (wall.timestamp() + 30).to_string();
        let r = read(&[
            ("RateLimit-Limit", "5000"),
            ("RateLimit-Remaining", "4990"),
            ("RateLimit-Reset", &epoch),
        ]);
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(5000), Some(4990), Some(now + secs(30)))
        );
        assert_eq!(
            r.windows(),
            vec![Window {
                requests: 5000,
                per: secs(60)
            }]
        );

        // x-ratelimit-*: seconds from now when small, epoch seconds (Vercel) when large.
        let r = read(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "12")]);
        assert_eq!((r.remaining, r.reset), (Some(3), Some(now + secs(12))));
        let r = read(&[("X-RateLimit-Reset", &epoch)]);
        assert_eq!(r.reset, Some(now + secs(30)));

        // IETF draft, dictionary and list shapes, and the policy field.
        let r = read(&[
            ("ratelimit", "limit=100, remaining=50, reset=30"),
            ("ratelimit-policy", "100;w=60, 5000;w=3600"),
        ]);
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(100), Some(50), Some(now + secs(30)))
        );
        assert_eq!(
            r.windows(),
            vec![
                Window {
                    requests: 100,
                    per: secs(60)
                },
                Window {
                    requests: 5000,
                    per: secs(3600)
                },
            ]
        );
        let r = read(&[
            ("ratelimit", r#""burst";r=4;t=2, "day";r=900;t=80000"#),
            ("ratelimit-policy", r#""burst";q=10;w=1"#),
        ]);
        assert_eq!((r.remaining, r.reset), (Some(4), Some(now + secs(2))));
        assert_eq!(
            r.windows(),
            vec![Window {
                requests: 10,
                per: secs(1)
            }]
        );

        // Retry-After in seconds and as an HTTP date.
        let r = read(&[("retry-after", "7")]);
        assert_eq!(r.retry_after, Some(now + secs(7)));
        let date = (wall + chrono::TimeDelta::seconds(20)).to_rfc2822();
        let r = read(&[("retry-after", &date)]);
        assert_eq!(r.retry_after, Some(now + secs(20)));

        // What does not parse is left out, without failing the rest.
        let r = read(&[
            ("ratelimit-limit", "lots"),
            ("ratelimit-remaining", "-1"),
            ("ratelimit-reset", "soon"),
            ("x-ratelimit-remaining", "9"),
            ("retry-after", "whenever"),
            ("ratelimit-policy", "w=60;banana"),
        ]);
        assert_eq!(
            r,
            Report {
                remaining: Some(9),
                ..Report::default()
            }
        );
    }

    // ---- pacing ----

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_steady_rate() {
        let budget = Budget::new(limit("10/s,600/min"));
        let t0 = Instant::now();
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        assert_eq!(ms_since(t0), 0, "the burst goes at once");
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 100, "the 11th waits for the next token");
        for _ in 11..30 {
            let _ = budget.acquire().await;
        }
        assert_eq!(ms_since(t0), 2000, "30 calls: 10 at once, then 10 a second");
        assert_eq!(budget.steady_rate(), Some(10.0));
    }

    #[tokio::test(start_paused = true)]
    async fn every_window_is_enforced() {
        // The minute window has room for 100; the hour's 5 are the binding ones.
        let budget = Budget::new(limit("100/min,5/h"));
        let t0 = Instant::now();
        for _ in 0..5 {
            let _ = budget.acquire().await;
        }
        assert_eq!(ms_since(t0), 0);
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 720_000, "one hour / 5 calls = 12 minutes");
        assert_eq!(budget.steady_rate(), Some(5.0 / 3600.0));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_the_order_they_came() {
        let budget = Arc::new(Budget::new(limit("10/s")));
        let order = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let mut tasks = JoinSet::new();
        for i in 0..60 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.spawn(async move {
                let _ = budget.acquire().await;
                order.lock().unwrap().push(i);
            });
            // Each task is queued before the next one exists.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..60).collect::<Vec<_>>());
        assert_eq!(ms_since(t0), 5000, "10 at once, then 50 at 10 a second");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_first_in_line_goes_before_every_queued_call() {
        let budget = Arc::new(Budget::new(limit("10/s")));
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        let t0 = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        for i in 0..5 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.spawn(async move {
                let _ = budget.acquire().await;
                order.lock().unwrap().push((i.to_string(), ms_since(t0)));
            });
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (b, o) = (budget.clone(), order.clone());
        tasks.spawn(async move {
            let _ = b.acquire_first().await;
            o.lock().unwrap().push(("first".to_string(), ms_since(t0)));
        });
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let expected: Vec<(String, u128)> = [
            ("first", 100),
            ("0", 200),
            ("1", 300),
            ("2", 400),
            ("3", 500),
            ("4", 600),
        ]
        .into_iter()
        .map(|(who, at)| (who.to_string(), at))
        .collect();
        assert_eq!(
            order, expected,
            "the next call the bucket allows, then the queue"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_first_in_line_that_gives_up_holds_no_one_back() {
        let budget = Arc::new(Budget::new(limit("10/s")));
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        let t0 = Instant::now();
        let b = budget.clone();
        let gave_up = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(50), b.acquire_first())
                .await
                .is_err()
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        // Comes while a call first in line waits, so it waits for that one.
        let b = budget.clone();
        let queued = tokio::spawn(async move {
            let _ = b.acquire().await;
            ms_since(t0)
        });
        assert!(gave_up.await.unwrap(), "no call may go before 100 ms");
        let at = tokio::time::timeout(Duration::from_secs(10), queued)
            .await
            .expect("the queue's head was left waiting")
            .unwrap();
        assert_eq!(at, 100, "the queue's head goes at the next call");
    }

    /// Calls sent side by side reach the provider in any order. Here the last of a burst of
    /// ten is counted second and answered first: its count (8 left) leaves out eight calls
    /// sent before it, counted after it, so the provider has nothing left. A budget that took
    /// the count as net of only the calls sent after it would send eight calls into 429s.
    #[tokio::test(start_paused = true)]
    async fn an_answer_that_overtook_older_calls_does_not_spend_their_share() {
        let clock = Clock::at_epoch_ms(1_750_000_000_370);
        let budget = clock.budget(RateLimit::None);
        let answer = |permit: Permit<'_>, remaining: u32| {
            permit.answered(
                200,
                &headers(&[
                    ("ratelimit-limit", "600"),
                    ("ratelimit-remaining", &remaining.to_string()),
                ]),
            )
        };
        // The provider's burst is 10, and a quiet spell fills it again.
        answer(budget.acquire().await, 9);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut burst = Vec::new();
        for _ in 0..10 {
            burst.push(budget.acquire().await);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Counted 1st, 10th, 2nd, ..., 9th: the last one sent saw 8 left.
        let last = burst.pop().expect("ten calls");
        answer(last, 8);
        let next = tokio::time::timeout(Duration::from_millis(50), budget.acquire()).await;
        assert!(
            next.is_err(),
            "the provider has nothing left; the budget must wait for its refill"
        );
        // The older answers come in, the last one counted saying 0 was left. The provider
        // refills 10 a second; the budget, having erred by a call, sends the next one within
        // two refills, not after a pause as long as the burst it held back.
        for (permit, remaining) in burst.into_iter().zip([9, 7, 6, 5, 4, 3, 2, 1, 0]) {
            answer(permit, remaining);
        }
        let t0 = Instant::now();
        let _ = budget.acquire().await;
        assert!(ms_since(t0) <= 200, "waited {} ms", ms_since(t0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_does_not_overtake_a_waiter() {
        let budget = Arc::new(Budget::new(limit("10/s")));
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move {
                let _ = budget.acquire().await;
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Exactly one token comes free (11 a second, 9.9 spent)...
        budget.set_limit(limit("11/s"));
        // ...and a newcomer asks for it before the waiter has had a chance to run.
        let _ = budget.acquire().await;
        let newcomer = Instant::now();
        let waiter = waiter.await.unwrap();
        assert!(waiter < newcomer, "the waiter came first and goes first");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_takes_nothing_and_loses_nothing() {
        let budget = Arc::new(Budget::new(limit("1/s")));
        let t0 = Instant::now();
        let _ = budget.acquire().await;

        // The head of the queue gives up; one queued behind it is aborted.
        let head = tokio::spawn({
            let budget = budget.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(400), budget.acquire())
                    .await
                    .is_ok()
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let queued = tokio::spawn({
            let budget = budget.clone();
            async move {
                let _ = budget.acquire().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        queued.abort();
        assert!(!head.await.unwrap(), "the head timed out");
        assert_eq!(ms_since(t0), 400);

        // The next token is still where it was: not given to the cancelled ones, not lost.
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 1000);
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 2000);
        let state = budget.lock();
        assert_eq!((state.issued, state.in_flight), (3, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_waiter_until_retry_after() {
        let clock = Clock::at_epoch_ms(1_750_000_000_000);
        let budget = Arc::new(clock.budget(limit("100/s")));
        let t0 = Instant::now();
        budget
            .acquire()
            .await
            .answered(429, &headers(&[("retry-after", "3")]));
        assert_eq!(budget.paused_until(), Some(t0 + Duration::from_secs(3)));

        let mut tasks = JoinSet::new();
        for _ in 0..5 {
            let budget = budget.clone();
            tasks.spawn(async move {
                let _ = budget.acquire().await;
                ms_since(t0)
            });
        }
        while let Some(waited) = tasks.join_next().await {
            assert_eq!(waited.unwrap(), 3000);
        }
        assert_eq!(budget.paused_until(), None);

        // An HTTP date works the same.
        let date = (clock.wall(Instant::now()) + chrono::TimeDelta::seconds(7)).to_rfc2822();
        budget
            .acquire()
            .await
            .answered(429, &headers(&[("retry-after", &date)]));
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 10_000);

        // Without Retry-After, the rate-limit headers' reset.
        let reset = clock.epoch_in(4);
        budget.acquire().await.answered(
            429,
            &headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", &reset)]),
        );
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 14_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bare_429_backs_off_doubling_until_a_success() {
        let budget = Budget::new(limit("100/s"));
        let bare = HeaderMap::new();
        let paused_for = |budget: &Budget| {
            budget
                .paused_until()
                .map(|until| (until - Instant::now()).as_millis())
        };

        let (first, second) = (budget.acquire().await, budget.acquire().await);
        first.answered(429, &bare);
        assert_eq!(paused_for(&budget), Some(1000));
        // Already in flight when the pause began: the same episode, no doubling.
        second.answered(429, &bare);
        assert_eq!(paused_for(&budget), Some(1000));

        budget.acquire().await.answered(429, &bare);
        assert_eq!(paused_for(&budget), Some(2000));
        budget.acquire().await.answered(429, &bare);
        assert_eq!(paused_for(&budget), Some(4000));

        budget.acquire().await.answered(200, &bare);
        budget.acquire().await.answered(429, &bare);
        assert_eq!(paused_for(&budget), Some(1000), "a success starts over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_count_pauses_until_its_reset() {
        let clock = Clock::at_epoch_ms(1_750_000_000_000);
        let budget = clock.budget(limit("100/s"));
        let t0 = Instant::now();
        let reset = clock.epoch_in(5);
        budget.acquire().await.answered(
            200,
            &headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", &reset)]),
        );
        assert_eq!(budget.paused_until(), Some(t0 + Duration::from_secs(5)));
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 5000);

        // Relative resets (x-ratelimit-reset below 1e9) too.
        budget.acquire().await.answered(
            200,
            &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")]),
        );
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 7000);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_spent_count_renews_one_call_finds_out_what_is_left() {
        let clock = Clock::at_epoch_ms(1_750_000_000_000);
        let budget = Arc::new(clock.budget(RateLimit::None));
        let t0 = Instant::now();
        // The provider has shown it holds 30 at least, and 600 a minute would refill 50 calls
        // over the 5 s pause; but it only said that its count renews then.
        budget.acquire().await.answered(
            200,
            &headers(&[("ratelimit-limit", "600"), ("ratelimit-remaining", "30")]),
        );
        let reset = clock.epoch_in(5);
        budget.acquire().await.answered(
            200,
            &headers(&[
                ("ratelimit-limit", "600"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", &reset),
            ]),
        );
        let probe = budget.acquire().await;
        assert_eq!(ms_since(t0), 5000);
        let second = tokio::spawn({
            let budget = budget.clone();
            async move {
                let _ = budget.acquire().await;
                ms_since(t0)
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The probe's answer says what is left, and the rest go at once.
        probe.answered(
            200,
            &headers(&[("ratelimit-limit", "600"), ("ratelimit-remaining", "20")]),
        );
        assert_eq!(second.await.unwrap(), 5050);
    }

    #[tokio::test(start_paused = true)]
    async fn the_remaining_count_paces_calls_sent_before_the_next_answer() {
        let budget = Budget::new(limit("100/s"));
        let t0 = Instant::now();
        let first = budget.acquire().await;
        first.answered(
            200,
            &headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "4")]),
        );
        // Three are left; the fourth waits for the reset even though 100/s has room.
        let permits = [
            budget.acquire().await,
            budget.acquire().await,
            budget.acquire().await,
        ];
        assert_eq!(ms_since(t0), 0);
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 4000);
        drop(permits);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_limit_the_budget_learns_one_and_paces_by_it() {
        let budget = Budget::new(RateLimit::None);
        assert_eq!(budget.steady_rate(), None);
        let t0 = Instant::now();
        budget.acquire().await.answered(
            200,
            &headers(&[
                ("ratelimit", "limit=5, remaining=4, reset=60"),
                ("ratelimit-policy", "5;w=1"),
            ]),
        );
        assert_eq!(budget.steady_rate(), Some(5.0));
        for _ in 0..4 {
            budget.acquire().await.answered(200, &HeaderMap::new());
        }
        assert_eq!(ms_since(t0), 0, "the four left go at once");
        for _ in 0..16 {
            budget.acquire().await.answered(200, &HeaderMap::new());
        }
        assert_eq!(ms_since(t0), 3200, "then one every 200 ms");
        assert_eq!(
            budget.limit(),
            RateLimit::None,
            "the owner's setting is kept"
        );

        // DigitalOcean-style: a limit alone counts over a minute.
        let budget = Budget::new(RateLimit::None);
        budget
            .acquire()
            .await
            .answered(200, &headers(&[("ratelimit-limit", "120")]));
        assert_eq!(budget.steady_rate(), Some(2.0));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_bounds_the_calls_out_before_the_first_answer() {
        let budget = Arc::new(Budget::new(RateLimit::None));
        let sent = Arc::new(AtomicU32::new(0));
        let answers = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..100 {
            let (budget, sent, answers) = (budget.clone(), sent.clone(), answers.clone());
            tasks.spawn(async move {
                let permit = budget.acquire().await;
                sent.fetch_add(1, Ordering::SeqCst);
                answers.acquire().await.unwrap().forget();
                permit.answered(200, &HeaderMap::new());
            });
        }
        let settle = || tokio::time::sleep(Duration::from_millis(10));
        settle().await;
        assert_eq!(sent.load(Ordering::SeqCst), 8);

        // One answer: one place freed and one more allowed.
        answers.add_permits(1);
        settle().await;
        assert_eq!(sent.load(Ordering::SeqCst), 8 + 2);

        // A round trip of answers doubles what is in flight.
        answers.add_permits(9);
        settle().await;
        assert_eq!(sent.load(Ordering::SeqCst), 10 + 18);

        answers.add_permits(100);
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(sent.load(Ordering::SeqCst), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn headers_never_loosen_a_configured_limit_but_may_tighten_it() {
        let budget = Budget::new(limit("2/s"));
        let t0 = Instant::now();
        budget.acquire().await.answered(
            200,
            &headers(&[
                ("ratelimit-limit", "1000"),
                ("ratelimit-remaining", "999"),
                ("ratelimit-policy", "1000;w=1"),
            ]),
        );
        assert_eq!(budget.steady_rate(), Some(2.0));
        for _ in 0..5 {
            budget.acquire().await.answered(200, &HeaderMap::new());
        }
        assert_eq!(ms_since(t0), 2000, "still 2 a second");

        let budget = Budget::new(limit("100/s"));
        budget
            .acquire()
            .await
            .answered(200, &headers(&[("ratelimit-policy", "1;w=1")]));
        assert_eq!(budget.steady_rate(), Some(1.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_limit_keeps_what_was_spent() {
        let budget = Budget::new(limit("10/min"));
        let t0 = Instant::now();
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        // Raised to 20 a minute: ten are spent already, ten remain, then one every 3 s.
        budget.set_limit(limit("20/min"));
        for _ in 0..10 {
            let _ = budget.acquire().await;
        }
        assert_eq!(ms_since(t0), 0);
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 3000);

        // Lowered to 5 a minute with 20 spent in the last few seconds: a long wait.
        budget.set_limit(limit("5/min"));
        let _ = budget.acquire().await;
        assert!(ms_since(t0) > 60_000, "{}", ms_since(t0));
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_are_one_per_dock_and_follow_the_setting() {
        let budgets = Budgets::default();
        let (a, b) = (DockId::new(), DockId::new());
        let first = budgets.for_dock(a, limit("250/min"));
        let again = budgets.clone().for_dock(a, limit("250/min"));
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &budgets.for_dock(b, limit("250/min"))));

        let changed = budgets.for_dock(a, limit("100/min,1000/h"));
        assert!(Arc::ptr_eq(&first, &changed));
        assert_eq!(first.limit(), limit("100/min,1000/h"));

        budgets.forget(a);
        assert!(!Arc::ptr_eq(&first, &budgets.for_dock(a, RateLimit::None)));
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_sharing_a_dock_each_pace_by_their_part_of_its_limit() {
        let budgets = Budgets::default();
        let dock = DockId::new();
        let budget = budgets.for_dock(dock, limit("30/s"));
        assert!(budgets.set_nodes(3));
        assert!(!budgets.set_nodes(3), "the same count changes nothing");
        assert_eq!(budget.limit(), limit("10/s"));
        assert_eq!(budget.steady_rate(), Some(10.0));
        assert_eq!(
            budget.dock_rate(),
            Some(30.0),
            "the dock's, not this node's"
        );
        // The burst is a third of the dock's: ten calls now, the eleventh a tenth of a second
        // later.
        let t0 = Instant::now();
        for _ in 0..10 {
            drop(budget.acquire().await);
        }
        assert_eq!(ms_since(t0), 0);
        drop(budget.acquire().await);
        assert_eq!(ms_since(t0), 100);
        // A setting changed meanwhile is shared too, and never below one call a window.
        let budget = budgets.for_dock(dock, limit("2/s,90/min"));
        assert_eq!(budget.limit(), limit("1/s,30/min"));
        // The others gone, this node has the whole limit again.
        budgets.set_nodes(1);
        assert_eq!(budget.limit(), limit("2/s,90/min"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_the_provider_reports_is_shared_among_the_nodes() {
        let budgets = Budgets::default();
        budgets.set_nodes(3);
        let budget = budgets.for_dock(DockId::new(), limit("100/s"));
        let t0 = Instant::now();
        budget.acquire().await.answered(
            200,
            &headers(&[("ratelimit-remaining", "9"), ("ratelimit-reset", "4")]),
        );
        // The account has nine calls left, three of them this node's.
        let permits = [
            budget.acquire().await,
            budget.acquire().await,
            budget.acquire().await,
        ];
        assert_eq!(ms_since(t0), 0);
        let _ = budget.acquire().await;
        assert_eq!(ms_since(t0), 4000);
        drop(permits);
    }

    // ---- a simulated provider ----

    const FAKE_RATE: f64 = 10.0;
    const FAKE_BURST: f64 = 10.0;
    /// One round trip; the provider counts a call halfway through it.
    const LATENCY: Duration = Duration::from_millis(80);

    /// A provider allowing 600 calls a minute with a burst of 10 (a token bucket), answering
    /// DigitalOcean-style: `ratelimit-limit` is the per-minute figure, `ratelimit-remaining`
    /// the whole tokens left, `ratelimit-reset` the epoch second (rounded up) when the next one
    /// arrives ("when the oldest request expires"); refused calls get 429 and `retry-after`.
    struct FakeProvider {
        /// Off: no rate-limit headers at all, only `retry-after` on a 429.
        headers: bool,
        tokens: f64,
        at: Instant,
        served: u32,
        refused: u32,
    }

    impl FakeProvider {
        fn call(&mut self, now: Instant, wall: DateTime<Utc>) -> (u16, HeaderMap) {
            self.tokens = (self.tokens + (now - self.at).as_secs_f64() * FAKE_RATE).min(FAKE_BURST);
            self.at = now;
            // The provider's clock is not ours; a hair of slack keeps float noise out of it.
            let admitted = self.tokens >= 1.0 - 1e-6;
            if admitted {
                self.tokens -= 1.0;
                self.served += 1;
            } else {
                self.refused += 1;
            }
            let next = if self.tokens >= FAKE_BURST {
                0.0
            } else {
                (self.tokens.floor() + 1.0 - self.tokens) / FAKE_RATE
            };
            let next_ms = wall.timestamp_millis() + (next * 1000.0).ceil() as i64;
            let reset = (next_ms + 999).div_euclid(1000);
            let remaining = self.tokens.max(0.0).floor() as u64;
            let mut pairs = Vec::new();
            if self.headers {
                pairs.push(("ratelimit-limit", "600".to_string()));
                pairs.push(("ratelimit-remaining", remaining.to_string()));
                pairs.push(("ratelimit-reset", reset.to_string()));
            }
            if !admitted {
                pairs.push(("retry-after", (next.ceil() as u64).max(1).to_string()));
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (if admitted { 200 } else { 429 }, headers(&pairs))
        }
    }

    struct Figures {
        calls: u32,
        refused: u32,
        last_sent: Duration,
        wall: Duration,
    }

    /// 100 tasks making 3 calls each (a refused call is made again) against the fake provider.
    async fn simulate(limit: RateLimit, headers: bool) -> Figures {
        // Not on a whole second, so the provider's rounded-up resets do not line up with
        // the calls by luck.
        let clock = Clock::at_epoch_ms(1_750_000_000_370);
        let t0 = clock.start;
        let budget = Arc::new(clock.budget(limit.clone()));
        let provider = Arc::new(Mutex::new(FakeProvider {
            headers,
            tokens: FAKE_BURST,
            at: t0,
            served: 0,
            refused: 0,
        }));
        let last_sent = Arc::new(Mutex::new(Duration::ZERO));
        let mut tasks = JoinSet::new();
        for _ in 0..100 {
            let (budget, provider, last_sent) =
                (budget.clone(), provider.clone(), last_sent.clone());
            tasks.spawn(async move {
                for _ in 0..3 {
                    loop {
                        let permit = budget.acquire().await;
                        let sent = Instant::now() - t0;
                        tokio::time::sleep(LATENCY / 2).await;
                        let now = Instant::now();
                        let (status, headers) = provider.lock().unwrap().call(now, clock.wall(now));
                        tokio::time::sleep(LATENCY / 2).await;
                        permit.answered(status, &headers);
                        let mut last = last_sent.lock().unwrap();
                        *last = (*last).max(sent);
                        if status != 429 {
                            break;
                        }
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let provider = provider.lock().unwrap();
        let figures = Figures {
            calls: provider.served + provider.refused,
            refused: provider.refused,
            last_sent: *last_sent.lock().unwrap(),
            wall: Instant::now() - t0,
        };
        let share = 100.0 * f64::from(figures.refused) / f64::from(figures.calls);
        let (sent, done) = (figures.last_sent.as_secs_f64(), figures.wall.as_secs_f64());
        let kind = if headers { "headers" } else { "no headers" };
        eprintln!(
            "budget {limit}, {kind}: {} calls, {} refused ({share:.1}%), \
             last sent at {sent:.2} s, all answered at {done:.2} s",
            figures.calls, figures.refused,
        );
        figures
    }

    /// The least 300 calls can take against 10 a second with a burst of 10.
    const IDEAL: Duration = Duration::from_secs(29);

    #[tokio::test(start_paused = true)]
    async fn a_configured_budget_keeps_a_bursty_provider_happy() {
        let figures = simulate(limit("10/s,600/min"), true).await;
        assert_eq!(figures.calls - figures.refused, 300);
        assert!(figures.refused * 50 <= figures.calls, "≤ 2% refused");
        // Obeying `remaining: 0` until a reset given in whole seconds costs up to a second
        // once, at the end: the last calls wait for the reset's second instead of the token.
        assert!(
            figures.last_sent <= IDEAL + Duration::from_secs(1),
            "{:?}",
            figures.last_sent
        );

        // Without headers, nothing but the configured windows paces: exactly the ideal.
        let figures = simulate(limit("10/s,600/min"), false).await;
        assert_eq!(figures.refused, 0);
        assert!(figures.last_sent <= IDEAL, "{:?}", figures.last_sent);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unset_budget_learns_a_bursty_provider_quickly() {
        for headers in [true, false] {
            let figures = simulate(RateLimit::None, headers).await;
            assert_eq!(figures.calls - figures.refused, 300);
            assert!(
                figures.refused * 10 <= figures.calls,
                "≤ 10% refused, headers: {headers}"
            );
            assert!(
                figures.wall <= IDEAL.mul_f64(1.25),
                "{:?}, headers: {headers}",
                figures.wall
            );
        }
    }
}
