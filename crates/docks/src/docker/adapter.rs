//! Provisioning web services on a Docker Engine on the v2 contract: the service's files are
//! built into an image, pushed to the dock's registry (when it has one), and run as a
//! container that is ready once its published port answers HTTP.
//!
//! Everything StackDock makes carries its labels ([`labels`]): `stackdock.marker` (the
//! resource's marker, by which it is found again after a lost answer or a crash),
//! `stackdock.managed` and `stackdock.dock`. The image is named after the marker
//! (`<registry>/<marker>:latest`, or `<marker>:latest` without a registry) and the container
//! too (`<marker>`), so a resumed run rebuilds the same tag and finds the container it made
//! instead of making a second one.
//!
//! Steps, recorded in order:
//! 1. [`DockerStep::BuildSent`] — before `POST /build`: from here on the tag may exist (a build
//!    whose answer was lost may still finish). Undoing it removes the tag, if there is one.
//! 2. [`DockerStep::ImageBuilt`] — the build with the files as a tar (less what
//!    `.dockerignore` leaves out). Every line of the build's output goes to the deploy log as
//!    it comes; an error line fails the provision with that line. Undoing it removes the tag.
//!    A run resumed before it builds again, onto the same tag.
//! 3. [`DockerStep::ImagePushed`] — `POST /images/{name}/push` with the dock's registry
//!    credentials; records the digest. Nothing to undo at the registry: the tag is this
//!    resource's own and the next push of it replaces it.
//! 4. [`DockerStep::ContainerCreateSent`] — before `POST /containers/create`. Undoing it
//!    removes any container carrying the marker.
//! 5. [`DockerStep::ContainerCreated`] — the container, created or adopted; tracks its id.
//!    Undoing it removes the container.
//! 6. [`DockerStep::ContainerStarted`] — undoing it stops the container.
//!
//! Readiness: the container is running and its published port answers HTTP (or, for an
//! image with a healthcheck, the engine reports it healthy), within `ready_timeout` seconds of
//! its creation. A container that exits, restarts or runs past the deadline has failed, with
//! the reason its exit code gives and its last log lines. Env values go to the engine in the
//! create call only: never into a build argument, a label, a log line or `full_api_data`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{DockerApi, ProgressLine, RegistryAuth};
use super::conn::{DEFAULT_HOST, Endpoint};
use super::context::{self, ContextFile, Ignore};

/// How soon a container not ready yet is checked again.
const CHECK_IN: Duration = Duration::from_secs(1);
/// How long one readiness probe waits for an HTTP answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many of a failed container's last log lines its failure shows.
const LOG_TAIL: usize = 20;
/// How long a container is given to stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The network StackDock's containers join unless the dock names another.
pub const DEFAULT_NETWORK: &str = "stackdock";

pub const LABEL_MARKER: &str = "stackdock.marker";
pub const LABEL_MANAGED: &str = "stackdock.managed";
pub const LABEL_DOCK: &str = "stackdock.dock";
const LABEL_NAME: &str = "stackdock.name";
const LABEL_PORT: &str = "stackdock.port";
const LABEL_READY_TIMEOUT: &str = "stackdock.ready-timeout";
/// The registry digest of the image a container runs, when it was pushed.
pub const LABEL_IMAGE_DIGEST: &str = "stackdock.image-digest";

/// The settings of a Docker dock. Its API key, when it has a registry, is the registry
/// password.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockSettings {
    /// The engine: `unix:///var/run/docker.sock` (the default) or `tcp://host:port`.
    #[serde(default)]
    pub host: Option<Text>,
    /// The registry images are pushed to, `host[:port]`; without one, images stay on the
    /// engine that built them.
    #[serde(default)]
    pub registry: Option<Text>,
    /// The registry user; the dock's key is the password.
    #[serde(default)]
    pub registry_user: Option<Text>,
    /// The network StackDock's containers join, made when missing (`stackdock`).
    #[serde(default)]
    pub network: Option<Slug>,
}

/// The config of a web service: its files (the build context, see
/// `stackdock_docks::files`), how to build them and how to run the result.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebServiceConfig {
    /// StackDock's name for the service. The container is named after its marker.
    pub name: Text,
    /// The build context: `[{path, sha256, size, executable}]`, uploaded to StackDock
    /// beforehand (`stackdock provision web-service --context` does both).
    pub files: Files,
    /// The Dockerfile's path among the files.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: SitePath,
    /// Build arguments (`ARG` in the Dockerfile). Not for secrets: the image keeps them in
    /// its history; secrets go in `env`.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// The port the app listens on inside the container.
    #[serde(default = "default_port")]
    pub port: Port,
    /// The app's environment. Sealed at rest; handed to the engine only in the call that
    /// creates the container.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub env: Env,
    /// The memory limit, `256m`, `1g` (bytes, or `k`, `m`, `g`); none by default.
    #[serde(default)]
    pub memory: Option<Memory>,
    /// The CPU limit in CPUs, `0.5`; none by default.
    #[serde(default)]
    pub cpus: Option<Cpus>,
    /// Seconds the container has, from its creation, to answer HTTP.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: ReadyTimeout,
}

