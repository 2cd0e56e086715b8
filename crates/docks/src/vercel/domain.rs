//! Provisioning Vercel project domains on the v2 contract.
//!
//! A domain at Vercel belongs to a project (`POST /v10/projects/{idOrName}/domains`). The
//! config may name the project (`project`: a web service's project, by id or name); without
//! one, the domain gets a project of its own, named after the marker as a web service's is,
//! which is how `find_by_marker` finds it again (Vercel domains carry no tags). A domain put on
//! a project the user named is found again by its own name on that project; so that adoption
//! never takes over a domain that project already had, a first run reads it before it records
//! that it sends the add: one that is there then is refused (the user's error, naming `name`).
//!
//! Steps, in order:
//! 1. Without `project`: the project's steps (`VercelStep::ProjectCreateSent`,
//!    `VercelStep::ProjectCreated`), undone by deleting the project with its domains.
//! 2. [`DomainStep::DomainAddSent`] — before the add; undoing it removes the domain of that
//!    name from the project, if it is there.
//! 3. [`DomainStep::DomainAdded`] — the domain, added or adopted; tracks
//!    `<project id>/<domain>`. Undoing it removes the domain.
//!
//! A domain is usable once it is added: the provision answers `Done`, its status `verified`
//! or `unverified`, and its details list Vercel's `verification` challenges (a TXT record to
//! set) until Vercel has verified it. Vercel checks a challenge only when asked
//! (`POST .../verify`): an unverified domain is asked to be verified whenever it is read for
//! a provision, a check or a sync of StackDock's own project. Deprovision removes the domain, and the project too when
//! it was the domain's own.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::adapter::{own_project, project_name};
use super::api::{Project, ProjectDomain, VercelApi};

/// The config of a domain: a project domain.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain, e.g. www.example.com.
    pub name: DomainName,
    /// The project (id or name) the domain is for, such as a web service's. Default: a
    /// project of the domain's own, named after its marker.
    #[serde(default)]
    pub project: Option<Text>,
}

/// The steps of a domain's provision after its project.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DomainStep {
    DomainAddSent {
        project_id: String,
        domain: String,
    },
    DomainAdded {
        project_id: String,
        domain: String,
        /// `<project id>/<domain>`: the domain's id at StackDock.
        id: String,
        adopted: bool,
    },
}

