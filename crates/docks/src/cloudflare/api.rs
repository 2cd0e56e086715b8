//! A thin typed client of Cloudflare's API (`https://api.cloudflare.com/client/v4`), written
//! against Cloudflare's published OpenAPI document: zones, their DNS records, the token check,
//! and Pages projects with their deployments.
//!
//! The document describes a deployment's create only as `multipart/form-data` with a
//! `branch`. How the files of a direct upload reach Cloudflare comes from Cloudflare's own
//! CLI, wrangler (`packages/wrangler/src/pages/upload.ts` and
//! `packages/wrangler/src/api/pages/deploy.ts` in `cloudflare/workers-sdk`): an upload token
//! for the project, then `/pages/assets/check-missing`, `/pages/assets/upload` and
//! `/pages/assets/upsert-hashes` with that token as the bearer, then the deployment with a
//! `manifest` part. Each call below says where it comes from.
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

/// Pages projects asked for per page. The document gives `GET .../pages/projects` no paging;
/// Cloudflare's API pages it with `page` and `per_page` and answers 10 a page.
pub const PROJECTS_PER_PAGE: usize = 10;

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

    /// Whether this is the record `wanted` asks for, as Cloudflare may write it back: names
    /// and host names in any case and with or without the root's dot, a TXT value quoted,
    /// an address in another of its spellings.
    pub fn is(&self, wanted: &CreateRecord) -> bool {
        self.kind.eq_ignore_ascii_case(&wanted.kind)
            && same_host(&self.name, &wanted.name)
            && same_content(&wanted.kind, &self.content, &wanted.content)
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether two contents of a record of `kind` say the same.
fn same_content(kind: &str, a: &str, b: &str) -> bool {
    match kind.to_ascii_uppercase().as_str() {
        "TXT" => a.trim_matches('"') == b.trim_matches('"'),
        "A" | "AAAA" => match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        "CNAME" | "MX" | "NS" | "PTR" => same_host(a, b),
        _ => a == b,
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

/// A 2xx to a delete: done, unless its body says `success: false`. The document gives some
/// deletes' answers no envelope (a DNS record's is `{result: {id}}`), so a missing `success`
/// is not taken for an unreadable answer: the delete happened.
fn deleted(resp: ApiResponse) -> Result<(), DockError> {
    if resp.body["success"].as_bool() == Some(false) {
        return result_of(resp).map(drop);
    }
    Ok(())
}

/// `Ok(None)` for a 404, the error otherwise.
fn absent<T>(result: Result<T, DockError>) -> Result<Option<T>, DockError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether page `page` of a listing, which held `got` items of which `new` were not on an
/// earlier page, asked `asked` at a time, is its last. The page size is the one the answer
/// gives (`result_info.per_page`; a server may serve fewer than asked) and its page count
/// ends the walk when it gives one. A page that adds nothing new ends it too: a server that
/// ignores `page` would otherwise be walked for ever.
fn last_page(got: usize, new: usize, asked: usize, page: usize, info: &Value) -> bool {
    let per_page = info["per_page"]
        .as_u64()
        .map(|n| n as usize)
        .filter(|&n| n > 0)
        .unwrap_or(asked);
    let total = info["total_count"].as_u64().map(|n| n as usize);
    let pages = info["total_pages"].as_u64().map(|n| n as usize);
    new == 0
        || got < per_page
        || pages.is_some_and(|p| page >= p)
        || total.is_some_and(|t| page * per_page >= t)
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

    /// A `DELETE` with `{}` for its body: the document marks a JSON body required on the
    /// deletes of a DNS record and of a Pages project (Cloudflare takes one without, a
    /// server holding to the document would not).
    async fn delete_with_body(&self, path: &str) -> Result<ApiResponse, DockError> {
        self.http
            .send(
                reqwest::Method::DELETE,
                path,
                &[],
                Some(&json!({})),
                Idempotence::Repeatable,
            )
            .await
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
        // Offset pages shift under zones made or deleted during the walk: each is kept once.
        let mut zones: Vec<Zone> = Vec::new();
        let mut ids = std::collections::HashSet::new();
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
            let mut new = 0;
            for raw in batch {
                let zone = Zone::from_value(raw)?;
                if ids.insert(zone.id.clone()) {
                    zones.push(zone);
                    new += 1;
                }
            }
            if last_page(got, new, ZONES_PER_PAGE, page, &info) {
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
        resp.map(deleted).transpose().map(drop)
    }

    /// `GET /zones/{zone_id}/dns_records`, page by page; `None` if the zone is gone.
    pub async fn list_records(&self, zone_id: &str) -> Result<Option<Vec<DnsRecord>>, DockError> {
        self.list_records_where(zone_id, &[]).await
    }

    /// The zone's records of `kind` named `name` (a full name), as [`Self::list_records`]
    /// lists them (`type` and `name` are exact filters).
    pub async fn list_records_named(
        &self,
        zone_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<Vec<DnsRecord>>, DockError> {
        let filter = [("type", kind.to_string()), ("name", name.to_string())];
        self.list_records_where(zone_id, &filter).await
    }

    async fn list_records_where(
        &self,
        zone_id: &str,
        filter: &[(&'static str, String)],
    ) -> Result<Option<Vec<DnsRecord>>, DockError> {
        // As with zones: a record made or deleted during the walk may shift onto a second page.
        let mut records: Vec<DnsRecord> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for page in 1.. {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", RECORDS_PER_PAGE.to_string()),
            ];
            query.extend(filter.iter().cloned());
            let Some((result, info)) = absent(
                self.get(&format!("/zones/{zone_id}/dns_records"), &query)
                    .await,
            )?
            else {
                return Ok(None);
            };
            let batch = array(result, "dns record")?;
            let got = batch.len();
            let mut new = 0;
            for raw in batch {
                let record = DnsRecord::from_value(raw)?;
                if ids.insert(record.id.clone()) {
                    records.push(record);
                    new += 1;
                }
            }
            if last_page(got, new, RECORDS_PER_PAGE, page, &info) {
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
            self.delete_with_body(&format!("/zones/{zone_id}/dns_records/{id}"))
                .await,
        )?;
        resp.map(deleted).transpose().map(drop)
    }
}

/// A Pages project (`pages_projects`); the whole answer is kept in `raw`. Its name is its
/// identity in every path (`.../pages/projects/{project_name}`).
#[derive(Clone, Debug)]
pub struct PagesProject {
    pub id: String,
    pub name: String,
    /// `<name>.pages.dev`, where its production deployment is served.
    pub subdomain: Option<String>,
    /// The newest deployment, as the project shows it (listings included).
    pub latest_deployment: Option<PagesDeployment>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireProject {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    subdomain: Option<String>,
}

impl PagesProject {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        // The document gives the project listing's items the deployment schema
        // (`pages_deployments`: the project's newest deployment, naming its project in
        // `project_name` and `project_id`), where a project read alone is `pages_projects`.
        // Either is read.
        if raw.get("name").is_none()
            && let Some(name) = raw["project_name"].as_str()
        {
            return Ok(Self {
                id: raw["project_id"].as_str().unwrap_or_default().to_string(),
                name: name.to_string(),
                subdomain: None,
                latest_deployment: Some(PagesDeployment::from_value(raw.clone())?),
                raw,
            });
        }
        let w =
            WireProject::deserialize(&raw).map_err(|e| protocol(format!("pages project: {e}")))?;
        let latest_deployment = match &raw["latest_deployment"] {
            Value::Object(_) => Some(PagesDeployment::from_value(
                raw["latest_deployment"].clone(),
            )?),
            _ => None,
        };
        Ok(Self {
            id: w.id.unwrap_or_default(),
            name: w.name,
            subdomain: w.subdomain,
            latest_deployment,
            raw,
        })
    }
}

/// A Pages deployment (`pages_deployments`), with its stages (`pages_stage`: `name` one of
/// queued, initialize, clone_repo, build, deploy; `status` one of success, idle, active,
/// failure, canceled).
#[derive(Clone, Debug)]
pub struct PagesDeployment {
    pub id: String,
    /// Where this deployment is served (`https://<short id>.<project>.pages.dev`).
    pub url: Option<String>,
    pub stage: String,
    pub stage_status: String,
    /// The first stage that ended in `failure` or `canceled`, as (stage, status).
    pub failed: Option<(String, String)>,
    pub raw: Value,
}

impl PagesDeployment {
    pub fn from_value(raw: Value) -> Result<Self, DockError> {
        let Some(id) = raw["id"].as_str().filter(|id| !id.is_empty()) else {
            return Err(protocol("pages deployment without `id`".into()));
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let latest = &raw["latest_stage"];
        let ended_badly = |s: &Value| matches!(s["status"].as_str(), Some("failure" | "canceled"));
        let failed = std::iter::once(latest)
            .chain(raw["stages"].as_array().into_iter().flatten())
            .find(|s| ended_badly(s))
            .map(|s| (text(&s["name"]), text(&s["status"])));
        Ok(Self {
            id: id.to_string(),
            url: raw["url"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            stage: text(&latest["name"]),
            stage_status: text(&latest["status"]),
            failed,
            raw,
        })
    }

    /// Live: its last stage, `deploy`, succeeded.
    pub fn is_ready(&self) -> bool {
        self.stage == "deploy" && self.stage_status == "success"
    }

    /// Where it is, as StackDock shows a status: `build:active`, `deploy:success`.
    pub fn status(&self) -> String {
        format!("{}:{}", self.stage, self.stage_status)
    }
}

/// One asset of `POST /pages/assets/upload`, as wrangler sends it (`upload.ts`): the hash as
/// `key`, the contents in base64 as `value`, and the content type.
#[derive(Debug, Serialize)]
pub struct AssetUpload {
    pub key: String,
    pub value: String,
    pub metadata: AssetMetadata,
    pub base64: bool,
}

#[derive(Debug, Serialize)]
pub struct AssetMetadata {
    #[serde(rename = "contentType")]
    pub content_type: String,
}

impl CloudflareApi {
    fn projects_path(&self) -> String {
        format!("/accounts/{}/pages/projects", self.account_id)
    }

    /// `POST /accounts/{account_id}/pages/projects` (`pages_projects`: `name` and the
    /// `production_branch` deployments go to), once: see [`Idempotence::Once`].
    pub async fn create_project(
        &self,
        name: &str,
        production_branch: &str,
        attempt: u32,
    ) -> Result<PagesProject, DockError> {
        let body = json!({ "name": name, "production_branch": production_branch });
        let resp = self
            .http
            .post_once(&self.projects_path(), &body, attempt)
            .await?;
        PagesProject::from_value(result_of(resp)?.0)
    }

    /// `GET /accounts/{account_id}/pages/projects/{project_name}`; `None` if there is none.
    pub async fn get_project(&self, name: &str) -> Result<Option<PagesProject>, DockError> {
        let path = format!("{}/{name}", self.projects_path());
        absent(self.get(&path, &[]).await)?
            .map(|(result, _)| PagesProject::from_value(result))
            .transpose()
    }

    /// The account's projects (`GET /accounts/{account_id}/pages/projects`), page by page.
    /// The document gives this listing no paging parameters, while Cloudflare pages it: an
    /// implementation that ignores `page` answers every project each time, so a page that
    /// adds no project not already listed ends the walk (each project listed once), as do
    /// a short page, the `total_count` and the `total_pages` the answer reports.
    pub async fn list_projects(&self) -> Result<Vec<PagesProject>, DockError> {
        let mut projects: Vec<PagesProject> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for page in 1.. {
            let query = [
                ("page", page.to_string()),
                ("per_page", PROJECTS_PER_PAGE.to_string()),
            ];
            let (result, info) = self.get(&self.projects_path(), &query).await?;
            let batch = array(result, "pages project")?;
            let got = batch.len();
            let mut new = 0;
            for raw in batch {
                let project = PagesProject::from_value(raw)?;
                if names.insert(project.name.clone()) {
                    projects.push(project);
                    new += 1;
                }
            }
            if last_page(got, new, PROJECTS_PER_PAGE, page, &info) {
                break;
            }
        }
        Ok(projects)
    }

    /// `DELETE /accounts/{account_id}/pages/projects/{project_name}`, which deletes its
    /// deployments; a project already gone counts as deleted.
    pub async fn delete_project(&self, name: &str) -> Result<(), DockError> {
        let path = format!("{}/{name}", self.projects_path());
        let resp = absent(self.delete_with_body(&path).await)?;
        resp.map(deleted).transpose().map(drop)
    }

    /// `GET /accounts/{account_id}/pages/projects/{project_name}/upload-token`: the JWT the
    /// asset calls are made with. Not in the document; wrangler's `upload.ts` (`fetchJwt`)
    /// reads it from `result.jwt`. A secret: it never leaves this run.
    pub async fn upload_token(&self, project: &str) -> Result<SecretString, DockError> {
        let path = format!("{}/{project}/upload-token", self.projects_path());
        let (result, _) = self.get(&path, &[]).await?;
        result["jwt"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(SecretString::new)
            .ok_or_else(|| protocol("an upload token answer without `jwt`".into()))
    }

    /// A call of the direct upload: `POST` of `body` to `path` with the upload token as the
    /// bearer; its `result`. Each asks or stores something named by its contents, so repeating
    /// one does no harm.
    async fn asset_call(
        &self,
        jwt: &SecretString,
        path: &str,
        body: &Value,
    ) -> Result<Value, DockError> {
        let resp = self
            .http
            .with_bearer(jwt.clone())
            .send(
                reqwest::Method::POST,
                path,
                &[],
                Some(body),
                Idempotence::Repeatable,
            )
            .await?;
        Ok(result_of(resp)?.0)
    }

    /// `POST /pages/assets/check-missing` with `{hashes}` and the upload token: the hashes
    /// Cloudflare does not hold yet. Not in the document; wrangler's `upload.ts`
    /// (`getMissingHashes`).
    pub async fn missing_assets(
        &self,
        jwt: &SecretString,
        hashes: &[String],
    ) -> Result<Vec<String>, DockError> {
        let body = json!({ "hashes": hashes });
        let result = self
            .asset_call(jwt, "/pages/assets/check-missing", &body)
            .await?;
        array(result, "missing asset")?
            .into_iter()
            .map(|h| {
                h.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| protocol("a missing asset that is not a hash".into()))
            })
            .collect()
    }

    /// `POST /pages/assets/upload` with a JSON array of assets (one bucket) and the upload
    /// token. Not in the document; wrangler's `upload.ts` (`doUpload`).
    pub async fn upload_assets(
        &self,
        jwt: &SecretString,
        bucket: &[AssetUpload],
    ) -> Result<(), DockError> {
        let body = serde_json::to_value(bucket).map_err(|e| protocol(e.to_string()))?;
        self.asset_call(jwt, "/pages/assets/upload", &body)
            .await
            .map(drop)
    }

    /// `POST /pages/assets/upsert-hashes` with every hash of the deployment and the upload
    /// token, which tells Cloudflare they are in use. Not in the document; wrangler's
    /// `upload.ts` (`doUpsertHashes`).
    pub async fn upsert_hashes(
        &self,
        jwt: &SecretString,
        hashes: &[String],
    ) -> Result<(), DockError> {
        let body = json!({ "hashes": hashes });
        self.asset_call(jwt, "/pages/assets/upsert-hashes", &body)
            .await
            .map(drop)
    }

    /// `POST /accounts/{account_id}/pages/projects/{project_name}/deployments` as
    /// `multipart/form-data`: the document's `branch`, and the `manifest` part wrangler adds
    /// (`api/pages/deploy.ts`: `formData.append("manifest", JSON.stringify(manifest))`), a
    /// JSON object from each file's `/path` to its asset hash, and the site's configuration
    /// files (`_headers`, `_redirects`) as file parts of their own name, as wrangler sends
    /// them (`formData.append("_headers", new File([_headers], "_headers"))`). Once: see
    /// [`Idempotence::Once`].
    pub async fn create_deployment(
        &self,
        project: &str,
        manifest: &std::collections::BTreeMap<String, String>,
        branch: &str,
        config_files: &[(&str, Vec<u8>)],
        attempt: u32,
    ) -> Result<PagesDeployment, DockError> {
        let manifest = serde_json::to_string(manifest).map_err(|e| protocol(e.to_string()))?;
        let fields = [("manifest", manifest), ("branch", branch.to_string())];
        let path = format!("{}/{project}/deployments", self.projects_path());
        let resp = self
            .http
            .post_form_once(&path, &fields, config_files, attempt)
            .await?;
        PagesDeployment::from_value(result_of(resp)?.0)
    }

    /// `GET .../pages/projects/{project_name}/deployments/{deployment_id}`; `None` if the
    /// deployment or its project is gone.
    pub async fn get_deployment(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<PagesDeployment>, DockError> {
        let path = format!("{}/{project}/deployments/{id}", self.projects_path());
        absent(self.get(&path, &[]).await)?
            .map(|(result, _)| PagesDeployment::from_value(result))
            .transpose()
    }

    /// The newest deployment of a project (`GET .../deployments`, newest first, first page);
    /// `None` if it has none or is gone.
    pub async fn latest_deployment(
        &self,
        project: &str,
    ) -> Result<Option<PagesDeployment>, DockError> {
        let path = format!("{}/{project}/deployments", self.projects_path());
        let Some((result, _)) = absent(self.get(&path, &[]).await)? else {
            return Ok(None);
        };
        array(result, "pages deployment")?
            .into_iter()
            .next()
            .map(PagesDeployment::from_value)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_known_in_the_forms_cloudflare_may_write_it_back() {
        let wanted = |kind: &str, name: &str, content: &str| CreateRecord {
            kind: kind.into(),
            name: name.into(),
            content: content.into(),
            ttl: None,
            priority: None,
            proxied: None,
        };
        let held = |kind: &str, name: &str, content: &str| DnsRecord {
            id: "r".into(),
            kind: kind.into(),
            name: name.into(),
            content: content.into(),
            raw: Value::Null,
        };
        let txt = wanted("TXT", "_stackdock.example.com", "sd-1");
        assert!(held("TXT", "_stackdock.example.com", "\"sd-1\"").is(&txt));
        assert!(held("txt", "_StackDock.Example.com.", "sd-1").is(&txt));
        assert!(!held("TXT", "_stackdock.example.com", "sd-2").is(&txt));
        let aaaa = wanted("AAAA", "www.example.com", "2001:db8::1");
        assert!(held("AAAA", "www.example.com", "2001:0db8:0000::0001").is(&aaaa));
        assert!(!held("AAAA", "www.example.com", "2001:db8::2").is(&aaaa));
        let cname = wanted("CNAME", "www.example.com", "Target.example.net");
        assert!(held("CNAME", "www.example.com", "target.example.net.").is(&cname));
        assert!(!held("A", "www.example.com", "target.example.net").is(&cname));
    }

    #[test]
    fn a_walk_ends_at_the_answers_own_page_size_and_count_and_at_a_page_with_nothing_new() {
        let info = |v: Value| v;
        // A server that serves 20 when 50 were asked: a full page of its size goes on.
        assert!(!last_page(20, 20, 50, 1, &info(json!({"per_page": 20}))));
        assert!(last_page(7, 7, 50, 2, &info(json!({"per_page": 20}))));
        // Its page count ends the walk, and so does its total.
        assert!(last_page(
            20,
            20,
            20,
            3,
            &info(json!({"per_page": 20, "total_pages": 3}))
        ));
        assert!(!last_page(
            20,
            20,
            20,
            2,
            &info(json!({"per_page": 20, "total_pages": 3}))
        ));
        assert!(last_page(
            20,
            20,
            20,
            2,
            &info(json!({"per_page": 20, "total_count": 40}))
        ));
        // Without either, a full page goes on; one that only repeats what came (a server
        // ignoring `page`), or an empty one, ends it.
        assert!(!last_page(50, 50, 50, 1, &Value::Null));
        assert!(last_page(50, 0, 50, 2, &Value::Null));
        assert!(last_page(0, 0, 50, 2, &Value::Null));
    }

    #[test]
    fn a_project_listed_in_the_documents_deployment_shape_is_read() {
        let item = json!({
            "id": "dep-1", "project_id": "proj-1", "project_name": "site",
            "url": "https://abc.site.pages.dev",
            "latest_stage": {"name": "deploy", "status": "success"},
        });
        let project = PagesProject::from_value(item).expect("read");
        assert_eq!(
            (project.id.as_str(), project.name.as_str()),
            ("proj-1", "site")
        );
        let deployment = project.latest_deployment.expect("its deployment");
        assert_eq!(deployment.id, "dep-1");
        assert_eq!(deployment.stage, "deploy");
        // A project read alone keeps its own shape.
        let alone = json!({"id": "proj-2", "name": "other", "subdomain": "other.pages.dev"});
        let project = PagesProject::from_value(alone).expect("read");
        assert_eq!(
            (project.id.as_str(), project.name.as_str()),
            ("proj-2", "other")
        );
        assert!(project.latest_deployment.is_none());
    }

    #[test]
    fn a_delete_answered_without_the_envelope_is_done_unless_it_says_it_failed() {
        let answer = |body: Value| ApiResponse {
            status: 200,
            body,
            request_id: None,
        };
        assert!(deleted(answer(json!({"result": {"id": "r1"}}))).is_ok());
        assert!(deleted(answer(Value::Null)).is_ok());
        let refused = json!({"success": false, "errors": [{"code": 1000, "message": "no"}]});
        assert!(matches!(
            deleted(answer(refused)),
            Err(DockError::Provider(p)) if p.code == "1000"
        ));
    }

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
