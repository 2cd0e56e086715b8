//! Provisioning Vercel web services (a project and a deployment from files) on the v2
//! contract; domains are in `domain.rs`.
//!
//! Vercel's projects have no tags, so a project StackDock creates is named after its marker
//! ([`project_name`]: the marker itself, `stackdock-<12 hex digits>`, a valid project name)
//! and found again by that name (`GET /v9/projects/{name}`) after a lost answer or a crash.
//! The name the user gave is StackDock's name for the row. A dock whose settings name a team
//! (`team_id`) makes every call in that team's scope (`?teamId=`).
//!
//! Steps, recorded in order:
//! 1. [`VercelStep::ProjectCreateSent`] — before `POST /v11/projects`. From here on the
//!    project may exist; undoing it deletes the project of that name, if there is one.
//! 2. [`VercelStep::ProjectCreated`] — the project, created or adopted; tracks its id.
//!    Undoing it deletes the project, which deletes its deployments.
//! 3. [`VercelStep::DeploymentSent`] — before the deployment is asked for. A later run finds
//!    the project's deployment, if an earlier request made one, instead of asking again.
//! 4. [`VercelStep::DeploymentCreated`] — every file's contents uploaded first
//!    (`POST /v2/files`, `x-vercel-digest`; the same contents again change nothing), then
//!    `POST /v13/deployments` with `files: [{file, sha, size}]`, the SHA-1s computed from the
//!    bytes the engine's file store hands out. Should Vercel still answer `missing_files`, the
//!    contents it lists go up once more and the deployment is asked for again. Undoing the
//!    step cancels the deployment.
//!
//! Readiness is the deployment's own: ready at `READY`, failed at `ERROR`, `CANCELED` or
//! `DELETED`.
//! Deprovision deletes the project StackDock created, which takes its deployments.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{
    self, CreateDeployment, Deployment, DeploymentFile, Project, ProjectSettings, VercelApi,
};
use super::domain;

/// How soon a deployment still being built is checked again.
const CHECK_IN: Duration = Duration::from_secs(2);

/// How many times a deployment is asked for after uploading what Vercel said it lacked.
const CREATE_ROUNDS: usize = 3;

/// The settings of a Vercel dock.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockSettings {
    /// The team the dock works in (`team_...`), as `vercel teams ls` shows it; none for the
    /// personal account.
    #[serde(default)]
    pub team_id: Option<Text>,
}

/// The config of a web service: its files (see `stackdock_docks::files`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebServiceConfig {
    /// StackDock's name for the project. At Vercel the project is named after its marker.
    pub name: Text,
    /// The files to deploy: `[{path, sha256, size}]`, uploaded to StackDock beforehand
    /// (`stackdock provision web-service --dir` does both).
    pub files: Files,
}

/// The steps of a web service's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum VercelStep {
    ProjectCreateSent {
        marker: Marker,
        project: String,
    },
    ProjectCreated {
        project_id: String,
        project: String,
        adopted: bool,
    },
    /// Recorded before the deployment is asked for: from here on the project may hold one
    /// whose answer never arrived. The project is this resource's alone, so a deployment in
    /// it is that one; undoing the project deletes it.
    DeploymentSent {
        project_id: String,
    },
    DeploymentCreated {
        project_id: String,
        deployment_id: String,
        /// Found in the project after a lost answer rather than made by this run's request.
        /// Absent from steps recorded before it was kept.
        #[serde(default)]
        adopted: bool,
    },
}

impl AdapterStep for VercelStep {
    fn name(&self) -> &'static str {
        match self {
            Self::ProjectCreateSent { .. } => "project_create_sent",
            Self::ProjectCreated { .. } => "project_created",
            Self::DeploymentSent { .. } => "deployment_sent",
            Self::DeploymentCreated { .. } => "deployment_created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::ProjectCreated { project_id, .. } => Some(project_id),
            _ => None,
        }
    }
}

/// The Vercel name of the project carrying `marker`.
pub fn project_name(marker: &Marker) -> String {
    marker.as_str().to_string()
}

pub struct VercelAdapter {
    client: reqwest::Client,
    web_schema: ConfigSchema,
    domain_schema: ConfigSchema,
    settings_schema: ConfigSchema,
}

impl VercelAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            web_schema: ConfigSchema::of::<WebServiceConfig>(),
            domain_schema: ConfigSchema::of::<domain::DomainConfig>(),
            settings_schema: ConfigSchema::of::<DockSettings>(),
        }
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> VercelApi {
        let team = dock.settings["team_id"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        VercelApi::new(
            HttpSession::new(
                self.client.clone(),
                dock,
                super::DEFAULT_BASE_URL,
                ctx,
                api::read_error,
            )
            .with_wait_in_body(api::wait_in_body),
            team,
        )
    }
}

