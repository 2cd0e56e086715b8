//! The account's projects, deployments and uploaded contents, the JSON they are shown as
//! (the document's project and deployment answers), and the handlers.
//!
//! A deployment's state is worked out when it is read, from the time it was created: `QUEUED`
//! for `queue_after`, `BUILDING` for `build_after` (or while the test holds deployments), then
//! `READY`, or `ERROR` when the test made deployments fail; a cancelled one is `CANCELED`.
//! A deployment is only created once every content it lists was uploaded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Digest as _;

use super::{Cloud, TEAM_ID, error};
use crate::front_door::ApiError;

pub(crate) const USER_ID: &str = "sandboxuser0000000000000";
const USERNAME: &str = "sandbox";

/// A listing's page size when the request names none (Vercel's default for projects).
const DEFAULT_LIMIT: usize = 20;
/// The most a listing answers at once.
const MAX_LIMIT: usize = 100;

pub(crate) struct World {
    projects: BTreeMap<String, Project>,
    deployments: BTreeMap<String, Deployment>,
    /// Every SHA-1 whose contents Vercel has been given.
    seen: HashSet<String>,
    project_creates: HashMap<String, usize>,
    uploads: Vec<String>,
    /// Uploads still to be answered and then not kept (contents Vercel has dropped).
    drop_uploads: usize,
    /// Project domains, by name (a domain belongs to one project at most).
    domains: BTreeMap<String, ProjectDomain>,
    /// Apex domains whose verification TXT record is in place.
    dns_verified: HashSet<String>,
    /// Domains ever added, by the name of their project then.
    domain_adds: HashMap<String, usize>,
    hold: bool,
    fail_with: Option<String>,
    next_id: u64,
    /// The last timestamp handed out, so that every one is distinct and increasing.
    last_ms: i64,
    queue_after: Duration,
    build_after: Duration,
}

struct Project {
    id: String,
    name: String,
    /// The team's id, or the user's for the personal account.
    owner: String,
    created_ms: i64,
    updated_ms: i64,
}

struct ProjectDomain {
    name: String,
    project_id: String,
    created_ms: i64,
    /// Set by `POST .../verify` once the challenge is met, never by reading the domain.
    verified: bool,
}

struct Deployment {
    id: String,
    project_id: String,
    name: String,
    owner: String,
    files: usize,
    created_at: Instant,
    created_ms: i64,
    /// When the build may finish: moved on when held deployments are released.
    built_at: Option<Instant>,
    /// Set once the deployment ends in `ERROR` or `CANCELED`.
    ended: Option<(&'static str, String)>,
}

impl World {
    pub(crate) fn new(queue_after: Duration, build_after: Duration) -> Self {
        Self {
            projects: BTreeMap::new(),
            deployments: BTreeMap::new(),
            seen: HashSet::new(),
            project_creates: HashMap::new(),
            uploads: Vec::new(),
            drop_uploads: 0,
            domains: BTreeMap::new(),
            dns_verified: HashSet::new(),
            domain_adds: HashMap::new(),
            hold: false,
            fail_with: None,
            next_id: rand::random::<u32>().into(),
            last_ms: 0,
            queue_after,
            build_after,
        }
    }