impl AdapterStep for DomainStep {
    fn name(&self) -> &'static str {
        match self {
            Self::DomainAddSent { .. } => "domain_add_sent",
            Self::DomainAdded { .. } => "domain_added",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::DomainAdded { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// A domain's id at StackDock: its project's id and its name.
fn domain_id(project_id: &str, domain: &str) -> String {
    format!("{project_id}/{domain}")
}

/// The project id and domain an id names; an id without a `/` is a domain's own project
/// tracked before its domain was added.
pub(super) fn split_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once('/') {
        Some((project, domain)) => (project, Some(domain)),
        None => (id, None),
    }
}

/// A domain as StackDock shows it; `project` names the marker when it is the domain's own.
fn observe(domain: ProjectDomain, project: Option<&Project>) -> Observed {
    let marker = project.and_then(|p| Marker::try_from(p.name.clone()).ok());
    let status = if domain.verified {
        "verified"
    } else {
        "unverified"
    };
    Observed {
        provider_resource_id: domain_id(&domain.project_id, &domain.name),
        marker,
        name: domain.name.clone(),
        ready: true,
        status: Some(status.into()),
        failure: None,
        details: ResourceDetails::Domain(DomainDetails {
            records: Value::Array(domain.verification.clone()),
        }),
        full_api_data: domain.raw,
    }
}

pub(super) async fn provision(
    ctx: &mut Ctx,
    api: &VercelApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DomainConfig = config::parse(config)?;
    let name = config.name.as_str().to_ascii_lowercase();
    let marker = ctx.marker()?.clone();
    let project = match &config.project {
        None => own_project(ctx, api, &marker).await?,
        Some(wanted) => api.get_project(wanted.as_str()).await?.ok_or_else(|| {
            DockError::InvalidConfig(ConfigError::new(
                "project",
                format!(
                    "Vercel has no project {:?} in this dock's scope",
                    wanted.as_str()
                ),
            ))
        })?,
    };
    let own = config.project.is_none();

    if let Some(DomainStep::DomainAdded { domain, .. }) = ctx.step::<DomainStep>("domain_added")? {
        let found = api
            .get_project_domain(&project.id, &domain)
            .await?
            .ok_or_else(|| DockError::ResourceFailed {
                provider: Provider::Vercel,
                code: "gone".into(),
                message: format!("domain {domain} was removed while it was provisioned"),
            })?;
        let found = verified(api, &project.id, found).await?;
        return Ok(Progress::Done(Some(Box::new(observe(
            found,
            own.then_some(&project),
        )))));
    }
    let sent_before = ctx.step::<DomainStep>("domain_add_sent")?.is_some();
    // On a project the user named, a domain it had before this operation is the user's,
    // never adopted. Every domain of the operation's own project is the operation's.
    if !own && !sent_before && api.get_project_domain(&project.id, &name).await?.is_some() {
        return Err(DockError::InvalidConfig(ConfigError::new(
            "name",
            format!("{name} is already a domain of project {}", project.name),
        )));
    }
    ctx.record_before_sending(&DomainStep::DomainAddSent {
        project_id: project.id.clone(),
        domain: name.clone(),
    })
    .await?;
    let made = create_or_adopt(
        ctx,
        sent_before,
        |attempt| api.add_project_domain(&project.id, &name, attempt),
        || api.get_project_domain(&project.id, &name),
    )
    .await;
    let made = match made {
        Ok(made) => made,
        // Taken: by this project (an earlier try's add whose answer was lost: the domain was
        // not there before, or the project is the operation's own), or by another, which is
        // the user's to settle.
        // The document: 400 when the domain is already on this project, 409 when another
        // project or account has it.
        Err(DockError::Provider(p)) if p.status == 400 || p.status == 409 => {
            match api.get_project_domain(&project.id, &name).await? {
                Some(found) => Created::Adopted(found),
                None => {
                    return Err(DockError::InvalidConfig(ConfigError::new(
                        "name",
                        format!("Vercel refuses {name}: {}", p.message),
                    )));
                }
            }
        }
        Err(e) => return Err(e),
    };
    let adopted = made.adopted();
    let domain = made.into_inner();
    ctx.record(&DomainStep::DomainAdded {
        project_id: project.id.clone(),
        domain: domain.name.clone(),
        id: domain_id(&project.id, &domain.name),
        adopted,
    })
    .await?;
    // Its TXT record may be in place already (the user set it before asking).
    let domain = verified(api, &project.id, domain).await?;
    Ok(Progress::Done(Some(Box::new(observe(
        domain,
        own.then_some(&project),
    )))))
}

/// Removes the domain, and its project when the project was the domain's own.
pub(super) async fn deprovision(api: &VercelApi, target: &Tracked) -> Result<(), DockError> {
    let (project_id, domain) = split_id(&target.provider_resource_id);
    if let Some(domain) = domain {
        api.remove_project_domain(project_id, domain).await?;
    }
    let Some(marker) = &target.marker else {
        return Ok(());
    };
    match api.get_project(project_id).await? {
        Some(project) if project.name == project_name(marker) => {
            api.delete_project(&project.id).await
        }
        _ => Ok(()),
    }
}

pub(super) async fn undo(api: &VercelApi, step: DomainStep) -> Result<(), DockError> {
    match step {
        DomainStep::DomainAddSent { project_id, domain }
        | DomainStep::DomainAdded {
            project_id, domain, ..
        } => api.remove_project_domain(&project_id, &domain).await,
    }
}

/// Each target's domain, `None` for what is gone.
pub(super) async fn observe_many(
    api: &VercelApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    let mut seen = Vec::with_capacity(targets.len());
    for t in targets {
        let (project_id, Some(name)) = split_id(&t.provider_resource_id) else {
            seen.push(None);
            continue;
        };
        let Some(domain) = api.get_project_domain(project_id, name).await? else {
            seen.push(None);
            continue;
        };
        let domain = verified(api, project_id, domain).await?;
        let project = match &t.marker {
            Some(marker) => api
                .get_project(project_id)
                .await?
                .filter(|p| p.name == project_name(marker)),
            None => None,
        };
        seen.push(Some(observe(domain, project.as_ref())));
    }
    Ok(seen)
}

/// The domain of the project named after `marker`.
pub(super) async fn find_by_marker(
    api: &VercelApi,
    marker: &Marker,
) -> Result<Option<Observed>, DockError> {
    let Some(project) = api
        .get_project(&project_name(marker))
        .await?
        .filter(|p| p.name == project_name(marker))
    else {
        return Ok(None);
    };
    let domains = api
        .list_project_domains(&project.id)
        .await?
        .unwrap_or_default();
    Ok(domains
        .into_iter()
        .find(|d| !is_vercels_own(&d.name))
        .map(|d| observe(d, Some(&project))))
}

/// Every project's domains, but the `*.vercel.app` names Vercel gives each project itself;
/// and the ids of the projects that hold some.
pub(super) async fn discover(
    api: &VercelApi,
    projects: &[Project],
) -> Result<(Vec<Observed>, HashSet<String>), DockError> {
    let mut found = Vec::new();
    let mut holding = HashSet::new();
    for project in projects {
        let domains = api
            .list_project_domains(&project.id)
            .await?
            .unwrap_or_default();
        let own = Marker::try_from(project.name.clone()).is_ok();
        for d in domains.into_iter().filter(|d| !is_vercels_own(&d.name)) {
            holding.insert(project.id.clone());
            // A domain of StackDock's own project is checked as one it tracks is; the user's
            // own are only read.
            let d = if own {
                verified(api, &project.id, d).await?
            } else {
                d
            };
            found.push(observe(d, own.then_some(project)));
        }
    }
    Ok((found, holding))
}

/// `domain` once Vercel has been asked to check its challenge: Vercel verifies a domain only
/// when asked (`POST .../verify`), however long its TXT record has been in place, and uses
/// it for the project only once verified. A verified domain is read again for the whole of
/// what Vercel shows (the check's answer leaves out some of it).
async fn verified(
    api: &VercelApi,
    project_id: &str,
    domain: ProjectDomain,
) -> Result<ProjectDomain, DockError> {
    if domain.verified || !api.verify_project_domain(project_id, &domain.name).await? {
        return Ok(domain);
    }
    Ok(api
        .get_project_domain(project_id, &domain.name)
        .await?
        .unwrap_or(domain))
}

fn is_vercels_own(name: &str) -> bool {
    name.ends_with(".vercel.app")
}