fn default_dockerfile() -> SitePath {
    SitePath::try_from("Dockerfile".to_string()).unwrap_or_else(|_| unreachable!())
}

fn default_port() -> Port {
    Port(8080)
}

fn default_ready_timeout() -> ReadyTimeout {
    ReadyTimeout(60)
}

/// Declares a newtype read from `$from` through a checking `TryFrom`, with a hand-written
/// schema.
macro_rules! checked {
    ($(#[$attr:meta])* $name:ident($inner:ty) from $from:ty = $from_text:literal, $schema:tt, |$v:ident| $check:expr) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(try_from = $from_text)]
        pub struct $name(pub $inner);

        impl TryFrom<$from> for $name {
            type Error = String;
            fn try_from($v: $from) -> Result<Self, String> {
                $check.map(Self)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

checked!(Port(u16) from u32 = "u32",
    {"type": "integer", "minimum": 1, "maximum": 65535},
    |v| u16::try_from(v).ok().filter(|p| *p > 0)
        .ok_or_else(|| format!("{v} is not a port (1 to 65535)")));

checked!(ReadyTimeout(u32) from u32 = "u32",
{"type": "integer", "minimum": 1, "maximum": 3600},
|v| if (1..=3600).contains(&v) { Ok(v) } else {
    Err(format!("{v} is not 1 to 3600 seconds"))
});

checked!(Cpus(f64) from f64 = "f64",
{"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
|v| if v > 0.0 && v <= 1024.0 { Ok(v) } else {
    Err(format!("{v} is not a CPU count above 0 and at most 1024"))
});

checked!(Memory(u64) from String = "String",
    {"type": "string", "pattern": "^[0-9]+[bkmgBKMG]?$",
     "description": "Bytes, or a number with k, m or g: 256m"},
    |v| parse_memory(&v));

checked!(#[derive(Default)] Env(BTreeMap<String, String>) from BTreeMap<String, String> = "BTreeMap<String, String>",
    {"type": "object", "additionalProperties": {"type": "string"},
     "description": "Variable names: letters, digits and _, not starting with a digit"},
    |v| check_env(v));

/// The engine refuses less than 6 MiB.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 'b'),
    };
    let scale: u64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err(format!("{text:?}: the unit must be b, k, m or g")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 256m"))?;
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < MIN_MEMORY {
        return Err(format!("{text:?} is below the engine's minimum of 6m"));
    }
    Ok(bytes)
}

fn check_env(env: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    for name in env.keys() {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
            ));
        }
    }
    Ok(env)
}

/// The steps of a web service's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DockerStep {
    BuildSent {
        marker: Marker,
        image: String,
    },
    ImageBuilt {
        image: String,
        image_id: String,
    },
    ImagePushed {
        image: String,
        digest: String,
    },
    ContainerCreateSent {
        marker: Marker,
        name: String,
    },
    ContainerCreated {
        container_id: String,
        name: String,
        adopted: bool,
    },
    ContainerStarted {
        container_id: String,
    },
}

impl AdapterStep for DockerStep {
    fn name(&self) -> &'static str {
        match self {
            Self::BuildSent { .. } => "build_sent",
            Self::ImageBuilt { .. } => "image_built",
            Self::ImagePushed { .. } => "image_pushed",
            Self::ContainerCreateSent { .. } => "container_create_sent",
            Self::ContainerCreated { .. } => "container_created",
            Self::ContainerStarted { .. } => "container_started",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::ContainerCreated { container_id, .. } => Some(container_id),
            _ => None,
        }
    }
}

/// `stackdock.marker=<marker>`, as label filters take it.
pub fn marker_filter(marker: &Marker) -> String {
    format!("{LABEL_MARKER}={}", marker.as_str())
}

/// The label filter of the containers StackDock made for `marker`: the marker alone would
/// also match a container someone started by hand from StackDock's image, which inherits the
/// image's labels.
fn ours_filter(marker: &Marker) -> Value {
    json!({"label": [marker_filter(marker), format!("{LABEL_MANAGED}=true")]})
}

