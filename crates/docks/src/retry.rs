//! When and how long to wait before trying a provider call again.
//!
//! Transient failures (no answer, 5xx, 429) back off exponentially with jitter, so that many
//! workers failing together do not retry together. When the provider says how long to wait —
//! `Retry-After`, or a spent rate-limit budget with its reset time — that wait is honoured as
//! a floor, never shortened by jitter.

use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Tries of one call in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest a provider may make us wait in one go; beyond it the call gives up as
    /// unavailable and the operation is rescheduled instead of holding a worker.
    pub max_wait: Duration,
    /// How long one request may take before it counts as lost.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_wait: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1`, given what the provider asked for.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        // "Equal jitter": half fixed, half random, so the wait never collapses to zero.
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(Duration::ZERO..=half);
        let backoff = half + jitter;
        match asked {
            Some(asked) => asked.max(backoff.min(asked + self.base_delay)),
            None => backoff,
        }
    }
}

/// What the provider's headers ask for: `Retry-After` (seconds or an HTTP date), else a spent
/// rate-limit budget (`ratelimit-remaining: 0` / `x-ratelimit-remaining: 0`) with its reset
/// time (epoch seconds, or seconds from now when small).
pub fn asked_wait(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(when) = chrono::DateTime::parse_from_rfc2822(v) {
            let ms = (when.with_timezone(&chrono::Utc) - now).num_milliseconds();
            return Some(Duration::from_millis(ms.max(0) as u64));
        }
    }
    let remaining = get("ratelimit-remaining").or_else(|| get("x-ratelimit-remaining"))?;
    if remaining.parse::<u64>().ok()? > 0 {
        return None;
    }
    let reset: i64 = get("ratelimit-reset")
        .or_else(|| get("x-ratelimit-reset"))?
        .parse()
        .ok()?;
    // Providers send a number of seconds or an epoch time, in seconds or in milliseconds
    // (as the budget reads them): no epoch is this small, and no epoch in seconds this big.
    let ms = if reset > 100_000_000_000 {
        reset - now.timestamp_millis()
    } else if reset > 1_000_000_000 {
        (reset - now.timestamp()) * 1000
    } else {
        reset * 1000
    };
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_and_dates_are_read() {
        let now = chrono::Utc::now();
        assert_eq!(
            asked_wait(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let later = (now + chrono::Duration::seconds(30)).to_rfc2822();
        let got = asked_wait(&headers(&[("retry-after", &later)]), now).unwrap();
        assert!(
            got > Duration::from_secs(28) && got <= Duration::from_secs(30),
            "{got:?}"
        );
    }

    #[test]
    fn a_spent_rate_limit_waits_for_its_reset() {
        let now = chrono::Utc::now();
        let reset = (now.timestamp() + 12).to_string();
        let h = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", &reset)]);
        let got = asked_wait(&h, now).unwrap();
        assert!(got >= Duration::from_secs(11) && got <= Duration::from_secs(12));
        let h = headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", &reset)]);
        assert_eq!(asked_wait(&h, now), None);
        // An epoch in milliseconds is read as one, not as a wait of decades.
        let reset_ms = (now.timestamp_millis() + 12_000).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset_ms),
        ]);
        let got = asked_wait(&h, now).unwrap();
        assert!(
            got > Duration::from_secs(11) && got <= Duration::from_secs(12),
            "{got:?}"
        );
        // A number of seconds.
        let h = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "5")]);
        assert_eq!(asked_wait(&h, now), Some(Duration::from_secs(5)));
    }

    #[test]
    fn backoff_grows_is_capped_and_never_undercuts_the_ask() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            assert!(d <= p.max_delay, "{d:?}");
            assert!(d >= (p.base_delay * (1 << (attempt - 1))).min(p.max_delay) / 2);
        }
        let asked = Duration::from_secs(3);
        for attempt in 1..6 {
            assert!(p.delay(attempt, Some(asked)) >= asked);
        }
    }
}