fn deployment_failure(d: &Deployment) -> (String, String) {
    let code = match d.ready_state.as_str() {
        "CANCELED" => "deployment_canceled",
        "DELETED" => "deployment_deleted",
        _ => "deployment_error",
    };
    let message = d
        .error_message
        .clone()
        .unwrap_or_else(|| format!("Vercel reports the deployment {}", d.ready_state));
    (code.into(), message)
}

/// A project as StackDock shows it, with the state of `deployment` if it has one.
fn observe(project: Project, deployment: Option<&Deployment>) -> Observed {
    let state = deployment.map(|d| d.ready_state.clone());
    let failure = deployment.filter(|d| d.has_failed()).map(|d| {
        let (code, message) = deployment_failure(d);
        ProviderFailure { code, message }
    });
    let url = deployment.and_then(|d| d.url.clone()).map(|u| {
        if u.contains("://") {
            u
        } else {
            format!("https://{u}")
        }
    });
    let mut raw = project.raw;
    if let (Some(d), Value::Object(map)) = (deployment, &mut raw) {
        map.insert("deployment".into(), d.raw.clone());
    }
    Observed {
        provider_resource_id: project.id,
        marker: Marker::try_from(project.name.clone()).ok(),
        name: project.name,
        ready: deployment.is_some_and(Deployment::is_ready),
        status: state,
        failure,
        details: ResourceDetails::WebService(WebServiceDetails {
            production_url: url,
            source: Some("files".into()),
        }),
        full_api_data: raw,
    }
}

/// What the engine should do with a deployment in its state.
fn progress(project: Project, deployment: &Deployment) -> Result<Progress, DockError> {
    if deployment.is_ready() {
        return Ok(Progress::Done(Some(Box::new(observe(
            project,
            Some(deployment),
        )))));
    }
    if deployment.has_failed() {
        let (code, message) = deployment_failure(deployment);
        return Err(DockError::ResourceFailed {
            provider: Provider::Vercel,
            code,
            message,
        });
    }
    Ok(Progress::Pending {
        status: Some(deployment.ready_state.clone()),
        check_in: CHECK_IN,
    })
}

fn gone(what: String) -> DockError {
    DockError::ResourceFailed {
        provider: Provider::Vercel,
        code: "gone".into(),
        message: format!("{what} was deleted while it was provisioned"),
    }
}

