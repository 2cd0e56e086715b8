//! A thin typed client of Cloudflare's API (`https://api.cloudflare.com/client/v4`), written
//! against Cloudflare's published OpenAPI document: zones, their DNS records, and the token
//! check.
//!
//! Every answer is the envelope `{success, errors: [{code, message}], messages, result}`, and
//! the envelope decides, not the status: an answer with `success: false` is a failure even
//! when it comes with a 200. Listings add `result_info {page, per_page, count, total_count}`
//! and are paged with `page` and `per_page`; a listing reads pages until one comes back short.

use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// Zones asked for per page: the most `GET /zones` takes (its `per_page` is 5 to 50).
pub const ZONES_PER_PAGE: usize = 50;

/// DNS records asked for per page (`GET .../dns_records` defaults to 100).
pub const RECORDS_PER_PAGE: usize = 100;

/// A zone (`zones_zone`); the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// `initializing`, `pending`, `active` or `moved`. The document's zone schema has no
    /// `status` (it is only a filter of `GET /zones`), but Cloudflare sends it.
    pub status: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireZone {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl Zone {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireZone::deserialize(&raw).map_err(|e| protocol(format!("zone: {e}")))?;
        Ok(Self {
            id: w.id,
            name: w.name.unwrap_or_default(),
            status: w.status,
            raw,
        })
    }
}

/// The body of `POST /zones/{zone_id}/dns_records` (`dns-records_dns-record`) as StackDock
/// sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRecord {
    #[serde(rename = "type")]
    pub kind: String,
    /// The full name: `www.example.com`, or `example.com` for the apex.
    pub name: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied: Option<bool>,
}

/// A record of a zone.
#[derive(Clone, Debug)]
pub struct DnsRecord {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub content: String,
    pub raw: Value,
}

impl DnsRecord {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let text = |k: &str| raw[k].as_str().unwrap_or_default().to_string();
        if text("id").is_empty() {
            return Err(protocol("dns record without `id`".into()));
        }
        Ok(Self {
            id: text("id"),
            kind: text("type"),
            name: text("name"),
            content: text("content"),
            raw,
        })
    }

    /// Whether this is the record `wanted` asks for.
    pub fn is(&self, wanted: &CreateRecord) -> bool {
        self.kind.eq_ignore_ascii_case(&wanted.kind)
            && self.name.eq_ignore_ascii_case(&wanted.name)
            && self.content == wanted.content
    }
}

fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::Cloudflare,
        detail,
    }
}

/// The first of the envelope's `errors`, as (code, message); several are joined.
fn envelope_errors(body: &Value) -> Option<(String, String)> {
    let errors = body["errors"].as_array().filter(|e| !e.is_empty())?;
    let code = match &errors[0]["code"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return None,
    };
    let message = errors
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some((code, message))
}

/// Cloudflare's failure envelope: `{"success": false, "errors": [{"code": 7003, "message":
/// "..."}], "messages": [], "result": null}`. The status names the error when the body has
/// none.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    match envelope_errors(body) {
        Some((code, message)) if !message.is_empty() => (code, message),
        Some((code, _)) => (code, format!("HTTP {status}")),
        None => (status.to_string(), format!("HTTP {status}")),
    }
}

/// The envelope of a 2xx answer: its `result` when `success` is true; a 2xx saying
/// `success: false` is a refusal like any other.
fn result_of(resp: ApiResponse) -> Result<(Value, Value), DockError> {
    match resp.body["success"].as_bool() {
        Some(true) => {
            let mut body = resp.body;
            Ok((body["result"].take(), body["result_info"].take()))
        }
        Some(false) => {
            let (code, message) = read_error(resp.status, &resp.body);
            Err(DockError::Provider(ProviderError {
                provider: Provider::Cloudflare,
                status: resp.status,
                code,
                message,
                request_id: resp.request_id,
            }))
        }
        None => Err(protocol(format!(
            "an answer without the `success` of Cloudflare's envelope (HTTP {})",
            resp.status
        ))),
    }
}

/// `Ok(None)` for a 404, the error otherwise.
fn absent<T>(result: Result<T, DockError>) -> Result<Option<T>, DockError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a listing page of `got` items asked `per_page` at a time is its last.
fn last_page(got: usize, per_page: usize, page: usize, info: &Value) -> bool {
    let total = info["total_count"].as_u64().map(|n| n as usize);
    got < per_page || total.is_some_and(|t| page * per_page >= t)
}

fn array(result: Value, what: &str) -> Result<Vec<Value>, DockError> {
    match result {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(protocol(format!("{what} listing is not an array"))),
    }
}

pub struct CloudflareApi {
    http: HttpSession,
    account_id: String,
}