    /// An id as Vercel shapes them: a prefix and 24 alphanumerics.
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:024x}", self.next_id)
    }

    fn now_ms(&mut self) -> i64 {
        self.last_ms = chrono::Utc::now().timestamp_millis().max(self.last_ms + 1);
        self.last_ms
    }

    pub(crate) fn hold(&mut self, held: bool) {
        self.hold = held;
        if !held {
            let now = Instant::now();
            for d in self.deployments.values_mut() {
                if d.built_at.is_some() && d.ended.is_none() {
                    d.built_at = Some(now);
                }
            }
        }
    }

    pub(crate) fn fail_deployments(&mut self, message: Option<String>) {
        self.fail_with = message;
    }

    pub(crate) fn project_creates(&self, name: &str) -> usize {
        self.project_creates.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn uploads(&self) -> Vec<String> {
        self.uploads.clone()
    }

    pub(crate) fn drop_uploads(&mut self, n: usize) {
        self.drop_uploads = n;
    }

    pub(crate) fn domain_adds(&self, project_name: &str) -> usize {
        self.domain_adds.get(project_name).copied().unwrap_or(0)
    }

    /// Adds `name` to the project `project_id` of `owner`.
    pub(crate) fn add_domain(
        &mut self,
        owner: &str,
        project: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let name = name.to_ascii_lowercase();
        if !is_domain_name(&name) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_domain",
                format!("The domain {name:?} is not valid"),
            ));
        }
        let project_id = self
            .project_id(owner, project)
            .ok_or_else(|| not_found("Project"))?;
        // The document: a domain already on the project is a 400; one on another project
        // (or account) a 409.
        if let Some(held) = self.domains.get(&name) {
            return Err(if held.project_id == project_id {
                error(
                    StatusCode::BAD_REQUEST,
                    "domain_already_exists",
                    format!("The domain {name} is already assigned to this project"),
                )
            } else {
                error(
                    StatusCode::CONFLICT,
                    "domain_already_in_use",
                    format!("The domain {name} is already in use by another project"),
                )
            });
        }
        let created_ms = self.now_ms();
        let project_name = self.projects[&project_id].name.clone();
        *self.domain_adds.entry(project_name).or_default() += 1;
        let domain = ProjectDomain {
            name: name.clone(),
            project_id,
            created_ms,
            verified: false,
        };
        let view = self.domain_view(&domain);
        self.domains.insert(name, domain);
        Ok(view)
    }

    pub(crate) fn domains(&self) -> Vec<Value> {
        self.domains.values().map(|d| self.domain_view(d)).collect()
    }

    /// From now on the verification challenge of every domain under `apex` is met; a domain
    /// is verified once asked to be (`POST .../verify`).
    pub(crate) fn verify_dns(&mut self, apex: &str) {
        self.dns_verified.insert(apex.to_ascii_lowercase());
    }

    fn domain_view(&self, d: &ProjectDomain) -> Value {
        let apex = apex_of(&d.name);
        let verified = d.verified;
        let mut view = json!({
            "name": d.name,
            "apexName": apex,
            "projectId": d.project_id,
            "redirect": null,
            "redirectStatusCode": null,
            "gitBranch": null,
            "customEnvironmentId": null,
            "createdAt": d.created_ms,
            "updatedAt": d.created_ms,
            "verified": verified,
        });
        if !verified {
            view["verification"] = json!([{
                "type": "TXT",
                "domain": format!("_vercel.{apex}"),
                "value": format!("vc-domain-verify={},{}", d.name, &d.project_id[4..]),
                "reason": "pending_domain_verification",
            }]);
        }
        view
    }

    pub(crate) fn projects(&self) -> Vec<Value> {
        self.projects.values().map(project_view).collect()
    }

    pub(crate) fn deployments(&mut self) -> Vec<Value> {
        let ids: Vec<String> = self.deployments.keys().cloned().collect();
        ids.iter().map(|id| self.deployment_view(id)).collect()
    }

    /// Makes a project owned by `team`, or by the user.
    pub(crate) fn create_project(
        &mut self,
        name: &str,
        team: Option<&str>,
    ) -> Result<Value, ApiError> {
        check_project_name(name)?;
        let owner = team.unwrap_or(USER_ID).to_string();
        if self
            .projects
            .values()
            .any(|p| p.owner == owner && p.name == name)
        {
            return Err(error(
                StatusCode::CONFLICT,
                "conflict",
                format!("A project with the name {name} already exists."),
            ));
        }
        let id = self.new_id("prj");
        let now = self.now_ms();
        let project = Project {
            id: id.clone(),
            name: name.to_string(),
            owner,
            created_ms: now,
            updated_ms: now,
        };
        let view = project_view(&project);
        self.projects.insert(id, project);
        *self.project_creates.entry(name.to_string()).or_default() += 1;
        Ok(view)
    }

    /// The project `id_or_name` names in `owner`'s scope.
    fn project_id(&self, owner: &str, id_or_name: &str) -> Option<String> {
        self.projects
            .values()
            .find(|p| p.owner == owner && (p.id == id_or_name || p.name == id_or_name))
            .map(|p| p.id.clone())
    }

    /// The state of a deployment now, settling what the passing of time settles.
    fn state(&mut self, id: &str) -> &'static str {
        let (queue_after, build_after, hold) = (self.queue_after, self.build_after, self.hold);
        let fail_with = self.fail_with.clone();
        let Some(d) = self.deployments.get_mut(id) else {
            return "ERROR";
        };
        if let Some((state, _)) = &d.ended {
            return state;
        }
        let now = Instant::now();
        let building_at = d.created_at + queue_after;
        if now < building_at {
            return "QUEUED";
        }
        let built_at = *d.built_at.get_or_insert(building_at + build_after);
        if hold || now < built_at {
            return "BUILDING";
        }
        if let Some(message) = fail_with {
            d.ended = Some(("ERROR", message));
            return "ERROR";
        }
        "READY"
    }

    fn deployment_view(&mut self, id: &str) -> Value {
        let state = self.state(id);
        let Some(d) = self.deployments.get(id) else {
            return Value::Null;
        };
        let url = format!("{}-{}.vercel.app", d.name, &d.id[d.id.len() - 9..]);
        let mut view = json!({
            "id": d.id,
            "name": d.name,
            "url": url,
            "projectId": d.project_id,
            "ownerId": d.owner,
            "readyState": state,
            "status": state,
            "type": "LAMBDAS",
            "version": 2,
            "plan": "hobby",
            "public": false,
            "target": "production",
            "createdAt": d.created_ms,
            "createdIn": "sfo1",
            "bootedAt": d.created_ms,
            "buildingAt": d.created_ms,
            "buildSkipped": false,
            "aliasAssigned": state == "READY",
            "alias": if state == "READY" { json!([format!("{}.vercel.app", d.name)]) } else { json!([]) },
            "creator": {"uid": USER_ID, "username": USERNAME},
            "inspectorUrl": format!("https://vercel.com/{USERNAME}/{}/{}", d.name, d.id),
            "isInConcurrentBuildsQueue": false,
            "isInSystemBuildsQueue": false,
            "build": {"env": []},
            "env": [],
            "meta": {"files": d.files.to_string()},
            "projectSettings": {},
            "regions": ["iad1"],
            "routes": null,
        });
        if let Some((_, message)) = &d.ended {
            view["errorMessage"] = json!(message);
        }
        if state == "READY" {
            view["ready"] = json!(d.created_ms);
        }
        view
    }

    /// A deployment as `GET /v6/deployments` lists it.
    fn listed_deployment(&mut self, id: &str) -> Value {
        let full = self.deployment_view(id);
        let mut listed = json!({
            "uid": full["id"],
            "name": full["name"],
            "url": full["url"],
            "projectId": full["projectId"],
            "created": full["createdAt"],
            "createdAt": full["createdAt"],
            "state": full["readyState"],
            "readyState": full["readyState"],
            "type": "LAMBDAS",
            "target": "production",
            "creator": full["creator"],
            "inspectorUrl": full["inspectorUrl"],
        });
        if let Some(message) = full.get("errorMessage") {
            listed["errorMessage"] = message.clone();
        }
        listed
    }
}

