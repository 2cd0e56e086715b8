//! `spawn_app()`: one fresh StackDock process, data directory and sandbox per test.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde_json::{Value, json};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig};

pub const DOCK: &str = "do-test";

/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Options {
    pub failpoints: Option<&'static str>,
    pub ready_after: Duration,
    /// Extra environment for every start of the server (overrides the test defaults).
    pub env: Vec<(&'static str, &'static str)>,
    /// Connect the sandbox dock [`DOCK`] through the API before the test starts (a test that
    /// connects it another way says no).
    pub connect_dock: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            failpoints: None,
            ready_after: Duration::from_millis(300),
            env: Vec::new(),
            connect_dock: true,
        }
    }
}

pub struct TestApp {
    pub url: String,
    pub token: String,
    pub sandbox: DigitalOceanSandbox,
    /// The dock's plaintext API key: unique per test, searched for everywhere at the end.
    pub canary: String,
    /// A secret inside the cloud-init `user_data` of every server [`TestApp::provision`]
    /// asks for: sealed at rest, so searched for everywhere at the end too.
    pub init_canary: String,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra environment for every start of the server; a test may change it before a
    /// [`TestApp::restart`].
    pub env: Vec<(&'static str, &'static str)>,
    /// Every response body and CLI output the test saw.
    seen: Mutex<Vec<Vec<u8>>>,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_stackdock")
}

/// Starts the server on `data_dir`, returning the child and its URL once it listens.
pub fn start_server(
    data_dir: &Path,
    failpoints: Option<&str>,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    start_server_via(&[], "127.0.0.1:0", data_dir, failpoints, extra_args, env)
}

