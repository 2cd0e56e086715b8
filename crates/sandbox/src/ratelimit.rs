//! Request budgets, one per token: DigitalOcean's sliding window, or a token bucket.
//!
//! In the sliding window each admitted request carries its own timer and stops
//! counting once the window has passed since it arrived. That is how DigitalOcean
//! documents its limiter, and it is what makes `ratelimit-reset` "the time the oldest
//! request expires" rather than the end of a fixed bucket.
//!
//! The token bucket is the other shape clients meet behind API gateways: `burst`
//! requests at once, then a steady `per_minute` trickle. It lets a benchmark ask for
//! "600 a minute, 10 at a time" and see whether a client paces itself or bursts into
//! 429s. The bucket is kept in exact integer arithmetic so that "one token every
//! 100 ms" never turns into 0.99999 of a token.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A token-bucket limit: at most `burst` requests at once, refilled continuously at
/// `per_minute / 60` requests a second. Each token (credential) has its own bucket,
/// which starts full.
///
/// `per_minute: 0` never refills and `burst: 0` refuses everything; both are allowed
/// because a test may want exactly that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketLimit {
    /// Refill rate, and the value of `ratelimit-limit`.
    pub per_minute: u32,
    /// Capacity: how many requests may arrive back to back from a full bucket.
    pub burst: u32,
}

/// What the limiter tells the client about its budget after a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    /// Unix seconds when the oldest counted request stops counting (window), or when
    /// the bucket next holds a whole token (bucket).
    pub(crate) reset_epoch: u64,
    /// The request was refused because the budget was already spent.
    pub(crate) exhausted: bool,
    /// The limiter's own `Retry-After` for a refused request, when it can work one out
    /// (the bucket knows when its next token arrives); otherwise the configured one.
    pub(crate) retry_after_secs: Option<u64>,
}

/// Which limit is in force. Only one at a time, so a setter replaces whatever was there.
#[derive(Clone, Copy, Debug)]
enum Policy {
    Unlimited,
    /// Requests per token per sliding window.
    Window(u32),
    Bucket(BucketLimit),
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    policy: Policy,
    window: Duration,
    /// Advertised when unlimited, so clients that read the headers see a believable
    /// provider value instead of a missing header.
    nominal_limit: u32,
    admitted: HashMap<String, VecDeque<Instant>>,
    buckets: HashMap<String, Bucket>,
}

/// Fixed point: one token is this many units, and a bucket refilling at `per_minute`
/// gains exactly `per_minute` units per nanosecond.
const UNITS_PER_TOKEN: u128 = 60 * 1_000_000_000;

#[derive(Debug)]
struct Bucket {
    units: u128,
    /// When `units` was last brought up to date.
    at: Instant,
}

impl RateLimiter {
    /// `bucket`, when given, wins over `limit`: the two are alternative shapes, not
    /// limits that stack.
    pub(crate) fn new(
        limit: Option<u32>,
        bucket: Option<BucketLimit>,
        window: Duration,
        nominal_limit: u32,
    ) -> Self {
        let policy = match (bucket, limit) {
            (Some(bucket), _) => Policy::Bucket(bucket),
            (None, Some(limit)) => Policy::Window(limit),
            (None, None) => Policy::Unlimited,
        };
        Self {
            policy,
            window,
            nominal_limit,
            admitted: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Switches to the sliding window (or to no limit). Requests already counted in
    /// the window keep counting.
    pub(crate) fn set_limit(&mut self, limit: Option<u32>) {
        self.policy = limit.map_or(Policy::Unlimited, Policy::Window);
    }

    /// Switches to a token bucket (or to no limit); every token starts with a full
    /// bucket, so a test that changes the limit mid-run knows where it stands.
    pub(crate) fn set_bucket(&mut self, bucket: Option<BucketLimit>) {
        self.policy = bucket.map_or(Policy::Unlimited, Policy::Bucket);
        self.buckets.clear();
    }

    /// Counts the request against `key` if budget is left; refused requests are not
    /// counted, so a client that backs off recovers once the window slides or the
    /// bucket refills.
    pub(crate) fn admit(&mut self, key: &str, now: Instant) -> Budget {
        match self.policy {
            Policy::Unlimited => self.unlimited(now),
            Policy::Window(limit) => self.admit_window(limit, key, now),
            Policy::Bucket(limit) => self.admit_bucket(limit, key, now),
        }
    }

    fn admit_window(&mut self, limit: u32, key: &str, now: Instant) -> Budget {
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
            retry_after_secs: None,
        }
    }

    fn admit_bucket(&mut self, limit: BucketLimit, key: &str, now: Instant) -> Budget {
        let capacity = u128::from(limit.burst) * UNITS_PER_TOKEN;
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            units: capacity,
            at: now,
        });
        // Requests are stamped before they queue for the lock, so `now` can be a hair
        // older than the last update; such a request simply finds no refill.
        let elapsed = now.saturating_duration_since(bucket.at).as_nanos();
        bucket.units = bucket
            .units
            .saturating_add(elapsed.saturating_mul(u128::from(limit.per_minute)))
            .min(capacity);
        bucket.at = bucket.at.max(now);

