//! Docker has no simulator: its adapter is tested against the real Docker Engine of the
//! machine and a real registry. This module is what those tests share.
//!
//! - [`engine_or_skip`]: whether an engine answers; a test without one says so on one line
//!   and passes, except under `CI=true`, where it fails.
//! - [`engine`]: one exchange with the engine behind the adapter's back, to read what it
//!   holds ([`containers`], [`images`]) or remove it.
//! - [`Registry`]: Debian's `docker-registry` on a free loopback port with htpasswd auth and
//!   a temporary storage folder, stopped when dropped.
//! - [`Leftovers`]: removes, when dropped, every container and network carrying a label and
//!   every image carrying one of the markers it was told of (or run by one of those
//!   containers), however the test ended.
//! - [`EngineFront`]: a TCP front door to the engine that loses the answer of a chosen call
//!   after the engine carried it out, as a network or a crashed engine would.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the engine listens on this machine.
pub const SOCKET: &str = "/var/run/docker.sock";
/// A static busybox (Debian's `busybox-static`): test images are built `FROM scratch`
/// around it, since no image can be pulled.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether the engine answers and busybox is there; otherwise prints why `test` is skipped,
/// or fails it under `CI=true`.
pub fn engine_or_skip(test: &str) -> bool {
    let reachable = UnixStream::connect(SOCKET).is_ok() && Path::new(BUSYBOX).exists();
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the Docker tests need an engine at {SOCKET} and {BUSYBOX}"
        );
        println!("{test}: skipped, no Docker Engine at {SOCKET} (or no {BUSYBOX})");
    }
    reachable
}

/// One exchange with the engine (HTTP/1.0, read to the end): the status and the JSON body.
pub fn engine(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, answer) = engine_bytes(method, path, "application/json", body.as_bytes());
    (
        status,
        serde_json::from_slice(&answer).unwrap_or(Value::Null),
    )
}

