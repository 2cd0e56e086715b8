//! A thin client of the Docker Engine API (`swagger.yaml`, Swagger 2.0), over the engine's
//! unix socket or TCP (`conn.rs`).
//!
//! The API version is negotiated once per client: `GET /_ping` answers the engine's version
//! in its `API-Version` header, and every call then goes under `/v<version>`, the lower of
//! the engine's and [`MAX_VERSION`], refused below [`MIN_VERSION`]. Errors come as
//! `{"message": ...}`, kept word for word. Build and push answer 200 and then stream their
//! progress as JSON lines, where a failure arrives as an `{"error", "errorDetail"}` line:
//! [`Progress`] reads them one at a time so they can be shown as they come.
//!
//! Every call is journaled (method, path, status, time; never a header or a body), and the
//! registry credentials travel only in `X-Registry-Auth`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use stackdock_docks::prelude::*;

use super::conn::{Endpoint, Lines, read_all};

/// The API version this client is written against (the spec's `basePath`).
pub const MAX_VERSION: (u32, u32) = (1, 56);
/// The oldest engine API with everything used here (`NanoCpus`, `no-new-privileges`,
/// label filters, the JSON progress of build and push).
pub const MIN_VERSION: (u32, u32) = (1, 40);

/// How long a build or a push may stream before it is abandoned (the engine then cancels
/// it, as the connection closes).
const STREAM_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Registry credentials, as `X-Registry-Auth` carries them.
pub struct RegistryAuth {
    pub server: String,
    pub username: String,
    pub password: SecretString,
}

impl RegistryAuth {
    /// The header's value: base64url of `{username, password, serveraddress}`.
    fn header(&self) -> String {
        let json = json!({
            "username": self.username,
            "password": self.password.expose(),
            "serveraddress": self.server,
        });
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
    }
}

/// One line of a build's or a push's progress.
#[derive(Debug, PartialEq)]
pub enum ProgressLine {
    /// Output for people: a build step's text, a push's status.
    Text(String),
    /// Machine-readable results: a built image's `ID`, a pushed `Digest`.
    Aux(Value),
    /// The operation failed: the line's own message.
    Error(String),
}

impl ProgressLine {
    /// Reads one JSON line. A line that is not JSON is shown as text.
    pub fn parse(line: &str) -> Self {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return Self::Text(line.to_string());
        };
        if let Some(error) = v["errorDetail"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
        {
            return Self::Error(error.trim().to_string());
        }
        if !v["aux"].is_null() {
            return Self::Aux(v["aux"].clone());
        }
        if let Some(text) = v["stream"].as_str() {
            return Self::Text(text.trim_end().to_string());
        }
        let status = v["status"].as_str().unwrap_or_default();
        let line = match (v["id"].as_str(), v["progress"].as_str()) {
            (Some(id), Some(progress)) => format!("{id}: {status} {progress}"),
            (Some(id), None) => format!("{id}: {status}"),
            (None, _) => status.to_string(),
        };
        Self::Text(line)
    }
}

/// A build's or a push's progress, read as it streams.
pub struct Progress<'a> {
    api: &'a DockerApi,
    call: Journaled,
    lines: Lines,
    deadline: tokio::time::Instant,
}

impl Progress<'_> {
    /// The next line, `None` at the end. A stream cut short or running past its limit is an
    /// error: the outcome is unknown.
    pub async fn next(&mut self) -> Result<Option<ProgressLine>, DockError> {
        let next = tokio::time::timeout_at(self.deadline, self.lines.next()).await;
        let failed = match next {
            Ok(Ok(Some(line))) => return Ok(Some(ProgressLine::parse(&line))),
            Ok(Ok(None)) => {
                self.api.journal(&self.call, Some(200), None).await;
                return Ok(None);
            }
            Ok(Err(detail)) => detail,
            Err(_) => format!("still streaming after {STREAM_LIMIT:?}"),
        };
        self.api
            .journal(&self.call, Some(200), Some(failed.clone()))
            .await;
        Err(self.api.unavailable(failed))
    }
}