fn project_view(p: &Project) -> Value {
    json!({
        "accountId": p.owner,
        "id": p.id,
        "name": p.name,
        "createdAt": p.created_ms,
        "updatedAt": p.updated_ms,
        "directoryListing": false,
        "nodeVersion": "22.x",
        "framework": null,
        "live": false,
        "resourceConfig": {"functionDefaultRegions": ["iad1"]},
        "defaultResourceConfig": {"functionDefaultRegions": ["iad1"]},
    })
}

/// Vercel's rule for project names: lowercase letters, digits, `.`, `_`, `-`, at most 100,
/// and no `---`.
fn check_project_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.contains("---")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "Invalid request: `name` {name:?} may hold only lowercase letters, digits, \
                 `.`, `_` and `-`, up to 100 characters, and no `---`"
            ),
        ))
    }
}

fn body_of(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid request: the body is not a JSON object",
            )
        })
}

fn not_found(what: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} not found"),
    )
}

type Answer = Result<Json<Value>, ApiError>;

/// The query parameters the handlers read.
#[derive(Deserialize)]
pub(crate) struct Params {
    #[serde(rename = "teamId")]
    team_id: Option<String>,
    limit: Option<usize>,
    /// A timestamp, or the continuation token a listing answered as `next`.
    from: Option<String>,
    until: Option<i64>,
    #[serde(rename = "projectId")]
    project_id: Option<String>,
    #[serde(rename = "skipAutoDetectionConfirmation")]
    skip_auto_detection_confirmation: Option<String>,
}

