//! The account's Pages projects, their deployments and the asset store of direct uploads, the
//! JSON they are shown as (the document's `pages_projects` and `pages_deployments`, inside the
//! `{success, errors, messages, result}` envelope), and the handlers.
//!
//! The project and deployment paths are the document's. The asset calls are not in it; they
//! are answered as Cloudflare answers its own CLI, wrangler (`pages/upload.ts`): `GET
//! .../upload-token` hands out a JWT for the project, which is the bearer of
//! `/pages/assets/check-missing` (the hashes not stored yet), `/pages/assets/upload` (a JSON
//! array of `{key, value, metadata: {contentType}, base64}`) and `/pages/assets/upsert-hashes`.
//! The store is the account's: contents uploaded for one project are not asked for again by
//! another. A deployment is `multipart/form-data` with a `manifest` (`{"/path": hash}`), a
//! `branch` and the site's `_headers` and `_redirects` as parts of their own (kept, not
//! served), and is refused when the manifest names a hash never uploaded, or one that is not
//! wrangler's hash of what was uploaded under it (BLAKE3 of the base64 contents and the path's
//! extension, 32 hex digits).
//!
//! A deployment's stage is worked out when it is read, from the time it was created:
//! `queued` for `queue_after`, `build` for `build_after` (or while the test holds
//! deployments), then `deploy` with `success`; or `build` with `failure` when the test made
//! deployments fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::world::{envelope, listing};
use super::{ACCOUNT_ID, Cloud, codes, error};
use crate::front_door::{ApiError, bearer_token};
use crate::multipart;

/// The stages of a deployment, in order (`pages_stage.name`).
const STAGES: [&str; 5] = ["queued", "initialize", "clone_repo", "build", "deploy"];

/// Cloudflare's limit on a project's name.
const MAX_NAME: usize = 58;

/// A page of projects when the request names no size.
const DEFAULT_PER_PAGE: usize = 10;

pub(crate) struct Pages {
    projects: BTreeMap<String, Project>,
    deployments: BTreeMap<String, Deployment>,
    /// The account's asset store: each hash with the base64 contents uploaded under it.
    assets: HashMap<String, String>,
    /// Every hash upserted.
    upserted: HashSet<String>,
    /// Upload tokens handed out, with the project each is for.
    tokens: HashMap<String, String>,
    /// Every asset received by `/pages/assets/upload`, in order.
    uploads: Vec<String>,
    project_creates: HashMap<String, usize>,
    deployment_creates: HashMap<String, usize>,
    hold: bool,
    fail: bool,
    /// The project listing ignores `page` and `per_page` and answers every project, with no
    /// total: the listing as the document describes it (it gives it no paging parameters).
    unpaged: bool,
    next_id: u128,
    queue_after: Duration,
    build_after: Duration,
}

struct Project {
    id: String,
    name: String,
    production_branch: String,
    created: String,
}

