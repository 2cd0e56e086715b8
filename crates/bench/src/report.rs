//! What a run reports: one line per scenario as it finishes, a table of every figure beside
//! its target, one JSON document with everything measured, and the `docs/benchmarks.md` page
//! that holds both with the machine, the date and the command.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};
use stackdock_core::Timestamp;

use crate::{BenchError, Options, Scenario};

/// Which side of a target a figure must fall on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

impl Bound {
    fn admits(self, x: f64) -> bool {
        match self {
            Self::AtMost(t) => x <= t,
            Self::AtLeast(t) => x >= t,
        }
    }
}

/// One figure beside its target.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What is measured, with what it is measured against, e.g. `wall / critical path`.
    pub figure: String,
    pub measured: f64,
    /// `s`, `ms`, `MB`, `%`, `/s` or empty for a plain number.
    pub unit: &'static str,
    pub target: Bound,
    pub met: bool,
}

impl Check {
    pub(crate) fn new(
        figure: impl Into<String>,
        measured: f64,
        unit: &'static str,
        target: Bound,
    ) -> Self {
        Self {
            figure: figure.into(),
            measured,
            unit,
            target,
            met: target.admits(measured),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Bound::AtMost(t) => format!("≤ {}", number(t, self.unit)),
            Bound::AtLeast(t) => format!("≥ {}", number(t, self.unit)),
        }
    }
}

/// A value with its unit, to a precision that suits the unit.
fn number(x: f64, unit: &str) -> String {
    match unit {
        "s" => format!("{x:.2} s"),
        "ms" => format!("{x:.0} ms"),
        "MB" => format!("{x:.1} MB"),
        "%" => format!("{x:.2}%"),
        "/s" => format!("{x:.0}/s"),
        _ if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        _ => format!("{x:.2}"),
    }
}

/// What a finished scenario hands back.
pub(crate) struct Measured {
    /// What ran, with its sizes, e.g. `500 droplets, 100 ms a call, ready after 2 s`.
    pub(crate) title: String,
    /// Everything measured, for the JSON document.
    pub(crate) figures: Value,
    pub(crate) checks: Vec<Check>,
}

/// One scenario's outcome: its figures and checks, or why it did not finish.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    #[serde(serialize_with = "scenario_id")]
    pub scenario: Scenario,
    pub title: String,
    pub figures: Value,
    pub checks: Vec<Check>,
    /// Set when the scenario did not finish.
    pub error: Option<String>,
    /// False in a smoke run: the sizes are too small for the targets to mean anything.
    pub judged: bool,
    /// The machine's 1-minute load average when the scenario started: this is a shared,
    /// small machine, and other work on it shows in the figures.
    pub load_before: Option<f64>,
}

fn scenario_id<S: serde::Serializer>(s: &Scenario, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.id())
}

impl ScenarioReport {
    pub(crate) fn new(
        scenario: Scenario,
        result: Result<Measured, BenchError>,
        smoke: bool,
    ) -> Self {
        match result {
            Ok(m) => Self {
                scenario,
                title: m.title,
                figures: m.figures,
                checks: m.checks,
                error: None,
                judged: !smoke,
                load_before: None,
            },
            Err(e) => Self {
                scenario,
                title: String::new(),
                figures: Value::Null,
                checks: Vec::new(),
                error: Some(error_chain(&e)),
                judged: !smoke,
                load_before: None,
            },
        }
    }

    pub fn completed(&self) -> bool {
        self.error.is_none()
    }

    /// A figure by its JSON pointer, e.g. `/failures`.
    pub fn figure(&self, pointer: &str) -> Option<&Value> {
        self.figures.pointer(pointer)
    }

    fn verdict(&self, check: &Check) -> &'static str {
        match (self.judged, check.met) {
            (false, _) => "not judged",
            (true, true) => "met",
            (true, false) => "MISSED",
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// `git rev-parse --short=12 HEAD` of the workspace, marked when tracked files were changed.
fn revision() -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let changed =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if changed {
        format!("{head} with uncommitted changes")
    } else {
        head
    })
}

/// The 1-minute load average, from `/proc/loadavg`.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine a run was made on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mb: Option<u64>,
}

impl Machine {
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_string());
        let mem_total_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kb| kb / 1024);
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_mb,
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub smoke: bool,
    pub started_at: Timestamp,
    /// The commit the tree was at, and whether tracked files differed from it.
    pub revision: Option<String>,
    pub machine: Machine,
    pub scenarios: Vec<ScenarioReport>,
}

