//! `stackdock-bench`: how fast StackDock provisions, measured end to end.
//!
//! Where it sits: above every other crate and depended on by none. Scenarios a–c run a real
//! [`stackdock_engine::Engine`] on a real SQLite file in a temporary directory against the
//! in-process DigitalOcean sandbox, exactly as `stackdock up --sandbox` wires them, and read
//! the results back through the store's change feed and the sandbox's request counts.
//! Scenarios d and e run the `stackdock` binary itself.
//!
//! | id | what | judged against |
//! |----|------|----------------|
//! | a  | a fleet of droplets provisioned then deprovisioned, 100 ms a call, ready after 2 s, no limit | the critical path (3 calls + ready time), calls per droplet |
//! | b  | the same under a 600/min, burst 10 bucket, with the dock's budget set to match | the floor `(3N − burst) / rate`, 429s |
//! | b2 | b with the dock's budget `none` (learned from headers) | 1.25 × the floor, 429s |
//! | c  | provisions at zero latency | what a plain HTTP client gets from the same sandbox |
//! | d  | the binary: start-up, idle memory, with 100,000 rows; every collection walked a page at a time | ready time, RSS, page time |
//! | e  | the binary with its sandbox docks: 1,000 clients on the event stream, one state change at a time | p99 from the request to delivery |
//!
//! Code map: `rig` (store, sandbox, engine, org and dock for a–c), `follow` (waiting for
//! resources to settle by following the change feed), `fleet` (a, b, b2), `overhead` (c),
//! `binary` (d), `subscribers` (e), `timeline` (calls, settled resources and CPU over time, with `--timeline`),
//! `report` (the table, the JSON document and `docs/benchmarks.md`).
//!
//! Every wait is for a condition with a deadline. A scenario that does not finish is an error;
//! a finished one whose figures miss their target is reported, not an error.

use std::path::PathBuf;
use std::time::Duration;

mod binary;
mod fleet;
mod follow;
mod nodes;
mod overhead;
mod report;
mod rig;
mod subscribers;
mod timeline;

pub use report::{Bound, Check, Machine, Report, ScenarioReport};

/// Why a scenario could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] stackdock_store::StoreError),
    #[error(transparent)]
    Engine(#[from] stackdock_engine::EngineError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// A wait ran past its deadline; `what` says what was still missing.
    #[error("timed out after {after:?}: {what}")]
    Deadline { after: Duration, what: String },
    #[error("{0}")]
    Other(String),
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let what = what.into();
        move |source| Self::Http { what, source }
    }
}

/// One scenario, by the id used on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    A,
    B,
    B2,
    C,
    D,
    E,
    E2,
    F,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Self::A,
        Self::B,
        Self::B2,
        Self::C,
        Self::D,
        Self::E,
        Self::E2,
        Self::F,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
            Self::B2 => "b2",
            Self::C => "c",
            Self::D => "d",
            Self::E => "e",
            Self::E2 => "e2",
            Self::F => "f",
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|sc| sc.id() == s.trim())
            .ok_or_else(|| format!("unknown scenario {s:?}; known: a, b, b2, c, d, e, e2, f"))
    }
}

/// How big each scenario is.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// (a) droplets provisioned, then deprovisioned.
    pub fleet: usize,
    /// (b, b2) droplets provisioned, then deprovisioned, under the rate limit.
    pub limited: usize,
    /// (c) provisions at zero latency.
    pub overhead: usize,
    /// (c) GETs the plain client sends, and how many at once.
    pub raw_requests: usize,
    pub raw_concurrency: usize,
    /// (d) server rows seeded into the database.
    pub rows: usize,
    /// (e) clients following the event stream, and state changes made one after another.
    pub subscribers: usize,
    pub rounds: usize,
    /// (f) provisions on one node, then on three.
    pub nodes: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            fleet: 500,
            limited: 100,
            overhead: 1000,
            raw_requests: 20_000,
            raw_concurrency: 256,
            rows: 100_000,
            subscribers: 1000,
            rounds: 20,
            nodes: 500,
        }
    }

    /// Small enough that a test run finishes in a few seconds.
    pub fn smoke() -> Self {
        Self {
            fleet: 10,
            limited: 10,
            overhead: 50,
            raw_requests: 2_000,
            raw_concurrency: 64,
            rows: 1_000,
            subscribers: 20,
            rounds: 3,
            nodes: 20,
        }
    }

    /// Applies `a=500,b=100,c=1000,d=100000,e=1000,f=500` (`b` sizes b and b2; `raw=N` the plain
    /// client's GETs; `e` the subscribers, `rounds=N` their state changes).
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected SCENARIO=N, e.g. a=500"))?;
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: {value:?} is not a whole number"))?;
            if n == 0 {
                return Err(format!("{part:?}: must be at least 1"));
            }
            match key.trim() {
                "a" => self.fleet = n,
                "b" | "b2" => self.limited = n,
                "c" => self.overhead = n,
                "raw" => self.raw_requests = n,
                "d" => self.rows = n,
                "e" => self.subscribers = n,
                "rounds" => self.rounds = n,
                "f" => self.nodes = n,
                other => {
                    return Err(format!(
                        "{other:?}: expected a, b, c, d, e, f, raw or rounds"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Tiny sizes and short waits; nothing is judged but completion.
    pub smoke: bool,
    /// The scenarios to run, in this order; empty runs all.
    pub only: Vec<Scenario>,
    pub sizes: Sizes,
    /// The `stackdock` binary for d. `None`: `cargo build --release -p stackdock` first and
    /// use what it built.
    pub stackdock_bin: Option<PathBuf>,
    /// Print each scenario's lines to stdout as it finishes.
    pub print: bool,
    /// Add a timeline of calls, settled resources and CPU to a–c's figures.
    pub timeline: bool,
}

impl Options {
    pub fn full() -> Self {
        Self {
            smoke: false,
            only: Vec::new(),
            sizes: Sizes::full(),
            stackdock_bin: None,
            print: true,
            timeline: false,
        }
    }

    pub fn smoke() -> Self {
        Self {
            smoke: true,
            sizes: Sizes::smoke(),
            ..Self::full()
        }
    }

    fn scenarios(&self) -> Vec<Scenario> {
        if self.only.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.only.clone()
        }
    }
}

/// Runs the chosen scenarios one after another and reports each, finished or not.
pub async fn run(options: Options) -> Report {
    let mut report = Report::new(&options);
    for scenario in options.scenarios() {
        let load_before = report::load_average();
        let result = match scenario {
            Scenario::A => fleet::run(fleet::Spec::unlimited(&options)).await,
            Scenario::B => fleet::run(fleet::Spec::limited(&options, true)).await,
            Scenario::B2 => fleet::run(fleet::Spec::limited(&options, false)).await,
            Scenario::C => overhead::run(&options).await,
            Scenario::D => binary::run(&options).await,
            Scenario::E => subscribers::run(&options).await,
            Scenario::E2 => subscribers::run_across_nodes(&options).await,
            Scenario::F => nodes::run(&options).await,
        };
        let mut done = ScenarioReport::new(scenario, result, options.smoke);
        done.load_before = load_before;
        if options.print {
            print!("{}", report::lines(&done));
        }
        report.scenarios.push(done);
    }
    report
}
