//! Seeded random misbehaviour, for soak tests and benchmarks that want a flaky
//! provider rather than one scripted failure.
//!
//! Queued faults ([`crate::fault`]) say exactly which request fails; a chaos profile
//! says how often things go wrong and lets chance pick the requests. The dice are a
//! seeded [`StdRng`], and every request that reaches them takes exactly two draws
//! whatever happens to it, so the same seed and the same sequence of requests give
//! the same faults: a failing run can be replayed from its seed.
//!
//! Where chaos sits in a request's path (see `front_door`): after authentication and
//! the rate limit, so it never hides a 401 or a limiter's 429. A 429 storm comes
//! first and, like the rate limit, keeps queued faults for later requests; then a
//! queued fault, if one matches, wins over the dice and the dice are not rolled.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How often things go wrong, per request. Rates are probabilities from 0 to 1
/// (values outside are clamped). One roll decides each request: the error rate is
/// served first, so where rates add up to more than 1 the later ones get what is
/// left.
///
/// ```
/// use std::time::Duration;
/// use stackdock_sandbox::{Chaos, Storm};
///
/// let chaos = Chaos {
///     seed: 7,
///     error_rate: 0.02,
///     lose_rate: 0.01,
///     truncate_rate: 0.01,
///     storm: Some(Storm { every: Duration::from_secs(30), lasts: Duration::from_secs(2) }),
/// };
/// # let _ = chaos;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chaos {
    /// Seeds the dice; rerun with the same seed to replay a run.
    pub seed: u64,
    /// Any method: answer 500, 502 or 503 (chosen at random) without doing the work.
    pub error_rate: f64,
    /// POST and DELETE only: do the work, then lose the answer, half the time as a
    /// 500 with the provider's error body and half the time by closing the
    /// connection without answering.
    pub lose_rate: f64,
    /// GET only: do the work, then send a successful answer with its body cut at a
    /// random byte (at least one byte sent, at least one withheld) and a
    /// `Content-Length` that matches, so the client reads invalid JSON instead of
    /// hanging. Answers that are not successes go out whole.
    pub truncate_rate: f64,
    /// Periodic 429 storms.
    pub storm: Option<Storm>,
}

/// A 429 storm: for `lasts` at the start of every `every`, counted from when the chaos
/// profile was set, every request gets 429 with `Retry-After: 1` and no work done.
/// `lasts >= every` is a storm that never ends; `every` of zero never storms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Storm {
    pub every: Duration,
    pub lasts: Duration,
}

/// How many times chaos struck, by kind, since the sandbox started (setting a new
/// profile does not reset them). Queued faults are not counted here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChaosCounts {
    /// 500/502/503 answers instead of the work (`error_rate`).
    pub errors: u64,
    /// Work done, then answered 500 (`lose_rate`).
    pub lost_with_500: u64,
    /// Work done, then the connection closed without an answer (`lose_rate`).
    pub disconnects: u64,
    /// Work done, then the body cut short (`truncate_rate`).
    pub truncated: u64,
    /// 429s during a storm.
    pub storm_429s: u64,
}

impl ChaosCounts {
    pub fn total(&self) -> u64 {
        self.errors + self.lost_with_500 + self.disconnects + self.truncated + self.storm_429s
    }
}

/// What the dice picked for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mischief {
    /// Answer this status without doing the work.
    Error(u16),
    LoseWith500,
    Disconnect,
    /// Cut the body at this point (see `front_door::cut_at`).
    Truncate {
        at: f64,
    },
}

/// The profile in force, its dice and its tally.
pub(crate) struct ChaosEngine {
    profile: Option<Chaos>,
    rng: StdRng,
    /// When the profile was set; storms are timed from here.
    since: Instant,
    counts: ChaosCounts,
}

impl ChaosEngine {
    pub(crate) fn new(profile: Option<Chaos>) -> Self {
        let seed = profile.as_ref().map_or(0, |p| p.seed);
        Self {
            profile,
            rng: StdRng::seed_from_u64(seed),
            since: Instant::now(),
            counts: ChaosCounts::default(),
        }
    }