        let exhausted = bucket.units < UNITS_PER_TOKEN;
        if !exhausted {
            bucket.units -= UNITS_PER_TOKEN;
        }
        let next_token = if bucket.units >= UNITS_PER_TOKEN {
            Duration::ZERO
        } else if limit.per_minute == 0 || limit.burst == 0 {
            // Never refills; point at the next window like the sliding limiter would.
            self.window
        } else {
            let missing = UNITS_PER_TOKEN - bucket.units;
            let nanos = missing.div_ceil(u128::from(limit.per_minute));
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        };
        Budget {
            limit: limit.per_minute,
            remaining: u32::try_from(bucket.units / UNITS_PER_TOKEN).unwrap_or(u32::MAX),
            reset_epoch: epoch_secs_at(now + next_token, now),
            exhausted,
            // Whole seconds, and never 0, which would invite a hot retry loop.
            retry_after_secs: exhausted.then(|| ceil_secs(next_token).max(1)),
        }
    }

    /// The budget as shown to a caller that is not admitted at all (e.g. bad token).
    pub(crate) fn peek(&self, now: Instant) -> Budget {
        let (limit, remaining) = match self.policy {
            Policy::Unlimited => return self.unlimited(now),
            Policy::Window(limit) => (limit, limit),
            Policy::Bucket(bucket) => (bucket.per_minute, bucket.burst),
        };
        Budget {
            limit,
            remaining,
            reset_epoch: epoch_secs_at(now, now),
            exhausted: false,
            retry_after_secs: None,
        }
    }

    fn unlimited(&self, now: Instant) -> Budget {
        Budget {
            limit: self.nominal_limit,
            remaining: self.nominal_limit,
            reset_epoch: epoch_secs_at(now, now),
            exhausted: false,
            retry_after_secs: None,
        }
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Converts a monotonic instant to Unix seconds, rounding up so "reset" is never
/// announced earlier than it really happens.
fn epoch_secs_at(at: Instant, now: Instant) -> u64 {
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ceil_secs(wall_now + at.saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall_secs_after(after: Duration) -> (u64, u64) {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + after;
        (wall.as_secs(), ceil_secs(wall) + 1)
    }

    #[test]
    fn budget_is_spent_then_slides_back() {
        let mut limiter = RateLimiter::new(Some(2), None, Duration::from_secs(60), 5000);
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
        let mut limiter = RateLimiter::new(None, None, Duration::from_secs(60), 5000);
        let budget = limiter.admit("a", Instant::now());
        assert_eq!((budget.limit, budget.remaining), (5000, 5000));
        assert!(!budget.exhausted);
    }

    const SIX_HUNDRED_BURST_TEN: BucketLimit = BucketLimit {
        per_minute: 600,
        burst: 10,
    };

    fn bucket_limiter(limit: BucketLimit) -> RateLimiter {
        RateLimiter::new(None, Some(limit), Duration::from_secs(60), 5000)
    }

    #[test]
    fn bucket_allows_the_burst_then_refuses_without_spending() {
        let mut limiter = bucket_limiter(SIX_HUNDRED_BURST_TEN);
        let t0 = Instant::now();
        for left in (0..10).rev() {
            let budget = limiter.admit("a", t0);
            assert!(!budget.exhausted);
            assert_eq!((budget.limit, budget.remaining), (600, left));
            assert_eq!(budget.retry_after_secs, None);
        }
        // Empty: refused over and over, and the refusals do not dig a hole.
        for _ in 0..5 {
            let refused = limiter.admit("a", t0 + Duration::from_millis(50));
            assert!(refused.exhausted);
            assert_eq!(refused.remaining, 0);
            assert_eq!(refused.retry_after_secs, Some(1), "at least one second");
        }
        // 600 a minute is one token every 100 ms.
        let refilled = limiter.admit("a", t0 + Duration::from_millis(100));
        assert!(!refilled.exhausted, "refused requests took no tokens");
        assert!(
            limiter
                .admit("a", t0 + Duration::from_millis(150))
                .exhausted
        );
        assert!(
            !limiter
                .admit("a", t0 + Duration::from_millis(200))
                .exhausted
        );
        // Another token has its own bucket.
        assert_eq!(limiter.admit("b", t0).remaining, 9);
    }

    #[test]
    fn bucket_refills_continuously_up_to_its_capacity() {
        let mut limiter = bucket_limiter(SIX_HUNDRED_BURST_TEN);
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.admit("a", t0);
        }
        // 350 ms later: 3.5 tokens; one is spent now, 2 whole ones are left.
        let budget = limiter.admit("a", t0 + Duration::from_millis(350));
        assert_eq!(budget.remaining, 2);
        // An hour later the bucket holds `burst`, not 36,000.
        let budget = limiter.admit("a", t0 + Duration::from_secs(3600));
        assert_eq!(budget.remaining, 9);
    }

    #[test]
    fn bucket_headers_say_when_the_next_token_arrives() {
        // One token a minute: an empty bucket waits a whole minute.
        let mut limiter = bucket_limiter(BucketLimit {
            per_minute: 1,
            burst: 1,
        });
        let t0 = Instant::now();
        let (earliest, _) = wall_secs_after(Duration::ZERO);
        let spent = limiter.admit("a", t0);
        assert!(!spent.exhausted);
        assert_eq!(spent.remaining, 0);
        let refused = limiter.admit("a", t0 + Duration::from_secs(20));
        assert!(refused.exhausted);
        assert_eq!(refused.retry_after_secs, Some(40));
        let (_, latest) = wall_secs_after(Duration::from_secs(40));
        assert!(
            (earliest + 40..=latest).contains(&refused.reset_epoch),
            "reset {} not in {}..={latest}",
            refused.reset_epoch,
            earliest + 40
        );
        // Retry-After is rounded up, never down.
        let refused = limiter.admit("a", t0 + Duration::from_millis(20_500));
        assert_eq!(refused.retry_after_secs, Some(40));
    }

    #[test]
    fn bucket_edge_cases_and_switching() {
        let mut limiter = bucket_limiter(BucketLimit {
            per_minute: 0,
            burst: 1,
        });
        let t0 = Instant::now();
        assert!(!limiter.admit("a", t0).exhausted);
        let never = limiter.admit("a", t0 + Duration::from_secs(3600));
        assert!(never.exhausted, "no refill at 0 a minute");
        assert_eq!(never.retry_after_secs, Some(60));

        limiter.set_bucket(Some(BucketLimit {
            per_minute: 60,
            burst: 0,
        }));
        assert!(
            limiter.admit("a", t0).exhausted,
            "burst 0 refuses everything"
        );

        limiter.set_bucket(Some(SIX_HUNDRED_BURST_TEN));
        assert_eq!(
            limiter.admit("a", t0).remaining,
            9,
            "a new bucket starts full"
        );
        limiter.set_limit(Some(1));
        let window = limiter.admit("a", t0);
        assert_eq!((window.limit, window.remaining), (1, 0));
        limiter.set_bucket(None);
        assert_eq!(limiter.admit("a", t0).limit, 5000);
    }
}