/// The marker of a container StackDock made, from its labels; `None` for any other.
fn marker_of(labels: &Value) -> Option<Marker> {
    if labels[LABEL_MANAGED].as_str() != Some("true") {
        return None;
    }
    labels[LABEL_MARKER]
        .as_str()
        .and_then(|m| Marker::try_from(m.to_string()).ok())
}

/// The labels of everything made for `marker` on `dock`.
pub fn labels(dock: &DockAccess, marker: &Marker) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(LABEL_MARKER.into(), json!(marker.as_str()));
    m.insert(LABEL_MANAGED.into(), json!("true"));
    m.insert(LABEL_DOCK.into(), json!(dock.id.to_string()));
    m
}

/// The dock's settings, read once per call.
struct Dock {
    endpoint: Endpoint,
    registry: Option<String>,
    registry_user: String,
    network: String,
}

impl Dock {
    fn read(dock: &DockAccess) -> Result<Self, DockError> {
        let settings: DockSettings = match &dock.settings {
            Value::Object(m) => config::parse(m).map_err(|e| {
                DockError::InvalidConfig(ConfigError::new(
                    format!("settings.{}", e.field),
                    e.message,
                ))
            })?,
            _ => DockSettings::default(),
        };
        let host = settings
            .host
            .as_ref()
            .map(|h| h.as_str().to_string())
            .unwrap_or_else(|| DEFAULT_HOST.into());
        let endpoint = Endpoint::parse(&host)
            .map_err(|m| DockError::InvalidConfig(ConfigError::new("settings.host", m)))?;
        Ok(Self {
            endpoint,
            registry: settings.registry.map(|r| r.as_str().to_string()),
            registry_user: settings
                .registry_user
                .map(|u| u.as_str().to_string())
                .unwrap_or_default(),
            network: settings
                .network
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| DEFAULT_NETWORK.into()),
        })
    }

    /// The image's repository: `<registry>/<marker>` or `<marker>`.
    fn repository(&self, marker: &Marker) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", marker.as_str()),
            None => marker.as_str().to_string(),
        }
    }

    /// The registry's credentials, if the dock has a registry; one without its password is
    /// refused naming the key.
    fn auth(&self, dock: &DockAccess) -> Result<Option<RegistryAuth>, DockError> {
        let Some(server) = &self.registry else {
            return Ok(None);
        };
        if dock.api_key.expose().is_empty() {
            return Err(DockError::InvalidConfig(ConfigError::new(
                "api_key",
                format!("the registry {server} needs its password (--registry-password-stdin)"),
            )));
        }
        Ok(Some(RegistryAuth {
            server: server.clone(),
            username: self.registry_user.clone(),
            password: dock.api_key.clone(),
        }))
    }
}

const TAG: &str = "latest";

pub struct DockerAdapter {
    /// Probes the apps' published ports: never through a proxy.
    probe: reqwest::Client,
    web_schema: ConfigSchema,
    settings_schema: ConfigSchema,
}

impl Default for DockerAdapter {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerAdapter {
    pub fn new() -> Self {
        let probe = reqwest::Client::builder()
            .no_proxy()
            .timeout(PROBE_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            probe,
            web_schema: ConfigSchema::of::<WebServiceConfig>(),
            settings_schema: ConfigSchema::of::<DockSettings>(),
        }
    }

    async fn api(&self, ctx: &Ctx, dock: &DockAccess) -> Result<(DockerApi, Dock), DockError> {
        let settings = Dock::read(dock)?;
        let api = DockerApi::connect(settings.endpoint.clone(), ctx).await?;
        Ok((api, settings))
    }

