//! Scenario f: several nodes on one PostgreSQL database. The same provisions on one node, and
//! on three nodes sharing one dock with one of the three killed (SIGKILL) halfway through:
//! how long each run takes, how many calls the sandbox refused for the account's limit, and
//! whether any droplet was made twice or left untracked.
//!
//! The dock's limit is set below the sandbox's bucket, so the dock's budget is what paces the
//! calls: three nodes that did not share it would each spend it whole, and the sandbox would
//! refuse them. The PostgreSQL server is a throwaway one (`scripts/postgres`), each run on a
//! database of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use stackdock_sandbox::{BucketLimit, DigitalOceanSandbox, DoSandboxConfig};
use tokio::time::Instant;

use crate::binary::{Up, build, deadline};
use crate::report::{Bound, Check, Measured};
use crate::{BenchError, Options};

/// The account's limit at the sandbox, and the dock's setting below it.
const BUCKET: BucketLimit = BucketLimit {
    per_minute: 1800,
    burst: 30,
};
const DOCK_LIMIT: &str = "24/s";
const DOCK: &str = "do-nodes";
/// A dead node's operations are taken over when its leases run out.
const LEASE_MS: &str = "3000";

pub(crate) async fn run(o: &Options) -> Result<Measured, BenchError> {
    let bin = match &o.stackdock_bin {
        Some(path) => path.clone(),
        None => build().await?,
    };
    let dir = tempfile::tempdir().map_err(BenchError::io("making a temporary directory"))?;
    let pg_dir = dir.path().join("postgres");
    let admin = postgres(&["start"], &pg_dir).await?;
    let result = measure(o, &bin, dir.path(), &admin).await;
    let _ = postgres(&["stop"], &pg_dir).await;
    result
}

