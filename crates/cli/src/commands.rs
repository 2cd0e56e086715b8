//! The client commands: each one HTTP exchange (or a few), printed for a person or as JSON.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::client::{CliError, Client};
use crate::pages::{Listed, PageArgs};
use crate::watch::{Progress, follow};
use crate::{CliResult, Conn};

/// Percent-encodes a path segment typed by a user.
pub(crate) fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn collection(kind: &str) -> Result<&'static str, CliError> {
    match kind {
        "server" | "servers" => Ok("servers"),
        "web-service" | "web-services" | "web_service" => Ok("web-services"),
        "domain" | "domains" => Ok("domains"),
        "database" | "databases" => Ok("databases"),
        other => Err(CliError::Input(format!(
            "unknown kind {other:?}; expected server, web-service, domain or database"
        ))),
    }
}

/// One line a resource, for people.
fn summary(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    let mut line = format!(
        "{}  {:<11} {:<20} {:<15} {:<7} {}",
        s("id"),
        s("kind"),
        s("name"),
        s("provisioning_state"),
        s("provisioning_source"),
        s("provider"),
    );
    if let Some(ip) = r["ipv4"].as_str() {
        line.push_str(&format!("  ipv4 {ip}"));
    }
    if let Some(url) = r["production_url"].as_str() {
        line.push_str(&format!("  {url}"));
    }
    if let Some(engine) = r["engine"].as_str() {
        line.push_str(&format!("  {engine}"));
    }
    if let Some(host) = r["host"].as_str() {
        line.push_str(&format!("  host {host}"));
    }
    if let Some(records) = r["records"].as_array().filter(|r| !r.is_empty()) {
        line.push_str(&format!("  {} records", records.len()));
    }
    line
}