impl Params {
    /// `?skipAutoDetectionConfirmation=1`: deploy without asking about a framework.
    fn skips_detection(&self) -> bool {
        self.skip_auto_detection_confirmation.as_deref() == Some("1")
    }

    /// Whose resources the call reaches: the team it names, or the user. A team the key is
    /// not a member of is refused.
    fn owner(&self) -> Result<String, ApiError> {
        match self.team_id.as_deref() {
            None => Ok(USER_ID.to_string()),
            Some(TEAM_ID) => Ok(TEAM_ID.to_string()),
            Some(_) => Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not authorized: you are not a member of this team",
            )),
        }
    }

    /// The `updatedAt` after which a project listing starts.
    fn from(&self) -> Result<Option<i64>, ApiError> {
        let Some(from) = self.from.as_deref() else {
            return Ok(None);
        };
        let digits = if from.bytes().all(|b| b.is_ascii_digit()) {
            Some(from.to_string())
        } else {
            base32_decode(from)
        };
        digits
            .and_then(|d| d.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "Invalid request: `from` {from:?} is not a timestamp or a continuation token"
                ))
            })
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// The timestamp pagination of deployment listings (`Pagination`).
fn pagination(count: usize, next: Option<i64>, prev: Option<i64>) -> Value {
    json!({ "count": count, "next": next, "prev": prev })
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: project listings' continuation tokens.
fn base32_encode(text: &str) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &b in text.as_bytes() {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(token: &str) -> Option<String> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in token.bytes() {
        let value = BASE32.iter().position(|&b| b == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) async fn current_user(Query(params): Query<Params>) -> Answer {
    params.owner()?;
    Ok(Json(json!({
        "user": {
            "id": USER_ID,
            "uid": USER_ID,
            "email": "sandbox@example.com",
            "name": "Sandbox User",
            "username": USERNAME,
            "avatar": null,
            "defaultTeamId": null,
            "createdAt": 1_700_000_000_000_i64,
            "softBlock": null,
            "billing": null,
            "resourceConfig": {},
            "stagingPrefix": "sandbox",
            "hasTrialAvailable": false,
        }
    })))
}

pub(crate) async fn create_project(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
    bytes: Bytes,
) -> Answer {
    let owner = params.owner()?;
    let body = body_of(&bytes)?;
    let Some(name) = body["name"].as_str() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Invalid request: missing required property `name`",
        ));
    };
    let team = (owner != USER_ID).then_some(owner.as_str());
    Ok(Json(cloud.world().create_project(name, team)?))
}

