//! A thin typed client of Netlify's API (`https://api.netlify.com/api/v1`), written against
//! Netlify's published Swagger 2.0 document: sites, file-digest deploys and their uploads,
//! DNS zones and records, the current user. Errors are `{code, message}`; lists are bare
//! arrays paged with `page` and `per_page`, with no paging headers documented, so a listing
//! reads pages until one comes back short.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// How many items a listing asks for per page.
pub const PER_PAGE: usize = 100;

/// The fields of a site StackDock reads; the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub ssl_url: Option<String>,
    /// The state of the deploy the site serves, if it serves one.
    pub published_state: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireSite {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    ssl_url: Option<String>,
    #[serde(default)]
    published_deploy: Option<WireState>,
}

#[derive(Deserialize)]
struct WireState {
    #[serde(default)]
    state: Option<String>,
}

/// Fields of a site that carry credentials: the site's password, its deploy hook URL (which
/// deploys whoever holds it) and the hooks' access token. Dropped as an answer is read.
const SITE_SECRETS: &[&str] = &["password", "deploy_hook", "default_hooks_data"];

/// Fields of a deploy that carry credentials.
const DEPLOY_SECRETS: &[&str] = &["skew_protection_token"];

/// `value` without the fields named in `secrets` (and its published deploy without the
/// deploy's).
fn without(mut value: Value, secrets: &[&str]) -> Value {
    if let Value::Object(map) = &mut value {
        for key in secrets {
            map.remove(*key);
        }
        if let Some(Value::Object(deploy)) = map.get_mut("published_deploy") {
            for key in DEPLOY_SECRETS {
                deploy.remove(*key);
            }
        }
    }
    value
}

impl Site {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let raw = without(raw, SITE_SECRETS);
        let w = WireSite::deserialize(&raw).map_err(|e| protocol(format!("site: {e}")))?;
        Ok(Self {
            id: w.id,
            name: w.name.unwrap_or_default(),
            url: w.url,
            ssl_url: w.ssl_url,
            published_state: w.published_deploy.and_then(|d| d.state),
            raw,
        })
    }
}

/// The fields of a deploy StackDock reads.
#[derive(Clone, Debug)]
pub struct Deploy {
    pub id: String,
    pub site_id: Option<String>,
    /// `new`, `preparing`, `prepared`, `uploading`, `processing`, `ready`, `error`, ...
    pub state: String,
    /// The SHA-1s of the files Netlify does not have yet: not paths.
    pub required: Vec<String>,
    pub error_message: Option<String>,
    pub ssl_url: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDeploy {
    id: String,
    #[serde(default)]
    site_id: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    required: Option<Vec<String>>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    ssl_url: Option<String>,
}

impl Deploy {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let raw = without(raw, DEPLOY_SECRETS);
        let w = WireDeploy::deserialize(&raw).map_err(|e| protocol(format!("deploy: {e}")))?;
        Ok(Self {
            id: w.id,
            site_id: w.site_id,
            state: w.state.unwrap_or_default(),
            required: w.required.unwrap_or_default(),
            error_message: w.error_message,
            ssl_url: w.ssl_url,
            raw,
        })
    }
}

/// The body of `POST /sites/{site_id}/deploys` (`deployFiles`) as StackDock sends it.
#[derive(Clone, Debug, Serialize)]
pub struct CreateDeploy {
    /// `"/path"` -> SHA-1 of the contents.
    pub files: BTreeMap<String, String>,
    /// Ask Netlify to prepare the deploy in the background (`state: preparing`).
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// A DNS zone.
#[derive(Clone, Debug)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// The records, when the answer includes them.
    pub records: Option<Vec<DnsRecord>>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireZone {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    records: Option<Vec<Value>>,
}

impl Zone {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireZone::deserialize(&raw).map_err(|e| protocol(format!("dns zone: {e}")))?;
        let records = w
            .records
            .map(|rs| rs.into_iter().map(DnsRecord::from_value).collect())
            .transpose()?;
        Ok(Self {
            id: w.id,
            name: w.name.unwrap_or_default(),
            records,
            raw,
        })
    }
}

/// The body of `POST /dns_zones/{zone_id}/dns_records` (`dnsRecordCreate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRecord {
    #[serde(rename = "type")]
    pub kind: String,
    /// The full name: `www.example.com`, or `example.com` for the apex.
    pub hostname: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A record of a zone (`dnsRecord`).
#[derive(Clone, Debug)]
pub struct DnsRecord {
    pub id: String,
    pub kind: String,
    pub hostname: String,
    pub value: String,
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
            hostname: text("hostname"),
            value: text("value"),
            raw,
        })
    }

    /// Whether this is the record `wanted` asks for.
    pub fn is(&self, wanted: &CreateRecord) -> bool {
        self.kind.eq_ignore_ascii_case(&wanted.kind)
            && self.hostname.eq_ignore_ascii_case(&wanted.hostname)
            && self.value == wanted.value
    }
}

fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::Netlify,
        detail,
    }
}

/// Netlify's error body (`error`): `{"code": 404, "message": "Not Found"}`, `message`
/// required. The code is a number, often the status; the status names it when absent.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    let code = match &body["code"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => status.to_string(),
    };
    let message = body["message"]
        .as_str()
        .or_else(|| body.as_str())
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    (code, message)
}

/// `Ok(None)` for a 404, the error otherwise.
fn absent<T>(result: Result<T, DockError>) -> Result<Option<T>, DockError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A bare array answer.
fn items(body: Value, what: &str) -> Result<Vec<Value>, DockError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(protocol(format!("{what} listing is not an array"))),
    }
}

pub struct NetlifyApi {
    http: HttpSession,
}

impl NetlifyApi {
    pub fn new(http: HttpSession) -> Self {
        Self { http }
    }

    /// `GET /user`: whether Netlify takes the key.
    pub async fn current_user(&self) -> Result<Value, DockError> {
        Ok(self.http.get("/user", &[]).await?.body)
    }

    /// `POST /sites` with `{name}`, once: see [`Idempotence::Once`].
    pub async fn create_site(&self, name: &str, attempt: u32) -> Result<Site, DockError> {
        let resp = self
            .http
            .post_once("/sites", &json!({ "name": name }), attempt)
            .await?;
        Site::from_value(resp.body)
    }

    /// `GET /sites/{site_id}`; `None` if Netlify has no such site.
    pub async fn get_site(&self, id: &str) -> Result<Option<Site>, DockError> {
        absent(self.http.get(&format!("/sites/{id}"), &[]).await)?
            .map(|r| Site::from_value(r.body))
            .transpose()
    }

