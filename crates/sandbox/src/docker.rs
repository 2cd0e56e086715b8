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
//!   every image carrying one of the markers it was told of, however the test ended.

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
    let mut s = UnixStream::connect(SOCKET).expect("the engine's socket");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
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
        for c in containers(&self.label) {
            if let Some(id) = c["Id"].as_str() {
                engine("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
            }
        }
        for i in self.images() {
            if let Some(id) = i["Id"].as_str() {
                // Parents are kept: another test's build may be using them as its cache.
                engine("DELETE", &format!("/images/{id}?force=1&noprune=1"), None);
            }
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