/// Projects in `updatedAt` order; `from` (a timestamp or a token) answers those updated after
/// it, and `next` is a token for the last one's `updatedAt` when more follow.
pub(crate) async fn list_projects(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let from = params.from()?;
    let world = cloud.world();
    let mut mine: Vec<&Project> = world
        .projects
        .values()
        .filter(|p| p.owner == owner && from.is_none_or(|f| p.updated_ms > f))
        .collect();
    mine.sort_by_key(|p| p.updated_ms);
    let limit = params.limit();
    let more = mine.len() > limit;
    let page: Vec<&Project> = mine.into_iter().take(limit).collect();
    // Projects page with continuation tokens: `count` and `next`, no `prev`.
    let next = more
        .then(|| {
            page.last()
                .map(|p| base32_encode(&p.updated_ms.to_string()))
        })
        .flatten();
    Ok(Json(json!({
        "projects": page.iter().map(|p| project_view(p)).collect::<Vec<_>>(),
        "pagination": {"count": page.len(), "next": next},
    })))
}

pub(crate) async fn get_project(
    State(cloud): State<Arc<Cloud>>,
    Path(id_or_name): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let world = cloud.world();
    let id = world
        .project_id(&owner, &id_or_name)
        .ok_or_else(|| not_found("Project"))?;
    Ok(Json(project_view(&world.projects[&id])))
}

/// Deleting a project deletes its deployments.
pub(crate) async fn delete_project(
    State(cloud): State<Arc<Cloud>>,
    Path(id_or_name): Path<String>,
    Query(params): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let owner = params.owner()?;
    let mut world = cloud.world();
    let id = world
        .project_id(&owner, &id_or_name)
        .ok_or_else(|| not_found("Project"))?;
    world.projects.remove(&id);
    world.deployments.retain(|_, d| d.project_id != id);
    world.domains.retain(|_, d| d.project_id != id);
    Ok(StatusCode::NO_CONTENT)
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn bad(message: String) -> ApiError {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub(crate) async fn create_deployment(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let owner = params.owner()?;
    let body = body_of(&bytes)?;
    let Some(name) = body["name"].as_str() else {
        return Err(bad(
            "Invalid request: missing required property `name`".into()
        ));
    };
    let Some(files) = body["files"].as_array().filter(|f| !f.is_empty()) else {
        return Err(bad(
            "Invalid request: `files` must list at least one file".into()
        ));
    };
    let mut shas = Vec::with_capacity(files.len());
    for f in files {
        let (Some(file), Some(sha)) = (f["file"].as_str(), f["sha"].as_str()) else {
            return Err(bad(
                "Invalid request: each of `files` needs `file` and `sha`".into(),
            ));
        };
        if !is_sha1(sha) {
            return Err(bad(format!(
                "Invalid request: `files` {file}: `sha` is not a SHA-1"
            )));
        }
        if file.is_empty() || file.starts_with('/') || file.split('/').any(|s| s == "..") {
            return Err(bad(format!(
                "Invalid request: `files` {file:?} is not a path within the deployment"
            )));
        }
        shas.push(sha.to_ascii_lowercase());
    }
    let mut world = cloud.world();
    let mut missing: Vec<&String> = shas.iter().filter(|s| !world.seen.contains(*s)).collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "code": "missing_files",
                "message": "Missing files",
                "missing": missing,
            }})),
        )
            .into_response());
    }
    // The project named by `project`, else the one named `name`, which is made if need be.
    let project_id = match body["project"].as_str() {
        Some(p) => world
            .project_id(&owner, p)
            .ok_or_else(|| not_found("Project"))?,
        None => match world.project_id(&owner, name) {
            Some(id) => id,
            None => {
                let team = (owner != USER_ID).then_some(owner.as_str());
                let made = world.create_project(name, team)?;
                made["id"].as_str().unwrap_or_default().to_string()
            }
        },
    };
    // Vercel keeps the settings of a project's first deployment for the ones after it, and
    // refuses a first deployment that brings none (unless told to skip framework detection).
    let first = !world
        .deployments
        .values()
        .any(|d| d.project_id == project_id);
    if first && !body["projectSettings"].is_object() && !params.skips_detection() {
        return Err(bad(
            "The `projectSettings` object is required for new projects, but is missing in the \
             deployment payload"
                .into(),
        ));
    }
    let project_name = world.projects[&project_id].name.clone();
    let id = world.new_id("dpl");
    let created_ms = world.now_ms();
    if let Some(p) = world.projects.get_mut(&project_id) {
        p.updated_ms = created_ms;
    }
    world.deployments.insert(
        id.clone(),
        Deployment {
            id: id.clone(),
            project_id,
            name: project_name,
            owner,
            files: shas.len(),
            created_at: Instant::now(),
            created_ms,
            built_at: None,
            ended: None,
        },
    );
    Ok(Json(world.deployment_view(&id)).into_response())
}

