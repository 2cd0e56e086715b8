//! Scenario d: the `stackdock` binary as an operator runs it. How soon `stackdock up` answers
//! its API, how much memory it holds idle, and both again with 100,000 rows in its database;
//! then every collection of its API walked page by page, with the time of each page and the
//! server's peak memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use stackdock_core::{
    Dock, DockId, DockName, Keyring, MasterKey, OrgId, Provider, ProvisioningSource,
    ProvisioningState, Resource, ResourceDetails, ResourceId, SecretString, ServerDetails,
};
use stackdock_store::{Batch, SqliteStore, Store, Write};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::report::{Bound, Check, Measured};
use crate::{BenchError, Options};

/// Rows written per transaction while seeding.
const SEED_BATCH: usize = 1000;
/// How long a start may take before the scenario gives up.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long memory may keep moving before the last reading is taken as idle.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// Rows in a page of the walks.
const PAGE: usize = 100;

pub(crate) async fn run(o: &Options) -> Result<Measured, BenchError> {
    let (bin, built) = match &o.stackdock_bin {
        Some(path) => (path.clone(), false),
        None => (build().await?, true),
    };
    let dir = tempfile::tempdir().map_err(BenchError::io("making a temporary directory"))?;
    let log = dir.path().join("stackdock.log");
    measure(o, &bin, built, dir.path(), &log)
        .await
        .map_err(|e| match std::fs::read_to_string(&log) {
            Ok(text) if !text.trim().is_empty() => {
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                BenchError::Other(format!("{e}; stackdock's log ends:\n{}", tail.join("\n")))
            }
            _ => e,
        })
}

async fn measure(
    o: &Options,
    bin: &Path,
    built: bool,
    dir: &Path,
    log: &Path,
) -> Result<Measured, BenchError> {
    let data = dir.join("data");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(BenchError::http("building the HTTP client"))?;

    let mut empty = Up::start(bin, &data, log, &http, &[]).await?;
    let empty_rss = empty.settled_rss().await?;
    empty.stop().await?;

    let seeding = Instant::now();
    seed(&data, o.sizes.rows).await?;
    let seed_s = seeding.elapsed().as_secs_f64();

    let mut full = Up::start(bin, &data, log, &http, &[]).await?;
    let full_rss = full.settled_rss().await?;
    let rows = o.sizes.rows;
    let walks = full.walk_every_collection(rows).await?;
    let peak_rss = peak_rss_mb(full.pid)?;
    full.stop().await?;

    let mut page_ms: Vec<f64> = walks.iter().flat_map(|w| w.page_ms.clone()).collect();
    page_ms.sort_by(f64::total_cmp);
    let median_ms = page_ms.get(page_ms.len() / 2).copied().unwrap_or(0.0);
    let slowest_ms = page_ms.last().copied().unwrap_or(0.0);
    let slowest_walk = walks
        .iter()
        .max_by(|a, b| a.slowest().total_cmp(&b.slowest()))
        .map_or("-", |w| w.path.as_str());
    let figures = json!({
        // Its profile and name, not where this machine keeps it: the page is published.
        "binary": bin
            .iter()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<std::path::PathBuf>()
            .display()
            .to_string(),
        "built_by_bench": built,
        "empty": {
            "ready_ms": empty.ready_ms,
            "idle_rss_mb": empty_rss,
        },
        "seeded_rows": rows,
        "seed_s": seed_s,
        "seeded": {
            "ready_ms": full.ready_ms,
            "idle_rss_mb": full_rss,
            "walks": walks.iter().map(Walk::figures).collect::<Vec<_>>(),
            "pages": page_ms.len(),
            "page_median_ms": median_ms,
            "page_slowest_ms": slowest_ms,
            "peak_rss_mb": peak_rss,
        },
        "notes": [format!(
            "every collection walked {PAGE} rows a page ({} pages); the slowest page was one of \
             `{slowest_walk}`; peak RSS is `VmHWM`, the most the server held since it started",
            page_ms.len()
        )],
    });
    let checks = vec![
        Check::new(
            "ready time, empty database",
            empty.ready_ms,
            "ms",
            Bound::AtMost(150.0),
        ),
        Check::new(
            "idle RSS, empty database",
            empty_rss,
            "MB",
            Bound::AtMost(25.0),
        ),
        Check::new(
            format!("ready time, {rows} rows"),
            full.ready_ms,
            "ms",
            Bound::AtMost(150.0),
        ),
        Check::new(
            format!("idle RSS, {rows} rows"),
            full_rss,
            "MB",
            Bound::AtMost(150.0),
        ),
        Check::new(
            format!("peak RSS walking every collection, {rows} rows"),
            peak_rss,
            "MB",
            Bound::AtMost(150.0),
        ),
        Check::new(
            format!("median page of {PAGE}, {rows} rows"),
            median_ms,
            "ms",
            Bound::AtMost(20.0),
        ),
        Check::new(
            format!("slowest page of {PAGE}, {rows} rows"),
            slowest_ms,
            "ms",
            Bound::AtMost(20.0),
        ),
    ];
    Ok(Measured {
        title: format!(
            "`stackdock up` (no sandbox): start-up and memory, empty and with {rows} server rows"
        ),
        figures,
        checks,
    })
}