struct Deployment {
    id: String,
    project: String,
    branch: String,
    created_at: Instant,
    created: String,
    /// When the build may finish: moved on when held deployments are released.
    built_at: Option<Instant>,
    /// Set once the deployment failed.
    failed: bool,
    /// The paths its manifest serves, and the configuration parts it came with (`_headers`,
    /// `_redirects`), by name.
    paths: Vec<String>,
    config: BTreeMap<String, String>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A path's extension as wrangler's hash takes it (Node's `extname` without the dot).
fn extension(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rfind('.') {
        Some(dot) if dot > 0 => &file[dot + 1..],
        _ => "",
    }
}

fn is_hash(h: &str) -> bool {
    h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

fn invalid(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
}

impl Pages {
    pub(crate) fn new(queue_after: Duration, build_after: Duration) -> Self {
        Self {
            projects: BTreeMap::new(),
            deployments: BTreeMap::new(),
            assets: HashMap::new(),
            upserted: HashSet::new(),
            tokens: HashMap::new(),
            uploads: Vec::new(),
            project_creates: HashMap::new(),
            deployment_creates: HashMap::new(),
            hold: false,
            fail: false,
            unpaged: false,
            next_id: rand::random::<u64>().into(),
            queue_after,
            build_after,
        }
    }

    fn new_uuid(&mut self) -> String {
        self.next_id += 1;
        let hex = format!("{:032x}", self.next_id);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    pub(crate) fn hold(&mut self, held: bool) {
        self.hold = held;
        if !held {
            let now = Instant::now();
            for d in self.deployments.values_mut() {
                if d.built_at.is_some() && !d.failed {
                    d.built_at = Some(now);
                }
            }
        }
    }

    pub(crate) fn fail_deployments(&mut self, fail: bool) {
        self.fail = fail;
    }

    pub(crate) fn list_projects_unpaged(&mut self, unpaged: bool) {
        self.unpaged = unpaged;
    }

    pub(crate) fn project_creates(&self, name: &str) -> usize {
        self.project_creates.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn deployment_creates(&self, project: &str) -> usize {
        self.deployment_creates.get(project).copied().unwrap_or(0)
    }

    pub(crate) fn uploads(&self) -> Vec<String> {
        self.uploads.clone()
    }

    pub(crate) fn stored_assets(&self) -> Vec<String> {
        let mut stored: Vec<String> = self.assets.keys().cloned().collect();
        stored.sort();
        stored
    }

    pub(crate) fn tokens(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    pub(crate) fn is_token(&self, credential: &str) -> bool {
        self.tokens.contains_key(credential)
    }

    pub(crate) fn projects(&mut self) -> Vec<Value> {
        let names: Vec<String> = self.projects.keys().cloned().collect();
        names.iter().map(|n| self.project_view(n)).collect()
    }

    /// What each deployment of `project` serves and how it is configured: its manifest's
    /// paths and its configuration parts by name, oldest first.
    pub(crate) fn deployment_contents(
        &self,
        project: &str,
    ) -> Vec<(Vec<String>, BTreeMap<String, String>)> {
        let mut ours: Vec<&Deployment> = self
            .deployments
            .values()
            .filter(|d| d.project == project)
            .collect();
        ours.sort_by_key(|d| d.created_at);
        ours.into_iter()
            .map(|d| (d.paths.clone(), d.config.clone()))
            .collect()
    }

    pub(crate) fn deployments(&mut self) -> Vec<Value> {
        let ids: Vec<String> = self.deployments.keys().cloned().collect();
        ids.iter().map(|id| self.deployment_view(id)).collect()
    }

    pub(crate) fn create_project(
        &mut self,
        name: &str,
        production_branch: &str,
    ) -> Result<Value, ApiError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !valid {
            return Err(error(
                StatusCode::BAD_REQUEST,
                codes::PAGES_INVALID_NAME,
                format!(
                    "name: {name:?} is not a valid project name (lowercase letters, digits and \
                     dashes, at most {MAX_NAME})"
                ),
            ));
        }
        if self.projects.contains_key(name) {
            return Err(error(
                StatusCode::CONFLICT,
                codes::PAGES_NAME_TAKEN,
                "A project with this name already exists. Choose a different project name.",
            ));
        }
        let id = self.new_uuid();
        self.projects.insert(
            name.to_string(),
            Project {
                id,
                name: name.to_string(),
                production_branch: production_branch.to_string(),
                created: now_text(),
            },
        );
        *self.project_creates.entry(name.to_string()).or_default() += 1;
        Ok(self.project_view(name))
    }

    /// The stage a deployment is in now (name, status), settling what time settles.
    fn stage(&mut self, id: &str) -> (usize, &'static str) {
        let (queue_after, build_after, hold, fail) =
            (self.queue_after, self.build_after, self.hold, self.fail);
        let Some(d) = self.deployments.get_mut(id) else {
            return (0, "idle");
        };
        let build = 3;
        if d.failed {
            return (build, "failure");
        }
        let now = Instant::now();
        let building_at = d.created_at + queue_after;
        if now < building_at {
            return (0, "active");
        }
        let built_at = *d.built_at.get_or_insert(building_at + build_after);
        if hold || now < built_at {
            return (build, "active");
        }
        if fail {
            d.failed = true;
            return (build, "failure");
        }
        (4, "success")
    }

    fn deployment_view(&mut self, id: &str) -> Value {
        let (at, status) = self.stage(id);
        let Some(d) = self.deployments.get(id) else {
            return Value::Null;
        };
        let short_id = &d.id[..8];
        let url = format!("https://{short_id}.{}.pages.dev", d.project);
        let stages: Vec<Value> = STAGES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (status, started, ended) = match i.cmp(&at) {
                    std::cmp::Ordering::Less => ("success", json!(d.created), json!(d.created)),
                    std::cmp::Ordering::Equal => (
                        status,
                        json!(d.created),
                        if status == "active" {
                            Value::Null
                        } else {
                            json!(now_text())
                        },
                    ),
                    std::cmp::Ordering::Greater => ("idle", Value::Null, Value::Null),
                };
                json!({"name": name, "status": status, "started_on": started, "ended_on": ended})
            })
            .collect();
        let production = self
            .projects
            .get(&d.project)
            .is_some_and(|p| p.production_branch == d.branch);
        json!({
            "id": d.id,
            "short_id": short_id,
            "project_id": self.projects.get(&d.project).map(|p| p.id.clone()),
            "project_name": d.project,
            "environment": if production { "production" } else { "preview" },
            "url": url,
            "created_on": d.created,
            "modified_on": d.created,
            "aliases": if production { json!([format!("https://{}.pages.dev", d.project)]) } else { Value::Null },
            "latest_stage": stages[at],
            "stages": stages,
            "deployment_trigger": {"type": "ad_hoc", "metadata": {"branch": d.branch,
                                    "commit_hash": "", "commit_message": ""}},
            "env_vars": {},
            "is_skipped": false,
            "build_config": {"build_caching": false, "build_command": "", "destination_dir": "",
                             "root_dir": "", "web_analytics_tag": null, "web_analytics_token": null},
            "source": null,
        })
    }

    /// The project's deployments, newest first.
    fn deployments_of(&self, project: &str) -> Vec<String> {
        let mut mine: Vec<&Deployment> = self
            .deployments
            .values()
            .filter(|d| d.project == project)
            .collect();
        mine.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        mine.into_iter().map(|d| d.id.clone()).collect()
    }

    fn project_view(&mut self, name: &str) -> Value {
        let latest = self.deployments_of(name).into_iter().next();
        let latest = latest.map(|id| self.deployment_view(&id));
        let Some(p) = self.projects.get(name) else {
            return Value::Null;
        };
        let config = json!({"compatibility_date": "2024-08-01", "compatibility_flags": [],
                            "env_vars": {}});
        let mut view = json!({
            "id": p.id,
            "name": p.name,
            "subdomain": format!("{}.pages.dev", p.name),
            "domains": [format!("{}.pages.dev", p.name)],
            "production_branch": p.production_branch,
            "created_on": p.created,
            "build_config": {"build_caching": false, "build_command": "", "destination_dir": "",
                             "root_dir": "", "web_analytics_tag": null, "web_analytics_token": null},
            "deployment_configs": {"preview": config, "production": config},
            "source": null,
        });
        // The document types both as an object, never null: a project that has not deployed
        // yet leaves them out.
        if let Some(latest) = latest {
            view["latest_deployment"] = latest.clone();
            view["canonical_deployment"] = latest;
        }
        view
    }

    fn mint_token(&mut self, project: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = chrono::Utc::now().timestamp() + 300;
        let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = b64.encode(
            json!({"account_id": ACCOUNT_ID, "sub": project, "max_file_count_allowed": 20000,
                   "exp": exp})
            .to_string(),
        );
        let signature = b64.encode(rand::random::<[u8; 32]>());
        let token = format!("{header}.{claims}.{signature}");
        self.tokens.insert(token.clone(), project.to_string());
        token
    }
}

type Answer = Result<Json<Value>, ApiError>;

fn account(account_id: &str) -> Result<(), ApiError> {
    if account_id == ACCOUNT_ID {
        Ok(())
    } else {
        Err(error(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED_ACCOUNT,
            format!("account_id: the token cannot reach account {account_id}"),
        ))
    }
}

fn project_missing() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        codes::PAGES_PROJECT_NOT_FOUND,
        "Project not found. The specified project name does not match any of your existing \
         projects.",
    )
}

fn deployment_missing() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        codes::PAGES_DEPLOYMENT_NOT_FOUND,
        "Deployment not found.",
    )
}

