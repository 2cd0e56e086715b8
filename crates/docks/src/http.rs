//! The HTTP plumbing every adapter's `api.rs` is written on: bearer auth, JSON in and out,
//! retries, typed provider errors, and one journal entry per call made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use stackdock_core::{ApiCall, Provider, SecretString, redact, report};

use crate::adapter::{CallScope, Ctx, DockAccess, DueStep, write_due};
use crate::budget::{Budget, Permit};
use crate::error::{DockError, ProviderError};
use crate::retry::{self, RetryPolicy};

/// Reads a provider's error body into (code, message). Each provider shapes it differently.
pub type ErrorBodyReader = fn(status: u16, body: &Value) -> (String, String);

/// How long a 429's body says to wait, for a provider that says it there (Vercel's
/// `error.limit.resetMs`), given the time now.
pub type WaitInBody = fn(body: &Value, now: chrono::DateTime<chrono::Utc>) -> Option<Duration>;

/// Headers that carry a provider's request id, in the order they are looked for.
const REQUEST_ID_HEADERS: &[&str] = &["x-request-id", "x-vercel-id", "cf-ray", "x-nf-request-id"];

/// Whether a failed call may be repeated as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// GET, DELETE, PUT: repeating cannot do harm.
    Repeatable,
    /// A create: a lost answer may hide a success, so the caller decides (usually by looking
    /// the resource up by its marker) instead of this layer repeating it.
    Once,
}

/// What a request carries.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Json(Option<&'a Value>),
    /// Raw bytes (`application/octet-stream`): a file's contents, with any headers that
    /// describe them (a digest).
    Bytes(&'a [u8], &'a [(&'a str, String)]),
    /// `multipart/form-data` of text fields, then file parts (each with its name as its file
    /// name), in order: Cloudflare Pages' deployment create, its `manifest` and `branch` and
    /// the site's `_headers` and `_redirects`. Built anew for every try; the journal keeps
    /// none of it.
    Form(&'a [(&'a str, String)], &'a [(&'a str, Vec<u8>)]),
}

#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

/// One adapter's way to one provider account, for one run.
#[derive(Clone)]
pub struct HttpSession {
    client: reqwest::Client,
    provider: Provider,
    base_url: String,
    token: SecretString,
    scope: CallScope,
    retry: RetryPolicy,
    /// The account's budget: every try waits for it, every answer corrects it.
    budget: Arc<Budget>,
    /// Takes the budget ahead of the queue ([`Ctx::first_in_line`]).
    first_in_line: bool,
    /// The run's step written just before its next call goes out
    /// ([`Ctx::record_before_sending`]).
    due: Arc<DueStep>,
    read_error: ErrorBodyReader,
    /// Read from a 429 whose headers ask for no wait ([`HttpSession::with_wait_in_body`]).
    wait_in_body: Option<WaitInBody>,
}

impl HttpSession {
    /// A session on `dock`'s account (its key, base URL or `default_base_url`, and budget).
    pub fn new(
        client: reqwest::Client,
        dock: &DockAccess,
        default_base_url: &str,
        ctx: &Ctx,
        read_error: ErrorBodyReader,
    ) -> Self {
        let base_url = dock.base_url.as_deref().unwrap_or(default_base_url);
        Self {
            client,
            provider: dock.provider,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: dock.api_key.clone(),
            scope: ctx.scope.clone(),
            retry: ctx.retry,
            budget: dock.budget.clone(),
            first_in_line: ctx.first_in_line,
            due: ctx.due_step(),
            read_error,
            wait_in_body: None,
        }
    }