    /// A container as StackDock shows it, with its readiness: running and answering HTTP
    /// (or healthy), failed when it stopped, restarted or ran past its deadline.
    async fn look(&self, api: &DockerApi, inspected: Value) -> Observed {
        let state = &inspected["State"];
        let status = state["Status"].as_str().unwrap_or("unknown").to_string();
        let labels = &inspected["Config"]["Labels"];
        let port = labels[LABEL_PORT].as_str().unwrap_or("8080").to_string();
        let host_port = inspected["NetworkSettings"]["Ports"][format!("{port}/tcp")][0]["HostPort"]
            .as_str()
            .map(str::to_string);
        let url = host_port
            .as_ref()
            .map(|p| format!("http://{}:{p}/", api.endpoint().published_host()));
        let id = inspected["Id"].as_str().unwrap_or_default().to_string();

        let restarts = inspected["RestartCount"].as_u64().unwrap_or(0);
        let stopped = matches!(status.as_str(), "exited" | "dead")
            || state["Restarting"].as_bool() == Some(true)
            || restarts > 0;
        let health = health(state);
        let mut ready = false;
        let mut failure = None;
        if stopped {
            failure = Some(stopped_failure(state, labels, restarts));
        } else if status == "running" {
            ready = match health {
                Some("healthy") => true,
                Some("unhealthy") => {
                    failure = Some((
                        "unhealthy".into(),
                        "the image's healthcheck reports the container unhealthy".into(),
                    ));
                    false
                }
                Some(_) => false,
                None => match &url {
                    Some(url) => self.probe.get(url).send().await.is_ok(),
                    None => false,
                },
            };
        }
        if !ready && failure.is_none() && past_deadline(&inspected) {
            let within = labels[LABEL_READY_TIMEOUT].as_str().unwrap_or("60");
            let message = match health {
                Some(_) => format!("the container was not healthy within {within}s"),
                None => {
                    format!("the container did not answer HTTP on port {port} within {within}s")
                }
            };
            failure = Some(("not_ready".into(), message));
        }
        let failure = match failure {
            Some((code, message)) => {
                let tail = api.container_logs(&id, LOG_TAIL).await.unwrap_or_default();
                let message = if tail.is_empty() {
                    format!("{message}; it wrote no log lines")
                } else {
                    format!("{message}; its last log lines:\n{}", tail.join("\n"))
                };
                Some(ProviderFailure { code, message })
            }
            None => None,
        };
        observed(inspected, status, ready, failure, url)
    }
}

/// The status of the image's healthcheck (`starting`, `healthy`, `unhealthy`); `None` when
/// it has none: `Health` left out, or its status `none`, the engine's word for that.
fn health(state: &Value) -> Option<&str> {
    state["Health"]["Status"]
        .as_str()
        .filter(|status| *status != "none")
}

/// Whether the container has been waited on longer than its `ready_timeout` label allows.
fn past_deadline(inspected: &Value) -> bool {
    let within = inspected["Config"]["Labels"][LABEL_READY_TIMEOUT]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(60);
    // `Created` may be null; the start time is the next best clock (the engine writes the
    // zero time, year 1, for a container not started, which is no clock at all).
    let at = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| t.timestamp() > 0)
    };
    let since = at(&inspected["Created"]).or_else(|| at(&inspected["State"]["StartedAt"]));
    match since {
        Some(since) => chrono::Utc::now() > since + chrono::Duration::seconds(within),
        // Nothing says when it began: waiting on is the engine's job, which gives up on an
        // operation that waits longer than its own limit.
        None => false,
    }
}

/// Why a container stopped, in plain words from its exit code.
fn stopped_failure(state: &Value, labels: &Value, restarts: u64) -> (String, String) {
    let code = state["ExitCode"].as_i64().unwrap_or(-1);
    let oom = state["OOMKilled"].as_bool() == Some(true);
    let reason = if oom {
        "killed for going over its memory limit (out of memory)".to_string()
    } else {
        match code {
            0 => "exited (code 0), but a web service must keep running".into(),
            125 => "could not be run by the engine (code 125)".into(),
            126 => "its command cannot be run (code 126: not executable)".into(),
            127 => "its command was not found (code 127)".into(),
            137 => "was killed (code 137: SIGKILL), likely out of memory".into(),
            139 => "crashed (code 139: segmentation fault)".into(),
            143 => "was terminated (code 143: SIGTERM)".into(),
            n => format!("exited with code {n}"),
        }
    };
    let again = if restarts > 0 {
        format!(" and was restarted {restarts} time(s)")
    } else {
        String::new()
    };
    let name = labels[LABEL_NAME].as_str().unwrap_or("the container");
    let code_word = if oom || code == 137 {
        "out_of_memory"
    } else {
        "container_exited"
    };
    (code_word.into(), format!("{name} {reason}{again}"))
}

/// A container as the contract shows it.
fn observed(
    inspected: Value,
    status: String,
    ready: bool,
    failure: Option<ProviderFailure>,
    url: Option<String>,
) -> Observed {
    let labels = &inspected["Config"]["Labels"];
    let marker = marker_of(labels);
    let name = labels[LABEL_NAME]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            inspected["Name"]
                .as_str()
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .unwrap_or_default();
    Observed {
        provider_resource_id: inspected["Id"].as_str().unwrap_or_default().to_string(),
        name,
        status: Some(status),
        ready,
        failure,
        marker,
        details: ResourceDetails::WebService(WebServiceDetails {
            production_url: url,
            source: Some("docker".into()),
        }),
        full_api_data: inspected,
    }
}