#[derive(Deserialize)]
pub(crate) struct ProjectsQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

pub(crate) async fn list_projects(
    State(cloud): State<Arc<Cloud>>,
    Path(account_id): Path<String>,
    Query(q): Query<ProjectsQuery>,
) -> Answer {
    account(&account_id)?;
    let per_page = q.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=100).contains(&per_page) {
        return Err(invalid("per_page: must be between 1 and 100"));
    }
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(invalid("page: must be at least 1"));
    }
    let mut pages = cloud.pages();
    if pages.unpaged {
        let all = pages.projects();
        let count = all.len();
        return Ok(Json(json!({
            "success": true, "errors": [], "messages": [],
            "result": all,
            "result_info": {"count": count},
        })));
    }
    Ok(listing(pages.projects(), page, per_page))
}

pub(crate) async fn create_project(
    State(cloud): State<Arc<Cloud>>,
    Path(account_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    account(&account_id)?;
    let body: Value = serde_json::from_slice(&bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("the body is not a JSON object"))?;
    let Some(name) = body["name"].as_str() else {
        return Err(invalid("name: is required"));
    };
    let branch = body["production_branch"].as_str().unwrap_or("main");
    Ok(envelope(cloud.pages().create_project(name, branch)?))
}

pub(crate) async fn get_project(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name)): Path<(String, String)>,
) -> Answer {
    account(&account_id)?;
    let mut pages = cloud.pages();
    if !pages.projects.contains_key(&name) {
        return Err(project_missing());
    }
    Ok(envelope(pages.project_view(&name)))
}

