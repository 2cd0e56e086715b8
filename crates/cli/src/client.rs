//! The HTTP client of StackDock's API, and the mapping of its answers to exit statuses.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::Conn;

/// Why a command did not complete; each carries its exit status.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage or input, including the server's 400/404/409/422 answers. Exit 2.
    Input(String),
    /// Exit 3.
    Auth(String),
    /// Exit 4.
    Unreachable(String),
    /// Anything else (server 5xx, a broken answer, a local failure). Exit 1.
    Other(String),
}

impl CliError {
    pub(crate) fn exit_status(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Input(_) => 2,
            Self::Auth(_) => 3,
            Self::Unreachable(_) => 4,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Other(_) => "failed",
            Self::Input(_) => "bad_input",
            Self::Auth(_) => "not_permitted",
            Self::Unreachable(_) => "unreachable",
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(m) | Self::Auth(m) | Self::Unreachable(m) | Self::Other(m) => {
                f.write_str(m)
            }
        }
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub(crate) fn new(conn: &Conn) -> Result<Self, CliError> {
        let base = server_url(&conn.url)?;
        let token = match &conn.token {
            Some(t) => t.trim().to_string(),
            None => {
                let path = crate::default_data_dir().join("owner-token");
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| {
                        CliError::Auth(format!(
                            "no token: set STACKDOCK_TOKEN or run `stackdock up` here first ({}: {e})",
                            path.display()
                        ))
                    })?
            }
        };
        Ok(Self {
            http: reqwest::Client::new(),
            base,
            token,
        })
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(self.request(Method::GET, path)).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                let what = format!(
                    "{} answered {status} with a non-JSON body: is it StackDock?",
                    self.base
                );
                match status.as_u16() {
                    401 | 403 => CliError::Auth(what),
                    _ => CliError::Other(what),
                }
            })?
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(error_from(status, &body))
    }

    pub(crate) fn unreachable(&self, e: reqwest::Error) -> CliError {
        if e.is_connect() || e.is_timeout() {
            CliError::Unreachable(format!(
                "cannot reach StackDock at {}: is `stackdock up` running?",
                self.base
            ))
        } else {
            CliError::Other(format!("request to {} failed: {e}", self.base))
        }
    }
}

/// The server's URL as given (`--url` or `STACKDOCK_URL`), checked: an `http` or `https`
/// URL with a host. Without its scheme (`127.0.0.1:7878`) the request could not even be
/// built, and the HTTP client's own words for that name no cause.
fn server_url(given: &str) -> Result<String, CliError> {
    let refused = |why: &str| {
        CliError::Input(format!(
            "the server URL {given:?} {why}: give it as http://host:port (--url or STACKDOCK_URL)"
        ))
    };
    let url = reqwest::Url::parse(given.trim()).map_err(|_| refused("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refused("is not an http(s) URL with a host"));
    }
    Ok(given.trim().trim_end_matches('/').to_string())
}

pub(crate) fn error_from(status: StatusCode, body: &Value) -> CliError {
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server answered {status}"));
    match status.as_u16() {
        401 | 403 => CliError::Auth(message),
        400..=499 => CliError::Input(message),
        _ => CliError::Other(message),
    }
}