/// `cargo build --release -p stackdock`, and the path of the binary it reports.
pub(crate) async fn build() -> Result<PathBuf, BenchError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "stackdock",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&workspace)
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(BenchError::io("running cargo build --release -p stackdock"))?;
    if !out.status.success() {
        return Err(BenchError::Other(format!(
            "cargo build --release -p stackdock failed ({})",
            out.status
        )));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "stackdock")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| BenchError::Other("cargo built no stackdock executable".into()))
}

/// A running `stackdock up`.
pub(crate) struct Up {
    child: Child,
    pid: u32,
    pub(crate) base_url: String,
    pub(crate) token: String,
    http: reqwest::Client,
    /// From spawn to the first `200` of `GET /api/v1/resources`.
    ready_ms: f64,
    ready_at: Instant,
    killed: bool,
}

impl Up {
    /// Starts it on `data`, with `extra` arguments to `up`; its log (warnings and errors) is
    /// appended to `log`.
    pub(crate) async fn start(
        bin: &Path,
        data: &Path,
        log: &Path,
        http: &reqwest::Client,
        extra: &[&str],
    ) -> Result<Self, BenchError> {
        Self::start_with(bin, data, log, http, extra, &[], None).await
    }

    /// [`Up::start`] with `env` set for it, and `token` to call it with when it is not the
    /// first node of its database (only the first writes an owner token).
    pub(crate) async fn start_with(
        bin: &Path,
        data: &Path,
        log: &Path,
        http: &reqwest::Client,
        extra: &[&str],
        env: &[(&str, &str)],
        token: Option<&str>,
    ) -> Result<Self, BenchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(BenchError::io(format!("opening {}", log.display())))?;
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            // Its own files only: no key or database from the caller's environment.
            .env_remove("STACKDOCK_MASTER_KEY")
            .env_remove("STACKDOCK_DATABASE_URL")
            .env("STACKDOCK_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::io(format!("starting {}", bin.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Other("stackdock exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Other("no stdout from stackdock".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let until = spawned + START_DEADLINE;

        // It prints its address once it is bound; the owner token is on disk by then.
        let base_url = loop {
            let line = tokio::time::timeout_at(until, lines.next_line())
                .await
                .map_err(|_| deadline("stackdock printed no address"))?
                .map_err(BenchError::io("reading stackdock's output"))?
                .ok_or_else(|| BenchError::Other("stackdock exited before listening".into()))?;
            if let Some(url) = line.trim().strip_prefix("StackDock listening on ") {
                break url.to_string();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = match token {
            Some(token) => token.to_string(),
            None => {
                let token_path = data.join("owner-token");
                std::fs::read_to_string(&token_path)
                    .map_err(BenchError::io(format!("reading {}", token_path.display())))?
                    .trim()
                    .to_string()
            }
        };

        // One row: the probe measures start-up, not a listing (the full, unbounded listing is
        // measured on its own).
        let url = format!("{base_url}/api/v1/resources?limit=1");
        loop {
            let answer = http.get(&url).bearer_auth(&token).send().await;
            if matches!(&answer, Ok(r) if r.status().is_success()) {
                break;
            }
            if Instant::now() >= until {
                return Err(deadline(&format!(
                    "GET {url} never answered 200: {answer:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ready_at = Instant::now();
        Ok(Self {
            child,
            pid,
            base_url,
            token,
            http: http.clone(),
            ready_ms: (ready_at - spawned).as_secs_f64() * 1000.0,
            ready_at,
            killed: false,
        })
    }

    /// Resident memory once it has stopped changing: two readings 250 ms apart within
    /// 1% of each other, at least a second after it became ready.
    async fn settled_rss(&mut self) -> Result<f64, BenchError> {
        let earliest = self.ready_at + Duration::from_secs(1);
        let until = Instant::now() + SETTLE_DEADLINE;
        tokio::time::sleep_until(earliest).await;
        let mut last = rss_mb(self.pid)?;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = rss_mb(self.pid)?;
            if (now - last).abs() <= 0.01 * last || Instant::now() >= until {
                return Ok(now);
            }
            last = now;
        }
    }

    /// Walks every collection of the API page by page: the four kinds, all resources (also
    /// filtered), docks, operations, the audit log, a resource's journal, members, tokens and
    /// keys. The seeded rows must all come back, once each.
    async fn walk_every_collection(&self, rows: usize) -> Result<Vec<Walk>, BenchError> {
        let first = self.page("/api/v1/servers", PAGE, None).await?;
        let id = first
            .items
            .first()
            .and_then(|r| r["id"].as_str())
            .unwrap_or("none");
        let paths = [
            "/api/v1/resources".to_string(),
            "/api/v1/servers".to_string(),
            "/api/v1/resources?kind=server&state=provisioned".to_string(),
            "/api/v1/servers?dock=bench-seeded&source=manual".to_string(),
            "/api/v1/web-services".to_string(),
            "/api/v1/domains".to_string(),
            "/api/v1/databases".to_string(),
            "/api/v1/docks".to_string(),
            "/api/v1/operations".to_string(),
            "/api/v1/audit".to_string(),
            format!("/api/v1/servers/{id}/api-calls"),
            "/api/v1/members".to_string(),
            "/api/v1/tokens".to_string(),
            "/api/v1/keys".to_string(),
        ];
        let mut walks = Vec::new();
        for path in paths {
            let mut walk = Walk {
                path,
                page_ms: Vec::new(),
                items: 0,
                ids: std::collections::HashSet::new(),
            };
            let mut cursor = None;
            loop {
                let page = self.page(&walk.path, PAGE, cursor.as_deref()).await?;
                walk.page_ms.push(page.ms);
                walk.items += page.items.len();
                for r in &page.items {
                    if let Some(id) = r["id"].as_str() {
                        walk.ids.insert(id.to_string());
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let seeded = walk.path.starts_with("/api/v1/servers?")
                || walk.path.starts_with("/api/v1/resources")
                || walk.path == "/api/v1/servers";
            if seeded && (walk.items != rows || walk.ids.len() != rows) {
                return Err(BenchError::Other(format!(
                    "walking {} gave {} rows ({} distinct), expected the {rows} seeded once each",
                    walk.path,
                    walk.items,
                    walk.ids.len()
                )));
            }
            walks.push(walk);
        }
        Ok(walks)
    }

    /// One page of `path`, which must answer 200 with at most `limit` items.
    async fn page(
        &self,
        path: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, BenchError> {
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{joiner}limit={limit}", self.base_url);
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let started = Instant::now();
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(BenchError::http(format!("GET {url}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(BenchError::http(format!("GET {url}")))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let items = body["items"].as_array().cloned();
        match items {
            Some(items) if status.is_success() && items.len() <= limit => Ok(Page {
                ms,
                items,
                next: body["next"].as_str().map(str::to_string),
            }),
            _ => Err(BenchError::Other(format!(
                "GET {url}: {status}, not a page of at most {limit}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }

    /// SIGKILL: the node dies at once, holding whatever it held.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
        self.killed = true;
    }

    pub(crate) fn killed(&self) -> bool {
        self.killed
    }

    /// SIGTERM, as an operator's Ctrl-C or service manager would, and wait for it to exit.
    pub(crate) async fn stop(&mut self) -> Result<(), BenchError> {
        let pid = libc::pid_t::try_from(self.pid)
            .map_err(|_| BenchError::Other(format!("pid {} out of range", self.pid)))?;
        // SAFETY: kill(2) with our own child's pid; it has not been waited on yet, so the pid
        // cannot have been reused.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        if sent != 0 {
            return Err(BenchError::io("sending SIGTERM to stackdock")(
                std::io::Error::last_os_error(),
            ));
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status.map_err(BenchError::io("waiting for stackdock to exit"))?;
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                Err(deadline("stackdock did not exit within 15 s of SIGTERM"))
            }
        }
    }
}

/// One page as read.
struct Page {
    ms: f64,
    items: Vec<Value>,
    next: Option<String>,
}

/// One collection walked page by page.
struct Walk {
    path: String,
    /// How long each page took, from the request to the last byte of its answer.
    page_ms: Vec<f64>,
    items: usize,
    ids: std::collections::HashSet<String>,
}

impl Walk {
    fn slowest(&self) -> f64 {
        self.page_ms.iter().copied().fold(0.0, f64::max)
    }

    fn figures(&self) -> Value {
        let mut ms = self.page_ms.clone();
        ms.sort_by(f64::total_cmp);
        json!({
            "path": self.path,
            "pages": ms.len(),
            "items": self.items,
            "median_ms": ms.get(ms.len() / 2).copied().unwrap_or(0.0),
            "slowest_ms": self.slowest(),
        })
    }
}

pub(crate) fn deadline(what: &str) -> BenchError {
    BenchError::Other(format!("timed out: {what}"))
}

/// `VmRSS` of a process, in MB (MiB).
fn rss_mb(pid: u32) -> Result<f64, BenchError> {
    status_mb(pid, "VmRSS:")
}

/// `VmHWM` of a process, in MB (MiB): the most it has held resident since it started.
fn peak_rss_mb(pid: u32) -> Result<f64, BenchError> {
    status_mb(pid, "VmHWM:")
}

/// A `kB` line of `/proc/<pid>/status`, in MB (MiB).
fn status_mb(pid: u32, field: &str) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| BenchError::Other(format!("{path} has no {field}")))
}

/// Writes `rows` provisioned server rows, as discovery would have found them, into the
/// database of a stopped `stackdock up`, with the dock they belong to.
async fn seed(data: &Path, rows: usize) -> Result<(), BenchError> {
    let store = SqliteStore::open(&data.join("stackdock.db")).await?;
    let org = store
        .first_org()
        .await?
        .ok_or_else(|| BenchError::Other("the database has no organisation".into()))?;
    let key_path = data.join("master.key");
    let key_text = std::fs::read_to_string(&key_path)
        .map_err(BenchError::io(format!("reading {}", key_path.display())))?;
    let keyring = Keyring::new(
        MasterKey::parse(&key_text)
            .map_err(|e| BenchError::Other(format!("{}: {e}", key_path.display())))?,
    );
    let dock_id = DockId::new();
    let dock = Dock {
        id: dock_id,
        org_id: org,
        provider: Provider::DigitalOcean,
        name: DockName::try_from("bench-seeded".to_string()).map_err(BenchError::Other)?,
        sealed_api_key: keyring.seal(&SecretString::new("dop_v1_seeded"), &dock_id.to_string()),
        api_base_url: None,
        settings: json!({}),
        created_at: chrono::Utc::now(),
    };
    store
        .apply(Batch::new().push(Write::InsertDock(dock)))
        .await?;
    for start in (0..rows).step_by(SEED_BATCH) {
        let mut batch = Batch::new();
        for i in start..(start + SEED_BATCH).min(rows) {
            batch = batch.push(Write::InsertResource(seeded_row(org, dock_id, i)));
        }
        store.apply(batch).await?;
    }
    store.close().await;
    Ok(())
}

/// A droplet as discovery records one: provisioned, source manual, with the provider's
/// answer (here a trimmed one of a realistic size) kept in `full_api_data`.
fn seeded_row(org: OrgId, dock: DockId, i: usize) -> Resource {
    let now = chrono::Utc::now();
    let droplet_id = 400_000_000 + i as u64;
    let ipv4 = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    let name = format!("seeded-{i:06}");
    Resource {
        id: ResourceId::new(),
        org_id: org,
        dock_id: dock,
        provider: Provider::DigitalOcean.as_str().into(),
        provider_resource_id: Some(droplet_id.to_string()),
        name: name.clone(),
        status: Some("active".into()),
        provisioning_source: ProvisioningSource::Manual,
        provisioning_state: ProvisioningState::Provisioned,
        provisioned_at: Some(now),
        full_api_data: json!({
            "id": droplet_id,
            "name": name,
            "memory": 1024,
            "vcpus": 1,
            "disk": 25,
            "status": "active",
            "created_at": now,
            "size_slug": "s-1vcpu-1gb",
            "region": {"slug": "nyc3", "name": "New York 3"},
            "image": {"slug": "ubuntu-24-04-x64", "distribution": "Ubuntu"},
            "networks": {"v4": [{"ip_address": ipv4, "type": "public"}], "v6": []},
            "tags": ["web"],
        }),
        error: None,
        marker: None,
        created_at: now,
        updated_at: now,
        version: 0,
        details: ResourceDetails::Server(ServerDetails {
            region: Some("nyc3".into()),
            size: Some("s-1vcpu-1gb".into()),
            image: Some("ubuntu-24-04-x64".into()),
            ipv4: Some(ipv4),
            ipv6: None,
        }),
    }
}
