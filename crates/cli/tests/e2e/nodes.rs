//! Several StackDock nodes on one database: `--role`, `/healthz` and `/readyz`, the work of
//! many provisions shared by nodes on PostgreSQL (one of them killed mid-run), a change made
//! on one node seen live on another, a worker node cut off from the database mid-operation
//! (fenced when it comes back), and database URLs StackDock does not serve.
//!
//! The PostgreSQL tests need the throwaway server `scripts/test` starts
//! (`STACKDOCK_TEST_POSTGRES_URL`, a superuser's URL): each makes a database of its own on it.
//! Without it they say so and pass, except under `CI=true`, where they fail.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::RngCore;
use serde_json::{Value, json};
use stackdock_sandbox::{BucketLimit, DigitalOceanSandbox, DoSandboxConfig, Fault, FaultResponse};

use crate::support::{DEADLINE, binary, start_server, start_server_via, wait_for};

/// The superuser URL of the test PostgreSQL server, or `None` (having said why) when the
/// test should skip.
fn postgres_admin(test: &str) -> Option<String> {
    match std::env::var("STACKDOCK_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: STACKDOCK_TEST_POSTGRES_URL is not set under CI=true")
        }
        _ => {
            eprintln!(
                "{test}: skipped: STACKDOCK_TEST_POSTGRES_URL is not set (scripts/test sets it)"
            );
            None
        }
    }
}

fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// A new, empty database on the server `admin` names; answers its URL.
fn create_database(admin: &str) -> String {
    let name = format!("sd_{}", random_hex(6));
    psql(admin, &format!("CREATE DATABASE {name}"));
    let (server, _) = admin.rsplit_once('/').expect("a database in the admin URL");
    format!("{server}/{name}")
}

