//! A real browser for the web UI's tests: Debian's `chromium`, headless, driven over WebDriver
//! through `chromedriver`, which each test starts on a free loopback port of its own.
//!
//! When either program is missing or the browser cannot start, [`Browser::start`] prints one
//! line saying so and answers `None`, and the test skips; under `CI=true` that fails instead.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{DEADLINE, TestApp};

pub struct Browser {
    pub client: Client,
    driver: Child,
    base: String,
}

impl Browser {
    /// A headless chromium on a fresh profile, or `None` (with one line why) when none can be
    /// started and the run is not CI's.
    pub async fn start(app: &TestApp) -> Option<Self> {
        match Self::try_start(&app.url).await {
            Ok(b) => Some(b),
            Err(why) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("no browser for the web UI tests under CI=true: {why}");
                }
                println!("skipped: no browser for the web UI tests ({why})");
                None
            }
        }
    }

    async fn try_start(base: &str) -> Result<Self, String> {
        let driver_bin = which("chromedriver").ok_or("chromedriver is not on PATH")?;
        let chromium = which("chromium").ok_or("chromium is not on PATH")?;
        // A port the system just handed out and let go of; the driver takes it at once.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver did not start: {e}"))?;
        let mut driver = Killed(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,1000", "--disable-dev-shm-usage"],
            }),
        );
        let deadline = Instant::now() + DEADLINE;
        let client = loop {
            let tried =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match tried {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("chromium did not start through chromedriver: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Self {
            client,
            driver: driver.0.take().expect("driver"),
            base: base.to_string(),
        })
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The page's path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        let mut p = url.path().to_string();
        if let Some(q) = url.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    }

    /// The page's HTML as it is now, recorded for the test's secret scan.
    pub async fn source(&self, app: &TestApp) -> String {
        let html = self.client.source().await.expect("page source");
        app.saw(html.clone().into_bytes());
        html
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The element `css` names, waited for until the deadline.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// How many elements `css` names now (no waiting: for what must not be there).
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .len()
    }

    /// The text of `css`, once it exists.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Waits until the text of `css` is `want`; fails at the deadline with what it was.
    pub async fn wait_text(&self, css: &str, want: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let now = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if now.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never read {want:?}; last {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page is at `path` (after a form's redirect).
    pub async fn wait_path(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.path().await;
            if pred(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "the page stayed at {p}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` in the page; it calls its last argument with the answer.
    pub async fn run_async(&self, script: &str) -> Value {
        self.client
            .execute_async(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Saves a PNG of the page as `docs/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Signs in through the form, and waits for the dashboard.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/sign-in").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form[action='/sign-in'] button[type=submit]")
            .await;
        self.wait_path(|p| p == "/").await;
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills the driver if starting the browser fails part way.
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