/// `scripts/postgres ACTION DIR`; answers what it printed.
pub(crate) async fn postgres(action: &[&str], dir: &Path) -> Result<String, BenchError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres");
    let out = tokio::process::Command::new(&script)
        .args(action)
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(BenchError::io("running scripts/postgres"))?;
    if !out.status.success() {
        return Err(BenchError::Other(format!(
            "scripts/postgres {}: {} (f needs PostgreSQL's server: apt-get install -y postgresql)",
            action.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A new database on the server `admin` names; answers its URL.
pub(crate) async fn database(admin: &str, name: &str) -> Result<String, BenchError> {
    let out = tokio::process::Command::new("psql")
        .arg(admin)
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(BenchError::io("running psql"))?;
    if !out.status.success() {
        return Err(BenchError::Other(format!(
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let (server, _) = admin
        .rsplit_once('/')
        .ok_or_else(|| BenchError::Other(format!("no database in {admin}")))?;
    Ok(format!("{server}/{name}"))
}

/// What one run did.
struct Run {
    seconds: f64,
    rate_limited: u64,
    droplets: usize,
    /// Droplets no row tracks, and rows sharing a droplet.
    untracked: usize,
    doubled: usize,
    figures: Value,
}

async fn measure(o: &Options, bin: &Path, dir: &Path, admin: &str) -> Result<Measured, BenchError> {
    let n = o.sizes.nodes;
    let ready_after = if o.smoke {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(2)
    };
    let one = fleet(bin, dir, admin, "one", 1, n, ready_after, None).await?;
    let three = fleet(bin, dir, admin, "three", 3, n, ready_after, Some(2)).await?;
    let ratio = three.seconds / one.seconds;
    let figures = json!({
        "provisions": n,
        "dock_rate_limit": DOCK_LIMIT,
        "sandbox_bucket_per_minute": BUCKET.per_minute,
        "sandbox_bucket_burst": BUCKET.burst,
        "one_node": one.figures,
        "three_nodes": three.figures,
        "three_over_one": ratio,
    });
    Ok(Measured {
        title: format!(
            "{n} provisions on one node, then on three nodes on one PostgreSQL database sharing \
             one dock (`{DOCK_LIMIT}`, sandbox bucket {}/min burst {}), one node killed halfway",
            BUCKET.per_minute, BUCKET.burst
        ),
        figures,
        checks: vec![
            Check::new(
                "three nodes' time / one node's time",
                ratio,
                "",
                Bound::AtMost(1.1),
            ),
            Check::new(
                "429s from the sandbox's bucket, both runs",
                (one.rate_limited + three.rate_limited) as f64,
                "",
                Bound::AtMost(0.0),
            ),
            Check::new(
                "droplets made twice or untracked, both runs",
                (one.doubled + one.untracked + three.doubled + three.untracked) as f64,
                "",
                Bound::AtMost(0.0),
            ),
            Check::new(
                "droplets at the sandbox after three nodes",
                three.droplets as f64,
                "",
                Bound::AtMost(n as f64),
            ),
        ],
    })
}

/// `n` provisions on `nodes` nodes of a new database, through each node's API in turn; with
/// `kill`, that node is killed once half the rows are provisioned.
#[allow(clippy::too_many_arguments)]
async fn fleet(
    bin: &Path,
    dir: &Path,
    admin: &str,
    name: &str,
    nodes: usize,
    n: usize,
    ready_after: Duration,
    kill: Option<usize>,
) -> Result<Run, BenchError> {
    let key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let token = "dop_v1_bench_nodes";
    let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![token.into()],
        ready_after,
        latency: Duration::from_millis(20),
        bucket: Some(BUCKET),
        request_log: false,
        ..Default::default()
    })
    .await
    .map_err(BenchError::io("starting the sandbox"))?;
    let url = database(admin, &format!("bench_f_{name}_{}", std::process::id())).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(BenchError::http("building the HTTP client"))?;
    let log = dir.join(format!("{name}.log"));
    let env = [
        ("STACKDOCK_DATABASE_URL", url.as_str()),
        ("STACKDOCK_MASTER_KEY", key),
        ("STACKDOCK_LEASE_MS", LEASE_MS),
        ("STACKDOCK_LOG", "warn,stackdock_engine::worker=info"),
    ];
    let mut ups: Vec<Up> = Vec::new();
    let mut owner: Option<String> = None;
    for i in 0..nodes {
        let data: PathBuf = dir.join(format!("{name}-{i}"));
        let up = Up::start_with(bin, &data, &log, &http, &[], &env, owner.as_deref()).await?;
        owner.get_or_insert_with(|| up.token.clone());
        ups.push(up);
    }
    // Every node knows how many share the dock before the first call (one alone has nothing
    // to learn).
    if nodes > 1 {
        wait_for_log(&log, &format!("nodes={nodes}"), nodes).await?;
    }

    let api = |i: usize, path: &str| format!("{}{path}", ups[i % ups.len()].base_url);
    let owner = owner.unwrap_or_default();
    let dock = http
        .post(api(0, "/api/v1/docks"))
        .bearer_auth(&owner)
        .json(&json!({
            "provider": "digitalocean", "name": DOCK, "api_key": token,
            "api_url": sandbox.base_url(), "rate_limit": DOCK_LIMIT,
        }))
        .send()
        .await
        .map_err(BenchError::http("connecting the dock"))?;
    if !dock.status().is_success() {
        return Err(BenchError::Other(format!(
            "connecting the dock: {}",
            dock.text().await.unwrap_or_default()
        )));
    }

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let asked = futures::future::join_all(chunk.iter().map(|&i| {
            let req = http
                .post(api(i, "/api/v1/servers"))
                .bearer_auth(&owner)
                .json(&json!({
                    "dock": DOCK, "name": format!("f-{name}-{i}"), "region": "nyc3",
                    "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
                }));
            async move { req.send().await }
        }))
        .await;
        for answer in asked {
            let answer = answer.map_err(BenchError::http("asking for a server"))?;
            if answer.status().as_u16() != 202 {
                return Err(BenchError::Other(format!(
                    "POST /api/v1/servers: {}",
                    answer.text().await.unwrap_or_default()
                )));
            }
        }
    }

    let until = started + Duration::from_secs(600);
    let mut killed_at = None;
    let rows = loop {
        let survivor = kill.map_or(0, |k| (k + 1) % nodes);
        let rows = all_servers(&http, &ups[survivor].base_url, &owner).await?;
        let provisioned = rows
            .iter()
            .filter(|r| r["provisioning_state"] == "provisioned")
            .count();
        if provisioned == n {
            break rows;
        }
        if let Some(k) = kill
            && killed_at.is_none()
            && provisioned * 2 >= n
        {
            ups[k].kill().await;
            killed_at = Some(started.elapsed().as_secs_f64());
        }
        if Instant::now() >= until {
            return Err(deadline(&format!("{provisioned} of {n} provisioned")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();

    let mut at_sandbox: Vec<String> = sandbox
        .droplets()
        .iter()
        .map(|d| d["id"].to_string())
        .collect();
    at_sandbox.sort();
    let mut tracked: Vec<String> = rows
        .iter()
        .filter_map(|r| r["provider_resource_id"].as_str().map(str::to_string))
        .collect();
    tracked.sort();
    let rows_tracking = tracked.len();
    tracked.dedup();
    let doubled = rows_tracking - tracked.len() + at_sandbox.len().saturating_sub(n);
    let untracked = at_sandbox
        .iter()
        .filter(|d| tracked.binary_search(d).is_err())
        .count();
    let counts = sandbox.request_counts();
    for up in &mut ups {
        if !up.killed() {
            up.stop().await?;
        }
    }
    Ok(Run {
        seconds,
        rate_limited: counts.rate_limited,
        droplets: at_sandbox.len(),
        untracked,
        doubled,
        figures: json!({
            "nodes": nodes,
            "seconds": seconds,
            "killed_at_s": killed_at,
            "calls": counts.total,
            "calls_by_method": counts.by_method,
            "calls_per_s": counts.total as f64 / seconds,
            "rate_limited": counts.rate_limited,
            "droplets": at_sandbox.len(),
            "doubled": doubled,
            "untracked": untracked,
        }),
    })
}

async fn all_servers(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Vec<Value>, BenchError> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/servers?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(BenchError::http("listing servers"))?
            .json()
            .await
            .map_err(BenchError::http("reading the server list"))?;
        rows.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(rows),
        }
    }
}

/// Waits until `log` holds `text` at least `times` times (terminal colours left out).
async fn wait_for_log(log: &Path, text: &str, times: usize) -> Result<(), BenchError> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = std::fs::read_to_string(log)
            .map(|t| plain(&t).matches(text).count())
            .unwrap_or(0);
        if seen >= times {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(deadline(&format!("{times} nodes logging {text:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `text` without terminal colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