/// Deleting a project deletes its deployments.
pub(crate) async fn delete_project(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name)): Path<(String, String)>,
) -> Answer {
    account(&account_id)?;
    let mut pages = cloud.pages();
    if pages.projects.remove(&name).is_none() {
        return Err(project_missing());
    }
    pages.deployments.retain(|_, d| d.project != name);
    pages.tokens.retain(|_, p| *p != name);
    Ok(envelope(Value::Null))
}

pub(crate) async fn upload_token(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name)): Path<(String, String)>,
) -> Answer {
    account(&account_id)?;
    let mut pages = cloud.pages();
    if !pages.projects.contains_key(&name) {
        return Err(project_missing());
    }
    Ok(envelope(json!({ "jwt": pages.mint_token(&name) })))
}

/// Refuses an upload token anywhere but the asset calls, as Cloudflare does: it stands for
/// one project's uploads, not for the account.
pub(crate) async fn refuse_upload_tokens(
    State(cloud): State<Arc<Cloud>>,
    request: Request,
    next: Next,
) -> Response {
    let minted = bearer_token(request.headers()).is_some_and(|t| cloud.pages().is_token(t));
    if minted {
        return error(
            StatusCode::UNAUTHORIZED,
            codes::AUTHENTICATION,
            "Authentication error: an upload token is only for the asset calls",
        )
        .into_response();
    }
    next.run(request).await
}

