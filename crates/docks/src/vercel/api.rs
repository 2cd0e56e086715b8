//! A thin typed client of Vercel's REST API (`https://api.vercel.com`), written against the
//! OpenAPI document Vercel publishes: projects, deployments from files and their uploads, the
//! current user. Every call carries `teamId` when the dock works in a team. Errors are
//! `{"error": {"code", "message"}}` (Vercel's REST docs; the spec gives these endpoints no
//! error body); listings answer `pagination {count, next, prev}`, `next` being passed back as
//! `from` for projects and as `until` for deployments.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// How many items a listing asks for per page (Vercel's most for projects).
pub const PAGE_LIMIT: usize = 100;

/// The code of the error `POST /v13/deployments` answers when files named by digest have not
/// been uploaded.
pub const MISSING_FILES: &str = "missing_files";

/// The fields of a project StackDock reads; the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireProject {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

impl Project {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireProject::deserialize(&raw).map_err(|e| protocol(format!("project: {e}")))?;
        Ok(Self {
            id: w.id,
            name: w.name.unwrap_or_default(),
            raw,
        })
    }
}

/// The fields of a deployment StackDock reads.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub id: String,
    pub project_id: Option<String>,
    /// QUEUED, BUILDING, ERROR, INITIALIZING, READY, CANCELED.
    pub ready_state: String,
    pub url: Option<String>,
    pub error_message: Option<String>,
    pub raw: Value,
}

impl Deployment {
    /// A deployment as `GET /v13/deployments/{id}` shows it (`id`, `readyState`) or as
    /// `GET /v6/deployments` lists it (`uid`, `state`).
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let text = |k: &str| {
            raw[k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id = text("id")
            .or_else(|| text("uid"))
            .ok_or_else(|| protocol("deployment without `id`".into()))?;
        Ok(Self {
            id,
            project_id: text("projectId"),
            ready_state: text("readyState")
                .or_else(|| text("state"))
                .unwrap_or_default(),
            url: text("url"),
            error_message: text("errorMessage"),
            raw,
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready_state == "READY"
    }

    /// ERROR and CANCELED are terminal failures, and so is DELETED (in the listing's
    /// `state`): a deployment deleted will never be ready.
    pub fn has_failed(&self) -> bool {
        matches!(self.ready_state.as_str(), "ERROR" | "CANCELED" | "DELETED")
    }
}

/// One file of a deployment, named by the SHA-1 of its contents (`UploadedFile`).
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentFile {
    /// The path within the deployment, `/` between segments.
    pub file: String,
    pub sha: String,
    pub size: u64,
}

/// The body of `POST /v13/deployments` as StackDock sends it.
#[derive(Clone, Debug, Serialize)]
pub struct CreateDeployment {
    pub name: String,
    /// The project's id.
    pub project: String,
    pub target: &'static str,
    pub files: Vec<DeploymentFile>,
    /// Required on a project's first deployment (Vercel refuses it without them) and kept
    /// for the ones after it.
    #[serde(rename = "projectSettings")]
    pub project_settings: ProjectSettings,
}

/// The project settings a deployment carries. StackDock deploys files as they are: no
/// framework, so Vercel neither detects one nor asks to confirm it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProjectSettings {
    /// `null`: no framework.
    pub framework: Option<String>,
}

fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::Vercel,
        detail,
    }
}

/// Vercel's error body, `{"error": {"code": "not_found", "message": "..."}}`. A
/// `missing_files` error's `error.missing` (the SHA-1s Vercel lacks) is kept in the message,
/// after [`MISSING_MARK`], where [`missing_digests`] reads it back; a 429's `error.limit`
/// names when the limit resets.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    let error = &body["error"];
    let code = error["code"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string());
    let mut message = error["message"]
        .as_str()
        .or_else(|| body.as_str())
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(missing) = error["missing"].as_array() {
        let shas: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        message = format!("{message}{MISSING_MARK}{}", shas.join(","));
    }
    if let Some(reset) = error["limit"]["reset"].as_i64() {
        message = format!("{message} (the limit resets at {reset})");
    }
    (code, message)
}