/// What a journal entry needs to know about a call once it is over.
struct Journaled {
    method: Method,
    path: String,
    started: Instant,
    at: chrono::DateTime<chrono::Utc>,
}

/// A client of one engine, for one run.
#[derive(Clone)]
pub struct DockerApi {
    endpoint: Endpoint,
    /// `/v1.41`: the negotiated version's path prefix.
    prefix: String,
    scope: CallScope,
    timeout: Duration,
}

impl DockerApi {
    /// Connects to the engine at `endpoint` and negotiates the API version.
    pub async fn connect(endpoint: Endpoint, ctx: &Ctx) -> Result<Self, DockError> {
        let mut api = Self {
            endpoint,
            prefix: String::new(),
            scope: ctx.scope.clone(),
            timeout: ctx.retry.request_timeout,
        };
        let (status, headers, _) = api.raw(Method::GET, "/_ping", &[], None).await?;
        if status != 200 {
            return Err(api.unavailable(format!("/_ping answered {status}")));
        }
        let offered = headers
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_version)
            .ok_or_else(|| DockError::Protocol {
                provider: Provider::Docker,
                detail: "/_ping answered no API-Version header".into(),
            })?;
        if offered < MIN_VERSION {
            return Err(DockError::Provider(ProviderError {
                provider: Provider::Docker,
                status: 400,
                code: "api_version_too_old".into(),
                message: format!(
                    "the engine speaks API {}.{}; StackDock needs {}.{} or newer",
                    offered.0, offered.1, MIN_VERSION.0, MIN_VERSION.1
                ),
                request_id: None,
            }));
        }
        let (major, minor) = offered.min(MAX_VERSION);
        api.prefix = format!("/v{major}.{minor}");
        Ok(api)
    }

    /// The negotiated version, `1.41`.
    pub fn version(&self) -> &str {
        self.prefix.trim_start_matches("/v")
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Checks registry credentials with the registry, through the engine (`POST /auth`).
    pub async fn check_registry(&self, auth: &RegistryAuth) -> Result<(), DockError> {
        let body = json!({
            "username": auth.username,
            "password": auth.password.expose(),
            "serveraddress": auth.server,
        });
        self.call_json(Method::POST, "/auth", &[], Some(&body))
            .await
            .map(drop)
    }

    /// `POST /build` with a tar context; its progress streams back. Build arguments are
    /// journaled with the call (they are no place for secrets: the image keeps them too).
    pub async fn build(
        &self,
        context: Vec<u8>,
        tag: &str,
        dockerfile: &str,
        build_args: &Map<String, Value>,
        labels: &Map<String, Value>,
    ) -> Result<Progress<'_>, DockError> {
        let query = [
            ("t", tag.to_string()),
            ("dockerfile", dockerfile.to_string()),
            ("buildargs", Value::Object(build_args.clone()).to_string()),
            ("labels", Value::Object(labels.clone()).to_string()),
            ("rm", "true".into()),
            ("forcerm", "true".into()),
        ];
        let headers = [("content-type", "application/x-tar".to_string())];
        self.stream(Method::POST, "/build", &query, &headers, context)
            .await
    }

    /// `POST /images/{name}/push?tag=`, with the registry credentials.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        auth: &RegistryAuth,
    ) -> Result<Progress<'_>, DockError> {
        let path = format!("/images/{}/push", encode(repository));
        let headers = [("x-registry-auth", auth.header())];
        self.stream(
            Method::POST,
            &path,
            &[("tag", tag.to_string())],
            &headers,
            Vec::new(),
        )
        .await
    }

    /// `DELETE /images/{name}`; an image already gone is fine, and so is one a running
    /// container uses (409: `force` removes it only from under stopped ones), which stays
    /// until that container goes. Its untagged parents (the build cache, which another build
    /// may be using this moment) are kept.
    pub async fn remove_image(&self, name: &str) -> Result<(), DockError> {
        let path = format!("/images/{}", encode(name));
        let query = [
            ("force", "true".to_string()),
            ("noprune", "true".to_string()),
        ];
        match self.call_json(Method::DELETE, &path, &query, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            // The call's journal entry keeps the engine's reason.
            Err(DockError::Provider(p)) if p.status == 409 => Ok(()),
            other => other.map(drop),
        }
    }

    /// `GET /images/json` filtered by labels (`key=value`).
    pub async fn images_labelled(&self, labels: &[String]) -> Result<Vec<Value>, DockError> {
        let filters = json!({ "label": labels }).to_string();
        let answer = self
            .call_json(Method::GET, "/images/json", &[("filters", filters)], None)
            .await?;
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// Makes the network named `name` unless it exists (`GET /networks/{id}`, then
    /// `POST /networks/create`); a network made meanwhile by another run is fine.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: &Map<String, Value>,
    ) -> Result<(), DockError> {
        let path = format!("/networks/{}", encode(name));
        match self.call_json(Method::GET, &path, &[], None).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let body = json!({
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": true,
            "Labels": labels,
        });
        match self
            .call_json(Method::POST, "/networks/create", &[], Some(&body))
            .await
        {
            Err(DockError::Provider(p)) if p.status == 409 => Ok(()),
            other => other.map(drop),
        }
    }

    /// `DELETE /networks/{id}`; a network already gone is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), DockError> {
        let path = format!("/networks/{}", encode(name));
        match self.call_json(Method::DELETE, &path, &[], None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// `POST /containers/create?name=`: the new container's id. A name in use answers the
    /// engine's 409.
    pub async fn create_container(&self, name: &str, spec: &Value) -> Result<String, DockError> {
        let answer = self
            .call_json(
                Method::POST,
                "/containers/create",
                &[("name", name.to_string())],
                Some(spec),
            )
            .await?;
        answer["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| DockError::Protocol {
                provider: Provider::Docker,
                detail: "a created container came back without its Id".into(),
            })
    }

    /// `POST /containers/{id}/start`; one already running (304) is fine.
    pub async fn start_container(&self, id: &str) -> Result<(), DockError> {
        let path = format!("/containers/{}/start", encode(id));
        self.call_json(Method::POST, &path, &[], None)
            .await
            .map(drop)
    }

    /// `POST /containers/{id}/stop?t=`; one stopped (304) or gone is fine. The engine
    /// answers once the container stopped, so the call waits out the grace period too.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), DockError> {
        let path = format!("/containers/{}/stop", encode(id));
        let query = [("t", grace.as_secs().to_string())];
        let patient = Self {
            timeout: self.timeout + grace,
            ..self.clone()
        };
        match patient.call_json(Method::POST, &path, &query, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// `DELETE /containers/{id}?force=true&v=true`; one already gone is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), DockError> {
        let path = format!("/containers/{}", encode(id));
        let query = [("force", "true".to_string()), ("v", "true".to_string())];
        match self.call_json(Method::DELETE, &path, &query, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// `GET /containers/{id}/json`; `None` when there is no such container. The container's
    /// environment (`Config.Env`, which holds the app's secrets) is dropped as it is read.
    pub async fn inspect_container(&self, id: &str) -> Result<Option<Value>, DockError> {
        let path = format!("/containers/{}/json", encode(id));
        match self.call_json(Method::GET, &path, &[], None).await {
            Ok(mut v) => {
                if let Some(config) = v.get_mut("Config").and_then(Value::as_object_mut) {
                    config.remove("Env");
                }
                Ok(Some(v))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /containers/json?all=true&filters=`: every container matching `filters`
    /// (`{"label": ["k=v"]}`), stopped ones too.
    pub async fn list_containers(&self, filters: &Value) -> Result<Vec<Value>, DockError> {
        let mut query = vec![("all", "true".to_string())];
        if filters.as_object().is_some_and(|f| !f.is_empty()) {
            query.push(("filters", filters.to_string()));
        }
        let answer = self
            .call_json(Method::GET, "/containers/json", &query, None)
            .await?;
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// The last `tail` lines a container wrote (stdout and stderr), oldest first.
    pub async fn container_logs(&self, id: &str, tail: usize) -> Result<Vec<String>, DockError> {
        let path = format!("/containers/{}/logs", encode(id));
        let query = [
            ("stdout", "true".to_string()),
            ("stderr", "true".to_string()),
            ("tail", tail.to_string()),
        ];
        let (status, _, body) = self.raw(Method::GET, &path, &query, None).await?;
        let body = body.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(self.refused(status, &body));
        }
        let text = demultiplex(&body);
        Ok(text
            .lines()
            .map(str::to_string)
            .filter(|l| !l.trim().is_empty())
            .collect())
    }

    /// A call answered with JSON (or nothing). Non-2xx answers are errors in the engine's
    /// own words.
    async fn call_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, DockError> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let (status, _, answer) = self.raw(method, path, query, body).await?;
        let answer = answer.unwrap_or_default();
        if !(200..300).contains(&status) && status != 304 {
            return Err(self.refused(status, &answer));
        }
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer).map_err(|e| DockError::Protocol {
            provider: Provider::Docker,
            detail: format!("{path} answered JSON that does not parse: {e}"),
        })
    }

    /// A call whose 200 answer is a progress stream.
    async fn stream(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Progress<'_>, DockError> {
        let call = self.started(&method, path, query);
        let request = self.request(&method, path, query, headers, Bytes::from(body))?;
        let response = match self.endpoint.send(request, self.timeout).await {
            Ok(r) => r,
            Err(detail) => {
                self.journal(&call, None, Some(detail.clone())).await;
                return Err(self.unavailable(detail));
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            let body = read_all(response.into_body(), self.timeout)
                .await
                .unwrap_or_default();
            let err = self.refused(status, &body);
            self.journal(&call, Some(status), Some(err.message())).await;
            return Err(err);
        }
        Ok(Progress {
            api: self,
            call,
            lines: Lines::new(response.into_body()),
            deadline: tokio::time::Instant::now() + STREAM_LIMIT,
        })
    }

    /// Sends one request and reads its whole answer, journaled.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<(u16, hyper::HeaderMap, Option<Bytes>), DockError> {
        let call = self.started(&method, path, query);
        let mut headers = Vec::new();
        if body.is_some() {
            headers.push(("content-type", "application/json".to_string()));
        }
        let request = self.request(&method, path, query, &headers, body.unwrap_or_default())?;
        let result = async {
            let response = self.endpoint.send(request, self.timeout).await?;
            let status = response.status().as_u16();
            let head = response.headers().clone();
            let bytes = read_all(response.into_body(), self.timeout).await?;
            Ok::<_, String>((status, head, bytes))
        }
        .await;
        match result {
            Ok((status, head, bytes)) => {
                let error = (!(200..300).contains(&status) && status != 304)
                    .then(|| self.refused(status, &bytes).message());
                self.journal(&call, Some(status), error).await;
                Ok((status, head, Some(bytes)))
            }
            Err(detail) => {
                self.journal(&call, None, Some(detail.clone())).await;
                Err(self.unavailable(detail))
            }
        }
    }

    fn request(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, DockError> {
        // `/_ping` answers the same under every version, and tells which one to use.
        let prefix = if path == "/_ping" { "" } else { &self.prefix };
        let mut uri = format!("{prefix}{path}");
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            uri = format!("{uri}?{}", pairs.join("&"));
        }
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("accept", "application/json");
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| DockError::Protocol {
                provider: Provider::Docker,
                detail: format!("the request to {path} cannot be built: {e}"),
            })
    }

    fn started(&self, method: &Method, path: &str, query: &[(&str, String)]) -> Journaled {
        // Query values here are names, tags, labels and filters: nothing secret.
        let shown: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let path = if shown.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", shown.join("&"))
        };
        Journaled {
            method: method.clone(),
            path,
            started: Instant::now(),
            at: chrono::Utc::now(),
        }
    }

    async fn journal(&self, call: &Journaled, status: Option<u16>, error: Option<String>) {
        let entry = journal_entry(&self.scope, call, status, error);
        self.scope.recorder.journal(entry).await;
    }

    fn unavailable(&self, detail: String) -> DockError {
        DockError::Unavailable {
            provider: Provider::Docker,
            detail,
            retry_after: None,
        }
    }

    /// A non-2xx answer in the engine's words: its `message`. 5xx is the engine's trouble
    /// and may pass; anything else is a refusal.
    fn refused(&self, status: u16, body: &[u8]) -> DockError {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
        if status >= 500 {
            return self.unavailable(format!("{status}: {message}"));
        }
        let code = match status {
            400 => "bad_parameter",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            _ => "refused",
        };
        DockError::Provider(ProviderError {
            provider: Provider::Docker,
            status,
            code: code.into(),
            message,
            request_id: None,
        })
    }
}

fn journal_entry(
    scope: &CallScope,
    call: &Journaled,
    status: Option<u16>,
    error: Option<String>,
) -> ApiCall {
    ApiCall {
        id: 0,
        org_id: scope.org_id,
        dock_id: scope.dock_id,
        resource_id: scope.resource_id,
        operation_id: scope.operation_id,
        method: call.method.to_string(),
        path: call.path.clone(),
        status,
        duration_ms: call.started.elapsed().as_millis() as u64,
        request_id: None,
        attempt: 1,
        error,
        at: call.at,
        worker: None,
    }
}

/// `1.41` as `(1, 41)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Percent-encodes a path segment or a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of a container's log stream. Without a TTY the engine multiplexes stdout and
/// stderr in frames: one byte for the stream, three zero bytes, a big-endian u32 length, the
/// payload. A body that does not frame that way is read as plain text.
fn demultiplex(body: &[u8]) -> String {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while rest.len() >= 8 {
        let framed = matches!(rest[0], 0..=2) && rest[1..4] == [0, 0, 0];
        if !framed {
            return String::from_utf8_lossy(body).into_owned();
        }
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_read_as_text_results_or_errors() {
        assert_eq!(
            ProgressLine::parse(r#"{"stream":"Step 1/3 : FROM scratch\n"}"#),
            ProgressLine::Text("Step 1/3 : FROM scratch".into())
        );
        assert_eq!(
            ProgressLine::parse(r#"{"aux":{"ID":"sha256:ab"}}"#),
            ProgressLine::Aux(json!({"ID": "sha256:ab"}))
        );
        assert_eq!(
            ProgressLine::parse(
                r#"{"errorDetail":{"message":"COPY failed: no such file"},"error":"COPY failed: no such file"}"#
            ),
            ProgressLine::Error("COPY failed: no such file".into())
        );
        assert_eq!(
            ProgressLine::parse(r#"{"error":"unauthorized: authentication required"}"#),
            ProgressLine::Error("unauthorized: authentication required".into())
        );
        assert_eq!(
            ProgressLine::parse(r#"{"status":"Pushed","progressDetail":{},"id":"5f70bf18a086"}"#),
            ProgressLine::Text("5f70bf18a086: Pushed".into())
        );
        assert_eq!(
            ProgressLine::parse("not json"),
            ProgressLine::Text("not json".into())
        );
    }

    #[test]
    fn versions_parse_and_negotiate_down_to_ours() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("1.x"), None);
        assert!((1, 41) >= MIN_VERSION && (1, 39) < MIN_VERSION);
        assert_eq!((1, 60).min(MAX_VERSION), MAX_VERSION);
    }

    #[test]
    fn multiplexed_logs_are_joined_and_plain_ones_kept() {
        let mut framed = vec![1, 0, 0, 0, 0, 0, 0, 6];
        framed.extend_from_slice(b"hello\n");
        framed.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        framed.extend_from_slice(b"oops");
        assert_eq!(demultiplex(&framed), "hello\noops");
        assert_eq!(demultiplex(b"plain text log\n"), "plain text log\n");
    }

    #[test]
    fn registry_auth_is_base64url_json() {
        let auth = RegistryAuth {
            server: "127.0.0.1:5000".into(),
            username: "u".into(),
            password: SecretString::new("p?>"),
        };
        let decoded = base64::engine::general_purpose::URL_SAFE
            .decode(auth.header())
            .expect("base64url");
        let v: Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(
            v,
            json!({"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"})
        );
    }
}