#[async_trait]
impl DockAdapter for VercelAdapter {
    fn provider(&self) -> Provider {
        Provider::Vercel
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[ResourceKind::WebService, ResourceKind::Domain]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        match kind {
            ResourceKind::WebService => Some(self.web_schema.clone()),
            ResourceKind::Domain => Some(self.domain_schema.clone()),
            _ => None,
        }
    }

    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        Some(self.settings_schema.clone())
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        let api = self.api(ctx, dock);
        api.current_user().await?;
        api.check_scope().await
    }

    async fn provision_web_service(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let config: WebServiceConfig = config::parse(config)?;
        let api = self.api(ctx, dock);
        let marker = ctx.marker()?.clone();

        // Vercel names files by SHA-1, which the manifest does not carry: computed from the
        // bytes before anything is created, so contents never uploaded to StackDock leave
        // nothing at Vercel. Paths sharing contents share a SHA-1.
        let mut listed = Vec::with_capacity(config.files.entries().len());
        let mut entry_of: HashMap<String, usize> = HashMap::new();
        for (i, entry) in config.files.entries().iter().enumerate() {
            let sha = sha1_hex(&ctx.file(entry).await?);
            listed.push(DeploymentFile {
                file: entry.path.as_str().to_string(),
                sha: sha.clone(),
                size: entry.size,
            });
            entry_of.entry(sha).or_insert(i);
        }

        let (project, fresh) = own_project_made(ctx, &api, &marker).await?;

        let deployment = match ctx.step::<VercelStep>("deployment_created")? {
            Some(VercelStep::DeploymentCreated { deployment_id, .. }) => api
                .get_deployment(&deployment_id)
                .await?
                .ok_or_else(|| gone(format!("deployment {deployment_id}")))?,
            _ => {
                // A project this run did not just make is the resource's own from an earlier
                // run, which may have made the deployment and lost its answer, or crashed
                // before its record was kept: asking again would deploy twice.
                let sent_before = !fresh || ctx.step::<VercelStep>("deployment_sent")?.is_some();
                ctx.record_before_sending(&VercelStep::DeploymentSent {
                    project_id: project.id.clone(),
                })
                .await?;
                let request = CreateDeployment {
                    name: project.name.clone(),
                    project: project.id.clone(),
                    target: "production",
                    files: listed,
                    project_settings: ProjectSettings::default(),
                };
                let made =
                    create_deployment(ctx, &api, &request, sent_before, (&config.files, &entry_of))
                        .await?;
                let adopted = made.adopted();
                let deployment = made.into_inner();
                ctx.record(&VercelStep::DeploymentCreated {
                    project_id: project.id.clone(),
                    deployment_id: deployment.id.clone(),
                    adopted,
                })
                .await?;
                deployment
            }
        };
        progress(project, &deployment)
    }

    async fn provision_domain(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        domain::provision(ctx, &self.api(ctx, dock), config).await
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        match target.kind {
            // Deleting the project deletes its deployments (204 once it is gone).
            ResourceKind::WebService => {
                self.api(ctx, dock)
                    .delete_project(&target.provider_resource_id)
                    .await?
            }
            ResourceKind::Domain => domain::deprovision(&self.api(ctx, dock), target).await?,
            other => return Err(self.unsupported(other)),
        }
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock);
        if step.name.starts_with("domain_") {
            return domain::undo(&api, decode_step(step)?).await;
        }
        match decode_step::<VercelStep>(step)? {
            VercelStep::ProjectCreateSent { project, .. } => match api.get_project(&project).await?
            {
                Some(found) => api.delete_project(&found.id).await,
                None => Ok(()),
            },
            VercelStep::ProjectCreated { project_id, .. } => api.delete_project(&project_id).await,
            // A deployment that may exist is in the project, whose undo deletes it.
            VercelStep::DeploymentSent { .. } => Ok(()),
            VercelStep::DeploymentCreated { deployment_id, .. } => {
                api.cancel_deployment(&deployment_id).await
            }
        }
    }

    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let api = self.api(ctx, dock);
        match kind {
            ResourceKind::WebService => {}
            ResourceKind::Domain => return domain::observe_many(&api, targets).await,
            other => return Err(self.unsupported(other)),
        }
        // One listing shows which projects exist; each is asked for its newest deployment.
        let mut projects: HashMap<String, Project> = api
            .list_projects()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut seen = Vec::with_capacity(targets.len());
        for t in targets {
            let Some(project) = projects.remove(&t.provider_resource_id) else {
                seen.push(None);
                continue;
            };
            let deployment = api.latest_deployment(&project.id).await?;
            seen.push(Some(observe(project, deployment.as_ref())));
        }
        Ok(seen)
    }

    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError> {
        let api = self.api(ctx, dock);
        match kind {
            ResourceKind::WebService => {}
            ResourceKind::Domain => return domain::find_by_marker(&api, marker).await,
            other => return Err(self.unsupported(other)),
        }
        let Some(project) = api.get_project(&project_name(marker)).await? else {
            return Ok(None);
        };
        // A project of another name answering to this one (an id) is not the marker's.
        if project.name != project_name(marker) {
            return Ok(None);
        }
        let deployment = api.latest_deployment(&project.id).await?;
        Ok(Some(observe(project, deployment.as_ref())))
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let api = self.api(ctx, dock);
        let projects = api.list_projects().await?;
        let (mut found, holding) = domain::discover(&api, &projects).await?;
        for project in projects {
            // A project that only holds domains (never deployed) is listed as its domains.
            if holding.contains(&project.id) && api.latest_deployment(&project.id).await?.is_none()
            {
                continue;
            }
            found.push(observe(project, None));
        }
        Ok(found)
    }
}

/// The project named after `marker`, made by an earlier run of this operation or now (steps
/// [`VercelStep::ProjectCreateSent`] and [`VercelStep::ProjectCreated`]). A web service's
/// deployments and a domain without a project of its own go in it.
pub(super) async fn own_project(
    ctx: &mut Ctx,
    api: &VercelApi,
    marker: &Marker,
) -> Result<Project, DockError> {
    own_project_made(ctx, api, marker)
        .await
        .map(|(project, _)| project)
}