/// A deployment in `owner`'s scope.
fn deployment_of(world: &World, owner: &str, id: &str) -> Result<(), ApiError> {
    match world.deployments.get(id) {
        Some(d) if d.owner == owner => Ok(()),
        _ => Err(not_found("Deployment")),
    }
}

pub(crate) async fn get_deployment(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let mut world = cloud.world();
    deployment_of(&world, &owner, &id)?;
    Ok(Json(world.deployment_view(&id)))
}

/// Newest first; `until` answers those created before it, `next` is the last one's
/// `createdAt` when more follow.
pub(crate) async fn list_deployments(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let mut world = cloud.world();
    let mut ids: Vec<(i64, String)> = world
        .deployments
        .values()
        .filter(|d| {
            d.owner == owner
                && params
                    .project_id
                    .as_deref()
                    .is_none_or(|p| d.project_id == p)
                && params.until.is_none_or(|u| d.created_ms < u)
        })
        .map(|d| (d.created_ms, d.id.clone()))
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    let limit = params.limit();
    let more = ids.len() > limit;
    ids.truncate(limit);
    let next = more.then(|| ids.last().map(|(t, _)| *t)).flatten();
    let prev = ids.first().map(|(t, _)| *t);
    let listed: Vec<Value> = ids
        .iter()
        .map(|(_, id)| world.listed_deployment(id))
        .collect();
    Ok(Json(json!({
        "deployments": listed,
        "pagination": pagination(listed.len(), next, prev),
    })))
}

/// Only a deployment still queued or building can be cancelled.
pub(crate) async fn cancel_deployment(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let mut world = cloud.world();
    deployment_of(&world, &owner, &id)?;
    let state = world.state(&id);
    if !matches!(state, "QUEUED" | "BUILDING") {
        return Err(bad(format!(
            "The deployment is {state} and can no longer be canceled"
        )));
    }
    if let Some(d) = world.deployments.get_mut(&id) {
        d.ended = Some(("CANCELED", "The deployment was canceled".into()));
    }
    Ok(Json(world.deployment_view(&id)))
}

/// The contents, checked against `x-vercel-digest`; kept by their SHA-1.
pub(crate) async fn upload_file(
    State(cloud): State<Arc<Cloud>>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    params.owner()?;
    let Some(digest) = headers
        .get("x-vercel-digest")
        .or_else(|| headers.get("x-now-digest"))
        .and_then(|v| v.to_str().ok())
    else {
        return Err(bad("Missing `x-vercel-digest` header".into()));
    };
    let sha = sha1::Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    if !digest.eq_ignore_ascii_case(&sha) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_digest",
            format!("The digest {digest} does not match the contents ({sha})"),
        ));
    }
    let mut world = cloud.world();
    if world.drop_uploads > 0 {
        world.drop_uploads -= 1;
    } else {
        world.seen.insert(sha.clone());
    }
    world.uploads.push(sha);
    Ok(Json(json!({})))
}