/// A container of `docker ps` (`GET /containers/json`), for discovery.
fn listed(c: Value) -> Observed {
    let status = c["State"].as_str().unwrap_or("unknown").to_string();
    let labels = &c["Labels"];
    let marker = marker_of(labels);
    let name = labels[LABEL_NAME]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            c["Names"][0]
                .as_str()
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .unwrap_or_default();
    let url = c["Ports"].as_array().into_iter().flatten().find_map(|p| {
        let ip = p["IP"].as_str()?;
        let port = p["PublicPort"].as_u64()?;
        Some(format!("http://{ip}:{port}/"))
    });
    Observed {
        provider_resource_id: c["Id"].as_str().unwrap_or_default().to_string(),
        name,
        ready: status == "running",
        status: Some(status),
        failure: None,
        marker,
        details: ResourceDetails::WebService(WebServiceDetails {
            production_url: url,
            source: Some("docker".into()),
        }),
        full_api_data: c,
    }
}

#[async_trait]
impl DockAdapter for DockerAdapter {
    fn provider(&self) -> Provider {
        Provider::Docker
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[ResourceKind::WebService]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        (kind == ResourceKind::WebService).then(|| self.web_schema.clone())
    }

    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        Some(self.settings_schema.clone())
    }

    /// The key is the registry password: a dock without a registry has none.
    fn key_required(&self) -> bool {
        false
    }

    /// Reaches the engine, and with a registry, has the engine check the credentials with it.
    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        let settings = Dock::read(dock)?;
        let auth = settings.auth(dock)?;
        let api = DockerApi::connect(settings.endpoint.clone(), ctx).await?;
        match auth {
            Some(auth) => api.check_registry(&auth).await,
            None => Ok(()),
        }
    }

    async fn provision_web_service(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let config: WebServiceConfig = config::parse(config)?;
        let marker = ctx.marker()?.clone();
        let (api, settings) = self.api(ctx, dock).await?;
        let mut secrets: Vec<&str> = config.env.0.values().map(String::as_str).collect();
        if settings.registry.is_some() {
            secrets.push(dock.api_key.expose());
        }
        let repository = settings.repository(&marker);
        let image = format!("{repository}:{TAG}");
        let labels = labels(dock, &marker);

        if ctx.step::<DockerStep>("image_built")?.is_none() {
            let tar = build_context(ctx, &config).await?;
            ctx.record(&DockerStep::BuildSent {
                marker: marker.clone(),
                image: image.clone(),
            })
            .await?;
            ctx.log(&format!("building {image}"), &secrets).await;
            // The image carries only the marker: the engine adds a build label as one more
            // step of its own, and each further label would leave one more labelled
            // intermediate image behind.
            let mut image_labels = Map::new();
            image_labels.insert(LABEL_MARKER.into(), json!(marker.as_str()));
            let build_args: Map<String, Value> = config
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let mut progress = api
                .build(
                    tar,
                    &image,
                    config.dockerfile.as_str(),
                    &build_args,
                    &image_labels,
                )
                .await?;
            let mut image_id = None;
            while let Some(line) = progress.next().await? {
                match line {
                    ProgressLine::Text(text) => ctx.log(&text, &secrets).await,
                    ProgressLine::Aux(aux) => {
                        image_id = aux["ID"].as_str().map(str::to_string).or(image_id)
                    }
                    ProgressLine::Error(message) => {
                        ctx.log(&format!("error: {message}"), &secrets).await;
                        return Err(failed("build_failed", message, &secrets));
                    }
                }
            }
            // The engine names the image it built last of all: a stream that ended before
            // that was cut short, whatever its framing said, and nothing was built to push
            // or run. Trying again rebuilds onto the same tag.
            let image_id = image_id.ok_or_else(|| DockError::Protocol {
                provider: Provider::Docker,
                detail: "the build ended without the image's ID".into(),
            })?;
            ctx.record(&DockerStep::ImageBuilt {
                image: image.clone(),
                image_id,
            })
            .await?;
        }

        if let Some(auth) = settings.auth(dock)?
            && ctx.step::<DockerStep>("image_pushed")?.is_none()
        {
            ctx.log(&format!("pushing {image}"), &secrets).await;
            let mut progress = api.push(&repository, TAG, &auth).await?;
            let mut digest = None;
            let mut last = String::new();
            while let Some(line) = progress.next().await? {
                match line {
                    // Layer progress repeats itself; each state is shown once.
                    ProgressLine::Text(text) if text != last => {
                        ctx.log(&text, &secrets).await;
                        last = text;
                    }
                    ProgressLine::Text(_) => {}
                    ProgressLine::Aux(aux) => {
                        digest = aux["Digest"].as_str().map(str::to_string).or(digest)
                    }
                    ProgressLine::Error(message) => {
                        ctx.log(&format!("error: {message}"), &secrets).await;
                        return Err(failed("push_failed", message, &secrets));
                    }
                }
            }
            let digest = digest.ok_or_else(|| DockError::Protocol {
                provider: Provider::Docker,
                detail: "the push ended without the image's digest".into(),
            })?;
            ctx.record(&DockerStep::ImagePushed {
                image: image.clone(),
                digest,
            })
            .await?;
        }

        // The network is the dock's, shared by its containers and outliving each of them:
        // it carries the dock's labels, never this resource's marker.
        let mut network_labels = labels.clone();
        network_labels.remove(LABEL_MARKER);
        api.ensure_network(&settings.network, &network_labels)
            .await?;

        let container_id = match ctx.step::<DockerStep>("container_created")? {
            Some(DockerStep::ContainerCreated { container_id, .. }) => container_id,
            _ => {
                let name = marker.as_str().to_string();
                let sent_before = ctx.step::<DockerStep>("container_create_sent")?.is_some();
                ctx.record(&DockerStep::ContainerCreateSent {
                    marker: marker.clone(),
                    name: name.clone(),
                })
                .await?;
                // The pushed image's digest, if it was pushed: a label shows it with the
                // container wherever the container is seen (the row's provider data).
                let mut labels = labels.clone();
                if let Some(DockerStep::ImagePushed { digest, .. }) =
                    ctx.step::<DockerStep>("image_pushed")?
                {
                    labels.insert(LABEL_IMAGE_DIGEST.into(), json!(digest));
                }
                let publish_ip = api.endpoint().publish_ip();
                let spec = container_spec(&config, &image, (&settings.network, publish_ip), labels);
                let ours = || async {
                    let found = api.list_containers(&ours_filter(&marker)).await?;
                    Ok::<_, DockError>(
                        found
                            .first()
                            .and_then(|c| c["Id"].as_str())
                            .map(str::to_string),
                    )
                };
                let made = if sent_before {
                    ours().await?.map(|id| (id, true))
                } else {
                    None
                };
                let (container_id, adopted) = match made {
                    Some(found) => found,
                    None => match api.create_container(&name, &spec).await {
                        Ok(id) => (id, false),
                        // The name is the marker: a container holding it is the one an
                        // earlier try made, whose answer was lost.
                        Err(e)
                            if e.outcome_unknown()
                                || matches!(&e, DockError::Provider(p) if p.status == 409) =>
                        {
                            match ours().await? {
                                Some(id) => (id, true),
                                None => return Err(e),
                            }
                        }
                        Err(e) => return Err(e),
                    },
                };
                ctx.record(&DockerStep::ContainerCreated {
                    container_id: container_id.clone(),
                    name,
                    adopted,
                })
                .await?;
                container_id
            }
        };

        if ctx.step::<DockerStep>("container_started")?.is_none() {
            api.start_container(&container_id).await?;
            ctx.record(&DockerStep::ContainerStarted {
                container_id: container_id.clone(),
            })
            .await?;
        }

        let inspected = api.inspect_container(&container_id).await?.ok_or_else(|| {
            DockError::ResourceFailed {
                provider: Provider::Docker,
                code: "gone".into(),
                message: format!("container {container_id} was removed while it was provisioned"),
            }
        })?;
        let seen = self.look(&api, inspected).await;
        if let Some(f) = seen.failure {
            return Err(failed(&f.code, f.message, &secrets));
        }
        if seen.ready {
            return Ok(Progress::Done(Some(Box::new(seen))));
        }
        Ok(Progress::Pending {
            status: seen.status,
            check_in: CHECK_IN,
        })
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        if target.kind != ResourceKind::WebService {
            return Err(self.unsupported(target.kind));
        }
        let (api, _) = self.api(ctx, dock).await?;
        api.stop_container(&target.provider_resource_id, STOP_GRACE)
            .await?;
        api.remove_container(&target.provider_resource_id).await?;
        if let Some(marker) = &target.marker {
            remove_images(&api, marker).await?;
        }
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let (api, _) = self.api(ctx, dock).await?;
        match decode_step::<DockerStep>(step)? {
            DockerStep::BuildSent { image, .. } | DockerStep::ImageBuilt { image, .. } => {
                api.remove_image(&image).await
            }
            // The registry keeps the tag; the resource's next push replaces it.
            DockerStep::ImagePushed { .. } => Ok(()),
            DockerStep::ContainerCreateSent { marker, .. } => {
                let found = api.list_containers(&ours_filter(&marker)).await?;
                for c in found {
                    if let Some(id) = c["Id"].as_str() {
                        api.remove_container(id).await?;
                    }
                }
                Ok(())
            }
            DockerStep::ContainerCreated { container_id, .. } => {
                api.remove_container(&container_id).await
            }
            DockerStep::ContainerStarted { container_id } => {
                api.stop_container(&container_id, STOP_GRACE).await
            }
        }
    }

    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError> {
        if kind != ResourceKind::WebService {
            return Err(self.unsupported(kind));
        }
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let (api, _) = self.api(ctx, dock).await?;
        // The engine is local and unmetered: one inspect per container is cheap, and only
        // it shows the published port and the exit reason.
        let mut seen = Vec::with_capacity(targets.len());
        for t in targets {
            match api.inspect_container(&t.provider_resource_id).await? {
                Some(inspected) => seen.push(Some(self.look(&api, inspected).await)),
                None => seen.push(None),
            }
        }
        Ok(seen)
    }

    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError> {
        if kind != ResourceKind::WebService {
            return Err(self.unsupported(kind));
        }
        let (api, _) = self.api(ctx, dock).await?;
        let found = api.list_containers(&ours_filter(marker)).await?;
        let Some(id) = found.first().and_then(|c| c["Id"].as_str()) else {
            return Ok(None);
        };
        match api.inspect_container(id).await? {
            Some(inspected) => Ok(Some(self.look(&api, inspected).await)),
            None => Ok(None),
        }
    }

    /// Every container on the engine, stopped ones too, except those another dock of
    /// StackDock made there (another dock on the same engine tracks them).
    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let (api, _) = self.api(ctx, dock).await?;
        let all = api.list_containers(&json!({})).await?;
        let this_dock = dock.id.to_string();
        Ok(all
            .into_iter()
            .filter(|c| {
                marker_of(&c["Labels"]).is_none()
                    || c["Labels"][LABEL_DOCK].as_str() == Some(this_dock.as_str())
            })
            .map(listed)
            .collect())
    }
}

