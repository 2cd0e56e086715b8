//! Chaos: provisions and deprovisions through the real binary while the provider misbehaves
//! and the server is killed with SIGKILL at random moments and started again.
//!
//! The sandbox answers 10% of calls with a 5xx (without acting), acts and then loses 5% of
//! its answers to creates and deletes (a 500 or a dropped connection), cuts 5% of its read
//! answers short, and has a 429 storm for 0.3 seconds in every two. Meanwhile the server is
//! killed every 0.15 to 0.9 seconds. Chance alone may spare a short run some kind of fault (a
//! run makes few reads), so one of each is also queued: the first three droplet listings are
//! cut short, the first create acts and answers 500, the first delete acts and hangs up. The test asks for every resource with an Idempotency-Key,
//! resending while the server is down, then deprovisions them all the same way.
//!
//! Pass: every row settles `provisioned`, then `deprovisioned`; no droplet was ever created
//! twice for one row; at the end the provider holds nothing. The size is
//! `STACKDOCK_CHAOS_PROVISIONS` (default 120),
//! the seed `STACKDOCK_CHAOS_SEED` (random, printed, so a failing run can be replayed).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use stackdock_sandbox::{Chaos, DigitalOceanSandbox, DoSandboxConfig, Fault, FaultResponse, Storm};

use crate::support::binary;

/// The whole scenario must end within this, kills and all.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(240);

struct Server {
    data_dir: tempfile::TempDir,
    listen: String,
    child: Option<Child>,
    kills: u32,
}

impl Server {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("server.log"))
            .expect("log");
        let child = Command::new(binary())
            .args(["up", "--listen", &self.listen, "--data-dir"])
            .arg(self.data_dir.path())
            .env_remove("STACKDOCK_DATABASE_URL")
            .env_remove("STACKDOCK_MASTER_KEY")
            .env("STACKDOCK_LOG", "info")
            .env("STACKDOCK_LEASE_MS", "3000")
            .env("STACKDOCK_POLL_MS", "50")
            .env("STACKDOCK_RETRY_BASE_MS", "20")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn stackdock");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flush, as a power cut would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.kills += 1;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback port for the server to come back on after each kill.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends until the server answers (it may be down, or die mid-request); the answer.