/// The registrable part of a name: its last two labels.
fn apex_of(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

fn is_domain_name(name: &str) -> bool {
    name.contains('.')
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(crate) async fn add_project_domain(
    State(cloud): State<Arc<Cloud>>,
    Path(id_or_name): Path<String>,
    Query(params): Query<Params>,
    bytes: Bytes,
) -> Answer {
    let owner = params.owner()?;
    let body = body_of(&bytes)?;
    let Some(name) = body["name"].as_str() else {
        return Err(bad(
            "Invalid request: missing required property `name`".into()
        ));
    };
    Ok(Json(cloud.world().add_domain(&owner, &id_or_name, name)?))
}

/// The domain `name` of the project `id_or_name` in `owner`'s scope.
fn project_domain<'a>(
    world: &'a World,
    owner: &str,
    id_or_name: &str,
    name: &str,
) -> Result<&'a ProjectDomain, ApiError> {
    let project_id = world
        .project_id(owner, id_or_name)
        .ok_or_else(|| not_found("Project"))?;
    world
        .domains
        .get(&name.to_ascii_lowercase())
        .filter(|d| d.project_id == project_id)
        .ok_or_else(|| not_found("Domain"))
}

pub(crate) async fn get_project_domain(
    State(cloud): State<Arc<Cloud>>,
    Path((id_or_name, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let world = cloud.world();
    let domain = project_domain(&world, &owner, &id_or_name, &name)?;
    Ok(Json(world.domain_view(domain)))
}

/// The name a project domain is held under, for a call in `params`' scope.
fn domain_key(
    world: &World,
    params: &Params,
    id_or_name: &str,
    name: &str,
) -> Result<String, ApiError> {
    let owner = params.owner()?;
    Ok(project_domain(world, &owner, id_or_name, name)?
        .name
        .clone())
}

/// `POST /v9/projects/{idOrName}/domains/{domain}/verify`: verified once its challenge is met
/// (the document's 200 body: the domain without `verification`), a 400 until then.
pub(crate) async fn verify_project_domain(
    State(cloud): State<Arc<Cloud>>,
    Path((id_or_name, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Answer {
    let mut world = cloud.world();
    let key = domain_key(&world, &params, &id_or_name, &name)?;
    let met = world.dns_verified.contains(&apex_of(&key));
    let domain = world.domains.get_mut(&key).expect("found above");
    if !domain.verified && !met {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "missing_txt_record",
            format!("The domain {key} does not have a TXT record that attempts to verify"),
        ));
    }
    domain.verified = true;
    let mut view = world.domain_view(&world.domains[&key]);
    if let Some(fields) = view.as_object_mut() {
        fields.remove("verification");
    }
    Ok(Json(view))
}

pub(crate) async fn remove_project_domain(
    State(cloud): State<Arc<Cloud>>,
    Path((id_or_name, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Answer {
    let mut world = cloud.world();
    let key = domain_key(&world, &params, &id_or_name, &name)?;
    world.domains.remove(&key);
    Ok(Json(json!({})))
}

/// Newest first; `until` answers those created before it, `next` is the last one's
/// `createdAt` when more follow.
pub(crate) async fn list_project_domains(
    State(cloud): State<Arc<Cloud>>,
    Path(id_or_name): Path<String>,
    Query(params): Query<Params>,
) -> Answer {
    let owner = params.owner()?;
    let world = cloud.world();
    let project_id = world
        .project_id(&owner, &id_or_name)
        .ok_or_else(|| not_found("Project"))?;
    let mut mine: Vec<&ProjectDomain> = world
        .domains
        .values()
        .filter(|d| d.project_id == project_id && params.until.is_none_or(|u| d.created_ms < u))
        .collect();
    mine.sort_by_key(|d| std::cmp::Reverse(d.created_ms));
    let limit = params.limit();
    let more = mine.len() > limit;
    mine.truncate(limit);
    let next = more.then(|| mine.last().map(|d| d.created_ms)).flatten();
    let prev = mine.first().map(|d| d.created_ms);
    Ok(Json(json!({
        "domains": mine.iter().map(|d| world.domain_view(d)).collect::<Vec<_>>(),
        "pagination": pagination(mine.len(), next, prev),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip() {
        for text in ["1795692122007", "1", ""] {
            assert_eq!(base32_decode(&base32_encode(text)).as_deref(), Some(text));
        }
        assert_eq!(base32_encode("Hello!"), "JBSWY3DPEE");
        assert!(base32_decode("not base32!").is_none());
    }
}