/// The files, less what `.dockerignore` leaves out, as the tar the engine builds from.
async fn build_context(ctx: &Ctx, config: &WebServiceConfig) -> Result<Vec<u8>, DockError> {
    let entries = config.files.entries();
    let dockerfile = config.dockerfile.as_str();
    if !entries.iter().any(|e| e.path.as_str() == dockerfile) {
        return Err(DockError::InvalidConfig(ConfigError::new(
            "dockerfile",
            format!("{dockerfile:?} is not among the files"),
        )));
    }
    let ignore = match entries.iter().find(|e| e.path.as_str() == ".dockerignore") {
        Some(entry) => Ignore::parse(&String::from_utf8_lossy(&ctx.file(entry).await?)),
        None => Ignore::default(),
    };
    let mut kept = Vec::new();
    for entry in entries {
        let path = entry.path.as_str();
        let always = path == dockerfile || path == ".dockerignore";
        if always || !ignore.excludes(path) {
            kept.push((entry, ctx.file(entry).await?));
        }
    }
    let files: Vec<ContextFile<'_>> = kept
        .iter()
        .map(|(entry, bytes)| ContextFile {
            path: entry.path.as_str(),
            bytes,
            executable: entry.executable,
        })
        .collect();
    context::tar(&files).map_err(|m| DockError::InvalidConfig(ConfigError::new("files", m)))
}