/// How long a 429 says to wait in its body: `error.limit.resetMs` (epoch milliseconds), else
/// `error.limit.reset` (epoch seconds), from `now`. Vercel's error documentation gives the
/// wait there; its headers are not documented.
pub fn wait_in_body(
    body: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<std::time::Duration> {
    let limit = &body["error"]["limit"];
    let reset_ms = limit["resetMs"]
        .as_i64()
        .or_else(|| limit["reset"].as_i64().map(|s| s.saturating_mul(1000)))?;
    let ms = reset_ms.saturating_sub(now.timestamp_millis());
    Some(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// What separates a `missing_files` message from the digests it lists.
pub const MISSING_MARK: &str = "; missing: ";

/// The SHA-1s a `missing_files` error lists.
pub fn missing_digests(message: &str) -> Vec<String> {
    message
        .split_once(MISSING_MARK)
        .map(|(_, list)| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `Ok(None)` for a 404, the error otherwise.
fn absent<T>(result: Result<T, DockError>) -> Result<Option<T>, DockError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub struct VercelApi {
    http: HttpSession,
    /// The team every call is scoped to, if the dock names one.
    team_id: Option<String>,
}

impl VercelApi {
    pub fn new(http: HttpSession, team_id: Option<String>) -> Self {
        Self { http, team_id }
    }

    /// `extra` and, for a team's dock, `teamId`.
    fn query<'a>(&self, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut q = extra.to_vec();
        if let Some(team) = &self.team_id {
            q.push(("teamId", team.clone()));
        }
        q
    }

    async fn get(&self, path: &str, extra: &[(&str, String)]) -> Result<Value, DockError> {
        Ok(self.http.get(path, &self.query(extra)).await?.body)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, DockError> {
        Ok(self
            .http
            .send(
                method,
                path,
                &self.query(&[]),
                body,
                Idempotence::Repeatable,
            )
            .await?
            .body)
    }

    /// `GET /v2/user`: whether Vercel takes the key. The user is the same in every scope,
    /// so the call names no team.
    pub async fn current_user(&self) -> Result<Value, DockError> {
        Ok(self.http.get("/v2/user", &[]).await?.body)
    }

    /// Whether the key reaches the dock's team: one project of it (`GET /v10/projects`,
    /// `limit=1`), which Vercel refuses for a team the key is not in.
    pub async fn check_scope(&self) -> Result<(), DockError> {
        if self.team_id.is_some() {
            self.get("/v10/projects", &[("limit", "1".into())]).await?;
        }
        Ok(())
    }

    /// `path` with the team's `teamId`, for a create sent once (which takes no query).
    fn scoped(&self, path: &str) -> String {
        match &self.team_id {
            Some(team) => format!("{path}?teamId={}", encode(team)),
            None => path.to_string(),
        }
    }

    /// `POST /v11/projects` with `{name}`, sent once: a lost answer is settled by looking the
    /// name up.
    pub async fn create_project(&self, name: &str, attempt: u32) -> Result<Project, DockError> {
        let body = json!({ "name": name });
        let resp = self
            .http
            .post_once(&self.scoped("/v11/projects"), &body, attempt)
            .await?;
        Project::from_value(resp.body)
    }

    /// `GET /v9/projects/{idOrName}`; `None` if Vercel has no such project.
    pub async fn get_project(&self, id_or_name: &str) -> Result<Option<Project>, DockError> {
        absent(
            self.get(&format!("/v9/projects/{}", encode(id_or_name)), &[])
                .await,
        )?
        .map(Project::from_value)
        .transpose()
    }

    /// Every project the key reaches in the dock's scope (`GET /v10/projects`, following
    /// `pagination.next` as `from`).
    pub async fn list_projects(&self) -> Result<Vec<Project>, DockError> {
        let mut projects = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut extra = vec![("limit", PAGE_LIMIT.to_string())];
            if let Some(f) = &from {
                extra.push(("from", f.clone()));
            }
            let body = self.get("/v10/projects", &extra).await?;
            let Some(batch) = body["projects"].as_array() else {
                return Err(protocol("project listing without `projects`".into()));
            };
            for raw in batch {
                projects.push(Project::from_value(raw.clone())?);
            }
            from = next_cursor(&body);
            if from.is_none() || batch.is_empty() {
                break;
            }
        }
        Ok(projects)
    }

    /// `DELETE /v9/projects/{idOrName}`, which deletes its deployments too; a project already
    /// gone counts as deleted.
    pub async fn delete_project(&self, id_or_name: &str) -> Result<(), DockError> {
        absent(
            self.call(
                Method::DELETE,
                &format!("/v9/projects/{}", encode(id_or_name)),
                None,
            )
            .await,
        )
        .map(drop)
    }

    /// `POST /v13/deployments`, sent once: repeating it would make a second deployment of
    /// the project, so a lost answer is settled by looking for the project's deployment. A
    /// `missing_files` refusal comes back as the provider's error; see [`missing_digests`].
    pub async fn create_deployment(
        &self,
        req: &CreateDeployment,
        attempt: u32,
    ) -> Result<Deployment, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&self.scoped("/v13/deployments"), &body, attempt)
            .await?;
        Deployment::from_value(resp.body)
    }

    /// `GET /v13/deployments/{idOrUrl}`; `None` if it is gone (with its project).
    pub async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>, DockError> {
        absent(
            self.get(&format!("/v13/deployments/{}", encode(id)), &[])
                .await,
        )?
        .map(Deployment::from_value)
        .transpose()
    }

    /// The newest deployment of a project (`GET /v6/deployments?projectId=`, one a page).
    pub async fn latest_deployment(
        &self,
        project_id: &str,
    ) -> Result<Option<Deployment>, DockError> {
        let body = self
            .get(
                "/v6/deployments",
                &[("projectId", project_id.to_string()), ("limit", "1".into())],
            )
            .await?;
        let Some(list) = body["deployments"].as_array() else {
            return Err(protocol("deployment listing without `deployments`".into()));
        };
        list.first()
            .cloned()
            .map(Deployment::from_value)
            .transpose()
    }

    /// `POST /v2/files` with the raw contents and their SHA-1 in `x-vercel-digest`. Uploading
    /// the same contents again changes nothing, so it may be repeated.
    pub async fn upload_file(&self, sha1: &str, bytes: &[u8]) -> Result<(), DockError> {
        self.http
            .send_bytes_with(
                Method::POST,
                "/v2/files",
                &self.query(&[]),
                &[("x-vercel-digest", sha1.to_string())],
                bytes,
            )
            .await
            .map(drop)
    }

    /// `PATCH /v12/deployments/{id}/cancel`. A deployment gone, or already finished (Vercel
    /// refuses to cancel it), needs no cancelling.
    pub async fn cancel_deployment(&self, id: &str) -> Result<(), DockError> {
        match self
            .call(
                Method::PATCH,
                &format!("/v12/deployments/{}/cancel", encode(id)),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(DockError::Provider(p)) if matches!(p.status, 400 | 404 | 409) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl VercelApi {
    /// `POST /v10/projects/{idOrName}/domains` with `{name}`, sent once.
    pub async fn add_project_domain(
        &self,
        project: &str,
        name: &str,
        attempt: u32,
    ) -> Result<ProjectDomain, DockError> {
        let path = self.scoped(&format!("/v10/projects/{}/domains", encode(project)));
        let resp = self
            .http
            .post_once(&path, &json!({ "name": name }), attempt)
            .await?;
        ProjectDomain::from_value(resp.body)
    }

    /// `GET /v9/projects/{idOrName}/domains/{domain}`; `None` if the project or the domain
    /// is not there.
    pub async fn get_project_domain(
        &self,
        project: &str,
        domain: &str,
    ) -> Result<Option<ProjectDomain>, DockError> {
        let path = format!(
            "/v9/projects/{}/domains/{}",
            encode(project),
            encode(domain)
        );
        absent(self.get(&path, &[]).await)?
            .map(ProjectDomain::from_value)
            .transpose()
    }

    /// `POST /v9/projects/{idOrName}/domains/{domain}/verify`: asks Vercel to check the
    /// domain's challenge, which it does only when asked. A check, so it may be repeated.
    /// `true` once the domain is verified; `false` while its challenge is unmet (Vercel's
    /// 400) or the domain is gone (404).
    pub async fn verify_project_domain(
        &self,
        project: &str,
        domain: &str,
    ) -> Result<bool, DockError> {
        let path = format!(
            "/v9/projects/{}/domains/{}/verify",
            encode(project),
            encode(domain)
        );
        match self.call(Method::POST, &path, None).await {
            Ok(body) => Ok(body["verified"].as_bool().unwrap_or(true)),
            Err(DockError::Provider(p)) if p.status == 400 || p.status == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every domain of a project (`GET /v9/projects/{idOrName}/domains`, following
    /// `pagination.next` as `until`); `None` if the project is gone.
    pub async fn list_project_domains(
        &self,
        project: &str,
    ) -> Result<Option<Vec<ProjectDomain>>, DockError> {
        let path = format!("/v9/projects/{}/domains", encode(project));
        let mut domains = Vec::new();
        let mut until: Option<String> = None;
        loop {
            let mut extra = vec![("limit", PAGE_LIMIT.to_string())];
            if let Some(u) = &until {
                extra.push(("until", u.clone()));
            }
            let Some(body) = absent(self.get(&path, &extra).await)? else {
                return Ok(None);
            };
            let Some(batch) = body["domains"].as_array() else {
                return Err(protocol("domain listing without `domains`".into()));
            };
            for raw in batch {
                domains.push(ProjectDomain::from_value(raw.clone())?);
            }
            until = next_cursor(&body);
            if until.is_none() || batch.is_empty() {
                break;
            }
        }
        Ok(Some(domains))
    }

    /// `DELETE /v9/projects/{idOrName}/domains/{domain}`; a domain (or project) already gone
    /// counts as removed.
    pub async fn remove_project_domain(
        &self,
        project: &str,
        domain: &str,
    ) -> Result<(), DockError> {
        let path = format!(
            "/v9/projects/{}/domains/{}",
            encode(project),
            encode(domain)
        );
        absent(self.call(Method::DELETE, &path, None).await).map(drop)
    }
}

/// A domain of a project, with its verification state.
#[derive(Clone, Debug)]
pub struct ProjectDomain {
    pub name: String,
    pub project_id: String,
    /// Whether Vercel uses the domain for the project; until then `verification` lists the
    /// challenges, one of which must be met.
    pub verified: bool,
    pub verification: Vec<Value>,
    pub raw: Value,
}

impl ProjectDomain {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let name = raw["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| protocol("project domain without `name`".into()))?
            .to_string();
        Ok(Self {
            project_id: raw["projectId"].as_str().unwrap_or_default().to_string(),
            verified: raw["verified"].as_bool().unwrap_or(false),
            verification: raw["verification"].as_array().cloned().unwrap_or_default(),
            name,
            raw,
        })
    }
}

/// `pagination.next` of a listing, when there is a next page.
fn next_cursor(body: &Value) -> Option<String> {
    match &body["pagination"]["next"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Percent-encodes one path segment or query value.
fn encode(segment: &str) -> String {
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
    fn errors_keep_vercels_code_words_and_missing_digests() {
        assert_eq!(
            read_error(
                404,
                &json!({"error": {"code": "not_found", "message": "Project not found"}})
            ),
            ("not_found".to_string(), "Project not found".to_string())
        );
        let (code, message) = read_error(
            400,
            &json!({"error": {"code": "missing_files", "message": "Missing files",
                              "missing": ["aa", "bb"]}}),
        );
        assert_eq!(code, MISSING_FILES);
        assert_eq!(missing_digests(&message), vec!["aa", "bb"]);
        assert!(missing_digests("Missing files").is_empty());
        let (_, limited) = read_error(
            429,
            &json!({"error": {"code": "rate_limited", "message": "slow down",
                              "limit": {"remaining": 0, "reset": 1700000000, "total": 100}}}),
        );
        assert!(limited.contains("1700000000"), "{limited}");
        assert_eq!(
            read_error(502, &Value::Null),
            ("502".to_string(), "HTTP 502".to_string())
        );
    }

    #[test]
    fn listings_answer_both_kinds_of_deployment() {
        let listed = Deployment::from_value(
            json!({"uid": "dpl_1", "state": "READY", "url": "a.vercel.app"}),
        )
        .unwrap();
        assert_eq!(listed.id, "dpl_1");
        assert!(listed.is_ready());
        let got = Deployment::from_value(json!({"id": "dpl_2", "readyState": "CANCELED"})).unwrap();
        assert!(got.has_failed());
        let deleted = Deployment::from_value(json!({"uid": "dpl_3", "state": "DELETED"})).unwrap();
        assert!(deleted.has_failed() && !deleted.is_ready());
        let building =
            Deployment::from_value(json!({"uid": "dpl_4", "state": "BUILDING"})).unwrap();
        assert!(!building.has_failed() && !building.is_ready());
        assert!(Deployment::from_value(json!({"readyState": "READY"})).is_err());
    }
}