/// Runs `sql` on the server `admin` names, which must succeed.
fn psql(admin: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(admin)
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `stackdock up` of a cluster.
struct Node {
    url: String,
    data_dir: PathBuf,
    /// Its workers' names start with this and a dash.
    name: String,
    child: Option<Child>,
}

impl Node {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL: no chance to let go of anything.
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Nodes on one database with one master key, and the DigitalOcean sandbox they provision on.
struct Cluster {
    database_url: String,
    master_key: String,
    sandbox: DigitalOceanSandbox,
    canary: String,
    nodes: Vec<Node>,
    token: String,
    http: reqwest::Client,
    home: tempfile::TempDir,
}

impl Cluster {
    async fn new(database_url: String, sandbox: DoSandboxConfig) -> Self {
        Self::new_on(
            database_url,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            sandbox,
        )
        .await
    }

    /// [`Cluster::new`] with the sandbox listening on `addr`.
    async fn new_on(database_url: String, addr: SocketAddr, sandbox: DoSandboxConfig) -> Self {
        let canary = format!("dop_v1_canary{}", random_hex(12));
        let sandbox = DigitalOceanSandbox::start_on(
            addr,
            DoSandboxConfig {
                tokens: vec![canary.clone()],
                ..sandbox
            },
        )
        .await
        .expect("sandbox");
        Self {
            database_url,
            master_key: random_hex(32),
            sandbox,
            canary,
            nodes: Vec::new(),
            token: String::new(),
            http: reqwest::Client::new(),
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Starts one more node with `role`; the first one started creates the owner and its token.
    fn start(&mut self, role: &str) -> usize {
        let database_url = self.database_url.clone();
        self.start_via(role, &[], "127.0.0.1:0", &database_url)
    }

    /// [`Cluster::start`] run through `prefix` (see [`start_server_via`]), listening on
    /// `listen` and reaching the cluster's database at `database_url`.
    fn start_via(
        &mut self,
        role: &str,
        prefix: &[&str],
        listen: &str,
        database_url: &str,
    ) -> usize {
        let i = self.nodes.len();
        let data_dir = self.home.path().join(format!("node-{i}"));
        let (child, url) = start_server_via(
            prefix,
            listen,
            &data_dir,
            None,
            &["--role", role],
            &[
                ("STACKDOCK_DATABASE_URL", database_url),
                ("STACKDOCK_MASTER_KEY", self.master_key.as_str()),
            ],
        );
        if self.token.is_empty() {
            self.token = std::fs::read_to_string(data_dir.join("owner-token"))
                .expect("the first node writes the owner token")
                .trim()
                .to_string();
        }
        let name = std::fs::read_to_string(data_dir.join("node-id"))
            .expect("node id")
            .trim()
            .to_string();
        self.nodes.push(Node {
            url,
            data_dir,
            name,
            child: Some(child),
        });
        i
    }

    async fn call(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.nodes[node].url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, node: usize, path: &str) -> (u16, Value) {
        self.call(node, reqwest::Method::GET, path, None).await
    }

    /// Every item of a listing, read from `node` page by page.
    async fn all(&self, node: usize, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut url = path.to_string();
        loop {
            let (status, body) = self.get(node, &url).await;
            assert_eq!(status, 200, "GET {url}: {body}");
            items.extend(body["items"].as_array().expect("items").iter().cloned());
            match body["next"].as_str() {
                Some(next) => url = format!("{path}{joiner}cursor={next}"),
                None => return items,
            }
        }
    }

    async fn connect_dock(&self, node: usize, settings: Value) {
        let mut body = json!({
            "provider": "digitalocean", "name": "do-shared", "api_key": self.canary,
            "api_url": self.sandbox.base_url(),
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(extra.clone());
        }
        let (status, answer) = self
            .call(node, reqwest::Method::POST, "/api/v1/docks", Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
    }

    async fn provision(&self, node: usize, name: &str) -> String {
        let (status, body) = self
            .call(
                node,
                reqwest::Method::POST,
                "/api/v1/servers",
                Some(json!({
                    "dock": "do-shared", "name": name, "region": "nyc3",
                    "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
                })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Waits until `node`'s log (colours left out) holds `text`.
    async fn wait_for_log(&self, node: usize, text: &str) {
        let path = self.nodes[node].data_dir.join("server.log");
        let seen = wait_for(|| async {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            without_colours(&log).contains(text).then_some(())
        })
        .await;
        assert!(seen.is_some(), "node {node} never logged {text:?}");
    }

    /// Which node a worker belongs to.
    fn node_of(&self, worker: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| worker.starts_with(&format!("{}-", n.name)))
    }

    /// Stops every node and checks the dock's key is nowhere in their data directories.
    fn finish(mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let forms = stackdock_core::redact::encoded_forms(&self.canary);
        for n in &self.nodes {
            for path in crate::support::files_under(&n.data_dir) {
                let bytes = std::fs::read(&path).expect("read");
                for f in &forms {
                    assert!(
                        !bytes.windows(f.len()).any(|w| w == f.as_bytes()),
                        "{} holds the dock's key",
                        path.display()
                    );
                }
            }
        }
    }
}

/// `log` without its terminal colour sequences (`ESC [ ... m`).
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
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

/// Every provider call of `resource`, as its journal shows it on `node`.
async fn journal(cluster: &Cluster, node: usize, resource: &str) -> Vec<Value> {
    cluster
        .all(node, &format!("/api/v1/servers/{resource}/api-calls"))
        .await
}

async fn wait_until_all(
    cluster: &Cluster,
    node: usize,
    ids: &[String],
    state: &str,
    deadline: Duration,
) {
    let until = Instant::now() + deadline;
    loop {
        let rows = cluster.all(node, "/api/v1/servers?limit=200").await;
        let done = rows
            .iter()
            .filter(|r| {
                ids.iter().any(|id| r["id"] == id.as_str()) && r["provisioning_state"] == state
            })
            .count();
        if done == ids.len() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{done} of {} rows became {state} within {deadline:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_node_and_a_worker_node_split_the_work_of_one_database() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("shared.db");
    let mut cluster = Cluster::new(db.display().to_string(), DoSandboxConfig::default()).await;
    let api = cluster.start("api");
    let worker = cluster.start("worker");

    // The probes say who answers, on both; the worker serves nothing else.
    let (status, health) = cluster.get(worker, "/healthz").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["role"], "worker");
    assert_eq!(health["node"], cluster.nodes[worker].name.as_str());
    let (status, ready) = cluster.get(api, "/readyz").await;
    assert_eq!(
        (status, &ready["role"], &ready["database"]),
        (200, &json!("api"), &json!("ok")),
        "{ready}"
    );
    let (status, _) = cluster.get(worker, "/api/v1/health").await;
    assert_eq!(status, 404, "a worker node serves no API");

    cluster.connect_dock(api, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(cluster.provision(api, &format!("split-{i}")).await);
    }
    wait_until_all(&cluster, api, &ids, "provisioned", DEADLINE).await;

    // Every call of every operation was made by the worker node: the API node runs none.
    for id in &ids {
        let calls = journal(&cluster, api, id).await;
        assert!(!calls.is_empty(), "no calls journaled for {id}");
        for c in &calls {
            let w = c["worker"]
                .as_str()
                .unwrap_or_else(|| panic!("a call without its worker: {c}"));
            assert_eq!(cluster.node_of(w), Some(worker), "{c}");
        }
    }
    cluster.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_of_another_kind_is_refused_by_name() {
    let home = tempfile::tempdir().expect("tempdir");
    for (url, scheme) in [
        (
            "mysql://admin:hunter2-secret@127.0.0.1:3306/stackdock",
            "mysql",
        ),
        ("redis://127.0.0.1:6379", "redis"),
    ] {
        let out = tokio::process::Command::new(binary())
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(home.path().join("data"))
            .current_dir(home.path())
            .env("STACKDOCK_DATABASE_URL", url)
            .env_remove("STACKDOCK_MASTER_KEY")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(
            err.contains(scheme) && err.contains("postgres") && err.contains("sqlite"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "the password was printed: {err}");
    }
    // Nothing was created that looks like the URL.
    let made: Vec<_> = std::fs::read_dir(home.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "data")
        .collect();
    assert!(made.is_empty(), "files made from a URL: {made:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_postgres_share_300_provisions_and_survive_a_sigkill() {
    let Some(admin) = postgres_admin("three_nodes_on_postgres_share_300_provisions") else {
        return;
    };
    // The account allows 30 calls a second (a burst of 30); the dock is set to 24. Each node
    // alone would spend 24 a second: only if the three share the dock's limit do they stay
    // within the account's.
    let mut cluster = Cluster::new(
        create_database(&admin),
        DoSandboxConfig {
            ready_after: Duration::from_millis(1500),
            request_log: false,
            bucket: Some(BucketLimit {
                per_minute: 1800,
                burst: 30,
            }),
            ..Default::default()
        },
    )
    .await;
    for _ in 0..3 {
        cluster.start("all");
    }
    for node in 0..3 {
        cluster.wait_for_log(node, "nodes=3").await;
    }
    cluster.connect_dock(0, json!({"rate_limit": "24/s"})).await;

    let mut ids = Vec::new();
    for chunk in 0..15 {
        let made = futures::future::join_all((0..20).map(|i| {
            let n = chunk * 20 + i;
            let cluster = &cluster;
            async move { cluster.provision(n % 3, &format!("fleet-{n}")).await }
        }))
        .await;
        ids.extend(made);
    }

    // Mid-run: a third of the droplets exist, and node 2 has made provider calls.
    let killed = 2;
    let started =
        wait_for(|| async { (cluster.sandbox.droplets().len() >= 100).then_some(()) }).await;
    assert!(started.is_some(), "the fleet did not get going");
    cluster.nodes[killed].kill();

    wait_until_all(&cluster, 0, &ids, "provisioned", Duration::from_secs(120)).await;

    // 0 doubled, 0 untracked: one droplet per row, each row's droplet its own.
    let droplets: Vec<String> = cluster
        .sandbox
        .droplets()
        .iter()
        .map(|d| d["id"].to_string())
        .collect();
    assert_eq!(droplets.len(), 300, "droplets at the provider");
    let rows = cluster.all(0, "/api/v1/servers?limit=200").await;
    let mut tracked: Vec<String> = rows
        .iter()
        .map(|r| {
            r["provider_resource_id"]
                .as_str()
                .expect("provider id")
                .to_string()
        })
        .collect();
    tracked.sort();
    tracked.dedup();
    let mut at_provider = droplets.clone();
    at_provider.sort();
    assert_eq!(tracked, at_provider, "rows and droplets differ");

    // One node at a time per operation: the journal's calls of one resource, in time order,
    // fall in runs of one worker each, and a run starts only after the one before it ended.
    let mut by_node = [0usize; 3];
    let mut handed_over = 0;
    for id in &ids {
        let mut calls = journal(&cluster, 1, id).await;
        calls.sort_by_key(|c| c["at"].as_str().expect("at").to_string());
        let mut runs: Vec<(String, Vec<&Value>)> = Vec::new();
        for c in &calls {
            let w = c["worker"]
                .as_str()
                .unwrap_or_else(|| panic!("a call without its worker: {c}"))
                .to_string();
            let node = cluster
                .node_of(&w)
                .unwrap_or_else(|| panic!("worker {w} of no node"));
            by_node[node] += 1;
            match runs.last_mut() {
                Some((last, run)) if *last == w => run.push(c),
                _ => runs.push((w, vec![c])),
            }
        }
        for pair in runs.windows(2) {
            let ended = pair[0].1.iter().map(|c| end_of(c)).max().expect("a call");
            let next = start_of(pair[1].1[0]);
            assert!(
                next >= ended,
                "{id}: {} called before {} was done: {calls:?}",
                pair[1].0,
                pair[0].0
            );
        }
        if runs.len() > 1 {
            handed_over += 1;
        }
    }
    assert!(
        by_node.iter().all(|&n| n > 0),
        "every node did work: {by_node:?}"
    );
    let counts = cluster.sandbox.request_counts();
    assert_eq!(
        counts.rate_limited, 0,
        "the nodes together went over the account's limit: {counts:?}"
    );
    eprintln!("calls by node {by_node:?}; {handed_over} resources worked by more than one worker");
    cluster.finish();
}

fn start_of(call: &Value) -> chrono::DateTime<chrono::Utc> {
    call["at"].as_str().expect("at").parse().expect("a time")
}

fn end_of(call: &Value) -> chrono::DateTime<chrono::Utc> {
    start_of(call) + chrono::Duration::milliseconds(call["duration_ms"].as_i64().expect("duration"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_node_streams_live_from_another() {
    let Some(admin) = postgres_admin("a_change_made_on_one_node_streams_live_from_another") else {
        return;
    };
    let mut cluster = Cluster::new(create_database(&admin), DoSandboxConfig::default()).await;
    let a = cluster.start("api");
    let b = cluster.start("all");
    cluster.connect_dock(b, json!({})).await;

    let resp = cluster
        .http
        .get(format!("{}/api/v1/events", cluster.nodes[a].url))
        .bearer_auth(&cluster.token)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let id = cluster.provision(b, "seen-from-a").await;

    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut states = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while !states.iter().any(|s| s == "provisioned") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left.max(Duration::from_millis(1)), stream.next())
            .await
            .unwrap_or_else(|_| panic!("node A never streamed node B's change; saw {states:?}"))
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let doc: Value = serde_json::from_str(data).expect("json");
            if doc["resource"]["id"] == id.as_str() {
                states.push(
                    doc["resource"]["provisioning_state"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("provisioning"),
        "{states:?}"
    );
    cluster.finish();
}

/// The repository's throwaway PostgreSQL script.
fn postgres_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres")
}

fn script(action: &str, dir: &Path) -> String {
    let out = Command::new(postgres_script())
        .arg(action)
        .arg(dir)
        .output()
        .expect("run scripts/postgres");
    assert!(
        out.status.success(),
        "scripts/postgres {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database_while_healthz_stays_up() {
    if postgres_admin("readyz_follows_the_database_while_healthz_stays_up").is_none() {
        return;
    }
    // A server of its own, since this test stops it.
    let pg = tempfile::tempdir().expect("tempdir");
    let admin = script("start", pg.path());
    let database_url = create_database(&admin);
    let (_, database) = database_url.rsplit_once('/').expect("a database name");
    let database = database.to_string();
    let mut cluster = Cluster::new(database_url, DoSandboxConfig::default()).await;
    let node = cluster.start("all");
    let (status, ready) = cluster.get(node, "/readyz").await;
    assert_eq!(status, 200, "{ready}");

    // A database that refuses the node at once: unready, and the answer, which anyone may
    // ask for, carries none of the server's words (they name the database).
    let allow = |allowed: bool| {
        let sql = format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS {allowed}; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND NOT {allowed}"
        );
        psql(&admin, &sql);
    };
    allow(false);
    let refused = wait_for(|| async {
        let (status, body) = cluster.get(node, "/readyz").await;
        (status == 503).then_some(body)
    })
    .await
    .expect("/readyz never said the database refused the node");
    assert!(!refused.to_string().contains(&database), "{refused}");
    allow(true);
    let back = wait_for(|| async { (cluster.get(node, "/readyz").await.0 == 200).then_some(()) });
    assert!(back.await.is_some(), "/readyz did not recover");

    script("stop", pg.path());
    let down = wait_for(|| async {
        let (status, body) = cluster.get(node, "/readyz").await;
        (status == 503).then_some(body)
    })
    .await
    .expect("/readyz never said the database was gone");
    assert_eq!(down["status"], "unavailable", "{down}");
    assert!(
        down["database"].as_str().is_some_and(|d| d != "ok"),
        "{down}"
    );
    let (status, _) = cluster.get(node, "/healthz").await;
    assert_eq!(status, 200, "the node is alive without its database");

    script("resume", pg.path());
    let last = std::sync::Mutex::new(Value::Null);
    let back = wait_for(|| async {
        let (status, body) = cluster.get(node, "/readyz").await;
        *last.lock().expect("lock") = body;
        (status == 200).then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "/readyz did not recover with the database: {}",
        last.lock().expect("lock")
    );
    cluster.finish();
    script("stop", pg.path());
}

/// Reads the first `resource` event of an event stream opened with `?after=`.
async fn first_event_after(cluster: &Cluster, node: usize, after: i64) -> Value {
    let resp = cluster
        .http
        .get(format!(
            "{}/api/v1/events?after={after}",
            cluster.nodes[node].url
        ))
        .bearer_auth(&cluster.token)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    loop {
        let chunk = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("no event within the deadline")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).expect("json");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_sqlite_installation_to_postgres_with_every_row_and_the_cursor() {
    let Some(admin) = postgres_admin("migrate_moves_a_sqlite_installation_to_postgres") else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("before.db");
    let mut cluster = Cluster::new(db.display().to_string(), DoSandboxConfig::default()).await;
    let old = cluster.start("all");
    cluster.connect_dock(old, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(cluster.provision(old, &format!("moved-{i}")).await);
    }
    wait_until_all(&cluster, old, &ids, "provisioned", DEADLINE).await;
    let (status, _) = cluster
        .call(
            old,
            reqwest::Method::DELETE,
            &format!("/api/v1/servers/{}", ids[2]),
            None,
        )
        .await;
    assert_eq!(status, 202);
    wait_until_all(&cluster, old, &ids[2..], "deprovisioned", DEADLINE).await;

    let listings = [
        "/api/v1/servers?limit=200".to_string(),
        "/api/v1/docks".to_string(),
        "/api/v1/audit?limit=1000".to_string(),
        "/api/v1/operations?limit=200".to_string(),
        format!("/api/v1/servers/{}/api-calls", ids[0]),
    ];
    let mut before = Vec::new();
    for path in &listings {
        before.push(cluster.all(old, path).await);
    }
    cluster.nodes[old].kill();
    let cursor = {
        use stackdock_store::Store;
        let store = stackdock_store::SqliteStore::open(&db).await.expect("open");
        let at = store.latest_change().await.expect("latest");
        store.close().await;
        at
    };
    assert!(cursor > 0);

    let target = create_database(&admin);
    let migrate = |to: String| {
        let from = format!("sqlite:{}", db.display());
        async move {
            tokio::process::Command::new(binary())
                .args(["migrate", "--from", &from, "--to", &to])
                .stdin(Stdio::null())
                .output()
                .await
                .expect("run migrate")
        }
    };
    let out = migrate(target.clone()).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("Change feed at {cursor}")), "{said}");
    // A second copy into the now populated database is refused, and changes nothing.
    let again = migrate(target.clone()).await;
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    cluster.database_url = target;
    let new = cluster.start("all");
    for (path, rows) in listings.iter().zip(&before) {
        assert_eq!(
            &cluster.all(new, path).await,
            rows,
            "{path} differs after the move"
        );
    }
    // The cursor: the last event before the move is still that number, and what happens
    // after the move comes after it.
    let last = first_event_after(&cluster, new, cursor - 1).await;
    assert_eq!(last["seq"].as_i64(), Some(cursor), "{last}");
    let id = cluster.provision(new, "after-the-move").await;
    let next = first_event_after(&cluster, new, cursor).await;
    assert!(next["seq"].as_i64().expect("seq") > cursor, "{next}");
    assert_eq!(next["resource"]["id"], id.as_str(), "{next}");
    // The dock's key came along sealed and still opens: the new server gets made.
    wait_until_all(&cluster, new, &[id], "provisioned", DEADLINE).await;
    cluster.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_databases_master_key_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("shared.db");
    let mut cluster = Cluster::new(db.display().to_string(), DoSandboxConfig::default()).await;
    let first = cluster.start("all");
    cluster.connect_dock(first, json!({})).await;

    // A second node with a new data directory and no key given makes a key of its own.
    let out = tokio::process::Command::new(binary())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(home.path().join("stranger"))
        .env("STACKDOCK_DATABASE_URL", &cluster.database_url)
        .env_remove("STACKDOCK_MASTER_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, out)
        .await
        .expect("the node started without the database's key instead of refusing")
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("STACKDOCK_MASTER_KEY"), "{err}");
    assert!(
        !err.contains(&cluster.master_key),
        "the master key itself was printed"
    );

    // With the same key it starts and serves.
    let second = cluster.start("all");
    let (status, _) = cluster.get(second, "/api/v1/docks").await;
    assert_eq!(status, 200);
    cluster.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_at_once_on_an_empty_database_make_one_owner() {
    let Some(admin) = postgres_admin("nodes_started_at_once_on_an_empty_database_make_one_owner")
    else {
        return;
    };
    let cluster = Cluster::new(create_database(&admin), DoSandboxConfig::default()).await;
    let env = [
        ("STACKDOCK_DATABASE_URL", cluster.database_url.as_str()),
        ("STACKDOCK_MASTER_KEY", cluster.master_key.as_str()),
    ];
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| cluster.home.path().join(format!("at-once-{i}")))
        .collect();
    let started: Vec<(Child, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|dir| s.spawn(|| start_server(dir, None, &[], &env)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("start"))
            .collect()
    });
    let tokens: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("owner-token")).ok())
        .map(|t| t.trim().to_string())
        .collect();
    assert_eq!(tokens.len(), 1, "owner tokens written: {tokens:?}");
    for (_, url) in &started {
        let resp = cluster
            .http
            .get(format!("{url}/api/v1/me"))
            .bearer_auth(&tokens[0])
            .send()
            .await
            .expect("me");
        assert_eq!(resp.status(), 200, "{url}");
    }
    for (mut child, _) in started {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `program` with `args`; panics with its error output if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `program` runs at all.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The superuser URL of the test PostgreSQL server when this machine can also make network
/// namespaces (root, `ip`, `nft`); `None` (having said why) when the test should skip.
fn partition_admin(test: &str) -> Option<String> {
    let admin = postgres_admin(test)?;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let missing = if !root {
        Some("not root (network namespaces need it)")
    } else if !runs("ip", &["-V"]) {
        Some("no `ip` command (apt-get install -y iproute2)")
    } else if !runs("nft", &["--version"]) {
        Some("no `nft` command (apt-get install -y nftables)")
    } else {
        None
    };
    match missing {
        None => Some(admin),
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {why} under CI=true")
        }
        Some(why) => {
            eprintln!("{test}: skipped: {why}");
            None
        }
    }
}

/// A network namespace of the test's own, joined to the root namespace by a veth pair: the
/// root side has `outside`, the namespace's side `inside`, a /30 of 10.213.0.0/16 that no
/// interface has yet, chosen from the process id; the names come from the process id and a
/// count, so two runs, or two tests, at once do not meet. Dropping it deletes the pair and the namespace.
struct Link {
    ns: String,
    veth: String,
    outside: Ipv4Addr,
    inside: Ipv4Addr,
}

impl Link {
    fn new() -> Self {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let pid = std::process::id();
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let blocks = 1u32 << 14;
        let base = (0..blocks)
            .map(|i| u32::from(Ipv4Addr::new(10, 213, 0, 0)) + (pid + i) % blocks * 4)
            .find(|&net| {
                let net = format!("{}/30", Ipv4Addr::from(net));
                Command::new("ip")
                    .args(["-o", "-4", "addr", "show", "to", &net])
                    .output()
                    .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
            })
            .expect("a free /30 in 10.213.0.0/16");
        let link = Self {
            ns: format!("sdpart{pid}-{n}"),
            veth: format!("sd{pid}-{n}r"),
            outside: Ipv4Addr::from(base + 1),
            inside: Ipv4Addr::from(base + 2),
        };
        // Names with this process's id can only be left over from a dead process that had
        // the same id.
        link.remove();
        // `link` exists before anything is set up, so a panic below undoes what was.
        let peer = format!("sd{pid}-{n}n");
        run("ip", &["netns", "add", &link.ns]);
        run(
            "ip",
            &[
                "link", "add", &link.veth, "type", "veth", "peer", "name", &peer, "netns", &link.ns,
            ],
        );
        let outside = format!("{}/30", link.outside);
        run("ip", &["addr", "add", &outside, "dev", &link.veth]);
        run("ip", &["link", "set", &link.veth, "up"]);
        let inside = format!("{}/30", link.inside);
        run(
            "ip",
            &["-n", &link.ns, "addr", "add", &inside, "dev", &peer],
        );
        run("ip", &["-n", &link.ns, "link", "set", &peer, "up"]);
        run("ip", &["-n", &link.ns, "link", "set", "lo", "up"]);
        link
    }

    /// Deletes the pair (deleting one end deletes both) and the namespace, as far as they
    /// exist.
    fn remove(&self) {
        for args in [
            ["link", "del", self.veth.as_str()],
            ["netns", "del", self.ns.as_str()],
        ] {
            let _ = Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// What runs a command inside the namespace.
    fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.ns]
    }

    /// Drops every packet between the namespace and `port` on the root side, both ways: a
    /// silent partition (no reset, no refusal), as a pulled cable or a dead switch makes.
    fn cut(&self, port: u16) {
        let rules = format!(
            "add table inet partition; \
             add chain inet partition out {{ type filter hook output priority 0; }}; \
             add chain inet partition in {{ type filter hook input priority 0; }}; \
             add rule inet partition out ip daddr {0} tcp dport {port} drop; \
             add rule inet partition in ip saddr {0} tcp sport {port} drop",
            self.outside
        );
        let [ip, netns, exec, ns] = self.exec();
        run(ip, &[netns, exec, ns, "nft", &rules]);
    }

    fn restore(&self) {
        let [ip, netns, exec, ns] = self.exec();
        run(ip, &[netns, exec, ns, "nft", "delete table inet partition"]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A PostgreSQL server of the test's own ([`postgres_script`]), listening on loopback and on
/// the root side of `link`, trusting the link's network; stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    /// The superuser's URL, on loopback.
    admin: String,
    port: u16,
}

impl OwnPostgres {
    fn start(link: &Link) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(postgres_script())
            .arg("start")
            .arg(dir.path())
            .env("STACKDOCK_PG_LISTEN", link.outside.to_string())
            .env("STACKDOCK_PG_TRUST", format!("{}/30", link.outside))
            .output()
            .expect("run scripts/postgres");
        // Stops it whatever the assertion says.
        let mut pg = Self {
            dir,
            admin: String::new(),
            port: 0,
        };
        assert!(
            out.status.success(),
            "scripts/postgres start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.admin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        pg.port = std::fs::read_to_string(pg.dir.path().join("port"))
            .expect("port")
            .trim()
            .parse()
            .expect("a port");
        pg
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(postgres_script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// The lines of a node's log that say a write of `operation` was refused because another
/// worker holds it now.
fn fenced_lines(node: &Node, operation: &str) -> usize {
    std::fs::read_to_string(node.data_dir.join("server.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(operation) && l.contains("another worker took this operation over"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_database_is_fenced_and_creates_nothing_twice() {
    const TEST: &str = "a_worker_cut_off_from_the_database_is_fenced";
    const N: usize = 10;
    let Some(_) = partition_admin(TEST) else {
        return;
    };
    // Declared before the cluster, so dropped after its nodes.
    let link = Link::new();
    let pg = OwnPostgres::start(&link);
    let database = create_database(&pg.admin);
    let (_, name) = database.rsplit_once('/').expect("a database name");
    let from_inside = format!("postgres://stackdock@{}:{}/{name}", link.outside, pg.port);
    let mut cluster = Cluster::new_on(
        database,
        SocketAddr::from((link.outside, 0)),
        DoSandboxConfig::default(),
    )
    .await;

    // A serves the API and runs no workers; W, in the namespace, is the only worker.
    let api = cluster.start("api");
    let listen = format!("{}:0", link.inside);
    let w = cluster.start_via("worker", &link.exec(), &listen, &from_inside);
    let (status, ready) = cluster.get(w, "/readyz").await;
    assert_eq!((status, &ready["database"]), (200, &json!("ok")), "{ready}");
    // A known limit, well above what the test asks: no slow start holds creates back.
    cluster
        .connect_dock(api, json!({"rate_limit": "100/s"}))
        .await;

    // W's creates are done at the provider at once but answered only after a while: the cut
    // lands after the droplets exist and before W can have recorded any of them.
    cluster.sandbox.inject(Fault::new(
        Some("POST"),
        "/v2/droplets",
        N as u32,
        FaultResponse::Delay(Duration::from_secs(4)),
    ));
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(cluster.provision(api, &format!("cut-{i}")).await);
    }
    let created =
        wait_for(|| async { (cluster.sandbox.droplets().len() == N).then_some(()) }).await;
    assert!(
        created.is_some(),
        "W's creates did not reach the sandbox: {} droplets",
        cluster.sandbox.droplets().len()
    );
    link.cut(pg.port);

    // Mid-operation: every droplet exists, no row knows its droplet, W holds every operation.
    let rows = cluster.all(api, "/api/v1/servers?limit=200").await;
    assert_eq!(rows.len(), N);
    for r in &rows {
        assert_eq!(r["provisioning_state"], "provisioning", "{r}");
        assert!(
            r["provider_resource_id"].is_null(),
            "recorded before the cut: {r}"
        );
    }
    let operations: Vec<Value> = cluster
        .all(api, "/api/v1/operations?limit=200")
        .await
        .into_iter()
        .filter(|o| o["kind"] == "provision")
        .collect();
    assert_eq!(operations.len(), N, "{operations:?}");
    // Running, and W is the only node with workers: each says so, and until when W holds it.
    let on_w = format!("{}-run", cluster.nodes[w].name);
    for o in &operations {
        assert_eq!(o["state"], "running", "{o}");
        assert_eq!(o["running_on"], on_w.as_str(), "{o}");
        assert!(o["lease_expires_at"].is_string(), "{o}");
        assert!(o["next_run_at"].is_null(), "{o}");
    }

    // A worker in the root namespace takes over once W's leases run out, finds each
    // droplet by its marker and adopts it.
    let b = cluster.start("worker");
    wait_until_all(&cluster, api, &ids, "provisioned", DEADLINE).await;
    // W's answers reach it while it is still cut off: what it writes about them waits in the
    // partition.
    let released = wait_for(|| async {
        (cluster.sandbox.request_counts().released == N as u64).then_some(())
    })
    .await;
    assert!(released.is_some(), "the sandbox did not send W's answers");
    assert_eq!(
        cluster.sandbox.droplets().len(),
        N,
        "a create was made twice"
    );
    let settled_rows = cluster.all(api, "/api/v1/servers?limit=200").await;
    let settled_ops = cluster.all(api, "/api/v1/operations?limit=200").await;
    for o in &settled_ops {
        assert_eq!(o["state"], "succeeded", "{o}");
        assert!(o["running_on"].is_null(), "{o}");
        assert!(o["lease_expires_at"].is_null(), "{o}");
    }
    for id in &ids {
        let calls = journal(&cluster, api, id).await;
        assert!(
            calls.iter().any(|c| c["method"] == "GET"
                && c["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("tag_name=stackdock-"))
                && cluster.node_of(c["worker"].as_str().unwrap_or("")) == Some(b)),
            "{id}: B did not look its droplet up by its marker: {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c["method"] == "POST"
                && cluster.node_of(c["worker"].as_str().unwrap_or("")) == Some(b)),
            "{id}: B created a droplet W had made: {calls:?}"
        );
    }

    // The link comes back: W's writes, held in the partition, reach the database and are
    // refused, and the calls it made are journaled under its name.
    link.restore();
    let refused = wait_for(|| async {
        operations
            .iter()
            .all(|o| fenced_lines(&cluster.nodes[w], o["id"].as_str().expect("id")) > 0)
            .then_some(())
    })
    .await;
    let log =
        std::fs::read_to_string(cluster.nodes[w].data_dir.join("server.log")).unwrap_or_default();
    assert!(
        refused.is_some(),
        "W's writes were not all refused by fencing; its log ends:\n{}",
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    let journaled = wait_for(|| async {
        for id in &ids {
            let calls = journal(&cluster, api, id).await;
            let posts_by_w = calls
                .iter()
                .filter(|c| {
                    c["method"] == "POST"
                        && c["path"] == "/v2/droplets"
                        && cluster.node_of(c["worker"].as_str().unwrap_or("")) == Some(w)
                })
                .count();
            if posts_by_w != 1 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(
        journaled.is_some(),
        "W's creates were not journaled once each"
    );

    // Nothing W wrote got through: every row and operation is as it was when B settled it.
    assert_eq!(
        cluster.all(api, "/api/v1/servers?limit=200").await,
        settled_rows,
        "a row changed after it was settled"
    );
    assert_eq!(
        cluster.all(api, "/api/v1/operations?limit=200").await,
        settled_ops,
        "an operation changed after it was settled"
    );

    // 0 doubled, 0 untracked: N droplets, each tracked by exactly one row.
    let mut at_provider: Vec<String> = cluster
        .sandbox
        .droplets()
        .iter()
        .map(|d| d["id"].to_string())
        .collect();
    at_provider.sort();
    let mut tracked: Vec<String> = settled_rows
        .iter()
        .map(|r| {
            r["provider_resource_id"]
                .as_str()
                .expect("provider id")
                .to_string()
        })
        .collect();
    tracked.sort();
    assert_eq!(tracked.len(), N);
    assert_eq!(tracked, at_provider, "rows and droplets differ");

    // W recovers: with B gone, it alone provisions a new server.
    cluster.nodes[b].kill();
    let again = wait_for(|| async {
        let (status, _) = cluster.get(w, "/readyz").await;
        (status == 200).then_some(())
    })
    .await;
    assert!(again.is_some(), "W's /readyz did not recover");
    let after = cluster.provision(api, "after-the-cut").await;
    wait_until_all(
        &cluster,
        api,
        std::slice::from_ref(&after),
        "provisioned",
        DEADLINE,
    )
    .await;
    let calls = journal(&cluster, api, &after).await;
    assert!(
        !calls.is_empty()
            && calls
                .iter()
                .all(|c| cluster.node_of(c["worker"].as_str().unwrap_or("")) == Some(w)),
        "{calls:?}"
    );
    assert_eq!(cluster.sandbox.droplets().len(), N + 1);
    cluster.finish();
}