/// The create call's body: the image, the env, StackDock's labels, the port published on
/// `publish_ip` (see [`Endpoint::publish_ip`]), and the limits every container gets.
fn container_spec(
    config: &WebServiceConfig,
    image: &str,
    (network, publish_ip): (&str, &str),
    mut labels: Map<String, Value>,
) -> Value {
    labels.insert(LABEL_NAME.into(), json!(config.name.as_str()));
    labels.insert(LABEL_PORT.into(), json!(config.port.0.to_string()));
    labels.insert(
        LABEL_READY_TIMEOUT.into(),
        json!(config.ready_timeout.0.to_string()),
    );
    let port = format!("{}/tcp", config.port.0);
    let env: Vec<String> = config
        .env
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut host = json!({
        "PortBindings": { port.clone(): [{"HostIp": publish_ip, "HostPort": ""}] },
        "RestartPolicy": {"Name": "unless-stopped"},
        "SecurityOpt": ["no-new-privileges"],
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        "NetworkMode": network,
    });
    if let Some(m) = &config.memory {
        // No swap beyond the limit, so the limit is what the app gets.
        host["Memory"] = json!(m.0);
        host["MemorySwap"] = json!(m.0);
    }
    if let Some(c) = &config.cpus {
        host["NanoCpus"] = json!((c.0 * 1e9).round() as i64);
    }
    json!({
        "Image": image,
        "Env": env,
        "Labels": labels,
        "ExposedPorts": { port: {} },
        "HostConfig": host,
    })
}