impl CloudflareApi {
    pub fn new(http: HttpSession, account_id: String) -> Self {
        Self { http, account_id }
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<(Value, Value), DockError> {
        result_of(self.http.get(path, query).await?)
    }

    /// `GET /user/tokens/verify`: whether Cloudflare takes the token, and that it is active.
    pub async fn verify_token(&self) -> Result<(), DockError> {
        let (result, _) = self.get("/user/tokens/verify", &[]).await?;
        match result["status"].as_str() {
            Some("active") | None => Ok(()),
            Some(status) => Err(DockError::Provider(ProviderError {
                provider: Provider::Cloudflare,
                status: 200,
                code: "token_not_active".into(),
                message: format!("the API token is {status}"),
                request_id: None,
            })),
        }
    }

    /// `POST /zones` with `{name, account: {id}}`, once: see [`Idempotence::Once`].
    pub async fn create_zone(&self, name: &str, attempt: u32) -> Result<Zone, DockError> {
        let body = json!({ "name": name, "account": { "id": self.account_id } });
        let resp = self.http.post_once("/zones", &body, attempt).await?;
        Zone::from_value(result_of(resp)?.0)
    }

    /// `GET /zones/{zone_id}`; `None` if Cloudflare has no such zone.
    pub async fn get_zone(&self, id: &str) -> Result<Option<Zone>, DockError> {
        absent(self.get(&format!("/zones/{id}"), &[]).await)?
            .map(|(result, _)| Zone::from_value(result))
            .transpose()
    }

    /// The account's zones (`GET /zones?account.id=`), page by page; only those named `name`
    /// when it is given.
    pub async fn list_zones(&self, name: Option<&str>) -> Result<Vec<Zone>, DockError> {
        let mut zones = Vec::new();
        for page in 1.. {
            let mut query = vec![
                ("account.id", self.account_id.clone()),
                ("page", page.to_string()),
                ("per_page", ZONES_PER_PAGE.to_string()),
            ];
            if let Some(name) = name {
                query.push(("name", name.to_string()));
            }
            let (result, info) = self.get("/zones", &query).await?;
            let batch = array(result, "zone")?;
            let got = batch.len();
            for raw in batch {
                zones.push(Zone::from_value(raw)?);
            }
            if last_page(got, ZONES_PER_PAGE, page, &info) {
                break;
            }
        }
        Ok(zones)
    }

    /// The zone named exactly `name` in the account.
    pub async fn find_zone(&self, name: &str) -> Result<Option<Zone>, DockError> {
        Ok(self
            .list_zones(Some(name))
            .await?
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(name)))
    }

    /// `DELETE /zones/{zone_id}`, which deletes its records; a zone already gone counts as
    /// deleted.
    pub async fn delete_zone(&self, id: &str) -> Result<(), DockError> {
        let resp = absent(self.http.delete(&format!("/zones/{id}")).await)?;
        resp.map(result_of).transpose().map(drop)
    }

    /// `GET /zones/{zone_id}/dns_records`, page by page; `None` if the zone is gone.
    pub async fn list_records(&self, zone_id: &str) -> Result<Option<Vec<DnsRecord>>, DockError> {
        let mut records = Vec::new();
        for page in 1.. {
            let query = [
                ("page", page.to_string()),
                ("per_page", RECORDS_PER_PAGE.to_string()),
            ];
            let Some((result, info)) = absent(
                self.get(&format!("/zones/{zone_id}/dns_records"), &query)
                    .await,
            )?
            else {
                return Ok(None);
            };
            let batch = array(result, "dns record")?;
            let got = batch.len();
            for raw in batch {
                records.push(DnsRecord::from_value(raw)?);
            }
            if last_page(got, RECORDS_PER_PAGE, page, &info) {
                break;
            }
        }
        Ok(Some(records))
    }

    /// `POST /zones/{zone_id}/dns_records`, once.
    pub async fn create_record(
        &self,
        zone_id: &str,
        record: &CreateRecord,
        attempt: u32,
    ) -> Result<DnsRecord, DockError> {
        let body = serde_json::to_value(record).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("/zones/{zone_id}/dns_records"), &body, attempt)
            .await?;
        DnsRecord::from_value(result_of(resp)?.0)
    }

    /// `DELETE /zones/{zone_id}/dns_records/{dns_record_id}`; gone counts as deleted.
    pub async fn delete_record(&self, zone_id: &str, id: &str) -> Result<(), DockError> {
        let resp = absent(
            self.http
                .delete(&format!("/zones/{zone_id}/dns_records/{id}"))
                .await,
        )?;
        resp.map(result_of).transpose().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_cloudflares_code_and_words() {
        let body = json!({"success": false, "errors": [{"code": 1061, "message": "already exists"}],
                          "messages": [], "result": null});
        assert_eq!(
            read_error(400, &body),
            ("1061".to_string(), "already exists".to_string())
        );
        assert_eq!(
            read_error(502, &Value::Null),
            ("502".to_string(), "HTTP 502".to_string())
        );
    }

    #[test]
    fn a_success_false_answer_is_a_failure_whatever_its_status() {
        let refused = result_of(ApiResponse {
            status: 200,
            body: json!({"success": false, "errors": [{"code": 1003, "message": "bad name"}],
                         "messages": [], "result": null}),
            request_id: None,
        })
        .unwrap_err();
        assert_eq!(refused.code(), "1003");
        let (result, _) = result_of(ApiResponse {
            status: 200,
            body: json!({"success": true, "errors": [], "messages": [], "result": {"id": "z"}}),
            request_id: None,
        })
        .unwrap();
        assert_eq!(result["id"], "z");
        assert!(
            result_of(ApiResponse {
                status: 200,
                body: json!({"result": {}}),
                request_id: None
            })
            .is_err()
        );
    }
}