/// The JSON body of an asset call, which takes only an upload token: the account's API token
/// is refused there.
fn asset_call_body(cloud: &Cloud, headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ApiError> {
    match bearer_token(headers) {
        Some(token) if cloud.pages().is_token(token) => {}
        _ => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                codes::PAGES_BAD_UPLOAD_TOKEN,
                "Invalid upload token: the asset calls take the project's upload token",
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|_| invalid("the body is not JSON"))
}

fn hashes_of(body: &Value) -> Result<Vec<String>, ApiError> {
    let Some(hashes) = body["hashes"].as_array() else {
        return Err(invalid("hashes: is required"));
    };
    hashes
        .iter()
        .map(|h| match h.as_str() {
            Some(h) if is_hash(h) => Ok(h.to_string()),
            _ => Err(invalid(format!("hashes: {h} is not an asset hash"))),
        })
        .collect()
}

pub(crate) async fn check_missing(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    let body = asset_call_body(&cloud, &headers, &bytes)?;
    let hashes = hashes_of(&body)?;
    let pages = cloud.pages();
    let missing: Vec<String> = hashes
        .into_iter()
        .filter(|h| !pages.assets.contains_key(h))
        .collect();
    Ok(envelope(json!(missing)))
}

pub(crate) async fn upload_assets(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    let body = asset_call_body(&cloud, &headers, &bytes)?;
    let Some(items) = body.as_array().filter(|a| !a.is_empty()) else {
        return Err(invalid("the body is not a non-empty array of assets"));
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut received = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (Some(key), Some(value)) = (item["key"].as_str(), item["value"].as_str()) else {
            return Err(invalid(format!("[{i}]: `key` and `value` are required")));
        };
        if !is_hash(key) {
            return Err(invalid(format!("[{i}].key: {key:?} is not an asset hash")));
        }
        if item["base64"] != true || b64.decode(value).is_err() {
            return Err(invalid(format!(
                "[{i}].value: not base64 contents marked `base64: true`"
            )));
        }
        if item["metadata"]["contentType"].as_str().is_none() {
            return Err(invalid(format!("[{i}].metadata.contentType: is required")));
        }
        received.push((key.to_string(), value.to_string()));
    }
    let mut pages = cloud.pages();
    for (key, value) in received {
        pages.uploads.push(key.clone());
        pages.assets.insert(key, value);
    }
    Ok(envelope(Value::Null))
}

pub(crate) async fn upsert_hashes(
    State(cloud): State<Arc<Cloud>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    let body = asset_call_body(&cloud, &headers, &bytes)?;
    let hashes = hashes_of(&body)?;
    cloud.pages().upserted.extend(hashes);
    Ok(envelope(Value::Null))
}

pub(crate) async fn create_deployment(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    account(&account_id)?;
    let Some(boundary) = multipart::boundary(&headers) else {
        return Err(invalid("the body must be multipart/form-data"));
    };
    let Some(fields) = multipart::fields(&bytes, &boundary) else {
        return Err(invalid("the multipart/form-data body cannot be read"));
    };
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let Some(manifest) = field("manifest") else {
        return Err(invalid(
            "manifest: a direct upload names its files in a `manifest` part",
        ));
    };
    let manifest: BTreeMap<String, String> = serde_json::from_str(manifest).map_err(|e| {
        invalid(format!(
            "manifest: not a JSON object of paths to hashes: {e}"
        ))
    })?;
    if manifest.is_empty() {
        return Err(invalid("manifest: names no file"));
    }
    // The site's configuration comes as parts of its own (wrangler's `deploy.ts`).
    let config: BTreeMap<String, String> = fields
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "_headers" | "_redirects"))
        .cloned()
        .collect();
    let mut pages = cloud.pages();
    let Some(project) = pages.projects.get(&name) else {
        return Err(project_missing());
    };
    let branch = field("branch")
        .map(str::to_string)
        .unwrap_or_else(|| project.production_branch.clone());
    for (path, hash) in &manifest {
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
            return Err(invalid(format!(
                "manifest: {path:?} is not a path in the site"
            )));
        }
        let Some(stored) = pages.assets.get(hash) else {
            return Err(invalid(format!(
                "manifest: {path} names {hash}, which was never uploaded"
            )));
        };
        let mut input = stored.clone();
        input.push_str(extension(path));
        let expected = blake3::hash(input.as_bytes()).to_hex();
        if !hash.eq_ignore_ascii_case(&expected.as_str()[..32]) {
            return Err(invalid(format!(
                "manifest: {hash} is not the hash of {path}'s contents"
            )));
        }
    }
    let id = pages.new_uuid();
    pages.deployments.insert(
        id.clone(),
        Deployment {
            id: id.clone(),
            project: name.clone(),
            branch,
            created_at: Instant::now(),
            created: now_text(),
            built_at: None,
            failed: false,
            paths: manifest.keys().cloned().collect(),
            config,
        },
    );
    *pages.deployment_creates.entry(name).or_default() += 1;
    Ok(envelope(pages.deployment_view(&id)))
}

/// A project's deployments, newest first; `env` picks production or preview ones.
#[derive(Deserialize)]
pub(crate) struct DeploymentsQuery {
    env: Option<String>,
}

pub(crate) async fn list_deployments(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name)): Path<(String, String)>,
    Query(q): Query<DeploymentsQuery>,
) -> Answer {
    account(&account_id)?;
    if let Some(env) = q.env.as_deref()
        && env != "production"
        && env != "preview"
    {
        return Err(invalid(format!(
            "env: {env:?} is not production or preview"
        )));
    }
    let mut pages = cloud.pages();
    if !pages.projects.contains_key(&name) {
        return Err(project_missing());
    }
    let shown: Vec<Value> = pages
        .deployments_of(&name)
        .iter()
        .map(|id| pages.deployment_view(id))
        .filter(|d| q.env.as_deref().is_none_or(|e| d["environment"] == e))
        .collect();
    let count = shown.len();
    Ok(Json(json!({
        "success": true, "errors": [], "messages": [],
        "result": shown,
        "result_info": {"page": 1, "per_page": count.max(1), "count": count,
                        "total_count": count, "total_pages": 1},
    })))
}

pub(crate) async fn get_deployment(
    State(cloud): State<Arc<Cloud>>,
    Path((account_id, name, id)): Path<(String, String, String)>,
) -> Answer {
    account(&account_id)?;
    let mut pages = cloud.pages();
    if !pages.projects.contains_key(&name) {
        return Err(project_missing());
    }
    match pages.deployments.get(&id) {
        Some(d) if d.project == name => Ok(envelope(pages.deployment_view(&id))),
        _ => Err(deployment_missing()),
    }
}
