//! The DigitalOcean adapter on the v2 contract: droplets here, domains in [`super::domain`],
//! database clusters in [`super::database`].
//!
//! Every droplet StackDock creates carries two tags: [`SHARED_TAG`], common to all of them,
//! and its own marker. The marker finds one droplet after a lost answer or a crash
//! (`GET /v2/droplets?tag_name=<marker>`); the shared tag lets the engine check every waiting
//! droplet of an account with one listing of up to 200 a page instead of one read each.
//!
//! Steps, recorded in order:
//! 1. [`DropletStep::CreateSent`] — before `POST /v2/droplets` goes out, written once the
//!    create has its turn in the dock's budget (`Ctx::record_before_sending`), so a run that
//!    ends while it waits leaves nothing to look for. From here on a droplet carrying the
//!    marker may exist; undoing it finds and deletes any.
//! 2. [`DropletStep::Created`] — the droplet's id, created or adopted by marker; the engine
//!    writes the id onto the resource row with it. Undoing it deletes the droplet.
//!
//! Readiness is DigitalOcean's own: `status` `active` with a public IPv4 address.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{self, CreateDroplet, DigitalOceanApi, Droplet};
use super::database::{self, DatabaseConfig, DatabaseStep};
use super::domain::{self, DomainConfig, DomainStep};

/// Carried by every droplet StackDock creates, beside the droplet's own marker.
pub const SHARED_TAG: &str = "stackdock";

/// How soon to look at a new droplet, or at one being deleted. DigitalOcean boots a droplet
/// in tens of seconds, but the engine spaces its checks by the dock's budget anyway; this is
/// only the earliest.
const FIRST_CHECK: Duration = Duration::from_millis(500);
/// A droplet `new` for this long has its create action asked about: DigitalOcean's droplets
/// are `active` within a minute or two, and one whose create errored stays `new` for good.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

/// The config of a droplet (`POST /v2/droplets`, single-droplet form).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Droplet hostname.
    pub name: Hostname,
    /// Region slug, e.g. nyc3.
    pub region: Slug,
    /// Size slug, e.g. s-1vcpu-1gb.
    pub size: Slug,
    /// Image slug or id, e.g. ubuntu-24-04-x64.
    pub image: Text,
    /// Enable IPv6.
    #[serde(default)]
    pub ipv6: Option<bool>,
    /// Install the monitoring agent.
    #[serde(default)]
    pub monitoring: Option<bool>,
    /// Cloud-init user data; often holds passwords and tokens.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub user_data: Option<String>,
    /// SSH key ids or fingerprints.
    #[serde(default)]
    pub ssh_keys: Vec<Text>,
    /// VPC to place the droplet in.
    #[serde(default)]
    pub vpc_uuid: Option<Text>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<Text>,
}

/// The steps of a droplet's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DropletStep {
    CreateSent { marker: Marker },
    Created { droplet_id: String, adopted: bool },
}

impl AdapterStep for DropletStep {
    fn name(&self) -> &'static str {
        match self {
            Self::CreateSent { .. } => "create_sent",
            Self::Created { .. } => "created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::Created { droplet_id, .. } => Some(droplet_id),
            Self::CreateSent { .. } => None,
        }
    }
}

pub struct DigitalOceanAdapter {
    client: reqwest::Client,
    /// How long a droplet may stay `new` before its create action is asked about.
    stuck_after: Duration,
    /// Derived once from each kind's config type: every request is checked against it.
    server_schema: ConfigSchema,
    domain_schema: ConfigSchema,
    database_schema: ConfigSchema,
}

impl DigitalOceanAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            stuck_after: STUCK_AFTER,
            server_schema: ConfigSchema::of::<ServerConfig>(),
            domain_schema: ConfigSchema::of::<DomainConfig>(),
            database_schema: ConfigSchema::of::<DatabaseConfig>(),
        }
    }

    /// This adapter asking about a droplet's create once it has been `new` for `after`
    /// instead of [`STUCK_AFTER`] (tests, which cannot wait minutes).
    pub fn with_stuck_after(mut self, after: Duration) -> Self {
        self.stuck_after = after;
        self
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> DigitalOceanApi {
        DigitalOceanApi::new(HttpSession::new(
            self.client.clone(),
            dock,
            super::DEFAULT_BASE_URL,
            ctx,
            api::read_error,
        ))
    }

    fn supported(&self, kind: ResourceKind) -> Result<ResourceKind, DockError> {
        if self.kinds().contains(&kind) {
            Ok(kind)
        } else {
            Err(self.unsupported(kind))
        }
    }
}

