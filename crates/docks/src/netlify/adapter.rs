//! Provisioning Netlify web services (a site and a file-digest deploy) on the v2 contract;
//! domains are in `domain.rs`.
//!
//! Netlify's sites have no tags, so a site StackDock creates is named after its marker
//! ([`site_name`]: the marker itself, `stackdock-<12 hex digits>`, a valid Netlify site name)
//! and found again by that name (`GET /sites?name=`, filtered to the exact name) after a lost
//! answer or a crash. The name the user gave is StackDock's name for the row.
//!
//! Steps, recorded in order:
//! 1. [`NetlifyStep::SiteCreateSent`] — before `POST /sites`. From here on the site may
//!    exist; undoing it deletes the site of that name, if there is one.
//! 2. [`NetlifyStep::SiteCreated`] — the site, created or adopted; tracks its id. Undoing it
//!    deletes the site, which deletes its deploys.
//! 3. [`NetlifyStep::DeploySent`] — before the deploy is asked for. A later run finds the
//!    site's deploy, if an earlier request made one, instead of asking again.
//! 4. [`NetlifyStep::DeployCreated`] — `POST /sites/{id}/deploys` with `{files: {"/path":
//!    sha1}}`, the SHA-1s computed from the bytes the engine's file store hands out. Undoing
//!    it cancels the deploy.
//!
//! Then the files Netlify lacks are uploaded: its `required` lists SHA-1s, not paths, so each
//! is mapped back to the paths holding those contents and `PUT /deploys/{id}/files/{path}`
//! sends only those. A deploy of more than [`ASYNC_ABOVE`] files is asked for `async`:
//! Netlify answers `preparing` and works out `required` in the background. The provision then answers `Pending`; the engine checks the
//! deploy, and once it is `prepared`, or lists `required` contents in any state short of the
//! uploads ([`DockAdapter::continues_provision`]), runs the provision again, which uploads.
//!
//! Readiness is the deploy's own: ready at `ready`, failed at `error` (with Netlify's
//! `error_message`). Deprovision deletes the site StackDock created. Netlify documents no
//! rate limit; the budget starts from the guess in `budget.rs`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{self, CreateDeploy, Deploy, NetlifyApi, Site};
use super::domain;

/// Deploys with more files than this are prepared by Netlify in the background (`async`).
pub const ASYNC_ABOVE: usize = 100;

/// How soon a deploy still being worked on is checked again.
const CHECK_IN: Duration = Duration::from_secs(2);

/// The config of a web service: its files (see `stackdock_docks::files`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebServiceConfig {
    /// StackDock's name for the site. At Netlify the site is named after its marker.
    pub name: Text,
    /// The files to deploy: `[{path, sha256, size}]`, uploaded to StackDock beforehand
    /// (`stackdock provision web-service --dir` does both).
    pub files: Files,
}

/// The steps of a web service's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NetlifyStep {
    SiteCreateSent {
        marker: Marker,
        site: String,
    },
    SiteCreated {
        site_id: String,
        site: String,
        adopted: bool,
    },
    /// Recorded before the deploy is asked for: from here on the site may hold one whose
    /// answer never arrived. The site is this resource's alone, so a deploy in it is that
    /// one; undoing the site deletes it.
    DeploySent {
        site_id: String,
    },
    DeployCreated {
        site_id: String,
        deploy_id: String,
        /// Found on the site after a lost answer rather than made by this run's request.
        /// Absent from steps recorded before it was kept.
        #[serde(default)]
        adopted: bool,
    },
}

impl AdapterStep for NetlifyStep {
    fn name(&self) -> &'static str {
        match self {
            Self::SiteCreateSent { .. } => "site_create_sent",
            Self::SiteCreated { .. } => "site_created",
            Self::DeploySent { .. } => "deploy_sent",
            Self::DeployCreated { .. } => "deploy_created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::SiteCreated { site_id, .. } => Some(site_id),
            _ => None,
        }
    }
}

/// The Netlify name of the site carrying `marker`.
pub fn site_name(marker: &Marker) -> String {
    marker.as_str().to_string()
}

pub struct NetlifyAdapter {
    client: reqwest::Client,
    web_schema: ConfigSchema,
    domain_schema: ConfigSchema,
}

impl NetlifyAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            web_schema: ConfigSchema::of::<WebServiceConfig>(),
            domain_schema: ConfigSchema::of::<domain::DomainConfig>(),
        }
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> NetlifyApi {
        NetlifyApi::new(HttpSession::new(
            self.client.clone(),
            dock,
            super::DEFAULT_BASE_URL,
            ctx,
            api::read_error,
        ))
    }
}