    /// The same session, reading how long to wait from a 429's body when its headers say
    /// nothing of it: the wait holds this call's retry and pauses the dock's budget as a
    /// `Retry-After` would.
    pub fn with_wait_in_body(mut self, wait_in_body: WaitInBody) -> Self {
        self.wait_in_body = Some(wait_in_body);
        self
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The same session (account, budget, journal) speaking with another bearer token: one
    /// the provider handed out for a narrower job (Cloudflare Pages' upload token). It is
    /// scrubbed from errors like the dock's key.
    pub fn with_bearer(&self, token: SecretString) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<ApiResponse, DockError> {
        self.send(Method::GET, path, query, None, Idempotence::Repeatable)
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<ApiResponse, DockError> {
        self.send(Method::DELETE, path, &[], None, Idempotence::Repeatable)
            .await
    }

    /// A create: sent once, except after a 429, which says the provider did nothing (it is
    /// sent again when the budget allows, up to the retry policy's tries). Any other failure
    /// is returned for the caller to decide; see [`Idempotence::Once`]. `attempt` is the
    /// caller's count of tries, journaled with the call.
    pub async fn post_once(
        &self,
        path: &str,
        body: &Value,
        attempt: u32,
    ) -> Result<ApiResponse, DockError> {
        self.post_payload_once(path, &[], Payload::Json(Some(body)), attempt)
            .await
    }

    /// A create with no body, its parameters in the query, sent as [`HttpSession::post_once`]
    /// sends one.
    pub async fn post_query_once(
        &self,
        path: &str,
        query: &[(&str, String)],
        attempt: u32,
    ) -> Result<ApiResponse, DockError> {
        self.post_payload_once(path, query, Payload::Json(None), attempt)
            .await
    }

    async fn post_payload_once(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Payload<'_>,
        attempt: u32,
    ) -> Result<ApiResponse, DockError> {
        let mut refused = 0;
        loop {
            match self
                .try_once(&Method::POST, path, query, body, attempt.max(1) + refused)
                .await
            {
                Err(DockError::RateLimited { retry_after, .. })
                    if refused + 1 < self.retry.max_attempts && self.worth_waiting(retry_after) =>
                {
                    // The budget was paused by this answer; the next try waits for it.
                    refused += 1;
                }
                other => return other,
            }
        }
    }

    /// A create sent as `multipart/form-data` of text `fields` and then `files` (name and
    /// contents), with the 429 handling of [`HttpSession::post_once`].
    pub async fn post_form_once(
        &self,
        path: &str,
        fields: &[(&str, String)],
        files: &[(&str, Vec<u8>)],
        attempt: u32,
    ) -> Result<ApiResponse, DockError> {
        self.post_payload_once(path, &[], Payload::Form(fields, files), attempt)
            .await
    }

    /// Sends a request, retrying transient failures of repeatable ones, journaling every try.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotence: Idempotence,
    ) -> Result<ApiResponse, DockError> {
        self.send_payload(method, path, query, Payload::Json(body), idempotence)
            .await
    }

    /// Sends raw bytes (`application/octet-stream`, a file's contents) with a repeatable
    /// method such as PUT, retrying transient failures like [`HttpSession::send`].
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        bytes: &[u8],
    ) -> Result<ApiResponse, DockError> {
        self.send_bytes_with(method, path, query, &[], bytes).await
    }