/// Sends a create through [`create_or_adopt`] after the step `sent_step` was recorded, and
/// settles what a refusal means. Refused on every try, the provider made nothing: the step
/// is marked undone, so unwinding has nothing to look for. Refused after a try whose outcome
/// is unknown, the refusal may be that try's doing (a name it took), so the resource is
/// looked up once more and adopted if it is there.
pub(super) async fn create_once_or_adopt<T, C, CF, L, LF>(
    ctx: &mut Ctx,
    sent_step: &str,
    sent_before: bool,
    create: C,
    lookup: L,
) -> Result<Created<T>, DockError>
where
    C: Fn(u32) -> CF,
    CF: Future<Output = Result<T, DockError>>,
    L: Fn() -> LF,
    LF: Future<Output = Result<Option<T>, DockError>>,
{
    // Whether any try may have made the resource (no answer, an answer cut short).
    let unsure = AtomicBool::new(sent_before);
    let created = create_or_adopt(
        ctx,
        sent_before,
        |attempt| {
            let sent = create(attempt);
            let unsure = &unsure;
            async move {
                let answer = sent.await;
                if answer.as_ref().is_err_and(DockError::outcome_unknown) {
                    unsure.store(true, Ordering::Relaxed);
                }
                answer
            }
        },
        &lookup,
    )
    .await;
    match created {
        Err(e @ DockError::Provider(_)) if !unsure.load(Ordering::Relaxed) => {
            ctx.mark_undone(sent_step).await?;
            Err(e)
        }
        Err(e @ DockError::Provider(_)) => match lookup().await? {
            Some(found) => Ok(Created::Adopted(found)),
            None => Err(e),
        },
        other => other,
    }
}

/// The droplet carrying `marker`. A marker is unique, so more than one would be our own bug;
/// the oldest is the one an earlier try made first.
async fn by_marker(api: &DigitalOceanApi, marker: &Marker) -> Result<Option<Droplet>, DockError> {
    Ok(marked(api, marker).await?.into_iter().min_by_key(|d| d.id))
}

/// Every droplet carrying `marker`. A listing by tag leaves GPU droplets out (the document:
/// only `type=gpus` lists them), so when it finds none the GPU droplets are looked through.
async fn marked(api: &DigitalOceanApi, marker: &Marker) -> Result<Vec<Droplet>, DockError> {
    let tagged = api.list_droplets(Some(marker.as_str())).await?;
    if !tagged.is_empty() {
        return Ok(tagged);
    }
    Ok(api
        .list_gpu_droplets()
        .await?
        .into_iter()
        .filter(|d| d.tags.iter().any(|t| t == marker.as_str()))
        .collect())
}

/// Whether a droplet as last seen is of a GPU size, which only `type=gpus` lists.
fn is_gpu(seen: &Value) -> bool {
    let slug = seen["size_slug"]
        .as_str()
        .or_else(|| seen["size"]["slug"].as_str());
    slug.is_some_and(|s| s.starts_with("gpu-"))
}