/// One exchange with the engine sending `body` as `content_type`: the status and the body.
pub fn engine_bytes(method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(SOCKET).expect("the engine's socket");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("request");
    s.write_all(body).expect("request body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw.get(split + 4..).unwrap_or_default().to_vec())
}

/// `{"label": ["k=v"]}`, percent-encoded for a query.
fn label_filter(label: &str) -> String {
    json!({ "label": [label] })
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The containers carrying `label` (`k=v`), stopped ones too.
pub fn containers(label: &str) -> Vec<Value> {
    let path = format!("/containers/json?all=1&filters={}", label_filter(label));
    engine("GET", &path, None)
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The images carrying `label` (`k=v`).
pub fn images(label: &str) -> Vec<Value> {
    let path = format!("/images/json?filters={}", label_filter(label));
    engine("GET", &path, None)
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What a test made on the engine, removed when this is dropped: containers and networks
/// carrying `label`, images carrying `<marker label>=<marker>` for each marker it was told.
pub struct Leftovers {
    label: String,
    marker_label: String,
    markers: Mutex<Vec<String>>,
}

impl Leftovers {
    pub fn new(label: impl Into<String>, marker_label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            marker_label: marker_label.into(),
            markers: Mutex::default(),
        }
    }

    /// Images carrying `marker` are the test's too.
    pub fn watch(&self, marker: &str) {
        self.markers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(marker.to_string());
    }

    /// The test's images, as the engine holds them now.
    pub fn images(&self) -> Vec<Value> {
        let markers = self
            .markers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        markers
            .iter()
            .flat_map(|m| images(&format!("{}={m}", self.marker_label)))
            .collect()
    }

    /// The test's containers, as the engine holds them now.
    pub fn containers(&self) -> Vec<Value> {
        containers(&self.label)
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut image_ids: Vec<String> = Vec::new();
        for c in containers(&self.label) {
            if let Some(image) = c["ImageID"].as_str() {
                image_ids.push(image.to_string());
            }
            if let Some(id) = c["Id"].as_str() {
                engine("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
            }
        }
        image_ids.extend(
            self.images()
                .iter()
                .filter_map(|i| i["Id"].as_str().map(str::to_string)),
        );
        for id in image_ids {
            // Parents are kept: another test's build may be using them as its cache.
            engine("DELETE", &format!("/images/{id}?force=1&noprune=1"), None);
        }
        let path = format!("/networks?filters={}", label_filter(&self.label));
        for n in engine("GET", &path, None)
            .1
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(id) = n["Id"].as_str() {
                engine("DELETE", &format!("/networks/{id}"), None);
            }
        }
    }
}

/// A registry on a free loopback port with one user (`htpasswd -B`), storing in a
/// temporary folder; stopped when dropped. The engine treats loopback registries as
/// insecure, so it pushes to it over plain HTTP.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub user: String,
    pub password: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one whose user has `password`; waits until it listens.
    pub fn start(password: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let user = "stackdock".to_string();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", &user, password])
            .output()
            .expect("htpasswd (apache2-utils) is installed");
        assert!(htpasswd.status.success(), "htpasswd failed");
        let pw_file = dir.path().join("htpasswd");
        std::fs::write(&pw_file, &htpasswd.stdout).expect("the htpasswd file");
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {addr}\n\
             auth:\n  htpasswd:\n    realm: stackdock-test\n    path: {pw}\n",
            data = dir.path().join("data").display(),
            pw = pw_file.display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("the registry's config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed");
        let registry = Self {
            child,
            addr,
            user,
            password: password.to_string(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How [`EngineFront`] loses the answer of a call the engine carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostAnswer {
    /// A 500 instead of the engine's answer.
    ServerError,
    /// The first half of the answer, then the connection closes.
    CutOff,
    /// The connection closes before any of the answer is sent.
    Dropped,
    /// The answer is held this long.
    Delayed(Duration),
}

#[derive(Default)]
struct FrontState {
    /// (method, path prefix, how): the next matching call loses its answer this way.
    faults: Mutex<Vec<(String, String, LostAnswer)>>,
    requests: std::sync::atomic::AtomicU64,
    /// Container creates sent, by the name asked for.
    creates: Mutex<std::collections::HashMap<String, usize>>,
    /// Set by [`EngineFront::recording`]: every exchange is kept for the contract tests.
    recording: bool,
    exchanges: Mutex<Vec<crate::RecordedRequest>>,
}

/// A TCP front door to the real engine (`tcp://127.0.0.1:<port>`, one request a connection,
/// as the adapter sends them) that passes every call through and can lose the answer of the
/// next matching one after the engine carried it out. It counts the calls, and container
/// creates by name. Stops when dropped.
pub struct EngineFront {
    addr: String,
    state: std::sync::Arc<FrontState>,
    task: tokio::task::JoinHandle<()>,
}

impl EngineFront {
    pub async fn start() -> Self {
        Self::open(FrontState::default()).await
    }

    /// A front that also keeps every exchange, request and answer, as the sandboxes do for
    /// the contract tests ([`EngineFront::exchanges`]). Answers are passed on whole, not as
    /// they stream.
    pub async fn recording() -> Self {
        Self::open(FrontState {
            recording: true,
            ..FrontState::default()
        })
        .await
    }

    /// Every exchange so far, paths without the API version prefix (`/containers/create`).
    pub fn exchanges(&self) -> Vec<crate::RecordedRequest> {
        self.state
            .exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A front listening on `ip` (an address of this machine) instead of loopback, as an
    /// engine on another machine is reached.
    pub async fn start_on(ip: std::net::IpAddr) -> Self {
        Self::open_on(ip, FrontState::default()).await
    }

    async fn open(state: FrontState) -> Self {
        Self::open_on(std::net::Ipv4Addr::LOCALHOST.into(), state).await
    }

    async fn open_on(ip: std::net::IpAddr, state: FrontState) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("a port on {ip}: {e}"));
        let addr = listener.local_addr().expect("its address").to_string();
        let state = std::sync::Arc::new(state);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(pass(client, shared.clone()));
            }
        });
        Self { addr, state, task }
    }

    /// The engine's address through this front, as a dock's `host` setting takes it.
    pub fn host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// The next `method` call whose path (after the version prefix) starts with `path` is
    /// carried out by the engine and its answer lost as `how` says.
    pub fn lose_next(&self, method: &str, path: &str, how: LostAnswer) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((method.to_string(), path.to_string(), how));
    }

    pub fn requests(&self) -> u64 {
        self.state
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many containers named `name` the engine answered it created (a create refused
    /// because the name is taken does not count).
    pub fn creates_named(&self, name: &str) -> usize {
        self.state
            .creates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for EngineFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Passes one request to the engine and its answer back, or loses the answer.
async fn pass(mut client: tokio::net::TcpStream, state: std::sync::Arc<FrontState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    // `/v1.41/containers/create?name=x` as `/containers/create?name=x`.
    let path = match target.strip_prefix("/v") {
        Some(rest) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or(target.clone()),
        None => target.clone(),
    };
    // A container create's name, counted once the engine answers that it made it.
    let create_named = (method == "POST")
        .then(|| path.strip_prefix("/containers/create?"))
        .flatten()
        .and_then(|query| query.split('&').find_map(|kv| kv.strip_prefix("name=")))
        .map(str::to_string);
    let fault = {
        let mut faults = state.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let at = faults
            .iter()
            .position(|(m, p, _)| *m == method && path.starts_with(p.as_str()));
        at.map(|i| faults.remove(i).2)
    };

    // The engine closes the connection after its answer, so the answer ends at EOF.
    let mut forwarded: Vec<u8> = head[..head_end - 2]
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
    forwarded.extend_from_slice(&buf[head_end..head_end + length]);
    let Ok(mut engine) = tokio::net::UnixStream::connect(SOCKET).await else {
        return;
    };
    if engine.write_all(&forwarded).await.is_err() {
        return;
    }
    if fault.is_none() && create_named.is_none() && !state.recording {
        let _ = tokio::io::copy(&mut engine, &mut client).await;
        let _ = client.shutdown().await;
        return;
    }
    let mut answer = Vec::new();
    let _ = engine.read_to_end(&mut answer).await;
    if state.recording {
        let (query, path) = match path.split_once('?') {
            Some((p, q)) => (Some(q.to_string()), p.to_string()),
            None => (None, path.clone()),
        };
        let (status, response_body) = read_answer(&answer);
        let request_body = json_body(&head, &buf[head_end..head_end + length]);
        state
            .exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(crate::RecordedRequest {
                method: method.clone(),
                path,
                query,
                at: Instant::now(),
                status,
                disconnected: fault.is_some_and(|how| !matches!(how, LostAnswer::Delayed(_))),
                body: request_body,
                response_body,
            });
    }
    if let Some(name) = create_named
        && answer.starts_with(b"HTTP/1.1 201")
    {
        *state
            .creates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name)
            .or_default() += 1;
    }
    let Some(how) = fault else {
        let _ = client.write_all(&answer).await;
        let _ = client.shutdown().await;
        return;
    };
    match how {
        LostAnswer::ServerError => {
            let body = r#"{"message":"the answer was lost on its way"}"#;
            let reply = format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(reply.as_bytes()).await;
        }
        LostAnswer::CutOff => {
            let _ = client.write_all(&answer[..answer.len() / 2]).await;
        }
        LostAnswer::Dropped => {}
        LostAnswer::Delayed(wait) => {
            tokio::time::sleep(wait).await;
            let _ = client.write_all(&answer).await;
        }
    }
    let _ = client.shutdown().await;
}

/// A request's body, when its head says it is JSON.
fn json_body(head: &str, body: &[u8]) -> Option<Value> {
    let json = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.trim().starts_with("application/json")
        })
    });
    (json && !body.is_empty())
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}

/// An answer's status and, when it is one JSON document, its body (a progress stream of JSON
/// lines is none). A chunked body is joined first.
fn read_answer(answer: &[u8]) -> (u16, Option<Value>) {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, None);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let text_plain = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.trim().starts_with("text/plain")
        })
    });
    let raw = &answer[head_end + 4..];
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let body = if text.is_empty() {
        None
    } else if text_plain {
        // `GET /_ping`'s `OK`: a string, as the document describes it.
        Some(Value::String(text.to_string()))
    } else {
        serde_json::from_str(text).ok()
    };
    (status, body)
}

/// A chunked body's data: `<hex size>\r\n<data>\r\n` until a chunk of size 0.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let start = line_end + 2;
        if size == 0 || start + size > raw.len() {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}