    /// [`HttpSession::send_bytes`] with headers describing the contents (Vercel's
    /// `x-vercel-digest`).
    pub async fn send_bytes_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        bytes: &[u8],
    ) -> Result<ApiResponse, DockError> {
        self.send_payload(
            method,
            path,
            query,
            Payload::Bytes(bytes, headers),
            Idempotence::Repeatable,
        )
        .await
    }

    async fn send_payload(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Payload<'_>,
        idempotence: Idempotence,
    ) -> Result<ApiResponse, DockError> {
        let max = match idempotence {
            Idempotence::Repeatable => self.retry.max_attempts.max(1),
            Idempotence::Once => 1,
        };
        let mut attempt = 1;
        loop {
            match self.try_once(&method, path, query, body, attempt).await {
                Ok(resp) => return Ok(resp),
                // The budget holds the next try back until the provider's reset.
                Err(DockError::RateLimited { retry_after, .. })
                    if attempt < max && self.worth_waiting(retry_after) =>
                {
                    attempt += 1
                }
                Err(e) if e.is_transient() && attempt < max => {
                    let asked = match &e {
                        DockError::Unavailable { retry_after, .. }
                        | DockError::RateLimited { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = self.retry.delay(attempt, asked);
                    if wait > self.retry.max_wait {
                        return Err(e);
                    }
                    tracing::debug!(provider = %self.provider, %path, attempt, ?wait, "retrying after: {e}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn try_once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Payload<'_>,
        attempt: u32,
    ) -> Result<ApiResponse, DockError> {
        let url = format!("{}{}", self.base_url, path);
        let mut req = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(self.token.expose())
            .header("accept", "application/json")
            .timeout(self.retry.request_timeout)
            .query(query);
        match body {
            Payload::Json(Some(b)) => req = req.json(b),
            Payload::Json(None) => {}
            Payload::Bytes(bytes, headers) => {
                req = req.header("content-type", "application/octet-stream");
                for (name, value) in headers {
                    req = req.header(*name, value);
                }
                req = req.body(bytes.to_vec())
            }
            Payload::Form(fields, files) => {
                let form = fields
                    .iter()
                    .fold(reqwest::multipart::Form::new(), |form, (name, value)| {
                        form.text(name.to_string(), value.clone())
                    });
                let form = files.iter().fold(form, |form, (name, bytes)| {
                    let part =
                        reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string());
                    form.part(name.to_string(), part)
                });
                req = req.multipart(form)
            }
        }
        let permit = self.wait_for_budget().await?;
        // The call has its turn: what the run said it is about to send is written now.
        write_due(&self.due, &*self.scope.recorder).await?;
        let started = Instant::now();
        let sent_at = chrono::Utc::now();
        let sent = req.send().await;
        // Before the body is read, so waiting calls learn of a 429 as early as possible;
        // unless it is a 429 whose wait may be in its body, which the budget is told once the
        // body is read. No answer at all (the permit drops) counts as sent.
        let mut permit = Some(permit);
        if let Ok(resp) = &sent {
            let body_may_tell = resp.status().as_u16() == 429
                && self.wait_in_body.is_some()
                && retry::asked_wait(resp.headers(), chrono::Utc::now()).is_none();
            if !body_may_tell && let Some(permit) = permit.take() {
                permit.answered(resp.status().as_u16(), resp.headers());
            }
        }
        let mut call = ApiCall {
            id: 0,
            org_id: self.scope.org_id,
            dock_id: self.scope.dock_id,
            resource_id: self.scope.resource_id,
            operation_id: self.scope.operation_id,
            method: method.to_string(),
            path: journal_path(path, query),
            status: None,
            duration_ms: 0,
            request_id: None,
            attempt,
            error: None,
            at: sent_at,
            worker: None,
        };
        let result = match sent {
            Err(e) => {
                // reqwest's error text can carry the URL, never the headers; scrub anyway.
                let detail = if e.is_timeout() {
                    format!("no answer within {:?}", self.retry.request_timeout)
                } else {
                    redact::scrub(&report::error_chain(&e), &[self.token.expose()])
                };
                Err(self.unavailable(&mut call, detail))
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let request_id = REQUEST_ID_HEADERS
                    .iter()
                    .find_map(|h| resp.headers().get(*h))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let mut asked = retry::asked_wait(resp.headers(), chrono::Utc::now());
                // A 429 whose wait may be in its body: the budget is told once it is read.
                let deferred = permit.take().map(|p| (p, resp.headers().clone()));
                call.status = Some(status);
                call.request_id = request_id.clone();
                let bytes = resp.bytes().await;
                if let Some((permit, mut headers)) = deferred {
                    let body = bytes.as_ref().ok().and_then(|b| read_body(b).ok());
                    let now = chrono::Utc::now();
                    let wait = body.and_then(|b| self.wait_in_body.and_then(|w| w(&b, now)));
                    if let Some(wait) = wait {
                        // Whole seconds, rounded up, as `Retry-After` gives them.
                        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                        headers.insert(reqwest::header::RETRY_AFTER, secs.into());
                        asked = Some(wait);
                    }
                    permit.answered(status, &headers);
                }
                match bytes {
                    // The connection dropped in the middle of the answer.
                    Err(e) => {
                        let detail = format!(
                            "the answer was cut off: {}",
                            redact::scrub(&report::error_chain(&e), &[self.token.expose()])
                        );
                        Err(self.unavailable(&mut call, detail))
                    }
                    Ok(bytes) => match read_body(&bytes) {
                        Ok(body) => self.classify(status, body, request_id, asked, &mut call),
                        // A success whose body cannot be read happened all the same; an
                        // error's body is only its wording.
                        Err(detail) if (200..300).contains(&status) => {
                            call.error = Some(detail.clone());
                            Err(DockError::Protocol {
                                provider: self.provider,
                                detail,
                            })
                        }
                        Err(_) => {
                            let text = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                            self.classify(status, text, request_id, asked, &mut call)
                        }
                    },
                }
            }
        };
        call.duration_ms = started.elapsed().as_millis() as u64;
        self.scope.recorder.journal(call).await;
        result
    }

    /// Whether a wait the provider asked for is short enough to hold this call for.
    fn worth_waiting(&self, asked: Option<Duration>) -> bool {
        asked.is_none_or(|wait| wait <= self.retry.max_wait)
    }

    /// Waits for the dock's budget to let one call go. A wait longer than the retry policy's
    /// `max_wait` (a 429 that asked for an hour pauses the whole dock) is not waited out here,
    /// where it would hold a worker: the call answers rate-limited without being sent, and the
    /// engine reschedules the operation.
    async fn wait_for_budget(&self) -> Result<Permit<'_>, DockError> {
        let too_long = |retry_after: Duration| DockError::RateLimited {
            provider: self.provider,
            retry_after: Some(retry_after),
        };
        if let Some(until) = self.budget.paused_until() {
            let paused = until.saturating_duration_since(tokio::time::Instant::now());
            if paused > self.retry.max_wait {
                return Err(too_long(paused));
            }
        }
        let acquired = async {
            if self.first_in_line {
                self.budget.acquire_first().await
            } else {
                self.budget.acquire().await
            }
        };
        tokio::time::timeout(self.retry.max_wait, acquired)
            .await
            .map_err(|_| too_long(self.retry.max_wait))
    }

    /// No usable answer: journaled with `detail`, and transient.
    fn unavailable(&self, call: &mut ApiCall, detail: String) -> DockError {
        call.error = Some(detail.clone());
        DockError::Unavailable {
            provider: self.provider,
            detail,
            retry_after: None,
        }
    }

    fn classify(
        &self,
        status: u16,
        body: Value,
        request_id: Option<String>,
        asked: Option<Duration>,
        call: &mut ApiCall,
    ) -> Result<ApiResponse, DockError> {
        if (200..300).contains(&status) {
            return Ok(ApiResponse {
                status,
                body,
                request_id,
            });
        }
        let (code, message) = (self.read_error)(status, &body);
        // A provider may echo the credential in either field (`"id": "bad_token_<key>"`), and
        // both end up in the journal, the error and the resource row.
        let code = redact::scrub(&code, &[self.token.expose()]);
        let message = redact::scrub(&message, &[self.token.expose()]);
        call.error = Some(format!("{code}: {message}"));
        if status == 429 {
            return Err(DockError::RateLimited {
                provider: self.provider,
                retry_after: asked,
            });
        }
        if status >= 500 {
            return Err(DockError::Unavailable {
                provider: self.provider,
                detail: format!("{status} {code}: {message}"),
                retry_after: asked,
            });
        }
        Err(DockError::Provider(ProviderError {
            provider: self.provider,
            status,
            code,
            message,
            request_id,
        }))
    }
}

/// An answer's body as JSON: empty is `null`; anything else must parse whole.
fn read_body(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the answer's body is not the JSON it should be ({} bytes): {e}",
            bytes.len()
        )
    })
}

/// The path as journaled: query values are kept (page numbers, tag filters help a reader)
/// except for parameters whose names look secret.
fn journal_path(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let mut probe = serde_json::Map::new();
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            probe.clear();
            probe.insert((*k).to_string(), Value::String(v.clone()));
            let mut obj = Value::Object(probe.clone());
            redact::redact_json(&mut obj);
            format!("{k}={}", obj[*k].as_str().unwrap_or_default())
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_paths_keep_plain_values_and_hide_secret_ones() {
        assert_eq!(
            journal_path(
                "/v2/droplets",
                &[("page", "2".into()), ("tag_name", "t".into())]
            ),
            "/v2/droplets?page=2&tag_name=t"
        );
        assert_eq!(
            journal_path("/x", &[("api_key", "hunter2".into())]),
            "/x?api_key=[redacted]"
        );
    }
}