/// A site as StackDock shows it, with the state of `deploy` (else the one it serves).
fn observe(site: Site, deploy: Option<&Deploy>) -> Observed {
    let state = deploy
        .map(|d| d.state.clone())
        .or_else(|| site.published_state.clone());
    let failure = deploy
        .filter(|d| d.state == "error")
        .map(|d| ProviderFailure {
            code: "deploy_error".into(),
            message: d
                .error_message
                .clone()
                .unwrap_or_else(|| "Netlify reports the deploy failed".into()),
        });
    let mut raw = site.raw;
    if let (Some(d), Value::Object(map)) = (deploy, &mut raw) {
        map.insert("deploy".into(), d.raw.clone());
    }
    Observed {
        provider_resource_id: site.id,
        marker: Marker::try_from(site.name.clone()).ok(),
        name: site.name,
        ready: state.as_deref() == Some("ready"),
        status: state,
        failure,
        details: ResourceDetails::WebService(WebServiceDetails {
            production_url: site.ssl_url.or(site.url),
            source: Some("files".into()),
        }),
        full_api_data: raw,
    }
}

/// Whether a deploy in `state` waits for the contents it lists in `required`: Netlify's own
/// `prepared` (and `uploading`) say so, and so does any state that is not past the uploads
/// while it lists some. The document types `state` as any string, so the names on the way
/// are not relied on.
fn needs_uploads(state: &str, required: bool) -> bool {
    match state {
        "prepared" | "uploading" => true,
        "ready" | "error" | "rejected" | "uploaded" | "processing" | "processed" => false,
        _ => required,
    }
}

/// What the engine should do with a deploy in `state`.
fn progress(site: Site, deploy: &Deploy) -> Result<Progress, DockError> {
    match deploy.state.as_str() {
        "ready" => Ok(Progress::Done(Some(Box::new(observe(site, Some(deploy)))))),
        "error" => Err(DockError::ResourceFailed {
            provider: Provider::Netlify,
            code: "deploy_error".into(),
            message: deploy
                .error_message
                .clone()
                .unwrap_or_else(|| "Netlify reports the deploy failed".into()),
        }),
        state => Ok(Progress::Pending {
            status: Some(state.to_string()),
            check_in: CHECK_IN,
        }),
    }
}

#[async_trait]
impl DockAdapter for NetlifyAdapter {
    fn provider(&self) -> Provider {
        Provider::Netlify
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

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        self.api(ctx, dock).current_user().await.map(drop)
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
        let name = site_name(&marker);

        // Netlify names files by SHA-1, which the manifest does not carry: computed from the
        // bytes before anything is created, so contents never uploaded to StackDock leave
        // nothing at Netlify. Paths sharing contents share a SHA-1.
        let mut digests = BTreeMap::new();
        let mut paths_of: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, entry) in config.files.entries().iter().enumerate() {
            let sha1 = sha1_hex(&ctx.file(entry).await?);
            digests.insert(format!("/{}", entry.path), sha1.clone());
            paths_of.entry(sha1).or_default().push(i);
        }

        // Whether this run's request made the site (so no deploy can be on it yet).
        let mut fresh = false;
        let site = match ctx.step::<NetlifyStep>("site_created")? {
            Some(NetlifyStep::SiteCreated { site_id, .. }) => api
                .get_site(&site_id)
                .await?
                .ok_or_else(|| DockError::ResourceFailed {
                    provider: Provider::Netlify,
                    code: "gone".into(),
                    message: format!("site {name} was deleted while it was provisioned"),
                })?,
            _ => {
                let sent_before = ctx.step::<NetlifyStep>("site_create_sent")?.is_some();
                ctx.record_before_sending(&NetlifyStep::SiteCreateSent {
                    marker: marker.clone(),
                    site: name.clone(),
                })
                .await?;
                let made = create_or_adopt(
                    ctx,
                    sent_before,
                    |attempt| api.create_site(&name, attempt),
                    || api.find_site(&name),
                )
                .await;
                let made = match made {
                    Ok(made) => made,
                    // The name is this resource's own: a site holding it in the account is
                    // the one an earlier try made, whose answer never arrived.
                    Err(DockError::Provider(p)) if p.status == 422 => {
                        match api.find_site(&name).await? {
                            Some(site) => Created::Adopted(site),
                            None => return Err(DockError::Provider(p)),
                        }
                    }
                    Err(e) => return Err(e),
                };
                let adopted = made.adopted();
                fresh = !adopted;
                let site = made.into_inner();
                ctx.record(&NetlifyStep::SiteCreated {
                    site_id: site.id.clone(),
                    site: site.name.clone(),
                    adopted,
                })
                .await?;
                site
            }
        };