/// [`own_project`], and whether this run's request made it (so nothing else can be in it).
async fn own_project_made(
    ctx: &mut Ctx,
    api: &VercelApi,
    marker: &Marker,
) -> Result<(Project, bool), DockError> {
    let name = project_name(marker);
    let made = match ctx.step::<VercelStep>("project_created")? {
        Some(VercelStep::ProjectCreated { project_id, .. }) => api
            .get_project(&project_id)
            .await?
            .map(Created::Adopted)
            .ok_or_else(|| gone(format!("project {name}")))?,
        _ => {
            let sent_before = ctx.step::<VercelStep>("project_create_sent")?.is_some();
            ctx.record_before_sending(&VercelStep::ProjectCreateSent {
                marker: marker.clone(),
                project: name.clone(),
            })
            .await?;
            let made = create_or_adopt(
                ctx,
                sent_before,
                |attempt| api.create_project(&name, attempt),
                || api.get_project(&name),
            )
            .await;
            let made = match made {
                Ok(made) => made,
                // The name is this resource's own: a project holding it is the one an
                // earlier try made, whose answer never arrived.
                Err(DockError::Provider(p)) if p.status == 409 => {
                    match api.get_project(&name).await? {
                        Some(project) => Created::Adopted(project),
                        None => return Err(DockError::Provider(p)),
                    }
                }
                Err(e) => return Err(e),
            };
            let project = match &made {
                Created::New(p) | Created::Adopted(p) => p,
            };
            ctx.record(&VercelStep::ProjectCreated {
                project_id: project.id.clone(),
                project: project.name.clone(),
                adopted: made.adopted(),
            })
            .await?;
            made
        }
    };
    let fresh = !made.adopted();
    Ok((made.into_inner(), fresh))
}

/// The deployment an earlier request made, if any: the project's newest, unless it was
/// deleted since (then the resource needs a new one).
async fn sent_deployment(
    api: &VercelApi,
    project_id: &str,
) -> Result<Option<Deployment>, DockError> {
    Ok(api
        .latest_deployment(project_id)
        .await?
        .filter(|d| d.ready_state != "DELETED"))
}

/// Uploads every file's contents and then asks Vercel for the deployment that lists them, the
/// order Vercel documents (`POST /v2/files` first; the deployment must find every file it
/// names). Should Vercel still answer `missing_files` (contents it has since dropped), the
/// contents it lists, or every file when it lists none, go up once more and the deployment
/// is asked for again. A request whose answer is lost is settled by looking for the project's
/// deployment: a `missing_files` refusal made none, so one found is that request's. With
/// `sent_before` (an earlier run may have deployed), it is looked for first.
async fn create_deployment(
    ctx: &Ctx,
    api: &VercelApi,
    request: &CreateDeployment,
    sent_before: bool,
    (files, entry_of): (&Files, &HashMap<String, usize>),
) -> Result<Created<Deployment>, DockError> {
    let upload = |shas: Vec<String>| async move {
        for sha in shas {
            let Some(&i) = entry_of.get(&sha) else {
                return Err(DockError::Protocol {
                    provider: Provider::Vercel,
                    detail: format!("the deployment lacks {sha}, which no file has"),
                });
            };
            let bytes = ctx.file(&files.entries()[i]).await?;
            api.upload_file(&sha, &bytes).await?;
        }
        Ok(())
    };
    // Each file's contents once, in the order they are listed.
    let every: Vec<String> = {
        let mut seen = HashSet::new();
        request
            .files
            .iter()
            .filter(|f| seen.insert(f.sha.as_str()))
            .map(|f| f.sha.clone())
            .collect()
    };
    if sent_before {
        // An earlier run may have deployed: look before uploading anything.
        if let Some(found) = sent_deployment(api, &request.project).await? {
            return Ok(Created::Adopted(found));
        }
    }
    upload(every.clone()).await?;
    let mut sent_again = HashSet::new();
    for _ in 0..CREATE_ROUNDS {
        let made = create_or_adopt(
            ctx,
            // Looked for above; and a `missing_files` refusal made nothing.
            false,
            |attempt| api.create_deployment(request, attempt),
            || sent_deployment(api, &request.project),
        )
        .await;
        let listed = match made {
            Ok(made) => return Ok(made),
            Err(DockError::Provider(p)) if p.code == api::MISSING_FILES => {
                api::missing_digests(&p.message)
            }
            Err(e) => return Err(e),
        };
        let listed = if listed.is_empty() {
            every.clone()
        } else {
            listed
        };
        // Each content goes up again once at most: one Vercel keeps refusing will not be
        // kept by uploading it a third time.
        let again: Vec<String> = listed
            .into_iter()
            .filter(|sha| sent_again.insert(sha.clone()))
            .collect();
        if again.is_empty() {
            break;
        }
        upload(again).await?;
    }
    Err(DockError::ResourceFailed {
        provider: Provider::Vercel,
        code: api::MISSING_FILES.into(),
        message: "Vercel still lacks files that were uploaded".into(),
    })
}