/// [`start_server`] listening on `listen`, run through the command `prefix` when not empty
/// (`ip netns exec NAME`, say, which then runs the server in place of itself).
pub fn start_server_via(
    prefix: &[&str],
    listen: &str,
    data_dir: &Path,
    failpoints: Option<&str>,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .expect("log file");
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(binary());
            cmd
        }
        None => Command::new(binary()),
    };
    cmd.args(["up", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .env_remove("STACKDOCK_DATABASE_URL")
        .env_remove("STACKDOCK_MASTER_KEY")
        .env("STACKDOCK_LOG", "trace")
        .env("STACKDOCK_LEASE_MS", "1500")
        .env("STACKDOCK_POLL_MS", "50")
        .env("STACKDOCK_RETRY_BASE_MS", "50")
        .env("STACKDOCK_FAILPOINTS", failpoints.unwrap_or(""))
        .args(extra_args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = cmd.spawn().expect("spawn stackdock");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let out_path = data_dir.join("server.stdout");
    std::thread::spawn(move || {
        let mut copy = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out_path)
            .ok();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(f) = copy.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
            if let Some(url) = line.strip_prefix("StackDock listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!(
            "stackdock did not start; see {}",
            data_dir.join("server.log").display()
        )
    });
    (child, url)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let canary = format!(
        "dop_v1_canary{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![canary.clone()],
        ready_after: opts.ready_after,
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let (child, url) = start_server(data_dir.path(), opts.failpoints, &[], &opts.env);
    let token = std::fs::read_to_string(data_dir.path().join("owner-token"))
        .expect("owner token")
        .trim()
        .to_string();
    let init_canary = format!("init-canary-{:016x}", rand::random::<u64>());
    let app = TestApp {
        url,
        token,
        sandbox,
        canary,
        init_canary,
        http: reqwest::Client::new(),
        data_dir,
        child: Some(child),
        env: opts.env,
        seen: Mutex::new(Vec::new()),
    };
    if opts.connect_dock {
        let dock = app
            .post(
                "/api/v1/docks",
                json!({"provider": "digitalocean", "name": DOCK, "api_key": app.canary, "api_url": app.sandbox.base_url()}),
            )
            .await;
        assert_eq!(dock.status, 201, "{}", dock.body);
    }
    app
}

impl TestApp {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        self.request_as(method, path, body, Some(&self.token)).await
    }

    pub async fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        self.record(resp).await
    }

    pub async fn raw(&self, method: reqwest::Method, path: &str, body: &'static str) -> Response {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        self.record(resp).await
    }

    async fn record(&self, resp: reqwest::Response) -> Response {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.seen.lock().unwrap().push(bytes);
        Response { status, body }
    }

    pub fn saw(&self, bytes: Vec<u8>) {
        self.seen.lock().unwrap().push(bytes);
    }

    /// Sends only the head of an upload announcing `length` bytes, and answers what the
    /// server said: a server that reads the announcement never waits for the body.
    pub async fn put_announcing(&self, digest: &str, length: u64) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let head = format!(
            "PUT /api/v1/files/{digest}?path=big.bin HTTP/1.1\r\nHost: {host}\r\n\
             Authorization: Bearer {}\r\nContent-Length: {length}\r\n\r\n",
            self.token
        );
        stream.write_all(head.as_bytes()).await.expect("head sent");
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut answer))
            .await
            .expect("answered without the body")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        self.saw(answer.clone().into_bytes());
        answer
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    pub async fn provision(&self, name: &str, size: &str) -> Value {
        let r = self
            .post(
                "/api/v1/servers",
                json!({
                    "dock": DOCK, "name": name, "region": "nyc3", "size": size,
                    "image": "ubuntu-24-04-x64",
                    "user_data": format!("#!/bin/sh\nexport API_TOKEN={}\n", self.init_canary)
                }),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["provisioning_state"], "provisioning");
        r.body
    }

    /// Waits until the server reaches `state`; fails the test at the deadline.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        self.wait_resource("servers", id, state).await
    }

    /// Waits until the resource `id` of `collection` reaches `state`; fails the test at the
    /// deadline.
    pub async fn wait_resource(&self, collection: &str, id: &str, state: &str) -> Value {
        let last = Mutex::new(Value::Null);
        let found = wait_for(|| async {
            let r = self.get(&format!("/api/v1/{collection}/{id}")).await;
            *last.lock().unwrap() = r.body.clone();
            (r.body["provisioning_state"] == state).then_some(r.body)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "resource {id} never became {state}; last seen: {}",
                last.lock().unwrap()
            )
        })
    }

    pub async fn audit(&self) -> Vec<Value> {
        self.all("/api/v1/audit?limit=1000").await
    }

    pub async fn api_calls(&self, id: &str) -> Vec<Value> {
        self.all(&format!("/api/v1/servers/{id}/api-calls")).await
    }

    /// Every item of a list, page after page: the query of `path` (filters, `limit`) is kept
    /// and each page's `next` cursor asked for the next.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut url = path.to_string();
        loop {
            let r = self.get(&url).await;
            assert_eq!(r.status, 200, "GET {url}: {}", r.body);
            items.extend(r.body["items"].as_array().expect("items").iter().cloned());
            match r.body["next"].as_str() {
                Some(next) => url = format!("{path}{joiner}cursor={next}"),
                None => return items,
            }
        }
    }

    /// Syncs `dock` and waits for the operation to end; answers the operation.
    pub async fn sync(&self, dock: &str) -> Value {
        let op = self
            .post(&format!("/api/v1/docks/{dock}/sync"), json!({}))
            .await;
        assert_eq!(op.status, 202, "{}", op.body);
        let id = op.body["id"].as_str().unwrap().to_string();
        wait_for(|| async {
            let o = self.get(&format!("/api/v1/operations/{id}")).await.body;
            (o["state"] == "succeeded" || o["state"] == "failed").then_some(o)
        })
        .await
        .expect("sync finished")
    }

    /// Runs the CLI against this server; returns (exit code, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_with_stdin(args, "").await
    }

    /// Runs the CLI with `input` on its standard input.
    pub async fn cli_with_stdin(&self, args: &[&str], input: &str) -> (i32, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(binary())
            .args(args)
            .current_dir(self.data_dir.path())
            .env("STACKDOCK_URL", &self.url)
            .env("STACKDOCK_TOKEN", &self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cli");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        let out = child.wait_with_output().await.expect("cli output");
        self.saw(out.stdout.clone());
        self.saw(out.stderr.clone());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits for the server process to die on its own (a failpoint), or fails at the deadline.
    pub async fn wait_for_crash(&mut self) {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    !status.success(),
                    "the server exited cleanly instead of crashing"
                );
                self.child = None;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not crash at the failpoint"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the server to exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same data directory (after a crash).
    pub fn restart(&mut self, failpoints: Option<&str>) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let (child, url) = start_server(self.data_dir.path(), failpoints, &[], &self.env);
        self.child = Some(child);
        self.url = url;
    }

    /// Stops the server and checks that the canary key and the `user_data` canary appear
    /// nowhere.
    pub fn finish(self) {
        self.finish_keeping_secret(&[]);
    }

    /// Stops the server and checks that neither the canary key nor any of `secrets` (tokens a
    /// provider minted, say) appears anywhere.
    pub fn finish_keeping_secret(mut self, secrets: &[String]) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Each secret as it is, and base64, hex and percent-encoded.
        let forms: Vec<String> = [&self.canary, &self.init_canary]
            .into_iter()
            .chain(secrets)
            .flat_map(|s| stackdock_core::redact::encoded_forms(s))
            .collect();
        let contains = |hay: &[u8]| {
            forms.iter().any(|f| {
                let needle = f.as_bytes();
                hay.windows(needle.len()).any(|w| w == needle)
            })
        };
        for (i, body) in self.seen.lock().unwrap().iter().enumerate() {
            assert!(
                !contains(body),
                "response/output #{i} contains a secret (plain or encoded)"
            );
        }
        let mut scanned = 0;
        for path in files_under(self.data_dir.path()) {
            let bytes = std::fs::read(&path).expect("read data file");
            assert!(
                !contains(&bytes),
                "{} contains a secret (plain or encoded)",
                path.display()
            );
            scanned += 1;
        }
        // The database, its WAL, the key, the token, the log and stdout at least.
        assert!(scanned >= 5, "only {scanned} files to scan in the data dir");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Polls `check` until it yields a value or [`DEADLINE`] passes.
pub async fn wait_for<T, F, Fut>(mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The droplet ids in the sandbox's inventory.
pub fn droplet_ids(app: &TestApp) -> Vec<String> {
    app.sandbox
        .droplets()
        .iter()
        .map(|d| d["id"].to_string())
        .collect()
}

/// `stackdock provision server ...` for a droplet in nyc3 with the README's image.
pub fn provision_args<'a>(dock: &'a str, name: &'a str, size: &'a str) -> Vec<&'a str> {
    vec![
        "provision",
        "server",
        "--dock",
        dock,
        "--name",
        name,
        "--region",
        "nyc3",
        "--size",
        size,
        "--image",
        "ubuntu-24-04-x64",
    ]
}