fn settle_report(r: &Value, json: bool, want: &str) -> CliResult {
    let state = r["provisioning_state"].as_str().unwrap_or_default();
    if json {
        print_json(r);
    } else if state == "failed" {
        eprintln!(
            "failed: {} (code {})",
            r["error"]["message"].as_str().unwrap_or("no message"),
            r["error"]["code"].as_str().unwrap_or("none")
        );
    } else {
        println!("{}", summary(r));
    }
    Ok(if state == want {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args)]
pub(crate) struct ProvisionArgs {
    /// What to create: server, web-service, domain or database.
    kind: String,
    /// Dock name or id.
    #[arg(long)]
    dock: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    size: Option<String>,
    #[arg(long)]
    image: Option<String>,
    /// Any other config field, as KEY=VALUE (VALUE is read as JSON when it parses, e.g. true).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A web service's files: every file under this folder is deployed, and only contents
    /// the server does not have yet are uploaded.
    #[arg(long, value_name = "FOLDER", conflicts_with = "context")]
    dir: Option<std::path::PathBuf>,
    /// A container web service's build context (a Docker dock): the folder with its
    /// Dockerfile, uploaded like --dir, file modes kept.
    #[arg(long, value_name = "FOLDER")]
    context: Option<std::path::PathBuf>,
    /// The Dockerfile's path in the build context (default: Dockerfile).
    #[arg(long)]
    dockerfile: Option<String>,
    /// The port the app listens on in its container (default: 8080).
    #[arg(long)]
    port: Option<u16>,
    /// An environment variable of the app, KEY=VALUE, or KEY alone to take its value from
    /// this shell's environment (which keeps it out of the process list). Sealed at rest.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// The container's memory limit, e.g. 256m.
    #[arg(long)]
    memory: Option<String>,
    /// The container's CPU limit, e.g. 0.5.
    #[arg(long)]
    cpus: Option<f64>,
    /// Return once the request is recorded instead of following it.
    #[arg(long)]
    no_wait: bool,
    /// Send this `Idempotency-Key` instead of a new one: run again with the same key (a
    /// script retrying after it was cut off), the command answers the resource the first
    /// run requested instead of making a second.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

pub(crate) async fn provision(a: ProvisionArgs) -> CliResult {
    let coll = collection(&a.kind)?;
    let key = match &a.idempotency_key {
        None => hex::encode(rand::random::<[u8; 16]>()),
        Some(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()) => k.clone(),
        Some(k) => {
            return Err(CliError::Input(format!(
                "--idempotency-key {k:?}: must be visible ASCII characters, without spaces"
            )));
        }
    };
    let mut body = Map::new();
    body.insert("dock".into(), json!(a.dock));
    body.insert("name".into(), json!(a.name));
    for (k, v) in [
        ("region", &a.region),
        ("size", &a.size),
        ("image", &a.image),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    for pair in &a.set {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Input(format!("--set {pair:?}: expected KEY=VALUE")))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
        body.insert(k.to_string(), value);
    }
    container_fields(&a, &mut body)?;
    let client = Client::new(&a.conn)?;
    let folder = match (&a.dir, &a.context) {
        (Some(dir), _) => Some((dir, "--dir")),
        (None, Some(context)) => Some((context, "--context")),
        (None, None) => None,
    };
    if let Some((dir, flag)) = folder {
        if coll != "web-services" {
            return Err(CliError::Input(format!(
                "{flag} deploys a web service's files; {} takes none",
                a.kind
            )));
        }
        let files = crate::site::upload_folder(&client, dir, flag).await?;
        body.insert("files".into(), files);
    }
    let body = Value::Object(body);
    let created = create_once(&client, &format!("/api/v1/{coll}"), &body, &key).await?;
    if a.no_wait {
        if a.conn.json {
            print_json(&created);
        } else {
            println!("{}", summary(&created));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = created["id"].as_str().unwrap_or_default().to_string();
    // Recorded: from here on, running the command again would make a second resource, so
    // the id is told before anything else can fail (following it may, the resource not).
    eprintln!("{} {id} requested; following it", a.kind);
    let done = follow(&client, &id, !a.conn.json).await.map_err(|e| {
        let followed = |m: String| {
            format!(
                "{m} (the {} {id} was requested; `stackdock status {id}` shows it)",
                a.kind
            )
        };
        match e {
            CliError::Input(m) => CliError::Input(followed(m)),
            CliError::Auth(m) => CliError::Auth(followed(m)),
            CliError::Unreachable(m) => CliError::Unreachable(followed(m)),
            CliError::Other(m) => CliError::Other(followed(m)),
        }
    })?;
    settle_report(&done, a.conn.json, "provisioned")
}

/// The fields of a container web service given as their own flags.
fn container_fields(a: &ProvisionArgs, body: &mut Map<String, Value>) -> Result<(), CliError> {
    if let Some(d) = &a.dockerfile {
        body.insert("dockerfile".into(), json!(d));
    }
    if let Some(p) = a.port {
        body.insert("port".into(), json!(p));
    }
    if let Some(m) = &a.memory {
        body.insert("memory".into(), json!(m));
    }
    if let Some(c) = a.cpus {
        body.insert("cpus".into(), json!(c));
    }
    if a.env.is_empty() {
        return Ok(());
    }
    let mut env = Map::new();
    for item in &a.env {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let v = std::env::var(item).map_err(|_| {
                    CliError::Input(format!(
                        "--env {item}: no value given and no {item} in this shell's environment"
                    ))
                })?;
                (item.clone(), v)
            }
        };
        if key.is_empty() {
            return Err(CliError::Input(format!(
                "--env {item:?}: expected KEY=VALUE"
            )));
        }
        env.insert(key, json!(value));
    }
    body.insert("env".into(), Value::Object(env));
    Ok(())
}

/// Sends a create with `key` as its `Idempotency-Key`, and sends it again with the same key
/// when the connection failed: if the first one was recorded after all, the server answers
/// its row instead of making a second resource.
async fn create_once(
    client: &Client,
    path: &str,
    body: &Value,
    key: &str,
) -> Result<Value, CliError> {
    let mut tries = 0;
    loop {
        let req = client
            .request(reqwest::Method::POST, path)
            .header("idempotency-key", key)
            .json(body);
        match client.send(req).await {
            Err(CliError::Unreachable(_)) if tries < 3 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500 * tries)).await;
            }
            other => return other,
        }
    }
}

