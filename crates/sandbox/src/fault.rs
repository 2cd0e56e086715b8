//! Fault injection shared by every simulator.
//!
//! A fault is queued by a test and consumed by the requests it matches, so a test can
//! say "the next two POSTs to /v2/droplets fail with 500" without racing the client.

use std::time::Duration;

/// A queued misbehaviour: which requests it hits, how many times, and what they get.
///
/// Only requests that get past authentication and the rate limiter meet the faults,
/// so a fault is never used up by a request that was going to be refused anyway.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP method to match, case-insensitive; `None` matches any method.
    pub method: Option<String>,
    /// Matches every request whose path starts with this, e.g. `"/v2/droplets"`.
    pub path_prefix: String,
    /// How many matching requests it applies to before it is used up.
    pub times: u32,
    /// How many matching requests it lets through untouched before it applies, so a test
    /// can hit the third of a run of similar calls.
    pub skip: u32,
    pub response: FaultResponse,
}

#[derive(Clone, Debug)]
pub enum FaultResponse {
    /// Answer with this status and the provider's error body WITHOUT doing the request's work.
    Error {
        status: u16,
        id: String,
        message: String,
    },
    /// 429 with Retry-After (seconds) and the rate-limit headers, without doing the work.
    RateLimited { retry_after_secs: u64 },
    /// Do the request's work (e.g. really create the droplet), then answer 500: a "lost response".
    LoseResponse,
    /// Do the work but hold the response this long (for client timeouts).
    Delay(Duration),
    /// Do the work, then send a successful answer cut off halfway through its body,
    /// with a `Content-Length` that matches what is sent: the client gets a short,
    /// invalid JSON document rather than a hang. Meant for GETs; an answer that is not
    /// a success, or has no body, goes out whole.
    Truncate,
    /// Do the work, then close the connection without sending any of the answer: the
    /// client's request fails with a connection error and no status at all.
    Disconnect,
}

impl Fault {
    pub fn new(
        method: Option<&str>,
        path_prefix: &str,
        times: u32,
        response: FaultResponse,
    ) -> Self {
        Self {
            method: method.map(str::to_owned),
            path_prefix: path_prefix.to_owned(),
            times,
            skip: 0,
            response,
        }
    }

    /// The same fault, applying only after `skip` matching requests went through untouched.
    pub fn after(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }

    /// An error answer whose `id` and `message` follow from the status, as providers
    /// word them (`500` -> `server_error`, `503` -> `service_unavailable`, ...).
    pub fn error(method: Option<&str>, path_prefix: &str, status: u16, times: u32) -> Self {
        let (id, message) = error_wording(status);
        Self::new(
            method,
            path_prefix,
            times,
            FaultResponse::Error {
                status,
                id,
                message,
            },
        )
    }

    /// An error answer with an explicit `id` and `message`.
    pub fn error_with(
        method: Option<&str>,
        path_prefix: &str,
        status: u16,
        id: &str,
        message: &str,
        times: u32,
    ) -> Self {
        Self::new(
            method,
            path_prefix,
            times,
            FaultResponse::Error {
                status,
                id: id.to_owned(),
                message: message.to_owned(),
            },
        )
    }

    pub fn rate_limited(
        method: Option<&str>,
        path_prefix: &str,
        retry_after_secs: u64,
        times: u32,
    ) -> Self {
        Self::new(
            method,
            path_prefix,
            times,
            FaultResponse::RateLimited { retry_after_secs },
        )
    }

    pub fn lose_response(method: Option<&str>, path_prefix: &str, times: u32) -> Self {
        Self::new(method, path_prefix, times, FaultResponse::LoseResponse)
    }

    pub fn delay(method: Option<&str>, path_prefix: &str, delay: Duration, times: u32) -> Self {
        Self::new(method, path_prefix, times, FaultResponse::Delay(delay))
    }

    pub fn truncate(method: Option<&str>, path_prefix: &str, times: u32) -> Self {
        Self::new(method, path_prefix, times, FaultResponse::Truncate)
    }

    pub fn disconnect(method: Option<&str>, path_prefix: &str, times: u32) -> Self {
        Self::new(method, path_prefix, times, FaultResponse::Disconnect)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method));
        method_ok && path.starts_with(&self.path_prefix)
    }
}

/// Faults waiting for their requests, in the order they were queued.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queued: Vec<Fault>,
}

impl FaultQueue {
    /// How many queued faults still have requests to hit.
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }

    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.queued.push(fault);
        }
    }

    /// First queued match wins, so a test can stack a specific fault in front of a
    /// broad one and know which fires.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<FaultResponse> {
        let index = self.queued.iter().position(|f| f.matches(method, path))?;
        let fault = &mut self.queued[index];
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        let response = fault.response.clone();
        if fault.times == 0 {
            self.queued.remove(index);
        }
        Some(response)
    }
}

/// Providers name their error ids after the reason phrase in snake case; 500 is the
/// exception, which DigitalOcean (and others) call `server_error`.
pub(crate) fn error_wording(status: u16) -> (String, String) {
    match status {
        400 => ("bad_request".into(), "The request was malformed.".into()),
        401 => ("unauthorized".into(), "Unable to authenticate you.".into()),
        403 => (
            "forbidden".into(),
            "You do not have access for the attempted action.".into(),
        ),
        404 => (
            "not_found".into(),
            "The resource you were accessing could not be found.".into(),
        ),
        409 => (
            "conflict".into(),
            "The request conflicts with the current state.".into(),
        ),
        422 => (
            "unprocessable_entity".into(),
            "The request could not be processed.".into(),
        ),
        429 => (
            "too_many_requests".into(),
            "API Rate limit exceeded.".into(),
        ),
        500 => ("server_error".into(), "Unexpected server-side error".into()),
        502 => ("bad_gateway".into(), "Bad gateway.".into()),
        503 => (
            "service_unavailable".into(),
            "The service is temporarily unavailable.".into(),
        ),
        504 => ("gateway_timeout".into(), "Gateway timeout.".into()),
        other => (
            format!("error_{other}"),
            format!("Simulated error {other}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_is_used_up() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::error(Some("post"), "/v2/droplets", 503, 1));
        queue.push(Fault::error(None, "/v2", 500, 2));

        let first = queue.take("POST", "/v2/droplets");
        assert!(matches!(
            first,
            Some(FaultResponse::Error { status: 503, .. })
        ));
        let second = queue.take("POST", "/v2/droplets");
        assert!(matches!(
            second,
            Some(FaultResponse::Error { status: 500, .. })
        ));
        assert!(queue.take("GET", "/v1/other").is_none());
        assert!(queue.take("GET", "/v2/account").is_some());
        assert!(queue.take("GET", "/v2/account").is_none());
    }

    #[test]
    fn a_fault_can_let_matching_requests_through_first() {
        let mut q = FaultQueue::default();
        q.push(Fault::error(Some("POST"), "/v2/domains/", 500, 1).after(2));
        assert!(q.take("POST", "/v2/domains/a.com/records").is_none());
        assert!(
            q.take("GET", "/v2/domains/a.com/records").is_none(),
            "not a match"
        );
        assert!(q.take("POST", "/v2/domains/a.com/records").is_none());
        assert!(q.take("POST", "/v2/domains/a.com/records").is_some());
        assert!(
            q.take("POST", "/v2/domains/a.com/records").is_none(),
            "used up"
        );
    }

    #[test]
    fn zero_times_never_fires() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::lose_response(None, "/", 0));
        assert!(queue.take("GET", "/v2/account").is_none());
    }
}