    /// The site named exactly `name`. `GET /sites?name=` matches by search, so the answer is
    /// filtered to the exact name.
    pub async fn find_site(&self, name: &str) -> Result<Option<Site>, DockError> {
        let query = [
            ("name", name.to_string()),
            ("filter", "all".to_string()),
            ("page", "1".to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
        let body = self.http.get("/sites", &query).await?.body;
        for raw in items(body, "site")? {
            let site = Site::from_value(raw)?;
            if site.name == name {
                return Ok(Some(site));
            }
        }
        Ok(None)
    }

    /// Every site the key reaches (`GET /sites`, page by page).
    pub async fn list_sites(&self) -> Result<Vec<Site>, DockError> {
        let mut sites = Vec::new();
        for page in 1.. {
            let query = [
                ("filter", "all".to_string()),
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            let batch = items(self.http.get("/sites", &query).await?.body, "site")?;
            let short = batch.len() < PER_PAGE;
            for raw in batch {
                sites.push(Site::from_value(raw)?);
            }
            if short {
                break;
            }
        }
        Ok(sites)
    }

    /// `DELETE /sites/{site_id}`, which deletes its deploys too; a site already gone counts
    /// as deleted.
    pub async fn delete_site(&self, id: &str) -> Result<(), DockError> {
        absent(self.http.delete(&format!("/sites/{id}")).await).map(drop)
    }

    /// `POST /sites/{site_id}/deploys` with the file digests, sent once: repeating it would
    /// make a second deploy of the site, so a lost answer is settled by looking for the
    /// site's deploy.
    pub async fn create_deploy(
        &self,
        site_id: &str,
        req: &CreateDeploy,
        attempt: u32,
    ) -> Result<Deploy, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("/sites/{site_id}/deploys"), &body, attempt)
            .await?;
        Deploy::from_value(resp.body)
    }

    /// `GET /deploys/{deploy_id}`; `None` if it is gone (with its site).
    pub async fn get_deploy(&self, id: &str) -> Result<Option<Deploy>, DockError> {
        absent(self.http.get(&format!("/deploys/{id}"), &[]).await)?
            .map(|r| Deploy::from_value(r.body))
            .transpose()
    }

    /// The newest deploy of a site (`GET /sites/{site_id}/deploys`, one a page).
    pub async fn latest_deploy(&self, site_id: &str) -> Result<Option<Deploy>, DockError> {
        let query = [("page", "1".to_string()), ("per_page", "1".to_string())];
        let Some(resp) = absent(
            self.http
                .get(&format!("/sites/{site_id}/deploys"), &query)
                .await,
        )?
        else {
            return Ok(None);
        };
        items(resp.body, "deploy")?
            .into_iter()
            .next()
            .map(Deploy::from_value)
            .transpose()
    }

    /// `PUT /deploys/{deploy_id}/files/{path}` with the contents; `path` starts with `/`.
    /// Uploading the same file again replaces it with itself, so it may be repeated.
    pub async fn upload_file(
        &self,
        deploy_id: &str,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), DockError> {
        let encoded: String = path
            .split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/");
        self.http
            .send_bytes(
                Method::PUT,
                &format!("/deploys/{deploy_id}/files{encoded}"),
                &[("size", bytes.len().to_string())],
                bytes,
            )
            .await
            .map(drop)
    }

    /// `POST /deploys/{deploy_id}/cancel`. A deploy gone, or already finished (Netlify
    /// refuses to cancel it), needs no cancelling.
    pub async fn cancel_deploy(&self, id: &str) -> Result<(), DockError> {
        match self
            .http
            .send(
                Method::POST,
                &format!("/deploys/{id}/cancel"),
                &[],
                None,
                Idempotence::Repeatable,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(DockError::Provider(p)) if matches!(p.status, 404 | 409 | 422) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /dns_zones` with `{name}`, once.
    pub async fn create_zone(&self, name: &str, attempt: u32) -> Result<Zone, DockError> {
        let resp = self
            .http
            .post_once("/dns_zones", &json!({ "name": name }), attempt)
            .await?;
        Zone::from_value(resp.body)
    }

    /// `GET /dns_zones/{zone_id}`.
    pub async fn get_zone(&self, id: &str) -> Result<Option<Zone>, DockError> {
        absent(self.http.get(&format!("/dns_zones/{id}"), &[]).await)?
            .map(|r| Zone::from_value(r.body))
            .transpose()
    }

    /// `GET /dns_zones`: every zone the key reaches, in one answer (the spec pages nothing
    /// here).
    pub async fn list_zones(&self) -> Result<Vec<Zone>, DockError> {
        let body = self.http.get("/dns_zones", &[]).await?.body;
        items(body, "dns zone")?
            .into_iter()
            .map(Zone::from_value)
            .collect()
    }

    /// `DELETE /dns_zones/{zone_id}`; a zone already gone counts as deleted.
    pub async fn delete_zone(&self, id: &str) -> Result<(), DockError> {
        absent(self.http.delete(&format!("/dns_zones/{id}")).await).map(drop)
    }

    /// `GET /dns_zones/{zone_id}/dns_records`; `None` if the zone is gone.
    pub async fn list_records(&self, zone_id: &str) -> Result<Option<Vec<DnsRecord>>, DockError> {
        let Some(resp) = absent(
            self.http
                .get(&format!("/dns_zones/{zone_id}/dns_records"), &[])
                .await,
        )?
        else {
            return Ok(None);
        };
        items(resp.body, "dns record")?
            .into_iter()
            .map(DnsRecord::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `POST /dns_zones/{zone_id}/dns_records`, once.
    pub async fn create_record(
        &self,
        zone_id: &str,
        record: &CreateRecord,
        attempt: u32,
    ) -> Result<DnsRecord, DockError> {
        let body = serde_json::to_value(record).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("/dns_zones/{zone_id}/dns_records"), &body, attempt)
            .await?;
        DnsRecord::from_value(resp.body)
    }

    /// `DELETE /dns_zones/{zone_id}/dns_records/{dns_record_id}`; gone counts as deleted.
    pub async fn delete_record(&self, zone_id: &str, id: &str) -> Result<(), DockError> {
        absent(
            self.http
                .delete(&format!("/dns_zones/{zone_id}/dns_records/{id}"))
                .await,
        )
        .map(drop)
    }
}

/// Percent-encodes one path segment.
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_answers_are_dropped_as_they_are_read() {
        let site = Site::from_value(json!({
            "id": "s1", "name": "n", "password": "hunter2",
            "deploy_hook": "https://api.netlify.com/hooks/secret",
            "default_hooks_data": {"access_token": "tok"},
            "published_deploy": {"id": "d1", "state": "ready", "skew_protection_token": "skew"},
        }))
        .unwrap();
        let text = site.raw.to_string();
        for secret in ["hunter2", "hooks/secret", "tok\"", "skew\""] {
            assert!(!text.contains(secret), "{secret} kept: {text}");
        }
        assert_eq!(site.published_state.as_deref(), Some("ready"));
        let deploy =
            Deploy::from_value(json!({"id": "d1", "skew_protection_token": "skew"})).unwrap();
        assert!(!deploy.raw.to_string().contains("skew\""));
    }

    #[test]
    fn errors_keep_netlifys_code_and_words() {
        assert_eq!(
            read_error(
                422,
                &json!({"code": 422, "message": "name: must be unique"})
            ),
            ("422".to_string(), "name: must be unique".to_string())
        );
        assert_eq!(
            read_error(500, &json!({"message": "boom"})),
            ("500".to_string(), "boom".to_string())
        );
        assert_eq!(
            read_error(502, &Value::Null),
            ("502".to_string(), "HTTP 502".to_string())
        );
    }
}