/// Removes every image carrying `marker`.
async fn remove_images(api: &DockerApi, marker: &Marker) -> Result<(), DockError> {
    for image in api.images_labelled(&[marker_filter(marker)]).await? {
        if let Some(id) = image["Id"].as_str() {
            api.remove_image(id).await?;
        }
    }
    Ok(())
}

/// A failure of the engine's own (a build or push error line, a container that stopped),
/// scrubbed of the run's secrets.
fn failed(code: &str, message: String, secrets: &[&str]) -> DockError {
    DockError::ResourceFailed {
        provider: Provider::Docker,
        code: code.into(),
        message: redact::scrub(&message, secrets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<WebServiceConfig, ConfigError> {
        config::parse(v.as_object().expect("object"))
    }

    fn files() -> Value {
        json!([{"path": "Dockerfile", "sha256": "a".repeat(64), "size": 3}])
    }

    #[test]
    fn config_defaults_and_limits_are_read_once() {
        let c = parse(json!({"name": "hello", "files": files(), "memory": "256m", "cpus": 0.5}))
            .expect("valid");
        assert_eq!(c.port.0, 8080);
        assert_eq!(c.dockerfile.as_str(), "Dockerfile");
        assert_eq!(c.memory.map(|m| m.0), Some(256 << 20));
        assert_eq!(c.ready_timeout.0, 60);
        assert!(c.env.0.is_empty());
    }

    #[test]
    fn bad_config_is_refused_naming_the_field() {
        for (field, value, says) in [
            ("port", json!(0), "not a port"),
            ("port", json!(70000), "not a port"),
            ("memory", json!("12x"), "unit"),
            ("memory", json!("1m"), "minimum"),
            ("cpus", json!(0), "CPU count"),
            ("env", json!({"1BAD": "x"}), "variable name"),
            ("ready_timeout", json!(0), "seconds"),
        ] {
            let mut c = json!({"name": "hello", "files": files()});
            c[field] = value;
            let e = parse(c).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn env_is_marked_sensitive_in_the_schema() {
        let schema = ConfigSchema::of::<WebServiceConfig>();
        assert_eq!(schema.sensitive(), ["env".to_string()]);
    }

    #[test]
    fn a_healthcheck_status_of_none_means_there_is_none() {
        assert_eq!(health(&json!({"Status": "running"})), None);
        assert_eq!(health(&json!({"Health": null})), None);
        assert_eq!(health(&json!({"Health": {"Status": "none"}})), None);
        assert_eq!(
            health(&json!({"Health": {"Status": "starting"}})),
            Some("starting")
        );
        assert_eq!(
            health(&json!({"Health": {"Status": "healthy"}})),
            Some("healthy")
        );
    }

    #[test]
    fn the_ready_deadline_runs_from_the_creation_or_else_the_start() {
        let ago = |s: i64| (chrono::Utc::now() - chrono::Duration::seconds(s)).to_rfc3339();
        let seen = |created: Value, started: Value| {
            json!({
                "Created": created,
                "State": {"StartedAt": started},
                "Config": {"Labels": {LABEL_READY_TIMEOUT: "60"}},
            })
        };
        assert!(past_deadline(&seen(json!(ago(61)), json!(ago(1)))));
        assert!(!past_deadline(&seen(json!(ago(59)), json!(ago(59)))));
        // No creation time (the field is nullable): the start time serves.
        assert!(past_deadline(&seen(Value::Null, json!(ago(61)))));
        assert!(!past_deadline(&seen(Value::Null, json!(ago(1)))));
        // Not started either (the engine's zero time): no clock, so not past it.
        assert!(!past_deadline(&seen(
            Value::Null,
            json!("0001-01-01T00:00:00Z")
        )));
    }

    #[test]
    fn exit_codes_are_explained_in_plain_words() {
        let (code, m) =
            stopped_failure(&json!({"ExitCode": 137, "OOMKilled": true}), &json!({}), 0);
        assert_eq!(code, "out_of_memory");
        assert!(m.contains("memory limit"), "{m}");
        let (code, m) = stopped_failure(&json!({"ExitCode": 137}), &json!({}), 2);
        assert_eq!(code, "out_of_memory");
        assert!(
            m.contains("likely out of memory") && m.contains("restarted 2"),
            "{m}"
        );
        let (_, m) = stopped_failure(
            &json!({"ExitCode": 3}),
            &json!({"stackdock.name": "web"}),
            0,
        );
        assert_eq!(m, "web exited with code 3");
    }

    #[test]
    fn failures_are_scrubbed_of_the_run_secrets() {
        let e = failed(
            "build_failed",
            "saw canary-1234 here".into(),
            &["canary-1234"],
        );
        assert!(!e.to_string().contains("canary-1234"), "{e}");
    }
}