async fn send(
    http: &reqwest::Client,
    req: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    deadline: Instant,
) -> (u16, Value) {
    loop {
        if let Ok(resp) = req(http).send().await {
            let status = resp.status().as_u16();
            if let Ok(text) = resp.text().await {
                return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
            }
        }
        assert!(Instant::now() < deadline, "the server never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_survive_provider_faults_and_sigkills_without_leaks_or_doubles() {
    let n: usize = std::env::var("STACKDOCK_CHAOS_PROVISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("STACKDOCK_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos: {n} provisions, seed {seed}");
    let deadline = Instant::now() + SCENARIO_DEADLINE;

    let key = format!("dop_v1_chaos{seed:016x}");
    let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![key.clone()],
        ready_after: Duration::from_millis(300),
        request_log: false,
        ..Default::default()
    })
    .await
    .expect("sandbox");

    let mut server = Server {
        data_dir: tempfile::tempdir().expect("tempdir"),
        listen: format!("127.0.0.1:{}", free_port()),
        child: None,
        kills: 0,
    };
    server.start();
    let url = format!("http://{}", server.listen);
    let token_path = server.data_dir.path().join("owner-token");
    let db = server.data_dir.path().join("stackdock.db");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let token = loop {
        if let Ok(t) = std::fs::read_to_string(&token_path)
            && !t.trim().is_empty()
        {
            break t.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no owner token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let auth = format!("Bearer {token}");
    let (status, dock) = send(
        &http,
        |h| {
            h.post(format!("{url}/api/v1/docks"))
                .header("authorization", &auth)
                .json(&json!({
                    "provider": "digitalocean", "name": "chaos", "api_key": key,
                    "api_url": sandbox.base_url(), "rate_limit": "none",
                }))
        },
        deadline,
    )
    .await;
    assert_eq!(status, 201, "{dock}");

    // The provider misbehaves from here on: certainly once in each way, then at random.
    for fault in [
        Fault::new(Some("GET"), "/v2/droplets", 3, FaultResponse::Truncate),
        Fault::new(Some("POST"), "/v2/droplets", 1, FaultResponse::LoseResponse),
        Fault::new(Some("DELETE"), "/v2/droplets", 1, FaultResponse::Disconnect),
    ] {
        sandbox.inject(fault);
    }
    sandbox.set_chaos(Some(Chaos {
        seed,
        error_rate: 0.10,
        lose_rate: 0.05,
        truncate_rate: 0.05,
        storm: Some(Storm {
            every: Duration::from_secs(2),
            lasts: Duration::from_millis(300),
        }),
    }));

    // And the server dies at random moments until the test says stop.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let killer = tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
        loop {
            let wait = Duration::from_millis(rng.gen_range(150..900));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop_rx.changed() => return server,
            }
            server.kill();
            server.start();
        }
    });

    // Ask for every droplet; a resend after a kill carries the same key.
    let mut ids = Vec::new();
    for i in 0..n {
        let idem = format!("chaos-{seed}-{i}");
        let (status, row) = send(
            &http,
            |h| {
                h.post(format!("{url}/api/v1/servers"))
                    .header("authorization", &auth)
                    .header("idempotency-key", &idem)
                    .json(&json!({
                        "dock": "chaos", "name": format!("chaos-{i}"), "region": "nyc3",
                        "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
                    }))
            },
            deadline,
        )
        .await;
        assert_eq!(status, 202, "{row}");
        ids.push(row["id"].as_str().expect("id").to_string());
    }
    let rows = wait_all(&http, &url, &auth, &ids, "provisioned", deadline, &db).await;

    // Every droplet at the provider is one of ours, each row has exactly one.
    let inventory: Vec<String> = sandbox
        .droplets()
        .iter()
        .map(|d| d["id"].to_string())
        .collect();
    let mut tracked: Vec<String> = rows
        .values()
        .map(|r| {
            r["provider_resource_id"]
                .as_str()
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    tracked.sort();
    let mut listed = inventory.clone();
    listed.sort();
    assert_eq!(listed, tracked, "untracked or missing droplets");
    for r in rows.values() {
        let marker = r["marker"].as_str().expect("marker");
        assert_eq!(sandbox.creates_by_tag(marker), 1, "doubled: {r}");
    }

    for id in &ids {
        let (status, row) = send(
            &http,
            |h| {
                h.delete(format!("{url}/api/v1/resources/{id}"))
                    .header("authorization", &auth)
            },
            deadline,
        )
        .await;
        // 409: a resend after a kill found the first delete already under way or done.
        assert!(matches!(status, 202 | 409), "{status} {row}");
    }
    wait_all(&http, &url, &auth, &ids, "deprovisioned", deadline, &db).await;

    let _ = stop_tx.send(true);
    let mut server = killer.await.expect("killer");
    server.kill();
    let counts = sandbox.chaos_counts();
    eprintln!(
        "chaos: {n} provisioned and deprovisioned; {} kills; faults: {counts:?}; calls: {:?}",
        server.kills,
        sandbox.request_counts()
    );
    assert!(
        sandbox.droplets().is_empty(),
        "left at the provider: {:?}",
        sandbox.droplets()
    );
    assert!(server.kills >= 2, "the server was hardly killed");
    assert_eq!(sandbox.queued_faults(), 0, "a queued fault never struck");
    assert!(
        counts.errors > 0 && counts.lost_with_500 + counts.disconnects > 0,
        "chaos hardly struck: {counts:?}"
    );
}

/// Polls until every row in `ids` is in `state`; fails at once on a row that settled
/// otherwise. The rows as last seen.
async fn wait_all(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    ids: &[String],
    state: &str,
    deadline: Instant,
    db: &std::path::Path,
) -> HashMap<String, Value> {
    let mut seen = HashMap::new();
    loop {
        let mut done = 0;
        for id in ids {
            let (status, row) = send(
                http,
                |h| {
                    h.get(format!("{url}/api/v1/resources/{id}"))
                        .header("authorization", auth)
                },
                deadline,
            )
            .await;
            assert_eq!(status, 200, "{row}");
            let now = row["provisioning_state"].as_str().unwrap_or_default();
            assert_ne!(now, "failed", "a row failed: {row}");
            if now == state {
                done += 1;
            }
            seen.insert(id.clone(), row);
        }
        if done == ids.len() {
            return seen;
        }
        if Instant::now() >= deadline {
            // Say what the stragglers' operations are doing before failing.
            let store = stackdock_store::SqliteStore::open(db)
                .await
                .expect("open db");
            use stackdock_store::Store;
            let org = store.first_org().await.ok().flatten().expect("org");
            for (id, row) in &seen {
                if row["provisioning_state"] != state {
                    let rid = id.parse().expect("id");
                    let first = stackdock_store::PageRequest::first(5);
                    let ops = store
                        .list_operations(org, Some(rid), &first)
                        .await
                        .expect("ops")
                        .items;
                    eprintln!("stuck {row}\n  operations: {ops:?}");
                }
            }
            panic!("{done} of {} {state} by the deadline", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