        let deploy = match ctx.step::<NetlifyStep>("deploy_created")? {
            Some(NetlifyStep::DeployCreated { deploy_id, .. }) => api
                .get_deploy(&deploy_id)
                .await?
                .ok_or_else(|| DockError::ResourceFailed {
                    provider: Provider::Netlify,
                    code: "gone".into(),
                    message: format!("deploy {deploy_id} was deleted while it was provisioned"),
                })?,
            _ => {
                // A site this run did not just make is the resource's own from an earlier
                // run, which may have made the deploy and lost its answer, or crashed before
                // its record was kept: asking again would deploy twice.
                let sent_before = !fresh || ctx.step::<NetlifyStep>("deploy_sent")?.is_some();
                ctx.record_before_sending(&NetlifyStep::DeploySent {
                    site_id: site.id.clone(),
                })
                .await?;
                let request = CreateDeploy {
                    files: digests,
                    is_async: config.files.entries().len() > ASYNC_ABOVE,
                };
                let made = create_or_adopt(
                    ctx,
                    sent_before,
                    |attempt| api.create_deploy(&site.id, &request, attempt),
                    || api.latest_deploy(&site.id),
                )
                .await?;
                let adopted = made.adopted();
                let deploy = made.into_inner();
                ctx.record(&NetlifyStep::DeployCreated {
                    site_id: site.id.clone(),
                    deploy_id: deploy.id.clone(),
                    adopted,
                })
                .await?;
                deploy
            }
        };

        // Netlify lists what it lacks in `required` (an async deploy only once it has worked
        // it out in the background; until then the engine waits). Whatever the state is
        // called on the way, the listed contents go up.
        if needs_uploads(&deploy.state, !deploy.required.is_empty()) {
            for sha1 in &deploy.required {
                let Some(indices) = paths_of.get(sha1) else {
                    return Err(DockError::Protocol {
                        provider: Provider::Netlify,
                        detail: format!("the deploy requires {sha1}, which no file has"),
                    });
                };
                // One upload per content: Netlify needs each SHA-1 once.
                let entry = &config.files.entries()[indices[0]];
                let bytes = ctx.file(entry).await?;
                api.upload_file(&deploy.id, &format!("/{}", entry.path), &bytes)
                    .await?;
            }
            let after = api.get_deploy(&deploy.id).await?.unwrap_or(deploy);
            return progress(site, &after);
        }
        progress(site, &deploy)
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
        let api = self.api(ctx, dock);
        match target.kind {
            // Deleting the site deletes its deploys; Netlify answers once it is gone.
            ResourceKind::WebService => api.delete_site(&target.provider_resource_id).await?,
            ResourceKind::Domain => api.delete_zone(&target.provider_resource_id).await?,
            other => return Err(self.unsupported(other)),
        }
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock);
        if step.name.starts_with("site_") || step.name.starts_with("deploy_") {
            return match decode_step::<NetlifyStep>(step)? {
                NetlifyStep::SiteCreateSent { site, .. } => match api.find_site(&site).await? {
                    Some(found) => api.delete_site(&found.id).await,
                    None => Ok(()),
                },
                NetlifyStep::SiteCreated { site_id, .. } => api.delete_site(&site_id).await,
                // A deploy that may exist is on the site, whose undo deletes it.
                NetlifyStep::DeploySent { .. } => Ok(()),
                NetlifyStep::DeployCreated { deploy_id, .. } => api.cancel_deploy(&deploy_id).await,
            };
        }
        domain::undo(&api, decode_step(step)?).await
    }

    fn continues_provision(&self, kind: ResourceKind, observed: &Observed) -> bool {
        let required = observed.full_api_data["deploy"]["required"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        kind == ResourceKind::WebService
            && observed
                .status
                .as_deref()
                .is_some_and(|state| needs_uploads(state, required))
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
            ResourceKind::WebService => {
                // One listing shows which sites exist and what they serve; a site whose own
                // deploy is not live yet is asked about that deploy.
                let mut sites: HashMap<String, Site> = api
                    .list_sites()
                    .await?
                    .into_iter()
                    .map(|s| (s.id.clone(), s))
                    .collect();
                let mut seen = Vec::with_capacity(targets.len());
                for t in targets {
                    let Some(site) = sites.remove(&t.provider_resource_id) else {
                        seen.push(None);
                        continue;
                    };
                    if site.published_state.as_deref() == Some("ready") {
                        seen.push(Some(observe(site, None)));
                        continue;
                    }
                    let deploy = api.latest_deploy(&site.id).await?;
                    seen.push(Some(observe(site, deploy.as_ref())));
                }
                Ok(seen)
            }
            ResourceKind::Domain => domain::observe_many(&api, targets).await,
            other => Err(self.unsupported(other)),
        }
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
            ResourceKind::WebService => Ok(api
                .find_site(&site_name(marker))
                .await?
                .map(|s| observe(s, None))),
            ResourceKind::Domain => domain::find_by_marker(&api, marker).await,
            other => Err(self.unsupported(other)),
        }
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let api = self.api(ctx, dock);
        let mut found: Vec<Observed> = api
            .list_sites()
            .await?
            .into_iter()
            .map(|s| observe(s, None))
            .collect();
        found.extend(domain::discover(&api).await?);
        Ok(found)
    }
}