/// Stops a provision at its next step boundary and follows it until it settles.
pub(crate) async fn cancel(conn: &Conn, id: &str, no_wait: bool) -> CliResult {
    let client = Client::new(conn)?;
    let path = format!("/api/v1/resources/{}/cancel", seg(id));
    let accepted = client.post(&path, &json!({})).await?;
    if no_wait {
        return report_or_follow(&client, conn, id, accepted, true, "failed").await;
    }
    let done = follow(&client, &seg(id), !conn.json).await?;
    let cancelled = done["provisioning_state"] == "failed" && done["error"]["code"] == "cancelled";
    if conn.json {
        print_json(&done);
    } else if cancelled {
        println!("cancelled; everything it had created was removed");
    } else {
        println!(
            "the provision finished before the cancel took effect: {}",
            summary(&done)
        );
    }
    Ok(if cancelled {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) async fn status(conn: &Conn, id: &str, watch: bool) -> CliResult {
    let client = Client::new(conn)?;
    if watch {
        let done = follow(&client, &seg(id), !conn.json).await?;
        let want = match done["provisioning_state"].as_str() {
            Some("failed") => "-",
            Some(s) => s,
            None => "-",
        }
        .to_string();
        return settle_report(&done, conn.json, &want);
    }
    let r = client
        .get(&format!("/api/v1/resources/{}", seg(id)))
        .await?;
    if conn.json {
        print_json(&r);
    } else {
        println!("{}", summary(&r));
        if let Some(m) = r["error"]["message"].as_str() {
            println!(
                "  error: {m} (code {})",
                r["error"]["code"].as_str().unwrap_or("none")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Only this kind: server, web-service, domain or database.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    dock: Option<String>,
    #[arg(long)]
    state: Option<String>,
    /// api or manual.
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

pub(crate) async fn list(a: ListArgs) -> CliResult {
    let client = Client::new(&a.conn)?;
    let mut query = Vec::new();
    if let Some(k) = &a.kind {
        query.push(("kind", collection(k)?.to_string()));
    }
    for (k, v) in [
        ("dock", &a.dock),
        ("state", &a.state),
        ("source", &a.source),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let rows = client.list("/api/v1/resources", &query, &a.page).await?;
    print_rows(&a.conn, &rows, summary);
    Ok(ExitCode::SUCCESS)
}

/// A list as read: one JSON document, or a line a row and how to read the next page.
pub(crate) fn print_rows(conn: &Conn, rows: &Listed, line: impl Fn(&Value) -> String) {
    if conn.json {
        print_json(&rows.json());
    } else {
        for r in &rows.items {
            println!("{}", line(r));
        }
        rows.tell_next();
    }
}

pub(crate) async fn deprovision(conn: &Conn, id: &str, no_wait: bool) -> CliResult {
    let client = Client::new(conn)?;
    let path = format!("/api/v1/resources/{}", seg(id));
    let accepted = client.delete(&path).await?;
    report_or_follow(&client, conn, id, accepted, no_wait, "deprovisioned").await
}

pub(crate) async fn retry(conn: &Conn, id: &str, no_wait: bool) -> CliResult {
    let client = Client::new(conn)?;
    let path = format!("/api/v1/resources/{}/retry", seg(id));
    let accepted = client.post(&path, &json!({})).await?;
    report_or_follow(&client, conn, id, accepted, no_wait, "provisioned").await
}

/// After a request was accepted: print it (`--no-wait`), or follow the resource until it
/// settles and exit 0 only if it reached `want`.
async fn report_or_follow(
    client: &Client,
    conn: &Conn,
    id: &str,
    accepted: Value,
    no_wait: bool,
    want: &str,
) -> CliResult {
    if no_wait {
        if conn.json {
            print_json(&accepted);
        } else {
            Progress::new(true).show(&accepted);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let done = follow(client, &seg(id), !conn.json).await?;
    settle_report(&done, conn.json, want)
}

#[derive(Subcommand)]
pub(crate) enum DocksCommand {
    /// Connect a provider account.
    Add {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: String,
        /// The provider API key (also read from STACKDOCK_DOCK_API_KEY, which keeps it out of
        /// the process list). A Docker dock takes none: its key is the registry password.
        #[arg(long, env = "STACKDOCK_DOCK_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// A Docker dock's engine: unix:///var/run/docker.sock (the default) or tcp://host:port.
        #[arg(long)]
        host: Option<String>,
        /// A Docker dock's registry, host[:port], which images are pushed to.
        #[arg(long)]
        registry: Option<String>,
        /// The registry user.
        #[arg(long, requires = "registry")]
        registry_user: Option<String>,
        /// Read the registry password from standard input (one line); it is sealed as the
        /// dock's key.
        #[arg(long, requires = "registry")]
        registry_password_stdin: bool,
        /// Overrides the provider's API base URL.
        #[arg(long)]
        api_url: Option<String>,
        /// The account's rate limit, e.g. 250/min,5000/h (or `none` for an account whose
        /// limits were raised); the default is the provider's documented limits.
        #[arg(long)]
        rate_limit: Option<String>,
        /// A setting of the provider's, as KEY=VALUE; repeat for more. A Turso dock names its
        /// organization: --setting organization=<slug>.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
        settings: Vec<(String, String)>,
        /// Save the dock without checking the key with the provider first.
        #[arg(long)]
        no_verify: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change a dock: replace its API key (read from stdin), its URL or its rate limit.
    Update {
        dock: String,
        /// Read a new API key from standard input (one line).
        #[arg(long)]
        api_key_stdin: bool,
        /// A new API base URL.
        #[arg(long, conflicts_with = "default_url")]
        api_url: Option<String>,
        /// Go back to the provider's public API URL.
        #[arg(long)]
        default_url: bool,
        /// A new rate limit (250/min,5000/h, or none); `documented` goes back to the
        /// provider's documented limits.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Save a new key or URL without checking it with the provider first.
        #[arg(long)]
        no_verify: bool,
        #[command(flatten)]
        conn: Conn,
    },
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Disconnect a dock (refused while it has live resources).
    Remove {
        dock: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// One line of standard input, trimmed: a key or a password, kept out of the process list.
pub(crate) fn read_stdin_line(flag: &str, what: &str) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Input(format!("{flag}: cannot read the {what}: {e}")))?;
    let line = line.trim();
    if line.is_empty() {
        return Err(CliError::Input(format!(
            "{flag}: standard input held no {what}"
        )));
    }
    Ok(line.to_string())
}

/// `KEY=VALUE`, as `--setting` takes it.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

impl DocksCommand {
    pub(crate) fn conn(&self) -> &Conn {
        match self {
            Self::Add { conn, .. }
            | Self::Update { conn, .. }
            | Self::List { conn, .. }
            | Self::Remove { conn, .. } => conn,
        }
    }
}

fn dock_line(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("-").to_string();
    format!(
        "{}  {:<24} {:<13} {:<16} {}",
        s("id"),
        s("name"),
        s("provider"),
        s("rate_limit"),
        s("api_url")
    )
}

pub(crate) async fn docks(cmd: DocksCommand) -> CliResult {
    let conn = cmd.conn().clone();
    let client = Client::new(&conn)?;
    let out = match cmd {
        DocksCommand::Add {
            provider,
            name,
            api_key,
            host,
            registry,
            registry_user,
            registry_password_stdin,
            api_url,
            rate_limit,
            mut settings,
            no_verify,
            ..
        } => {
            let api_key = if registry_password_stdin {
                Some(read_stdin_line("--registry-password-stdin", "password")?)
            } else {
                api_key
            };
            let mut body = json!({"provider": provider, "name": name});
            if let Some(k) = api_key {
                body["api_key"] = json!(k);
            }
            for (key, value) in [
                ("host", host),
                ("registry", registry),
                ("registry_user", registry_user),
            ] {
                if let Some(v) = value {
                    settings.push((key.to_string(), v));
                }
            }
            if let Some(u) = api_url {
                body["api_url"] = json!(u);
            }
            if let Some(r) = rate_limit {
                body["rate_limit"] = json!(r);
            }
            if !settings.is_empty() {
                let settings: serde_json::Map<String, Value> =
                    settings.into_iter().map(|(k, v)| (k, json!(v))).collect();
                body["settings"] = Value::Object(settings);
            }
            if no_verify {
                body["verify"] = json!(false);
            }
            client.post("/api/v1/docks", &body).await?
        }
        DocksCommand::Update {
            dock,
            api_key_stdin,
            api_url,
            default_url,
            rate_limit,
            no_verify,
            ..
        } => {
            let mut body = serde_json::Map::new();
            if api_key_stdin {
                let key = read_stdin_line("--api-key-stdin", "key")?;
                body.insert("api_key".into(), json!(key));
            }
            if let Some(u) = api_url {
                body.insert("api_url".into(), json!(u));
            } else if default_url {
                body.insert("api_url".into(), Value::Null);
            }
            match rate_limit.as_deref() {
                Some("documented") => {
                    body.insert("rate_limit".into(), Value::Null);
                }
                Some(r) => {
                    body.insert("rate_limit".into(), json!(r));
                }
                None => {}
            }
            if body.is_empty() {
                return Err(CliError::Input(
                    "nothing to change: give --api-key-stdin, --api-url, --default-url or --rate-limit"
                        .into(),
                ));
            }
            if no_verify {
                body.insert("verify".into(), json!(false));
            }
            client
                .send(
                    client
                        .request(
                            reqwest::Method::PATCH,
                            &format!("/api/v1/docks/{}", seg(&dock)),
                        )
                        .json(&Value::Object(body)),
                )
                .await?
        }
        DocksCommand::List { page, .. } => {
            let docks = client.list("/api/v1/docks", &[], &page).await?;
            print_rows(&conn, &docks, dock_line);
            return Ok(ExitCode::SUCCESS);
        }
        DocksCommand::Remove { dock, .. } => {
            client
                .delete(&format!("/api/v1/docks/{}", seg(&dock)))
                .await?;
            json!({"removed": dock})
        }
    };
    if conn.json {
        print_json(&out);
    } else if out.get("removed").is_some() {
        println!(
            "removed dock {}",
            out["removed"].as_str().unwrap_or_default()
        );
    } else {
        println!("{}", dock_line(&out));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn sync(conn: &Conn, dock: &str, no_wait: bool) -> CliResult {
    let client = Client::new(conn)?;
    let op = client
        .post(&format!("/api/v1/docks/{}/sync", seg(dock)), &json!({}))
        .await?;
    let id = op["id"].as_str().unwrap_or_default().to_string();
    if no_wait {
        if conn.json {
            print_json(&op);
        } else {
            println!("sync queued: operation {id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        let op = client.get(&format!("/api/v1/operations/{id}")).await?;
        if matches!(op["state"].as_str(), Some("succeeded" | "failed")) {
            break op;
        }
        if Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "sync {id} did not finish within 10 minutes"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let tally = done["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "discover"))
        .map(|s| s["output"].clone())
        .unwrap_or(Value::Null);
    let ok = done["state"] == "succeeded";
    if conn.json {
        print_json(&json!({"operation": done, "found": tally["found"], "added": tally["added"]}));
    } else if ok {
        println!(
            "sync of {dock}: found {}, added {}",
            tally["found"], tally["added"]
        );
    } else {
        eprintln!(
            "sync of {dock} failed: {}",
            done["last_error"].as_str().unwrap_or("no message")
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `stackdock logs <id>`: the resource's deploy log (a build's and a push's output), kept
/// after the operation ended and after the resource is gone.
pub(crate) async fn logs(conn: &Conn, id: &str) -> CliResult {
    let client = Client::new(conn)?;
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let page = client
            .get(&format!("/api/v1/resources/{}/logs?after={after}", seg(id)))
            .await?;
        let lines = page["items"].as_array().cloned().unwrap_or_default();
        let Some(last) = lines.last().and_then(|l| l["seq"].as_i64()) else {
            break;
        };
        after = last;
        if conn.json {
            all.extend(lines);
        } else {
            for l in &lines {
                println!("{}", l["line"].as_str().unwrap_or_default());
            }
        }
    }
    if conn.json {
        print_json(&Value::Array(all));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn calls(conn: &Conn, id: &str, page: &PageArgs) -> CliResult {
    let client = Client::new(conn)?;
    let resource = client
        .get(&format!("/api/v1/resources/{}", seg(id)))
        .await?;
    let collection = collection(resource["kind"].as_str().unwrap_or_default())?;
    let path = format!("/api/v1/{collection}/{}/api-calls", seg(id));
    let rows = client.list(&path, &[], page).await?;
    print_rows(conn, &rows, |c| {
        let status = c["status"]
            .as_u64()
            .map_or("-".to_string(), |s| s.to_string());
        format!(
            "{}  {:<6} {:<48} {:>3} {:>6}ms  try {}  {}{}",
            c["at"].as_str().unwrap_or("-"),
            c["method"].as_str().unwrap_or("-"),
            c["path"].as_str().unwrap_or("-"),
            status,
            c["duration_ms"],
            c["attempt"],
            c["request_id"].as_str().unwrap_or("-"),
            c["error"]
                .as_str()
                .map(|e| format!("  {e}"))
                .unwrap_or_default(),
        )
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    /// e.g. `server.provision`, `token.create`, `DELETE /api/v1/docks/{dock}`.
    #[arg(long)]
    action: Option<String>,
    /// requested, success, failure or denied.
    #[arg(long)]
    outcome: Option<String>,
    /// A user id.
    #[arg(long)]
    actor: Option<String>,
    /// As written on the rows, e.g. `servers/<id>`.
    #[arg(long)]
    resource: Option<String>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

pub(crate) async fn audit(args: AuditArgs) -> CliResult {
    let client = Client::new(&args.conn)?;
    let filters = [
        ("action", args.action),
        ("outcome", args.outcome),
        ("actor", args.actor),
        ("resource", args.resource),
    ];
    let query: Vec<(&str, String)> = filters
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let rows = client.list("/api/v1/audit", &query, &args.page).await?;
    print_rows(&args.conn, &rows, |a| {
        let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
        format!(
            "{:>6}  {}  {:<22} {:<9} {}",
            a["id"],
            s("at"),
            s("action"),
            s("outcome"),
            s("resource")
        )
    });
    Ok(ExitCode::SUCCESS)
}