impl Report {
    pub(crate) fn new(options: &Options) -> Self {
        Self {
            smoke: options.smoke,
            started_at: chrono::Utc::now(),
            revision: revision(),
            machine: Machine::read(),
            scenarios: Vec::new(),
        }
    }

    /// Whether every scenario finished (missed targets do not count against it).
    pub fn completed(&self) -> bool {
        self.scenarios.iter().all(ScenarioReport::completed)
    }

    pub fn scenario(&self, s: Scenario) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|r| r.scenario == s)
    }

    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    /// Every figure beside its target, aligned for a terminal.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "scenario".to_string(),
            "figure".to_string(),
            "measured".to_string(),
            "target".to_string(),
            "verdict".to_string(),
        ]];
        for s in &self.scenarios {
            if let Some(e) = &s.error {
                rows.push([
                    s.scenario.id().into(),
                    "did not finish".into(),
                    e.clone(),
                    String::new(),
                    "ERROR".into(),
                ]);
            }
            for c in &s.checks {
                rows.push([
                    s.scenario.id().into(),
                    c.figure.clone(),
                    number(c.measured, c.unit),
                    c.target_text(),
                    s.verdict(c).into(),
                ]);
            }
        }
        let widths: Vec<usize> = (0..5)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        out
    }

    /// The whole `docs/benchmarks.md` page.
    pub fn markdown(&self, command: &str) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `stackdock-bench` (`crates/bench`); rewrite this page by running the \
             command below. Do not edit the figures by hand.\n"
        );
        let _ = writeln!(md, "- Command: `{command}`");
        let _ = writeln!(
            md,
            "- Date: {}",
            self.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        if let Some(rev) = &self.revision {
            let _ = writeln!(md, "- Revision: {rev}");
        }
        let mem = m.mem_total_mb.map_or_else(String::new, |mb| {
            format!(", {:.0} GiB RAM", mb as f64 / 1024.0)
        });
        let _ = writeln!(md, "- Machine: {} CPUs ({}){mem}", m.nproc, m.cpu_model);
        if self.smoke {
            let _ = writeln!(md, "- Smoke run: tiny sizes, targets not judged");
        }
        let _ = writeln!(md, "\n## What runs\n");
        let _ = writeln!(md, "{}", SCENARIOS_TEXT.trim());
        let _ = writeln!(md, "\n## Results\n");
        for s in &self.scenarios {
            let title = if s.title.is_empty() { "—" } else { &s.title };
            let load = s
                .load_before
                .map_or_else(String::new, |l| format!(" (load average before: {l:.2})"));
            let _ = writeln!(md, "- **{}**: {title}{load}", s.scenario.id());
        }
        let _ = writeln!(md, "\n| scenario | figure | measured | target | verdict |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for s in &self.scenarios {
            if let Some(e) = &s.error {
                let _ = writeln!(
                    md,
                    "| {} | did not finish | {} | | ERROR |",
                    s.scenario.id(),
                    e.replace('|', "\\|")
                );
            }
            for c in &s.checks {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    s.scenario.id(),
                    c.figure,
                    number(c.measured, c.unit),
                    c.target_text(),
                    s.verdict(c)
                );
            }
        }
        let notes: Vec<&ScenarioReport> = self.scenarios.iter().collect();
        let _ = writeln!(md, "\n## Notes\n");
        for s in notes {
            if let Some(Value::Array(lines)) = s.figures.get("notes") {
                for line in lines.iter().filter_map(Value::as_str) {
                    let _ = writeln!(md, "- **{}**: {line}", s.scenario.id());
                }
            }
        }
        let _ = writeln!(md, "\n{}", NOTES_TEXT.trim());
        let json = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
        let _ = writeln!(md, "\n## Raw figures\n\n```json\n{json}\n```");
        md
    }
}

/// One scenario's lines as it finishes: what ran, then its checks.
pub(crate) fn lines(s: &ScenarioReport) -> String {
    let mut out = String::new();
    match &s.error {
        Some(e) => {
            let _ = writeln!(out, "[{}] did not finish: {e}", s.scenario.id());
        }
        None => {
            let _ = writeln!(out, "[{}] {}", s.scenario.id(), s.title);
            for c in &s.checks {
                let _ = writeln!(
                    out,
                    "    {:<44} {:>12}  target {:<12} {}",
                    c.figure,
                    number(c.measured, c.unit),
                    c.target_text(),
                    s.verdict(c)
                );
            }
        }
    }
    out
}