    /// Replaces the profile, reseeds the dice and restarts the storm clock; the
    /// counts carry on.
    pub(crate) fn set(&mut self, profile: Option<Chaos>) {
        let counts = self.counts;
        *self = Self::new(profile);
        self.counts = counts;
    }

    pub(crate) fn counts(&self) -> ChaosCounts {
        self.counts
    }

    /// Whether a storm is raging at `now`; counts the 429 it will cause.
    pub(crate) fn storm_hits(&mut self, now: Instant) -> bool {
        let Some(storm) = self.profile.as_ref().and_then(|p| p.storm) else {
            return false;
        };
        let every = storm.every.as_nanos();
        if every == 0 {
            return false;
        }
        let phase = now.saturating_duration_since(self.since).as_nanos() % every;
        let hit = phase < storm.lasts.as_nanos();
        if hit {
            self.counts.storm_429s += 1;
        }
        hit
    }

    /// Rolls for one request and counts what it picked, except truncations, which
    /// only count once an answer was really cut (see [`ChaosEngine::truncated`]).
    pub(crate) fn roll(&mut self, method: &str) -> Option<Mischief> {
        let profile = self.profile.as_ref()?;
        // Both draws happen whatever the outcome, so one request's fate never shifts
        // the dice for the requests after it.
        let roll: f64 = self.rng.r#gen();
        let detail: f64 = self.rng.r#gen();

        let error = rate(profile.error_rate);
        let is = |m: &str| method.eq_ignore_ascii_case(m);
        let mischief = if roll < error {
            Mischief::Error(match detail {
                d if d < 1.0 / 3.0 => 500,
                d if d < 2.0 / 3.0 => 502,
                _ => 503,
            })
        } else if (is("POST") || is("DELETE")) && roll < error + rate(profile.lose_rate) {
            if detail < 0.5 {
                Mischief::LoseWith500
            } else {
                Mischief::Disconnect
            }
        } else if is("GET") && roll < error + rate(profile.truncate_rate) {
            Mischief::Truncate { at: detail }
        } else {
            return None;
        };
        match mischief {
            Mischief::Error(_) => self.counts.errors += 1,
            Mischief::LoseWith500 => self.counts.lost_with_500 += 1,
            Mischief::Disconnect => self.counts.disconnects += 1,
            Mischief::Truncate { .. } => {}
        }
        Some(mischief)
    }

    /// An answer picked for truncation was really cut.
    pub(crate) fn truncated(&mut self) {
        self.counts.truncated += 1;
    }
}

