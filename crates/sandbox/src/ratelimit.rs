//! Sliding-window request budget, one per token.
//!
//! Each admitted request carries its own timer and stops counting once the window
//! has passed since it arrived. That is how DigitalOcean documents its limiter, and it
//! is what makes `ratelimit-reset` "the time the oldest request expires" rather than
//! the end of a fixed bucket.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the limiter tells the client about its budget after a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    /// Unix seconds when the oldest counted request stops counting.
    pub(crate) reset_epoch: u64,
    /// The request was refused because the budget was already spent.
    pub(crate) exhausted: bool,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<u32>,
    window: Duration,
    /// Advertised when unlimited, so clients that read the headers see a believable
    /// provider value instead of a missing header.
    nominal_limit: u32,
    admitted: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<u32>, window: Duration, nominal_limit: u32) -> Self {
        Self {
            limit,
            window,
            nominal_limit,
            admitted: HashMap::new(),
        }
    }

    pub(crate) fn set_limit(&mut self, limit: Option<u32>) {
        self.limit = limit;
    }

    /// Counts the request against `key` if budget is left; refused requests are not
    /// counted, so a client that backs off recovers once the window slides.
    pub(crate) fn admit(&mut self, key: &str, now: Instant) -> Budget {
        let Some(limit) = self.limit else {
            return self.unlimited(now);
        };
        let window = self.window;
        let times = self.admitted.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        let exhausted = times.len() >= limit as usize;
        if !exhausted {
            times.push_back(now);
        }
        let oldest = times.front().copied().unwrap_or(now);
        Budget {
            limit,
            remaining: limit.saturating_sub(times.len() as u32),
            reset_epoch: epoch_secs_at(oldest + window, now),
            exhausted,
        }
    }

    /// The budget as shown to a caller that is not admitted at all (e.g. bad token).
    pub(crate) fn peek(&self, now: Instant) -> Budget {
        match self.limit {
            Some(limit) => Budget {
                limit,
                remaining: limit,
                reset_epoch: epoch_secs_at(now, now),
                exhausted: false,
            },
            None => self.unlimited(now),
        }
    }

    fn unlimited(&self, now: Instant) -> Budget {
        Budget {
            limit: self.nominal_limit,
            remaining: self.nominal_limit,
            reset_epoch: epoch_secs_at(now, now),
            exhausted: false,
        }
    }
}

/// Converts a monotonic instant to Unix seconds, rounding up so "reset" is never
/// announced earlier than it really happens.
fn epoch_secs_at(at: Instant, now: Instant) -> u64 {
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let wall = wall_now + at.saturating_duration_since(now);
    wall.as_secs() + u64::from(wall.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_spent_then_slides_back() {
        let mut limiter = RateLimiter::new(Some(2), Duration::from_secs(60), 5000);
        let t0 = Instant::now();
        assert_eq!(limiter.admit("a", t0).remaining, 1);
        let second = limiter.admit("a", t0 + Duration::from_secs(10));
        assert_eq!(second.remaining, 0);
        assert!(!second.exhausted);
        assert!(limiter.admit("a", t0 + Duration::from_secs(20)).exhausted);
        // Another token has its own budget.
        assert!(!limiter.admit("b", t0).exhausted);
        // The first request expired; exactly one slot came back.
        let later = limiter.admit("a", t0 + Duration::from_secs(61));
        assert!(!later.exhausted);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn unlimited_advertises_nominal_budget() {
        let mut limiter = RateLimiter::new(None, Duration::from_secs(60), 5000);
        let budget = limiter.admit("a", Instant::now());
        assert_eq!((budget.limit, budget.remaining), (5000, 5000));
        assert!(!budget.exhausted);
    }
}
