//! Scenario d: the `stackdock` binary as an operator runs it. How soon `stackdock up` answers
//! its API, how much memory it holds idle, and both again with 100,000 rows in its database.

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

    let mut empty = Up::start(bin, &data, log, &http).await?;
    let empty_rss = empty.settled_rss().await?;
    empty.stop().await?;

    let seeding = Instant::now();
    seed(&data, o.sizes.rows).await?;
    let seed_s = seeding.elapsed().as_secs_f64();

    let mut full = Up::start(bin, &data, log, &http).await?;
    let full_rss = full.settled_rss().await?;
    let all = full.get("/api/v1/resources?limit=100", Some(100)).await?;
    let servers = full.get("/api/v1/servers?limit=100", Some(100)).await?;
    // Last, since it is what grows the heap: the listing as a client that does not page gets it.
    let unbounded = full.get("/api/v1/resources", None).await?;
    full.stop().await?;

    let rows = o.sizes.rows;
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
            "get_resources_limit_100": all.figures(),
            "get_servers_limit_100": servers.figures(),
            "get_resources_unbounded": unbounded.figures(),
        },
        "notes": [format!(
            "`GET /api/v1/resources` without `limit` answered all {} rows ({:.1} MB) in {:.0} ms \
             and left the server at {:.0} MB RSS (after the `limit=100` GETs: {:.1} MB)",
            unbounded.items,
            unbounded.bytes as f64 / 1e6,
            unbounded.ms,
            unbounded.rss_after_mb,
            servers.rss_after_mb
        )],
    });
    let peak = all.rss_after_mb.max(servers.rss_after_mb).max(full_rss);
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
            format!("RSS after both `limit=100` GETs, {rows} rows"),
            peak,
            "MB",
            Bound::AtMost(150.0),
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
async fn build() -> Result<PathBuf, BenchError> {
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
struct Up {
    child: Child,
    pid: u32,
    base_url: String,
    token: String,
    http: reqwest::Client,
    /// From spawn to the first `200` of `GET /api/v1/resources`.
    ready_ms: f64,
    ready_at: Instant,
}

impl Up {
    /// Starts it on `data`; its log (warnings and errors) is appended to `log`.
    async fn start(
        bin: &Path,
        data: &Path,
        log: &Path,
        http: &reqwest::Client,
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
            // Its own files only: no key or database from the caller's environment.
            .env_remove("STACKDOCK_MASTER_KEY")
            .env_remove("STACKDOCK_DATABASE_URL")
            .env("STACKDOCK_LOG", "warn")
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
        let token_path = data.join("owner-token");
        let token = std::fs::read_to_string(&token_path)
            .map_err(BenchError::io(format!("reading {}", token_path.display())))?
            .trim()
            .to_string();

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

    /// One GET that must answer 200 with `expect` items (any number if `None`).
    async fn get(&self, path: &str, expect: Option<usize>) -> Result<Got, BenchError> {
        let url = format!("{}{path}", self.base_url);
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
        let items = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|body| body["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        if !status.is_success() || expect.is_some_and(|n| n != items) {
            return Err(BenchError::Other(format!(
                "GET {url}: {status} with {items} items, expected {expect:?}"
            )));
        }
        Ok(Got {
            ms,
            items,
            bytes: bytes.len(),
            rss_after_mb: rss_mb(self.pid)?,
        })
    }

    /// SIGTERM, as an operator's Ctrl-C or service manager would, and wait for it to exit.
    async fn stop(&mut self) -> Result<(), BenchError> {
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

/// What one GET took.
struct Got {
    ms: f64,
    items: usize,
    bytes: usize,
    /// The server's RSS right after it answered.
    rss_after_mb: f64,
}

impl Got {
    fn figures(&self) -> Value {
        json!({
            "ms": self.ms,
            "items": self.items,
            "bytes": self.bytes,
            "rss_after_mb": self.rss_after_mb,
        })
    }
}

fn deadline(what: &str) -> BenchError {
    BenchError::Other(format!("timed out: {what}"))
}

/// `VmRSS` of a process, in MB (MiB).
fn rss_mb(pid: u32) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| BenchError::Other(format!("{path} has no VmRSS")))
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