/// A probability from a caller's number: NaN means never, and the rest is clamped.
fn rate(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(chaos: Chaos) -> ChaosEngine {
        ChaosEngine::new(Some(chaos))
    }

    fn rolls(engine: &mut ChaosEngine, methods: &[&str]) -> Vec<Option<Mischief>> {
        methods.iter().map(|m| engine.roll(m)).collect()
    }

    const MIX: [&str; 6] = ["GET", "POST", "GET", "DELETE", "GET", "PUT"];

    fn mixed(seed: u64) -> Chaos {
        Chaos {
            seed,
            error_rate: 0.2,
            lose_rate: 0.3,
            truncate_rate: 0.3,
            storm: None,
        }
    }

    #[test]
    fn the_same_seed_replays_the_same_faults() {
        let methods: Vec<&str> = MIX.iter().copied().cycle().take(300).collect();
        let first = rolls(&mut engine(mixed(42)), &methods);
        let again = rolls(&mut engine(mixed(42)), &methods);
        let other = rolls(&mut engine(mixed(43)), &methods);
        assert_eq!(first, again);
        assert_ne!(first, other);

        // Reseeding through `set` starts the same sequence over.
        let mut reused = engine(mixed(42));
        rolls(&mut reused, &methods[..17]);
        reused.set(Some(mixed(42)));
        assert_eq!(rolls(&mut reused, &methods), first);
    }

    #[test]
    fn each_fault_hits_only_its_methods() {
        let mut engine = engine(Chaos {
            seed: 1,
            lose_rate: 1.0,
            truncate_rate: 1.0,
            ..Chaos::default()
        });
        for _ in 0..200 {
            assert!(matches!(
                engine.roll("GET"),
                Some(Mischief::Truncate { .. })
            ));
            assert!(matches!(
                engine.roll("POST"),
                Some(Mischief::LoseWith500 | Mischief::Disconnect)
            ));
            assert!(matches!(
                engine.roll("DELETE"),
                Some(Mischief::LoseWith500 | Mischief::Disconnect)
            ));
            assert_eq!(engine.roll("PUT"), None);
        }
        let counts = engine.counts();
        assert_eq!(counts.lost_with_500 + counts.disconnects, 400);
        assert!(
            counts.lost_with_500 > 100 && counts.disconnects > 100,
            "{counts:?}"
        );
        assert_eq!(counts.truncated, 0, "counted only once an answer is cut");
    }

    #[test]
    fn rates_come_out_about_right() {
        let mut engine = engine(Chaos {
            seed: 9,
            error_rate: 0.1,
            truncate_rate: 0.2,
            ..Chaos::default()
        });
        let mut statuses = std::collections::BTreeMap::new();
        let (mut errors, mut truncations) = (0, 0);
        for _ in 0..10_000 {
            match engine.roll("GET") {
                Some(Mischief::Error(status)) => {
                    errors += 1;
                    *statuses.entry(status).or_insert(0) += 1;
                }
                Some(Mischief::Truncate { at }) => {
                    truncations += 1;
                    assert!((0.0..1.0).contains(&at));
                }
                Some(other) => panic!("a GET got {other:?}"),
                None => {}
            }
        }
        assert!((800..1200).contains(&errors), "{errors}");
        assert!((1700..2300).contains(&truncations), "{truncations}");
        assert_eq!(
            statuses.keys().copied().collect::<Vec<_>>(),
            [500, 502, 503]
        );
        assert!(statuses.values().all(|n| *n > 250), "{statuses:?}");
        assert_eq!(engine.counts().errors, errors);
    }

    #[test]
    fn out_of_range_rates_are_clamped() {
        let mut engine = engine(Chaos {
            error_rate: f64::NAN,
            truncate_rate: 7.0,
            lose_rate: -1.0,
            ..Chaos::default()
        });
        for _ in 0..50 {
            assert!(matches!(
                engine.roll("GET"),
                Some(Mischief::Truncate { .. })
            ));
            assert_eq!(engine.roll("POST"), None);
        }
    }

    #[test]
    fn storms_come_and_go_on_schedule() {
        let mut engine = engine(Chaos {
            storm: Some(Storm {
                every: Duration::from_secs(10),
                lasts: Duration::from_secs(2),
            }),
            ..Chaos::default()
        });
        let t0 = engine.since;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(engine.storm_hits(at(0)));
        assert!(engine.storm_hits(at(1_999)));
        assert!(!engine.storm_hits(at(2_000)));
        assert!(!engine.storm_hits(at(9_999)));
        assert!(engine.storm_hits(at(10_000)));
        assert!(engine.storm_hits(at(31_500)));
        assert_eq!(engine.counts().storm_429s, 4);
        assert_eq!(engine.roll("GET"), None, "a storm alone rolls nothing");

        engine.set(Some(Chaos {
            storm: Some(Storm {
                every: Duration::ZERO,
                lasts: Duration::from_secs(1),
            }),
            ..Chaos::default()
        }));
        assert!(!engine.storm_hits(Instant::now()));
        assert_eq!(
            engine.counts().storm_429s,
            4,
            "counts survive a new profile"
        );
        engine.set(None);
        assert!(!engine.storm_hits(Instant::now()));
        assert_eq!(engine.roll("POST"), None);
    }
}