/// Whether a resource as last seen carries [`SHARED_TAG`], so that a listing by that tag
/// speaks for it.
pub(super) fn carries_shared_tag(seen: &Value) -> bool {
    seen["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == SHARED_TAG))
}

/// How long since the droplet was created, by its `created_at` (zero if unreadable, or in
/// the future by this machine's clock).
fn new_for(raw: &Value) -> Duration {
    raw["created_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| (Utc::now() - t.to_utc()).to_std().ok())
        .unwrap_or_default()
}

fn observe(d: Droplet) -> Observed {
    let marker = d.tags.iter().find_map(|t| Marker::try_from(t.clone()).ok());
    Observed {
        provider_resource_id: d.id.to_string(),
        name: d.name,
        ready: d.status == "active" && d.public_ipv4.is_some(),
        failure: None,
        status: Some(d.status),
        marker,
        details: ResourceDetails::Server(ServerDetails {
            region: d.region,
            size: d.size_slug,
            image: d.image,
            ipv4: d.public_ipv4,
            ipv6: d.public_ipv6,
        }),
        full_api_data: d.raw,
    }
}

/// Done when the provider shows `seen` ready, otherwise checked again from `check_in`.
pub(super) fn progress(seen: Observed, check_in: Duration) -> Progress {
    if seen.ready {
        Progress::Done(Some(Box::new(seen)))
    } else {
        Progress::Pending {
            status: seen.status,
            check_in,
        }
    }
}

/// The tags a created resource carries: the user's, [`SHARED_TAG`] and its marker.
pub(super) fn tags_with_marker(extra: Vec<Text>, marker: &Marker) -> Vec<String> {
    let mut tags: Vec<String> = extra.into_iter().map(String::from).collect();
    tags.extend([SHARED_TAG.to_string(), marker.to_string()]);
    tags
}

/// The tracked resources as the provider shows them, in the order asked: those in `listed`
/// (a listing by [`SHARED_TAG`], by provider id) from it, and the rest read one by one with
/// `read`, unless they were last seen carrying the shared tag, when the listing speaks for
/// them (gone, or for one just created, not listed yet). Discovered resources, ones tagged
/// before the shared tag existed and ones never seen yet are read.
pub(super) async fn listed_or_read<T, R, RF>(
    targets: &[Tracked],
    mut listed: std::collections::HashMap<String, T>,
    read: R,
    observe: fn(T) -> Observed,
) -> Result<Vec<Option<Observed>>, DockError>
where
    R: Fn(String) -> RF,
    RF: Future<Output = Result<Option<T>, DockError>>,
{
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let seen = match listed.remove(&t.provider_resource_id) {
            Some(found) => Some(observe(found)),
            None if carries_shared_tag(&t.last_seen) => None,
            None => read(t.provider_resource_id.clone()).await?.map(observe),
        };
        out.push(seen);
    }
    Ok(out)
}

#[async_trait]
impl DockAdapter for DigitalOceanAdapter {
    fn provider(&self) -> Provider {
        Provider::DigitalOcean
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[
            ResourceKind::Server,
            ResourceKind::Domain,
            ResourceKind::Database,
        ]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        match kind {
            ResourceKind::Server => Some(self.server_schema.clone()),
            ResourceKind::Domain => Some(self.domain_schema.clone()),
            ResourceKind::Database => Some(self.database_schema.clone()),
            ResourceKind::WebService => None,
        }
    }

    async fn provision_domain(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        domain::provision(ctx, &api, config).await
    }

    async fn provision_database(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        database::provision(ctx, &api, config).await
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        self.api(ctx, dock).get_account().await.map(drop)
    }

    async fn provision_server(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let config: ServerConfig = config::parse(config)?;
        let api = self.api(ctx, dock);
        if ctx.step::<DropletStep>("created")?.is_some() {
            // Created by an earlier run: the engine's checks take it from here.
            return Ok(Progress::Pending {
                status: None,
                check_in: FIRST_CHECK,
            });
        }
        let marker = ctx.marker()?.clone();
        let sent_before = ctx.step::<DropletStep>("create_sent")?.is_some();
        ctx.record_before_sending(&DropletStep::CreateSent {
            marker: marker.clone(),
        })
        .await?;

        let tags = tags_with_marker(config.tags, &marker);
        let req = CreateDroplet {
            name: config.name.into(),
            region: Some(config.region.into()),
            size: config.size.into(),
            image: config.image.into(),
            tags,
            ipv6: config.ipv6,
            monitoring: config.monitoring,
            user_data: config.user_data,
            ssh_keys: config.ssh_keys.into_iter().map(String::from).collect(),
            vpc_uuid: config.vpc_uuid.map(String::from),
        };
        let created = create_once_or_adopt(
            ctx,
            "create_sent",
            sent_before,
            |attempt| api.create_droplet(&req, attempt),
            || by_marker(&api, &marker),
        )
        .await?;
        let adopted = created.adopted();
        let droplet = created.into_inner();
        ctx.record(&DropletStep::Created {
            droplet_id: droplet.id.to_string(),
            adopted,
        })
        .await?;
        Ok(progress(observe(droplet), FIRST_CHECK))
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        let id = &target.provider_resource_id;
        match self.supported(target.kind)? {
            // A domain is gone when its delete answers.
            ResourceKind::Domain => {
                api.delete_domain(id).await?;
                return Ok(Progress::Done(None));
            }
            ResourceKind::Database => api.delete_database(id).await?,
            _ => api.delete_droplet(id).await?,
        }
        // DigitalOcean answers 204 at once and removes a droplet or a cluster shortly after;
        // it is gone when a check no longer shows it, from the dock's next round on.
        Ok(Progress::Pending {
            status: Some("deleting".into()),
            check_in: Duration::ZERO,
        })
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock);
        // Each kind's steps carry their own `step` tags, so a step decodes as one kind only.
        if let Ok(step) = decode_step::<DomainStep>(step) {
            return domain::undo(&api, step).await;
        }
        if let Ok(step) = decode_step::<DatabaseStep>(step) {
            return database::undo(&api, step).await;
        }
        match decode_step::<DropletStep>(step)? {
            DropletStep::Created { droplet_id, .. } => api.delete_droplet(&droplet_id).await,
            DropletStep::CreateSent { marker } => {
                // Whatever the lost answers made; deleted one by one, since deleting by tag
                // would also match droplets a user tagged the same by hand.
                for droplet in marked(&api, &marker).await? {
                    api.delete_droplet(&droplet.id.to_string()).await?;
                }
                Ok(())
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
        let api = self.api(ctx, dock);
        match self.supported(kind)? {
            ResourceKind::Domain => {
                // One listing of the account's domains (200 a page) answers for all of them.
                let mut listed: std::collections::HashMap<String, api::Domain> = api
                    .list_domains()
                    .await?
                    .into_iter()
                    .map(|d| (d.name.clone(), d))
                    .collect();
                return Ok(targets
                    .iter()
                    .map(|t| listed.remove(&t.provider_resource_id).map(domain::observe))
                    .collect());
            }
            ResourceKind::Database => return database::observe_many(&api, targets).await,
            _ => {}
        }
        // At least as many droplets carry the tag as are asked about: their pages are fetched
        // side by side from the start.
        let mut listed: std::collections::HashMap<String, Droplet> = api
            .list_droplets_expecting(Some(SHARED_TAG), targets.len())
            .await?
            .into_iter()
            .map(|d| (d.id.to_string(), d))
            .collect();
        // GPU droplets are in no listing by tag: when one is asked about, they are listed.
        if targets.iter().any(|t| is_gpu(&t.last_seen)) {
            listed.extend(
                api.list_gpu_droplets()
                    .await?
                    .into_iter()
                    .map(|d| (d.id.to_string(), d)),
            );
        }
        let api = &api;
        let mut seen = listed_or_read(
            targets,
            listed,
            |id| async move { api.get_droplet(&id).await },
            observe,
        )
        .await?;
        // DigitalOcean shows a create it accepted and then could not carry out only in the
        // create action; the droplet stays `new`. One that has for long is asked about.
        for o in seen.iter_mut().flatten() {
            if o.status.as_deref() == Some("new") && new_for(&o.full_api_data) >= self.stuck_after {
                let id = &o.provider_resource_id;
                if api.create_action_status(id).await?.as_deref() == Some("errored") {
                    o.failure = Some(ProviderFailure {
                        code: "create_errored".into(),
                        message: format!(
                            "DigitalOcean could not create droplet {id}: its create action errored"
                        ),
                    });
                }
            }
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
        Ok(match self.supported(kind)? {
            // Found by it, so it carries it, whether its zone file showed or not.
            ResourceKind::Domain => domain::by_marker(&api, marker).await?.map(|d| Observed {
                marker: Some(marker.clone()),
                ..domain::observe(d)
            }),
            ResourceKind::Database => database::by_marker(&api, marker)
                .await?
                .map(database::observe),
            _ => by_marker(&api, marker).await?.map(observe),
        })
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let api = self.api(ctx, dock);
        let mut droplets = api.list_droplets(None).await?;
        // The plain listing leaves GPU droplets out.
        droplets.extend(api.list_gpu_droplets().await?);
        let domains = api.list_domains().await?;
        let clusters = api.list_databases(None).await?;
        Ok(droplets
            .into_iter()
            .map(observe)
            .chain(domains.into_iter().map(domain::observe))
            .chain(clusters.into_iter().map(database::observe))
            .collect())
    }
}