const SCENARIOS_TEXT: &str = r#"
Scenarios a–c run a real engine (`stackdock up`'s default settings) on a SQLite file in a
temporary directory against the in-process DigitalOcean sandbox, all in the bench's own process;
they wait by following the store's change feed and take each phase's end from the time of the
write that ended it. Requests are recorded 16 at a time, as 16 API clients would. Provider calls
are the sandbox's own counts.

- **a**: request N provisions, wait until all are `provisioned`, request N deprovisions, wait
  until all are `deprovisioned`. The sandbox answers every call after 100 ms, a droplet is
  ready 2 s after its create, nothing is rate limited and the dock's budget is `none`.
  Wall time runs from the first request to the last `deprovisioned`; the critical path of one
  droplet is 3 calls (create, the check that sees it ready, delete) plus the ready time.
- **b**: the same for N droplets under a sandbox token bucket of 600 requests a minute in bursts
  of 10, with the dock's budget set to `10/s,600/min` (`settings.rate_limit`). The floor is the
  time the bucket needs to let 3 calls per droplet through: `(3N − burst) / rate`.
- **b2**: b with the dock's budget `none`: the engine learns the limit from the answers' headers
  and 429s.
- **c**: N provisions with no latency and droplets ready at once, from the first request to the
  last `provisioned`, beside what a plain `reqwest` client gets from the same sandbox once the
  engine is idle (`GET /v2/droplets/{id}`, 256 at once). The target is half the sandbox's raw
  rate divided by the calls one provision makes.
- **d**: the `stackdock` binary, built by the bench with `cargo build --release -p stackdock`
  (or given with `--stackdock-bin`), run as `stackdock up --data-dir <tmp> --listen 127.0.0.1:0`
  without the sandbox. Ready time is from spawn to the first `200` from
  `GET /api/v1/resources?limit=1` with the owner token from `<data-dir>/owner-token` (one row, so
  it measures start-up, not a listing); idle RSS is `VmRSS` once two readings 250 ms apart agree
  within 1%. It is then stopped with SIGTERM, N `provisioned` server rows (source `manual`) are
  written into its database through the store in transactions of 1,000, and it is started again:
  ready time, idle RSS, and then every collection of the API walked page by page with
  `limit=100` and each page's `next` cursor (all resources, each kind, filtered by kind and
  state and by dock and source, docks, operations, the audit log, a server's journal, members,
  tokens, keys; the seeded rows must each come back once): the median and slowest page, from
  the request to the last byte, and the server's peak RSS (`VmHWM`).
- **e**: the same binary with its sandbox docks (`stackdock up --sandbox`) and N clients
  following `GET /api/v1/events`, each a plain HTTP/1.1 request on its own connection read as
  bytes, in the bench's process (so on the same cores as the server). Each round sends
  `POST /api/v1/servers` and times, from the moment it is sent, when each client has read the
  event carrying the new server's name; the next round starts once every client has read
  the event that settled that server, so no round's deliveries queue behind the one before.
  The figures are over every delivery of every round; each round's first, median and slowest
  delivery are in the JSON. Once the server has stopped, the same clients and rounds run
  against a bare fan-out in the bench's process (tokio only, two workers: one broadcast
  channel, one task a connection writing the same bytes an event takes; no HTTP framework,
  no store), whose figures (`bare_fan_out`) are this machine's floor for the check.
- **e2**: e across two nodes on one throwaway PostgreSQL server (`scripts/postgres`): the
  clients follow node A (`--role api`), and each round's `POST` goes to node B
  (`--sandbox`, which runs the workers), so each event reaches A through the database's
  `NOTIFY`. Same sizes as e.
- **f**: N provisions on one `stackdock up` node on a throwaway PostgreSQL database, then N on
  three nodes of another database, all through the API (spread over the nodes), against the
  sandbox with a token bucket of 1,800 requests a minute in bursts of 30 and the dock's budget
  set to `24/s`, leases of 3 s; one of the three is killed with SIGKILL once half the rows are
  `provisioned`. Time is from the first request until every row is `provisioned`; 429s are the
  sandbox's; a droplet is doubled if two rows track it or the sandbox holds more than N, and
  untracked if no row tracks it.

`--smoke` runs every scenario at tiny sizes and judges nothing; `cargo test -p stackdock-bench`
runs a–c that way in process. `--timeline` adds, for a–c, the calls by method, resources
settled and the process's CPU every 250 ms to the figures.
"#;

const NOTES_TEXT: &str = r#"
In a–c the sandbox, the engine, SQLite and the bench share one process and the machine's cores,
so the figures are the engine's own cost on this machine, not a model of a real provider. The
machine is shared: the load average before each scenario is given above.
"#;
